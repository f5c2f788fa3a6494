//! Keeping the registry in line with `PLUGINS_DIR`: the initial scan, the
//! notify-debouncer-full watcher, and [`sync_file`], which reconciles one file
//! with the registry (load, reload, refuse, unload).
//!
//! Supported update path: write the new build under another name (a `.tmp`
//! suffix or a leading `.`, both ignored) and rename it over the old file.
//! In-place writes work too once the writer is quiet for the debounce period;
//! a half-written file fails to compile and the old version keeps serving
//! until the complete file arrives. Deleting a file unloads its plugin.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use notify_debouncer_full::notify::event::{AccessKind, AccessMode};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::Shared;
use super::loaded::{self, content_hash};

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub(super) enum WatchError {
    #[error("watching {dir}: {source}")]
    Notify {
        dir: String,
        source: notify_debouncer_full::notify::Error,
    },
}

/// A file the runtime refused, kept for `/admin/plugins`.
#[derive(Debug, Clone)]
pub(super) struct Rejection {
    /// Hash of the refused bytes (not retried until they change).
    pub hash: Option<String>,
    pub error: String,
    pub at: SystemTime,
}

/// The running watcher; dropping it stops watching.
pub(super) struct Watcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether an event may have changed a file. Opens and reads (our own loads
/// among them) may not, and reacting to them would make every load trigger
/// another.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Whether `path` names a plugin file: `*.wasm`, not hidden.
pub(super) fn is_plugin_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    !hidden && path.extension().is_some_and(|ext| ext == "wasm")
}

/// Plugin files now in `dir`, sorted (so the first of two conflicting files wins).
pub(super) fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| is_plugin_file(p) && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Starts watching `dir`; changes are applied on the tokio runtime. Holds
/// only a `Weak` to the runtime so dropping every `Plugins` ends it.
pub(super) fn start(
    dir: &Path,
    debounce: Duration,
    shared: Weak<Shared>,
) -> Result<Watcher, WatchError> {
    let notify_err = |source| WatchError::Notify {
        dir: dir.display().to_string(),
        source,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
        // The receiver is gone only at shutdown.
        let _ = tx.send(result);
    })
    .map_err(notify_err)?;
    debouncer
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(notify_err)?;
    let dir = dir.to_path_buf();
    let task = tokio::spawn(async move {
        while let Some(result) = rx.recv().await {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut paths = BTreeSet::new();
            let mut rescan = false;
            match result {
                Ok(events) => {
                    for event in events.iter().filter(|e| is_change(&e.event.kind)) {
                        rescan |= event.event.need_rescan();
                        paths.extend(
                            event
                                .event
                                .paths
                                .iter()
                                .filter(|p| is_plugin_file(p))
                                .cloned(),
                        );
                    }
                }
                Err(errors) => {
                    for error in errors {
                        tracing::warn!(%error, "plugin directory watch error; rescanning");
                    }
                    rescan = true;
                }
            }
            if rescan {
                full_rescan(&shared, &dir).await;
            }
            let mut unloaded = false;
            for path in paths {
                unloaded |= sync_file(&shared, &path).await;
            }
            if unloaded {
                retry_rejected(&shared).await;
            }
        }
    });
    Ok(Watcher {
        _debouncer: debouncer,
        task,
    })
}

/// Syncs every file of `dir`, and unloads plugins whose file is gone.
pub(super) async fn full_rescan(shared: &Arc<Shared>, dir: &Path) {
    let files = match plugin_files(dir) {
        Ok(files) => files,
        Err(error) => {
            tracing::error!(dir = %dir.display(), %error, "cannot list the plugin directory");
            return;
        }
    };
    let loaded: Vec<PathBuf> = shared
        .registry
        .snapshot()
        .by_name
        .values()
        .map(|p| p.path.clone())
        .filter(|p| !files.contains(p))
        .collect();
    let mut unloaded = false;
    for path in loaded.iter().chain(&files) {
        unloaded |= sync_file(shared, path).await;
    }
    if unloaded {
        retry_rejected(shared).await;
    }
}

/// Gives refused files another chance (after an unload freed a name or events).
async fn retry_rejected(shared: &Arc<Shared>) {
    let paths: Vec<PathBuf> = {
        let mut rejected = shared.rejected_mut();
        for r in rejected.values_mut() {
            r.hash = None;
        }
        rejected.keys().cloned().collect()
    };
    for path in paths {
        sync_file(shared, &path).await;
    }
}

/// Reconciles the registry with the file at `path` as it is now. Returns
/// true when it unloaded a plugin.
pub(super) async fn sync_file(shared: &Arc<Shared>, path: &Path) -> bool {
    // One file at a time: loads must not race each other's conflict checks.
    let _serial = shared.sync_lock.lock().await;
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            shared.rejected_mut().remove(path);
            return match shared.registry.remove_path(path) {
                Some(old) => {
                    old.pool.clear();
                    tracing::info!(plugin = old.name(), file = %path.display(), "plugin unloaded (file removed)");
                    true
                }
                None => false,
            };
        }
        Err(e) => {
            reject(shared, path, None, format!("reading the file: {e}"));
            return false;
        }
    };
    let hash = content_hash(&bytes);
    if shared
        .registry
        .snapshot()
        .by_path(path)
        .is_some_and(|p| p.hash == hash)
    {
        shared.rejected_mut().remove(path);
        return false;
    }
    if shared
        .rejected_mut()
        .get(path)
        .is_some_and(|r| r.hash.as_deref() == Some(hash.as_str()))
    {
        return false;
    }
    let started = Instant::now();
    let plugin = match loaded::load(shared, path, bytes).await {
        Ok(plugin) => plugin,
        Err(e) => {
            reject(shared, path, Some(hash), e.to_string());
            return false;
        }
    };
    let (name, version, metrics) = (
        plugin.name().to_owned(),
        plugin.manifest.version.clone(),
        plugin.metrics.clone(),
    );
    match shared.registry.install(plugin) {
        Ok(replaced) => {
            shared.rejected_mut().remove(path);
            metrics
                .reloads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let took_ms = started.elapsed().as_secs_f64() * 1000.0;
            match replaced {
                Some(old) => {
                    old.pool.clear();
                    tracing::info!(plugin = %name, %version, old_version = %old.manifest.version, file = %path.display(), took_ms, "plugin reloaded");
                }
                None => {
                    tracing::info!(plugin = %name, %version, file = %path.display(), took_ms, "plugin loaded")
                }
            }
        }
        Err(e) => reject(shared, path, Some(hash), e.to_string()),
    }
    false
}

fn reject(shared: &Shared, path: &Path, hash: Option<String>, error: String) {
    shared
        .metrics
        .load_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let serving = shared
        .registry
        .snapshot()
        .by_path(path)
        .map(|p| p.manifest.version.clone());
    match &serving {
        Some(version) => {
            tracing::error!(file = %path.display(), %error, still_serving = %version, "plugin refused; the loaded version keeps serving")
        }
        None => tracing::error!(file = %path.display(), %error, "plugin refused"),
    }
    shared.rejected_mut().insert(
        path.to_path_buf(),
        Rejection {
            hash,
            error,
            at: SystemTime::now(),
        },
    );
}

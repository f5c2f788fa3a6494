//! The WebAssembly plugin runtime: loads `rtm:plugin` components from
//! `PLUGINS_DIR`, keeps them in line with the directory (hot reload), routes
//! custom Socket.IO events to them under per-call limits, and reports on them.
//!
//! [`Plugins`] is the whole public surface, with the [`PluginHost`] trait the
//! Socket.IO side implements and the [`KvBackend`] it hands in. One `Plugins`
//! serves one tenant. Guests are sandboxed: WASI p2 without files, network,
//! environment or arguments; memory capped per store; CPU budget by epoch
//! ticks; wall-clock timeout per call; a circuit breaker per plugin version.

mod bindings;
mod budget;
mod config;
mod dispatch;
mod engine;
mod host_api;
mod instance;
mod kv;
mod limits;
mod loaded;
pub(crate) mod manifest;
mod metrics;
mod pool;
mod quarantine;
mod registry;
mod watcher;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::json;

pub use config::PluginConfig;
pub use dispatch::{DispatchError, EventCall};
pub use host_api::{HostError, PluginHost, PresenceMember};
pub use kv::{KvBackend, MemoryKv};

use dispatch::Hook;
use engine::PluginEngine;
use instance::CallLimits;
use loaded::LoadedPlugin;
use metrics::{Metrics, PluginGauges};
use quarantine::BreakerState;
use registry::Registry;
use watcher::{Rejection, Watcher};

/// The one wasmtime engine of a node (its pooling allocator, epoch ticker and compiled
/// artifact cache), shared by every tenant's runtime. Cheap to clone.
#[derive(Clone)]
pub struct SharedEngine {
    engine: Arc<PluginEngine>,
    memory_bytes: usize,
}

impl SharedEngine {
    /// Builds the engine; `cfg` sizes the pool (instances, and the largest memory any
    /// tenant may be given: a tenant's `memory_mb` above it is capped to it).
    pub fn new(cfg: &PluginConfig) -> anyhow::Result<Self> {
        let engine = PluginEngine::new(cfg).context("starting the plugin engine")?;
        Ok(Self {
            engine: Arc::new(engine),
            memory_bytes: cfg.memory_bytes(),
        })
    }
}

/// The plugin runtime of one tenant. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Plugins {
    shared: Arc<Shared>,
}

/// Everything the runtime's parts share. Held by `Plugins` clones; the
/// watcher task holds only a `Weak` so it never keeps the runtime alive.
struct Shared {
    cfg: PluginConfig,
    tenant: String,
    engine: Arc<PluginEngine>,
    host: Arc<dyn PluginHost>,
    kv: KvBackend,
    limits: CallLimits,
    registry: Registry,
    metrics: Metrics,
    /// Serializes file syncs (initial scan and watcher) so conflict checks see
    /// a settled registry; held across a whole load, so a tokio mutex.
    sync_lock: tokio::sync::Mutex<()>,
    /// Files refused, with why (std mutex: held for map operations only).
    rejected: Mutex<BTreeMap<PathBuf, Rejection>>,
    /// The running watcher, taken out at shutdown.
    watcher: Mutex<Option<Watcher>>,
    /// Turns true once the initial scan of the directory is done.
    loaded: tokio::sync::watch::Sender<bool>,
    shut_down: AtomicBool,
}

impl Shared {
    fn finish_initial_load(&self) {
        self.loaded.send_replace(true);
        let loaded: Vec<String> = self.registry.snapshot().by_name.keys().cloned().collect();
        tracing::info!(tenant = %self.tenant, plugins = ?loaded, "plugin runtime loaded");
    }

    fn rejected_mut(&self) -> MutexGuard<'_, BTreeMap<PathBuf, Rejection>> {
        self.rejected.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Plugins {
    /// Builds the engine, loads every `*.wasm` of `cfg.dir` (a bad file is
    /// logged and skipped, never fatal) and starts watching the directory.
    /// Fails only when the engine cannot be built or the directory cannot be
    /// read or watched. Must run inside a tokio runtime.
    pub async fn start(
        cfg: PluginConfig,
        host: Arc<dyn PluginHost>,
        kv: KvBackend,
        tenant: &str,
    ) -> anyhow::Result<Plugins> {
        let plugins = Self::launch(cfg, host, kv, tenant)?;
        plugins.loaded().await;
        Ok(plugins)
    }

    /// Waits until the initial load of the directory is done (see [`Plugins::launch`]).
    pub async fn loaded(&self) {
        let mut rx = self.shared.loaded.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    /// Like [`Plugins::start`], but returns at once and loads the directory in the
    /// background: the host serves (presence, health) while big guests compile, and
    /// `ready()` (hence `/readyz`) turns true when every file has been tried.
    pub fn launch(
        cfg: PluginConfig,
        host: Arc<dyn PluginHost>,
        kv: KvBackend,
        tenant: &str,
    ) -> anyhow::Result<Plugins> {
        Self::launch_on(&SharedEngine::new(&cfg)?, cfg, host, kv, tenant)
    }

    /// [`Plugins::launch`] on a node's shared engine: the tenant's limits (`cfg`) apply
    /// to its calls, the engine's pool is the node's.
    pub fn launch_on(
        shared_engine: &SharedEngine,
        cfg: PluginConfig,
        host: Arc<dyn PluginHost>,
        kv: KvBackend,
        tenant: &str,
    ) -> anyhow::Result<Plugins> {
        let engine = shared_engine.engine.clone();
        if cfg.memory_bytes() > shared_engine.memory_bytes {
            tracing::warn!(
                tenant,
                memory_mb = cfg.memory_mb,
                "plugin memory_mb is above the node's PLUGIN_MEMORY_MB pool slots; capped to them"
            );
        }
        let limits = CallLimits {
            cpu_ticks: cfg.cpu_ticks(),
            memory_bytes: cfg.memory_bytes().min(shared_engine.memory_bytes),
            emits_per_call: cfg.emits_per_call,
            log_bytes_per_call: cfg.log_bytes_per_call,
            reply_max_bytes: cfg.reply_max_bytes,
        };
        let shared = Arc::new(Shared {
            tenant: tenant.to_owned(),
            engine,
            host,
            kv,
            limits,
            registry: Registry::default(),
            metrics: Metrics::default(),
            sync_lock: tokio::sync::Mutex::new(()),
            rejected: Mutex::new(BTreeMap::new()),
            watcher: Mutex::new(None),
            loaded: tokio::sync::watch::Sender::new(false),
            shut_down: AtomicBool::new(false),
            cfg,
        });
        if let Some(dir) = shared.cfg.dir.clone() {
            let dir = std::fs::canonicalize(&dir)
                .with_context(|| format!("PLUGINS_DIR {}", dir.display()))?;
            anyhow::ensure!(
                dir.is_dir(),
                "PLUGINS_DIR {} is not a directory",
                dir.display()
            );
            // Watch first, so nothing written during the initial scan is missed.
            let debounce = std::time::Duration::from_millis(shared.cfg.reload_debounce_ms.max(1));
            let watcher = watcher::start(&dir, debounce, Arc::downgrade(&shared))?;
            *shared
                .watcher
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(watcher);
            let loader = shared.clone();
            tokio::spawn(async move {
                watcher::full_rescan(&loader, &dir).await;
                loader.finish_initial_load();
            });
        } else {
            shared.finish_initial_load();
        }
        Ok(Plugins { shared })
    }

    /// Whether some loaded plugin declares `event`.
    pub fn handles(&self, event: &str) -> bool {
        self.shared.registry.snapshot().route(event).is_some()
    }

    /// Runs a client event on the plugin that declares it. `Ok(Some(json))`
    /// is the ack's `data`, `Ok(None)` an ack without data.
    pub async fn dispatch(&self, call: EventCall) -> Result<Option<String>, DispatchError> {
        let limit = self.shared.cfg.max_payload_bytes;
        if call.payload_json.len() > limit {
            return Err(DispatchError::PayloadTooLarge {
                size: call.payload_json.len(),
                limit,
            });
        }
        let plugin = self
            .shared
            .registry
            .snapshot()
            .route(&call.event)
            .cloned()
            .ok_or(DispatchError::UnknownEvent)?;
        dispatch::event(&plugin, call, self.shared.cfg.timeout_ms.max(1)).await
    }

    /// Tells plugins that asked for it that `socket` connected (fire and forget).
    pub fn on_connect(&self, socket: &str) {
        self.fire(
            |p| p.manifest.hooks.connect,
            || Hook::Connect {
                socket: socket.to_owned(),
            },
        );
    }

    /// Tells plugins that asked for it that `socket` disconnected (fire and forget).
    pub fn on_disconnect(&self, socket: &str, user: Option<&str>) {
        self.fire(
            |p| p.manifest.hooks.disconnect,
            || Hook::Disconnect {
                socket: socket.to_owned(),
                user: user.map(str::to_owned),
            },
        );
    }

    /// Hands a `presence:event` (its JSON) to plugins that asked for it (fire and forget).
    pub fn on_presence(&self, event_json: &str) {
        self.fire(
            |p| p.manifest.hooks.presence,
            || Hook::Presence {
                event_json: event_json.to_owned(),
            },
        );
    }

    fn fire(&self, wants: impl Fn(&LoadedPlugin) -> bool, hook: impl Fn() -> Hook) {
        let table = self.shared.registry.snapshot();
        let timeout_ms = self.shared.cfg.timeout_ms.max(1);
        for plugin in table.by_name.values().filter(|p| wants(p)) {
            tokio::spawn(dispatch::hook(plugin.clone(), hook(), timeout_ms));
        }
    }

    /// What `/admin/plugins` shows: every loaded plugin, and refused files.
    pub fn admin_json(&self) -> serde_json::Value {
        let table = self.shared.registry.snapshot();
        let plugins: Vec<serde_json::Value> = table
            .by_name
            .values()
            .map(|p| {
                let state = p.breaker.state();
                let quarantined_until = match state {
                    BreakerState::Quarantined { until } => Some(unix_ms(until)),
                    _ => None,
                };
                json!({
                    "name": p.name(),
                    "version": p.manifest.version,
                    "hash": p.hash,
                    "file": p.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "events": p.manifest.events.iter().map(|e| e.to_manifest_string()).collect::<Vec<_>>(),
                    "hooks": p.manifest.hooks.names(),
                    "loadedAt": unix_ms(p.loaded_at),
                    "calls": p.metrics.calls.load(Ordering::Relaxed),
                    "errors": p.metrics.errors.load(Ordering::Relaxed),
                    "failures": p.metrics.failures.load(Ordering::Relaxed),
                    "state": state.name(),
                    "quarantined": matches!(state, BreakerState::Quarantined { .. }),
                    "quarantinedUntil": quarantined_until,
                    "quarantines": p.breaker.quarantines(),
                    "warmInstances": p.pool.idle_count(),
                })
            })
            .collect();
        let rejected: Vec<serde_json::Value> = self
            .shared
            .rejected_mut()
            .iter()
            .map(|(path, r)| {
                json!({
                    "file": path.file_name().map(|n| n.to_string_lossy().into_owned()),
                    "error": r.error,
                    "at": unix_ms(r.at),
                })
            })
            .collect();
        json!({
            "tenant": self.shared.tenant,
            "ready": self.ready(),
            "plugins": plugins,
            "rejected": rejected,
        })
    }

    /// Appends the plugin metrics in the Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String) {
        let table = self.shared.registry.snapshot();
        let gauges: Vec<PluginGauges<'_>> = table
            .by_name
            .values()
            .map(|p| PluginGauges {
                name: p.name(),
                quarantined: matches!(p.breaker.state(), BreakerState::Quarantined { .. }),
                warm_instances: p.pool.idle_count(),
            })
            .collect();
        self.shared
            .metrics
            .render_prometheus(out, &self.shared.tenant, &gauges);
    }

    /// True once the initial load is done, until shutdown.
    pub fn ready(&self) -> bool {
        *self.shared.loaded.borrow() && !self.shared.shut_down.load(Ordering::Acquire)
    }

    /// Stops watching and unloads every plugin; calls in flight finish, new
    /// ones get `UnknownEvent`. Idempotent.
    pub fn shutdown(&self) {
        if self.shared.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(
            self.shared
                .watcher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        for plugin in self.shared.registry.clear() {
            plugin.pool.clear();
        }
        tracing::info!(tenant = %self.shared.tenant, "plugin runtime shut down");
    }
}

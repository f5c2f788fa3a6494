//! Reloading the tenants file: after any change in its folder (so an editor's
//! write-and-rename and a swapped symlink, as Kubernetes updates a mounted ConfigMap,
//! count too) whose result is new file content, after a quiet period; and on SIGHUP,
//! whatever the content.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use sha2::{Digest, Sha256};

use super::Tenants;

/// Quiet period after the last change before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The file's content hash (`None`: unreadable), to tell a real change from an event
/// that changed nothing (our own read of the file among them).
fn content(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}

/// Starts the watcher and the SIGHUP listener; both stop when `tenants` is dropped.
pub(super) fn start(tenants: &Arc<Tenants>, file: &Path) -> anyhow::Result<()> {
    let file: PathBuf = if file.is_absolute() {
        file.to_owned()
    } else {
        std::env::current_dir()
            .context("reading the working directory")?
            .join(file)
    };
    let dir = file
        .parent()
        .context("TENANTS_FILE has no parent folder")?
        .to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |_: DebounceEventResult| {
        let _ = tx.send(());
    })
    .context("starting the tenants file watcher")?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    let weak = Arc::downgrade(tenants);
    let mut seen = content(&file);
    tokio::spawn(async move {
        let _keep = debouncer;
        while rx.recv().await.is_some() {
            let now = content(&file);
            if now == seen {
                continue;
            }
            seen = now;
            if !reload(&weak, "file changed").await {
                return;
            }
        }
    });
    let weak = Arc::downgrade(tenants);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("listening for SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if !reload(&weak, "SIGHUP").await {
                return;
            }
        }
    });
    Ok(())
}

/// False once the tenants are gone (the node stopped).
async fn reload(tenants: &Weak<Tenants>, why: &str) -> bool {
    let Some(tenants) = tenants.upgrade() else {
        return false;
    };
    tracing::info!(why, "reloading the tenants file");
    let _ = tenants.reload().await;
    true
}

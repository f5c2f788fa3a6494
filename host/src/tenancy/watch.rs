//! Reloading the tenants file: on every change of the file (its folder is watched, so
//! an editor's write-and-rename counts too) after a quiet period, and on SIGHUP.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::Context;
use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use super::Tenants;

/// Quiet period after the last change before the file is read.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts the watcher and the SIGHUP listener; both stop when `tenants` is dropped.
pub(super) fn start(tenants: &Arc<Tenants>, file: &Path) -> anyhow::Result<()> {
    let file = std::fs::canonicalize(file)
        .with_context(|| format!("TENANTS_FILE {}", file.display()))?;
    let dir = file
        .parent()
        .context("TENANTS_FILE has no parent folder")?
        .to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let name = file.file_name().map(|n| n.to_owned());
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let ours = match result {
            Ok(events) => events
                .iter()
                .flat_map(|e| e.paths.iter())
                .any(|p| p.file_name() == name.as_deref()),
            Err(_) => true,
        };
        if ours {
            let _ = tx.send(());
        }
    })
    .context("starting the tenants file watcher")?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    let weak = Arc::downgrade(tenants);
    tokio::spawn(async move {
        let _keep = debouncer;
        while rx.recv().await.is_some() {
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

//! The reaper: on every node, every `PRESENCE_REAPER_INTERVAL_MS`, remove registrations
//! whose TTL lapsed (their node died or their client went silent) and announce each as
//! `expire`. The store's removal is a compare-and-delete, so a racing heartbeat wins and
//! exactly one node announces each removal, however many reapers run.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::task::JoinHandle;

use super::Presence;
use super::event::PresenceEvent;

/// Most registrations removed per store call; a backlog is drained in several calls.
const BATCH: usize = 256;

/// Starts the reaper; abort the handle to stop it. `reaped` counts the registrations
/// this node's reaper removed (`rtm_presence_reaped`).
pub fn spawn(
    presence: Arc<Presence>,
    interval: Duration,
    lookback: Duration,
    reaped: Counter,
) -> JoinHandle<()> {
    let lookback_ms = u64::try_from(lookback.as_millis()).unwrap_or(u64::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let n = sweep(&presence, lookback_ms).await;
            reaped.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
        }
    })
}

/// One pass: reap until a batch comes back short.
pub async fn sweep(presence: &Presence, lookback_ms: u64) -> usize {
    let mut total = 0;
    loop {
        match presence.store().reap(lookback_ms, BATCH).await {
            Ok(reaped) => {
                let n = reaped.len();
                // An index entry of a registration re-joined as another user is not a
                // registration that expired: only its occupancy moved.
                let expired = reaped.iter().filter(|r| r.announce).count();
                total += expired;
                if expired > 0 {
                    tracing::debug!(count = expired, "reaped lapsed registrations");
                }
                presence
                    .publish(reaped.into_iter().map(PresenceEvent::expired).collect())
                    .await;
                if n < BATCH {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reaper pass failed; retrying next interval");
                return total;
            }
        }
    }
}

//! Webhooks: a tenant's backend is told of presence changes this node made. The presence
//! service hands every change to [`Webhooks::offer`], which turns it into events
//! ([`event`]) and queues them without waiting; one task per tenant batches the queue
//! and [`delivery`] POSTs each batch, signed ([`signature`]), retried with back-off.
//! A full queue drops (and counts) instead of slowing a socket down.

pub mod delivery;
pub mod event;
pub mod settings;
pub mod signature;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;

use crate::metrics::{HookAttempt, HookOutcome};
use crate::presence::event::PresenceEvent;
use crate::tenancy::file::WebhookConfig;
use delivery::Receiver;
use event::{HookEvent, HookKind, events_of};
pub use settings::{Delivery, WebhookSettings};

/// The webhook series of one tenant (registered in its [`crate::metrics::Metrics`]).
#[derive(Clone, Default)]
pub struct HookMetrics {
    /// Events by fate: `delivered`, `dropped` (queue full), `undelivered` (gave up).
    pub events: Family<HookOutcome, Counter>,
    /// POST attempts by result: `ok`, `status` (non-2xx), `timeout`, `error`.
    pub attempts: Family<HookAttempt, Counter>,
    /// Events waiting for a batch.
    pub queued: Gauge,
}

impl HookMetrics {
    fn count(&self, outcome: &'static str, n: usize) {
        self.events
            .get_or_create(&HookOutcome { outcome })
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

/// One tenant's webhooks on this node. Dropping it closes the queue: what is queued is
/// still sent, then the batching task ends.
pub struct Webhooks {
    tenant: String,
    wanted: Vec<HookKind>,
    tx: mpsc::Sender<HookEvent>,
    metrics: HookMetrics,
    /// Drops since the last log line, so a dead receiver logs once per burst, not per event.
    dropped: AtomicU64,
}

impl Webhooks {
    /// Starts the tenant's batching task (on the current Tokio runtime).
    pub fn start(
        tenant: &str,
        cfg: &WebhookConfig,
        delivery: &Delivery,
        client: reqwest::Client,
        metrics: HookMetrics,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(delivery.queue());
        let receiver = Receiver::new(tenant, cfg, delivery.clone(), client, metrics.clone());
        tokio::spawn(delivery::run(rx, receiver));
        let wanted = [
            HookKind::MemberJoined,
            HookKind::MemberLeft,
            HookKind::RoomOccupied,
            HookKind::RoomVacated,
            HookKind::UserJoined,
            HookKind::UserLeft,
        ]
        .into_iter()
        .filter(|k| cfg.events.iter().any(|e| e == k.name()))
        .collect();
        Arc::new(Self {
            tenant: tenant.to_owned(),
            wanted,
            tx,
            metrics,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues the events of one change; never waits.
    pub fn offer(&self, change: &PresenceEvent) {
        for ev in events_of(change, |k| self.wanted.contains(&k)) {
            match self.tx.try_send(ev) {
                Ok(()) => {
                    self.metrics.queued.inc();
                }
                Err(_) => self.drop_one(),
            }
        }
    }

    fn drop_one(&self) {
        self.metrics.count("dropped", 1);
        if self
            .dropped
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(1_000)
        {
            tracing::warn!(
                tenant = %self.tenant,
                dropped = self.dropped.load(Ordering::Relaxed),
                "webhook queue full: events dropped (rtm_webhook_events_total{{outcome=\"dropped\"}})"
            );
        }
    }
}

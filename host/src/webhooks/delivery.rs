//! Getting batches to a receiver: gather up to `batch_max` events or `batch_ms`, POST
//! them signed, and retry a failed POST (non-2xx, no answer within the timeout, no
//! connection) with exponential back-off for up to `retry_for`, the body unchanged so
//! every event keeps its `id`. At most `concurrency` batches of a tenant are in flight.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use super::HookMetrics;
use super::event::HookEvent;
use super::settings::Delivery;
use super::signature;
use crate::metrics::HookAttempt;
use crate::tenancy::file::WebhookConfig;
use crate::tenancy::secret::Secret;

/// `POST { tenant, events }`.
#[derive(Serialize)]
struct Batch<'a> {
    tenant: &'a str,
    events: &'a [HookEvent],
}

/// Where and how one tenant's batches go.
pub struct Receiver {
    tenant: String,
    url: String,
    secret: Secret,
    delivery: Delivery,
    client: reqwest::Client,
    metrics: HookMetrics,
}

/// How one attempt ended.
enum Attempt {
    Delivered,
    Failed(&'static str, String),
}

impl Receiver {
    pub fn new(
        tenant: &str,
        cfg: &WebhookConfig,
        delivery: Delivery,
        client: reqwest::Client,
        metrics: HookMetrics,
    ) -> Self {
        Self {
            tenant: tenant.to_owned(),
            url: cfg.url.clone(),
            secret: cfg.secret.clone(),
            delivery,
            client,
            metrics,
        }
    }

    /// Delivers one batch, retrying until it is taken or the retry window has passed.
    async fn deliver(&self, events: Vec<HookEvent>) {
        let body = match serde_json::to_vec(&Batch {
            tenant: &self.tenant,
            events: &events,
        }) {
            Ok(body) => bytes::Bytes::from(body),
            Err(e) => {
                tracing::error!(tenant = %self.tenant, error = %e, "webhook batch not serializable");
                return;
            }
        };
        let sig = signature::sign(self.secret.expose().as_bytes(), &body);
        let give_up = Instant::now() + self.delivery.retry_for();
        for retry in 0_u32.. {
            let (result, detail) = match self.attempt(&body, &sig).await {
                Attempt::Delivered => {
                    self.record("ok");
                    self.metrics.count("delivered", events.len());
                    return;
                }
                Attempt::Failed(result, detail) => (result, detail),
            };
            self.record(result);
            let wait = self.delivery.backoff(retry);
            if Instant::now() + wait > give_up {
                self.metrics.count("undelivered", events.len());
                tracing::warn!(tenant = %self.tenant, events = events.len(), attempts = retry + 1, last = %detail, "webhook batch undelivered after retrying");
                return;
            }
            tracing::debug!(tenant = %self.tenant, attempt = retry + 1, last = %detail, wait_ms = wait.as_millis(), "webhook attempt failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, body: &bytes::Bytes, sig: &str) -> Attempt {
        let sent = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signature::HEADER, sig)
            .timeout(self.delivery.timeout())
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => Attempt::Delivered,
            Ok(resp) => Attempt::Failed("status", resp.status().to_string()),
            Err(e) if e.is_timeout() => Attempt::Failed("timeout", "no answer in time".into()),
            // The error text has the URL, never the secret (it is only in the signature).
            Err(e) => Attempt::Failed("error", e.to_string()),
        }
    }

    fn record(&self, result: &'static str) {
        self.metrics
            .attempts
            .get_or_create(&HookAttempt { result })
            .inc();
    }
}

/// The tenant's batching loop: ends when its [`super::Webhooks`] is dropped and the
/// queue is drained (batches in flight finish on their own).
pub async fn run(mut rx: mpsc::Receiver<HookEvent>, receiver: Receiver) {
    let receiver = Arc::new(receiver);
    let slots = Arc::new(Semaphore::new(receiver.delivery.concurrency()));
    let max = receiver.delivery.batch_max();
    let window = receiver.delivery.batch_window();
    while let Some(first) = rx.recv().await {
        let batch = gather(&mut rx, first, max, window).await;
        receiver
            .metrics
            .queued
            .dec_by(i64::try_from(batch.len()).unwrap_or(i64::MAX));
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let receiver = receiver.clone();
        tokio::spawn(async move {
            receiver.deliver(batch).await;
            drop(slot);
        });
    }
}

/// `first` and whatever else arrives within `window`, up to `max` events.
async fn gather(
    rx: &mut mpsc::Receiver<HookEvent>,
    first: HookEvent,
    max: usize,
    window: Duration,
) -> Vec<HookEvent> {
    let mut batch = vec![first];
    let until = Instant::now() + window;
    while batch.len() < max {
        match tokio::time::timeout_at(until, rx.recv()).await {
            Ok(Some(ev)) => batch.push(ev),
            Ok(None) | Err(_) => break,
        }
    }
    batch
}

//! The `WEBHOOK_*` settings: the single-tenant host's receiver, and how every tenant's
//! deliveries are batched, timed out, retried and bounded on this node.

use std::time::Duration;

/// Webhooks of the single-tenant host (a tenants file gives each tenant its own
/// `[tenant.webhook]`), and the delivery settings every tenant shares.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Receiver URL of the single-tenant host's webhooks (unset: none are sent).
    #[arg(id = "webhook_url", long = "webhook-url", env = "WEBHOOK_URL")]
    pub url: Option<String>,

    /// HMAC-SHA256 key of the `X-Rtm-Signature` header (required with `WEBHOOK_URL`).
    #[arg(
        id = "webhook_secret",
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,

    /// Comma-separated event types to send (empty: all of them).
    #[arg(
        id = "webhook_events",
        long = "webhook-events",
        env = "WEBHOOK_EVENTS",
        value_delimiter = ','
    )]
    pub events: Vec<String>,

    #[command(flatten)]
    pub delivery: Delivery,
}

/// How a node delivers webhooks, for every tenant.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Events a tenant may have waiting for a batch; one more is dropped (counted in
    /// `rtm_webhook_events_total{outcome="dropped"}`, with a log line) and sockets never wait.
    #[arg(id = "webhook_queue", long = "webhook-queue", env = "WEBHOOK_QUEUE", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub queue: u64,

    /// Most events in one POST.
    #[arg(id = "webhook_batch_max", long = "webhook-batch-max", env = "WEBHOOK_BATCH_MAX", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub batch_max: u64,

    /// Longest an event waits for others to share its POST.
    #[arg(id = "webhook_batch_ms", long = "webhook-batch-ms", env = "WEBHOOK_BATCH_MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub batch_ms: u64,

    /// An attempt with no answer within this long has failed.
    #[arg(id = "webhook_timeout_ms", long = "webhook-timeout-ms", env = "WEBHOOK_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub timeout_ms: u64,

    /// A batch is retried (same body, same event ids) for this long after its first
    /// attempt, then counted as `undelivered`.
    #[arg(id = "webhook_retry_for_ms", long = "webhook-retry-for-ms", env = "WEBHOOK_RETRY_FOR_MS", default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    pub retry_for_ms: u64,

    /// Wait before the first retry; each next one waits twice as long, at most a minute.
    #[arg(id = "webhook_retry_base_ms", long = "webhook-retry-base-ms", env = "WEBHOOK_RETRY_BASE_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub retry_base_ms: u64,

    /// Batches of one tenant in flight at once (a slow receiver holds at most this many
    /// connections; the queue fills behind them).
    #[arg(id = "webhook_concurrency", long = "webhook-concurrency", env = "WEBHOOK_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
}

impl WebhookSettings {
    /// The single tenant's receiver, checked: `None` without `WEBHOOK_URL`.
    pub fn config(&self) -> Result<Option<crate::tenancy::file::WebhookConfig>, String> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let secret = self
            .secret
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or("WEBHOOK_URL is set but WEBHOOK_SECRET is not: batches must be signed")?;
        let events: Vec<String> = self
            .events
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        crate::tenancy::file::WebhookConfig::new(
            url,
            crate::tenancy::secret::Secret::new(secret),
            &events,
        )
        .map(Some)
        .map_err(|e| format!("WEBHOOK_URL / WEBHOOK_EVENTS: {e}"))
    }
}

/// The longest back-off between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl Delivery {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn batch_window(&self) -> Duration {
        Duration::from_millis(self.batch_ms)
    }

    pub fn retry_for(&self) -> Duration {
        Duration::from_millis(self.retry_for_ms)
    }

    /// The wait before retry number `n` (0 is the first retry).
    pub fn backoff(&self, n: u32) -> Duration {
        Duration::from_millis(self.retry_base_ms)
            .saturating_mul(2_u32.saturating_pow(n))
            .min(MAX_BACKOFF)
    }

    pub fn queue(&self) -> usize {
        usize::try_from(self.queue).unwrap_or(usize::MAX)
    }

    pub fn batch_max(&self) -> usize {
        usize::try_from(self.batch_max).unwrap_or(100)
    }

    pub fn concurrency(&self) -> usize {
        usize::try_from(self.concurrency).unwrap_or(4)
    }
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            queue: 10_000,
            batch_max: 100,
            batch_ms: 100,
            timeout_ms: 5_000,
            retry_for_ms: 300_000,
            retry_base_ms: 1_000,
            concurrency: 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let d = Delivery::default();
        let waits: Vec<u64> = (0..8).map(|n| d.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(d.backoff(200), MAX_BACKOFF);
    }
}

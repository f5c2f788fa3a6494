//! Process metrics in Prometheus text format, on a per-app registry (not a global one,
//! so tests can run several hosts in one process).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpOnly {
    pub op: &'static str,
}

/// Every metric the host core records.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<OpLabels, Counter>,
    pub latency: Family<OpOnly, Histogram>,
    pub sockets: Gauge,
    pub reaped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rtm");
        let requests = Family::<OpLabels, Counter>::default();
        let latency = Family::<OpOnly, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        let sockets = Gauge::default();
        let reaped = Counter::default();
        registry.register(
            "requests",
            "Socket.IO requests by operation and result code",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request handling time until the ack",
            latency.clone(),
        );
        registry.register(
            "sockets_connected",
            "Sockets connected to this node",
            sockets.clone(),
        );
        registry.register(
            "presence_reaped",
            "Registrations this node's reaper expired",
            reaped.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            sockets,
            reaped,
        }
    }

    /// Records one handled request.
    pub fn observe(&self, op: &'static str, code: &'static str, took: Duration) {
        self.requests.get_or_create(&OpLabels { op, code }).inc();
        self.latency
            .get_or_create(&OpOnly { op })
            .observe(took.as_secs_f64());
    }

    /// The registry in text exposition format (without the trailing `# EOF`, so other
    /// sections can follow).
    pub fn render(&self, out: &mut String) {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut text, &self.registry).is_ok() {
            out.push_str(&text);
        }
    }
}

//! Host metrics in Prometheus text format: one registry per tenant (every series
//! labelled `tenant`, not a global registry, so tests can run several hosts in one
//! process), merged into one exposition by [`merge_families`].

use std::borrow::Cow;
use std::collections::BTreeMap;
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

/// What became of a node-wide event (an accepted connection, an adapter message).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// Appends `registry` in text exposition format, without its `# EOF`, to `out`: node-wide
/// families rendered after the tenants' on `/metrics`.
pub fn append_registry(registry: &Registry, out: &mut String) {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode_registry(&mut text, registry).is_ok() {
        out.push_str(text.trim_end_matches("# EOF\n"));
    }
}

/// A webhook event's fate.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookOutcome {
    pub outcome: &'static str,
}

/// How a webhook POST ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookAttempt {
    pub result: &'static str,
}

/// Every metric the host core records.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<OpLabels, Counter>,
    pub latency: Family<OpOnly, Histogram>,
    pub sockets: Gauge,
    pub reaped: Counter,
    pub webhooks: crate::webhooks::HookMetrics,
}

impl Metrics {
    /// The metrics of tenant `id`: every series carries `tenant="<id>"`.
    pub fn for_tenant(id: &str) -> Self {
        let label = (Cow::Borrowed("tenant"), Cow::Owned(id.to_owned()));
        let mut registry = Registry::with_prefix_and_labels("rtm", std::iter::once(label));
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
        let webhooks = crate::webhooks::HookMetrics::default();
        registry.register(
            "webhook_events",
            "Webhook events by outcome: delivered, dropped (queue full), undelivered (retries ran out)",
            webhooks.events.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook POST attempts by result: ok, status (non-2xx), timeout, error",
            webhooks.attempts.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Webhook events waiting for a batch",
            webhooks.queued.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            sockets,
            reaped,
            webhooks,
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

/// Merges expositions (one per tenant) so each family appears once, its header first and
/// then every tenant's samples: OpenMetrics forbids a family split in two.
pub fn merge_families(parts: &[String]) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for part in parts {
        let mut current = String::new();
        for line in part.lines().filter(|l| !l.is_empty() && *l != "# EOF") {
            let header = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .or_else(|| line.strip_prefix("# UNIT "));
            if let Some(rest) = header {
                current = rest.split(' ').next().unwrap_or("").to_owned();
                let entry = families.entry(current.clone()).or_insert_with(|| {
                    order.push(current.clone());
                    (Vec::new(), Vec::new())
                });
                if !entry.0.iter().any(|h| h == line) {
                    entry.0.push(line.to_owned());
                }
            } else if let Some(entry) = families.get_mut(&current) {
                entry.1.push(line.to_owned());
            }
        }
    }
    let mut out = String::new();
    for name in order {
        if let Some((headers, samples)) = families.get(&name) {
            for line in headers.iter().chain(samples) {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_two_tenants_merge_under_one_header() {
        let render = |id: &str| {
            let m = Metrics::for_tenant(id);
            m.sockets.inc();
            m.observe("presence:join", "ok", Duration::from_millis(1));
            let mut text = String::new();
            m.render(&mut text);
            text
        };
        let merged = merge_families(&[render("a"), render("b")]);
        assert_eq!(
            merged.matches("# TYPE rtm_sockets_connected gauge").count(),
            1,
            "{merged}"
        );
        assert!(
            merged.contains("rtm_sockets_connected{tenant=\"a\"} 1"),
            "{merged}"
        );
        assert!(
            merged.contains("rtm_sockets_connected{tenant=\"b\"} 1"),
            "{merged}"
        );
        assert!(!merged.contains("# EOF"));
    }
}

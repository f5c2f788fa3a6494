//! Plugin metrics: per-plugin call counters and a latency histogram (kept by
//! plugin name, so they survive reloads), plus runtime-wide load counters,
//! rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

/// How a call ended, for the counters.
#[derive(Debug, Clone, Copy)]
pub(super) enum Outcome {
    Ok,
    /// The plugin returned an expected error (`plugin_error`).
    Error,
    /// The plugin trapped or hit a limit, or was quarantined (`plugin_failed`).
    Failed,
}

/// Counters of one plugin (all versions). Lock-free; shared by every call.
#[derive(Default)]
pub(super) struct PluginMetrics {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub failures: AtomicU64,
    /// Calls refused without running because the plugin was quarantined.
    pub rejected: AtomicU64,
    pub reloads: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    sum_nanos: AtomicU64,
}

impl PluginMetrics {
    pub(super) fn record(&self, outcome: Outcome, took: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Ok => {}
            Outcome::Error => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed => {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(super) fn record_rejected(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

/// A counter family: name, help text, how to read it from a plugin's metrics.
type Counter = (&'static str, &'static str, fn(&PluginMetrics) -> u64);

/// Every plugin's metrics plus runtime-wide counters.
#[derive(Default)]
pub(super) struct Metrics {
    by_plugin: Mutex<BTreeMap<String, Arc<PluginMetrics>>>,
    pub load_failures: AtomicU64,
}

/// Per-plugin gauges that live in the registry, passed in for rendering.
pub(super) struct PluginGauges<'a> {
    pub name: &'a str,
    pub quarantined: bool,
    pub warm_instances: usize,
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub(super) fn for_plugin(&self, name: &str) -> Arc<PluginMetrics> {
        self.by_plugin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    pub(super) fn render_prometheus(
        &self,
        out: &mut String,
        tenant: &str,
        gauges: &[PluginGauges<'_>],
    ) {
        let plugins: Vec<(String, Arc<PluginMetrics>)> = self
            .by_plugin
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let tenant = escape(tenant);
        let counters: [Counter; 5] = [
            (
                "rtm_plugin_calls",
                "Plugin calls (events and hooks).",
                |m| m.calls.load(Ordering::Relaxed),
            ),
            (
                "rtm_plugin_errors",
                "Calls answered with a plugin error.",
                |m| m.errors.load(Ordering::Relaxed),
            ),
            (
                "rtm_plugin_failures",
                "Calls that trapped, hit a limit or were refused by quarantine.",
                |m| m.failures.load(Ordering::Relaxed),
            ),
            (
                "rtm_plugin_rejected",
                "Calls refused because the plugin was quarantined.",
                |m| m.rejected.load(Ordering::Relaxed),
            ),
            (
                "rtm_plugin_reloads",
                "Versions loaded (first load included).",
                |m| m.reloads.load(Ordering::Relaxed),
            ),
        ];
        // OpenMetrics: a counter family is named without `_total`, its samples with it;
        // a family with no samples is left out (parsers merge adjacent empty families).
        for (metric, help, read) in counters.into_iter().filter(|_| !plugins.is_empty()) {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} counter");
            for (name, m) in &plugins {
                let _ = writeln!(
                    out,
                    "{metric}_total{{tenant=\"{tenant}\",plugin=\"{}\"}} {}",
                    escape(name),
                    read(m)
                );
            }
        }

        let metric = "rtm_plugin_call_duration_seconds";
        if !plugins.is_empty() {
            let _ = writeln!(
                out,
                "# HELP {metric} Plugin call latency.\n# TYPE {metric} histogram"
            );
        }
        for (name, m) in &plugins {
            let labels = format!("tenant=\"{tenant}\",plugin=\"{}\"", escape(name));
            let mut cumulative = 0;
            for (le, bucket) in BUCKETS.iter().zip(&m.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(out, "{metric}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let count = m.calls.load(Ordering::Relaxed) - m.rejected.load(Ordering::Relaxed);
            let sum = Duration::from_nanos(m.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
            let _ = writeln!(out, "{metric}_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(out, "{metric}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{metric}_count{{{labels}}} {count}");
        }

        if !gauges.is_empty() {
            let _ = writeln!(
                out,
                "# HELP rtm_plugin_quarantined Whether the loaded plugin is quarantined.\n# TYPE rtm_plugin_quarantined gauge"
            );
            for g in gauges {
                let _ = writeln!(
                    out,
                    "rtm_plugin_quarantined{{tenant=\"{tenant}\",plugin=\"{}\"}} {}",
                    escape(g.name),
                    u8::from(g.quarantined)
                );
            }
            let _ = writeln!(
                out,
                "# HELP rtm_plugin_warm_instances Idle warm instances of the loaded plugin.\n# TYPE rtm_plugin_warm_instances gauge"
            );
            for g in gauges {
                let _ = writeln!(
                    out,
                    "rtm_plugin_warm_instances{{tenant=\"{tenant}\",plugin=\"{}\"}} {}",
                    escape(g.name),
                    g.warm_instances
                );
            }
        }
        self.render_load_failures(out, &tenant);
    }

    fn render_load_failures(&self, out: &mut String, tenant: &str) {
        let _ = writeln!(
            out,
            "# HELP rtm_plugin_load_failures Plugin files refused (compile, manifest, conflict).\n# TYPE rtm_plugin_load_failures counter\nrtm_plugin_load_failures_total{{tenant=\"{tenant}\"}} {}",
            self.load_failures.load(Ordering::Relaxed)
        );
    }
}

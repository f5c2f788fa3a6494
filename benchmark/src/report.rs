//! Turning measurements into what people and machines read: a [`Report`] (serialized
//! for `--json`) and the human table, plus comparison ratios and the sweep summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::latency::Summary;
use crate::measurement::Measurement;

/// One op's outcomes in the window.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub ok: u64,
    pub errors: u64,
    /// None for setup ops (connect, join) of rate scenarios: they ran before the window.
    pub ok_per_s: Option<f64>,
    pub latency: Summary,
}

/// CPU spent in the window, in seconds, in cores, and per primary operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuReport {
    pub server_s: Option<f64>,
    /// Every Redis process: one server, or all masters and replicas of a cluster.
    pub redis_s: Option<f64>,
    /// A Redis Cluster's masters alone (part of `redis_s`; absent for one Redis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_masters_s: Option<f64>,
    pub bench_s: f64,
    /// Average cores busy over the window.
    pub server_cores: Option<f64>,
    pub redis_cores: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_masters_cores: Option<f64>,
    pub bench_cores: f64,
    /// Cores busy with anything else on the machine during the window.
    pub others_cores: Option<f64>,
    pub server_us_per_op: Option<f64>,
    pub redis_us_per_op: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_masters_us_per_op: Option<f64>,
    /// Server plus Redis (all of its processes).
    pub total_us_per_op: Option<f64>,
    pub bench_us_per_op: Option<f64>,
}

/// Memory around idle connections (`connections` scenario).
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    pub server_rss_before_bytes: u64,
    pub server_rss_after_bytes: u64,
    pub server_bytes_per_connection: f64,
    pub redis_rss_before_bytes: Option<u64>,
    pub redis_rss_after_bytes: Option<u64>,
    pub bench_rss_bytes: u64,
    pub connections: u64,
}

/// Everything one measurement says, ready for JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub target: String,
    pub rounds: u32,
    /// Offered rate for rate scenarios, connections for count scenarios.
    pub level: f64,
    pub connections: u64,
    pub rooms: u32,
    pub users_per_room: u32,
    pub window_s: f64,
    pub primary: String,
    pub ops_per_s: f64,
    pub ops: BTreeMap<String, OpReport>,
    pub counters: BTreeMap<String, u64>,
    pub counters_per_s: BTreeMap<String, f64>,
    pub errors: BTreeMap<String, u64>,
    pub error_total: u64,
    pub cpu: CpuReport,
    pub memory: Option<MemoryReport>,
    pub extra: Map<String, Value>,
}

impl Report {
    pub fn from_measurement(m: &Measurement) -> Self {
        let secs = m.window.as_secs_f64().max(1e-9);
        let ops_done = m.primary_ok();
        let per_op = |cpu_s: f64| (ops_done > 0).then(|| cpu_s * 1e6 / ops_done as f64);
        let server_s = m.cpu.server.map(|d| d.as_secs_f64());
        let redis_s = m.cpu.redis.map(|d| d.as_secs_f64());
        let redis_masters_s = m.cpu.redis_masters.map(|d| d.as_secs_f64());
        let bench_s = m.cpu.bench.as_secs_f64();
        let total_s = match (server_s, redis_s) {
            (Some(s), Some(r)) => Some(s + r),
            (Some(s), None) => Some(s),
            (None, r) => r,
        };
        let cpu = CpuReport {
            server_s,
            redis_s,
            redis_masters_s,
            bench_s,
            server_cores: server_s.map(|s| s / secs),
            redis_cores: redis_s.map(|s| s / secs),
            redis_masters_cores: redis_masters_s.map(|s| s / secs),
            bench_cores: bench_s / secs,
            others_cores: m.cpu.others.map(|d| d.as_secs_f64() / secs),
            server_us_per_op: server_s.and_then(per_op),
            redis_us_per_op: redis_s.and_then(per_op),
            redis_masters_us_per_op: redis_masters_s.and_then(per_op),
            total_us_per_op: total_s.and_then(per_op),
            bench_us_per_op: per_op(bench_s),
        };
        let memory = m.memory.map(|mem| MemoryReport {
            server_rss_before_bytes: mem.server_before / u64::from(m.rounds.max(1)),
            server_rss_after_bytes: mem.server_after / u64::from(m.rounds.max(1)),
            server_bytes_per_connection: if mem.connections > 0 {
                (mem.server_after as f64 - mem.server_before as f64) / mem.connections as f64
            } else {
                0.0
            },
            redis_rss_before_bytes: mem.redis_before,
            redis_rss_after_bytes: mem.redis_after,
            bench_rss_bytes: mem.bench_after,
            connections: mem.connections / u64::from(m.rounds.max(1)),
        });
        Self {
            scenario: m.scenario.to_owned(),
            target: m.target.clone(),
            rounds: m.rounds,
            level: m.level,
            connections: m.connections,
            rooms: m.rooms,
            users_per_room: m.users_per_room,
            window_s: secs,
            primary: m.primary.to_owned(),
            ops_per_s: ops_done as f64 / secs,
            ops: m
                .data
                .ops
                .iter()
                .filter(|(_, (ok, err, _))| ok + err > 0)
                .map(|(name, (ok, err, hist))| {
                    (
                        (*name).to_owned(),
                        OpReport {
                            ok: *ok,
                            errors: *err,
                            ok_per_s: (!m.setup_ops.contains(name)).then(|| *ok as f64 / secs),
                            latency: hist.summary(),
                        },
                    )
                })
                .collect(),
            counters: m
                .data
                .counters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            counters_per_s: m
                .data
                .counters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v as f64 / secs))
                .collect(),
            errors: m.data.errors.clone(),
            error_total: m.error_total(),
            cpu,
            memory,
            extra: m.extra.clone(),
        }
    }

    /// The primary op's latency summary.
    pub fn primary_latency(&self) -> Summary {
        self.ops
            .get(&self.primary)
            .map(|o| o.latency)
            .unwrap_or_default()
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let level = match self.scenario.as_str() {
            "connections" | "storm" => format!("connections={}", self.connections),
            _ => format!(
                "rooms={} users/room={} conns={} offered={}/s",
                self.rooms,
                self.users_per_room,
                self.connections,
                thousands(self.level)
            ),
        };
        let _ = writeln!(
            out,
            "== {} on {}  {}  window={:.1}s{}",
            self.scenario,
            self.target,
            level,
            self.window_s,
            if self.rounds > 1 {
                format!(" ({} rounds)", self.rounds)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            out,
            "  {:<14} {:>10} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "latency (ms)", "ok", "errors", "ok/s", "p50", "p90", "p99", "p99.9", "max", "mean"
        );
        // The primary op first, then the rest by name.
        let ordered = self
            .ops
            .iter()
            .filter(|(n, _)| **n == self.primary)
            .chain(self.ops.iter().filter(|(n, _)| **n != self.primary));
        for (name, op) in ordered {
            let l = &op.latency;
            let _ = writeln!(
                out,
                "  {:<14} {:>10} {:>8} {:>10} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                name,
                op.ok,
                op.errors,
                op.ok_per_s.map_or_else(|| "-".to_owned(), thousands),
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.p999_ms,
                l.max_ms,
                l.mean_ms
            );
        }
        if !self.counters.is_empty() {
            let parts: Vec<String> = self
                .counters
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k} {} ({}/s)",
                        thousands(*v as f64),
                        thousands(self.counters_per_s.get(k).copied().unwrap_or(0.0))
                    )
                })
                .collect();
            let _ = writeln!(out, "  counters       {}", parts.join(", "));
        }
        let _ = writeln!(
            out,
            "  errors         {}{}",
            self.error_total,
            if self.errors.is_empty() {
                String::new()
            } else {
                format!(
                    "  ({})",
                    self.errors
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        let c = &self.cpu;
        let _ = writeln!(
            out,
            "  cpu (cores)    server {}  redis {}{}  bench {:.2}  others {}",
            opt(c.server_cores, 2),
            opt(c.redis_cores, 2),
            masters(c.redis_masters_cores, 2),
            c.bench_cores,
            opt(c.others_cores, 2)
        );
        let _ = writeln!(
            out,
            "  cpu us/{:<7} server {}  redis {}{}  server+redis {}  (bench {})",
            short(&self.primary),
            opt(c.server_us_per_op, 1),
            opt(c.redis_us_per_op, 1),
            masters(c.redis_masters_us_per_op, 1),
            opt(c.total_us_per_op, 1),
            opt(c.bench_us_per_op, 1)
        );
        if let Some(m) = &self.memory {
            let _ = writeln!(
                out,
                "  memory         server RSS {:.1} MiB -> {:.1} MiB for {} conns = {:.0} bytes/conn (harness RSS {:.1} MiB)",
                mib(m.server_rss_before_bytes),
                mib(m.server_rss_after_bytes),
                m.connections,
                m.server_bytes_per_connection,
                mib(m.bench_rss_bytes)
            );
        }
        for (k, v) in &self.extra {
            match (k.as_str(), v) {
                (k, _) if k.starts_with("round") || k == "timeline" => {}
                ("redis_commands", Value::Object(commands)) => {
                    for (name, c) in commands {
                        let f = |key: &str| c.get(key).and_then(Value::as_f64).unwrap_or(0.0);
                        let _ = writeln!(
                            out,
                            "  redis {name:<8} {:.3} calls/op  {:.1} us/op  {:.1} us/call",
                            f("calls_per_op"),
                            f("us_per_op"),
                            f("us_per_call")
                        );
                    }
                }
                ("reloads", Value::Array(reloads)) => {
                    for r in reloads {
                        let _ = writeln!(
                            out,
                            "  reload         at {:.1}s -> {}: worst ack in the next 3 s {:.1} ms{}",
                            r.get("at_s").and_then(Value::as_f64).unwrap_or(0.0),
                            r.get("to").and_then(Value::as_str).unwrap_or("?"),
                            r.get("worst_ack_ms_next_3s")
                                .and_then(Value::as_f64)
                                .unwrap_or(0.0),
                            r.get("error")
                                .and_then(Value::as_str)
                                .map_or_else(String::new, |e| format!(" (swap failed: {e})"))
                        );
                    }
                }
                (k, v) => {
                    let _ = writeln!(out, "  {k:<14} {v}");
                }
            }
        }
        out
    }
}

fn short(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
}

/// ` (masters X)` after a cluster's Redis figure; nothing for one Redis.
fn masters(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(String::new, |v| format!(" (masters {v:.digits$})"))
}

/// `12345.6` as `12,346`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Second target over first, for the numbers that matter.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub baseline: String,
    pub other: String,
    pub ops_per_s: Option<f64>,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub server_us_per_op: Option<f64>,
    pub redis_us_per_op: Option<f64>,
    pub total_us_per_op: Option<f64>,
    pub bytes_per_connection: Option<f64>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (a > 0.0 && b.is_finite()).then(|| b / a)
}

impl Ratios {
    pub fn new(a: &Report, b: &Report) -> Self {
        let (la, lb) = (a.primary_latency(), b.primary_latency());
        let both = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => ratio(x, y),
            _ => None,
        };
        Self {
            baseline: a.target.clone(),
            other: b.target.clone(),
            ops_per_s: ratio(a.ops_per_s, b.ops_per_s),
            p50: ratio(la.p50_ms, lb.p50_ms),
            p99: ratio(la.p99_ms, lb.p99_ms),
            server_us_per_op: both(a.cpu.server_us_per_op, b.cpu.server_us_per_op),
            redis_us_per_op: both(a.cpu.redis_us_per_op, b.cpu.redis_us_per_op),
            total_us_per_op: both(a.cpu.total_us_per_op, b.cpu.total_us_per_op),
            bytes_per_connection: both(
                a.memory.as_ref().map(|m| m.server_bytes_per_connection),
                b.memory.as_ref().map(|m| m.server_bytes_per_connection),
            ),
        }
    }

    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}x"));
        format!(
            "== ratio {} / {}\n  ops/s {}  p50 {}  p99 {}  server us/op {}  redis us/op {}  server+redis us/op {}  bytes/conn {}\n",
            self.other,
            self.baseline,
            f(self.ops_per_s),
            f(self.p50),
            f(self.p99),
            f(self.server_us_per_op),
            f(self.redis_us_per_op),
            f(self.total_us_per_op),
            f(self.bytes_per_connection)
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::latency::Latency;
    use crate::measurement::CpuUse;
    use crate::recorder::WindowData;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    fn measurement(redis_ms: u64, masters_ms: Option<u64>) -> Measurement {
        let mut data = WindowData::default();
        data.ops.insert("heartbeat", (1000, 0, Latency::default()));
        Measurement {
            scenario: "presence",
            target: "redis-cluster".into(),
            level: 100.0,
            connections: 10,
            rooms: 1,
            users_per_room: 10,
            window: Duration::from_secs(10),
            primary: "heartbeat",
            setup_ops: &[],
            data,
            cpu: CpuUse {
                server: Some(Duration::from_millis(50)),
                redis: Some(Duration::from_millis(redis_ms)),
                redis_masters: masters_ms.map(Duration::from_millis),
                bench: Duration::from_millis(10),
                others: None,
            },
            memory: None,
            rounds: 1,
            extra: Map::new(),
        }
    }

    #[test]
    fn a_clusters_masters_show_beside_all_its_processes() -> serde_json::Result<()> {
        let cluster = Report::from_measurement(&measurement(30, Some(20)));
        let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 1e-6);
        assert!(near(cluster.cpu.redis_us_per_op, 30.0));
        assert!(near(cluster.cpu.redis_masters_us_per_op, 20.0));
        assert!(near(cluster.cpu.total_us_per_op, 80.0));
        let table = cluster.table();
        assert!(table.contains("redis 30.0 (masters 20.0)"), "{table}");
        assert!(table.contains("server+redis 80.0"), "{table}");
        let single = Report::from_measurement(&measurement(30, None));
        assert!(!single.table().contains("masters"));
        let json = serde_json::to_value(&single)?;
        assert!(json["cpu"].get("redis_masters_s").is_none());
        assert!(near(json["cpu"]["redis_us_per_op"].as_f64(), 30.0));
        let ratio = Ratios::new(&single, &cluster);
        assert!(near(ratio.redis_us_per_op, 1.0));
        Ok(())
    }

    #[test]
    fn masters_show_only_for_a_cluster() {
        assert_eq!(masters(None, 1), "");
        assert_eq!(masters(Some(12.345), 1), " (masters 12.3)");
    }
}

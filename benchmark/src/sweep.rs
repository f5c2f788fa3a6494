//! `--sweep`: raise the level step by step (rate for presence/chat, connections for
//! storm/connections) until the primary p99 crosses `--p99-ms`, errors appear, or the
//! server stops keeping up with the offered rate; the last level that held is the
//! highest sustained one. Rate sweeps reuse one joined population.

use serde::Serialize;

use crate::cli::Scenario;
use crate::report::{Report, thousands};
use crate::scenario::{Env, chat, connections, drive, presence, storm};

/// One level of a sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub level: f64,
    pub held: bool,
    /// Why the level did not hold.
    pub reason: Option<String>,
    pub report: Report,
}

/// The whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub scenario: String,
    pub target: String,
    pub p99_ms: f64,
    pub steps: Vec<Step>,
    /// The highest level that held, if any did.
    pub best: Option<f64>,
}

/// Whether a step held: p99 within the threshold, (almost) no errors, and the server
/// answered (nearly) everything offered.
fn judge(report: &Report, level: f64, p99_ms: f64, rate_based: bool) -> Option<String> {
    let latency = report.primary_latency();
    let done = report.ops.get(&report.primary).map_or(0, |o| o.ok);
    if done == 0 {
        return Some("nothing completed".into());
    }
    if latency.p99_ms > p99_ms {
        return Some(format!("p99 {:.2} ms > {p99_ms} ms", latency.p99_ms));
    }
    if report.error_total as f64 > done as f64 * 0.001 {
        return Some(format!("{} errors", report.error_total));
    }
    if rate_based && report.ops_per_s < level * 0.95 {
        return Some(format!(
            "served {}/s of {}/s offered",
            thousands(report.ops_per_s),
            thousands(level)
        ));
    }
    None
}

pub async fn run(env: &Env) -> anyhow::Result<Sweep> {
    let args = &env.args;
    let rate_based = matches!(args.scenario, Scenario::Presence | Scenario::Chat);
    let mut level = args.sweep_start.unwrap_or_else(|| args.base_level());
    let mut steps: Vec<Step> = Vec::new();
    let presence_session = match args.scenario {
        Scenario::Presence => Some(presence::Session::setup(env).await?),
        _ => None,
    };
    let chat_session = match args.scenario {
        Scenario::Chat => Some(chat::Session::setup(env).await?),
        _ => None,
    };
    for _ in 0..args.sweep_steps {
        if level > args.sweep_max {
            break;
        }
        let m = if let Some(s) = &presence_session {
            s.measure(env, level).await?
        } else if let Some(s) = &chat_session {
            s.measure(env, level, None).await?
        } else {
            let n = level.round().clamp(1.0, f64::from(u32::MAX)) as u32;
            let m = match args.scenario {
                Scenario::Storm => storm::run(env, n).await?,
                _ => connections::run(env, n).await?,
            };
            drive::quiesce(&env.probe, std::time::Duration::from_secs(10)).await;
            m
        };
        let report = Report::from_measurement(&m);
        let reason = judge(&report, level, args.p99_ms, rate_based);
        let held = reason.is_none();
        if !args.quiet {
            eprintln!(
                "[sweep] level {}: {} (p99 {:.2} ms, {}/s, errors {})",
                thousands(level),
                reason.as_deref().unwrap_or("held"),
                report.primary_latency().p99_ms,
                thousands(report.ops_per_s),
                report.error_total
            );
        }
        steps.push(Step {
            level,
            held,
            reason,
            report,
        });
        if !held {
            break;
        }
        level *= args.sweep_factor;
        if !rate_based {
            level = level.round();
        }
    }
    drop(presence_session);
    drop(chat_session);
    drive::quiesce(&env.probe, std::time::Duration::from_secs(10)).await;
    let best = steps.iter().take_while(|s| s.held).map(|s| s.level).last();
    Ok(Sweep {
        scenario: args.scenario.name().to_owned(),
        target: env.target.clone(),
        p99_ms: args.p99_ms,
        steps,
        best,
    })
}

impl Sweep {
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "== sweep {} on {} until p99 > {} ms\n  {:>12} {:>12} {:>9} {:>9} {:>8} {:>12}  verdict\n",
            self.scenario,
            self.target,
            self.p99_ms,
            "level",
            "done/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "cpu us/op"
        );
        for s in &self.steps {
            let l = s.report.primary_latency();
            let _ = writeln!(
                out,
                "  {:>12} {:>12} {:>9.2} {:>9.2} {:>8} {:>12}  {}",
                thousands(s.level),
                thousands(s.report.ops_per_s),
                l.p50_ms,
                l.p99_ms,
                s.report.error_total,
                s.report
                    .cpu
                    .total_us_per_op
                    .map_or_else(|| "n/a".into(), |v| format!("{v:.1}")),
                s.reason.as_deref().unwrap_or("held")
            );
        }
        let _ = writeln!(
            out,
            "  highest sustained: {}",
            self.best.map_or_else(
                || "none (the first level already failed)".to_owned(),
                |b| format!(
                    "{}{}",
                    thousands(b),
                    if matches!(self.scenario.as_str(), "presence" | "chat") {
                        "/s"
                    } else {
                        " connections"
                    }
                )
            )
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Latency;
    use crate::measurement::{CpuUse, Measurement};
    use crate::recorder::WindowData;

    fn report(p99_us: u64, ok: u64, errors: u64) -> Report {
        let mut hist = Latency::new();
        for _ in 0..ok {
            hist.record_us(p99_us);
        }
        let mut data = WindowData::default();
        data.ops.insert("heartbeat", (ok, 0, hist));
        if errors > 0 {
            data.errors.insert("heartbeat:x".into(), errors);
        }
        Report::from_measurement(&Measurement {
            scenario: "presence",
            target: "t".into(),
            level: 100.0,
            connections: 1,
            rooms: 1,
            users_per_room: 1,
            window: std::time::Duration::from_secs(1),
            primary: "heartbeat",
            setup_ops: &[],
            data,
            cpu: CpuUse::default(),
            memory: None,
            rounds: 1,
            extra: Default::default(),
        })
    }

    #[test]
    fn judges_steps() {
        assert_eq!(judge(&report(1000, 100, 0), 100.0, 10.0, true), None);
        assert!(judge(&report(20_000, 100, 0), 100.0, 10.0, true).is_some());
        assert!(judge(&report(1000, 100, 5), 100.0, 10.0, true).is_some());
        assert!(judge(&report(1000, 50, 0), 100.0, 10.0, true).is_some());
        assert_eq!(judge(&report(1000, 50, 0), 100.0, 10.0, false), None);
    }
}

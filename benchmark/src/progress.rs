//! The once-a-second progress line on stderr: what the harness is doing and how fast,
//! so a long run is never a silent one. Stops when the [`Progress`] guard is dropped.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::measurement::Probe;
use crate::recorder::Recorder;
use crate::report::thousands;

/// A running progress line; dropping it stops the line.
pub struct Progress {
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Prints `[label] ...` every second from `rec`'s totals and `probe`'s CPU; `quiet`
    /// makes it a no-op.
    pub fn start(label: String, rec: Arc<Recorder>, probe: Probe, quiet: bool) -> Self {
        if quiet {
            return Self { task: None };
        }
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut last_totals = rec.totals();
            let mut last_cpu = probe.sample();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let totals = rec.totals();
                let cpu = probe.sample();
                let used = cpu.since(&last_cpu);
                let mut parts = Vec::new();
                for ((name, ok, err), (_, last_ok, _)) in totals.ops.iter().zip(&last_totals.ops) {
                    if *ok + *err == 0 || *name == crate::scenario::drive::SCHEDULE_LAG {
                        continue;
                    }
                    parts.push(format!(
                        "{name} {}/s ({} ok, {err} err)",
                        thousands((ok - last_ok) as f64),
                        thousands(*ok as f64)
                    ));
                }
                for ((name, n), (_, last)) in totals.counters.iter().zip(&last_totals.counters) {
                    if *n > 0 {
                        parts.push(format!("{name} {}/s", thousands((n - last) as f64)));
                    }
                }
                let pct = |d: Option<Duration>| {
                    d.map_or_else(
                        || "n/a".to_owned(),
                        |d| format!("{:.0}%", d.as_secs_f64() * 100.0),
                    )
                };
                let line = format!(
                    "[{label} {:>3}s] {} | in-flight {} | cpu server {} redis {} bench {} others {}",
                    started.elapsed().as_secs(),
                    parts.join(", "),
                    totals.in_flight,
                    pct(used.server),
                    pct(used.redis),
                    pct(Some(used.bench)),
                    pct(used.others),
                );
                let _ = writeln!(std::io::stderr(), "{line}");
                last_totals = totals;
                last_cpu = cpu;
            }
        });
        Self { task: Some(task) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

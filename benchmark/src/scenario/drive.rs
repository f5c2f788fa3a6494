//! The measured-window loop shared by rate scenarios: warm up, open the window, offer
//! load at a fixed rate (see [`crate::pacer`]), close the window, then drain in-flight
//! requests so late acks of window operations still count.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::measurement::{CpuUse, Probe};
use crate::pacer::Pacer;
use crate::recorder::Recorder;
use crate::redis_stats::{self, CommandStats};

/// The op under which [`offer`] records how late each op left (see there).
pub const SCHEDULE_LAG: &str = "schedule_lag";

/// When load starts and when the measured window opens and closes.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub load_start: Instant,
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    /// Load from now, `warmup` of it unmeasured, then `duration` measured.
    pub fn plan(warmup: Duration, duration: Duration) -> Self {
        let load_start = Instant::now() + Duration::from_millis(20);
        let start = load_start + warmup;
        Self {
            load_start,
            start,
            end: start + duration,
        }
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// Offers `rate` ops/s from `window.load_start` to `window.end`, calling `issue(i, t_us)`
/// for op `i` sent at `t_us`; returns the CPU spent inside the window.
///
/// Latency is measured from the actual send (`t_us`), not from the intended instant:
/// the sender never waits for acks, so a stalled server cannot hold the load back, and
/// the 1 ms pacing tick does not inflate sub-millisecond latencies. How late the
/// generator sent each op is recorded apart, as `schedule_lag`, so a harness that
/// cannot keep up is visible instead of silently offering less.
pub async fn offer(
    rec: &Recorder,
    probe: &Probe,
    rate: f64,
    window: Window,
    mut issue: impl FnMut(u64, u64),
) -> Offered {
    let mut pacer = Pacer::new(rate, tokio::time::Instant::from_std(window.load_start));
    let mut at_start = None;
    let mut redis_start = None;
    loop {
        let due = pacer.due().await;
        let now = Instant::now();
        if at_start.is_none() && now >= window.start {
            at_start = Some(probe.sample());
            redis_start = probe.redis_commands().await;
        }
        let now_us = rec.us(now);
        for i in due {
            let at = pacer.intended(i).into_std();
            if at >= window.end {
                break;
            }
            rec.sample(SCHEDULE_LAG, now_us, now_us.saturating_sub(rec.us(at)));
            issue(i, now_us);
        }
        if now >= window.end {
            break;
        }
    }
    let at_end = probe.sample();
    let redis = match redis_start {
        Some(start) => probe
            .redis_commands()
            .await
            .map(|end| redis_stats::delta(&end, &start)),
        None => None,
    };
    Offered {
        cpu: at_end.since(&at_start.unwrap_or(at_end)),
        redis,
    }
}

/// What [`offer`] measured besides the recorder's numbers.
pub struct Offered {
    /// CPU spent inside the window.
    pub cpu: CpuUse,
    /// Redis commands run inside the window, when Redis's address is known.
    pub redis: Option<CommandStats>,
}

impl Offered {
    /// The Redis breakdown per primary op, for a report's `extra`: per command, calls
    /// and CPU-µs per op and µs per call.
    pub fn redis_per_op(&self, ops: u64) -> Option<Value> {
        let stats = self.redis.as_ref()?;
        let ops = ops.max(1) as f64;
        let per_command: Map<String, Value> = stats
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    json!({
                        "calls": s.calls,
                        "calls_per_op": s.calls as f64 / ops,
                        "us_per_op": s.usec as f64 / ops,
                        "us_per_call": s.usec as f64 / (s.calls.max(1)) as f64,
                    }),
                )
            })
            .collect();
        Some(Value::Object(per_command))
    }
}

/// Waits until nothing is in flight and `done()` holds, or `timeout` passes.
pub async fn drain(rec: &Recorder, timeout: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if rec.in_flight() <= 0 && done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most `max`) until the server's CPU use falls under 5 % of a core, so the
/// next round does not pay for the previous round's teardown.
pub async fn quiesce(probe: &Probe, max: Duration) {
    let deadline = Instant::now() + max;
    tokio::time::sleep(Duration::from_millis(200)).await;
    while Instant::now() < deadline {
        let before = probe.sample();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let used = probe.sample().since(&before);
        match used.server {
            Some(cpu) if cpu > Duration::from_micros(12_500) => {}
            _ => return,
        }
    }
}

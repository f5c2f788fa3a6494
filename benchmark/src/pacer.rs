//! Open-loop pacing: operation `i` is *intended* at `start + i / rate`, whatever the
//! server is doing, and latency is measured from that intended instant. A slow server
//! therefore shows up as latency instead of quietly lowering the offered load
//! (no coordinated omission), and a late generator shows up too, which is honest.

use std::ops::Range;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// Hands out the operations that have come due, every millisecond (or every op, at
/// rates under 1000/s; at least every 10 ms).
pub struct Pacer {
    rate: f64,
    start: Instant,
    issued: u64,
    tick: Interval,
}

impl Pacer {
    /// `rate` operations per second from `start`.
    pub fn new(rate: f64, start: Instant) -> Self {
        // One tick per op at low rates, at most 1000 ticks a second at high ones.
        let period = Duration::from_secs_f64((1.0 / rate.max(0.001)).clamp(0.001, 0.010));
        let mut tick = tokio::time::interval_at(start, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Self {
            rate: rate.max(0.001),
            start,
            issued: 0,
            tick,
        }
    }

    /// Waits for the next tick and returns the indices now due (possibly empty).
    pub async fn due(&mut self) -> Range<u64> {
        self.tick.tick().await;
        let elapsed = Instant::now().saturating_duration_since(self.start);
        let target = (elapsed.as_secs_f64() * self.rate) as u64;
        let range = self.issued..target.max(self.issued);
        self.issued = range.end;
        range
    }

    /// When operation `i` was meant to leave.
    pub fn intended(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn issues_at_the_rate() {
        let start = Instant::now();
        let mut pacer = Pacer::new(1000.0, start);
        let mut n = 0;
        while Instant::now() < start + Duration::from_millis(500) {
            n += pacer.due().await.count();
        }
        assert!((495..=505).contains(&n), "{n}");
        assert_eq!(pacer.intended(1000), start + Duration::from_secs(1));
    }
}

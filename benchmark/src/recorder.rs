//! What a scenario counts while it runs, shared by every connection task.
//!
//! Each operation is stamped with its *intended* start time (microseconds since the
//! recorder's base instant). Only operations intended inside the measured window count
//! towards the window's histograms and counters, wherever their ack lands, so ramp-up
//! and drain never leak into the numbers. All-time totals are kept beside them for the
//! progress line. Histograms sit behind a `Mutex` each: the lock is held for one
//! `record` call, and with the default single-threaded runtime it is never contended.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::latency::Latency;

/// One kind of request: its latency and outcomes.
#[derive(Default)]
pub struct OpCell {
    hist: Mutex<Latency>,
    ok: AtomicU64,
    err: AtomicU64,
    total_ok: AtomicU64,
    total_err: AtomicU64,
}

/// One counted thing (events received, deliveries, disconnects).
#[derive(Default)]
pub struct CounterCell {
    window: AtomicU64,
    total: AtomicU64,
}

/// Per-100 ms worst latency and count of the primary op, for spotting spikes (reload).
pub struct Timeline {
    bucket_us: u64,
    max_us: Vec<AtomicU64>,
    count: Vec<AtomicU64>,
}

impl Timeline {
    fn new(span: Duration, bucket: Duration) -> Self {
        let bucket_us = u64::try_from(bucket.as_micros()).unwrap_or(100_000).max(1);
        let n = usize::try_from(u64::try_from(span.as_micros()).unwrap_or(0) / bucket_us + 1)
            .unwrap_or(1);
        Self {
            bucket_us,
            max_us: (0..n).map(|_| AtomicU64::new(0)).collect(),
            count: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, offset_us: u64, latency_us: u64) {
        let i = usize::try_from(offset_us / self.bucket_us).unwrap_or(usize::MAX);
        if let (Some(max), Some(count)) = (self.max_us.get(i), self.count.get(i)) {
            max.fetch_max(latency_us, Ordering::Relaxed);
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(bucket start offset, worst latency, count)` for every bucket, in µs.
    pub fn buckets(&self) -> Vec<(u64, u64, u64)> {
        self.max_us
            .iter()
            .zip(&self.count)
            .enumerate()
            .map(|(i, (m, c))| {
                (
                    i as u64 * self.bucket_us,
                    m.load(Ordering::Relaxed),
                    c.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}

/// Live totals, read by the progress line.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub ops: Vec<(&'static str, u64, u64)>,
    pub counters: Vec<(&'static str, u64)>,
    pub in_flight: i64,
}

/// The window's numbers, copied out at the end of a measurement.
#[derive(Clone, Default)]
pub struct WindowData {
    pub ops: BTreeMap<&'static str, (u64, u64, Latency)>,
    pub counters: BTreeMap<&'static str, u64>,
    pub errors: BTreeMap<String, u64>,
}

/// Shared recorder of one scenario session.
pub struct Recorder {
    base: Instant,
    window_start: AtomicU64,
    window_end: AtomicU64,
    ops: BTreeMap<&'static str, OpCell>,
    counters: BTreeMap<&'static str, CounterCell>,
    errors: Mutex<BTreeMap<String, u64>>,
    in_flight: AtomicI64,
    timeline: Mutex<Option<(&'static str, Timeline)>>,
}

impl Recorder {
    /// A recorder for these op and counter names; the window is closed until set.
    pub fn new(ops: &[&'static str], counters: &[&'static str]) -> Self {
        Self {
            base: Instant::now(),
            window_start: AtomicU64::new(u64::MAX),
            window_end: AtomicU64::new(u64::MAX),
            ops: ops.iter().map(|n| (*n, OpCell::default())).collect(),
            counters: counters
                .iter()
                .map(|n| (*n, CounterCell::default()))
                .collect(),
            errors: Mutex::new(BTreeMap::new()),
            in_flight: AtomicI64::new(0),
            timeline: Mutex::new(None),
        }
    }

    /// Now, in µs since the base instant.
    pub fn now_us(&self) -> u64 {
        self.us(Instant::now())
    }

    /// `at`, in µs since the base instant (0 if before it).
    pub fn us(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant `us` µs after the base.
    pub fn instant(&self, us: u64) -> Instant {
        self.base + Duration::from_micros(us)
    }

    /// Clears the window's numbers and opens a new window `[start, end)`; with
    /// `timeline_op`, also tracks that op's per-bucket worst latency.
    pub fn reset_window(&self, start: Instant, end: Instant, timeline_op: Option<&'static str>) {
        // Close first so nothing lands in the numbers while they are cleared.
        self.window_start.store(u64::MAX, Ordering::SeqCst);
        for cell in self.ops.values() {
            lock(&cell.hist).reset();
            cell.ok.store(0, Ordering::Relaxed);
            cell.err.store(0, Ordering::Relaxed);
        }
        for cell in self.counters.values() {
            cell.window.store(0, Ordering::Relaxed);
        }
        lock(&self.errors).clear();
        *lock(&self.timeline) = timeline_op.map(|op| {
            (
                op,
                Timeline::new(
                    end - start + Duration::from_secs(1),
                    Duration::from_millis(100),
                ),
            )
        });
        self.window_end.store(self.us(end), Ordering::SeqCst);
        self.window_start.store(self.us(start), Ordering::SeqCst);
    }

    /// Opens the window over the recorder's whole life (setup phases count everything).
    pub fn open_all(&self) {
        self.window_end.store(u64::MAX, Ordering::SeqCst);
        self.window_start.store(0, Ordering::SeqCst);
    }

    /// Whether an operation intended at `t_us` belongs to the window.
    pub fn in_window(&self, t_us: u64) -> bool {
        t_us >= self.window_start.load(Ordering::Relaxed)
            && t_us < self.window_end.load(Ordering::Relaxed)
    }

    /// The window's start, in µs since the base.
    pub fn window_start_us(&self) -> u64 {
        self.window_start.load(Ordering::Relaxed)
    }

    /// An operation left; pair with [`Self::ok`] or [`Self::err`].
    pub fn issued(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// `op`, intended at `t_us`, succeeded after `latency_us`.
    pub fn ok(&self, op: &'static str, t_us: u64, latency_us: u64) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(cell) = self.ops.get(op) else { return };
        cell.total_ok.fetch_add(1, Ordering::Relaxed);
        if self.in_window(t_us) {
            cell.ok.fetch_add(1, Ordering::Relaxed);
            lock(&cell.hist).record_us(latency_us);
            if let Some((name, timeline)) = lock(&self.timeline).as_ref()
                && *name == op
            {
                timeline.record(t_us.saturating_sub(self.window_start_us()), latency_us);
            }
        }
    }

    /// `op`, intended at `t_us`, failed with `code`.
    pub fn err(&self, op: &'static str, t_us: u64, code: &str) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(cell) = self.ops.get(op) else { return };
        cell.total_err.fetch_add(1, Ordering::Relaxed);
        if self.in_window(t_us) {
            cell.err.fetch_add(1, Ordering::Relaxed);
            *lock(&self.errors)
                .entry(format!("{op}:{code}"))
                .or_default() += 1;
        }
    }

    /// Records a latency sample of `op` that is not a request (e.g. a delivery).
    pub fn sample(&self, op: &'static str, t_us: u64, latency_us: u64) {
        let Some(cell) = self.ops.get(op) else { return };
        cell.total_ok.fetch_add(1, Ordering::Relaxed);
        if self.in_window(t_us) {
            cell.ok.fetch_add(1, Ordering::Relaxed);
            lock(&cell.hist).record_us(latency_us);
        }
    }

    /// Adds `n` to `counter` for something that happened (or was intended) at `t_us`.
    pub fn count(&self, counter: &'static str, t_us: u64, n: u64) {
        let Some(cell) = self.counters.get(counter) else {
            return;
        };
        cell.total.fetch_add(n, Ordering::Relaxed);
        if self.in_window(t_us) {
            cell.window.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The window's count of `counter` so far.
    pub fn window_count(&self, counter: &'static str) -> u64 {
        self.counters
            .get(counter)
            .map_or(0, |c| c.window.load(Ordering::Relaxed))
    }

    /// Successes of `op` in the window so far.
    pub fn window_ok(&self, op: &'static str) -> u64 {
        self.ops.get(op).map_or(0, |c| c.ok.load(Ordering::Relaxed))
    }

    pub fn totals(&self) -> Totals {
        Totals {
            ops: self
                .ops
                .iter()
                .map(|(n, c)| {
                    (
                        *n,
                        c.total_ok.load(Ordering::Relaxed),
                        c.total_err.load(Ordering::Relaxed),
                    )
                })
                .collect(),
            counters: self
                .counters
                .iter()
                .map(|(n, c)| (*n, c.total.load(Ordering::Relaxed)))
                .collect(),
            in_flight: self.in_flight(),
        }
    }

    /// A copy of the window's numbers.
    pub fn window_data(&self) -> WindowData {
        WindowData {
            ops: self
                .ops
                .iter()
                .map(|(n, c)| {
                    (
                        *n,
                        (
                            c.ok.load(Ordering::Relaxed),
                            c.err.load(Ordering::Relaxed),
                            lock(&c.hist).clone(),
                        ),
                    )
                })
                .collect(),
            counters: self
                .counters
                .iter()
                .map(|(n, c)| (*n, c.window.load(Ordering::Relaxed)))
                .collect(),
            errors: lock(&self.errors).clone(),
        }
    }

    /// The timeline's buckets, if one was requested for this window.
    pub fn timeline(&self) -> Vec<(u64, u64, u64)> {
        lock(&self.timeline)
            .as_ref()
            .map(|(_, t)| t.buckets())
            .unwrap_or_default()
    }
}

/// Locks ignoring poison: a panicked recorder call cannot leave a histogram half-written
/// in a way that matters to a benchmark report.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_window_counts() {
        let rec = Recorder::new(&["hb"], &["events"]);
        let start = Instant::now() + Duration::from_millis(10);
        rec.reset_window(start, start + Duration::from_secs(1), None);
        let before = rec.us(start) - 1;
        let inside = rec.us(start) + 5;
        for t in [before, inside] {
            rec.issued();
            rec.ok("hb", t, 100);
            rec.count("events", t, 2);
        }
        rec.issued();
        rec.err("hb", inside, "timeout");
        let data = rec.window_data();
        let (ok, err, hist) = &data.ops["hb"];
        assert_eq!((*ok, *err, hist.count()), (1, 1, 1));
        assert_eq!(data.counters["events"], 2);
        assert_eq!(data.errors["hb:timeout"], 1);
        let totals = rec.totals();
        assert_eq!(totals.ops[0], ("hb", 2, 1));
        assert_eq!(totals.in_flight, 0);
    }
}

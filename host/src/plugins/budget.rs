//! What one plugin call may still spend besides CPU and memory: emits and guest log
//! bytes. Reset when a call starts; shared by the store's host calls and its
//! stdout/stderr pipes, so every path that writes counts against the same budget.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

pub(super) struct CallBudget {
    emits_per_call: u32,
    log_bytes_per_call: usize,
    emits: AtomicU32,
    log_bytes: AtomicUsize,
    /// Log bytes dropped in the current call.
    dropped: AtomicUsize,
}

impl CallBudget {
    pub(super) fn new(emits_per_call: u32, log_bytes_per_call: usize) -> Self {
        Self {
            emits_per_call,
            log_bytes_per_call,
            emits: AtomicU32::new(0),
            log_bytes: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    }

    /// A new call starts with the whole budget.
    pub(super) fn reset(&self) {
        self.emits.store(0, Ordering::Relaxed);
        self.log_bytes.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
    }

    /// Takes one emit; false when the call has made `emits_per_call` already.
    pub(super) fn take_emit(&self) -> bool {
        self.emits.fetch_add(1, Ordering::Relaxed) < self.emits_per_call
    }

    /// How many of `len` log bytes may still be written in this call (the rest is
    /// counted as dropped).
    pub(super) fn take_log(&self, len: usize) -> usize {
        let used = self.log_bytes.fetch_add(len, Ordering::Relaxed);
        let left = self.log_bytes_per_call.saturating_sub(used);
        let allowed = left.min(len);
        if allowed < len {
            self.dropped.fetch_add(len - allowed, Ordering::Relaxed);
        }
        allowed
    }

    /// Log bytes dropped by the call that just ended.
    pub(super) fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(super) fn emits_per_call(&self) -> u32 {
        self.emits_per_call
    }

    pub(super) fn log_bytes_per_call(&self) -> usize {
        self.log_bytes_per_call
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_run_out_and_reset() {
        let b = CallBudget::new(2, 10);
        assert!(b.take_emit() && b.take_emit() && !b.take_emit());
        assert_eq!(b.take_log(6), 6);
        assert_eq!(b.take_log(6), 4);
        assert_eq!(b.take_log(3), 0);
        assert_eq!(b.dropped(), 5);
        b.reset();
        assert!(b.take_emit());
        assert_eq!(b.take_log(10), 10);
        assert_eq!(b.dropped(), 0);
    }
}

//! The circuit breaker of one loaded plugin version.
//!
//! Failures (traps and limit hits, not expected errors) are counted over a
//! sliding window; reaching the threshold opens the breaker for a back-off
//! that doubles on each relapse, up to a maximum. While open, calls fail fast
//! with `plugin_failed` without touching the guest. When the back-off ends the
//! breaker is half-open: calls go through, the first success closes it (and
//! resets the back-off), the first failure reopens it for twice as long.
//! A reload starts a fresh breaker: a new version deserves a new chance.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::config::PluginConfig;

#[derive(Debug, Clone, Copy)]
pub(super) struct BreakerConfig {
    pub failures: u32,
    pub window: Duration,
    pub base: Duration,
    pub max: Duration,
}

impl BreakerConfig {
    pub(super) fn from_config(cfg: &PluginConfig) -> Self {
        BreakerConfig {
            failures: cfg.quarantine_failures.max(1),
            window: Duration::from_millis(cfg.quarantine_window_ms),
            base: Duration::from_millis(cfg.quarantine_base_ms.max(1)),
            max: Duration::from_millis(cfg.quarantine_max_ms.max(cfg.quarantine_base_ms).max(1)),
        }
    }
}

/// What admin and metrics show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BreakerState {
    Active,
    Quarantined {
        until: SystemTime,
    },
    /// Back-off over, waiting for the first call to tell.
    Probing,
}

impl BreakerState {
    pub(super) fn name(&self) -> &'static str {
        match self {
            BreakerState::Active => "active",
            BreakerState::Quarantined { .. } => "quarantined",
            BreakerState::Probing => "probing",
        }
    }
}

/// Refusal of a call while quarantined.
#[derive(Debug, thiserror::Error)]
#[error("plugin is quarantined for another {remaining_ms} ms after repeated failures")]
pub(super) struct Quarantined {
    pub remaining_ms: u64,
}

pub(super) struct Breaker {
    cfg: BreakerConfig,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    failures: VecDeque<Instant>,
    open_until: Option<Instant>,
    /// Consecutive quarantines without a success in between (drives back-off).
    relapses: u32,
    /// Quarantines over this version's life.
    total: u64,
}

impl Inner {
    fn open(&mut self, cfg: &BreakerConfig, now: Instant) {
        let factor = 1u32.checked_shl(self.relapses.min(16)).unwrap_or(u32::MAX);
        let backoff = cfg.base.saturating_mul(factor).min(cfg.max);
        self.open_until = Some(now + backoff);
        self.relapses = self.relapses.saturating_add(1);
        self.total += 1;
        self.failures.clear();
    }
}

impl Breaker {
    pub(super) fn new(cfg: BreakerConfig) -> Self {
        Breaker {
            cfg,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ok when a call may go to the guest.
    pub(super) fn check(&self) -> Result<(), Quarantined> {
        let inner = self.lock();
        match inner.open_until {
            Some(until) => {
                let now = Instant::now();
                if until > now {
                    let remaining = until - now;
                    Err(Quarantined {
                        remaining_ms: u64::try_from(remaining.as_millis())
                            .unwrap_or(u64::MAX)
                            .max(1),
                    })
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    pub(super) fn record_success(&self) {
        let mut inner = self.lock();
        if inner
            .open_until
            .is_some_and(|until| until <= Instant::now())
        {
            inner.open_until = None;
            inner.relapses = 0;
            inner.failures.clear();
        }
    }

    /// Records a failure; true when it opened the breaker.
    pub(super) fn record_failure(&self) -> bool {
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.open_until {
            // Half-open and failed again: straight back to quarantine.
            Some(until) if until <= now => {
                inner.open(&self.cfg, now);
                true
            }
            // Already open (a call that started before it opened).
            Some(_) => false,
            None => {
                let window = self.cfg.window;
                while inner
                    .failures
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > window)
                {
                    inner.failures.pop_front();
                }
                inner.failures.push_back(now);
                if inner.failures.len() >= usize::try_from(self.cfg.failures).unwrap_or(usize::MAX)
                {
                    inner.open(&self.cfg, now);
                    true
                } else {
                    false
                }
            }
        }
    }

    pub(super) fn state(&self) -> BreakerState {
        let inner = self.lock();
        match inner.open_until {
            None => BreakerState::Active,
            Some(until) => {
                let now = Instant::now();
                if until > now {
                    BreakerState::Quarantined {
                        until: SystemTime::now() + (until - now),
                    }
                } else {
                    BreakerState::Probing
                }
            }
        }
    }

    /// Quarantines so far.
    pub(super) fn quarantines(&self) -> u64 {
        self.lock().total
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Breaker, BreakerConfig, BreakerState};

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            window: Duration::from_secs(10),
            base: Duration::from_millis(30),
            max: Duration::from_millis(100),
        })
    }

    #[test]
    fn opens_after_threshold_then_probes_and_closes() {
        let b = breaker();
        assert!(!b.record_failure());
        assert!(!b.record_failure());
        assert!(b.check().is_ok());
        assert!(b.record_failure());
        assert!(b.check().is_err());
        assert!(matches!(b.state(), BreakerState::Quarantined { .. }));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.state(), BreakerState::Probing);
        assert!(b.check().is_ok());
        b.record_success();
        assert_eq!(b.state(), BreakerState::Active);
        assert_eq!(b.quarantines(), 1);
    }

    #[test]
    fn relapse_doubles_backoff() {
        let b = breaker();
        for _ in 0..3 {
            b.record_failure();
        }
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.record_failure(), "a failed probe reopens at once");
        let remaining = b.check().expect_err("open").remaining_ms;
        assert!(
            remaining > 30,
            "second back-off is doubled, got {remaining} ms"
        );
    }
}

//! The warm instance pool of one loaded plugin version.
//!
//! Instantiating a Rust guest costs ~40 µs, a call on a warm instance ~4 µs
//! (DESIGN.md), so idle instances are kept and reused, each by one call at a
//! time. An instance is returned only after a clean call (a result or an
//! expected error); one that trapped or hit a limit is dropped. Instances
//! retire after `max_uses` calls so guest-side leaks stay bounded. When a
//! plugin is reloaded the old version's pool is dropped with the last
//! in-flight call that holds it.

use std::sync::{Mutex, PoisonError};

use super::instance::Instance;

pub(super) struct InstancePool {
    /// Idle instances; the lock is held only to push or pop.
    idle: Mutex<Vec<Instance>>,
    max_idle: usize,
    max_uses: u64,
}

impl InstancePool {
    /// `max_idle == 0` means a fresh instance per call.
    pub(super) fn new(max_idle: usize, max_uses: u64) -> Self {
        InstancePool {
            idle: Mutex::new(Vec::with_capacity(max_idle)),
            max_idle,
            max_uses: max_uses.max(1),
        }
    }

    pub(super) fn take(&self) -> Option<Instance> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Keeps `instance` for a later call, unless the pool is full or it is worn out.
    pub(super) fn put(&self, instance: Instance) {
        if instance.uses >= self.max_uses {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(instance);
        }
    }

    pub(super) fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Drops every idle instance (on unload and shutdown).
    pub(super) fn clear(&self) {
        let drained =
            std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        drop(drained);
    }
}

//! The memory limiter of a plugin store: caps linear memory (and tables) and
//! remembers that it refused a growth, so the failure can say "memory limit"
//! instead of a bare trap.

use wasmtime::ResourceLimiter;

/// Table elements a plugin may have (function tables of big JS/Python guests
/// are large, but not this large).
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

pub(super) struct MemoryLimiter {
    cap_bytes: usize,
    /// Set when a growth past the cap was refused (and trapped).
    pub exceeded: bool,
}

impl MemoryLimiter {
    pub(super) fn new(cap_bytes: usize) -> Self {
        MemoryLimiter {
            cap_bytes,
            exceeded: false,
        }
    }

    pub(super) fn cap_mib(&self) -> usize {
        self.cap_bytes >> 20
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap_bytes {
            self.exceeded = true;
            // An error (not `Ok(false)`) traps at once, instead of letting the
            // guest's allocator fail somewhere less obvious.
            return Err(wasmtime::Error::msg(format!(
                "memory limit of {} MiB exceeded",
                self.cap_mib()
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

//! `rtm:plugin/clock`: the host's wall clock in Unix milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use super::PluginState;
use super::bindings::clock;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(in super::super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl clock::Host for PluginState {
    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(now_ms())
    }
}

//! The host's wall clock.
//!
//! ```no_run
//! let ts: u64 = rtm_guest::clock::now_ms();
//! ```

/// Milliseconds since the Unix epoch, as the host sees them.
pub fn now_ms() -> u64 {
    crate::bindings::rtm::plugin::clock::now_ms()
}

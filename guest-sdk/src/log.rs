//! Logging into the host's tracing output, tagged with the plugin's name.
//!
//! ```no_run
//! rtm_guest::log::info("loaded");
//! rtm_guest::log::warn(&format!("odd payload: {}", 42));
//! ```
//!
//! `println!`/`eprintln!` work too: the host captures stdout and stderr line by line.

use crate::bindings::rtm::plugin::log as raw;

pub use raw::Level;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    raw::log(level, message)
}

/// Logs at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message)
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message)
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message)
}

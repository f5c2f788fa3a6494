//! `rtm:plugin/log`: guest log lines into tracing, tagged with the plugin, within the
//! call's log budget (`log_bytes_per_call`; the call's end notes what was cut).

use super::PluginState;
use super::bindings::log::{self, Level};

/// Longest message logged as is; longer ones are cut (a plugin must not be
/// able to flood the log with one call).
const MAX_LOG_CHARS: usize = 4096;

impl log::Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message: String = message.chars().take(MAX_LOG_CHARS).collect();
        let mut end = self.budget.take_log(message.len());
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        if end > 0 {
            log_line(&self.api.plugin, level, &message[..end]);
        }
        Ok(())
    }
}

fn log_line(plugin: &str, level: Level, message: &str) {
    match level {
        Level::Trace => tracing::trace!(target: "rtm::plugin", plugin, "{message}"),
        Level::Debug => tracing::debug!(target: "rtm::plugin", plugin, "{message}"),
        Level::Info => tracing::info!(target: "rtm::plugin", plugin, "{message}"),
        Level::Warn => tracing::warn!(target: "rtm::plugin", plugin, "{message}"),
        Level::Error => tracing::error!(target: "rtm::plugin", plugin, "{message}"),
    }
}

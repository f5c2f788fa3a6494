//! `rtm:plugin/log`: guest log lines into tracing, tagged with the plugin.

use super::PluginState;
use super::bindings::log::{self, Level};

/// Longest message logged as is; longer ones are cut (a plugin must not be
/// able to flood the log with one call).
const MAX_LOG_CHARS: usize = 4096;

impl log::Host for PluginState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.api.plugin;
        let message: String = message.chars().take(MAX_LOG_CHARS).collect();
        match level {
            Level::Trace => tracing::trace!(target: "rtm::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "rtm::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "rtm::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "rtm::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "rtm::plugin", plugin, "{message}"),
        }
        Ok(())
    }
}

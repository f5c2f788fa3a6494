//! Configuration of the plugin runtime: where plugins live and the limits
//! every plugin call runs under. The host flattens [`PluginConfig`] into its
//! CLI, so every field is a flag with an environment variable and a default.

use std::path::PathBuf;
use std::time::Duration;

/// Plugin runtime settings (`#[command(flatten)]` into the host's CLI).
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// Directory watched for `*.wasm` plugin components (not recursive; files
    /// starting with `.` are ignored). Unset: no plugins.
    #[arg(long = "plugins-dir", env = "PLUGINS_DIR")]
    pub dir: Option<PathBuf>,

    /// Linear memory cap per plugin instance, in MiB.
    #[arg(
        long = "plugin-memory-mb",
        env = "PLUGIN_MEMORY_MB",
        default_value_t = 64
    )]
    pub memory_mb: u64,

    /// CPU budget per call, in ms, enforced with epoch ticks (10 ms
    /// granularity); time the guest spends waiting on host calls barely counts.
    #[arg(long = "plugin-cpu-ms", env = "PLUGIN_CPU_MS", default_value_t = 100)]
    pub cpu_ms: u64,

    /// Wall-clock limit per call, in ms, host calls (kv, emit) included.
    #[arg(
        long = "plugin-timeout-ms",
        env = "PLUGIN_TIMEOUT_MS",
        default_value_t = 1000
    )]
    pub timeout_ms: u64,

    /// Idle warm instances kept per loaded plugin version. Keep it at least
    /// PLUGIN_MAX_CONCURRENCY, or busy periods instantiate (~40 µs for a Rust
    /// guest, ~1 ms for JS/Python) on every call beyond the warm ones.
    #[arg(
        long = "plugin-warm-instances",
        env = "PLUGIN_WARM_INSTANCES",
        default_value_t = 16
    )]
    pub warm_instances: usize,

    /// Calls one plugin version runs at once. Further calls queue for a free
    /// instance for up to PLUGIN_TIMEOUT_MS (then `plugin_failed`, "busy", not
    /// counted towards quarantine) instead of instantiating ever more instances
    /// when calls slow down, e.g. behind a slow Redis.
    #[arg(
        long = "plugin-max-concurrency",
        env = "PLUGIN_MAX_CONCURRENCY",
        default_value_t = 16
    )]
    pub max_concurrency: usize,

    /// Calls served by one warm instance before it is replaced by a fresh one.
    #[arg(
        long = "plugin-instance-max-uses",
        env = "PLUGIN_INSTANCE_MAX_USES",
        default_value_t = 10_000
    )]
    pub instance_max_uses: u64,

    /// Run every event on a fresh instance (strict isolation, ~10x slower calls).
    #[arg(long = "plugin-fresh-instance", env = "PLUGIN_FRESH_INSTANCE")]
    pub fresh_instance: bool,

    /// Failures (traps, limit hits) within the window that quarantine a plugin.
    #[arg(
        long = "plugin-quarantine-failures",
        env = "PLUGIN_QUARANTINE_FAILURES",
        default_value_t = 5
    )]
    pub quarantine_failures: u32,

    /// Window, in ms, over which failures are counted.
    #[arg(
        long = "plugin-quarantine-window-ms",
        env = "PLUGIN_QUARANTINE_WINDOW_MS",
        default_value_t = 30_000
    )]
    pub quarantine_window_ms: u64,

    /// First quarantine length, in ms; doubles on each relapse.
    #[arg(
        long = "plugin-quarantine-base-ms",
        env = "PLUGIN_QUARANTINE_BASE_MS",
        default_value_t = 1_000
    )]
    pub quarantine_base_ms: u64,

    /// Longest quarantine, in ms.
    #[arg(
        long = "plugin-quarantine-max-ms",
        env = "PLUGIN_QUARANTINE_MAX_MS",
        default_value_t = 60_000
    )]
    pub quarantine_max_ms: u64,

    /// Largest custom-event payload accepted, in bytes (serialized JSON).
    #[arg(
        long = "plugin-max-payload-bytes",
        env = "PLUGIN_MAX_PAYLOAD_BYTES",
        default_value_t = 65_536
    )]
    pub max_payload_bytes: usize,

    /// Directory for compiled artifacts (wasmtime's cache, keyed by content
    /// and engine settings). Must be private to this service. Unset:
    /// `$HOME/.cache/rtm-plugins`, or no cache without `HOME`.
    #[arg(long = "plugin-cache-dir", env = "PLUGIN_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Disable the compiled-artifact cache.
    #[arg(long = "plugin-no-cache", env = "PLUGIN_NO_CACHE")]
    pub no_cache: bool,

    /// Quiet period, in ms, before a changed plugin file is reloaded.
    #[arg(
        long = "plugin-reload-debounce-ms",
        env = "PLUGIN_RELOAD_DEBOUNCE_MS",
        default_value_t = 100
    )]
    pub reload_debounce_ms: u64,

    /// Plugin instances (warm or busy) that may exist at once, all plugins together.
    #[arg(
        long = "plugin-max-instances",
        env = "PLUGIN_MAX_INSTANCES",
        default_value_t = 1000
    )]
    pub max_instances: u32,

    /// Bytes (keys plus values) one plugin may keep in its kv namespace; a write beyond
    /// fails `quota_exceeded` and changes nothing.
    #[arg(
        long = "plugin-kv-max-bytes",
        env = "PLUGIN_KV_MAX_BYTES",
        default_value_t = 67_108_864
    )]
    pub kv_max_bytes: u64,

    /// Keys one plugin may keep in its kv namespace (`quota_exceeded` beyond).
    #[arg(
        long = "plugin-kv-max-keys",
        env = "PLUGIN_KV_MAX_KEYS",
        default_value_t = 100_000
    )]
    pub kv_max_keys: u64,

    /// Emits one plugin call may make; the ones beyond fail `quota_exceeded`.
    #[arg(
        long = "plugin-emits-per-call",
        env = "PLUGIN_EMITS_PER_CALL",
        default_value_t = 1_000
    )]
    pub emits_per_call: u32,

    /// Guest log output (log calls, stdout, stderr) kept per call, in bytes; the rest
    /// is dropped and one note says how much.
    #[arg(
        long = "plugin-log-bytes-per-call",
        env = "PLUGIN_LOG_BYTES_PER_CALL",
        default_value_t = 65_536
    )]
    pub log_bytes_per_call: usize,

    /// Largest reply (ack data) a plugin call may return, in bytes; a bigger one is
    /// answered `plugin_failed`.
    #[arg(
        long = "plugin-reply-max-bytes",
        env = "PLUGIN_REPLY_MAX_BYTES",
        default_value_t = 65_536
    )]
    pub reply_max_bytes: usize,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            dir: None,
            memory_mb: 64,
            cpu_ms: 100,
            timeout_ms: 1000,
            warm_instances: 16,
            max_concurrency: 16,
            instance_max_uses: 10_000,
            fresh_instance: false,
            quarantine_failures: 5,
            quarantine_window_ms: 30_000,
            quarantine_base_ms: 1_000,
            quarantine_max_ms: 60_000,
            max_payload_bytes: 65_536,
            cache_dir: None,
            no_cache: false,
            reload_debounce_ms: 100,
            max_instances: 1000,
            kv_max_bytes: 67_108_864,
            kv_max_keys: 100_000,
            emits_per_call: 1_000,
            log_bytes_per_call: 65_536,
            reply_max_bytes: 65_536,
        }
    }
}

impl PluginConfig {
    pub(super) fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.max(1).saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    pub(super) fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// The CPU budget in epoch ticks (see `engine::EPOCH_TICK`), at least one.
    pub(super) fn cpu_ticks(&self) -> u64 {
        let tick = u64::try_from(super::engine::EPOCH_TICK.as_millis())
            .unwrap_or(10)
            .max(1);
        self.cpu_ms.div_ceil(tick).max(1)
    }

    pub(super) fn resolved_cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(|| {
            std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".cache").join("rtm-plugins"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PluginConfig;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        plugins: PluginConfig,
    }

    #[test]
    fn clap_defaults_match_default_impl() {
        let parsed = Cli::parse_from(["rtm"]).plugins;
        let default = PluginConfig::default();
        assert_eq!(parsed.memory_mb, default.memory_mb);
        assert_eq!(parsed.cpu_ms, default.cpu_ms);
        assert_eq!(parsed.timeout_ms, default.timeout_ms);
        assert_eq!(parsed.warm_instances, default.warm_instances);
        assert_eq!(parsed.max_payload_bytes, default.max_payload_bytes);
        assert_eq!(parsed.quarantine_failures, default.quarantine_failures);
        assert_eq!(parsed.max_instances, default.max_instances);
    }
}

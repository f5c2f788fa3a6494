//! Host configuration: every setting is a CLI flag and an environment variable
//! (the names users of the Node.js original already know), validated once at
//! start so a bad value stops the process with a one-line message and exit code 2.

use std::{net::IpAddr, time::Duration};

use clap::{Parser, error::ContextKind, error::ContextValue};

/// Descriptors kept back from client connections when `HTTP_MAX_CONNECTIONS` is unset:
/// Redis connections, plugin files and their compiled-code cache, the watcher, logs.
pub const FD_RESERVE: usize = 256;

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (distributions start
/// processes at a soft 1,024 with a hard limit far above), so every connection the
/// machine allows can be served and the default `HTTP_MAX_CONNECTIONS` follows the real
/// limit. Call it once at start, before anything reads the limit; a refusal changes
/// nothing.
pub fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_some() && limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "cannot raise the open-file limit");
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process, when it has one.
fn open_file_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.and_then(|n| usize::try_from(n).ok())
}

/// `rtm-host`: Socket.IO with native presence and WebAssembly plugins.
#[derive(Debug, Clone, Parser)]
#[command(name = "rtm-host", version, about, long_about = None)]
pub struct Config {
    /// HTTP port for Socket.IO, health and metrics (0 picks a free port).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Address to bind.
    #[arg(long, env = "BIND_ADDR", default_value = "0.0.0.0")]
    pub bind_addr: IpAddr,

    /// Redis URL; when unset the host runs single-node on an embedded in-memory store.
    /// `redis-cluster://host:port?node=host:port&...` names a Redis Cluster.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Seed nodes of a Redis Cluster (`host:port,host:port,...`), instead of or added to
    /// a `redis-cluster://` REDIS_URL.
    #[arg(long, env = "REDIS_CLUSTER_NODES", value_delimiter = ',')]
    pub redis_cluster_nodes: Vec<String>,

    /// Redis command timeout: a request fails with `unavailable` after this long when Redis is down.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub redis_timeout_ms: u64,

    /// `TCP_NODELAY` on every accepted client socket and every Redis connection. Without it
    /// a small write that follows another (an ack right after a broadcast to the same
    /// socket, a pipelined Redis command) waits for the peer's delayed ACK, up to ~40 ms.
    #[arg(long, env = "TCP_NODELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub tcp_nodelay: bool,

    /// Cross-node messages one adapter channel may hold before the adapter reads them
    /// (multi-node only). A burst beyond it, which only a node already too busy to keep
    /// up meets, is dropped and counted in `rtm_adapter_messages_total{outcome="dropped_full"}`
    /// instead of growing without bound; the queue grows block by block, so a deep
    /// bound costs nothing until it is used.
    #[arg(long, env = "ADAPTER_STREAM_BUFFER", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(16..=1_000_000))]
    pub adapter_stream_buffer: u64,

    /// How long a connection may take to send a whole HTTP request head, counted from
    /// when the server starts waiting for one (idle keep-alive time between requests
    /// included, an upgraded WebSocket excluded). Past it the connection is closed, so a
    /// peer that connects and sends nothing, or a head a byte at a time, cannot hold a
    /// descriptor and a task for long. `0`: no limit.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub http_header_timeout_ms: u64,

    /// A write to a client connection that makes no progress this long fails and closes
    /// the connection: a client that stopped reading (its TCP window closed) is let go
    /// instead of pinning its socket, queue and descriptor. `0`: never.
    #[arg(long, env = "HTTP_WRITE_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub http_write_timeout_ms: u64,

    /// TCP connections this node holds open at once, upgraded WebSockets included; one
    /// accepted beyond it is closed at once and counted
    /// (`rtm_http_connections_total{outcome="refused_full"}`). Unset: the process's
    /// open-file limit (raised to its hard limit at start) less [`FD_RESERVE`], so the node refuses cleanly before `accept`
    /// runs out of descriptors that Redis, plugins and the watcher need; `0`: no limit.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<u64>,

    /// What a node does when its adapter subscriber reconnects to a single Redis (multi-node
    /// only): emits other nodes published meanwhile never reach this node's sockets.
    /// `notify` sends them `rtm:gap` `{ ts }` so clients refetch what they keep; `keep`
    /// does nothing.
    #[arg(long, env = "ADAPTER_GAP_POLICY", value_enum, default_value_t = crate::cluster::GapPolicy::Notify)]
    pub adapter_gap_policy: crate::cluster::GapPolicy,

    /// Server API calls this node serves at once (all tenants); one more is answered
    /// `503 unavailable` with `Retry-After: 1` at once, so callers hammering a node whose
    /// Redis is slow cannot pile up requests on it.
    #[arg(long, env = "API_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub api_max_in_flight: u64,

    /// Connections in the Redis command pool.
    #[arg(long, env = "REDIS_POOL_SIZE", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub redis_pool_size: u64,

    /// Registration lifetime without a heartbeat.
    #[arg(long, env = "PRESENCE_TTL_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    pub presence_ttl_ms: u64,

    /// How often every node's reaper looks for lapsed registrations.
    #[arg(long, env = "PRESENCE_REAPER_INTERVAL_MS", default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub presence_reaper_interval_ms: u64,

    /// Age of `lastSeen` after which a registration is stale even if its hash lingers (default 2 x TTL).
    #[arg(long, env = "PRESENCE_REAPER_LOOKBACK_MS", value_parser = clap::value_parser!(u64).range(100..=172_800_000))]
    pub presence_reaper_lookback_ms: Option<u64>,

    /// Largest presence `state`, serialized as JSON, in bytes.
    #[arg(long, env = "PRESENCE_MAX_STATE_BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(2..=1_048_576))]
    pub presence_max_state_bytes: u64,

    /// Longest `roomId` / `userId`, in characters.
    #[arg(long, env = "PRESENCE_MAX_ID_LEN", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub presence_max_id_len: u64,

    /// Prefix of every presence key in Redis.
    #[arg(long, env = "PRESENCE_PREFIX", default_value = "prs:", value_parser = parse_prefix)]
    pub presence_prefix: String,

    /// On Redis: how long the first heartbeat or join of a batch waits for others to share
    /// its script call (0: send at once when a pool connection is free). Longer windows
    /// cost Redis and the host less per request and add up to this much latency.
    #[arg(long, env = "PRESENCE_BATCH_WINDOW_US", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub presence_batch_window_us: u64,

    /// Keep a disconnected socket's registrations this long for a `resume` (0: remove at once).
    #[arg(long, env = "PRESENCE_RESUME_GRACE_MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub presence_resume_grace_ms: u64,

    /// Engine.IO ping interval; with the timeout it bounds how fast a vanished client is noticed.
    #[arg(long, env = "SOCKETIO_PING_INTERVAL_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub socketio_ping_interval_ms: u64,

    /// Engine.IO ping timeout.
    #[arg(long, env = "SOCKETIO_PING_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub socketio_ping_timeout_ms: u64,

    /// Largest Engine.IO packet accepted; larger ones close the transport, so keep it above every
    /// application limit (those answer `payload_too_large` instead).
    #[arg(long, env = "SOCKETIO_MAX_PAYLOAD_BYTES", default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub socketio_max_payload_bytes: u64,

    /// Read buffer of each WebSocket, allocated (and zeroed) per connection up front: memory
    /// per idle connection against read syscalls for big messages. Presence and chat packets
    /// are a few hundred bytes; a larger frame grows that socket's buffer to fit it.
    #[arg(long, env = "SOCKETIO_WS_READ_BUFFER_BYTES", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(256..=1_048_576))]
    pub socketio_ws_read_buffer_bytes: u64,

    /// Packets queued per connection towards a slow client before emits and acks to it fail
    /// (dropped; a dropped ack is logged).
    /// The queue grows block by block (tokio's mpsc), so an idle socket pays nothing for a
    /// deep limit, and a burst of requests from one socket (each an ack, often plus a
    /// broadcast back to it) must fit: 200 chat messages sent back to back queue ~400.
    #[arg(long, env = "SOCKETIO_MAX_BUFFER_PACKETS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub socketio_max_buffer_packets: u64,

    /// Events of one socket that may wait behind the one being handled (a socket's events
    /// run one at a time, in arrival order). While a request waits on a slow Redis or a
    /// slow plugin the client can keep sending; an event beyond this bound is not queued
    /// but answered `rate_limited` at once and does nothing (counted, and logged at most
    /// once a second per socket), so one socket's backlog costs bounded memory.
    #[arg(long, env = "SOCKETIO_MAX_QUEUED_EVENTS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub socketio_max_queued_events: u64,

    /// Log lines buffered for the thread that writes them to stderr. The host never waits
    /// on its log output: with a slow or blocked stderr (a full pipe to a log shipper) the
    /// lines beyond this bound are dropped, and a warning says how many once output flows
    /// again, instead of async workers stalling in a write. Each buffered line is held in
    /// memory until written.
    #[arg(long, env = "LOG_BUFFER_LINES", default_value_t = 65_536, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub log_buffer_lines: u64,

    /// This node's id in registrations and logs (random when unset).
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<String>,

    /// How long a SIGTERM/SIGINT drain may take before the process exits anyway.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub shutdown_timeout_ms: u64,

    /// Bearer token required by `/admin/*` (unset: admin routes are open; bind them privately).
    #[arg(long, env = "ADMIN_TOKEN")]
    pub admin_token: Option<String>,

    /// WebAssembly plugins: directory, sandbox limits, pool, quarantine, cache.
    #[command(flatten)]
    pub plugins: crate::plugins::PluginConfig,

    /// Tenants file (TOML, see `tenants.example.toml`): many tenants, each on namespace
    /// `/<id>` with its own plugins, keys, auth and limits. Unset: one tenant, `default`,
    /// on `/`, configured by the environment. Re-read on change and on SIGHUP.
    #[arg(long, env = "TENANTS_FILE")]
    pub tenants_file: Option<std::path::PathBuf>,

    /// Limits on clients: the single tenant's, and the base under a tenants file.
    #[command(flatten)]
    pub limits: crate::tenancy::limits::ClientLimits,

    /// JWT authentication of the single-tenant host.
    #[command(flatten)]
    pub auth: crate::auth::settings::AuthSettings,

    /// Server API key of the single-tenant host (`Authorization: Bearer <key>` on
    /// `/api/v1/default/*`); unset: the API refuses every call. A tenants file gives each
    /// tenant its own `api_keys`.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Webhooks: the single tenant's receiver, and delivery settings for every tenant.
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookSettings,

    /// Async worker threads; 0 picks one per core. Fewer workers wake each other less
    /// (each wake of a parked sibling is a futex call and a context switch), so at
    /// ordinary rates 1 worker on a 2-core box costs 15-25 % less CPU per request, but it
    /// saturates first (one run at 20,000 heartbeats/s on Redis: p99 170 ms with one
    /// worker, 5 ms with two; benchmark/README.md). Plugin calls run on the workers.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub worker_threads: u64,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

impl Config {
    /// Parses the process arguments and environment; on a bad value prints one line naming
    /// the setting and exits with code 2 (help and version print as usual).
    pub fn from_env_and_args() -> Self {
        match Self::try_parse() {
            Ok(cfg) => match cfg.validate() {
                Ok(()) => cfg,
                Err(msg) => exit_invalid(&msg),
            },
            Err(err) => match err.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
                _ => exit_invalid(&one_line(&err)),
            },
        }
    }

    /// Cross-field checks clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(lookback) = self.presence_reaper_lookback_ms
            && lookback < self.presence_ttl_ms
        {
            return Err(format!(
                "invalid PRESENCE_REAPER_LOOKBACK_MS (--presence-reaper-lookback-ms): {lookback} is below PRESENCE_TTL_MS ({})",
                self.presence_ttl_ms
            ));
        }
        if let Some(id) = &self.node_id
            && !crate::presence::ids::is_valid_id(id, 128)
        {
            return Err(format!(
                "invalid NODE_ID (--node-id): {id:?} must be 1..128 chars of [A-Za-z0-9_.:@-]"
            ));
        }
        self.auth.config()?;
        self.webhooks.config()?;
        if let Some(url) = self.redis()
            && fred::prelude::Config::from_url(&url).is_err()
        {
            return Err(format!(
                "invalid REDIS_URL / REDIS_CLUSTER_NODES: {url:?} is not a Redis URL"
            ));
        }
        Ok(())
    }

    /// The Redis to use, as one URL: `REDIS_URL`, with `REDIS_CLUSTER_NODES` folded in
    /// as a `redis-cluster://` URL's seed nodes. `None`: the embedded memory store.
    pub fn redis(&self) -> Option<String> {
        let nodes: Vec<&str> = self
            .redis_cluster_nodes
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect();
        let Some((first, rest)) = nodes.split_first() else {
            return self.redis_url.clone();
        };
        let mut url = match &self.redis_url {
            Some(u) if u.starts_with("redis-cluster://") || u.starts_with("rediss-cluster://") => {
                let sep = if u.contains('?') { '&' } else { '?' };
                format!("{u}{sep}node={first}")
            }
            _ => format!("redis-cluster://{first}?"),
        };
        for n in rest {
            if !url.ends_with('?') {
                url.push('&');
            }
            url.push_str(&format!("node={n}"));
        }
        Some(url.trim_end_matches('?').to_owned())
    }

    pub fn presence_ttl(&self) -> Duration {
        Duration::from_millis(self.presence_ttl_ms)
    }

    /// What one accepted connection may cost (`HTTP_HEADER_TIMEOUT_MS`,
    /// `HTTP_MAX_CONNECTIONS`, `TCP_NODELAY`).
    pub fn conn_limits(&self) -> crate::connections::ConnLimits {
        let max = match self.http_max_connections {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => open_file_limit().map_or(0, |n| n.saturating_sub(FD_RESERVE).max(1)),
        };
        crate::connections::ConnLimits {
            header_timeout: (self.http_header_timeout_ms > 0)
                .then(|| Duration::from_millis(self.http_header_timeout_ms)),
            write_timeout: (self.http_write_timeout_ms > 0)
                .then(|| Duration::from_millis(self.http_write_timeout_ms)),
            max,
            nodelay: self.tcp_nodelay,
        }
    }

    /// The worker count `WORKER_THREADS` asks for (0: one per core).
    pub fn worker_count(&self) -> usize {
        match usize::try_from(self.worker_threads) {
            Ok(n) if n > 0 => n,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    pub fn reaper_lookback(&self) -> Duration {
        Duration::from_millis(
            self.presence_reaper_lookback_ms
                .unwrap_or(self.presence_ttl_ms.saturating_mul(2)),
        )
    }
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 64 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be 1..64 characters without whitespace".into());
    }
    Ok(s.to_owned())
}

/// Renders a clap error as `invalid ENV (--flag): value: reason`.
fn one_line(err: &clap::Error) -> String {
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let value = match err.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(s)) => format!("{s:?}"),
        _ => String::new(),
    };
    let flag = arg.split_whitespace().next().unwrap_or("").to_owned();
    let env = flag
        .trim_start_matches("--")
        .replace('-', "_")
        .to_uppercase();
    let reason = err
        .to_string()
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_owned();
    if flag.is_empty() {
        format!("invalid configuration: {reason}")
    } else {
        format!("invalid {env} ({flag}): {value}: {reason}")
    }
}

fn exit_invalid(msg: &str) -> ! {
    eprintln!("rtm-host: {msg}");
    std::process::exit(2);
}

/// Whether `key` is an environment variable the host reads: the prefixes of the settings
/// table plus the single names. Test and benchmark harnesses remove these from the
/// environment of every host they spawn, so a `REDIS_URL` in the shell can never point
/// a test host at a shared Redis.
pub fn is_host_setting(key: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "REDIS_",
        "HTTP_",
        "ADAPTER_",
        "PRESENCE_",
        "PLUGIN_",
        "SOCKETIO_",
        "LIMIT_",
        "AUTH_",
        "WEBHOOK_",
    ];
    const NAMES: [&str; 12] = [
        "PORT",
        "TCP_NODELAY",
        "WORKER_THREADS",
        "BIND_ADDR",
        "NODE_ID",
        "ADMIN_TOKEN",
        "PLUGINS_DIR",
        "SHUTDOWN_TIMEOUT_MS",
        "LOG_JSON",
        "LOG_BUFFER_LINES",
        "TENANTS_FILE",
        "API_KEY",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || NAMES.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two settings with one id would make clap panic at start in debug builds (and
    /// shadow one another in release).
    #[test]
    fn every_setting_has_its_own_name() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }

    #[test]
    fn cluster_nodes_become_one_cluster_url() {
        let parse = |args: &[&str]| Config::try_parse_from(args).expect("parses");
        assert_eq!(parse(&["rtm-host"]).redis(), None);
        assert_eq!(
            parse(&["rtm-host", "--redis-url", "redis://r:1"])
                .redis()
                .as_deref(),
            Some("redis://r:1")
        );
        let nodes = parse(&["rtm-host", "--redis-cluster-nodes", "a:1,b:2, c:3"]);
        assert_eq!(
            nodes.redis().as_deref(),
            Some("redis-cluster://a:1?node=b:2&node=c:3")
        );
        assert!(nodes.validate().is_ok());
        let both = parse(&[
            "rtm-host",
            "--redis-url",
            "redis-cluster://a:1",
            "--redis-cluster-nodes",
            "b:2",
        ]);
        assert_eq!(
            both.redis().as_deref(),
            Some("redis-cluster://a:1?node=b:2")
        );
        let config = fred::prelude::Config::from_url(&both.redis().unwrap_or_default());
        assert!(config.is_ok_and(|c| c.server.is_clustered()));
    }

    #[test]
    fn defaults_match_the_original() {
        let cfg = Config::try_parse_from(["rtm-host"]).expect("defaults parse");
        assert_eq!(cfg.port, 3000);
        assert_eq!(cfg.presence_ttl_ms, 30_000);
        assert_eq!(cfg.presence_reaper_interval_ms, 3_000);
        assert_eq!(cfg.reaper_lookback(), Duration::from_millis(60_000));
        assert_eq!(cfg.presence_max_state_bytes, 4096);
        assert_eq!(cfg.presence_prefix, "prs:");
        assert_eq!(cfg.socketio_max_queued_events, 256);
        assert_eq!(cfg.log_buffer_lines, 65_536);
        assert!(Config::try_parse_from(["rtm-host", "--socketio-max-queued-events", "0"]).is_err());
    }

    #[test]
    fn nodelay_worker_threads_and_batch_window_parse() {
        let cfg = Config::try_parse_from(["rtm-host"]).expect("defaults parse");
        assert!(cfg.tcp_nodelay);
        assert_eq!(cfg.presence_batch_window_us, 1_000);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(cfg.worker_count(), cores);
        let cfg = Config::try_parse_from([
            "rtm-host",
            "--tcp-nodelay",
            "false",
            "--worker-threads",
            "3",
            "--presence-batch-window-us",
            "0",
        ])
        .expect("explicit values parse");
        assert!(!cfg.tcp_nodelay);
        assert_eq!(cfg.worker_count(), 3);
        assert_eq!(cfg.presence_batch_window_us, 0);
        assert!(
            Config::try_parse_from(["rtm-host", "--presence-batch-window-us", "100001"]).is_err()
        );
    }

    #[test]
    fn bad_value_names_the_setting_on_one_line() {
        let err = Config::try_parse_from(["rtm-host", "--port", "abc"]).expect_err("bad port");
        let line = one_line(&err);
        assert!(line.starts_with("invalid PORT (--port): \"abc\""), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn lookback_below_ttl_is_refused() {
        let cfg = Config::try_parse_from([
            "rtm-host",
            "--presence-ttl-ms",
            "5000",
            "--presence-reaper-lookback-ms",
            "1000",
        ])
        .expect("parses");
        let msg = cfg.validate().expect_err("refused");
        assert!(msg.contains("PRESENCE_REAPER_LOOKBACK_MS"), "{msg}");
    }
}

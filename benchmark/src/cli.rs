//! Command line and environment: every knob is a flag and most have an environment
//! variable (`TARGET_URL`, `ROOM_COUNT`, `HEARTBEATS_PER_SEC`, `USERS_PER_ROOM`,
//! `DURATION`, ...), so CI and humans drive the same binary the same way.

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::tenants::Tenancy;

/// Rooms of the rate scenarios unless `--room-count` says otherwise.
pub const DEFAULT_ROOMS: u32 = 100;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// rooms x users join, then heartbeats at a total rate (a share patching state).
    Presence,
    /// rooms x users join, then `chat:message` at a total rate through the chat plugin.
    Chat,
    /// N idle joined connections: server memory per connection.
    Connections,
    /// N clients connect and join at once: time until all are joined.
    Storm,
    /// Chat traffic while the chat plugin file is replaced: lost events and latency spike.
    Reload,
    /// rooms x users join (spread over the target's nodes), then the same fan-out two
    /// ways, a window each: `chat:message` through the chat plugin, and publishes
    /// through the Server API.
    Fanout,
    /// Three nodes on one Redis, members chatting and heartbeating for --duration
    /// (default 10 min) while nodes are killed, Redis is paused and restarted and a node
    /// is cut off from Redis; prints every invariant's checks and violations.
    Soak,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Presence => "presence",
            Scenario::Chat => "chat",
            Scenario::Connections => "connections",
            Scenario::Storm => "storm",
            Scenario::Reload => "reload",
            Scenario::Fanout => "fanout",
            Scenario::Soak => "soak",
        }
    }

    /// Whether the server needs the chat plugin for this scenario.
    pub fn needs_chat(self) -> bool {
        matches!(self, Scenario::Chat | Scenario::Reload | Scenario::Fanout)
    }
}

/// The paths `fanout` measures, each in its own window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// Both, one after the other on the same joined clients (the order alternates by
    /// round), so the two can be compared within one invocation.
    Both,
    /// Members emit `chat:message`; the chat plugin fans it out.
    Plugin,
    /// The harness publishes `chat:message` through the Server API.
    Api,
}

impl Via {
    pub fn plugin(self) -> bool {
        matches!(self, Via::Both | Via::Plugin)
    }

    pub fn api(self) -> bool {
        matches!(self, Via::Both | Via::Api)
    }
}

/// Most nodes a `redis-nodes:<N>` or `redis-cluster-nodes:<N>` spawn spec may start.
pub const MAX_NODES: u32 = 16;

/// Most tenants a `*-tenants:<N>` spawn spec or `--tenants` may ask for.
pub const MAX_TENANTS: u32 = 1000;

/// A server the harness starts itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnKind {
    /// `rtm-host` on its embedded memory store.
    Memory,
    /// `rtm-host` on a private `redis-server`.
    Redis,
    /// Any server command (given `PORT`, `BIND_ADDR` and `REDIS_URL` of a private Redis),
    /// e.g. `node:node dist/server.js`.
    Node(String),
    /// The Node.js reference implementation in `benchmark/peers/node/` on a private
    /// `redis-server` (its packages are installed on first use).
    NodePeer,
    /// `rtm-host` with a generated tenants file (`memory-tenants:<N>[:<secret>]`,
    /// `redis-tenants:<N>[:<secret>]`); its clients connect to the tenants' namespaces.
    Tenants(TenantsSpawn),
    /// `redis-nodes:<N>`: N `rtm-host` nodes on one private `redis-server`, one cluster
    /// (the Redis adapter carries every room emit to the other nodes); the clients of a
    /// room spread over the nodes.
    Nodes(u32),
    /// `redis-cluster` (1 node) or `redis-cluster-nodes:<N>`: N `rtm-host` nodes on a
    /// private Redis Cluster of 3 masters and 3 replicas (`REDIS_URL=redis-cluster://`:
    /// cluster clients, hash-tagged keys, sharded pub/sub); a room's clients spread over
    /// the nodes as with `redis-nodes:<N>`.
    Cluster(u32),
}

/// The presence store of a spawned `rtm-host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Memory,
    Redis,
}

impl Store {
    pub fn label(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Redis => "redis",
        }
    }
}

/// A multi-tenant `rtm-host`: tenants `t0..t{N-1}` on namespaces `/t0..`, each with
/// HS256 auth when a secret is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantsSpawn {
    pub store: Store,
    pub tenants: u32,
    pub hs256_secret: Option<String>,
}

impl TenantsSpawn {
    /// Parses `<N>[:<secret>]` (the secret may contain `:`).
    fn parse(store: Store, spec: &str) -> Result<Self, String> {
        let (count, secret) = match spec.split_once(':') {
            Some((count, secret)) => (count, Some(secret)),
            None => (spec, None),
        };
        let tenants = count
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_TENANTS).contains(n))
            .ok_or_else(|| format!("tenants must be 1..={MAX_TENANTS}, got {count:?}"))?;
        if secret == Some("") {
            return Err("the HS256 secret after the tenant count is empty".into());
        }
        Ok(Self {
            store,
            tenants,
            hs256_secret: secret.map(str::to_owned),
        })
    }
}

impl FromStr for SpawnKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "memory" => return Ok(Self::Memory),
            "redis" => return Ok(Self::Redis),
            "redis-cluster" => return Ok(Self::Cluster(1)),
            "node-peer" => return Ok(Self::NodePeer),
            _ => {}
        }
        if let Some(spec) = s.strip_prefix("memory-tenants:") {
            return TenantsSpawn::parse(Store::Memory, spec).map(Self::Tenants);
        }
        if let Some(spec) = s.strip_prefix("redis-tenants:") {
            return TenantsSpawn::parse(Store::Redis, spec).map(Self::Tenants);
        }
        if let Some(count) = s.strip_prefix("redis-nodes:") {
            return parse_nodes(count).map(Self::Nodes);
        }
        if let Some(count) = s.strip_prefix("redis-cluster-nodes:") {
            return parse_nodes(count).map(Self::Cluster);
        }
        match s.strip_prefix("node:") {
            Some(cmd) if !cmd.trim().is_empty() => Ok(Self::Node(cmd.to_owned())),
            _ => Err(format!(
                "expected memory, redis, redis-nodes:<N>, redis-cluster, redis-cluster-nodes:<N>, node-peer, node:<command>, memory-tenants:<N>[:<secret>] or redis-tenants:<N>[:<secret>], got {s:?}"
            )),
        }
    }
}

/// The `<N>` of `redis-nodes:<N>` / `redis-cluster-nodes:<N>`.
fn parse_nodes(count: &str) -> Result<u32, String> {
    count
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_NODES).contains(n))
        .ok_or_else(|| format!("nodes must be 1..={MAX_NODES}, got {count:?}"))
}

impl SpawnKind {
    /// Short name in reports; a multi-tenant host's tenants and auth are added by the
    /// target (see [`Tenancy::describe`]).
    pub fn label(&self) -> Cow<'static, str> {
        match self {
            SpawnKind::Memory => "memory".into(),
            SpawnKind::Redis => "redis".into(),
            SpawnKind::Node(_) => "node".into(),
            SpawnKind::NodePeer => "node-peer".into(),
            SpawnKind::Tenants(spec) => spec.store.label().into(),
            SpawnKind::Nodes(n) => format!("redis, {n} nodes").into(),
            SpawnKind::Cluster(1) => "redis-cluster".into(),
            SpawnKind::Cluster(n) => format!("redis-cluster, {n} nodes").into(),
        }
    }

    /// Whether the server is an `rtm-host` with the Server API (the Node reference has
    /// none; a `node:<command>` may be anything, so it is given the key and trusted).
    pub fn has_server_api(&self) -> bool {
        !matches!(self, SpawnKind::NodePeer)
    }
}

/// Parses `10`, `10s`, `500ms`, `2m` or `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s or m)")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// `rtm-bench`: load scenarios against rtm (or another Socket.IO server), with HDR
/// percentiles and the server's CPU per operation.
#[derive(Debug, Clone, Parser)]
#[command(name = "rtm-bench", version, about, long_about = None)]
pub struct Args {
    /// Scenario to run.
    #[arg(value_enum, env = "BENCH_SCENARIO")]
    pub scenario: Scenario,

    // --- target -----------------------------------------------------------------
    /// Server to load (ignored with --spawn).
    #[arg(long, env = "TARGET_URL", default_value = "http://127.0.0.1:3000")]
    pub target_url: String,

    /// Start a fresh server for this run: memory, redis (rtm-host + private redis-server),
    /// redis-nodes:<N> (N rtm-hosts on one private redis-server, clients spread over them),
    /// redis-cluster / redis-cluster-nodes:<N> (1 or N rtm-hosts on a private Redis
    /// Cluster of 3 masters + 3 replicas; Redis CPU is all six processes'),
    /// node-peer (the Node.js reference in benchmark/peers/node + private redis-server),
    /// node:<command>, or memory-tenants:<N>[:<secret>] / redis-tenants:<N>[:<secret>]
    /// (rtm-host with a generated tenants file: tenants t0..t<N-1>, HS256 auth with the
    /// secret; its clients connect to /t0.. with tokens).
    #[arg(long, env = "BENCH_SPAWN")]
    pub spawn: Option<SpawnKind>,

    /// PID of a server you started, to measure its CPU and memory.
    #[arg(long, env = "SERVER_PID")]
    pub server_pid: Option<u32>,

    /// PID of the Redis your server uses, to measure its CPU.
    #[arg(long, env = "REDIS_PID")]
    pub redis_pid: Option<u32>,

    /// The Redis your server uses, host:port, to break its time down by command
    /// (`INFO commandstats`); known already for spawned targets.
    #[arg(long, env = "BENCH_REDIS_ADDR")]
    pub redis_addr: Option<std::net::SocketAddr>,

    /// Second target: a URL, run in alternating rounds with the first.
    #[arg(long, env = "COMPARE_URL", conflicts_with = "compare_spawn")]
    pub compare: Option<String>,

    /// Second target started by the harness: memory, redis, redis-nodes:<N>,
    /// redis-cluster, redis-cluster-nodes:<N>, node-peer, node:<command>,
    /// memory-tenants:<N>[:<secret>] or redis-tenants:<N>[:<secret>].
    #[arg(long, env = "COMPARE_SPAWN")]
    pub compare_spawn: Option<SpawnKind>,

    /// First target's clients: spread over N tenants' namespaces /t0../t<N-1> (by room,
    /// so a room stays in one tenant) instead of --namespace. A *-tenants spawn spec
    /// sets this itself.
    #[arg(long, env = "BENCH_TENANTS", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TENANTS)))]
    pub tenants: Option<u32>,

    /// First target's clients: connect with `auth: { token }`, an HS256 JWT signed with
    /// this secret (`sub` = the client's user id, `exp` = now + 1 h). A *-tenants spawn
    /// spec with a secret sets this itself.
    #[arg(long, env = "BENCH_HS256_SECRET", hide_env_values = true)]
    pub hs256_secret: Option<String>,

    /// --tenants for the second target (--compare or a --compare-spawn that is not a
    /// *-tenants spec).
    #[arg(long, env = "COMPARE_TENANTS", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_TENANTS)))]
    pub compare_tenants: Option<u32>,

    /// --hs256-secret for the second target.
    #[arg(long, env = "COMPARE_HS256_SECRET", hide_env_values = true)]
    pub compare_hs256_secret: Option<String>,

    /// PID of the --compare server.
    #[arg(long, env = "COMPARE_SERVER_PID")]
    pub compare_server_pid: Option<u32>,

    /// PID of the --compare server's Redis.
    #[arg(long, env = "COMPARE_REDIS_PID")]
    pub compare_redis_pid: Option<u32>,

    /// Rounds per target (alternating between targets with --compare).
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,

    /// `rtm-host` binary for --spawn.
    #[arg(long, env = "HOST_BIN", default_value = "target/release/rtm-host")]
    pub host_bin: PathBuf,

    /// `redis-server` binary for --spawn redis.
    #[arg(long, env = "REDIS_BIN", default_value = "redis-server")]
    pub redis_bin: String,

    /// Extra environment for spawned servers, KEY=VALUE (repeatable).
    #[arg(long = "host-env", value_parser = parse_key_value)]
    pub host_env: Vec<(String, String)>,

    /// Engine.IO path on the server.
    #[arg(long, env = "BENCH_SOCKETIO_PATH", default_value = "/socket.io/")]
    pub path: String,

    /// Socket.IO namespace.
    #[arg(long, env = "BENCH_NAMESPACE", default_value = "/")]
    pub namespace: String,

    // --- population ---------------------------------------------------------------
    /// Rooms (default: 100 for presence/chat/reload; connections / users-per-room for
    /// connections/storm, so rooms keep their size as the population grows).
    #[arg(long, env = "ROOM_COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub room_count: Option<u32>,

    /// Users (one connection each) per room.
    #[arg(long, env = "USERS_PER_ROOM", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub users_per_room: u32,

    /// Connections for `connections` and `storm` (default: rooms x users, 1,000).
    #[arg(long, env = "CONNECTIONS")]
    pub connections: Option<u32>,

    /// Connections opened (and joined) at once while setting up.
    #[arg(long, env = "CONNECT_CONCURRENCY", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,

    /// `connections`/`storm`: connect only, no `presence:join` (to tell the transport's
    /// share of the cost from presence's).
    #[arg(long, env = "SKIP_JOIN")]
    pub skip_join: bool,

    /// `storm` only: cap on simultaneous handshakes (default: all at once).
    #[arg(long, env = "STORM_CONCURRENCY")]
    pub storm_concurrency: Option<u32>,

    /// Loopback source addresses to spread connections over (127.0.0.1..N).
    #[arg(long, env = "SOURCE_ADDRS", default_value_t = 8)]
    pub source_addrs: usize,

    // --- load ---------------------------------------------------------------------
    /// `presence`: heartbeats per second, all clients together.
    #[arg(long, env = "HEARTBEATS_PER_SEC", default_value_t = 5000.0)]
    pub heartbeats_per_sec: f64,

    /// `presence`: share of heartbeats that carry `patchState` (0..1).
    #[arg(long, env = "PATCH_SHARE", default_value_t = 0.1)]
    pub patch_share: f64,

    /// `chat`/`reload`/`fanout`: messages per second, all clients together (`fanout`:
    /// the same total rate on each path).
    #[arg(long, env = "MESSAGES_PER_SEC", default_value_t = 1000.0)]
    pub messages_per_sec: f64,

    /// `chat`/`reload`/`fanout`: message text length in bytes (timestamp included).
    #[arg(long, env = "TEXT_BYTES", default_value_t = 64)]
    pub text_bytes: usize,

    /// Measured window.
    #[arg(long, env = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Load before the window opens (excluded from the numbers).
    #[arg(long, env = "WARMUP", default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// An ack not received after this long counts as an error.
    #[arg(long, env = "ACK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub ack_timeout: Duration,

    /// A connection not established (and joined) after this long counts as an error.
    #[arg(long, env = "CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// `connections`: wait after the last join before reading the server's memory.
    #[arg(long, env = "SETTLE", default_value = "3s", value_parser = parse_duration)]
    pub settle: Duration,

    // --- plugins ------------------------------------------------------------------
    /// Chat plugin (v1) installed into spawned servers' PLUGINS_DIR for chat/reload.
    #[arg(
        long,
        env = "CHAT_PLUGIN",
        default_value = "target/wasm-guests/artifacts/chat-v1.wasm"
    )]
    pub chat_plugin: PathBuf,

    /// `reload`: a second build of the chat plugin to swap in (alternates with v1);
    /// `make guests` builds both.
    #[arg(
        long,
        env = "CHAT_PLUGIN_V2",
        default_value = "target/wasm-guests/artifacts/chat-v2.wasm"
    )]
    pub chat_plugin_v2: PathBuf,

    /// `reload` against a server you started: its PLUGINS_DIR.
    #[arg(long, env = "BENCH_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,

    /// File name of the chat plugin inside PLUGINS_DIR.
    #[arg(long, env = "CHAT_PLUGIN_FILE", default_value = "chat.wasm")]
    pub chat_plugin_file: String,

    /// `reload`: how many times the plugin is replaced during the window.
    #[arg(long, env = "RELOADS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub reloads: u32,

    // --- Server API -----------------------------------------------------------------
    /// `fanout`: which paths to measure, each in its own window on the same clients.
    #[arg(long, env = "FANOUT_VIA", value_enum, default_value_t = Via::Both)]
    pub via: Via,

    /// Server API key (`Authorization: Bearer`) of a --target-url/--compare server for
    /// `fanout`; spawned hosts get this one as API_KEY, or a random key when absent.
    #[arg(long, env = "BENCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// `fanout`: Server API calls awaiting their answer at once; a publish due beyond
    /// that is not sent and counts as `publish:overrun` (open loop: nothing queues).
    #[arg(long, env = "API_MAX_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub api_max_in_flight: u32,

    // --- sweep --------------------------------------------------------------------
    /// Raise the rate (presence/chat) or the connections (storm/connections) step by step
    /// until p99 crosses --p99-ms; print the highest sustained level.
    #[arg(long, env = "BENCH_SWEEP")]
    pub sweep: bool,

    /// Sweep threshold on the primary latency's p99, in milliseconds.
    #[arg(long, env = "P99_MS", default_value_t = 10.0)]
    pub p99_ms: f64,

    /// Sweep: first level (default: the scenario's configured rate or connections).
    #[arg(long, env = "SWEEP_START")]
    pub sweep_start: Option<f64>,

    /// Sweep: each level is the previous one times this.
    #[arg(long, env = "SWEEP_FACTOR", default_value_t = 1.5)]
    pub sweep_factor: f64,

    /// Sweep: never go above this level.
    #[arg(long, env = "SWEEP_MAX", default_value_t = 1_000_000.0)]
    pub sweep_max: f64,

    /// Sweep: at most this many levels.
    #[arg(long, env = "SWEEP_STEPS", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub sweep_steps: u32,

    // --- output and harness -------------------------------------------------------
    /// Print JSON on stdout instead of the table.
    #[arg(long, env = "BENCH_JSON")]
    pub json: bool,

    /// No progress line on stderr.
    #[arg(long, short, env = "BENCH_QUIET")]
    pub quiet: bool,

    /// Worker threads of the harness's runtime (1 leaves the other core to the server).
    #[arg(long, env = "BENCH_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,

    /// Where spawned servers' logs and plugin dirs go (default: a temp dir, removed).
    #[arg(long, env = "BENCH_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
}

impl Args {
    /// Connections for count-driven scenarios.
    pub fn connection_count(&self) -> u32 {
        self.connections.unwrap_or_else(|| {
            self.room_count
                .unwrap_or(DEFAULT_ROOMS)
                .saturating_mul(self.users_per_room)
        })
    }

    /// Rooms for a population of `connections` clients.
    pub fn rooms_for(&self, connections: u32) -> u32 {
        match (self.room_count, self.scenario) {
            (Some(rooms), _) => rooms,
            (None, Scenario::Connections | Scenario::Storm) => {
                connections.div_ceil(self.users_per_room).max(1)
            }
            (None, _) => DEFAULT_ROOMS,
        }
    }

    /// Rooms of the rate scenarios.
    pub fn rooms(&self) -> u32 {
        self.room_count.unwrap_or(DEFAULT_ROOMS)
    }

    /// The configured level a sweep starts from when --sweep-start is absent.
    pub fn base_level(&self) -> f64 {
        match self.scenario {
            Scenario::Presence => self.heartbeats_per_sec,
            Scenario::Chat | Scenario::Reload | Scenario::Fanout => self.messages_per_sec,
            Scenario::Connections | Scenario::Storm | Scenario::Soak => {
                f64::from(self.connection_count())
            }
        }
    }

    /// Whether spawned servers get the chat plugin (`fanout --via api` does without).
    pub fn needs_chat_plugin(&self) -> bool {
        self.scenario.needs_chat() && (self.scenario != Scenario::Fanout || self.via.plugin())
    }

    /// Whether the run calls the Server API (spawned hosts then get an API key).
    pub fn needs_api(&self) -> bool {
        self.scenario == Scenario::Fanout && self.via.api()
    }

    /// Client settings of the first target: those of a `*-tenants` spawn spec, else
    /// `--tenants` / `--hs256-secret`.
    pub fn tenancy(&self) -> Result<Tenancy, String> {
        Tenancy::for_side(
            self.spawn.as_ref(),
            self.tenants,
            self.hs256_secret.as_deref(),
            "--tenants/--hs256-secret",
        )
    }

    /// Client settings of the second target: those of a `*-tenants` compare spawn spec,
    /// else `--compare-tenants` / `--compare-hs256-secret`.
    pub fn compare_tenancy(&self) -> Result<Tenancy, String> {
        Tenancy::for_side(
            self.compare_spawn.as_ref(),
            self.compare_tenants,
            self.compare_hs256_secret.as_deref(),
            "--compare-tenants/--compare-hs256-secret",
        )
    }

    /// Tenant checks: each side's settings are consistent, every tenant gets a room,
    /// and reload (one plugin folder) runs single-tenant.
    fn validate_tenancy(&self) -> Result<(), String> {
        let first = self.tenancy()?;
        let second = self.compare_tenancy()?;
        if (self.compare_tenants.is_some() || self.compare_hs256_secret.is_some())
            && self.compare.is_none()
            && self.compare_spawn.is_none()
        {
            return Err(
                "--compare-tenants/--compare-hs256-secret need --compare or --compare-spawn".into(),
            );
        }
        let rooms = self.rooms_for(self.connection_count());
        for tenancy in [&first, &second] {
            if let Some(n) = tenancy.tenants
                && n > rooms
            {
                return Err(format!(
                    "{n} tenants need at least {n} rooms (--room-count): rooms are spread over tenants"
                ));
            }
        }
        if self.scenario == Scenario::Reload
            && (first.tenants.is_some() || second.tenants.is_some())
        {
            return Err("reload swaps one plugin folder; run it without tenants".into());
        }
        if self.scenario == Scenario::Fanout
            && (first.tenants.is_some() || second.tenants.is_some())
        {
            return Err(
                "fanout publishes to the single tenant `default`; run it without tenants".into(),
            );
        }
        Ok(())
    }

    /// `fanout` checks: no sweep, and every target with a Server API and a key for it.
    fn validate_fanout(&self) -> Result<(), String> {
        if self.scenario != Scenario::Fanout {
            return Ok(());
        }
        if self.sweep {
            return Err("--sweep does not apply to fanout".into());
        }
        if !self.via.api() {
            return Ok(());
        }
        for kind in [&self.spawn, &self.compare_spawn].into_iter().flatten() {
            if !kind.has_server_api() {
                return Err(format!(
                    "{} has no Server API: use --via plugin, or another target",
                    kind.label()
                ));
            }
        }
        let url_target = self.spawn.is_none() || self.compare.is_some();
        if url_target && self.api_key.is_none() {
            return Err(
                "fanout through the Server API of a --target-url/--compare server needs its --api-key"
                    .into(),
            );
        }
        Ok(())
    }

    /// Cross-field checks clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.patch_share) {
            return Err("--patch-share must be within 0..1".into());
        }
        if self.heartbeats_per_sec <= 0.0 || self.messages_per_sec <= 0.0 {
            return Err("rates must be positive".into());
        }
        if self.sweep && (self.compare.is_some() || self.compare_spawn.is_some()) {
            return Err("--sweep and --compare do not combine; run them separately".into());
        }
        if self.sweep && self.scenario == Scenario::Reload {
            return Err("--sweep does not apply to reload".into());
        }
        if self.sweep_factor <= 1.0 {
            return Err("--sweep-factor must be above 1".into());
        }
        if self.text_bytes < 24 || self.text_bytes > 2000 {
            return Err("--text-bytes must be within 24..2000".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be positive".into());
        }
        if self.api_key.as_deref() == Some("") {
            return Err("--api-key is empty".into());
        }
        self.validate_fanout()?;
        self.validate_tenancy()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn spawn_kinds() {
        assert_eq!("memory".parse(), Ok(SpawnKind::Memory));
        assert_eq!("redis".parse(), Ok(SpawnKind::Redis));
        assert_eq!(
            "node:node server.js".parse(),
            Ok(SpawnKind::Node("node server.js".into()))
        );
        assert_eq!("node-peer".parse(), Ok(SpawnKind::NodePeer));
        assert!("node:".parse::<SpawnKind>().is_err());
        assert!("mysql".parse::<SpawnKind>().is_err());
        assert_eq!("redis-nodes:2".parse(), Ok(SpawnKind::Nodes(2)));
        assert_eq!(SpawnKind::Nodes(2).label(), "redis, 2 nodes");
        for bad in [
            "redis-nodes:",
            "redis-nodes:0",
            "redis-nodes:17",
            "redis-nodes:x",
        ] {
            assert!(bad.parse::<SpawnKind>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_spawn_kinds() {
        assert_eq!("redis-cluster".parse(), Ok(SpawnKind::Cluster(1)));
        assert_eq!("redis-cluster-nodes:2".parse(), Ok(SpawnKind::Cluster(2)));
        assert_eq!(SpawnKind::Cluster(1).label(), "redis-cluster");
        assert_eq!(SpawnKind::Cluster(3).label(), "redis-cluster, 3 nodes");
        assert!(SpawnKind::Cluster(1).has_server_api());
        for bad in [
            "redis-cluster:",
            "redis-cluster:2",
            "redis-cluster-nodes:",
            "redis-cluster-nodes:0",
            "redis-cluster-nodes:17",
            "redis-cluster-nodes:-1",
        ] {
            assert!(bad.parse::<SpawnKind>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cluster_compares_with_a_single_redis() -> Result<(), clap::Error> {
        let args = Args::try_parse_from([
            "rtm-bench",
            "chat",
            "--spawn",
            "redis",
            "--compare-spawn",
            "redis-cluster",
        ])?;
        assert!(args.validate().is_ok());
        assert_eq!(args.compare_spawn, Some(SpawnKind::Cluster(1)));
        assert_eq!(args.compare_tenancy(), Ok(Tenancy::default()));
        Ok(())
    }

    #[test]
    fn fanout_needs_a_server_api_and_its_key() -> Result<(), clap::Error> {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["rtm-bench", "fanout"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv)
        };
        let spawned = parse(&["--spawn", "redis-nodes:2"])?;
        assert!(spawned.validate().is_ok());
        assert!(spawned.needs_api() && spawned.needs_chat_plugin());
        assert_eq!(spawned.via, Via::Both);
        // A server someone else runs: its key must be given.
        assert!(
            parse(&["--target-url", "http://127.0.0.1:3000"])?
                .validate()
                .is_err()
        );
        let keyed = parse(&["--target-url", "http://127.0.0.1:3000", "--api-key", "k"])?;
        assert!(keyed.validate().is_ok());
        assert!(parse(&["--spawn", "node-peer"])?.validate().is_err());
        assert!(parse(&["--spawn", "redis", "--sweep"])?.validate().is_err());
        let plugin_only = parse(&["--spawn", "node-peer", "--via", "plugin"])?;
        assert!(plugin_only.validate().is_ok() && !plugin_only.needs_api());
        let api_only = parse(&["--spawn", "redis", "--via", "api"])?;
        assert!(!api_only.needs_chat_plugin());
        assert!(parse(&["--spawn", "redis-tenants:2"])?.validate().is_err());
        Ok(())
    }

    #[test]
    fn tenants_spawn_kinds() {
        assert_eq!(
            "redis-tenants:10:s3:cret".parse(),
            Ok(SpawnKind::Tenants(TenantsSpawn {
                store: Store::Redis,
                tenants: 10,
                hs256_secret: Some("s3:cret".into()),
            }))
        );
        assert_eq!(
            "memory-tenants:2".parse(),
            Ok(SpawnKind::Tenants(TenantsSpawn {
                store: Store::Memory,
                tenants: 2,
                hs256_secret: None,
            }))
        );
        for bad in [
            "redis-tenants:",
            "redis-tenants:0",
            "redis-tenants:x:s",
            "redis-tenants:3:",
        ] {
            assert!(bad.parse::<SpawnKind>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tenancy_per_side() -> Result<(), clap::Error> {
        let args = Args::try_parse_from([
            "rtm-bench",
            "presence",
            "--spawn",
            "redis",
            "--compare-spawn",
            "redis-tenants:10:k",
        ])?;
        assert!(args.validate().is_ok());
        assert_eq!(args.tenancy(), Ok(Tenancy::default()));
        assert_eq!(
            args.compare_tenancy(),
            Ok(Tenancy {
                tenants: Some(10),
                hs256_secret: Some("k".into()),
            })
        );
        let clash = Args::try_parse_from([
            "rtm-bench",
            "presence",
            "--spawn",
            "redis-tenants:10:k",
            "--tenants",
            "3",
        ])?;
        assert!(clash.validate().is_err());
        let few_rooms = Args::try_parse_from([
            "rtm-bench",
            "presence",
            "--target-url",
            "http://127.0.0.1:3000",
            "--tenants",
            "10",
            "--room-count",
            "5",
        ])?;
        assert!(few_rooms.validate().is_err());
        Ok(())
    }

    #[test]
    fn flags_and_defaults() -> Result<(), clap::Error> {
        let args = Args::try_parse_from([
            "rtm-bench",
            "presence",
            "--spawn",
            "redis",
            "--room-count",
            "5",
            "--duration",
            "3s",
            "--host-env",
            "RUST_LOG=warn",
        ])?;
        assert_eq!(args.scenario, Scenario::Presence);
        assert_eq!(args.spawn, Some(SpawnKind::Redis));
        assert_eq!(args.connection_count(), 50);
        assert_eq!(args.duration, Duration::from_secs(3));
        assert_eq!(args.host_env, vec![("RUST_LOG".into(), "warn".into())]);
        assert!(args.validate().is_ok());
        Ok(())
    }
}

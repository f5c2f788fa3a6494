//! A server under test: where to connect (one node, or several sharing one Redis),
//! which processes to measure (the server's nodes, Redis: one server or every node of a
//! Redis Cluster), where its plugins live, how its clients reach their tenants
//! ([`Tenancy`]) and its Server API (a key), and the processes the harness started for
//! it (stopped when the target is dropped: the servers first, then their Redis). A
//! `*-tenants` spawn spec gets a generated tenants file with each tenant's own plugin
//! folder beside it.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::{SpawnKind, Store, TenantsSpawn};
use crate::node_peer;
use crate::redis_cluster::RedisCluster;
use crate::spawn::{self, HostSpec, Spawned};
use crate::tenants::{self, Tenancy};

/// How to reach (or start) one target.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// A server someone else runs.
    Url {
        url: String,
        server_pid: Option<u32>,
        redis_pid: Option<u32>,
        /// Where to read the Redis's `INFO commandstats` (optional).
        redis_addr: Option<SocketAddr>,
        plugins_dir: Option<PathBuf>,
        tenancy: Tenancy,
        /// Its Server API key, for scenarios that call the API.
        api_key: Option<String>,
    },
    /// A server the harness starts (`tenancy`: its clients' settings, which a
    /// `*-tenants` kind implies; see [`Tenancy::for_side`]).
    Spawn { kind: SpawnKind, tenancy: Tenancy },
}

/// What spawning needs, shared by both targets of a comparison.
#[derive(Debug, Clone)]
pub struct SpawnContext {
    pub host_bin: PathBuf,
    pub redis_bin: String,
    pub host_env: Vec<(String, String)>,
    /// Logs and plugin directories go here.
    pub work_dir: PathBuf,
    /// Chat plugin to install into PLUGINS_DIR, when the scenario needs it.
    pub chat_plugin: Option<PathBuf>,
    pub chat_plugin_file: String,
    /// Server API key for spawned servers (`API_KEY`), when the scenario calls the API.
    pub api_key: Option<String>,
}

/// One listening server of a target.
#[derive(Debug, Clone)]
pub struct Node {
    pub url: String,
    pub addr: SocketAddr,
    /// `host:port` for the WebSocket URL.
    pub authority: String,
}

impl Node {
    async fn resolve(url: &str) -> anyhow::Result<Self> {
        let (addr, authority) = resolve_url(url).await?;
        Ok(Self {
            url: url.to_owned(),
            addr,
            authority,
        })
    }
}

/// A resolved target.
pub struct Target {
    /// Short name in reports (`memory`, `redis`, `node`, or the URL).
    pub label: String,
    /// The first (often only) node: what single-node code connects to.
    pub url: String,
    pub addr: SocketAddr,
    /// `host:port` for the WebSocket URL.
    pub authority: String,
    /// The other nodes of a multi-node target (`redis-nodes:<N>`), in order.
    pub peers: Vec<Node>,
    /// The server's processes, one per node (empty: not known, no server numbers).
    pub server_pids: Vec<u32>,
    /// Its Redis's processes: one, or all six of a cluster (empty: not known).
    pub redis_pids: Vec<u32>,
    /// A cluster's masters among `redis_pids` (empty for one Redis).
    pub redis_master_pids: Vec<u32>,
    /// The Redis servers to read `INFO commandstats` from (a cluster's masters).
    pub redis_addrs: Vec<SocketAddr>,
    pub plugins_dir: Option<PathBuf>,
    /// How its clients connect: tenant namespaces, tokens.
    pub tenancy: Tenancy,
    /// Its Server API key, when the scenario calls the API.
    pub api_key: Option<String>,
    /// Started by us; dropped in order, so the servers drain before their Redis stops.
    procs: Vec<Spawned>,
}

impl Target {
    /// Connects to or starts the target; `name` distinguishes logs of the two targets.
    pub async fn resolve(
        spec: &TargetSpec,
        ctx: &SpawnContext,
        name: &str,
    ) -> anyhow::Result<Self> {
        match spec {
            TargetSpec::Url {
                url,
                server_pid,
                redis_pid,
                redis_addr,
                plugins_dir,
                tenancy,
                api_key,
            } => {
                let first = Node::resolve(url).await?;
                Ok(Self {
                    label: labelled(url, tenancy),
                    url: first.url,
                    addr: first.addr,
                    authority: first.authority,
                    peers: Vec::new(),
                    server_pids: server_pid.iter().copied().collect(),
                    redis_pids: redis_pid.iter().copied().collect(),
                    redis_master_pids: Vec::new(),
                    redis_addrs: redis_addr.iter().copied().collect(),
                    plugins_dir: plugins_dir.clone(),
                    tenancy: tenancy.clone(),
                    api_key: api_key.clone(),
                    procs: Vec::new(),
                })
            }
            TargetSpec::Spawn { kind, tenancy } => spawn_target(kind, tenancy, ctx, name).await,
        }
    }

    /// Every node, the first included: clients and API calls spread over these.
    pub fn nodes(&self) -> Vec<Node> {
        let first = Node {
            url: self.url.clone(),
            addr: self.addr,
            authority: self.authority.clone(),
        };
        std::iter::once(first)
            .chain(self.peers.iter().cloned())
            .collect()
    }

    /// Logs of the processes we started, for error messages.
    pub fn logs(&self) -> Vec<&Path> {
        self.procs.iter().map(Spawned::log).collect()
    }
}

/// A report label: `base`, with the clients' tenants and auth when there are any
/// (`redis (10 tenants, hs256)`).
fn labelled(base: &str, tenancy: &Tenancy) -> String {
    match tenancy.describe() {
        Some(what) => format!("{base} ({what})"),
        None => base.to_owned(),
    }
}

/// The Redis a spawned target gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// None: the host's embedded memory store.
    Memory,
    /// One private `redis-server`.
    Single,
    /// A private Redis Cluster (3 masters + 3 replicas).
    Cluster,
}

fn backing(kind: &SpawnKind) -> Backing {
    match kind {
        SpawnKind::Memory => Backing::Memory,
        SpawnKind::Tenants(spec) if spec.store == Store::Memory => Backing::Memory,
        SpawnKind::Cluster(_) => Backing::Cluster,
        SpawnKind::Redis
        | SpawnKind::Tenants(_)
        | SpawnKind::Nodes(_)
        | SpawnKind::Node(_)
        | SpawnKind::NodePeer => Backing::Single,
    }
}

/// How many servers a spawned target runs.
fn node_count(kind: &SpawnKind) -> u32 {
    match kind {
        SpawnKind::Nodes(n) | SpawnKind::Cluster(n) => (*n).max(1),
        _ => 1,
    }
}

/// A spawned target's Redis once started: the URL its servers get, what to measure,
/// and the guards (stopped after the servers).
#[derive(Default)]
struct StartedRedis {
    url: Option<String>,
    pids: Vec<u32>,
    master_pids: Vec<u32>,
    addrs: Vec<SocketAddr>,
    procs: Vec<Spawned>,
}

/// Starts the Redis `kind` runs on, if any (logs `<name>-redis*`).
async fn start_redis(
    kind: &SpawnKind,
    ctx: &SpawnContext,
    name: &str,
) -> anyhow::Result<StartedRedis> {
    match backing(kind) {
        Backing::Memory => Ok(StartedRedis::default()),
        Backing::Single => {
            let (redis, url) =
                spawn::redis(&ctx.redis_bin, &ctx.work_dir, &format!("{name}-redis"))
                    .await
                    .context("starting redis-server")?;
            let addr = resolve_url(&url.replacen("redis://", "http://", 1))
                .await?
                .0;
            Ok(StartedRedis {
                url: Some(url),
                pids: vec![redis.pid()],
                master_pids: Vec::new(),
                addrs: vec![addr],
                procs: vec![redis],
            })
        }
        Backing::Cluster => {
            let cluster = RedisCluster::start(&ctx.redis_bin, &ctx.work_dir, name)
                .await
                .context("starting a Redis Cluster")?;
            Ok(StartedRedis {
                url: Some(cluster.url()),
                pids: cluster.pids(),
                master_pids: cluster.master_pids(),
                addrs: cluster.master_addrs(),
                procs: cluster.into_procs(),
            })
        }
    }
}

/// The name of node `i`'s log (`a-host`, then `a-host1`, `a-host2`, ...).
fn node_name(name: &str, what: &str, i: u32) -> String {
    match i {
        0 => format!("{name}-{what}"),
        i => format!("{name}-{what}{i}"),
    }
}

async fn spawn_target(
    kind: &SpawnKind,
    tenancy: &Tenancy,
    ctx: &SpawnContext,
    name: &str,
) -> anyhow::Result<Target> {
    let StartedRedis {
        url: redis_url,
        pids: redis_pids,
        master_pids: redis_master_pids,
        addrs: redis_addrs,
        mut procs,
    } = start_redis(kind, ctx, name).await?;
    // A foreign server brings its own chat implementation; tenants have their own
    // folders, named in their tenants file. The nodes of one target share one folder,
    // as a deployment shares one plugin release.
    let plugins_dir = match (&ctx.chat_plugin, kind) {
        (
            Some(plugin),
            SpawnKind::Memory | SpawnKind::Redis | SpawnKind::Nodes(_) | SpawnKind::Cluster(_),
        ) => {
            let dir = ctx.work_dir.join(format!("{name}-plugins"));
            install_plugin(plugin, &dir, &ctx.chat_plugin_file)?;
            Some(dir)
        }
        _ => None,
    };
    let mut servers = Vec::new();
    for i in 0..node_count(kind) {
        let dir = plugins_dir.as_deref();
        servers.push(start_server(kind, ctx, name, i, redis_url.as_deref(), dir).await?);
    }
    let server_pids = servers.iter().map(|(server, _)| server.pid()).collect();
    let mut nodes = Vec::new();
    for (_, url) in &servers {
        nodes.push(Node::resolve(url).await?);
    }
    // The servers go first in the list so they stop (and drain) before their Redis.
    procs.splice(0..0, servers.into_iter().map(|(server, _)| server));
    let mut nodes = nodes.into_iter();
    let first = nodes.next().context("no server was started")?;
    Ok(Target {
        label: labelled(&kind.label(), tenancy),
        url: first.url,
        addr: first.addr,
        authority: first.authority,
        peers: nodes.collect(),
        server_pids,
        redis_pids,
        redis_master_pids,
        redis_addrs,
        plugins_dir,
        tenancy: tenancy.clone(),
        api_key: ctx.api_key.clone(),
        procs,
    })
}

/// Starts node `i` of a spawned target; returns its guard and URL.
async fn start_server(
    kind: &SpawnKind,
    ctx: &SpawnContext,
    name: &str,
    i: u32,
    redis_url: Option<&str>,
    plugins_dir: Option<&Path>,
) -> anyhow::Result<(Spawned, String)> {
    let mut env = ctx.host_env.clone();
    if let Some(key) = &ctx.api_key {
        env.push(("API_KEY".into(), key.clone()));
    }
    match kind {
        SpawnKind::Memory
        | SpawnKind::Redis
        | SpawnKind::Tenants(_)
        | SpawnKind::Nodes(_)
        | SpawnKind::Cluster(_) => {
            if !ctx.host_bin.exists() {
                bail!(
                    "{} not found: build it with `cargo build --release -p rtm-host` or pass --host-bin",
                    ctx.host_bin.display()
                );
            }
            if let SpawnKind::Tenants(spec) = kind {
                env.extend(tenants_env(spec, ctx, name)?);
            }
            if node_count(kind) > 1 {
                // Named nodes make the logs and registrations readable.
                env.push(("NODE_ID".into(), format!("{name}-n{i}")));
            }
            let spec = HostSpec {
                bin: ctx.host_bin.clone(),
                redis_url: redis_url.map(str::to_owned),
                plugins_dir: plugins_dir.map(Path::to_path_buf),
                env,
                netns: None,
            };
            spawn::host(&spec, &ctx.work_dir, &node_name(name, "host", i))
                .await
                .with_context(|| format!("starting rtm-host (node {i})"))
        }
        SpawnKind::Node(_) | SpawnKind::NodePeer => {
            let cmd: Cow<'_, str> = match kind {
                SpawnKind::Node(cmd) => cmd.into(),
                _ => node_peer::command()?.into(),
            };
            if let Some(url) = redis_url {
                env.push(("REDIS_URL".into(), url.to_owned()));
            }
            if let Some(dir) = plugins_dir {
                env.push(("PLUGINS_DIR".into(), dir.display().to_string()));
            }
            spawn::command(&cmd, &env, &ctx.work_dir, &node_name(name, "server", i))
                .await
                .with_context(|| format!("starting `{cmd}`"))
        }
    }
}

/// Copies the chat plugin into a fresh plugin folder `dir` as `file`.
fn install_plugin(plugin: &Path, dir: &Path, file: &str) -> anyhow::Result<()> {
    if !plugin.exists() {
        bail!(
            "chat plugin {} not found: `make guests` builds it, or pass --chat-plugin",
            plugin.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join(file);
    std::fs::copy(plugin, &dest)
        .with_context(|| format!("copying {} to {}", plugin.display(), dest.display()))?;
    Ok(())
}

/// Writes the tenants file of a `*-tenants` host into `<work>/<name>-tenants/`, with
/// each tenant's chat plugin in `<that dir>/t<i>/` when the scenario needs it, and
/// returns the settings that point the host at it: `TENANTS_FILE` and the secret the
/// file names (`env:` [`tenants::SECRET_ENV`]).
fn tenants_env(
    spec: &TenantsSpawn,
    ctx: &SpawnContext,
    name: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let dir = std::path::absolute(ctx.work_dir.join(format!("{name}-tenants")))
        .context("resolving the work dir")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(plugin) = &ctx.chat_plugin {
        for i in 0..spec.tenants as usize {
            let tenant_dir = dir.join(tenants::tenant_id(i));
            install_plugin(plugin, &tenant_dir, &ctx.chat_plugin_file)?;
        }
    }
    let file = dir.join("tenants.toml");
    let text = tenants::file_text(
        spec.tenants,
        spec.hs256_secret.is_some(),
        ctx.chat_plugin.is_some(),
    );
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    let mut env = vec![("TENANTS_FILE".to_owned(), file.display().to_string())];
    if let Some(secret) = &spec.hs256_secret {
        env.push((tenants::SECRET_ENV.to_owned(), secret.clone()));
    }
    Ok(env)
}

/// `http://host:port[/..]` or `ws://host:port` to a socket address and `host:port`.
pub async fn resolve_url(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .with_context(|| format!("{url:?}: only http:// and ws:// targets are supported"))?;
    let authority = rest.split('/').next().unwrap_or(rest).to_owned();
    if authority.is_empty() {
        bail!("{url:?} has no host");
    }
    let with_port = if authority.contains(':') {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let addr = tokio::net::lookup_host(&with_port)
        .await
        .with_context(|| format!("resolving {with_port}"))?
        .next()
        .with_context(|| format!("{with_port} resolves to nothing"))?;
    Ok((addr, with_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_counted_and_named() {
        assert_eq!(node_count(&SpawnKind::Nodes(3)), 3);
        assert_eq!(node_count(&SpawnKind::Redis), 1);
        assert_eq!(node_count(&SpawnKind::Cluster(1)), 1);
        assert_eq!(node_count(&SpawnKind::Cluster(2)), 2);
        assert_eq!(node_name("a", "host", 0), "a-host");
        assert_eq!(node_name("a", "host", 2), "a-host2");
    }

    #[test]
    fn each_kind_gets_its_redis() {
        let tenants = |store| {
            SpawnKind::Tenants(TenantsSpawn {
                store,
                tenants: 2,
                hs256_secret: None,
            })
        };
        assert_eq!(backing(&SpawnKind::Memory), Backing::Memory);
        assert_eq!(backing(&tenants(Store::Memory)), Backing::Memory);
        assert_eq!(backing(&tenants(Store::Redis)), Backing::Single);
        assert_eq!(backing(&SpawnKind::Redis), Backing::Single);
        assert_eq!(backing(&SpawnKind::Nodes(2)), Backing::Single);
        assert_eq!(backing(&SpawnKind::NodePeer), Backing::Single);
        assert_eq!(backing(&SpawnKind::Node("x".into())), Backing::Single);
        assert_eq!(backing(&SpawnKind::Cluster(1)), Backing::Cluster);
        assert_eq!(backing(&SpawnKind::Cluster(3)), Backing::Cluster);
    }

    #[tokio::test]
    async fn resolves_urls() -> anyhow::Result<()> {
        let (addr, auth) = resolve_url("http://127.0.0.1:3000").await?;
        assert_eq!(addr.port(), 3000);
        assert_eq!(auth, "127.0.0.1:3000");
        let (_, auth) = resolve_url("ws://127.0.0.1:9/x").await?;
        assert_eq!(auth, "127.0.0.1:9");
        assert!(resolve_url("https://x").await.is_err());
        Ok(())
    }
}

//! A server under test: where to connect, which processes to measure (server, Redis),
//! where its plugins live, how its clients reach their tenants ([`Tenancy`]), and the
//! processes the harness started for it (stopped when the target is dropped: the
//! server first, then its Redis). A `*-tenants` spawn spec gets a generated tenants
//! file with each tenant's own plugin folder beside it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::{SpawnKind, Store, TenantsSpawn};
use crate::node_peer;
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
}

/// A resolved target.
pub struct Target {
    /// Short name in reports (`memory`, `redis`, `node`, or the URL).
    pub label: String,
    pub url: String,
    pub addr: SocketAddr,
    /// `host:port` for the WebSocket URL.
    pub authority: String,
    pub server_pid: Option<u32>,
    pub redis_pid: Option<u32>,
    /// The Redis to read `INFO commandstats` from, when known.
    pub redis_addr: Option<SocketAddr>,
    pub plugins_dir: Option<PathBuf>,
    /// How its clients connect: tenant namespaces, tokens.
    pub tenancy: Tenancy,
    /// Started by us; dropped in order, so the server drains before its Redis stops.
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
            } => {
                let (addr, authority) = resolve_url(url).await?;
                Ok(Self {
                    label: labelled(url, tenancy),
                    url: url.clone(),
                    addr,
                    authority,
                    server_pid: *server_pid,
                    redis_pid: *redis_pid,
                    redis_addr: *redis_addr,
                    plugins_dir: plugins_dir.clone(),
                    tenancy: tenancy.clone(),
                    procs: Vec::new(),
                })
            }
            TargetSpec::Spawn { kind, tenancy } => spawn_target(kind, tenancy, ctx, name).await,
        }
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

/// Whether a spawned target gets a private `redis-server`.
fn needs_redis(kind: &SpawnKind) -> bool {
    match kind {
        SpawnKind::Memory => false,
        SpawnKind::Tenants(spec) => spec.store == Store::Redis,
        SpawnKind::Redis | SpawnKind::Node(_) | SpawnKind::NodePeer => true,
    }
}

async fn spawn_target(
    kind: &SpawnKind,
    tenancy: &Tenancy,
    ctx: &SpawnContext,
    name: &str,
) -> anyhow::Result<Target> {
    let mut procs = Vec::new();
    let (redis_url, redis_pid) = if needs_redis(kind) {
        let (redis, url) = spawn::redis(&ctx.redis_bin, &ctx.work_dir, &format!("{name}-redis"))
            .await
            .context("starting redis-server")?;
        let pid = redis.pid();
        procs.push(redis);
        (Some(url), Some(pid))
    } else {
        (None, None)
    };
    // A foreign server brings its own chat implementation; tenants have their own
    // folders, named in their tenants file.
    let plugins_dir = match (&ctx.chat_plugin, kind) {
        (Some(plugin), SpawnKind::Memory | SpawnKind::Redis) => {
            let dir = ctx.work_dir.join(format!("{name}-plugins"));
            install_plugin(plugin, &dir, &ctx.chat_plugin_file)?;
            Some(dir)
        }
        _ => None,
    };
    let (server, url) = match kind {
        SpawnKind::Memory | SpawnKind::Redis | SpawnKind::Tenants(_) => {
            if !ctx.host_bin.exists() {
                bail!(
                    "{} not found: build it with `cargo build --release -p rtm-host` or pass --host-bin",
                    ctx.host_bin.display()
                );
            }
            let mut env = ctx.host_env.clone();
            if let SpawnKind::Tenants(spec) = kind {
                env.extend(tenants_env(spec, ctx, name)?);
            }
            let spec = HostSpec {
                bin: ctx.host_bin.clone(),
                redis_url: redis_url.clone(),
                plugins_dir: plugins_dir.clone(),
                env,
            };
            spawn::host(&spec, &ctx.work_dir, &format!("{name}-host"))
                .await
                .context("starting rtm-host")?
        }
        SpawnKind::Node(_) | SpawnKind::NodePeer => {
            let cmd = match kind {
                SpawnKind::Node(cmd) => cmd.clone(),
                _ => node_peer::command()?,
            };
            let cmd = cmd.as_str();
            let mut env = ctx.host_env.clone();
            if let Some(url) = &redis_url {
                env.push(("REDIS_URL".into(), url.clone()));
            }
            if let Some(dir) = &plugins_dir {
                env.push(("PLUGINS_DIR".into(), dir.display().to_string()));
            }
            spawn::command(cmd, &env, &ctx.work_dir, &format!("{name}-server"))
                .await
                .with_context(|| format!("starting `{cmd}`"))?
        }
    };
    let server_pid = Some(server.pid());
    // The server goes first in the list so it stops (and drains) before its Redis.
    procs.insert(0, server);
    let (addr, authority) = resolve_url(&url).await?;
    let redis_addr = match &redis_url {
        Some(url) => Some(
            resolve_url(&url.replacen("redis://", "http://", 1))
                .await?
                .0,
        ),
        None => None,
    };
    Ok(Target {
        label: labelled(kind.label(), tenancy),
        url,
        addr,
        authority,
        server_pid,
        redis_pid,
        redis_addr,
        plugins_dir,
        tenancy: tenancy.clone(),
        procs,
    })
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

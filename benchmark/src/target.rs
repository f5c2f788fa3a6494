//! A server under test: where to connect, which processes to measure (server, Redis),
//! where its plugins live, and the processes the harness started for it (stopped when
//! the target is dropped: the server first, then its Redis).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::cli::SpawnKind;
use crate::node_peer;
use crate::spawn::{self, HostSpec, Spawned};

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
    },
    /// A server the harness starts.
    Spawn(SpawnKind),
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
            } => {
                let (addr, authority) = resolve_url(url).await?;
                Ok(Self {
                    label: url.clone(),
                    url: url.clone(),
                    addr,
                    authority,
                    server_pid: *server_pid,
                    redis_pid: *redis_pid,
                    redis_addr: *redis_addr,
                    plugins_dir: plugins_dir.clone(),
                    procs: Vec::new(),
                })
            }
            TargetSpec::Spawn(kind) => spawn_target(kind, ctx, name).await,
        }
    }

    /// Logs of the processes we started, for error messages.
    pub fn logs(&self) -> Vec<&Path> {
        self.procs.iter().map(Spawned::log).collect()
    }
}

async fn spawn_target(kind: &SpawnKind, ctx: &SpawnContext, name: &str) -> anyhow::Result<Target> {
    let mut procs = Vec::new();
    let (redis_url, redis_pid) = match kind {
        SpawnKind::Memory => (None, None),
        SpawnKind::Redis | SpawnKind::Node(_) | SpawnKind::NodePeer => {
            let (redis, url) =
                spawn::redis(&ctx.redis_bin, &ctx.work_dir, &format!("{name}-redis"))
                    .await
                    .context("starting redis-server")?;
            let pid = redis.pid();
            procs.push(redis);
            (Some(url), Some(pid))
        }
    };
    // A foreign server brings its own chat implementation.
    let plugins_dir = match (&ctx.chat_plugin, kind) {
        (Some(plugin), SpawnKind::Memory | SpawnKind::Redis) => {
            Some(install_plugin(plugin, ctx, name)?)
        }
        _ => None,
    };
    let (server, url) = match kind {
        SpawnKind::Memory | SpawnKind::Redis => {
            if !ctx.host_bin.exists() {
                bail!(
                    "{} not found: build it with `cargo build --release -p rtm-host` or pass --host-bin",
                    ctx.host_bin.display()
                );
            }
            let spec = HostSpec {
                bin: ctx.host_bin.clone(),
                redis_url: redis_url.clone(),
                plugins_dir: plugins_dir.clone(),
                env: ctx.host_env.clone(),
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
        label: kind.label().to_owned(),
        url,
        addr,
        authority,
        server_pid,
        redis_pid,
        redis_addr,
        plugins_dir,
        procs,
    })
}

/// Copies the chat plugin into a fresh PLUGINS_DIR for this target.
fn install_plugin(plugin: &Path, ctx: &SpawnContext, name: &str) -> anyhow::Result<PathBuf> {
    if !plugin.exists() {
        bail!(
            "chat plugin {} not found: `make guests` builds it, or pass --chat-plugin",
            plugin.display()
        );
    }
    let dir = ctx.work_dir.join(format!("{name}-plugins"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dest = dir.join(&ctx.chat_plugin_file);
    std::fs::copy(plugin, &dest)
        .with_context(|| format!("copying {} to {}", plugin.display(), dest.display()))?;
    Ok(dir)
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

//! The soak's processes: one private Redis and N `rtm-host` nodes on it (the last one
//! inside a network namespace when the soak may create one), and the faults done to
//! them. The [`Directory`] is what members read: each node's address and whether it is
//! up, flipped before a node is killed and after it is back.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use rustix::process::Signal;

use super::netns::Netns;
use crate::spawn::{self, HostSpec, Spawned};

/// Where the members find the nodes.
pub struct Directory {
    nodes: Vec<NodeAddr>,
}

struct NodeAddr {
    addr: std::sync::Mutex<SocketAddr>,
    up: AtomicBool,
}

impl Directory {
    /// How many nodes there are.
    pub fn count(&self) -> usize {
        self.nodes.len()
    }

    pub fn up(&self, i: usize) -> bool {
        self.nodes
            .get(i)
            .is_some_and(|n| n.up.load(Ordering::Acquire))
    }

    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        let node = self.nodes.get(i)?;
        Some(*node.addr.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `home` if it is up, else the next node that is.
    pub fn pick(&self, home: usize) -> usize {
        (0..self.nodes.len())
            .map(|k| (home + k) % self.nodes.len())
            .find(|&i| self.up(i))
            .unwrap_or(home)
    }
}

/// What the nodes are started with.
pub struct FleetSpec {
    pub host_bin: PathBuf,
    pub redis_bin: String,
    pub plugins_dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub nodes: usize,
}

struct NodeProc {
    proc: Option<Spawned>,
    port: u16,
    bind: Ipv4Addr,
    redis_url: String,
    netns: Option<String>,
}

/// The running processes.
pub struct Fleet {
    spec: FleetSpec,
    logs: PathBuf,
    redis: Option<Spawned>,
    redis_port: u16,
    redis_binds: Vec<String>,
    nodes: Vec<NodeProc>,
    restarts: u32,
    pub netns: Option<Netns>,
    pub dir: Arc<Directory>,
}

impl Fleet {
    /// Starts Redis, then every node; `netns` is the partitioned node's namespace (the
    /// caller created it, or could not: then every node runs here).
    pub async fn start(spec: FleetSpec, logs: &Path, netns: Option<Netns>) -> anyhow::Result<Self> {
        let mut binds = vec!["127.0.0.1".to_owned()];
        if let Some(ns) = &netns {
            binds.push(ns.redis_ip.to_string());
        }
        let args = redis_args(&binds);
        let (redis, redis_port) =
            spawn::redis_with(&spec.redis_bin, logs, "redis", &|_| Ok(args.clone()))
                .await
                .context("starting redis-server")?;
        let mut nodes = Vec::new();
        for i in 0..spec.nodes {
            let in_ns = netns.as_ref().filter(|_| i + 1 == spec.nodes);
            let (bind, redis_host, ns_name) = match in_ns {
                Some(ns) => (ns.node_ip, ns.redis_ip, Some(ns.name.clone())),
                None => (Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, None),
            };
            nodes.push(NodeProc {
                proc: None,
                port: spawn::free_port()?,
                bind,
                redis_url: format!("redis://{redis_host}:{redis_port}"),
                netns: ns_name,
            });
        }
        let dir = Arc::new(Directory {
            nodes: nodes
                .iter()
                .map(|n| NodeAddr {
                    addr: std::sync::Mutex::new(SocketAddr::from((n.bind, n.port))),
                    up: AtomicBool::new(false),
                })
                .collect(),
        });
        let mut fleet = Self {
            spec,
            logs: logs.to_owned(),
            redis: Some(redis),
            redis_port,
            redis_binds: binds,
            nodes,
            restarts: 0,
            netns,
            dir,
        };
        for i in 0..fleet.nodes.len() {
            fleet.start_node(i).await?;
        }
        Ok(fleet)
    }

    fn node_spec(&self, i: usize) -> HostSpec {
        let node = &self.nodes[i];
        let mut env = self.spec.env.clone();
        env.push(("PORT".into(), node.port.to_string()));
        env.push(("BIND_ADDR".into(), node.bind.to_string()));
        env.push(("NODE_ID".into(), format!("soak-node-{i}")));
        HostSpec {
            bin: self.spec.host_bin.clone(),
            redis_url: Some(node.redis_url.clone()),
            plugins_dir: Some(self.spec.plugins_dir.clone()),
            env,
            netns: node.netns.clone(),
        }
    }

    async fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        self.restarts += 1;
        let spec = self.node_spec(i);
        let name = format!("node-{i}-{}", self.restarts);
        let (proc, url) = spawn::host(&spec, &self.logs, &name)
            .await
            .with_context(|| format!("starting node {i}"))?;
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .parse()
            .with_context(|| format!("node {i} printed {url:?}"))?;
        let slot = &self.dir.nodes[i];
        *slot.addr.lock().unwrap_or_else(|e| e.into_inner()) = addr;
        slot.up.store(true, Ordering::Release);
        self.nodes[i].proc = Some(proc);
        Ok(())
    }

    /// The pid of node `i`, while it runs.
    pub fn node_pid(&self, i: usize) -> Option<u32> {
        self.nodes.get(i)?.proc.as_ref().map(Spawned::pid)
    }

    pub fn redis_pid(&self) -> Option<u32> {
        self.redis.as_ref().map(Spawned::pid)
    }

    /// SIGKILLs node `i` (members see it go down first, so none reconnects to it).
    pub async fn kill_node(&mut self, i: usize) -> anyhow::Result<()> {
        self.dir.nodes[i].up.store(false, Ordering::Release);
        if let Some(mut proc) = self.nodes[i].proc.take() {
            proc.kill9().await.context("SIGKILL of a node")?;
        }
        Ok(())
    }

    /// Starts node `i` again on its port.
    pub async fn restart_node(&mut self, i: usize) -> anyhow::Result<()> {
        self.start_node(i).await
    }

    /// SIGSTOP (`true`) or SIGCONT Redis.
    pub fn pause_redis(&self, pause: bool) -> anyhow::Result<()> {
        let redis = self.redis.as_ref().context("redis is not running")?;
        let signal = if pause { Signal::STOP } else { Signal::CONT };
        redis.signal(signal).context("signalling redis")
    }

    /// SIGKILLs Redis and starts it again, empty, on the same port.
    pub async fn restart_redis(&mut self) -> anyhow::Result<Duration> {
        let began = std::time::Instant::now();
        if let Some(mut redis) = self.redis.take() {
            redis.kill9().await.context("SIGKILL of redis")?;
        }
        let args = redis_args(&self.redis_binds);
        let redis = spawn::redis_on(
            &self.spec.redis_bin,
            &self.logs,
            "redis-restarted",
            self.redis_port,
            &|_| Ok(args.clone()),
        )
        .await
        .context("restarting redis-server on its port")?;
        self.redis = Some(redis);
        Ok(began.elapsed())
    }
}

/// Binds every address the nodes reach Redis on (the namespace's too), with protected
/// mode off since the namespace's address is not loopback.
fn redis_args(binds: &[String]) -> Vec<String> {
    let mut args = vec!["--bind".to_owned()];
    args.extend(binds.iter().cloned());
    args.extend(["--protected-mode".to_owned(), "no".to_owned()]);
    args
}

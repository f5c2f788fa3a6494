//! A private Redis Cluster for one target: three masters and three replicas, each a
//! `redis-server` on free ports proven to be ours (as [`spawn::redis`] proves one),
//! slots assigned by `redis-cli --cluster create`, ready once every node says
//! `cluster_state:ok` and every replica is in sync with its master. The target's Redis
//! CPU is that of all six (a replica replays every write of its master, so it costs as
//! a deployment's would); the masters are also reported apart.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::redis_stats;
use crate::spawn::{self, SpawnError, Spawned};

/// Masters of the cluster; each gets one replica.
pub const MASTERS: usize = 3;

/// Servers of the cluster: the masters and their replicas.
pub const NODES: usize = 2 * MASTERS;

/// `--cluster-node-timeout` in ms: a stopped master is noticed within a second (the
/// setting of the host's own cluster tests).
const NODE_TIMEOUT_MS: &str = "1000";

/// How long `redis-cli --cluster create` and then the cluster's convergence may take.
const FORM_WAIT: Duration = Duration::from_secs(30);

/// One server of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterNode {
    pub port: u16,
    pub pid: u32,
    /// Whether it serves slots (as `redis-cli` assigned them), rather than replicating.
    pub master: bool,
}

impl ClusterNode {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

/// A running cluster; its processes stop when it (or [`RedisCluster::into_procs`]'s
/// guards) is dropped.
pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
    procs: Vec<Spawned>,
}

impl RedisCluster {
    /// Starts the six servers (logs `<name>-redis0..5`, cluster files in
    /// `<logs>/<name>-cluster/`), creates the cluster and waits until it is ready.
    /// `bin` is `redis-server`; `redis-cli` is taken from beside it.
    pub async fn start(bin: &str, logs: &Path, name: &str) -> anyhow::Result<Self> {
        let dir = std::path::absolute(logs.join(format!("{name}-cluster")))
            .context("resolving the work dir")?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let extra = |port: u16| node_args_on_fresh_bus(&dir, port);
        let mut procs = Vec::with_capacity(NODES);
        let mut ports = Vec::with_capacity(NODES);
        for i in 0..NODES {
            let (guard, port) = spawn::redis_with(bin, logs, &format!("{name}-redis{i}"), &extra)
                .await
                .with_context(|| format!("starting cluster node {i}"))?;
            procs.push(guard);
            ports.push(port);
        }
        create(&cli_beside(bin), &ports, logs, name).await?;
        let masters = wait_ready(&mut procs, &ports).await?;
        let nodes = procs
            .iter()
            .zip(&ports)
            .zip(masters)
            .map(|((guard, &port), master)| ClusterNode {
                port,
                pid: guard.pid(),
                master,
            })
            .collect();
        Ok(Self { nodes, procs })
    }

    /// The `REDIS_URL` of a host on it: every node a seed.
    pub fn url(&self) -> String {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        url_of(&ports)
    }

    /// Every server's pid, masters and replicas.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.pid).collect()
    }

    pub fn master_pids(&self) -> Vec<u32> {
        self.masters().map(|n| n.pid).collect()
    }

    /// Where the masters' `INFO commandstats` are read (and summed).
    pub fn master_addrs(&self) -> Vec<SocketAddr> {
        self.masters().map(ClusterNode::addr).collect()
    }

    fn masters(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.master)
    }

    /// The guards of the six servers, for a target that stops them after its hosts.
    pub fn into_procs(self) -> Vec<Spawned> {
        self.procs
    }
}

/// [`node_args`] with a bus port picked now. Redis's default bus port (port + 10000) may
/// be taken or beyond 65535; a port that is free as well avoids both. A stale config
/// file of an earlier run in the same `--work-dir` is removed: Redis would rejoin its
/// old cluster from it.
fn node_args_on_fresh_bus(dir: &Path, port: u16) -> Result<Vec<String>, SpawnError> {
    let mut bus = spawn::free_port()?;
    if bus == port {
        // Still free because nothing binds it yet; a second pick differs (and should it
        // not, the server fails to bind and the attempt is retried on other ports).
        bus = spawn::free_port()?;
    }
    let _ = std::fs::remove_file(config_file(dir, port));
    Ok(node_args(dir, port, bus))
}

/// The `redis-server` arguments of a cluster node on `port`, beside the private ones
/// every spawned Redis gets (no persistence, loopback only). Replicas write the RDB
/// of their first sync to disk, so each gets a file of its own in `dir`, not the
/// harness's working directory; that sync starts at once instead of after Redis's
/// 5 s diskless delay.
fn node_args(dir: &Path, port: u16, bus_port: u16) -> Vec<String> {
    let dir_arg = dir.display().to_string();
    let config = config_file(dir, port).display().to_string();
    let pairs: [(&str, &str); 7] = [
        ("--cluster-enabled", "yes"),
        ("--cluster-config-file", &config),
        ("--cluster-node-timeout", NODE_TIMEOUT_MS),
        ("--cluster-port", &bus_port.to_string()),
        ("--dir", &dir_arg),
        ("--dbfilename", &format!("dump-{port}.rdb")),
        ("--repl-diskless-sync-delay", "0"),
    ];
    pairs
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value.to_owned()])
        .collect()
}

fn config_file(dir: &Path, port: u16) -> PathBuf {
    dir.join(format!("nodes-{port}.conf"))
}

/// `redis-cli` from where `redis-server` comes from (`--redis-bin`): beside it when that
/// is a path, so a custom Redis build forms its own cluster, else from `PATH`.
fn cli_beside(server_bin: &str) -> PathBuf {
    match Path::new(server_bin).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("redis-cli"),
        _ => PathBuf::from("redis-cli"),
    }
}

/// `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=...`.
fn url_of(ports: &[u16]) -> String {
    let mut addrs = ports.iter().map(|p| format!("127.0.0.1:{p}"));
    let first = addrs.next().unwrap_or_default();
    let seeds: Vec<String> = addrs.map(|a| format!("node={a}")).collect();
    if seeds.is_empty() {
        format!("redis-cluster://{first}")
    } else {
        format!("redis-cluster://{first}?{}", seeds.join("&"))
    }
}

/// Runs `redis-cli --cluster create` over `ports` (one replica per master, no prompt),
/// its output in `<name>-cluster-create.log`.
async fn create(cli: &Path, ports: &[u16], logs: &Path, name: &str) -> anyhow::Result<()> {
    let (log, file) = spawn::log_file(logs, &format!("{name}-cluster-create"))?;
    let stdout = file.try_clone().context("opening the redis-cli log")?;
    let mut cmd = Command::new(cli);
    cmd.args(["--cluster", "create"])
        .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(file))
        .kill_on_drop(true);
    let what = format!("{} --cluster create", cli.display());
    let status = tokio::time::timeout(FORM_WAIT, cmd.status())
        .await
        .with_context(|| format!("{what} did not finish in {FORM_WAIT:?}"))?
        .with_context(|| format!("starting {what} (is redis-cli installed?)"))?;
    if !status.success() {
        bail!(
            "{what} failed ({status}); its output ends with:\n{}",
            spawn::tail(&log)
        );
    }
    Ok(())
}

/// Polls the nodes until [`ready`] holds; returns, per node, whether it is a master.
async fn wait_ready(procs: &mut [Spawned], ports: &[u16]) -> anyhow::Result<Vec<bool>> {
    let deadline = tokio::time::Instant::now() + FORM_WAIT;
    loop {
        for node in procs.iter_mut() {
            if node.exited() {
                bail!(
                    "{} exited while the cluster formed; its log ends with:\n{}",
                    node.what(),
                    spawn::tail(node.log())
                );
            }
        }
        let why = match poll(ports).await {
            Ok(masters) => return Ok(masters),
            Err(why) => why,
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("the Redis Cluster was not ready after {FORM_WAIT:?}: {why}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every node's `CLUSTER INFO` and `INFO replication`, judged by [`ready`]; `Err` says
/// what is not ready yet.
async fn poll(ports: &[u16]) -> Result<Vec<bool>, String> {
    let mut roles = Vec::with_capacity(ports.len());
    for &port in ports {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let cluster = redis_stats::bulk(addr, "CLUSTER INFO")
            .await
            .ok_or_else(|| format!("port {port} does not answer CLUSTER INFO"))?;
        if !cluster_ok(&cluster) {
            return Err(format!(
                "port {port}: cluster_state {}, cluster_size {}, known nodes {}",
                info_field(&cluster, "cluster_state").unwrap_or("?"),
                info_field(&cluster, "cluster_size").unwrap_or("?"),
                info_field(&cluster, "cluster_known_nodes").unwrap_or("?"),
            ));
        }
        let replication = redis_stats::bulk(addr, "INFO replication")
            .await
            .ok_or_else(|| format!("port {port} does not answer INFO replication"))?;
        roles.push(parse_role(&replication).ok_or_else(|| format!("port {port} reports no role"))?);
    }
    ready(&roles)
}

/// A node's part in the cluster, from `INFO replication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Master,
    /// `in_sync`: its link to the master is up (the first full sync is done), so no
    /// sync runs inside a measured window.
    Replica {
        in_sync: bool,
    },
}

fn parse_role(info: &str) -> Option<Role> {
    match info_field(info, "role")? {
        "master" => Some(Role::Master),
        "slave" => Some(Role::Replica {
            in_sync: info_field(info, "master_link_status") == Some("up"),
        }),
        _ => None,
    }
}

/// Whether a node's `CLUSTER INFO` says it serves every slot with all masters and
/// nodes known.
fn cluster_ok(info: &str) -> bool {
    let count = |key| info_field(info, key).and_then(|v| v.parse::<usize>().ok());
    info_field(info, "cluster_state") == Some("ok")
        && count("cluster_size") == Some(MASTERS)
        && count("cluster_known_nodes") == Some(NODES)
}

/// Ready: [`MASTERS`] masters and every replica in sync; `Ok` says, per node, whether
/// it is a master.
fn ready(roles: &[Role]) -> Result<Vec<bool>, String> {
    let masters = roles.iter().filter(|r| **r == Role::Master).count();
    if masters != MASTERS {
        return Err(format!("{masters} masters, expected {MASTERS}"));
    }
    let syncing = roles
        .iter()
        .filter(|r| **r == Role::Replica { in_sync: false })
        .count();
    if syncing > 0 {
        return Err(format!("{syncing} replicas still syncing"));
    }
    Ok(roles.iter().map(|r| *r == Role::Master).collect())
}

/// The value of `key:value` in an `INFO`-style reply.
fn info_field<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `bin` runs here (the cluster test needs Redis 7 installed).
    fn installed(bin: &str) -> bool {
        std::process::Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[tokio::test]
    async fn forms_a_cluster_of_our_own_servers_and_stops_it() -> anyhow::Result<()> {
        if !installed("redis-server") || !installed("redis-cli") {
            eprintln!("skipped: redis-server or redis-cli not installed");
            return Ok(());
        }
        let work = tempfile::tempdir()?;
        let cluster = RedisCluster::start("redis-server", work.path(), "t").await?;
        assert_eq!(cluster.nodes.len(), NODES);
        assert_eq!(cluster.master_pids().len(), MASTERS);
        assert_eq!(cluster.master_addrs().len(), MASTERS);
        assert!(cluster.url().starts_with("redis-cluster://127.0.0.1:"));
        let stats = redis_stats::read_all(&cluster.master_addrs()).await;
        assert!(stats.is_some(), "every master answers INFO commandstats");
        let pids = cluster.pids();
        drop(cluster.into_procs());
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "redis-server {pid} still runs"
            );
        }
        Ok(())
    }

    #[test]
    fn urls_name_every_node_as_a_seed() {
        assert_eq!(
            url_of(&[7000, 7001, 7002]),
            "redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001&node=127.0.0.1:7002"
        );
        assert_eq!(url_of(&[7000]), "redis-cluster://127.0.0.1:7000");
    }

    #[test]
    fn redis_cli_comes_from_beside_redis_server() {
        assert_eq!(cli_beside("redis-server"), PathBuf::from("redis-cli"));
        assert_eq!(
            cli_beside("/opt/redis/bin/redis-server"),
            PathBuf::from("/opt/redis/bin/redis-cli")
        );
        assert_eq!(cli_beside("./redis-server"), PathBuf::from("./redis-cli"));
    }

    #[test]
    fn node_args_keep_each_node_apart() {
        let args = node_args(Path::new("/w/a-cluster"), 7000, 41000);
        let value = |flag: &str| {
            let i = args.iter().position(|a| a == flag)?;
            args.get(i + 1).map(String::as_str)
        };
        assert_eq!(value("--cluster-enabled"), Some("yes"));
        assert_eq!(
            value("--cluster-config-file"),
            Some("/w/a-cluster/nodes-7000.conf")
        );
        assert_eq!(value("--cluster-node-timeout"), Some("1000"));
        assert_eq!(value("--cluster-port"), Some("41000"));
        assert_eq!(value("--dir"), Some("/w/a-cluster"));
        assert_eq!(value("--dbfilename"), Some("dump-7000.rdb"));
    }

    #[test]
    fn reads_cluster_info() {
        let ok = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:6\r\ncluster_size:3\r\n";
        assert!(cluster_ok(ok));
        assert!(!cluster_ok(&ok.replace("state:ok", "state:fail")));
        // Slots assigned before every node has met the others.
        assert!(!cluster_ok(&ok.replace("known_nodes:6", "known_nodes:4")));
        assert!(!cluster_ok(&ok.replace("size:3", "size:0")));
        assert!(!cluster_ok(""));
        assert_eq!(info_field(ok, "cluster_size"), Some("3"));
        assert_eq!(info_field(ok, "cluster"), None);
    }

    #[test]
    fn reads_roles() {
        assert_eq!(
            parse_role("# Replication\r\nrole:master\r\nconnected_slaves:1\r\n"),
            Some(Role::Master)
        );
        assert_eq!(
            parse_role("role:slave\r\nmaster_host:127.0.0.1\r\nmaster_link_status:up\r\n"),
            Some(Role::Replica { in_sync: true })
        );
        assert_eq!(
            parse_role("role:slave\r\nmaster_link_status:down\r\n"),
            Some(Role::Replica { in_sync: false })
        );
        assert_eq!(parse_role("connected_slaves:0\r\n"), None);
    }

    #[test]
    fn ready_needs_three_masters_and_synced_replicas() {
        let (m, up, down) = (
            Role::Master,
            Role::Replica { in_sync: true },
            Role::Replica { in_sync: false },
        );
        assert_eq!(
            ready(&[m, m, m, up, up, up]),
            Ok(vec![true, true, true, false, false, false])
        );
        assert!(ready(&[m, m, m, up, up, down]).is_err());
        assert!(ready(&[m, m, up, up, up, up]).is_err());
        assert!(ready(&[]).is_err());
    }
}

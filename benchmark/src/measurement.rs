//! One measured window (or several merged): the recorder's numbers plus the CPU the
//! server, its Redis (every process of a Redis Cluster, the masters also apart) and the
//! harness itself burnt meanwhile, and memory where the scenario reads it. Rounds of a
//! comparison merge into one [`Measurement`] per target.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::proc_stat;
use crate::recorder::WindowData;

/// Reads CPU time and memory of the processes a run measures.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    /// The server's processes: one per node of a multi-node target, whose CPU and memory
    /// count as one server's (none known: no server numbers).
    pub server_pids: Vec<u32>,
    /// The Redis processes: one, or every node of a cluster, replicas included (they
    /// replay every write, so they cost what a deployment's would); none known: no
    /// Redis numbers.
    pub redis_pids: Vec<u32>,
    /// A cluster's masters among `redis_pids`, reported apart; empty for one Redis.
    pub redis_master_pids: Vec<u32>,
    /// Where to read `INFO commandstats` (summed over several: a cluster's masters).
    pub redis_addrs: Vec<std::net::SocketAddr>,
}

/// Cumulative CPU times at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub server: Option<Duration>,
    pub redis: Option<Duration>,
    pub redis_masters: Option<Duration>,
    pub bench: Duration,
    /// The whole machine's busy time.
    pub system: Option<Duration>,
}

/// CPU spent between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server: Option<Duration>,
    /// Every Redis process.
    pub redis: Option<Duration>,
    /// A cluster's masters (part of `redis`).
    pub redis_masters: Option<Duration>,
    pub bench: Duration,
    /// Busy time of everything else on the machine (other processes, the kernel's
    /// own threads): disturbance, when it is large.
    pub others: Option<Duration>,
}

impl Probe {
    pub fn sample(&self) -> CpuSample {
        CpuSample {
            server: sum_over(&self.server_pids, proc_stat::tree_cpu_time),
            redis: sum_over(&self.redis_pids, proc_stat::cpu_time),
            redis_masters: sum_over(&self.redis_master_pids, proc_stat::cpu_time),
            bench: proc_stat::cpu_time(std::process::id()).unwrap_or_default(),
            system: proc_stat::system_busy().ok(),
        }
    }

    /// Resident memory of the server (and its children, on every node), in bytes.
    pub fn server_rss(&self) -> Option<u64> {
        sum_over(&self.server_pids, proc_stat::tree_rss_bytes)
    }

    /// Redis's per-command calls and CPU so far (a cluster's masters summed), when its
    /// address is known.
    pub async fn redis_commands(&self) -> Option<crate::redis_stats::CommandStats> {
        crate::redis_stats::read_all(&self.redis_addrs).await
    }

    /// Resident memory of every Redis process, in bytes.
    pub fn redis_rss(&self) -> Option<u64> {
        sum_over(&self.redis_pids, proc_stat::rss_bytes)
    }
}

/// `read` summed over `pids` (the nodes of a server, the processes of a Redis Cluster);
/// `None` when none is known or one cannot be read (a process that died must not pass
/// for a cheap one).
fn sum_over<T: std::iter::Sum<T>>(
    pids: &[u32],
    read: impl Fn(u32) -> Result<T, proc_stat::ProcError>,
) -> Option<T> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| read(pid).ok()).sum()
}

impl CpuSample {
    /// CPU spent from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuSample) -> CpuUse {
        let diff = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(a.saturating_sub(b)),
            _ => None,
        };
        let server = diff(self.server, earlier.server);
        let redis = diff(self.redis, earlier.redis);
        let redis_masters = diff(self.redis_masters, earlier.redis_masters);
        let bench = self.bench.saturating_sub(earlier.bench);
        let others = diff(self.system, earlier.system).map(|busy| {
            busy.saturating_sub(bench + server.unwrap_or_default() + redis.unwrap_or_default())
        });
        CpuUse {
            server,
            redis,
            redis_masters,
            bench,
            others,
        }
    }
}

impl CpuUse {
    fn add(&mut self, other: &CpuUse) {
        let sum = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => Some(a + b),
            (a, None) => a,
            (None, b) => b,
        };
        self.server = sum(self.server, other.server);
        self.redis = sum(self.redis, other.redis);
        self.redis_masters = sum(self.redis_masters, other.redis_masters);
        self.bench += other.bench;
        self.others = sum(self.others, other.others);
    }
}

/// Server memory around a population of idle connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub server_before: u64,
    pub server_after: u64,
    pub redis_before: Option<u64>,
    pub redis_after: Option<u64>,
    pub bench_after: u64,
    pub connections: u64,
}

/// The numbers of one or more measured windows against one target.
#[derive(Clone)]
pub struct Measurement {
    pub scenario: &'static str,
    pub target: String,
    /// Offered rate (ops/s) for rate scenarios, connections for count scenarios.
    pub level: f64,
    pub connections: u64,
    pub rooms: u32,
    pub users_per_room: u32,
    /// Length of the measured window (summed over merged rounds).
    pub window: Duration,
    /// The op whose successes are "operations" in rates and CPU per op.
    pub primary: &'static str,
    /// Ops recorded while setting up (before the window): no per-second rate for them.
    pub setup_ops: &'static [&'static str],
    pub data: WindowData,
    pub cpu: CpuUse,
    pub memory: Option<Memory>,
    pub rounds: u32,
    /// Scenario-specific details (reload timeline, plugin versions seen, ...).
    pub extra: Map<String, Value>,
}

impl Measurement {
    /// Successful primary operations.
    pub fn primary_ok(&self) -> u64 {
        self.data.ops.get(self.primary).map_or(0, |(ok, _, _)| *ok)
    }

    /// Errors of every kind in the window.
    pub fn error_total(&self) -> u64 {
        self.data.errors.values().sum()
    }

    /// Folds another round against the same target into this one.
    pub fn merge(&mut self, other: Measurement) {
        self.window += other.window;
        self.rounds += other.rounds;
        for (name, (ok, err, hist)) in other.data.ops {
            let entry = self.data.ops.entry(name).or_default();
            entry.0 += ok;
            entry.1 += err;
            entry.2.merge(&hist);
        }
        for (name, n) in other.data.counters {
            *self.data.counters.entry(name).or_default() += n;
        }
        for (name, n) in other.data.errors {
            *self.data.errors.entry(name).or_default() += n;
        }
        self.cpu.add(&other.cpu);
        if let (Some(mine), Some(theirs)) = (&mut self.memory, other.memory) {
            // Memory per connection is averaged over rounds by summing both sides.
            mine.server_before += theirs.server_before;
            mine.server_after += theirs.server_after;
            mine.connections += theirs.connections;
            mine.bench_after = mine.bench_after.max(theirs.bench_after);
        }
        let round = format!("round{}", self.rounds);
        if !other.extra.is_empty() {
            self.extra.insert(round, Value::Object(other.extra));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_numbers_sum_over_nodes() {
        let me = std::process::id();
        let one = Probe {
            server_pids: vec![me],
            ..Probe::default()
        };
        let two = Probe {
            server_pids: vec![me, me],
            ..Probe::default()
        };
        let (rss1, rss2) = (one.server_rss().unwrap_or(0), two.server_rss().unwrap_or(0));
        // Counted once per node (our own process twice); RSS moves a little between reads.
        assert!(rss1 > 0 && rss2 > rss1 * 3 / 2, "{rss1} {rss2}");
        assert_eq!(Probe::default().server_rss(), None);
        assert_eq!(Probe::default().sample().server, None);
        let gone = Probe {
            server_pids: vec![me, u32::MAX],
            ..Probe::default()
        };
        assert_eq!(gone.server_rss(), None, "an unreadable node spoils the sum");
    }

    #[test]
    fn redis_numbers_sum_over_every_process() {
        let me = std::process::id();
        let single = Probe {
            redis_pids: vec![me],
            ..Probe::default()
        };
        let sample = single.sample();
        assert!(sample.redis.is_some());
        assert_eq!(sample.redis_masters, None, "one Redis has no masters apart");
        let cluster = Probe {
            redis_pids: vec![me; 6],
            redis_master_pids: vec![me; 3],
            ..Probe::default()
        };
        let (rss1, rss6) = (
            single.redis_rss().unwrap_or(0),
            cluster.redis_rss().unwrap_or(0),
        );
        assert!(rss1 > 0 && rss6 > rss1 * 5, "{rss1} {rss6}");
        let sample = cluster.sample();
        assert!(sample.redis.is_some() && sample.redis_masters.is_some());
        assert_eq!(Probe::default().redis_rss(), None);
    }

    #[test]
    fn others_leave_out_every_redis_process() {
        let s = |redis: u64, masters: u64, system: u64| CpuSample {
            server: Some(Duration::from_millis(100)),
            redis: Some(Duration::from_millis(redis)),
            redis_masters: Some(Duration::from_millis(masters)),
            bench: Duration::from_millis(10),
            system: Some(Duration::from_millis(system)),
        };
        let used = s(600, 400, 2000).since(&s(100, 50, 1000));
        assert_eq!(used.redis, Some(Duration::from_millis(500)));
        assert_eq!(used.redis_masters, Some(Duration::from_millis(350)));
        // 1000 busy - 0 server - 500 redis (masters are part of it) - 0 bench.
        assert_eq!(used.others, Some(Duration::from_millis(500)));
    }
}

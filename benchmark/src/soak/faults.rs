//! The soak's fault schedule, so a 2-minute soak breaks the same things as a 10-minute
//! one: a warm-up of 10 % of `--duration` but at least 30 s (every member has chatted
//! and the plugin's instances are warm before the baseline is read), then, at shares of
//! the time left, a node SIGKILLed at 8 % (back 15 s later), Redis SIGSTOPped for 3 s at
//! 30 %, Redis restarted empty at 45 %, the namespaced node cut off from Redis for 10 s
//! at 62 %, and load without faults to the end. Each step lands in the timeline the
//! report prints.

use std::time::Duration;

use tokio::time::Instant;

use super::fleet::Fleet;
use super::member::Shared;
use crate::proc_stat;

/// One node's memory and descriptors at a moment.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub pid: u32,
    pub rss: u64,
    pub fds: u64,
}

/// Open descriptors of `pid` (entries of `/proc/<pid>/fd`).
pub fn fd_count(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Every running node's sample, by node.
pub fn sample(fleet: &Fleet) -> Vec<Option<Sample>> {
    (0..fleet.dir.count())
        .map(|i| {
            let pid = fleet.node_pid(i)?;
            Some(Sample {
                pid,
                rss: proc_stat::rss_bytes(pid).ok()?,
                fds: fd_count(pid),
            })
        })
        .collect()
}

/// What happened, when (ms from the start).
pub struct Timeline {
    pub events: Vec<(u64, String)>,
    pub baseline: Vec<Option<Sample>>,
    /// Nodes restarted during the soak (their baseline does not apply).
    pub restarted: Vec<usize>,
    start: Instant,
}

impl Timeline {
    fn note(&mut self, what: impl Into<String>) {
        let at = self.start.elapsed().as_millis() as u64;
        let what = what.into();
        eprintln!("soak +{:>7.1} s  {what}", at as f64 / 1000.0);
        self.events.push((at, what));
    }
}

/// The shortest warm-up: one chat round of every member (20 s) and then some.
const MIN_WARM_UP: Duration = Duration::from_secs(30);

/// When each fault happens.
pub struct Schedule {
    duration: Duration,
    partition: bool,
}

impl Schedule {
    pub fn new(duration: Duration, partition: bool) -> Self {
        Self {
            duration,
            partition,
        }
    }

    fn warm_up(&self) -> Duration {
        self.duration.mul_f64(0.10).max(MIN_WARM_UP)
    }

    /// `share` of the way from the end of warm-up to the end.
    fn at(&self, share: f64) -> Duration {
        let warm = self.warm_up();
        warm + self.duration.saturating_sub(warm).mul_f64(share)
    }

    /// Waits for every member to join, then runs the faults to the end of the duration.
    pub async fn run(
        &self,
        fleet: &mut Fleet,
        shared: &Shared,
        members: u32,
    ) -> anyhow::Result<Timeline> {
        let start = Instant::now();
        let mut t = Timeline {
            events: Vec::new(),
            baseline: Vec::new(),
            restarted: Vec::new(),
            start,
        };
        let joined = |s: &Shared| s.expected_rooms().iter().map(Vec::len).sum::<usize>();
        let deadline = start + Duration::from_secs(120);
        while joined(shared) < members as usize {
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {} of {members} members joined within 120 s",
                joined(shared)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        t.note(format!("all {members} members joined"));
        let progress = tokio::spawn(progress(shared.ledger.clone(), start));
        let steps = self.steps(fleet, shared, &mut t, start).await;
        progress.abort();
        steps?;
        Ok(t)
    }

    async fn steps(
        &self,
        fleet: &mut Fleet,
        shared: &Shared,
        t: &mut Timeline,
        start: Instant,
    ) -> anyhow::Result<()> {
        tokio::time::sleep_until(start + self.warm_up()).await;
        t.baseline = sample(fleet);
        t.note(format!("warm-up over: baseline {}", describe(&t.baseline)));

        tokio::time::sleep_until(start + self.at(0.08)).await;
        let pid = fleet.node_pid(0);
        fleet.kill_node(0).await?;
        t.note(format!(
            "SIGKILL node 0 (pid {pid:?}): its members reconnect to node 1 and resume"
        ));
        tokio::time::sleep(Duration::from_secs(15)).await;
        fleet.restart_node(0).await?;
        t.restarted.push(0);
        t.note(format!(
            "node 0 restarted (pid {:?}); its members go home (migrations so far {})",
            fleet.node_pid(0),
            shared.migrations.load(std::sync::atomic::Ordering::Relaxed)
        ));

        tokio::time::sleep_until(start + self.at(0.30)).await;
        fleet.pause_redis(true)?;
        t.note("SIGSTOP redis");
        tokio::time::sleep(Duration::from_secs(3)).await;
        fleet.pause_redis(false)?;
        t.note("SIGCONT redis (stopped 3 s)");

        tokio::time::sleep_until(start + self.at(0.45)).await;
        let took = fleet.restart_redis().await?;
        t.note(format!(
            "redis SIGKILLed and restarted empty on its port (pid {:?}, down {} ms)",
            fleet.redis_pid(),
            took.as_millis()
        ));

        tokio::time::sleep_until(start + self.at(0.62)).await;
        match (&fleet.netns, self.partition) {
            (Some(ns), true) => {
                ns.cut().map_err(anyhow::Error::msg)?;
                t.note(format!(
                    "node {} cut off from redis (link down in {})",
                    fleet.dir.count() - 1,
                    ns.name
                ));
                tokio::time::sleep(Duration::from_secs(10)).await;
                ns.heal().map_err(anyhow::Error::msg)?;
                t.note("partition healed (10 s)");
            }
            _ => t.note("partition fault SKIPPED (no network namespace: see the start of the run)"),
        }
        tokio::time::sleep_until(start + self.duration).await;
        t.note("load over: chat and patches stop, heartbeats go on");
        Ok(())
    }
}

/// Every 15 s, how many requests were answered so far (to stderr).
async fn progress(ledger: std::sync::Arc<super::ledger::Ledger>, start: Instant) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let answered: u64 = ledger.requests().values().sum();
        eprintln!(
            "soak +{:>7.1} s  {answered} requests answered",
            start.elapsed().as_secs_f64()
        );
    }
}

/// `node i: pid, RSS, fds` for a report line.
pub fn describe(samples: &[Option<Sample>]) -> String {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            Some(s) => format!(
                "node {i} pid {} RSS {:.1} MB fds {}",
                s.pid,
                s.rss as f64 / 1e6,
                s.fds
            ),
            None => format!("node {i} down"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

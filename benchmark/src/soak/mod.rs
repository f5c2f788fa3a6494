//! `soak`: three rtm nodes on one private Redis, 2,000 members joining, heartbeating,
//! patching and chatting across the nodes for `--duration` (10 minutes by default)
//! while a schedule breaks things: a node is SIGKILLed (its members reconnect to the
//! next node and `resume`, and go home once it is back), Redis is SIGSTOPped for 3 s,
//! Redis is restarted empty, and one node is cut off from Redis for 10 s (its own
//! network namespace; root only, skipped with a message elsewhere). The invariants
//! ([`ledger`]) are checked over everything the members saw; then the rooms must
//! converge (every node's snapshot of every room equal to the members really joined,
//! within TTL + reaper interval), and the nodes that ran throughout must hold no more
//! memory (10 %) and descriptors than after warm-up. Exit status 1 on any violation.

mod faults;
mod fleet;
mod ledger;
mod member;
mod netns;
mod report;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use crate::cli::Args;
use fleet::{Fleet, FleetSpec};
use ledger::Ledger;
use member::{Member, Phase, Shared};

/// Registration lifetime on the soak's nodes: short, so convergence is quick to check.
const TTL_MS: u64 = 20_000;
const REAPER_MS: u64 = 2_000;
/// How long after its ack a delivery may lag (a partition holds packets for 10 s).
const SETTLE: Duration = Duration::from_secs(30);
/// Members in the default soak.
pub const DEFAULT_MEMBERS: u32 = 2_000;
/// The soak's length unless `--duration` is given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(600);
/// The shortest soak whose fault schedule fits (faults do not overlap).
pub const MIN_DURATION: Duration = Duration::from_secs(120);

/// Runs the soak; `Ok(true)` when every invariant held.
pub async fn run(args: &Args) -> anyhow::Result<bool> {
    anyhow::ensure!(
        args.duration >= MIN_DURATION,
        "soak needs --duration of at least {MIN_DURATION:?} for its fault schedule"
    );
    let temp = tempfile::Builder::new()
        .prefix("rtm-soak-")
        .tempdir()
        .context("creating a work dir")?;
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => temp.path().to_owned(),
    };
    let plugins = work.join("plugins");
    std::fs::create_dir_all(&plugins).context("creating the plugins dir")?;
    std::fs::copy(&args.chat_plugin, plugins.join("chat.wasm")).with_context(|| {
        format!(
            "copying the chat plugin {} (make guests builds it)",
            args.chat_plugin.display()
        )
    })?;

    let (netns, partition_note) = partition_namespace();
    let mut env = vec![
        ("RUST_LOG".to_owned(), "warn".to_owned()),
        ("PRESENCE_TTL_MS".to_owned(), TTL_MS.to_string()),
        (
            "PRESENCE_REAPER_INTERVAL_MS".to_owned(),
            REAPER_MS.to_string(),
        ),
        ("REDIS_TIMEOUT_MS".to_owned(), "1000".to_owned()),
        ("SOCKETIO_PING_INTERVAL_MS".to_owned(), "5000".to_owned()),
        ("SOCKETIO_PING_TIMEOUT_MS".to_owned(), "5000".to_owned()),
    ];
    env.extend(args.host_env.iter().cloned());
    let spec = FleetSpec {
        host_bin: args.host_bin.clone(),
        redis_bin: args.redis_bin.clone(),
        plugins_dir: plugins,
        env,
        nodes: 3,
    };
    let mut fleet = Fleet::start(spec, &work, netns).await?;
    eprintln!(
        "soak: redis pid {:?}, nodes {:?}; {partition_note}",
        fleet.redis_pid(),
        (0..fleet.dir.count())
            .map(|i| (fleet.node_pid(i), fleet.dir.addr(i)))
            .collect::<Vec<_>>()
    );

    let members = args.connections.unwrap_or(DEFAULT_MEMBERS);
    let ledger = Arc::new(Ledger::new(args.users_per_room, SETTLE));
    let (phase_tx, phase_rx) = watch::channel(Phase::Running);
    let shared = Arc::new(Shared::new(
        ledger.clone(),
        fleet.dir.clone(),
        phase_rx,
        members as usize,
        (Duration::from_secs(5), Duration::from_secs(20), 0.1),
        args.ack_timeout,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for m in 0..members {
        let member = Member::new(m, m as usize % fleet.dir.count(), shared.clone());
        tasks.spawn(async move {
            // Spread the connects over 5 s.
            tokio::time::sleep(Duration::from_micros(
                5_000_000 / u64::from(members.max(1)) * u64::from(m),
            ))
            .await;
            member.run().await;
        });
    }
    let result = faults::Schedule::new(args.duration, fleet.netns.is_some())
        .run(&mut fleet, &shared, members)
        .await;
    let outcome = match result {
        Ok(timeline) => {
            let _ = phase_tx.send(Phase::Quiet);
            let checked =
                report::finish(&fleet, &shared, timeline, args.duration, TTL_MS + REAPER_MS).await;
            let _ = phase_tx.send(Phase::Stop);
            checked
        }
        Err(e) => {
            let _ = phase_tx.send(Phase::Stop);
            Err(e)
        }
    };
    let drained = tokio::time::timeout(Duration::from_secs(20), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    if args.work_dir.is_some() {
        eprintln!("soak: logs kept in {}", work.display());
    }
    drop(fleet);
    outcome
}

/// The partitioned node's namespace, or why there is none.
fn partition_namespace() -> (Option<netns::Netns>, String) {
    if !rustix::process::geteuid().is_root() {
        return (
            None,
            "partition fault SKIPPED: cutting a node off from Redis needs root (ip netns)".into(),
        );
    }
    match netns::Netns::create(std::process::id()) {
        Ok(ns) => {
            let note = format!(
                "node 2 runs in network namespace {} ({}), reaching Redis at {}",
                ns.name, ns.node_ip, ns.redis_ip
            );
            (Some(ns), note)
        }
        Err(why) => (
            None,
            format!("partition fault SKIPPED: cannot create a network namespace: {why}"),
        ),
    }
}

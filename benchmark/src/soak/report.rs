//! The end of a soak: let deliveries settle, check that every node's snapshot of every
//! room converges on the members really joined, compare memory and descriptors with
//! warm-up, and print the fault timeline and every invariant with its count of checks
//! and violations.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::faults::{self, Sample, Timeline};
use super::fleet::Fleet;
use super::ledger::Verdict;
use super::member::{Shared, client_options, room_name};
use crate::client::{Client, NoEvents};

/// RSS after the soak may exceed warm-up's by this share.
const RSS_SLACK: f64 = 0.10;

/// Settles, checks, prints; `Ok(true)` when nothing was violated.
pub async fn finish(
    fleet: &Fleet,
    shared: &Shared,
    timeline: Timeline,
    duration: Duration,
    converge_ms: u64,
) -> anyhow::Result<bool> {
    let settle = shared.ledger.settle();
    eprintln!("soak: quiet for {settle:?} (heartbeats only) so late deliveries land");
    tokio::time::sleep(settle).await;
    let convergence = converge(fleet, shared, Duration::from_millis(converge_ms)).await?;
    let after = settled_sample(fleet, &timeline).await;
    let mut verdicts = shared.ledger.verdicts();
    verdicts.push(convergence);
    verdicts.push(memory_verdict(&timeline, &after));
    print(fleet, shared, &timeline, &after, &verdicts, duration);
    Ok(verdicts.iter().all(|v| v.violations == 0))
}

/// The nodes' sample once the convergence probes' connections are gone from them: up to
/// 10 s for every node that ran throughout to hold no more descriptors than at warm-up
/// (a closed connection leaves the server's table when it notices the close).
async fn settled_sample(fleet: &Fleet, t: &Timeline) -> Vec<Option<Sample>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = faults::sample(fleet);
        let settled = t.baseline.iter().zip(&now).enumerate().all(|(i, (b, a))| {
            t.restarted.contains(&i) || matches!((b, a), (Some(b), Some(a)) if a.fds <= b.fds)
        });
        if settled || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Snapshots of every room from every node, polled until they all equal the members
/// joined (or `within` runs out): one check per room and node, a violation per room
/// and node still different at the end.
async fn converge(fleet: &Fleet, shared: &Shared, within: Duration) -> anyhow::Result<Verdict> {
    let mut probes = Vec::new();
    for i in 0..fleet.dir.count() {
        let addr = fleet
            .dir
            .addr(i)
            .ok_or_else(|| anyhow::anyhow!("node {i} has no address"))?;
        let opts = client_options(addr, Duration::from_secs(10));
        probes.push(Client::connect(&opts, None, Arc::new(NoEvents)).await?);
    }
    let began = Instant::now();
    loop {
        let expected = shared.expected_rooms();
        let mut differ = Vec::new();
        for (r, want) in expected.iter().enumerate() {
            for (i, probe) in probes.iter().enumerate() {
                let got = snapshot(probe, r as u32).await;
                if got.as_ref() != Some(want) {
                    differ.push(format!(
                        "room {} on node {i}: snapshot {} ids, members joined {} ({})",
                        room_name(r as u32),
                        got.as_ref().map_or(0, Vec::len),
                        want.len(),
                        got.map_or("no answer".to_owned(), |g| diff(&g, want))
                    ));
                }
            }
        }
        let checks = (expected.len() * probes.len()) as u64;
        if differ.is_empty() || began.elapsed() >= within {
            eprintln!(
                "soak: rooms {} after {} ms",
                if differ.is_empty() {
                    "agree"
                } else {
                    "still differ"
                },
                began.elapsed().as_millis()
            );
            return Ok(Verdict {
                name: "snapshots of every room agree on every node and equal the members joined (within TTL + reaper interval)",
                checks,
                violations: differ.len() as u64,
                examples: differ.into_iter().take(10).collect(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The connIds node's snapshot of room `r` lists, sorted.
async fn snapshot(probe: &Client, r: u32) -> Option<Vec<String>> {
    let payload = json!({ "roomId": room_name(r) }).to_string();
    let reply = probe.request("presence:snapshot", payload).await.ok()?;
    let reply: Vec<Value> = serde_json::from_str(&reply).ok()?;
    let first = reply.first()?;
    let mut ids: Vec<String> = first["snapshot"]
        .as_array()?
        .iter()
        .filter_map(|m| m["connId"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    Some(ids)
}

fn diff(got: &[String], want: &[String]) -> String {
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
    format!("extra {extra:?}, missing {missing:?}")
}

/// Nodes that ran the whole soak: RSS within [`RSS_SLACK`] of warm-up, descriptors no
/// more than at warm-up.
fn memory_verdict(t: &Timeline, after: &[Option<Sample>]) -> Verdict {
    let (mut checks, mut violations, mut examples) = (0, 0, Vec::new());
    for (i, (before, after)) in t.baseline.iter().zip(after).enumerate() {
        if t.restarted.contains(&i) {
            continue;
        }
        let (Some(before), Some(after)) = (before, after) else {
            continue;
        };
        checks += 2;
        let limit = before.rss as f64 * (1.0 + RSS_SLACK);
        if after.rss as f64 > limit {
            violations += 1;
            examples.push(format!(
                "node {i}: RSS {:.1} MB after, {:.1} MB after warm-up (+{:.1} %)",
                after.rss as f64 / 1e6,
                before.rss as f64 / 1e6,
                (after.rss as f64 / before.rss as f64 - 1.0) * 100.0
            ));
        }
        if after.fds > before.fds {
            violations += 1;
            examples.push(format!(
                "node {i}: {} fds after, {} after warm-up",
                after.fds, before.fds
            ));
        }
    }
    Verdict {
        name: "nodes that ran throughout: RSS within 10 % of warm-up, fds back to warm-up",
        checks,
        violations,
        examples,
    }
}

fn print(
    fleet: &Fleet,
    shared: &Shared,
    t: &Timeline,
    after: &[Option<Sample>],
    verdicts: &[Verdict],
    duration: Duration,
) {
    println!(
        "# soak: {} nodes, one redis, {duration:?}",
        fleet.dir.count()
    );
    println!("\n## fault timeline (ms from the start)");
    for (at, what) in &t.events {
        println!("  +{:>9.1} s  {what}", *at as f64 / 1000.0);
    }
    println!("\n## requests by event and outcome");
    for ((event, outcome), n) in shared.ledger.requests() {
        println!("  {event:<20} {outcome:<16} {n}");
    }
    println!(
        "  connects {}, failed connects {}, moves home {}, rtm:gap notices {}, foreign chat messages {}",
        shared.connects.load(Ordering::Relaxed),
        shared.connect_failures.load(Ordering::Relaxed),
        shared.migrations.load(Ordering::Relaxed),
        shared.ledger.gaps(),
        shared.ledger.foreign_chats()
    );
    println!("\n## memory and descriptors");
    println!("  after warm-up: {}", faults::describe(&t.baseline));
    println!("  after soak:    {}", faults::describe(after));
    if !t.restarted.is_empty() {
        println!(
            "  (restarted during the soak, not compared: nodes {:?})",
            t.restarted
        );
    }
    println!("\n## invariants");
    for v in verdicts {
        println!(
            "  [{}] {}: {} checks, {} violations",
            if v.violations == 0 { "ok" } else { "FAIL" },
            v.name,
            v.checks,
            v.violations
        );
        for e in &v.examples {
            println!("        {e}");
        }
    }
}

//! Criterion: one presence heartbeat on each store, through the `rtm-host` library
//! (no Socket.IO), so a regression in a store shows up apart from the network path.
//!
//! - `heartbeat/memory`: one registration, `MemoryStore`.
//! - `heartbeat/redis`: one registration, `RedisStore` on a private `redis-server`
//!   started here (skipped with a note when `redis-server` is missing). This is a
//!   loopback round trip plus one EVALSHA, i.e. latency, not CPU: the load scenarios
//!   report CPU-microseconds per heartbeat.
//! - `heartbeat_batch64/*`: 64 registrations in one call, the shape the host's
//!   heartbeat batcher produces; throughput is per registration.
//!
//! The plugin runtime has its own bench: `plugin_dispatch.rs`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rtm_host::backend::RedisBackend;
use rtm_host::presence::memory::MemoryStore;
use rtm_host::presence::redis::RedisStore;
use rtm_host::presence::store::{JoinSpec, PresenceStore, TouchSpec};
use tokio::runtime::Runtime;

const BATCH: usize = 64;

/// Joins `n` registrations `c0..cn` owned by `s0..sn`.
async fn seed(store: &dyn PresenceStore, n: usize) -> bool {
    for i in 0..n {
        let (conn, user, owner) = (format!("c{i}"), format!("u{i}"), format!("s{i}"));
        let joined = store
            .join(JoinSpec {
                conn_id: &conn,
                room_id: "bench-room",
                user_id: &user,
                state: None,
                owner: &owner,
                node: "bench-node",
                info: None,
                max_members: 0,
            })
            .await;
        if !matches!(joined, Ok(Ok(_))) {
            return false;
        }
    }
    true
}

/// A heartbeat of one seeded registration: (connection, owner, user).
fn touch((conn_id, owner, user_id): &(String, String, String)) -> TouchSpec<'_> {
    TouchSpec {
        conn_id,
        room_id: "bench-room",
        user_id,
        owner,
    }
}

fn bench_store(c: &mut Criterion, rt: &Runtime, name: &str, store: &dyn PresenceStore) {
    if !rt.block_on(seed(store, BATCH)) {
        eprintln!("presence_store: seeding the {name} store failed; skipping it");
        return;
    }
    let ids: Vec<(String, String, String)> = (0..BATCH)
        .map(|i| (format!("c{i}"), format!("s{i}"), format!("u{i}")))
        .collect();
    let one = [touch(&ids[0])];
    let batch: Vec<TouchSpec<'_>> = ids.iter().map(touch).collect();

    let mut group = c.benchmark_group("heartbeat");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.to_async(rt)
            .iter(|| async { store.heartbeat(&one).await });
    });
    group.finish();

    let mut group = c.benchmark_group("heartbeat_batch64");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.to_async(rt)
            .iter(|| async { store.heartbeat(&batch).await });
    });
    group.finish();
}

fn presence_heartbeat(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("presence_store: no runtime: {e}");
            return;
        }
    };

    let memory = MemoryStore::new(30_000);
    bench_store(c, &rt, "memory", &memory);

    let Ok(dir) = tempfile::tempdir() else {
        eprintln!("presence_store: no temp dir; skipping redis");
        return;
    };
    let redis_bin = std::env::var("REDIS_BIN").unwrap_or_else(|_| "redis-server".into());
    let started = rt.block_on(rtm_bench::spawn::redis(
        &redis_bin,
        dir.path(),
        "bench-redis",
    ));
    let (_redis, url) = match started {
        Ok(started) => started,
        Err(e) => {
            eprintln!("presence_store: skipping redis ({e})");
            return;
        }
    };
    let store = rt.block_on(async {
        let backend = RedisBackend::connect(&url, Duration::from_secs(2), 4, true).await?;
        anyhow::Ok(RedisStore::new(backend.pool.clone(), "bench:", 30_000).await?)
    });
    match store {
        Ok(store) => bench_store(c, &rt, "redis", &store),
        Err(e) => eprintln!("presence_store: skipping redis ({e:#})"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = presence_heartbeat
}
criterion_main!(benches);

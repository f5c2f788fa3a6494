//! Not assertions: numbers for the closing note (run with `--nocapture`).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{call, guests, init_tracing, scratch_dir, start_with};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round();
    sorted[rank as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_dispatch_and_load_times() {
    init_tracing();
    let g = guests();
    let rt = start_with("timing", &[(&g.noop, "noop.wasm")], |_| {}).await;
    for _ in 0..500 {
        rt.plugins
            .dispatch(call("s", None, "noop:x", json!({})))
            .await
            .expect("noop");
    }
    let mut samples = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let t = Instant::now();
        rt.plugins
            .dispatch(call("s", None, "noop:x", json!({"a": 1})))
            .await
            .expect("noop");
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "TIMING noop dispatch (warm pool): p50 {:?} p99 {:?} max {:?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );

    let fresh = start_with("timing-fresh", &[(&g.noop, "noop.wasm")], |cfg| {
        cfg.fresh_instance = true
    })
    .await;
    let mut samples = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let t = Instant::now();
        fresh
            .plugins
            .dispatch(call("s", None, "noop:x", json!({})))
            .await
            .expect("noop");
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "TIMING noop dispatch (fresh instance per call): p50 {:?} p99 {:?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99)
    );

    // Start-up load of the chat plugin, uncached and cached.
    for (label, cache) in [("no cache", false), ("warm cache", true)] {
        let dir = scratch_dir("timing-load");
        std::fs::copy(&g.chat_v1, dir.join("chat.wasm")).expect("copy");
        let mut cfg = crate::support::config(&dir);
        cfg.no_cache = !cache;
        let t = Instant::now();
        let p = rtm_host::plugins::Plugins::start(
            cfg,
            std::sync::Arc::new(crate::support::RecordingHost::default()),
            rtm_host::plugins::KvBackend::memory(),
            "t",
        )
        .await
        .expect("start");
        println!("TIMING start + load chat ({label}): {:?}", t.elapsed());
        p.shutdown();
    }
}

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

/// Per-language chat dispatch and cold load (file dropped -> first call served), for
/// the components `plugins/build-polyglot.sh` puts in `plugins/dist/` (skipped with a
/// note when they are not built). Numbers only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_dispatch_per_language() {
    init_tracing();
    let dist = crate::support::repo_root().join("plugins/dist");
    let candidates = [
        (
            "rust chat",
            guests().chat_v1.clone(),
            "chat:message",
            json!({"roomId": "r", "text": "hi"}),
        ),
        (
            "js chat",
            dist.join("chat-js.wasm"),
            "chat:message",
            json!({"roomId": "r", "text": "hi"}),
        ),
        (
            "python moderation",
            dist.join("moderation-py.wasm"),
            "mod:check",
            json!({"roomId": "r", "text": "hello there"}),
        ),
    ];
    for (label, file, event, payload) in candidates {
        if !file.exists() {
            println!("TIMING {label}: {} not built, skipped", file.display());
            continue;
        }
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let dir = scratch_dir("timing-lang");
        let mut cfg = crate::support::config(&dir);
        cfg.no_cache = true;
        cfg.timeout_ms = 30_000;
        cfg.cpu_ms = 30_000;
        let host = std::sync::Arc::new(crate::support::RecordingHost::default());
        host.put_in_room("s", "r");
        let rt = rtm_host::plugins::Plugins::start(
            cfg,
            host,
            rtm_host::plugins::KvBackend::memory(),
            "t",
        )
        .await
        .expect("start");
        let dropped = Instant::now();
        std::fs::copy(&file, dir.join("plugin.wasm")).expect("copy");
        let mut first = None;
        while dropped.elapsed() < Duration::from_secs(120) {
            if rt
                .dispatch(call("s", Some("u"), event, payload.clone()))
                .await
                .is_ok()
            {
                first = Some(dropped.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let Some(cold) = first else {
            println!("TIMING {label}: never served");
            continue;
        };
        for _ in 0..200 {
            let _ = rt
                .dispatch(call("s", Some("u"), event, payload.clone()))
                .await;
        }
        let mut samples = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            let t = Instant::now();
            rt.dispatch(call("s", Some("u"), event, payload.clone()))
                .await
                .expect("dispatch");
            samples.push(t.elapsed());
        }
        samples.sort();
        println!(
            "TIMING {label} ({size} bytes): cold load (drop -> first call, no cache) {cold:?}; {event} dispatch p50 {:?} p99 {:?}",
            percentile(&samples, 0.50),
            percentile(&samples, 0.99)
        );
        rt.shutdown();
    }
}

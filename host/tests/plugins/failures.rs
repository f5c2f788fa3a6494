//! Each failure guest fails only its own call, with `plugin_failed` naming the limit
//! that stopped it, while the chat plugin keeps answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use rtm_host::plugins::{DispatchError, Plugins};

use crate::support::{call, guests, init_tracing, start_with};

/// Sends chat messages until `stop`; returns (ok, failed).
fn chat_load(plugins: Plugins, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
        while !stop.load(Ordering::Relaxed) {
            let r = plugins
                .dispatch(call(
                    "s1",
                    Some("ada"),
                    "chat:message",
                    json!({"roomId": "lobby", "text": "still here"}),
                ))
                .await;
            match r {
                Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                Err(_) => failed.fetch_add(1, Ordering::Relaxed),
            };
            tokio::task::yield_now().await;
        }
        (ok.into_inner(), failed.into_inner())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_guests_fail_alone_within_limits() {
    init_tracing();
    let g = guests();
    let rt = start_with(
        "failures",
        &[
            (&g.chat_v1, "chat.wasm"),
            (&g.trap, "trap.wasm"),
            (&g.panic, "panic.wasm"),
            (&g.spin, "spin.wasm"),
            (&g.membomb, "membomb.wasm"),
        ],
        |cfg| {
            // The CPU budget is counted in 10 ms epoch ticks while the guest runs, so a
            // busy machine charges it wall time: growing to 32 MiB once took more than
            // 100 ms of ticks on a loaded 2-core CI box and membomb hit the CPU limit
            // first. 1 s still stops spin well before the 2 s wall-clock limit.
            cfg.cpu_ms = 1_000;
            cfg.timeout_ms = 2_000;
            cfg.memory_mb = 32;
            // Keep the breaker out of this test.
            cfg.quarantine_failures = 1_000;
        },
    )
    .await;
    rt.host.put_in_room("s1", "lobby");
    let stop = Arc::new(AtomicBool::new(false));
    let load = chat_load(rt.plugins.clone(), stop.clone());

    // (event, expected words in the reason). The reason names the limit that ended the
    // call: spin must be stopped by its CPU budget (1 s) before the wall-clock limit
    // (2 s) and membomb by the memory cap, which the reason tells apart; how long each
    // took is the benchmark's business.
    let cases: [(&str, &str); 4] = [
        ("trap:now", "trap"),
        ("panic:now", "trap"),
        ("spin:now", "CPU time limit"),
        ("membomb:now", "memory limit of 32 MiB"),
    ];
    for (event, reason) in cases {
        for round in 0..2 {
            let err = rt
                .plugins
                .dispatch(call("s1", None, event, json!({})))
                .await
                .expect_err("failure guest fails");
            match &err {
                DispatchError::PluginFailed(why) => {
                    assert!(why.contains(reason), "{event} round {round}: {why}")
                }
                other => panic!("{event}: expected PluginFailed, got {other:?}"),
            }
            assert_eq!(err.code(), "plugin_failed");
        }
    }

    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = load.await.expect("load task");
    assert!(ok > 0, "chat answered meanwhile");
    assert_eq!(failed, 0, "chat never failed");

    let admin = rt.plugins.admin_json();
    for name in ["trap", "panic", "spin", "membomb"] {
        let p = admin["plugins"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .expect("plugin listed");
        assert_eq!(p["failures"], 2, "{name}: {p}");
        assert_eq!(p["state"], "active");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wall_clock_timeout_ends_a_guest_with_cpu_to_spare() {
    init_tracing();
    let rt = start_with("timeout", &[(&guests().spin, "spin.wasm")], |cfg| {
        cfg.cpu_ms = 60_000;
        cfg.timeout_ms = 200;
    })
    .await;
    let started = Instant::now();
    let err = rt
        .plugins
        .dispatch(call("s1", None, "spin:now", json!({})))
        .await
        .expect_err("times out");
    let took = started.elapsed();
    assert!(
        matches!(&err, DispatchError::PluginFailed(why) if why.contains("wall-clock")),
        "{err:?}"
    );
    // The limit cannot fire early (an upper bound would be a speed test).
    assert!(
        took >= Duration::from_millis(200),
        "ended after {took:?}, before its 200 ms limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_has_no_files_and_no_network() {
    init_tracing();
    let g = guests();
    let rt = start_with(
        "sandbox",
        &[(&g.fs, "fs.wasm"), (&g.net, "net.wasm")],
        |_| {},
    )
    .await;

    for path in ["/etc/passwd", "Cargo.toml", ".", "/"] {
        let err = rt
            .plugins
            .dispatch(call("s1", None, "fs:read", json!({ "path": path })))
            .await
            .expect_err("no file access");
        assert!(
            matches!(&err, DispatchError::PluginError { code, .. } if code == "fs_denied"),
            "{path}: {err:?}"
        );
    }

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr").to_string();
    let err = rt
        .plugins
        .dispatch(call("s1", None, "net:connect", json!({ "addr": addr })))
        .await
        .expect_err("no network");
    assert!(
        matches!(&err, DispatchError::PluginError { code, .. } if code == "net_denied"),
        "{err:?}"
    );
    assert!(
        listener.accept().is_err(),
        "nothing connected to the listener"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifest_is_refused_and_reported() {
    init_tracing();
    let g = guests();
    let rt = start_with(
        "bad-manifest",
        &[(&g.bad_manifest, "bad.wasm"), (&g.noop, "noop.wasm")],
        |_| {},
    )
    .await;
    assert!(rt.plugins.ready(), "a bad plugin does not stop the runtime");
    assert!(!rt.plugins.handles("bad:ok"));
    assert!(rt.plugins.handles("noop:x"));
    let admin = rt.plugins.admin_json();
    let rejected = admin["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 1, "{admin}");
    assert_eq!(rejected[0]["file"], "bad.wasm");
    let error = rejected[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("not a valid event!"), "{error}");

    // Not a component at all.
    std::fs::write(rt.dir.join("garbage.wasm"), b"\0asm nonsense").expect("write");
    crate::support::eventually(Duration::from_secs(60), || {
        rt.plugins.admin_json()["rejected"]
            .as_array()
            .map_or(0, Vec::len)
            == 2
    })
    .await
    .expect("garbage refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_max_concurrency_queue_then_fail_busy_without_blame() {
    init_tracing();
    let rt = start_with("busy", &[(&guests().spin, "spin.wasm")], |cfg| {
        cfg.cpu_ms = 60_000;
        cfg.timeout_ms = 300;
        cfg.max_concurrency = 1;
        // All three calls fail; only the timed-out ones (at most two) are the
        // plugin's fault, so three would quarantine it only if busy ones counted.
        cfg.quarantine_failures = 3;
        cfg.quarantine_window_ms = 60_000;
    })
    .await;
    // One slot: the first call spins until its wall-clock limit; the third cannot
    // get the slot before two limits have passed, so its wait (one limit) runs out.
    let calls = (0..3).map(|_| {
        let plugins = rt.plugins.clone();
        tokio::spawn(async move {
            plugins
                .dispatch(call("s1", None, "spin:now", json!({})))
                .await
        })
    });
    let mut timed_out = 0;
    let mut busy = 0;
    for handle in calls.collect::<Vec<_>>() {
        match handle.await.expect("call task") {
            Err(DispatchError::PluginFailed(why)) if why.contains("wall-clock") => timed_out += 1,
            Err(DispatchError::PluginFailed(why)) if why.contains("busy") => busy += 1,
            other => panic!("expected wall-clock or busy, got {other:?}"),
        }
    }
    assert!(
        timed_out >= 1 && busy >= 1,
        "{timed_out} timed out, {busy} busy"
    );
    let admin = rt.plugins.admin_json();
    let spin = &admin["plugins"][0];
    assert_eq!(spin["failures"], 3, "every failed call is counted: {spin}");
    assert_eq!(
        spin["quarantined"], false,
        "busy calls are not the plugin's fault: {spin}"
    );
}

//! Repeated failures quarantine a plugin: calls fail fast, admin shows it,
//! other plugins keep serving, and the breaker probes again after back-off.

use std::time::{Duration, Instant};

use serde_json::json;

use rtm_host::plugins::DispatchError;

use crate::support::{call, guests, init_tracing, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_quarantine_the_plugin() {
    init_tracing();
    let g = guests();
    let rt = start_with(
        "quarantine",
        &[(&g.trap, "trap.wasm"), (&g.noop, "noop.wasm")],
        |cfg| {
            cfg.quarantine_failures = 3;
            cfg.quarantine_window_ms = 10_000;
            cfg.quarantine_base_ms = 400;
            cfg.quarantine_max_ms = 5_000;
        },
    )
    .await;
    for _ in 0..3 {
        let err = rt
            .plugins
            .dispatch(call("s", None, "trap:x", json!({})))
            .await
            .expect_err("traps");
        assert!(
            matches!(&err, DispatchError::PluginFailed(why) if why.contains("trap")),
            "{err:?}"
        );
    }
    let started = Instant::now();
    let err = rt
        .plugins
        .dispatch(call("s", None, "trap:x", json!({})))
        .await
        .expect_err("quarantined");
    assert!(
        matches!(&err, DispatchError::PluginFailed(why) if why.contains("quarantined")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(5), "fails fast");

    let admin = rt.plugins.admin_json();
    let trap = admin["plugins"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "trap"))
        .expect("listed");
    assert_eq!(trap["state"], "quarantined", "{trap}");
    assert_eq!(trap["quarantined"], true);
    assert!(trap["quarantinedUntil"].as_u64().is_some());
    assert_eq!(trap["quarantines"], 1);
    let mut metrics = String::new();
    rt.plugins.render_prometheus(&mut metrics);
    assert!(
        metrics.contains("rtm_plugin_quarantined{tenant=\"test\",plugin=\"trap\"} 1"),
        "{metrics}"
    );

    // Others are unaffected.
    assert_eq!(
        rt.plugins
            .dispatch(call("s", None, "noop:x", json!({})))
            .await,
        Ok(None)
    );

    // After the back-off the plugin is probed; failing again re-quarantines for longer.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(rt.plugins.admin_json()["plugins"][1]["state"], "probing");
    let err = rt
        .plugins
        .dispatch(call("s", None, "trap:x", json!({})))
        .await
        .expect_err("traps");
    assert!(
        matches!(&err, DispatchError::PluginFailed(why) if why.contains("trap")),
        "{err:?}"
    );
    let err = rt
        .plugins
        .dispatch(call("s", None, "trap:x", json!({})))
        .await
        .expect_err("quarantined");
    match err {
        DispatchError::PluginFailed(why) => assert!(why.contains("quarantined"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(rt.plugins.admin_json()["plugins"][1]["quarantines"], 2);
}

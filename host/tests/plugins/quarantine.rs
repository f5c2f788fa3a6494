//! Repeated failures quarantine a plugin: calls are refused without running the
//! guest, admin shows it, other plugins keep serving, and the breaker probes again
//! after back-off.

use std::time::Duration;

use serde_json::json;

use rtm_host::plugins::DispatchError;

use crate::support::{call, eventually, guests, init_tracing, start_with};

/// The value of `metric` for the `trap` plugin in the runtime's Prometheus text.
fn trap_metric(plugins: &rtm_host::plugins::Plugins, metric: &str) -> f64 {
    let mut text = String::new();
    plugins.render_prometheus(&mut text);
    let prefix = format!("{metric}{{tenant=\"test\",plugin=\"trap\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix:?} sample in:\n{text}"))
}

/// Polls the admin view until the `trap` plugin is in `state` (generous deadline).
async fn wait_for_state(plugins: &rtm_host::plugins::Plugins, state: &str) {
    eventually(Duration::from_secs(60), || {
        plugins.admin_json()["plugins"][1]["state"] == state
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "trap never became {state}: {}",
            plugins.admin_json()["plugins"][1]
        )
    });
}

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
            // Long enough that the quarantine cannot end before the checks below run
            // on a busy machine; the probe is awaited, not timed.
            cfg.quarantine_base_ms = 3_000;
            cfg.quarantine_max_ms = 60_000;
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
    // Refused without running the guest: the call is counted as rejected, and the
    // latency histogram (which only counts calls that ran) does not move.
    let ran_before = trap_metric(&rt.plugins, "rtm_plugin_call_duration_seconds_count");
    assert_eq!(ran_before, 3.0, "the three trapping calls ran");
    assert_eq!(trap_metric(&rt.plugins, "rtm_plugin_rejected_total"), 0.0);
    let err = rt
        .plugins
        .dispatch(call("s", None, "trap:x", json!({})))
        .await
        .expect_err("quarantined");
    assert!(
        matches!(&err, DispatchError::PluginFailed(why) if why.contains("quarantined")),
        "{err:?}"
    );
    assert_eq!(
        trap_metric(&rt.plugins, "rtm_plugin_rejected_total"),
        1.0,
        "the quarantined call is counted as rejected"
    );
    assert_eq!(
        trap_metric(&rt.plugins, "rtm_plugin_call_duration_seconds_count"),
        ran_before,
        "the quarantined call did not run the guest"
    );

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
    wait_for_state(&rt.plugins, "probing").await;
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

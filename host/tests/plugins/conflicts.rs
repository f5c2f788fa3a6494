//! A plugin claiming events (or a name) another plugin has is refused, with
//! a clear reason, and the first one keeps serving.

use std::time::Duration;

use serde_json::json;

use crate::support::{call, eventually, guests, init_tracing, json, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_claim_is_refused() {
    init_tracing();
    let g = guests();
    // Sorted load order: kv-a.wasm first, then kv-clash.wasm (plugin `kva`, events `kva:*`).
    let rt = start_with(
        "conflict",
        &[(&g.kv_a, "kv-a.wasm"), (&g.kv_clash, "kv-clash.wasm")],
        |_| {},
    )
    .await;
    let admin = rt.plugins.admin_json();
    let names: Vec<&str> = admin["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["kv-a"]);
    let error = admin["rejected"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("conflicts with `kva:*` of plugin \"kv-a\""),
        "{error}"
    );
    rt.plugins
        .dispatch(call("s", None, "kva:set", json!({"value": "x"})))
        .await
        .expect("kv-a serves");

    // Same plugin name from another file: refused too.
    std::fs::copy(&g.kv_a, rt.dir.join("kv-a-copy.wasm")).expect("copy");
    eventually(Duration::from_secs(30), || {
        rt.plugins.admin_json()["rejected"]
            .as_array()
            .is_some_and(|r| {
                r.iter().any(|x| {
                    x["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("already loaded"))
                })
            })
    })
    .await
    .expect("name clash refused");
    let got = json(
        rt.plugins
            .dispatch(call("s", None, "kva:get", json!({})))
            .await
            .expect("kv-a serves"),
    );
    assert_eq!(got["value"], "x");

    // Once the first claimant is gone, refused files are retried: the copy
    // (plugin `kv-a`) or the clash (plugin `kva`) takes `kva:*` over.
    std::fs::remove_file(rt.dir.join("kv-a.wasm")).expect("rm");
    eventually(Duration::from_secs(30), || {
        let admin = rt.plugins.admin_json();
        admin["plugins"].as_array().is_some_and(|p| p.len() == 1)
            && admin["plugins"][0]["file"] != "kv-a.wasm"
            && admin["rejected"].as_array().is_some_and(|r| r.len() == 1)
    })
    .await
    .expect("a refused claimant took over");
    assert!(rt.plugins.handles("kva:get"));
}

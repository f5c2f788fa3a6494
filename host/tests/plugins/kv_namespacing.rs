//! Two plugins using the same kv key names never see each other's data.

use serde_json::json;

use crate::support::{call, guests, init_tracing, json, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_keys_different_plugins() {
    init_tracing();
    let g = guests();
    let rt = start_with(
        "kv",
        &[(&g.kv_a, "kv-a.wasm"), (&g.kv_b, "kv-b.wasm")],
        |_| {},
    )
    .await;
    let p = &rt.plugins;
    p.dispatch(call("s", None, "kva:set", json!({"value": "from a"})))
        .await
        .expect("a set");
    let b_before = json(
        p.dispatch(call("s", None, "kvb:get", json!({})))
            .await
            .expect("b get"),
    );
    assert_eq!(
        b_before,
        json!({"value": null, "list": [], "hash": null, "counter": 0})
    );
    p.dispatch(call("s", None, "kvb:set", json!({"value": "from b"})))
        .await
        .expect("b set");
    p.dispatch(call("s", None, "kvb:set", json!({"value": "again b"})))
        .await
        .expect("b set");
    let a = json(
        p.dispatch(call("s", None, "kva:get", json!({})))
            .await
            .expect("a get"),
    );
    let b = json(
        p.dispatch(call("s", None, "kvb:get", json!({})))
            .await
            .expect("b get"),
    );
    assert_eq!(
        a,
        json!({"value": "from a", "list": ["from a"], "hash": "from a", "counter": 1})
    );
    assert_eq!(
        b,
        json!({"value": "again b", "list": ["from b", "again b"], "hash": "again b", "counter": 2})
    );
}

//! Two tenants' runtimes on one engine (as a node runs them): the same plugin file loads
//! in both, each runtime keeps its own kv data under its tenant, and stopping one
//! leaves the other serving.

use std::sync::Arc;

use serde_json::json;

use rtm_host::plugins::{KvBackend, Plugins, SharedEngine};

use crate::support::{RecordingHost, call, config, guests, init_tracing, json, scratch_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_share_one_engine_and_keep_their_own_data() {
    init_tracing();
    let g = guests();
    let kv = KvBackend::memory();
    let mut runtimes = Vec::new();
    let mut engine = None;
    for tenant in ["a", "b"] {
        let dir = scratch_dir(&format!("shared-engine-{tenant}"));
        std::fs::copy(&g.kv_a, dir.join("kv-a.wasm")).expect("copy");
        let cfg = config(&dir);
        let engine = engine.get_or_insert_with(|| SharedEngine::new(&cfg).expect("engine"));
        let plugins = Plugins::launch_on(
            engine,
            cfg,
            Arc::new(RecordingHost::default()),
            kv.clone(),
            tenant,
        )
        .expect("launch");
        plugins.loaded().await;
        runtimes.push(plugins);
    }
    let [a, b] = &runtimes[..] else {
        panic!("two runtimes")
    };
    a.dispatch(call("s", None, "kva:set", json!({"value": "of a"})))
        .await
        .expect("a set");
    let b_sees = json(
        b.dispatch(call("s", None, "kva:get", json!({})))
            .await
            .expect("b get"),
    );
    assert_eq!(
        b_sees["value"],
        serde_json::Value::Null,
        "b sees nothing of a: {b_sees}"
    );
    a.shutdown();
    b.dispatch(call("s", None, "kva:set", json!({"value": "of b"})))
        .await
        .expect("b keeps serving after a stopped");
    let b_has = json(
        b.dispatch(call("s", None, "kva:get", json!({})))
            .await
            .expect("b get"),
    );
    assert_eq!(b_has["value"], "of b");
    b.shutdown();
}

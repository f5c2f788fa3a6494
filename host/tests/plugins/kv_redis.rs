//! The kv interface on Redis (a private `redis-server` spawned for the test): namespacing, the capped list
//! push (a Lua script) and the chat history, with keys where the host says.

use std::time::Duration;

use fred::prelude::{KeysInterface, ListInterface, Pool};
use serde_json::json;

use rtm_host::backend::RedisBackend;
use rtm_host::plugins::{DispatchError, KvBackend, Plugins};

use crate::procs::Redis;
use crate::support::{RecordingHost, call, config, guests, init_tracing, json, scratch_dir};

/// The command pool the host itself builds (`RedisBackend`: bounded command timeout,
/// reconnect policy), on the private server, so a Redis outage looks to the plugin as it
/// does in production.
async fn connect(url: &str) -> Pool {
    RedisBackend::connect(url, Duration::from_secs(1), 2, true)
        .await
        .expect("the private redis-server answers, so connecting succeeds")
        .pool
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_on_redis() {
    init_tracing();
    let redis = Redis::start();
    let pool = connect(&redis.url()).await;
    let g = guests();
    let dir = scratch_dir("kv-redis");
    for (from, name) in [
        (&g.kv_a, "kv-a.wasm"),
        (&g.kv_b, "kv-b.wasm"),
        (&g.chat_v1, "chat.wasm"),
    ] {
        std::fs::copy(from, dir.join(name)).expect("copy");
    }
    let host = std::sync::Arc::new(RecordingHost::default());
    host.put_in_room("s1", "lobby");
    let plugins = Plugins::start(
        config(&dir),
        host,
        KvBackend::redis(pool.clone(), "rtm:"),
        "acme",
    )
    .await
    .expect("start");

    plugins
        .dispatch(call("s", None, "kva:set", json!({"value": "a"})))
        .await
        .expect("a set");
    for v in ["b1", "b2", "b3", "b4"] {
        plugins
            .dispatch(call("s", None, "kvb:set", json!({ "value": v })))
            .await
            .expect("b set");
    }
    let a = json(
        plugins
            .dispatch(call("s", None, "kva:get", json!({})))
            .await
            .expect("a get"),
    );
    let b = json(
        plugins
            .dispatch(call("s", None, "kvb:get", json!({})))
            .await
            .expect("b get"),
    );
    assert_eq!(
        a,
        json!({"value": "a", "list": ["a"], "hash": "a", "counter": 1})
    );
    assert_eq!(
        b,
        json!({"value": "b4", "list": ["b2", "b3", "b4"], "hash": "b4", "counter": 4})
    );

    // Keys live under <prefix>plugin:<tenant>:<plugin>:.
    let raw: Option<String> = pool.get("rtm:plugin:acme:kv-a:shared").await.expect("get");
    assert_eq!(raw.as_deref(), Some("\"a\""));
    let list: Vec<String> = pool
        .lrange("rtm:plugin:acme:kv-b:shared-list", 0, -1)
        .await
        .expect("lrange");
    assert_eq!(list.len(), 3);

    for i in 0..103 {
        plugins
            .dispatch(call(
                "s1",
                Some("ada"),
                "chat:message",
                json!({"roomId": "lobby", "text": format!("m{i}")}),
            ))
            .await
            .expect("message");
    }
    let history = json(
        plugins
            .dispatch(call(
                "s1",
                None,
                "chat:history",
                json!({"roomId": "lobby", "limit": 2}),
            ))
            .await
            .expect("history"),
    );
    assert_eq!(history["messages"][0]["text"], "m101");
    assert_eq!(history["messages"][1]["text"], "m102");
    let len: u64 = pool
        .llen("rtm:plugin:acme:chat:history:lobby")
        .await
        .expect("llen");
    assert_eq!(len, 100);

    // Redis gone: kv calls fail with `unavailable`, a plugin error the guest forwards
    // (not a plugin failure: the plugin's 10 s wall-clock limit is far off).
    drop(redis);
    let err = plugins
        .dispatch(call("s", None, "kva:get", json!({})))
        .await
        .expect_err("kv with Redis down must fail");
    assert!(
        matches!(&err, DispatchError::PluginError { code, .. } if code == "unavailable"),
        "kv with Redis down: expected a plugin error with code `unavailable`, got {err:?}"
    );
    plugins.shutdown();
}

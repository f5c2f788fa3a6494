//! The kv interface on Redis (a private `redis-server` spawned for the test): namespacing, the capped list
//! push (a Lua script) and the chat history, with keys where the host says.

use std::time::Duration;

use fred::prelude::{ClientLike, HashesInterface, KeysInterface, ListInterface, Pool};
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

/// Bytes a plugin's keys really hold on Redis, as the quota counts them (the plugin's
/// key plus every list item), and how many keys there are; `keys` are the keys under
/// `prefix`, listed by the caller (a cluster needs every master scanned).
async fn real_usage(pool: &Pool, prefix: &str, keys: &[String]) -> (u64, u64) {
    let mut bytes = 0;
    for key in keys {
        bytes += (key.len() - prefix.len()) as u64;
        let kind: String = pool
            .next()
            .custom(fred::cmd!("TYPE"), vec![key.clone()])
            .await
            .expect("TYPE");
        bytes += match kind.as_str() {
            "string" => pool.strlen::<u64, _>(key.as_str()).await.expect("strlen"),
            "list" => {
                let items: Vec<String> = pool.lrange(key.as_str(), 0, -1).await.expect("lrange");
                items.iter().map(|i| i.len() as u64).sum()
            }
            "hash" => {
                let h: std::collections::HashMap<String, String> =
                    pool.hgetall(key.as_str()).await.expect("hgetall");
                h.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
            }
            other => panic!("unexpected kind {other} at {key}"),
        };
    }
    (bytes, keys.len() as u64)
}

/// Lists every key under a prefix.
type KeyLister = Box<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// Where one tenant's plugin keeps its keys and its accounting.
struct Place {
    pool: Pool,
    kv: KvBackend,
    /// Plugin name -> the prefix of its keys.
    data: fn(&str) -> String,
    /// Plugin name -> its `totals` hash.
    totals: fn(&str) -> String,
    /// Every key under a prefix.
    list: KeyLister,
}

/// The kv quota on Redis: a write past `kv_max_keys` fails `quota_exceeded` and writes
/// nothing; under concurrent chat messages into many rooms the accounted bytes never
/// pass `kv_max_bytes` and equal what the keys really hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_quota_on_redis_holds_under_concurrent_writes() {
    init_tracing();
    let redis = std::sync::Arc::new(Redis::start());
    let mut monitor = crate::procs::monitor::Monitor::start(&redis);
    let pool = connect(&redis.url()).await;
    let lister = redis.clone();
    let place = Place {
        kv: KvBackend::redis(pool.clone(), "rtm:"),
        pool,
        data: |plugin| format!("rtm:plugin:q:{plugin}:"),
        totals: |plugin| format!("rtm:plugin-usage:q:{plugin}:totals"),
        list: Box::new(move |prefix| {
            lister
                .keys()
                .into_iter()
                .filter(|k| k.starts_with(prefix))
                .collect()
        }),
    };
    quota_holds(place).await;
    // Every key the write script touched was one it declared.
    let (undeclared, checked) = monitor.undeclared();
    assert!(checked > 0, "MONITOR saw no script command");
    assert!(undeclared.is_empty(), "undeclared keys: {undeclared:#?}");
}

/// The same on a Redis Cluster (3 masters, 3 replicas), where the plugin's keys and its
/// accounting share the `{tenant:plugin}` hash tag: the write script's one slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_quota_on_a_redis_cluster_holds_under_concurrent_writes() {
    init_tracing();
    let cluster = std::sync::Arc::new(crate::procs::RedisCluster::start());
    let pool = connect(&cluster.url()).await;
    let lister = cluster.clone();
    let place = Place {
        kv: KvBackend::redis_tagged(pool.clone(), "rtm:"),
        pool,
        data: |plugin| format!("rtm:plugin:{{q:{plugin}}}:"),
        totals: |plugin| format!("rtm:plugin-usage:{{q:{plugin}}}:totals"),
        list: Box::new(move |prefix| {
            lister
                .keys()
                .into_iter()
                .map(|(_, k)| k)
                .filter(|k| k.starts_with(prefix))
                .collect()
        }),
    };
    quota_holds(place).await;
    cluster.assert_ours();
}

async fn quota_holds(place: Place) {
    let pool = &place.pool;
    let g = guests();
    let dir = scratch_dir("kv-quota");
    for (from, name) in [(&g.kv_a, "kv-a.wasm"), (&g.chat_v1, "chat.wasm")] {
        std::fs::copy(from, dir.join(name)).expect("copy");
    }
    let host = std::sync::Arc::new(RecordingHost::default());
    for i in 0..8 {
        host.put_in_room(&format!("s{i}"), &format!("room{i}"));
    }
    let mut cfg = config(&dir);
    cfg.kv_max_keys = 3;
    cfg.kv_max_bytes = 4_000;
    let plugins = Plugins::start(cfg, host, place.kv.clone(), "q")
        .await
        .expect("start");
    // kv-probe's `set` writes four keys: the fourth is over the quota.
    let err = plugins
        .dispatch(call("s", None, "kva:set", json!({"value": "a"})))
        .await
        .expect_err("a fourth key is over kv_max_keys");
    assert!(
        matches!(&err, DispatchError::PluginError { code, .. } if code == "quota_exceeded"),
        "{err:?}"
    );
    let a_prefix = (place.data)("kv-a");
    let counter: Option<String> = pool.get(format!("{a_prefix}counter")).await.expect("get");
    assert_eq!(counter, None, "the refused write wrote nothing");
    let a_keys_now = (place.list)(&a_prefix);
    let (a_bytes, a_keys) = real_usage(pool, &a_prefix, &a_keys_now).await;
    let a_totals: std::collections::HashMap<String, u64> = pool
        .next()
        .hgetall((place.totals)("kv-a"))
        .await
        .expect("totals");
    assert_eq!(a_keys, 3);
    assert_eq!(a_totals.get("bytes").copied(), Some(a_bytes));

    // Eight rooms' histories grow concurrently until the byte quota refuses more.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let plugins = plugins.clone();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for n in 0..40 {
                let msg = json!({"roomId": format!("room{i}"), "text": format!("message {n} of socket {i}")});
                if plugins.dispatch(call(&format!("s{i}"), Some("u"), "chat:message", msg)).await.is_err() {
                    refused += 1;
                }
            }
            refused
        }));
    }
    let mut refused = 0;
    for t in tasks {
        refused += t.await.expect("task");
    }
    assert!(
        refused > 0,
        "320 messages of ~100 bytes cannot fit 4,000 bytes"
    );
    let totals: std::collections::HashMap<String, u64> = pool
        .next()
        .hgetall((place.totals)("chat"))
        .await
        .expect("totals");
    let chat_prefix = (place.data)("chat");
    let chat_keys = (place.list)(&chat_prefix);
    let (bytes, keys) = real_usage(pool, &chat_prefix, &chat_keys).await;
    assert!(
        bytes <= 4_000,
        "the keys hold {bytes} bytes, over the 4,000-byte quota"
    );
    assert_eq!(
        totals.get("bytes").copied(),
        Some(bytes),
        "accounting matches the data"
    );
    assert_eq!(totals.get("keys").copied(), Some(keys));
    plugins.shutdown();
}

/// A key that expired stops counting against the quota, on a single Redis (under
/// `MONITOR`: the sweep touches only the keys the write declares) and on a cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_expired_keys_free_their_quota_on_redis() {
    init_tracing();
    let redis = Redis::start();
    let mut monitor = crate::procs::monitor::Monitor::start(&redis);
    let pool = connect(&redis.url()).await;
    let kv = KvBackend::redis(pool.clone(), "rtm:");
    expiry_frees_quota(
        &pool,
        kv,
        "rtm:plugin:x:kv-a:",
        "rtm:plugin-usage:x:kv-a:totals",
    )
    .await;
    let (undeclared, checked) = monitor.undeclared();
    assert!(checked > 0, "MONITOR saw no script command");
    assert!(undeclared.is_empty(), "undeclared keys: {undeclared:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_expired_keys_free_their_quota_on_a_redis_cluster() {
    init_tracing();
    let cluster = crate::procs::RedisCluster::start();
    let pool = connect(&cluster.url()).await;
    let kv = KvBackend::redis_tagged(pool.clone(), "rtm:");
    expiry_frees_quota(
        &pool,
        kv,
        "rtm:plugin:{x:kv-a}:",
        "rtm:plugin-usage:{x:kv-a}:totals",
    )
    .await;
    cluster.assert_ours();
}

async fn expiry_frees_quota(pool: &Pool, kv: KvBackend, data: &str, totals: &str) {
    let g = guests();
    let dir = scratch_dir("kv-expiry");
    std::fs::copy(&g.kv_a, dir.join("kv-a.wasm")).expect("copy");
    let mut cfg = config(&dir);
    cfg.kv_max_keys = 1;
    let host = std::sync::Arc::new(RecordingHost::default());
    let plugins = Plugins::start(cfg, host, kv, "x").await.expect("start");
    let put = |key: &str, ttl: Option<u64>| {
        call(
            "s",
            None,
            "kva:put",
            json!({"key": key, "value": "v", "ttlMs": ttl}),
        )
    };
    plugins
        .dispatch(put("brief", Some(3_000)))
        .await
        .expect("the one key");
    let err = plugins
        .dispatch(put("second", None))
        .await
        .expect_err("a second key while the first lives");
    assert!(
        matches!(&err, DispatchError::PluginError { code, .. } if code == "quota_exceeded"),
        "{err:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while pool
        .exists::<u64, _>(format!("{data}brief"))
        .await
        .expect("exists")
        == 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the key never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    plugins
        .dispatch(put("second", None))
        .await
        .expect("the expired key no longer counts");
    let usage: std::collections::HashMap<String, u64> =
        pool.next().hgetall(totals).await.expect("totals");
    assert_eq!(usage.get("keys").copied(), Some(1), "{usage:?}");
    let (bytes, keys) = real_usage(pool, data, &[format!("{data}second")]).await;
    assert_eq!((usage.get("bytes").copied(), keys), (Some(bytes), 1));
    plugins.shutdown();
}

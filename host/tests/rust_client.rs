//! Presence over a real Socket.IO connection with the Rust client, on both stores and
//! across two nodes: the request/ack contract of PROTOCOL.md and its error codes.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::client::RustClient;
use support::{Host, Redis};

fn code(ack: &Value) -> &str {
    ack["error"]["code"].as_str().unwrap_or("")
}

/// The full single-node flow: join, heartbeat, patch, stale epoch, leave, errors.
async fn presence_flow(host: &Host) {
    let a = RustClient::connect(&host.url).await;
    let b = RustClient::connect(&host.url).await;

    let ja = a
        .request(
            "presence:join",
            json!({"roomId": "lobby", "userId": "alice", "state": {"mood": "ok"}}),
        )
        .await;
    assert_eq!(ja["ok"], true, "{ja}");
    assert_eq!(ja["self"]["epoch"], 1);
    let conn_a = ja["self"]["connId"].as_str().unwrap().to_owned();
    assert_eq!(ja["snapshot"][0]["connId"], conn_a.as_str());
    assert_eq!(ja["snapshot"][0]["state"], json!({"mood": "ok"}));

    let jb = b
        .request("presence:join", json!({"roomId": "lobby", "userId": "bob"}))
        .await;
    assert_eq!(jb["snapshot"].as_array().unwrap().len(), 2);
    a.wait_for(Duration::from_secs(30), |ev| {
        ev.iter()
            .any(|e| e["type"] == "join" && e["userId"] == "bob")
    })
    .await;

    let hb = a
        .request("presence:heartbeat", json!({"roomId": "lobby"}))
        .await;
    assert_eq!(hb, json!({"ok": true, "epoch": 1}));
    let all = a.request("presence:heartbeat", Value::Null).await;
    assert_eq!(all, json!({"ok": true, "epochs": {"lobby": 1}}));

    let patched = a
        .request(
            "presence:heartbeat",
            json!({"roomId": "lobby", "epoch": 1, "patchState": {"typing": true}}),
        )
        .await;
    assert_eq!(patched, json!({"ok": true, "epoch": 2}));
    b.wait_for(Duration::from_secs(30), |ev| {
        ev.iter().any(|e| {
            e["type"] == "update"
                && e["state"] == json!({"mood": "ok", "typing": true})
                && e["epoch"] == 2
        })
    })
    .await;

    let stale = a
        .request(
            "presence:heartbeat",
            json!({"roomId": "lobby", "epoch": 1, "patchState": {"typing": false}}),
        )
        .await;
    assert_eq!(code(&stale), "stale_epoch", "{stale}");
    assert_eq!(stale["epoch"], 2);
    let snap = b
        .request("presence:snapshot", json!({"roomId": "lobby"}))
        .await;
    let alice = snap["snapshot"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["userId"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(alice["state"]["typing"], true, "stale patch must not apply");

    // Bad input: the right code, and the socket keeps working.
    for (event, payload, want) in [
        ("presence:join", json!("lobby"), "invalid_payload"),
        (
            "presence:join",
            json!({"roomId": "a b", "userId": "x"}),
            "invalid_payload",
        ),
        (
            "presence:join",
            json!({"roomId": "r", "userId": "x".repeat(129)}),
            "invalid_payload",
        ),
        (
            "presence:join",
            json!({"roomId": "r", "userId": "x", "state": [1]}),
            "invalid_payload",
        ),
        (
            "presence:join",
            json!({"roomId": "r", "userId": "x", "state": {"big": "x".repeat(5000)}}),
            "payload_too_large",
        ),
        (
            "presence:heartbeat",
            json!({"roomId": "elsewhere"}),
            "not_joined",
        ),
        (
            "presence:heartbeat",
            json!({"roomId": "lobby", "epoch": "2"}),
            "invalid_payload",
        ),
        (
            "presence:leave",
            json!({"roomId": "elsewhere"}),
            "not_joined",
        ),
        ("presence:snapshot", json!({}), "invalid_payload"),
        ("chat:nothing", json!({}), "unknown_event"),
    ] {
        let ack = a.request(event, payload.clone()).await;
        assert_eq!(code(&ack), want, "{event} {payload} -> {ack}");
    }
    let still = a
        .request("presence:heartbeat", json!({"roomId": "lobby"}))
        .await;
    assert_eq!(still["ok"], true);

    let left = a
        .request("presence:leave", json!({"roomId": "lobby"}))
        .await;
    assert_eq!(left, json!({"ok": true}));
    b.wait_for(Duration::from_secs(30), |ev| {
        ev.iter()
            .any(|e| e["type"] == "leave" && e["connId"] == conn_a.as_str())
    })
    .await;
    assert_eq!(
        code(
            &a.request("presence:heartbeat", json!({"roomId": "lobby"}))
                .await
        ),
        "not_joined"
    );

    // Disconnect removes bob's registration and tells the room.
    let observer = RustClient::connect(&host.url).await;
    observer
        .request(
            "presence:join",
            json!({"roomId": "lobby", "userId": "carol"}),
        )
        .await;
    b.disconnect().await;
    observer
        .wait_for(Duration::from_secs(30), |ev| {
            ev.iter()
                .any(|e| e["type"] == "leave" && e["userId"] == "bob")
        })
        .await;
    let snap = observer
        .request("presence:snapshot", json!({"roomId": "lobby"}))
        .await;
    assert_eq!(snap["snapshot"].as_array().unwrap().len(), 1, "{snap}");
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_on_memory_store() {
    let host = Host::spawn(&[]);
    presence_flow(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_on_redis_store_leaves_no_partial_keys() {
    let redis = Redis::start();
    let host = Host::spawn(&[("REDIS_URL", redis.url())]);
    presence_flow(&host).await;
    // Only carol is left: her hash plus the room index, its user counts and the
    // last-seen index.
    let mut keys: Vec<String> = redis
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("prs:") && !k.starts_with("prs:sio"))
        .collect();
    keys.sort();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(keys.iter().any(|k| k == "prs:room:lobby"));
    assert!(keys.iter().any(|k| k == "prs:users:lobby"));
    assert!(keys.iter().any(|k| k == "prs:seen"));
    assert!(
        !keys
            .iter()
            .any(|k| k.contains(":r") && k != "prs:room:lobby"),
        "refused joins left keys: {keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_see_each_others_changes_once() {
    let redis = Redis::start();
    let env = [
        ("REDIS_URL", redis.url()),
        ("PRESENCE_TTL_MS", "1500".into()),
        ("PRESENCE_REAPER_INTERVAL_MS", "200".into()),
    ];
    let n1 = Host::spawn(&env);
    let n2 = Host::spawn(&env);
    let a = RustClient::connect(&n1.url).await;
    let b = RustClient::connect(&n2.url).await;
    b.request("presence:join", json!({"roomId": "x", "userId": "bob"}))
        .await;
    let ja = a
        .request("presence:join", json!({"roomId": "x", "userId": "alice"}))
        .await;
    assert_eq!(
        ja["snapshot"].as_array().unwrap().len(),
        2,
        "snapshot spans nodes: {ja}"
    );
    a.request(
        "presence:heartbeat",
        json!({"roomId": "x", "patchState": {"n": 1}}),
    )
    .await;
    a.request("presence:leave", Value::Null).await;
    b.wait_for(Duration::from_secs(30), |ev| {
        ev.iter().any(|e| e["type"] == "leave")
    })
    .await;
    // A later change on n1 as a sentinel: n1's events reach n2 in order, so once b has
    // seen it, any duplicate of alice's events would have arrived before it.
    let zed = RustClient::connect(&n1.url).await;
    zed.request("presence:join", json!({"roomId": "x", "userId": "zed"}))
        .await;
    b.wait_for(Duration::from_secs(10), |ev| {
        ev.iter()
            .any(|e| e["type"] == "join" && e["userId"] == "zed")
    })
    .await;
    let alice = |kind: &str| {
        b.events_of(kind)
            .into_iter()
            .filter(|e| e["userId"] == "alice")
            .count()
    };
    assert_eq!(
        (alice("join"), alice("update"), alice("leave")),
        (1, 1, 1),
        "{:?}",
        b.events.lock().unwrap()
    );
}

/// Connects `n` clients, each joined to `room` as `user-<i>`.
async fn joined_clients(host: &Host, room: &str, n: usize) -> Vec<RustClient> {
    let mut clients = Vec::new();
    for i in 0..n {
        let c = RustClient::connect(&host.url).await;
        let ack = c
            .request(
                "presence:join",
                json!({"roomId": room, "userId": format!("user-{i}")}),
            )
            .await;
        assert_eq!(ack["ok"], true, "join: {ack}");
        clients.push(c);
    }
    clients
}

/// Presence keys in Redis (the adapter's `prs:sio*` channels aside).
fn presence_keys(redis: &Redis) -> Vec<String> {
    redis
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("prs:") && !k.starts_with("prs:sio"))
        .collect()
}

/// SIGTERM with connected, joined clients and a drain that can finish: exit status 0,
/// and the drain did its work (every registration of the node removed from Redis, which
/// a drain cut short by the timeout would leave behind).
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_joined_clients_drains_and_exits_0() {
    let redis = Redis::start();
    let host = Host::spawn(&[
        ("REDIS_URL", redis.url()),
        ("SHUTDOWN_TIMEOUT_MS", "60000".into()),
    ]);
    let clients = joined_clients(&host, "lobby", 3).await;
    assert!(
        !presence_keys(&redis).is_empty(),
        "the joins are stored in Redis"
    );
    let (status, logs) = host.terminate_with_logs();
    assert_eq!(
        status.code(),
        Some(0),
        "a drain that finished exits 0 ({status}); logs: {logs}"
    );
    assert_eq!(
        presence_keys(&redis),
        Vec::<String>::new(),
        "the drain removed this node's registrations; logs: {logs}"
    );
    drop(clients);
}

/// The same on the memory store: connected, joined clients, exit status 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_on_memory_store_exits_0() {
    let host = Host::spawn(&[("SHUTDOWN_TIMEOUT_MS", "60000".into())]);
    let clients = joined_clients(&host, "lobby", 3).await;
    let (status, logs) = host.terminate_with_logs();
    assert_eq!(
        status.code(),
        Some(0),
        "a drain that finished exits 0 ({status}); logs: {logs}"
    );
    drop(clients);
}

/// A drain that cannot finish in `SHUTDOWN_TIMEOUT_MS`: Redis is frozen (SIGSTOP), so
/// removing the node's registrations waits on a 60 s command timeout, far past the
/// 300 ms drain limit. The host must exit with the distinct drain-timeout status 3 and
/// say so in its log, not 0 as if the drain had finished.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drain_timeout_exits_3() {
    let redis = Redis::start();
    let host = Host::spawn(&[
        ("REDIS_URL", redis.url()),
        ("REDIS_TIMEOUT_MS", "60000".into()),
        ("SHUTDOWN_TIMEOUT_MS", "300".into()),
    ]);
    let clients = joined_clients(&host, "lobby", 2).await;
    redis.pause();
    let (status, logs) = host.terminate_with_logs();
    redis.resume();
    assert_eq!(
        status.code(),
        Some(3),
        "a drain cut short by SHUTDOWN_TIMEOUT_MS exits 3 ({status}); logs: {logs}"
    );
    assert!(
        logs.contains("drain did not finish"),
        "the drain timeout is logged; logs: {logs}"
    );
    assert!(
        !presence_keys(&redis).is_empty(),
        "the registrations are still in Redis: the drain really was cut short"
    );
    drop(clients);
}

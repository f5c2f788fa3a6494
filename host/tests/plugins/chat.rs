//! The chat plugin of PROTOCOL.md, driven through `Plugins::dispatch`.

use serde_json::json;

use rtm_host::plugins::DispatchError;

use crate::support::{call, guests, init_tracing, json, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_history_typing() {
    init_tracing();
    let rt = start_with("chat", &[(&guests().chat_v1, "chat.wasm")], |_| {}).await;
    assert!(rt.plugins.ready());
    assert!(rt.plugins.handles("chat:message"));
    assert!(rt.plugins.handles("chat:typing"));
    assert!(!rt.plugins.handles("chat:other"));
    rt.host.put_in_room("s1", "lobby");
    rt.host.put_in_room("s2", "lobby");

    // Not in the room: not_joined.
    let err = rt
        .plugins
        .dispatch(call(
            "s3",
            Some("eve"),
            "chat:message",
            json!({"roomId": "lobby", "text": "hi"}),
        ))
        .await
        .expect_err("not joined");
    assert!(
        matches!(&err, DispatchError::PluginError { code, .. } if code == "not_joined"),
        "{err:?}"
    );

    // Bad text: invalid_payload.
    for text in [String::new(), "x".repeat(2001)] {
        let err = rt
            .plugins
            .dispatch(call(
                "s1",
                Some("ada"),
                "chat:message",
                json!({"roomId": "lobby", "text": text}),
            ))
            .await
            .expect_err("invalid text");
        assert!(
            matches!(&err, DispatchError::PluginError { code, .. } if code == "invalid_payload"),
            "{err:?}"
        );
    }
    let err = rt
        .plugins
        .dispatch(call(
            "s1",
            Some("ada"),
            "chat:message",
            json!({"roomId": 5}),
        ))
        .await
        .expect_err("invalid payload");
    assert_eq!(err.code(), "plugin_error");

    // 2000 chars (multi-byte) is fine.
    let long = "é".repeat(2000);
    for i in 0..105 {
        let text = if i == 0 {
            long.clone()
        } else {
            format!("msg {i}")
        };
        let reply = rt
            .plugins
            .dispatch(call(
                "s1",
                Some("ada"),
                "chat:message",
                json!({"roomId": "lobby", "text": text}),
            ))
            .await
            .expect("message accepted");
        let data = json(reply);
        assert!(data["id"].is_string(), "{data}");
        assert_eq!(data["v"], "v1");
    }
    let broadcasts = rt.host.emitted("chat:message");
    assert_eq!(broadcasts.len(), 105);
    let first = &broadcasts[0];
    assert_eq!(first.to, "room:lobby");
    assert_eq!(first.except, None);
    assert_eq!(first.payload["roomId"], "lobby");
    assert_eq!(first.payload["userId"], "ada");
    assert_eq!(first.payload["text"], long.as_str());
    assert_eq!(first.payload["v"], "v1");
    assert!(
        first.payload["ts"]
            .as_u64()
            .is_some_and(|ts| ts > 1_600_000_000_000)
    );
    assert!(first.payload["id"].is_string());

    // History: capped at 100, oldest first, limit honoured.
    let all = json(
        rt.plugins
            .dispatch(call("s2", None, "chat:history", json!({"roomId": "lobby"})))
            .await
            .expect("history"),
    );
    let messages = all["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 100);
    assert_eq!(messages[0]["text"], "msg 5");
    assert_eq!(messages[99]["text"], "msg 104");
    let last3 = json(
        rt.plugins
            .dispatch(call(
                "s2",
                None,
                "chat:history",
                json!({"roomId": "lobby", "limit": 3}),
            ))
            .await
            .expect("history"),
    );
    let texts: Vec<&str> = last3["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts, ["msg 102", "msg 103", "msg 104"]);
    let empty = json(
        rt.plugins
            .dispatch(call(
                "s2",
                None,
                "chat:history",
                json!({"roomId": "nowhere"}),
            ))
            .await
            .expect("history"),
    );
    assert_eq!(empty["messages"], json!([]));

    // Typing: to the room except the sender.
    let reply = rt
        .plugins
        .dispatch(call(
            "s1",
            Some("ada"),
            "chat:typing",
            json!({"roomId": "lobby", "typing": true}),
        ))
        .await
        .expect("typing");
    assert_eq!(reply, None);
    let typing = rt.host.emitted("chat:typing");
    assert_eq!(typing.len(), 1);
    assert_eq!(typing[0].to, "room:lobby");
    assert_eq!(typing[0].except.as_deref(), Some("s1"));
    assert_eq!(
        typing[0].payload,
        json!({"roomId": "lobby", "userId": "ada", "typing": true})
    );

    // Unknown events and payload limits are answered before any plugin runs.
    assert_eq!(
        rt.plugins
            .dispatch(call("s1", None, "nobody:home", json!({})))
            .await,
        Err(DispatchError::UnknownEvent)
    );
    let big = json!({"roomId": "lobby", "text": "x".repeat(70_000)});
    assert!(matches!(
        rt.plugins
            .dispatch(call("s1", Some("ada"), "chat:message", big))
            .await,
        Err(DispatchError::PayloadTooLarge { limit: 65_536, .. })
    ));

    let admin = rt.plugins.admin_json();
    let chat = &admin["plugins"][0];
    assert_eq!(chat["name"], "chat");
    assert_eq!(chat["state"], "active");
    assert_eq!(
        chat["events"],
        json!(["chat:message", "chat:history", "chat:typing"])
    );
    assert!(chat["calls"].as_u64().is_some_and(|n| n >= 110));
    assert_eq!(chat["hash"].as_str().map(str::len), Some(64));
    let mut metrics = String::new();
    rt.plugins.render_prometheus(&mut metrics);
    assert!(
        metrics.contains("rtm_plugin_calls_total{tenant=\"test\",plugin=\"chat\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("rtm_plugin_call_duration_seconds_bucket"));
    rt.plugins.shutdown();
    assert!(!rt.plugins.ready());
    assert!(!rt.plugins.handles("chat:message"));
}

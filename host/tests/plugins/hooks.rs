//! Hooks reach the plugins whose manifest asks for them; a plugin that asks
//! for none is never called.

use std::time::Duration;

use serde_json::json;

use crate::support::{eventually, guests, init_tracing, start_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_are_called_when_declared() {
    init_tracing();
    let g = guests();
    let rt = start_with(
        "hooks",
        &[(&g.noop, "noop.wasm"), (&g.chat_v1, "chat.wasm")],
        |_| {},
    )
    .await;
    let admin = rt.plugins.admin_json();
    let hooks: Vec<_> = admin["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .map(|p| (p["name"].clone(), p["hooks"].clone()))
        .collect();
    assert_eq!(
        hooks,
        [
            (json!("chat"), json!([])),
            (json!("noop"), json!(["connect", "disconnect", "presence"]))
        ]
    );

    rt.plugins.on_connect("s1");
    rt.plugins.on_disconnect("s2", Some("ada"));
    rt.plugins
        .on_presence(r#"{"type":"join","roomId":"lobby","userId":"ada","connId":"c1","ts":1}"#);
    eventually(Duration::from_secs(30), || {
        rt.host.emits.lock().expect("emits").len() == 3
    })
    .await
    .expect("three hook emits");
    let hello = rt.host.emitted("noop:hello");
    assert_eq!(hello[0].to, "socket:s1");
    assert_eq!(hello[0].payload, json!({"socket": "s1"}));
    let bye = rt.host.emitted("noop:bye");
    assert_eq!(bye[0].to, "all");
    assert_eq!(bye[0].payload, json!({"socket": "s2", "user": "ada"}));
    let presence = rt.host.emitted("noop:presence");
    assert_eq!(presence[0].payload["event"]["type"], "join");
    // chat declared no hooks: only noop's calls were counted.
    let admin = rt.plugins.admin_json();
    assert_eq!(admin["plugins"][0]["calls"], 0);
    assert_eq!(admin["plugins"][1]["calls"], 3);
}

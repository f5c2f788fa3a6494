//! Hot reload: v1 -> v2 by write-then-rename under continuous load with zero
//! failed calls; a corrupt file keeps the old version serving; an in-place
//! write is picked up; deleting the file unloads the plugin.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use rtm_host::plugins::{DispatchError, Plugins};

use crate::support::{
    call, eventually, guests, init_tracing, json, replace_by_rename, start_with, write_by_rename,
};

/// Marks of the chat versions that answered, in order, and failures.
#[derive(Default)]
struct Observed {
    marks: Vec<(Instant, String)>,
    failures: Vec<String>,
}

fn hammer(plugins: Plugins, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Observed> {
    tokio::spawn(async move {
        let mut seen = Observed::default();
        while !stop.load(Ordering::Relaxed) {
            let r = plugins
                .dispatch(call(
                    "s1",
                    Some("ada"),
                    "chat:message",
                    json!({"roomId": "lobby", "text": "tick"}),
                ))
                .await;
            match r {
                Ok(reply) => {
                    let mark = json(reply)["v"].as_str().unwrap_or("?").to_owned();
                    if seen.marks.last().is_none_or(|(_, m)| *m != mark) {
                        seen.marks.push((Instant::now(), mark));
                    }
                }
                Err(e) => seen.failures.push(e.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen
    })
}

async fn mark_now(p: &Plugins) -> String {
    let r = p
        .dispatch(call(
            "s1",
            Some("ada"),
            "chat:message",
            json!({"roomId": "lobby", "text": "which"}),
        ))
        .await
        .expect("chat answers");
    json(r)["v"].as_str().unwrap_or("?").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_without_failures() {
    init_tracing();
    let g = guests();
    // Compile v2 into the shared artifact cache first: the 1 s bound is about
    // the swap, and an unoptimized (debug) Cranelift takes seconds to compile.
    let warm = start_with("reload-warm", &[(&g.chat_v2, "chat.wasm")], |_| {}).await;
    warm.plugins.shutdown();
    let rt = start_with("reload", &[(&g.chat_v1, "chat.wasm")], |_| {}).await;
    rt.host.put_in_room("s1", "lobby");
    assert_eq!(mark_now(&rt.plugins).await, "v1");
    let stop = Arc::new(AtomicBool::new(false));
    let load = hammer(rt.plugins.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A corrupt file over v1: refused, v1 keeps serving.
    write_by_rename(
        b"\0asm\x0d\0\x01\0 definitely not a component",
        &rt.dir,
        "chat.wasm",
    );
    eventually(Duration::from_secs(3), || {
        rt.plugins.admin_json()["rejected"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    })
    .await
    .expect("corrupt file refused");
    assert_eq!(mark_now(&rt.plugins).await, "v1");
    assert!(rt.plugins.handles("chat:message"));

    // v2 by write-then-rename: observed quickly, no call fails.
    let renamed = Instant::now();
    replace_by_rename(&g.chat_v2, &rt.dir, "chat.wasm");
    let took = eventually(Duration::from_secs(3), || {
        rt.plugins.admin_json()["plugins"][0]["hash"].as_str()
            != Some(&content_hash_hex(&g.chat_v1))
            && rt.plugins.admin_json()["rejected"]
                .as_array()
                .is_some_and(|r| r.is_empty())
    })
    .await
    .expect("v2 loaded");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let seen = load.await.expect("load task");
    assert!(
        seen.failures.is_empty(),
        "failed calls during reload: {:?}",
        seen.failures
    );
    let marks: Vec<&str> = seen.marks.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(marks, ["v1", "v2"], "versions observed in order");
    let v2_after = seen.marks[1].0.duration_since(renamed);
    println!(
        "TIMING reload: registry swapped {took:?} after rename; first v2 reply {v2_after:?} after rename"
    );
    assert!(
        v2_after < Duration::from_secs(1),
        "v2 observed {v2_after:?} after rename"
    );

    // In-place write (truncate + write) of v1: picked up once complete.
    std::fs::write(
        rt.dir.join("chat.wasm"),
        std::fs::read(&g.chat_v1).expect("read v1"),
    )
    .expect("in place");
    let mut back = false;
    for _ in 0..100 {
        if mark_now(&rt.plugins).await == "v1" {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "in-place write reloaded v1");

    // Delete: unloaded.
    std::fs::remove_file(rt.dir.join("chat.wasm")).expect("rm");
    eventually(Duration::from_secs(2), || {
        !rt.plugins.handles("chat:message")
    })
    .await
    .expect("unloaded");
    assert_eq!(
        rt.plugins
            .dispatch(call(
                "s1",
                Some("ada"),
                "chat:message",
                json!({"roomId": "lobby", "text": "x"})
            ))
            .await,
        Err(DispatchError::UnknownEvent)
    );
    assert_eq!(rt.plugins.admin_json()["plugins"], json!([]));
}

fn content_hash_hex(path: &std::path::Path) -> String {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).expect("read");
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

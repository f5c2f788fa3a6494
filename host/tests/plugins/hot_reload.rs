//! Hot reload: v1 -> v2 by write-then-rename under continuous load with zero
//! failed calls; a corrupt file keeps the old version serving; an in-place
//! write is picked up; deleting the file unloads the plugin.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use rtm_host::plugins::{DispatchError, Plugins};

use crate::support::{
    call, eventually, guests, init_tracing, json, replace_by_rename, start_with, write_by_rename,
};

/// Generous deadline for anything the watcher does (CI runs this beside heavy tests).
const DEADLINE: Duration = Duration::from_secs(60);

/// Marks of the chat versions that answered, in order, and failures.
#[derive(Default)]
struct Observed {
    marks: Vec<String>,
    failures: Vec<String>,
}

/// A task calling `chat:message` until `stop`, recording into `seen`; `calls` counts
/// the calls made.
fn hammer(
    plugins: Plugins,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Observed>>,
    calls: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let r = plugins
                .dispatch(call(
                    "s1",
                    Some("ada"),
                    "chat:message",
                    json!({"roomId": "lobby", "text": "tick"}),
                ))
                .await;
            {
                let mut seen = seen.lock().expect("observed");
                match r {
                    Ok(reply) => {
                        let mark = json(reply)["v"].as_str().unwrap_or("?").to_owned();
                        if seen.marks.last() != Some(&mark) {
                            seen.marks.push(mark);
                        }
                    }
                    Err(e) => seen.failures.push(e.to_string()),
                }
            }
            calls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

/// Waits until the hammer made `n` more calls than `from`.
async fn wait_calls(calls: &AtomicU64, from: u64, n: u64) {
    eventually(DEADLINE, || calls.load(Ordering::Relaxed) >= from + n)
        .await
        .expect("the load keeps calling");
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
    // Compile v2 into the shared artifact cache first, so the swap below does not wait
    // on Cranelift.
    let warm = start_with("reload-warm", &[(&g.chat_v2, "chat.wasm")], |_| {}).await;
    warm.plugins.shutdown();
    let rt = start_with("reload", &[(&g.chat_v1, "chat.wasm")], |_| {}).await;
    rt.host.put_in_room("s1", "lobby");
    assert_eq!(mark_now(&rt.plugins).await, "v1");
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Observed::default()));
    let calls = Arc::new(AtomicU64::new(0));
    let load = hammer(
        rt.plugins.clone(),
        stop.clone(),
        seen.clone(),
        calls.clone(),
    );
    wait_calls(&calls, 0, 20).await;

    // A corrupt file over v1: refused, v1 keeps serving.
    write_by_rename(
        b"\0asm\x0d\0\x01\0 definitely not a component",
        &rt.dir,
        "chat.wasm",
    );
    eventually(DEADLINE, || {
        rt.plugins.admin_json()["rejected"]
            .as_array()
            .is_some_and(|r| r.len() == 1)
    })
    .await
    .expect("corrupt file refused");
    assert_eq!(mark_now(&rt.plugins).await, "v1");
    assert!(rt.plugins.handles("chat:message"));

    // v2 by write-then-rename: picked up while the load runs, and no call fails.
    replace_by_rename(&g.chat_v2, &rt.dir, "chat.wasm");
    eventually(DEADLINE, || {
        rt.plugins.admin_json()["plugins"][0]["hash"].as_str()
            != Some(&content_hash_hex(&g.chat_v1))
            && rt.plugins.admin_json()["rejected"]
                .as_array()
                .is_some_and(|r| r.is_empty())
    })
    .await
    .expect("v2 loaded");
    eventually(DEADLINE, || {
        seen.lock()
            .expect("observed")
            .marks
            .last()
            .map(String::as_str)
            == Some("v2")
    })
    .await
    .expect("the load observed v2");
    wait_calls(&calls, calls.load(Ordering::Relaxed), 20).await;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load task");
    {
        let seen = seen.lock().expect("observed");
        assert!(
            seen.failures.is_empty(),
            "failed calls during reload: {:?}",
            seen.failures
        );
        assert_eq!(seen.marks, ["v1", "v2"], "versions observed in order");
    }

    // In-place write (truncate + write) of v1: picked up once complete.
    std::fs::write(
        rt.dir.join("chat.wasm"),
        std::fs::read(&g.chat_v1).expect("read v1"),
    )
    .expect("in place");
    let deadline = std::time::Instant::now() + DEADLINE;
    while mark_now(&rt.plugins).await != "v1" {
        assert!(
            std::time::Instant::now() < deadline,
            "in-place write of v1 not reloaded within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Delete: unloaded.
    std::fs::remove_file(rt.dir.join("chat.wasm")).expect("rm");
    eventually(DEADLINE, || !rt.plugins.handles("chat:message"))
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

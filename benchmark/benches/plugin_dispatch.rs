//! Criterion: one event through the plugin runtime of the `rtm-host` library (no
//! Socket.IO), so the cost of the wasm boundary shows apart from the network path.
//!
//! - `dispatch/noop-warm`: the `noop` test guest answers `Ok(None)`; the call takes a
//!   warm instance from the pool, runs, and returns it (the host's default).
//! - `dispatch/noop-fresh`: the same with `PLUGIN_FRESH_INSTANCE` semantics: a new
//!   store and instance per call (instantiate + call), the strictest isolation.
//! - `dispatch/chat-message`: the chat plugin's `chat:message` on the memory kv: a
//!   capped list push and a room emit (to a host that drops emits), i.e. a real event.
//!
//! The guests are the components `make guests` builds into
//! `target/wasm-guests/artifacts`; the bench runs `scripts/build-guests.sh` when they
//! are missing and stops (panics) when a guest still cannot be had or a call fails.

mod common;

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtm_host::plugins::{EventCall, Plugins};
use tokio::runtime::Runtime;

use common::{check_call, config, event, fill_dir, runtime, rust_guest, start_blocking};

/// A runtime over `scratch/<label>` holding `file` as `name`, started and fully loaded.
fn start(rt: &Runtime, scratch: &Path, label: &str, file: &Path, fresh_instance: bool) -> Plugins {
    let dir = scratch.join(label);
    fill_dir(&dir, &[(file.to_path_buf(), "plugin.wasm")]);
    // Criterion runs millions of calls; the default rotation (10,000 uses) adds an
    // instantiate every so often, which is part of the real cost, so keep it.
    let cfg = rtm_host::plugins::PluginConfig {
        fresh_instance,
        ..config(&dir, true)
    };
    start_blocking(rt, cfg)
}

fn bench_call(c: &mut Criterion, rt: &Runtime, plugins: &Plugins, id: &str, call: &EventCall) {
    check_call(rt, plugins, call);
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(1));
    group.bench_function(id, |b| {
        b.to_async(rt)
            .iter(|| async { plugins.dispatch(call.clone()).await });
    });
    group.finish();
}

fn plugin_dispatch(c: &mut Criterion) {
    let rt = runtime();
    let scratch = tempfile::tempdir().expect("scratch dir for the bench");
    let noop = rust_guest("noop.wasm");
    let chat = rust_guest("chat-v1.wasm");
    let ping = event("noop:ping", "{}");
    let message = event(
        "chat:message",
        r#"{"roomId":"bench-room","text":"hello from the bench"}"#,
    );

    let p = start(&rt, scratch.path(), "noop-warm", &noop, false);
    bench_call(c, &rt, &p, "noop-warm", &ping);
    p.shutdown();
    let p = start(&rt, scratch.path(), "noop-fresh", &noop, true);
    bench_call(c, &rt, &p, "noop-fresh", &ping);
    p.shutdown();
    let p = start(&rt, scratch.path(), "chat", &chat, false);
    bench_call(c, &rt, &p, "chat-message", &message);
    p.shutdown();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = plugin_dispatch
}
criterion_main!(benches);

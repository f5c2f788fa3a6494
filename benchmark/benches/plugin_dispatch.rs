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
//! are missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtm_host::plugins::{
    EventCall, HostError, KvBackend, PluginConfig, PluginHost, Plugins, PresenceMember,
};
use tokio::runtime::Runtime;

/// A Socket.IO side that accepts every call and delivers nothing: the bench measures
/// the runtime, not fan-out.
struct NullHost;

#[async_trait::async_trait]
impl PluginHost for NullHost {
    async fn emit_to_socket(&self, _: &str, _: &str, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    async fn emit_to_room(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &str,
    ) -> Result<(), HostError> {
        Ok(())
    }
    async fn emit_to_all(&self, _: &str, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    async fn join(&self, _: &str, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    async fn leave(&self, _: &str, _: &str) -> Result<(), HostError> {
        Ok(())
    }
    async fn members(&self, _: &str) -> Result<Vec<String>, HostError> {
        Ok(Vec::new())
    }
    async fn has(&self, _: &str, _: &str) -> Result<bool, HostError> {
        Ok(true)
    }
    async fn presence_snapshot(&self, _: &str) -> Result<Vec<PresenceMember>, HostError> {
        Ok(Vec::new())
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The built guests, building them first if needed.
fn artifacts() -> Option<PathBuf> {
    let root = repo_root();
    let dir = root.join("target/wasm-guests/artifacts");
    if !dir.join("noop.wasm").exists() || !dir.join("chat-v1.wasm").exists() {
        eprintln!("plugin_dispatch: building the guests (scripts/build-guests.sh)");
        let built = std::process::Command::new(root.join("scripts/build-guests.sh"))
            .current_dir(&root)
            .status();
        if !matches!(built, Ok(s) if s.success()) {
            eprintln!("plugin_dispatch: building the guests failed: {built:?}");
            return None;
        }
    }
    Some(dir)
}

/// A runtime over a fresh directory holding `files`, started and fully loaded.
fn start(
    rt: &Runtime,
    scratch: &Path,
    files: &[(PathBuf, &str)],
    fresh_instance: bool,
) -> Option<Plugins> {
    let dir = scratch.join(if fresh_instance { "fresh" } else { "warm" });
    std::fs::create_dir_all(&dir).ok()?;
    for (from, name) in files {
        std::fs::copy(from, dir.join(name)).ok()?;
    }
    let cfg = PluginConfig {
        dir: Some(dir),
        cache_dir: Some(repo_root().join("target/plugin-cache")),
        fresh_instance,
        // Criterion runs millions of calls; the default rotation (10,000 uses) would
        // add an instantiate every so often, which is part of the real cost, so keep it.
        ..PluginConfig::default()
    };
    let started = rt.block_on(Plugins::start(
        cfg,
        Arc::new(NullHost),
        KvBackend::memory(),
        "bench",
    ));
    match started {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("plugin_dispatch: runtime did not start: {e:#}");
            None
        }
    }
}

fn event(name: &str, payload: &str) -> EventCall {
    EventCall {
        socket: "bench-socket".into(),
        user: Some("bench-user".into()),
        event: name.into(),
        payload_json: payload.into(),
    }
}

fn bench_call(c: &mut Criterion, rt: &Runtime, plugins: &Plugins, id: &str, call: &EventCall) {
    // One call outside the timing loop, so a broken setup says why instead of timing errors.
    if let Err(e) = rt.block_on(plugins.dispatch(call.clone())) {
        eprintln!("plugin_dispatch: {id} fails ({e}); skipping it");
        return;
    }
    let mut group = c.benchmark_group("dispatch");
    group.throughput(Throughput::Elements(1));
    group.bench_function(id, |b| {
        b.to_async(rt)
            .iter(|| async { plugins.dispatch(call.clone()).await });
    });
    group.finish();
}

fn plugin_dispatch(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("plugin_dispatch: no runtime: {e}");
            return;
        }
    };
    let (Some(guests), Ok(scratch)) = (artifacts(), tempfile::tempdir()) else {
        return;
    };
    let noop = [(guests.join("noop.wasm"), "noop.wasm")];
    let chat = [(guests.join("chat-v1.wasm"), "chat.wasm")];
    let ping = event("noop:ping", "{}");
    let message = event(
        "chat:message",
        r#"{"roomId":"bench-room","text":"hello from the bench"}"#,
    );

    if let Some(p) = start(&rt, &scratch.path().join("noop"), &noop, false) {
        bench_call(c, &rt, &p, "noop-warm", &ping);
        p.shutdown();
    }
    if let Some(p) = start(&rt, &scratch.path().join("noop"), &noop, true) {
        bench_call(c, &rt, &p, "noop-fresh", &ping);
        p.shutdown();
    }
    if let Some(p) = start(&rt, &scratch.path().join("chat"), &chat, false) {
        bench_call(c, &rt, &p, "chat-message", &message);
        p.shutdown();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = plugin_dispatch
}
criterion_main!(benches);

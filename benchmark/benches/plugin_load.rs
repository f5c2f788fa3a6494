//! Criterion: loading plugins, and one event per guest language (what
//! `host/tests/plugins/timing.rs` used to print from the test command).
//!
//! - `load/chat-compile`: `Plugins::start` on a folder holding the Rust chat plugin
//!   without the compiled-code cache: read, Cranelift-compile, instantiate, read the
//!   manifest (a cold start, or a reload of a new build).
//! - `load/chat-cached`: the same with the code cache warm (a restart).
//! - `language/<guest>-load`: `Plugins::start` without the cache for each language's
//!   plugin: `rust-chat` (`chat`), `js-chat` (`plugins/chat-js`, componentize-js) and
//!   `py-moderation` (`plugins/moderation-py`, componentize-py).
//! - `language/<guest>-dispatch`: one `chat:message` (`mod:check` for moderation) on a
//!   warm instance of that plugin.
//!
//! The Rust guest comes from `make guests` (`target/wasm-guests/artifacts`), the
//! others from `plugins/build-polyglot.sh` (`plugins/dist`); each script runs when its
//! output is missing, and a component that still cannot be had stops the bench with a
//! panic naming it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rtm_host::plugins::EventCall;

use common::{check_call, config, event, fill_dir, polyglot, runtime, rust_guest, start};

/// A fresh folder under `scratch` holding `file`, for one start.
fn folder(scratch: &Path, file: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = scratch.join(format!("load-{}", N.fetch_add(1, Ordering::Relaxed)));
    fill_dir(&dir, &[(file.to_path_buf(), "plugin.wasm")]);
    dir
}

fn plugin_load(c: &mut Criterion) {
    let rt = runtime();
    let scratch = tempfile::tempdir().expect("scratch dir for the bench");
    let chat = rust_guest("chat-v1.wasm");
    let message = event(
        "chat:message",
        r#"{"roomId":"bench-room","text":"hello from the bench"}"#,
    );

    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for (id, cache) in [("chat-compile", false), ("chat-cached", true)] {
        if cache {
            // Fill the cache once, outside the measurement.
            let p = rt.block_on(start(config(&folder(scratch.path(), &chat), true)));
            p.shutdown();
        }
        group.bench_function(id, |b| {
            b.to_async(&rt).iter_batched(
                || config(&folder(scratch.path(), &chat), cache),
                |cfg| async move { start(cfg).await.shutdown() },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();

    let languages: [(&str, PathBuf, EventCall); 3] = [
        ("rust-chat", chat.clone(), message.clone()),
        ("js-chat", polyglot("chat-js"), message.clone()),
        (
            "py-moderation",
            polyglot("moderation-py"),
            event(
                "mod:check",
                r#"{"roomId":"bench-room","text":"hello there"}"#,
            ),
        ),
    ];
    let mut group = c.benchmark_group("language");
    group.sample_size(10);
    for (id, file, _) in &languages {
        group.bench_function(format!("{id}-load"), |b| {
            b.to_async(&rt).iter_batched(
                || config(&folder(scratch.path(), file), false),
                |cfg| async move { start(cfg).await.shutdown() },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();

    let mut group = c.benchmark_group("language");
    group.throughput(Throughput::Elements(1));
    for (id, file, call) in &languages {
        let p = rt.block_on(start(config(&folder(scratch.path(), file), true)));
        check_call(&rt, &p, call);
        group.bench_function(format!("{id}-dispatch"), |b| {
            b.to_async(&rt)
                .iter(|| async { p.dispatch(call.clone()).await });
        });
        p.shutdown();
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = plugin_load
}
criterion_main!(benches);

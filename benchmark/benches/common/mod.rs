//! What the plugin benches share: a host that drops every emit, the guest components
//! (built on demand; a component that cannot be had stops the bench with the command
//! that builds it), and a runtime over a scratch directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rtm_host::plugins::{
    EventCall, HostError, KvBackend, PluginConfig, PluginHost, Plugins, PresenceMember,
};
use tokio::runtime::Runtime;

/// A Socket.IO side that accepts every call and delivers nothing: the benches measure
/// the runtime, not fan-out. Every socket is in every room.
pub struct NullHost;

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

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `script args` from the repository root when any of `outputs` is missing, then
/// panics naming the missing file when the script could not produce it.
fn ensure_built(script: &str, args: &[&str], outputs: &[PathBuf]) {
    let root = repo_root();
    if outputs.iter().all(|o| o.exists()) {
        return;
    }
    eprintln!(
        "building the bench's components: {script} {}",
        args.join(" ")
    );
    let status = std::process::Command::new(root.join(script))
        .args(args)
        .current_dir(&root)
        .status();
    if !matches!(&status, Ok(s) if s.success()) {
        panic!("`{script} {}` failed ({status:?})", args.join(" "));
    }
    for o in outputs {
        assert!(
            o.exists(),
            "{} is missing after `{script} {}`",
            o.display(),
            args.join(" ")
        );
    }
}

/// The Rust guests of `make guests` (`target/wasm-guests/artifacts/<name>`), built with
/// `scripts/build-guests.sh` when one is missing.
pub fn rust_guest(name: &str) -> PathBuf {
    let path = repo_root().join("target/wasm-guests/artifacts").join(name);
    ensure_built("scripts/build-guests.sh", &[], std::slice::from_ref(&path));
    path
}

/// A JavaScript or Python component of `plugins/build-polyglot.sh` (`plugins/dist/
/// <name>.wasm`), built with that script when missing.
pub fn polyglot(name: &str) -> PathBuf {
    let path = repo_root()
        .join("plugins/dist")
        .join(format!("{name}.wasm"));
    ensure_built(
        "plugins/build-polyglot.sh",
        &[name],
        std::slice::from_ref(&path),
    );
    path
}

/// Copies `files` (source, file name) into `dir`, which is created.
pub fn fill_dir(dir: &Path, files: &[(PathBuf, &str)]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    for (from, name) in files {
        std::fs::copy(from, dir.join(name))
            .unwrap_or_else(|e| panic!("copying {} into {}: {e}", from.display(), dir.display()));
    }
}

/// Runtime settings of the benches: `dir`, the shared compile cache under `target/`
/// (unless `cache` is false), limits generous enough for a cold JavaScript component.
pub fn config(dir: &Path, cache: bool) -> PluginConfig {
    PluginConfig {
        dir: Some(dir.to_path_buf()),
        cache_dir: Some(repo_root().join("target/plugin-cache")),
        no_cache: !cache,
        timeout_ms: 60_000,
        cpu_ms: 60_000,
        ..PluginConfig::default()
    }
}

/// Starts a runtime on `cfg` and waits for every file to be loaded; panics with the
/// runtime's error or the files it refused.
pub async fn start(cfg: PluginConfig) -> Plugins {
    let dir = cfg.dir.clone();
    let plugins = Plugins::start(cfg, Arc::new(NullHost), KvBackend::memory(), "bench")
        .await
        .unwrap_or_else(|e| panic!("plugin runtime on {dir:?} did not start: {e:#}"));
    let rejected = &plugins.admin_json()["rejected"];
    assert!(
        rejected.as_array().is_none_or(Vec::is_empty),
        "plugin files refused in {dir:?}: {rejected}"
    );
    plugins
}

/// [`start`] from synchronous bench code.
pub fn start_blocking(rt: &Runtime, cfg: PluginConfig) -> Plugins {
    rt.block_on(start(cfg))
}

pub fn event(name: &str, payload: &str) -> EventCall {
    EventCall {
        socket: "bench-socket".into(),
        user: Some("bench-user".into()),
        event: name.into(),
        payload_json: payload.into(),
    }
}

/// One call outside any timing loop, so a broken setup says why instead of timing
/// errors.
pub fn check_call(rt: &Runtime, plugins: &Plugins, call: &EventCall) {
    if let Err(e) = rt.block_on(plugins.dispatch(call.clone())) {
        panic!("{} fails: {e} ({:?})", call.event, e.code());
    }
}

/// A tokio runtime with one worker (the benches measure one call at a time).
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime for the bench")
}

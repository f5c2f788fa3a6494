//! Test support: the guests built from source, a recording `PluginHost`, and
//! a runtime started on a scratch plugin directory.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rtm_host::plugins::{
    EventCall, HostError, KvBackend, PluginConfig, PluginHost, Plugins, PresenceMember,
};

/// Paths of the built guest components.
pub struct Guests {
    pub chat_v1: PathBuf,
    pub chat_v2: PathBuf,
    pub kv_a: PathBuf,
    pub kv_b: PathBuf,
    /// kv-probe named `kva`: claims `kva:*` like `kv-a` under another name.
    pub kv_clash: PathBuf,
    pub trap: PathBuf,
    pub panic: PathBuf,
    pub spin: PathBuf,
    pub membomb: PathBuf,
    pub fs: PathBuf,
    pub net: PathBuf,
    pub bad_manifest: PathBuf,
    pub noop: PathBuf,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `plugins/` for wasm32-wasip2 in its own target dir (the outer cargo
/// holds the lock on ours) with `envs`, returning the release output dir.
fn cargo_build(target_dir: &Path, packages: &[&str], envs: &[(&str, &str)]) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(repo_root().join("plugins/Cargo.toml"))
    .env("CARGO_TARGET_DIR", target_dir)
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("RTM_CHAT_MARK")
    .env_remove("RTM_PLUGIN_NAME")
    .env_remove("RTM_BAD_MANIFEST");
    for p in packages {
        cmd.args(["-p", p]);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let status = cmd
        .status()
        .expect("running cargo to build the test guests");
    assert!(status.success(), "building the test guests failed");
    target_dir.join("wasm32-wasip2/release")
}

/// Builds every guest once per test binary.
pub fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let target = repo_root().join("target");
        let out = target.join("wasm-guests/artifacts");
        std::fs::create_dir_all(&out).expect("artifact dir");
        let main = cargo_build(&target.join("wasm-guests"), &[], &[]);
        let v2 = cargo_build(
            &target.join("wasm-guests-v2"),
            &["chat", "kv-probe"],
            &[("RTM_CHAT_MARK", "v2"), ("RTM_PLUGIN_NAME", "kv-b")],
        );
        let clash = cargo_build(
            &target.join("wasm-guests-clash"),
            &["kv-probe"],
            &[("RTM_PLUGIN_NAME", "kva")],
        );
        let copy = |from: PathBuf, name: &str| {
            let to = out.join(name);
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
            to
        };
        Guests {
            chat_v1: copy(main.join("chat.wasm"), "chat-v1.wasm"),
            chat_v2: copy(v2.join("chat.wasm"), "chat-v2.wasm"),
            kv_a: copy(main.join("kv_probe.wasm"), "kv-a.wasm"),
            kv_b: copy(v2.join("kv_probe.wasm"), "kv-b.wasm"),
            kv_clash: copy(clash.join("kv_probe.wasm"), "kv-clash.wasm"),
            trap: copy(main.join("trap.wasm"), "trap.wasm"),
            panic: copy(main.join("panic.wasm"), "panic.wasm"),
            spin: copy(main.join("spin.wasm"), "spin.wasm"),
            membomb: copy(main.join("membomb.wasm"), "membomb.wasm"),
            fs: copy(main.join("fs.wasm"), "fs.wasm"),
            net: copy(main.join("net.wasm"), "net.wasm"),
            bad_manifest: copy(main.join("bad_manifest.wasm"), "bad-manifest.wasm"),
            noop: copy(main.join("noop.wasm"), "noop.wasm"),
        }
    })
}

/// One emit the plugin made.
#[derive(Debug, Clone, PartialEq)]
pub struct Emitted {
    pub to: String,
    pub except: Option<String>,
    pub event: String,
    pub payload: serde_json::Value,
}

/// A `PluginHost` that keeps rooms in memory and records every emit.
#[derive(Default)]
pub struct RecordingHost {
    pub emits: Mutex<Vec<Emitted>>,
    rooms: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl RecordingHost {
    pub fn put_in_room(&self, socket: &str, room: &str) {
        self.rooms
            .lock()
            .expect("rooms")
            .entry(room.to_owned())
            .or_default()
            .insert(socket.to_owned());
    }

    pub fn emitted(&self, event: &str) -> Vec<Emitted> {
        self.emits
            .lock()
            .expect("emits")
            .iter()
            .filter(|e| e.event == event)
            .cloned()
            .collect()
    }

    fn record(
        &self,
        to: String,
        except: Option<&str>,
        event: &str,
        json: &str,
    ) -> Result<(), HostError> {
        let payload = serde_json::from_str(json).map_err(|e| HostError::Invalid(e.to_string()))?;
        self.emits.lock().expect("emits").push(Emitted {
            to,
            except: except.map(str::to_owned),
            event: event.to_owned(),
            payload,
        });
        Ok(())
    }
}

#[async_trait::async_trait]
impl PluginHost for RecordingHost {
    async fn emit_to_socket(&self, socket: &str, event: &str, json: &str) -> Result<(), HostError> {
        self.record(format!("socket:{socket}"), None, event, json)
    }

    async fn emit_to_room(
        &self,
        room: &str,
        except: Option<&str>,
        event: &str,
        json: &str,
    ) -> Result<(), HostError> {
        self.record(format!("room:{room}"), except, event, json)
    }

    async fn emit_to_all(&self, event: &str, json: &str) -> Result<(), HostError> {
        self.record("all".into(), None, event, json)
    }

    async fn join(&self, socket: &str, room: &str) -> Result<(), HostError> {
        self.put_in_room(socket, room);
        Ok(())
    }

    async fn leave(&self, socket: &str, room: &str) -> Result<(), HostError> {
        if let Some(r) = self.rooms.lock().expect("rooms").get_mut(room) {
            r.remove(socket);
        }
        Ok(())
    }

    async fn members(&self, room: &str) -> Result<Vec<String>, HostError> {
        Ok(self
            .rooms
            .lock()
            .expect("rooms")
            .get(room)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn has(&self, socket: &str, room: &str) -> Result<bool, HostError> {
        Ok(self
            .rooms
            .lock()
            .expect("rooms")
            .get(room)
            .is_some_and(|r| r.contains(socket)))
    }

    async fn presence_snapshot(&self, _room: &str) -> Result<Vec<PresenceMember>, HostError> {
        Ok(Vec::new())
    }
}

/// A fresh, empty plugin directory under `target/`.
pub fn scratch_dir(label: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = repo_root().join("target/plugin-tests").join(format!(
        "{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Test defaults: small instance pool, shared compile cache, quick reloads.
/// Runtime settings for tests that do not exercise the limits: generous deadlines,
/// because CI runs these beside other CPU-heavy tests on two cores and a starved call
/// must not look like a runaway guest (tests of the limits set their own).
pub fn config(dir: &Path) -> PluginConfig {
    PluginConfig {
        timeout_ms: 10_000,
        cpu_ms: 5_000,
        dir: Some(dir.to_path_buf()),
        cache_dir: Some(repo_root().join("target/plugin-cache")),
        max_instances: 64,
        reload_debounce_ms: 50,
        ..PluginConfig::default()
    }
}

pub struct Runtime {
    pub plugins: Plugins,
    pub host: Arc<RecordingHost>,
    pub dir: PathBuf,
}

/// Copies `files` (path, file name) into a scratch dir and starts the runtime on it.
pub async fn start_with(
    label: &str,
    files: &[(&Path, &str)],
    tweak: impl FnOnce(&mut PluginConfig),
) -> Runtime {
    let dir = scratch_dir(label);
    for (from, name) in files {
        std::fs::copy(from, dir.join(name)).expect("copy guest");
    }
    let mut cfg = config(&dir);
    tweak(&mut cfg);
    let host = Arc::new(RecordingHost::default());
    let plugins = Plugins::start(cfg, host.clone(), KvBackend::memory(), "test")
        .await
        .expect("runtime starts");
    Runtime { plugins, host, dir }
}

pub fn call(
    socket: &str,
    user: Option<&str>,
    event: &str,
    payload: serde_json::Value,
) -> EventCall {
    EventCall {
        socket: socket.to_owned(),
        user: user.map(str::to_owned),
        event: event.to_owned(),
        payload_json: payload.to_string(),
    }
}

/// Parses a dispatch reply.
pub fn json(reply: Option<String>) -> serde_json::Value {
    reply.map_or(serde_json::Value::Null, |s| {
        serde_json::from_str(&s).expect("reply is JSON")
    })
}

/// Writes `from` into `dir/name` the supported way: a hidden temp file renamed over.
pub fn replace_by_rename(from: &Path, dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(from, &tmp).expect("write temp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename over");
}

pub fn write_by_rename(bytes: &[u8], dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write temp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename over");
}

/// Polls `cond` every 10 ms up to `limit`; returns how long it took.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,rtm_host::plugins=info".into()),
        )
        .with_test_writer()
        .try_init();
}

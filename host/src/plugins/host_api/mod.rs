//! The host interfaces a plugin imports (one file per WIT interface) and the
//! boundary to the rest of the host: the [`PluginHost`] trait the Socket.IO
//! side implements, and [`PluginState`], the data of every plugin `Store`.
//!
//! Every host call a plugin makes is scoped: to its tenant (the
//! `PluginHost` the host handed us is the tenant's), to its kv namespace and
//! to the events its manifest declares.

mod clock;
mod emit;
mod kv;
mod log;
mod presence;
mod rooms;
mod stdio;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{self, WitError};
use super::budget::CallBudget;
use super::instance::CallLimits;
use super::kv::KvNamespace;
use super::limits::MemoryLimiter;
use super::manifest::Manifest;

/// What the plugin runtime needs from the Socket.IO side, for one tenant
/// (implemented by the host over socketioxide and the presence service).
///
/// Every method is called from plugin calls, on the tokio runtime, while the
/// calling plugin instance waits; keep them quick (emits are fire-and-forget
/// from the plugin's point of view). Room and socket ids arrive as the plugin
/// sent them: validate what your side needs and answer `HostError::Invalid`.
#[async_trait::async_trait]
pub trait PluginHost: Send + Sync + 'static {
    /// Emit `event` with the JSON `json` to one socket of the tenant.
    async fn emit_to_socket(&self, socket: &str, event: &str, json: &str) -> Result<(), HostError>;
    /// Emit to every socket in `room` (all nodes), except the socket `except` when given.
    async fn emit_to_room(
        &self,
        room: &str,
        except: Option<&str>,
        event: &str,
        json: &str,
    ) -> Result<(), HostError>;
    /// Emit to every socket of the tenant (all nodes).
    async fn emit_to_all(&self, event: &str, json: &str) -> Result<(), HostError>;
    /// Put `socket` in the Socket.IO room `room`.
    async fn join(&self, socket: &str, room: &str) -> Result<(), HostError>;
    /// Remove `socket` from the Socket.IO room `room`.
    async fn leave(&self, socket: &str, room: &str) -> Result<(), HostError>;
    /// Socket ids in `room` (all nodes).
    async fn members(&self, room: &str) -> Result<Vec<String>, HostError>;
    /// Whether `socket` is in the Socket.IO room `room`.
    async fn has(&self, socket: &str, room: &str) -> Result<bool, HostError>;
    /// Live presence registrations in `room` (all nodes).
    async fn presence_snapshot(&self, room: &str) -> Result<Vec<PresenceMember>, HostError>;
}

/// Why a [`PluginHost`] call failed; the plugin sees `code()` and the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// A backend (Redis, the cluster adapter) did not answer; nothing was done.
    #[error("{0}")]
    Unavailable(String),
    /// The arguments make no sense (bad room or socket id).
    #[error("{0}")]
    Invalid(String),
    /// The tenant's policy does not allow this.
    #[error("{0}")]
    Forbidden(String),
}

impl HostError {
    /// The error code the plugin sees.
    pub fn code(&self) -> &'static str {
        match self {
            HostError::Unavailable(_) => "unavailable",
            HostError::Invalid(_) => "invalid_argument",
            HostError::Forbidden(_) => "forbidden",
        }
    }
}

impl From<HostError> for WitError {
    fn from(e: HostError) -> Self {
        WitError::new(e.code(), e.to_string())
    }
}

/// One live presence registration, as the presence service knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceMember {
    pub conn_id: String,
    pub user_id: String,
    /// The registration's state object.
    pub state: serde_json::Value,
    pub epoch: u64,
    /// Milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
}

/// What host calls of one loaded plugin may reach. Shared (`Arc`) by every
/// store of that plugin version; immutable.
pub(super) struct HostApi {
    /// The plugin's name (or its file, while loading), for logs.
    pub plugin: Arc<str>,
    /// `None` while the manifest is being read: host calls are refused then.
    live: Option<LiveApi>,
}

struct LiveApi {
    host: Arc<dyn PluginHost>,
    kv: KvNamespace,
    manifest: Arc<Manifest>,
}

impl HostApi {
    /// The API of an instance created only to read the manifest.
    pub(super) fn loading(label: &str) -> Arc<Self> {
        Arc::new(HostApi {
            plugin: label.into(),
            live: None,
        })
    }

    pub(super) fn live(
        host: Arc<dyn PluginHost>,
        kv: KvNamespace,
        manifest: Arc<Manifest>,
    ) -> Arc<Self> {
        Arc::new(HostApi {
            plugin: manifest.name.as_str().into(),
            live: Some(LiveApi { host, kv, manifest }),
        })
    }

    fn get(&self) -> Result<&LiveApi, WitError> {
        self.live.as_ref().ok_or_else(|| {
            WitError::new(
                "forbidden",
                "host calls are not allowed while the manifest is read",
            )
        })
    }
}

/// The data of every plugin `Store`: WASI (sandboxed), limits, the host API
/// and the CPU-budget bookkeeping read by the epoch callback.
pub(super) struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: MemoryLimiter,
    pub api: Arc<HostApi>,
    /// Emits and log bytes the current call may still spend.
    pub budget: Arc<CallBudget>,
    /// Epoch ticks the current call may still run; see `instance.rs`.
    pub cpu_ticks_left: u64,
    /// Set when the epoch callback stopped the guest for exhausting its CPU budget.
    pub cpu_exhausted: bool,
}

impl PluginState {
    /// A sandbox with no files, no network, no environment, no arguments and
    /// stdout/stderr going to tracing; memory, emits and log output capped by `limits`.
    pub(super) fn new(api: Arc<HostApi>, limits: &CallLimits) -> Self {
        let budget = Arc::new(CallBudget::new(
            limits.emits_per_call,
            limits.log_bytes_per_call,
        ));
        let pipe = |stream| stdio::LogPipe::new(api.plugin.clone(), stream, budget.clone());
        let wasi = WasiCtxBuilder::new()
            .stdout(pipe("stdout"))
            .stderr(pipe("stderr"))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        PluginState {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryLimiter::new(limits.memory_bytes),
            api,
            budget,
            cpu_ticks_left: 0,
            cpu_exhausted: false,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::types::Host for PluginState {}

/// Adds WASI p2 and every `rtm:plugin` import to `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    bindings::Plugin::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |state| state)
}

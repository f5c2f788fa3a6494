//! One live plugin instance: a `Store` (sandbox + limits) with the component
//! instantiated in it, and the calls into its exports under the CPU budget.
//!
//! An instance serves one call at a time. After a trap or a limit hit its
//! state is unknown, so callers drop it instead of reusing it.

use std::sync::Arc;

use wasmtime::{Store, UpdateDeadline};

use super::bindings::{EventCtx, Plugin, PluginManifest, PluginPre, WitError};
use super::host_api::{HostApi, PluginState};

/// How a call into the guest failed (the instance must then be discarded).
#[derive(Debug, thiserror::Error)]
pub(super) enum CallFailure {
    #[error("CPU time limit exceeded")]
    CpuExhausted,
    #[error("memory limit of {0} MiB exceeded")]
    MemoryExhausted(usize),
    #[error("wall-clock limit of {0} ms exceeded")]
    Timeout(u64),
    #[error("{0}")]
    Trap(String),
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    #[error("the host has no free instance slot (PLUGIN_MAX_INSTANCES)")]
    NoCapacity,
    #[error("busy: all {0} call slots stayed taken for {1} ms (PLUGIN_MAX_CONCURRENCY)")]
    Busy(usize, u64),
}

impl CallFailure {
    /// Whether the failure is the plugin's fault (and counts towards quarantine).
    pub(super) fn is_plugin_fault(&self) -> bool {
        !matches!(self, CallFailure::NoCapacity | CallFailure::Busy(..))
    }
}

/// What the limits of one call are.
#[derive(Debug, Clone, Copy)]
pub(super) struct CallLimits {
    pub cpu_ticks: u64,
    pub memory_bytes: usize,
    pub emits_per_call: u32,
    pub log_bytes_per_call: usize,
    /// Largest reply of an event call (checked by the dispatcher).
    pub reply_max_bytes: usize,
}

pub(super) struct Instance {
    store: Store<PluginState>,
    bindings: Plugin,
    /// Calls served so far (the pool retires instances after N).
    pub uses: u64,
}

/// Describes a wasmtime error for logs and `plugin_failed` reasons: the trap
/// code when there is one, else the error chain, cut to a sane length.
fn describe(err: &wasmtime::Error) -> String {
    let text = match err.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    text.chars().take(512).collect()
}

impl Instance {
    /// Instantiates `pre` in a fresh store. The store's epoch callback charges
    /// one tick of CPU budget per tick the guest runs and yields to tokio in
    /// between, so a spinning guest neither overruns nor starves the runtime.
    pub(super) async fn new(
        pre: &PluginPre<PluginState>,
        api: Arc<HostApi>,
        limits: CallLimits,
    ) -> Result<Self, CallFailure> {
        let mut store = Store::new(pre.engine(), PluginState::new(api, &limits));
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            if state.cpu_ticks_left == 0 {
                state.cpu_exhausted = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            state.cpu_ticks_left -= 1;
            Ok(UpdateDeadline::Yield(1))
        });
        // Instantiation runs start functions: give it a budget too.
        store.data_mut().cpu_ticks_left = limits.cpu_ticks;
        store.set_epoch_deadline(1);
        match pre.instantiate_async(&mut store).await {
            Ok(bindings) => Ok(Instance {
                store,
                bindings,
                uses: 0,
            }),
            Err(e) if e.is::<wasmtime::PoolConcurrencyLimitError>() => Err(CallFailure::NoCapacity),
            Err(e) => Err(CallFailure::Instantiate(describe(&e))),
        }
    }

    /// Swaps the host API (used once: the instance that read the manifest
    /// becomes the first warm instance of the loaded plugin).
    pub(super) fn set_api(&mut self, api: Arc<HostApi>) {
        self.store.data_mut().api = api;
    }

    fn arm(&mut self, cpu_ticks: u64) {
        let state = self.store.data_mut();
        state.budget.reset();
        state.cpu_ticks_left = cpu_ticks;
        state.cpu_exhausted = false;
        self.store.set_epoch_deadline(1);
        self.uses += 1;
    }

    /// After a call: the note on guest log output that did not fit the call's budget.
    fn settle(&self) {
        let state = self.store.data();
        let dropped = state.budget.dropped();
        if dropped > 0 {
            tracing::warn!(
                target: "rtm::plugin",
                plugin = &*state.api.plugin,
                dropped_bytes = dropped,
                limit = state.budget.log_bytes_per_call(),
                "guest log output of one call truncated (log_bytes_per_call)"
            );
        }
    }

    fn failure(&self, err: &wasmtime::Error) -> CallFailure {
        let state = self.store.data();
        if state.cpu_exhausted {
            CallFailure::CpuExhausted
        } else if state.limits.exceeded {
            CallFailure::MemoryExhausted(state.limits.cap_mib())
        } else {
            CallFailure::Trap(describe(err))
        }
    }

    pub(super) async fn manifest(&mut self, cpu_ticks: u64) -> Result<PluginManifest, CallFailure> {
        self.arm(cpu_ticks);
        let handler = self.bindings.rtm_plugin_handler();
        let result = handler.call_manifest(&mut self.store).await;
        self.settle();
        match result {
            Ok(m) => Ok(m),
            Err(e) => Err(self.failure(&e)),
        }
    }

    pub(super) async fn on_event(
        &mut self,
        ctx: &EventCtx,
        cpu_ticks: u64,
    ) -> Result<Result<Option<String>, WitError>, CallFailure> {
        self.arm(cpu_ticks);
        let handler = self.bindings.rtm_plugin_handler();
        let result = handler.call_on_event(&mut self.store, ctx).await;
        self.settle();
        match result {
            Ok(r) => Ok(r),
            Err(e) => Err(self.failure(&e)),
        }
    }

    pub(super) async fn on_connect(
        &mut self,
        socket: &str,
        cpu_ticks: u64,
    ) -> Result<(), CallFailure> {
        self.arm(cpu_ticks);
        let handler = self.bindings.rtm_plugin_handler();
        let result = handler.call_on_connect(&mut self.store, socket).await;
        self.settle();
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failure(&e)),
        }
    }

    pub(super) async fn on_disconnect(
        &mut self,
        socket: &str,
        user: Option<&str>,
        cpu_ticks: u64,
    ) -> Result<(), CallFailure> {
        self.arm(cpu_ticks);
        let handler = self.bindings.rtm_plugin_handler();
        let result = handler
            .call_on_disconnect(&mut self.store, socket, user)
            .await;
        self.settle();
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failure(&e)),
        }
    }

    pub(super) async fn on_presence(
        &mut self,
        event_json: &str,
        cpu_ticks: u64,
    ) -> Result<(), CallFailure> {
        self.arm(cpu_ticks);
        let handler = self.bindings.rtm_plugin_handler();
        let event = event_json.to_owned();
        let result = handler.call_on_presence(&mut self.store, &event).await;
        self.settle();
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failure(&e)),
        }
    }
}

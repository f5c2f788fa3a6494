//! One client event (or hook) -> one plugin call under its limits -> result.
//!
//! The order is: payload size, route, quarantine, an instance (warm or
//! fresh), the call under the wall-clock timeout and CPU budget. A clean
//! call returns its instance to the pool; a trap or limit hit drops it and
//! counts towards quarantine. Only this plugin's call fails: the guest runs
//! on its own fiber and store, so nothing else is affected.

use std::sync::Arc;
use std::time::Instant;

use super::bindings::EventCtx;
use super::instance::{CallFailure, Instance};
use super::loaded::LoadedPlugin;
use super::metrics::Outcome;

/// Longest error code and message passed on from a plugin.
const MAX_CODE_CHARS: usize = 64;
const MAX_MESSAGE_CHARS: usize = 1024;

/// One custom event from a client, for [`super::Plugins::dispatch`].
#[derive(Debug, Clone)]
pub struct EventCall {
    /// The sending socket's id.
    pub socket: String,
    /// The sender's user id, when it joined presence or authenticated.
    pub user: Option<String>,
    /// The event name.
    pub event: String,
    /// The event's first argument as JSON (`null` when absent).
    pub payload_json: String,
}

/// Why a dispatch did not produce a result. Maps one to one onto the ack
/// error codes of PROTOCOL.md (see [`DispatchError::code`]).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DispatchError {
    /// No loaded plugin declares the event (`unknown_event`).
    #[error("no loaded plugin handles this event")]
    UnknownEvent,
    /// The payload is over `PLUGIN_MAX_PAYLOAD_BYTES` (`payload_too_large`).
    #[error("payload of {size} bytes is over the {limit}-byte limit")]
    PayloadTooLarge { size: usize, limit: usize },
    /// The plugin answered with an error (`plugin_error`); both fields are the plugin's.
    #[error("{message}")]
    PluginError { code: String, message: String },
    /// The plugin trapped, ran out of CPU, time or memory, or is quarantined (`plugin_failed`).
    #[error("{0}")]
    PluginFailed(String),
}

impl DispatchError {
    /// The PROTOCOL.md error code for the ack.
    pub fn code(&self) -> &'static str {
        match self {
            DispatchError::UnknownEvent => "unknown_event",
            DispatchError::PayloadTooLarge { .. } => "payload_too_large",
            DispatchError::PluginError { .. } => "plugin_error",
            DispatchError::PluginFailed(_) => "plugin_failed",
        }
    }
}

/// Runs `call` on `plugin`.
pub(super) async fn event(
    plugin: &Arc<LoadedPlugin>,
    call: EventCall,
    timeout_ms: u64,
) -> Result<Option<String>, DispatchError> {
    if let Err(q) = plugin.breaker.check() {
        plugin.metrics.record_rejected();
        return Err(DispatchError::PluginFailed(format!(
            "plugin {}: {q}",
            plugin.name()
        )));
    }
    let started = Instant::now();
    let ctx = EventCtx {
        socket: call.socket,
        user: call.user,
        event: call.event,
        payload: call.payload_json,
    };
    let cpu = plugin.limits.cpu_ticks;
    let result = run(plugin, timeout_ms, |mut instance| async move {
        let r = instance.on_event(&ctx, cpu).await;
        (instance, r)
    })
    .await;
    let (outcome, answer) = match result {
        Ok(Ok(Some(json)))
            if serde_json::from_str::<&serde_json::value::RawValue>(&json).is_err() =>
        {
            tracing::warn!(plugin = plugin.name(), "plugin replied with invalid JSON");
            (
                Outcome::Failed,
                Err(DispatchError::PluginFailed(format!(
                    "plugin {} replied with invalid JSON",
                    plugin.name()
                ))),
            )
        }
        Ok(Ok(Some(json))) if json.len() > plugin.limits.reply_max_bytes => {
            tracing::warn!(
                plugin = plugin.name(),
                bytes = json.len(),
                "plugin reply over reply_max_bytes"
            );
            (
                Outcome::Failed,
                Err(DispatchError::PluginFailed(format!(
                    "plugin {} replied {} bytes, over reply_max_bytes ({})",
                    plugin.name(),
                    json.len(),
                    plugin.limits.reply_max_bytes
                ))),
            )
        }
        Ok(Ok(reply)) => (Outcome::Ok, Ok(reply)),
        Ok(Err(e)) => (
            Outcome::Error,
            Err(DispatchError::PluginError {
                code: e.code.chars().take(MAX_CODE_CHARS).collect(),
                message: e.message.chars().take(MAX_MESSAGE_CHARS).collect(),
            }),
        ),
        Err(failure) => (
            Outcome::Failed,
            Err(DispatchError::PluginFailed(format!(
                "plugin {}: {failure}",
                plugin.name()
            ))),
        ),
    };
    plugin.metrics.record(outcome, started.elapsed());
    answer
}

/// A hook to call; see [`hook`].
pub(super) enum Hook {
    Connect {
        socket: String,
    },
    Disconnect {
        socket: String,
        user: Option<String>,
    },
    Presence {
        event_json: String,
    },
}

/// Runs a hook on `plugin`; failures are logged and counted, never returned.
pub(super) async fn hook(plugin: Arc<LoadedPlugin>, hook: Hook, timeout_ms: u64) {
    if plugin.breaker.check().is_err() {
        plugin.metrics.record_rejected();
        return;
    }
    let started = Instant::now();
    let cpu = plugin.limits.cpu_ticks;
    let result = run(&plugin, timeout_ms, |mut instance| async move {
        let r = match &hook {
            Hook::Connect { socket } => instance.on_connect(socket, cpu).await,
            Hook::Disconnect { socket, user } => {
                instance.on_disconnect(socket, user.as_deref(), cpu).await
            }
            Hook::Presence { event_json } => instance.on_presence(event_json, cpu).await,
        };
        (instance, r)
    })
    .await;
    let outcome = match result {
        Ok(()) => Outcome::Ok,
        Err(failure) => {
            tracing::warn!(plugin = plugin.name(), %failure, "plugin hook failed");
            Outcome::Failed
        }
    };
    plugin.metrics.record(outcome, started.elapsed());
}

/// Waits for a call slot (up to the wall-clock limit), takes an instance, runs
/// `f` on it under the wall-clock limit, returns it to the pool after a clean
/// call, and feeds the breaker. Waiting for a slot is not the plugin's fault
/// and does not eat into its own time.
async fn run<T, F, Fut>(plugin: &LoadedPlugin, timeout_ms: u64, f: F) -> Result<T, CallFailure>
where
    F: FnOnce(Instance) -> Fut,
    Fut: Future<Output = (Instance, Result<T, CallFailure>)>,
{
    let limit = std::time::Duration::from_millis(timeout_ms);
    // The permit lives to the end of this function: the slot is busy until the
    // instance is back in the pool (or dropped).
    let permit = tokio::time::timeout(limit, plugin.slots.acquire()).await;
    let instance = match permit {
        Ok(Ok(_)) => plugin.instance().await,
        // Timed out waiting, or (never: the semaphore is not closed) closed.
        Ok(Err(_)) | Err(_) => Err(CallFailure::Busy(plugin.max_concurrency, timeout_ms)),
    };
    let result = match instance {
        Ok(instance) => {
            match tokio::time::timeout(limit, f(instance)).await {
                Ok((instance, Ok(value))) => {
                    plugin.pool.put(instance);
                    Ok(value)
                }
                // The instance (dropped here) may be in any state.
                Ok((_instance, Err(failure))) => Err(failure),
                // Dropping the future dropped the instance mid-call.
                Err(_) => Err(CallFailure::Timeout(timeout_ms)),
            }
        }
        Err(failure) => Err(failure),
    };
    match &result {
        Ok(_) => plugin.breaker.record_success(),
        Err(failure) if failure.is_plugin_fault() => {
            if plugin.breaker.record_failure() {
                tracing::error!(
                    plugin = plugin.name(),
                    %failure,
                    quarantines = plugin.breaker.quarantines(),
                    "plugin quarantined after repeated failures"
                );
            } else {
                tracing::warn!(plugin = plugin.name(), %failure, "plugin call failed");
            }
        }
        Err(failure) => tracing::warn!(plugin = plugin.name(), %failure, "plugin call not run"),
    }
    result
}

//! `rtm:plugin/emit`: plugin -> Socket.IO emits, limited to the events the
//! plugin's manifest declares and to valid JSON payloads.

use super::bindings::{WitError, emit};
use super::{LiveApi, PluginState};

/// Largest payload a plugin may emit, in bytes.
const MAX_EMIT_BYTES: usize = 1 << 20;

/// Refuses payloads that are not one JSON value, or too large.
fn check_json(payload: &str) -> Result<(), WitError> {
    if payload.len() > MAX_EMIT_BYTES {
        return Err(WitError::new(
            "too_large",
            format!("payload larger than {MAX_EMIT_BYTES} bytes"),
        ));
    }
    serde_json::from_str::<&serde_json::value::RawValue>(payload)
        .map(|_| ())
        .map_err(|e| WitError::new("invalid_json", format!("payload is not JSON: {e}")))
}

/// The live API, provided `event` may be emitted by this plugin and `payload` is fine.
fn allowed<'a>(
    state: &'a PluginState,
    event: &str,
    payload: &str,
) -> Result<&'a LiveApi, WitError> {
    let api = state.api.get()?;
    if !state.budget.take_emit() {
        return Err(WitError::new(
            "quota_exceeded",
            format!(
                "this call made its {} emits (emits_per_call)",
                state.budget.emits_per_call()
            ),
        ));
    }
    if !api.manifest.declares(event) {
        return Err(WitError::new(
            "forbidden",
            format!(
                "plugin {} may only emit events its manifest declares, not {event:?}",
                api.manifest.name
            ),
        ));
    }
    check_json(payload)?;
    Ok(api)
}

impl emit::Host for PluginState {
    async fn to_socket(
        &mut self,
        socket: String,
        event: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        Ok(match allowed(self, &event, &payload) {
            Ok(api) => api
                .host
                .emit_to_socket(&socket, &event, &payload)
                .await
                .map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn to_room(
        &mut self,
        room: String,
        event: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        Ok(match allowed(self, &event, &payload) {
            Ok(api) => api
                .host
                .emit_to_room(&room, None, &event, &payload)
                .await
                .map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn to_room_except(
        &mut self,
        room: String,
        except: String,
        event: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        Ok(match allowed(self, &event, &payload) {
            Ok(api) => api
                .host
                .emit_to_room(&room, Some(&except), &event, &payload)
                .await
                .map_err(Into::into),
            Err(e) => Err(e),
        })
    }

    async fn broadcast(
        &mut self,
        event: String,
        payload: String,
    ) -> wasmtime::Result<Result<(), WitError>> {
        Ok(match allowed(self, &event, &payload) {
            Ok(api) => api
                .host
                .emit_to_all(&event, &payload)
                .await
                .map_err(Into::into),
            Err(e) => Err(e),
        })
    }
}

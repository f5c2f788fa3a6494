//! The host side of the plugin boundary: [`PluginBridge`] implements the runtime's
//! `PluginHost` over this node's [`Fanout`] and [`Presence`], and [`dispatch_ack`] turns
//! a plugin's answer into the PROTOCOL.md ack. Plugins never see socketioxide or fred.

use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::fanout::{Fanout, FanoutError};
use crate::plugins::{DispatchError, HostError, PluginHost, PresenceMember};
use crate::presence::Presence;
use crate::presence::ids::is_valid_id;

/// One tenant's view of the node, handed to its plugin runtime.
pub struct PluginBridge {
    pub fanout: Arc<dyn Fanout>,
    pub presence: Arc<Presence>,
}

fn raw(json: &str) -> Result<Box<RawValue>, HostError> {
    RawValue::from_string(json.to_owned())
        .map_err(|e| HostError::Invalid(format!("payload is not JSON: {e}")))
}

fn room(id: &str) -> Result<&str, HostError> {
    if is_valid_id(id, 128) {
        Ok(id)
    } else {
        Err(HostError::Invalid(format!("not a room id: {id:?}")))
    }
}

fn fanout_err(e: FanoutError) -> HostError {
    match e {
        FanoutError::BadSocketId(s) => HostError::Invalid(format!("not a socket id: {s:?}")),
        FanoutError::Broadcast(m) | FanoutError::Remote(m) => HostError::Unavailable(m),
    }
}

#[async_trait::async_trait]
impl PluginHost for PluginBridge {
    async fn emit_to_socket(&self, socket: &str, event: &str, json: &str) -> Result<(), HostError> {
        self.fanout
            .to_socket(socket, event, &raw(json)?)
            .await
            .map_err(fanout_err)
    }

    async fn emit_to_room(
        &self,
        room_id: &str,
        except: Option<&str>,
        event: &str,
        json: &str,
    ) -> Result<(), HostError> {
        self.fanout
            .to_room(room(room_id)?, except, event, &raw(json)?)
            .await
            .map_err(fanout_err)
    }

    async fn emit_to_all(&self, event: &str, json: &str) -> Result<(), HostError> {
        self.fanout
            .to_all(event, &raw(json)?)
            .await
            .map_err(fanout_err)
    }

    async fn join(&self, socket: &str, room_id: &str) -> Result<(), HostError> {
        if self.fanout.join_local(socket, room(room_id)?) {
            Ok(())
        } else {
            Err(HostError::Invalid(format!(
                "socket {socket} is not connected to this node"
            )))
        }
    }

    async fn leave(&self, socket: &str, room_id: &str) -> Result<(), HostError> {
        self.fanout.leave_local(socket, room(room_id)?);
        Ok(())
    }

    async fn members(&self, room_id: &str) -> Result<Vec<String>, HostError> {
        self.fanout
            .members(room(room_id)?)
            .await
            .map_err(fanout_err)
    }

    async fn has(&self, socket: &str, room_id: &str) -> Result<bool, HostError> {
        let room_id = room(room_id)?;
        // The sender of an event is connected here, so the local check answers the
        // common case without a cluster round trip.
        if self.fanout.in_room_local(socket, room_id) {
            return Ok(true);
        }
        Ok(self.members(room_id).await?.iter().any(|s| s == socket))
    }

    async fn presence_snapshot(&self, room_id: &str) -> Result<Vec<PresenceMember>, HostError> {
        let regs = self
            .presence
            .store()
            .snapshot(room(room_id)?)
            .await
            .map_err(|e| HostError::Unavailable(e.to_string()))?;
        Ok(regs
            .into_iter()
            .map(|r| PresenceMember {
                conn_id: r.conn_id,
                user_id: r.user_id,
                state: Value::Object(r.state),
                epoch: r.epoch,
                last_seen_ms: u64::try_from(r.last_seen).unwrap_or(0),
            })
            .collect())
    }
}

/// The ack for a plugin call: `{ ok: true, data? }`, or the error with its code. A
/// plugin's own error keeps its code as `reason` under the `plugin_error` code.
pub fn dispatch_ack(result: Result<Option<String>, DispatchError>) -> (Value, &'static str) {
    match result {
        Ok(None) => (json!({ "ok": true }), "ok"),
        Ok(Some(data)) => match serde_json::from_str::<Value>(&data) {
            Ok(data) => (json!({ "ok": true, "data": data }), "ok"),
            Err(_) => (
                json!({ "ok": false, "error": { "code": "plugin_failed", "message": "plugin returned invalid JSON" } }),
                "plugin_failed",
            ),
        },
        Err(e) => {
            let code = e.code();
            let mut error = json!({ "code": code, "message": e.to_string() });
            if let DispatchError::PluginError { code: reason, .. } = &e {
                error["reason"] = json!(reason);
            }
            (json!({ "ok": false, "error": error }), code)
        }
    }
}

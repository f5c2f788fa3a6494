//! Presence requests as they arrive (untrusted JSON) turned into typed values, with every
//! PROTOCOL.md rule checked here so the service and stores only ever see valid input.

use serde_json::{Map, Value};

use super::error::PresenceError;
use super::ids::is_valid_id;
use super::store::{Epoch, state_size};

/// The configurable bounds on client input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_id_len: usize,
    pub max_state_bytes: usize,
}

/// A previous registration a reconnected client wants back.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeToken {
    pub conn_id: String,
    pub epoch: Epoch,
}

/// `presence:join`.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinRequest {
    pub room_id: String,
    pub user_id: String,
    pub state: Option<Map<String, Value>>,
    pub resume: Option<ResumeToken>,
}

/// `presence:heartbeat`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatRequest {
    pub room_id: Option<String>,
    pub patch: Option<Map<String, Value>>,
    pub epoch: Option<Epoch>,
}

/// `presence:leave` and `presence:snapshot` (room required for the latter).
#[derive(Debug, Clone, PartialEq)]
pub struct RoomRequest {
    pub room_id: Option<String>,
}

fn invalid(msg: impl Into<String>) -> PresenceError {
    PresenceError::InvalidPayload(msg.into())
}

/// The payload as an object; `null`/absent counts as empty when `optional`.
fn object(v: &Value, optional: bool) -> Result<Option<&Map<String, Value>>, PresenceError> {
    match v {
        Value::Object(m) => Ok(Some(m)),
        Value::Null if optional => Ok(None),
        _ => Err(invalid("payload must be a JSON object")),
    }
}

fn id(
    obj: Option<&Map<String, Value>>,
    field: &str,
    limits: &Limits,
) -> Result<Option<String>, PresenceError> {
    match obj.and_then(|o| o.get(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_valid_id(s, limits.max_id_len) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!(
            "{field} must be 1..{} characters of [A-Za-z0-9_.:@-]",
            limits.max_id_len
        ))),
    }
}

fn required_id(
    obj: Option<&Map<String, Value>>,
    field: &str,
    limits: &Limits,
) -> Result<String, PresenceError> {
    id(obj, field, limits)?.ok_or_else(|| invalid(format!("{field} is required")))
}

fn epoch(obj: Option<&Map<String, Value>>, field: &str) -> Result<Option<Epoch>, PresenceError> {
    match obj.and_then(|o| o.get(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} must be a non-negative integer"))),
    }
}

fn state(
    obj: Option<&Map<String, Value>>,
    field: &str,
    limits: &Limits,
) -> Result<Option<Map<String, Value>>, PresenceError> {
    match obj.and_then(|o| o.get(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let size = state_size(m);
            if size > limits.max_state_bytes {
                return Err(PresenceError::PayloadTooLarge(format!(
                    "{field} is {size} bytes, the limit is {}",
                    limits.max_state_bytes
                )));
            }
            Ok(Some(m.clone()))
        }
        Some(_) => Err(invalid(format!("{field} must be a JSON object"))),
    }
}

impl JoinRequest {
    pub fn parse(v: &Value, limits: &Limits) -> Result<Self, PresenceError> {
        let obj = object(v, false)?;
        let resume = match obj.and_then(|o| o.get("resume")) {
            None | Some(Value::Null) => None,
            Some(Value::Object(r)) => Some(ResumeToken {
                conn_id: id(
                    Some(r),
                    "connId",
                    &Limits {
                        max_id_len: 128,
                        ..*limits
                    },
                )?
                .ok_or_else(|| invalid("resume.connId is required"))?,
                epoch: epoch(Some(r), "epoch")?
                    .ok_or_else(|| invalid("resume.epoch is required"))?,
            }),
            Some(_) => return Err(invalid("resume must be an object { connId, epoch }")),
        };
        Ok(Self {
            room_id: required_id(obj, "roomId", limits)?,
            user_id: required_id(obj, "userId", limits)?,
            state: state(obj, "state", limits)?,
            resume,
        })
    }
}

impl HeartbeatRequest {
    pub fn parse(v: &Value, limits: &Limits) -> Result<Self, PresenceError> {
        let obj = object(v, true)?;
        Ok(Self {
            room_id: id(obj, "roomId", limits)?,
            patch: state(obj, "patchState", limits)?,
            epoch: epoch(obj, "epoch")?,
        })
    }
}

impl RoomRequest {
    /// `presence:leave`: the room is optional (absent means every room).
    pub fn parse_leave(v: &Value, limits: &Limits) -> Result<Self, PresenceError> {
        let obj = object(v, true)?;
        Ok(Self {
            room_id: id(obj, "roomId", limits)?,
        })
    }

    /// `presence:snapshot`: the room is required.
    pub fn parse_snapshot(v: &Value, limits: &Limits) -> Result<String, PresenceError> {
        required_id(object(v, false)?, "roomId", limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: Limits = Limits {
        max_id_len: 128,
        max_state_bytes: 64,
    };

    fn code(r: Result<impl std::fmt::Debug, PresenceError>) -> &'static str {
        r.expect_err("should be refused").code()
    }

    #[test]
    fn join_shapes() {
        let ok = JoinRequest::parse(&json!({"roomId":"r","userId":"u","state":{"a":1}}), &L)
            .expect("valid");
        assert_eq!(ok.state, Some(Map::from_iter([("a".into(), json!(1))])));
        assert_eq!(code(JoinRequest::parse(&json!("r"), &L)), "invalid_payload");
        assert_eq!(
            code(JoinRequest::parse(&json!({"userId":"u"}), &L)),
            "invalid_payload"
        );
        assert_eq!(
            code(JoinRequest::parse(&json!({"roomId":"","userId":"u"}), &L)),
            "invalid_payload"
        );
        assert_eq!(
            code(JoinRequest::parse(
                &json!({"roomId":"a b","userId":"u"}),
                &L
            )),
            "invalid_payload"
        );
        assert_eq!(
            code(JoinRequest::parse(
                &json!({"roomId":"r","userId":"u","state":[1]}),
                &L
            )),
            "invalid_payload"
        );
        assert_eq!(
            code(JoinRequest::parse(
                &json!({"roomId":"r","userId":"u","state":{"a":"x".repeat(80)}}),
                &L
            )),
            "payload_too_large"
        );
        assert_eq!(
            code(JoinRequest::parse(
                &json!({"roomId":"r","userId":"u","resume":{"connId":"c"}}),
                &L
            )),
            "invalid_payload"
        );
    }

    #[test]
    fn heartbeat_and_leave_shapes() {
        let hb = HeartbeatRequest::parse(&Value::Null, &L).expect("empty heartbeat");
        assert_eq!(hb.room_id, None);
        assert_eq!(
            code(HeartbeatRequest::parse(&json!({"epoch":-1}), &L)),
            "invalid_payload"
        );
        assert_eq!(
            code(HeartbeatRequest::parse(&json!({"epoch":1.5}), &L)),
            "invalid_payload"
        );
        assert_eq!(
            code(HeartbeatRequest::parse(&json!({"patchState":"x"}), &L)),
            "invalid_payload"
        );
        assert_eq!(
            code(HeartbeatRequest::parse(&json!(7), &L)),
            "invalid_payload"
        );
        assert_eq!(
            RoomRequest::parse_leave(&Value::Null, &L)
                .expect("all")
                .room_id,
            None
        );
        assert_eq!(
            code(RoomRequest::parse_snapshot(&json!({}), &L)),
            "invalid_payload"
        );
    }
}

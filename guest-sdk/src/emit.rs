//! Sending events to sockets and rooms of the plugin's tenant.
//!
//! Payloads are any `Serialize` value. A plugin may only emit the event names
//! its manifest declares; others fail with code `forbidden`.
//!
//! ```no_run
//! # fn f(ctx: rtm_guest::Ctx) -> Result<(), rtm_guest::Error> {
//! use rtm_guest::emit;
//! use serde_json::json;
//! emit::to_room("lobby", "chat:message", &json!({ "text": "hi" }))?;
//! emit::to_room_except("lobby", &ctx.socket, "chat:typing", &json!({ "typing": true }))?;
//! emit::to_socket(&ctx.socket, "chat:notice", &json!({ "text": "welcome" }))?;
//! emit::broadcast("chat:announcement", &json!({ "text": "maintenance at 5" }))?;
//! # Ok(()) }
//! ```

use serde::Serialize;

use crate::Error;
use crate::bindings::rtm::plugin::emit as raw;

fn encode<T: Serialize + ?Sized>(payload: &T) -> Result<String, Error> {
    serde_json::to_string(payload)
        .map_err(|e| Error::internal(format!("payload does not serialize: {e}")))
}

/// Emits `event` to one socket.
pub fn to_socket<T: Serialize + ?Sized>(
    socket: &str,
    event: &str,
    payload: &T,
) -> Result<(), Error> {
    raw::to_socket(socket, event, &encode(payload)?)
}

/// Emits `event` to every socket in `room`, on every node.
pub fn to_room<T: Serialize + ?Sized>(room: &str, event: &str, payload: &T) -> Result<(), Error> {
    raw::to_room(room, event, &encode(payload)?)
}

/// Emits `event` to every socket in `room` except `except` (usually the sender).
pub fn to_room_except<T: Serialize + ?Sized>(
    room: &str,
    except: &str,
    event: &str,
    payload: &T,
) -> Result<(), Error> {
    raw::to_room_except(room, except, event, &encode(payload)?)
}

/// Emits `event` to every socket of the tenant.
pub fn broadcast<T: Serialize + ?Sized>(event: &str, payload: &T) -> Result<(), Error> {
    raw::broadcast(event, &encode(payload)?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn payloads_are_sent_as_json() {
        assert_eq!(
            encode(&serde_json::json!({"text": "hi", "n": 1})).expect("encodes"),
            r#"{"n":1,"text":"hi"}"#
        );
        assert_eq!(encode("plain").expect("str"), "\"plain\"");
    }

    #[test]
    fn a_payload_that_does_not_serialize_is_internal() {
        let bad: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        let err = encode(&bad).expect_err("non-string keys");
        assert_eq!(err.code, "internal");
        assert!(
            err.message.starts_with("payload does not serialize"),
            "{}",
            err.message
        );
    }
}

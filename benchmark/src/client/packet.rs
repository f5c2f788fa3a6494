//! The Engine.IO v4 / Socket.IO v5 text packets this client speaks, and nothing more:
//! open `0{..}`, ping `2` / pong `3`, namespace connect `40`, events `42["ev",data]`,
//! acks `42<id>[..]` / `43<id>[..]`. Binary packets are never sent by rtm, so they are
//! reported as [`Incoming::Other`] rather than decoded.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a frame from the server could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("empty frame")]
    Empty,
    #[error("ack packet without an id")]
    AckWithoutId,
    #[error("event packet is not a non-empty array with a string name")]
    BadEvent,
    #[error("malformed JSON in packet: {0}")]
    Json(#[from] serde_json::Error),
}

/// The server's Engine.IO handshake (`0{...}`); the timings govern our pong duty.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OpenInfo {
    pub sid: String,
    #[serde(default)]
    pub ping_interval: u64,
    #[serde(default)]
    pub ping_timeout: u64,
    #[serde(default)]
    pub max_payload: u64,
}

/// One decoded text frame from the server, borrowing from it.
#[derive(Debug, PartialEq)]
pub enum Incoming<'a> {
    Open(OpenInfo),
    Close,
    /// A server ping; the payload (e.g. `probe`) must be echoed in the pong.
    Ping(&'a str),
    Pong,
    Noop,
    /// Namespace connect accepted (`40{"sid":..}`).
    Connect,
    /// Namespace connect refused (`44{"message":..}`); the raw JSON.
    ConnectError(&'a str),
    /// Namespace disconnect (`41`).
    Disconnect,
    /// An event: its name and its arguments as a raw JSON array.
    Event {
        name: Cow<'a, str>,
        args: &'a str,
        ack_id: Option<u64>,
    },
    /// An ack: its id and its arguments as a raw JSON array.
    Ack {
        id: u64,
        args: &'a str,
    },
    /// Anything else (binary placeholders, upgrade); ignored by the client.
    Other,
}

/// Decodes one text frame. `nsp` is the namespace we joined (`/` for the default).
pub fn decode<'a>(frame: &'a str, nsp: &str) -> Result<Incoming<'a>, PacketError> {
    let mut chars = frame.chars();
    let Some(kind) = chars.next() else {
        return Err(PacketError::Empty);
    };
    let rest = &frame[1..];
    Ok(match kind {
        '0' => Incoming::Open(serde_json::from_str(rest)?),
        '1' => Incoming::Close,
        '2' => Incoming::Ping(rest),
        '3' => Incoming::Pong,
        '6' => Incoming::Noop,
        '4' => decode_socket_io(rest, nsp)?,
        _ => Incoming::Other,
    })
}

fn decode_socket_io<'a>(body: &'a str, nsp: &str) -> Result<Incoming<'a>, PacketError> {
    let Some(kind) = body.chars().next() else {
        return Err(PacketError::Empty);
    };
    let mut rest = &body[1..];
    // A non-default namespace is written `/name,` before the id.
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => {
                if &rest[..comma] != nsp {
                    return Ok(Incoming::Other);
                }
                rest = &rest[comma + 1..];
            }
            None => rest = "",
        }
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        rest[..digits].parse::<u64>().ok()
    } else {
        None
    };
    let args = &rest[digits..];
    Ok(match kind {
        '0' => Incoming::Connect,
        '1' => Incoming::Disconnect,
        '4' => Incoming::ConnectError(args),
        '2' => {
            let (name, args) = split_event(args)?;
            Incoming::Event {
                name,
                args,
                ack_id: id,
            }
        }
        '3' => Incoming::Ack {
            id: id.ok_or(PacketError::AckWithoutId)?,
            args,
        },
        _ => Incoming::Other,
    })
}

/// Splits `["name", a, b]` into the name and the raw array (name included; callers use
/// [`event_data`] to reach the first argument after it).
fn split_event(args: &str) -> Result<(Cow<'_, str>, &str), PacketError> {
    let parts: Vec<&RawValue> = serde_json::from_str(args)?;
    let first: &RawValue = parts.first().copied().ok_or(PacketError::BadEvent)?;
    // Borrow the name when it has no escapes; allocate only when it does.
    let name = match serde_json::from_str::<&str>(first.get()) {
        Ok(name) => Cow::Borrowed(name),
        Err(_) => Cow::Owned(
            serde_json::from_str::<String>(first.get()).map_err(|_| PacketError::BadEvent)?,
        ),
    };
    Ok((name, args))
}

/// The first data argument of an event array `["name", data, ..]`, if any.
pub fn event_data(args: &str) -> Result<Option<&RawValue>, PacketError> {
    let parts: Vec<&RawValue> = serde_json::from_str(args)?;
    Ok(parts.get(1).copied())
}

/// The first argument of an ack array `[data, ..]`, if any.
pub fn ack_data(args: &str) -> Result<Option<&RawValue>, PacketError> {
    let parts: Vec<&RawValue> = serde_json::from_str(args)?;
    Ok(parts.first().copied())
}

/// The namespace connect packet (`40` or `40/name,`), followed by the handshake's
/// `auth` object when given (`40/name,{"token":".."}`); `auth` is already JSON.
pub fn connect(nsp: &str, auth: Option<&str>) -> String {
    let mut out = String::with_capacity(4 + nsp.len() + auth.map_or(0, str::len));
    out.push_str("40");
    if nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(auth) = auth {
        out.push_str(auth);
    }
    out
}

/// An event packet `42[<id>]["name",<payload>]`; `payload` is already JSON.
pub fn event(nsp: &str, name: &str, payload: &str, ack_id: Option<u64>) -> String {
    let mut out = String::with_capacity(8 + nsp.len() + name.len() + payload.len() + 24);
    out.push_str("42");
    if nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = ack_id {
        let _ = write!(out, "{id}");
    }
    out.push('[');
    // Event names are ours and plain, but escape them anyway so a name is never a bug.
    match serde_json::to_string(name) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
    out.push(',');
    out.push_str(payload);
    out.push(']');
    out
}

/// The pong answering a ping with `payload`.
pub fn pong(payload: &str) -> String {
    format!("3{payload}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_open() -> Result<(), PacketError> {
        let frame = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let Incoming::Open(info) = decode(frame, "/")? else {
            panic!("not an open packet");
        };
        assert_eq!(info.sid, "abc");
        assert_eq!(info.ping_interval, 25000);
        Ok(())
    }

    #[test]
    fn decodes_event_ack_and_control() -> Result<(), PacketError> {
        assert_eq!(decode("2", "/")?, Incoming::Ping(""));
        assert_eq!(decode("2probe", "/")?, Incoming::Ping("probe"));
        assert_eq!(decode(r#"40{"sid":"x"}"#, "/")?, Incoming::Connect);
        assert_eq!(
            decode(r#"44{"message":"no"}"#, "/")?,
            Incoming::ConnectError(r#"{"message":"no"}"#)
        );
        let Incoming::Event { name, args, ack_id } =
            decode(r#"42["chat:message",{"text":"hi"}]"#, "/")?
        else {
            panic!("not an event");
        };
        assert_eq!(name, "chat:message");
        assert!(matches!(name, Cow::Borrowed(_)));
        assert_eq!(ack_id, None);
        assert_eq!(
            event_data(args)?.map(RawValue::get),
            Some(r#"{"text":"hi"}"#)
        );
        let Incoming::Ack { id, args } = decode(r#"4312[{"ok":true,"epoch":3}]"#, "/")? else {
            panic!("not an ack");
        };
        assert_eq!(id, 12);
        assert_eq!(
            ack_data(args)?.map(RawValue::get),
            Some(r#"{"ok":true,"epoch":3}"#)
        );
        Ok(())
    }

    #[test]
    fn escaped_event_names_are_owned() -> Result<(), PacketError> {
        let Incoming::Event { name, .. } = decode(r#"42["a\"b",1]"#, "/")? else {
            panic!("not an event");
        };
        assert_eq!(name, "a\"b");
        Ok(())
    }

    #[test]
    fn namespaces_are_filtered() -> Result<(), PacketError> {
        assert_eq!(decode(r#"42/other,["x",1]"#, "/t1")?, Incoming::Other);
        let Incoming::Ack { id, .. } = decode(r#"43/t1,7[{}]"#, "/t1")? else {
            panic!("not an ack");
        };
        assert_eq!(id, 7);
        Ok(())
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(decode("", "/").is_err());
        assert!(decode("43[1]", "/").is_err());
        assert!(decode("42{", "/").is_err());
        assert!(decode("42[]", "/").is_err());
        assert!(decode("42[1]", "/").is_err());
        assert!(decode("0{", "/").is_err());
        assert_eq!(decode("9", "/").ok(), Some(Incoming::Other));
        assert!(decode("4", "/").is_err());
    }

    #[test]
    fn encodes() {
        assert_eq!(connect("/", None), "40");
        assert_eq!(connect("/t1", None), "40/t1,");
        assert_eq!(connect("/", Some("{}")), "40{}");
        assert_eq!(
            connect("/t1", Some(r#"{"token":"x"}"#)),
            r#"40/t1,{"token":"x"}"#
        );
        assert_eq!(event("/", "ev", "{}", None), r#"42["ev",{}]"#);
        assert_eq!(event("/", "ev", "{}", Some(5)), r#"425["ev",{}]"#);
        assert_eq!(event("/t1", "ev", "1", Some(5)), r#"42/t1,5["ev",1]"#);
        assert_eq!(pong("probe"), "3probe");
    }
}

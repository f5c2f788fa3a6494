//! A lean Socket.IO v5 client over WebSocket (Engine.IO v4), built for holding tens of
//! thousands of connections in one process: one task per connection, no locks on the
//! hot path, callbacks instead of a future per request.

pub mod packet;
pub mod socket;

use std::borrow::Cow;

pub use socket::{AckCallback, AckOutcome, Client, ClientOptions, EventSink, NoEvents};

/// Why a connection or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{stage} timed out")]
    Timeout { stage: &'static str },
    #[error("tcp: {0}")]
    Io(#[from] std::io::Error),
    #[error("websocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    #[error("handshake: {0}")]
    Handshake(String),
    #[error("namespace connect refused: {0}")]
    Refused(String),
    #[error("bad packet: {0}")]
    Packet(#[from] packet::PacketError),
    #[error("connection closed")]
    Closed,
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::WebSocket(Box::new(e))
    }
}

impl ClientError {
    /// A short stable label for error tables (`connect_timeout`, `tcp`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout { stage: "connect" } => "connect_timeout",
            Self::Timeout { .. } => "ack_timeout",
            Self::Io(_) => "tcp",
            Self::WebSocket(_) => "websocket",
            Self::Handshake(_) => "handshake",
            Self::Refused(_) => "connect_refused",
            Self::Packet(_) => "bad_packet",
            Self::Closed => "closed",
        }
    }

    /// [`kind`](Self::kind), with the server's reason when a namespace connect was
    /// refused: `connect_refused:unauthorized`, `connect_refused:quota_exceeded`.
    pub fn label(&self) -> Cow<'static, str> {
        match self {
            Self::Refused(raw) => match refusal_message(raw) {
                Some(why) => Cow::Owned(format!("{}:{why}", self.kind())),
                None => Cow::Borrowed(self.kind()),
            },
            _ => Cow::Borrowed(self.kind()),
        }
    }
}

/// The `message` of a `connect_error` payload (`{"message":"unauthorized",..}`), spaces
/// as `_`, when it is short printable ASCII fit for an error table.
fn refusal_message(raw: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    let message = value.get("message")?.as_str()?;
    let fits = !message.is_empty()
        && message.len() <= 64
        && message.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    fits.then(|| message.replace(' ', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_refusals_by_code() {
        let refused = ClientError::Refused(r#"{"message":"unauthorized","data":{}}"#.into());
        assert_eq!(refused.label(), "connect_refused:unauthorized");
        let odd = ClientError::Refused(r#"{"message":"Invalid namespace"}"#.into());
        assert_eq!(odd.label(), "connect_refused:Invalid_namespace");
        let raw = ClientError::Refused("not json".into());
        assert_eq!(raw.label(), "connect_refused");
        assert_eq!(ClientError::Closed.label(), "closed");
    }
}

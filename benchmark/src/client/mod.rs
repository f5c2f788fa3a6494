//! A lean Socket.IO v5 client over WebSocket (Engine.IO v4), built for holding tens of
//! thousands of connections in one process: one task per connection, no locks on the
//! hot path, callbacks instead of a future per request.

pub mod packet;
pub mod socket;

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
}

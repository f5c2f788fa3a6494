//! Presence errors, one enum per layer, and how each reaches the client: every variant
//! maps to one PROTOCOL.md code carried in the ack; none disconnects the socket.

use serde_json::{Value, json};

/// A store could not do its job; nothing was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend is unreachable or did not answer in time.
    #[error("presence store unavailable: {0}")]
    Unavailable(String),
    /// The backend answered something we did not expect (a bug or a foreign key layout).
    #[error("presence store returned a malformed reply: {0}")]
    Malformed(String),
}

/// Why a presence request was refused.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    #[error("{0}")]
    InvalidPayload(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("not joined to room {0}")]
    NotJoined(String),
    #[error("epoch {sent} is older than the stored epoch {current}")]
    StaleEpoch { sent: u64, current: u64 },
    /// A per-socket or per-room quota of the tenant is full.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The socket's token does not allow this (another user, a room outside `rooms`).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PresenceError {
    /// The stable PROTOCOL.md code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPayload(_) => "invalid_payload",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::NotJoined(_) => "not_joined",
            Self::StaleEpoch { .. } => "stale_epoch",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::Forbidden(_) => "forbidden",
            Self::Store(StoreError::Unavailable(_)) | Self::Store(StoreError::Malformed(_)) => {
                "unavailable"
            }
        }
    }

    /// The ack body: `{ ok: false, error: { code, message } }`, plus the current `epoch`
    /// for `stale_epoch` so a client can adopt it and retry.
    pub fn to_ack(&self) -> Value {
        let mut ack =
            json!({ "ok": false, "error": { "code": self.code(), "message": self.to_string() } });
        if let Self::StaleEpoch { current, .. } = self {
            ack["epoch"] = json!(current);
        }
        ack
    }
}

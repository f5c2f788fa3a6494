//! The error a plugin returns to the client, and conversions into it.

/// An expected failure, sent to the client as `{ ok: false, error: { code, message } }`.
///
/// The same type comes back from host calls (`kv`, `emit`, …) that fail, so
/// `?` forwards a host failure to the client unchanged.
pub use crate::bindings::rtm::plugin::types::Error;

impl Error {
    /// An error with a snake_case `code` clients can branch on and a human `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `invalid_payload`: the client sent something this plugin cannot accept.
    pub fn invalid_payload(message: impl Into<String>) -> Self {
        Self::new("invalid_payload", message)
    }

    /// `internal`: the plugin itself got something wrong (a bug, not the client's fault).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }
}

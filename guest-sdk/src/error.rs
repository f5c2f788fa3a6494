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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_set_the_code_clients_branch_on() {
        let cases = [
            (
                Error::new("not_joined", "join first"),
                "not_joined",
                "join first",
            ),
            (
                Error::invalid_payload(String::from("bad")),
                "invalid_payload",
                "bad",
            ),
            (Error::internal("oops"), "internal", "oops"),
        ];
        for (err, code, message) in cases {
            assert_eq!((err.code.as_str(), err.message.as_str()), (code, message));
        }
    }

    #[test]
    fn question_mark_forwards_a_host_error_unchanged() {
        fn host_call() -> Result<(), Error> {
            Err(Error::new("forbidden", "chat:secret is not declared"))
        }
        fn handler() -> Result<u32, Error> {
            host_call()?;
            Ok(1)
        }
        let err = handler().expect_err("forwarded");
        assert_eq!(err.code, "forbidden");
        assert_eq!(err.message, "chat:secret is not declared");
    }
}

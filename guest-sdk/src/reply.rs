//! What a successful event handler answers.

use serde::Serialize;

use crate::Error;

/// The `data` of a successful ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Ack `{ ok: true }` without data.
    Empty,
    /// Ack `{ ok: true, data }`, `data` being this serialized JSON.
    Json(String),
}

impl Reply {
    /// Serializes `value` as the ack's `data`.
    ///
    /// Returns a `Result` so a handler can end with `Reply::json(&value)`.
    ///
    /// ```no_run
    /// # fn f() -> Result<rtm_guest::Reply, rtm_guest::Error> {
    /// rtm_guest::Reply::json(&serde_json::json!({ "id": "m1" }))
    /// # }
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Reply, Error> {
        serde_json::to_string(value)
            .map(Reply::Json)
            .map_err(|e| Error::internal(format!("reply does not serialize: {e}")))
    }
}

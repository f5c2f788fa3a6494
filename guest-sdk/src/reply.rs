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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sent {
        message_id: String,
        seq: u64,
        tags: Vec<String>,
        edited: Option<bool>,
    }

    #[test]
    fn json_reply_round_trips() {
        let sent = Sent {
            message_id: "lobby-7".into(),
            seq: 7,
            tags: vec!["a".into(), "é\"\n".into()],
            edited: None,
        };
        let Reply::Json(text) = Reply::json(&sent).expect("serializes") else {
            panic!("Reply::json must give Reply::Json");
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON"),
            serde_json::json!({"messageId": "lobby-7", "seq": 7, "tags": ["a", "é\"\n"], "edited": null})
        );
        assert_eq!(
            serde_json::from_str::<Sent>(&text).expect("decodes back"),
            sent
        );
    }

    #[test]
    fn unsized_and_plain_values_serialize() {
        assert_eq!(
            Reply::json("hi").expect("str"),
            Reply::Json("\"hi\"".into())
        );
        assert_eq!(
            Reply::json(&[1, 2][..]).expect("slice"),
            Reply::Json("[1,2]".into())
        );
        assert_eq!(Reply::json(&()).expect("unit"), Reply::Json("null".into()));
    }

    #[test]
    fn a_reply_that_does_not_serialize_is_an_internal_error() {
        // JSON object keys must be strings; a map keyed by pairs cannot be serialized.
        let bad: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
        let err = Reply::json(&bad).expect_err("map with non-string keys");
        assert_eq!(err.code, "internal");
        assert!(
            err.message.starts_with("reply does not serialize"),
            "{}",
            err.message
        );
    }
}

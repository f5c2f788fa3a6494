//! The context of one client event: who sent it, what, and its payload.

use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::exports::rtm::plugin::handler::EventCtx;

/// One client event routed to the plugin.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Id of the sending socket (use it with [`crate::rooms`] and [`crate::emit`]).
    pub socket: String,
    /// The sender's user id, when it joined presence or authenticated: with several
    /// rooms joined, the user of its latest `presence:join` among the rooms it still
    /// holds (see `wit/handler.wit`).
    pub user: Option<String>,
    /// The event name as the client sent it (useful with `prefix:*` patterns).
    pub event: String,
    /// The payload, serialized JSON (`null` when the client sent none).
    pub payload_json: String,
}

impl Ctx {
    pub(crate) fn from_wit(ctx: EventCtx) -> Self {
        Ctx {
            socket: ctx.socket,
            user: ctx.user,
            event: ctx.event,
            payload_json: ctx.payload,
        }
    }

    /// The payload decoded into `T`; a mismatch is an `invalid_payload` error,
    /// which is what the client should see.
    ///
    /// ```no_run
    /// # fn f(ctx: rtm_guest::Ctx) -> Result<(), rtm_guest::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Typing { #[serde(rename = "roomId")] room_id: String, typing: bool }
    /// let t: Typing = ctx.payload()?;
    /// # Ok(()) }
    /// ```
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.payload_json)
            .map_err(|e| Error::invalid_payload(format!("{}: {e}", self.event)))
    }

    /// The sender's user id, or `err` when the socket has none.
    pub fn user_or(&self, err: Error) -> Result<&str, Error> {
        self.user.as_deref().ok_or(err)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    fn ctx(user: Option<&str>, payload: &str) -> Ctx {
        Ctx::from_wit(EventCtx {
            socket: "sock-1".into(),
            user: user.map(str::to_owned),
            event: "chat:message".into(),
            payload: payload.into(),
        })
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SendMessage {
        room_id: String,
        text: String,
        reply_to: Option<String>,
    }

    #[test]
    fn from_wit_keeps_every_field() {
        let c = ctx(Some("ada"), r#"{"x":1}"#);
        assert_eq!(c.socket, "sock-1");
        assert_eq!(c.user.as_deref(), Some("ada"));
        assert_eq!(c.event, "chat:message");
        assert_eq!(c.payload_json, r#"{"x":1}"#);
    }

    #[test]
    fn payload_decodes_into_the_requested_type() {
        let c = ctx(None, r#"{"roomId":"lobby","text":"hi \u00e9","extra":[1]}"#);
        assert_eq!(
            c.payload::<SendMessage>().expect("decodes"),
            SendMessage {
                room_id: "lobby".into(),
                text: "hi é".into(),
                reply_to: None,
            }
        );
        let v: serde_json::Value = c.payload().expect("any JSON decodes as a Value");
        assert_eq!(v["extra"], serde_json::json!([1]));
        // No payload from the client arrives as `null`.
        assert_eq!(
            ctx(None, "null")
                .payload::<Option<SendMessage>>()
                .expect("null"),
            None
        );
    }

    #[test]
    fn a_payload_mismatch_is_invalid_payload_naming_the_event() {
        for payload in [
            "null",
            r#"{"roomId":"lobby"}"#,
            r#"{"roomId":1,"text":"x"}"#,
            "[1,2]",
            "not json",
        ] {
            let err = ctx(None, payload)
                .payload::<SendMessage>()
                .expect_err(payload);
            assert_eq!(err.code, "invalid_payload", "{payload}");
            assert!(
                err.message.starts_with("chat:message: "),
                "{payload}: {}",
                err.message
            );
        }
    }

    #[test]
    fn user_or_gives_the_user_or_the_callers_error() {
        assert_eq!(
            ctx(Some("ada"), "null")
                .user_or(Error::new("not_joined", "join first"))
                .expect("has a user"),
            "ada"
        );
        let err = ctx(None, "null")
            .user_or(Error::new("not_joined", "join first"))
            .expect_err("no user");
        assert_eq!(
            (err.code.as_str(), err.message.as_str()),
            ("not_joined", "join first")
        );
    }
}

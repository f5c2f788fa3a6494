//! The context of one client event: who sent it, what, and its payload.

use serde::de::DeserializeOwned;

use crate::Error;
use crate::bindings::exports::rtm::plugin::handler::EventCtx;

/// One client event routed to the plugin.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Id of the sending socket (use it with [`crate::rooms`] and [`crate::emit`]).
    pub socket: String,
    /// The sender's user id, when it joined presence or authenticated.
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

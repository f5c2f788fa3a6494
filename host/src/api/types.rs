//! The request and response bodies of the Server API. The OpenAPI document is generated
//! from these same types (`utoipa`), so the document cannot drift from the code.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::presence::store::Registration;

/// `POST /api/v1/{tenant}/publish`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PublishRequest {
    /// The room (1..128 of `[A-Za-z0-9_.:@-]`).
    #[schema(pattern = "^[A-Za-z0-9_.:@-]{1,128}$")]
    pub room: String,
    /// The event name; host and Socket.IO names are refused (`forbidden`).
    #[schema(min_length = 1, max_length = 128)]
    pub event: String,
    /// Any JSON; `null` when absent.
    #[serde(default)]
    pub data: Value,
    /// Leave out the socket holding this registration.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:@-]{1,128}$")]
    pub except_conn_id: Option<String>,
}

/// `POST /api/v1/{tenant}/broadcast`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    #[schema(min_length = 1, max_length = 128)]
    pub event: String,
    #[serde(default)]
    pub data: Value,
}

/// One item of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// `publish` or `broadcast`.
    pub method: String,
    /// The body that method takes.
    pub params: Value,
}

/// `POST /api/v1/{tenant}/batch`: at most 100 items.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Read one by one, so a malformed item fails alone.
    #[schema(value_type = Vec<BatchItem>, min_items = 1, max_items = 100)]
    pub items: Vec<Value>,
}

/// `POST /api/v1/{tenant}/disconnect`: exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisconnectRequest {
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:@-]{1,128}$")]
    pub user_id: Option<String>,
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_.:@-]{1,128}$")]
    pub conn_id: Option<String>,
}

/// `{ ok: true }`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OkResponse {
    pub ok: bool,
}

/// An error's code (PROTOCOL.md) and message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

/// `{ ok: false, error }`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub ok: bool,
    pub error: ErrorBody,
}

/// One batch item's result: `{ ok: true }` or `{ ok: false, error }`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub ok: bool,
    pub results: Vec<ItemResult>,
}

/// The room's members, as the `presence:snapshot` ack has them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceResponse {
    pub ok: bool,
    pub snapshot: Vec<Registration>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    pub ok: bool,
    /// Registrations in the room.
    pub members: usize,
    /// Distinct users among them.
    pub users: usize,
}

//! How a refused API call answers: its HTTP status and the PROTOCOL.md error body.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::types::{ErrorBody, ErrorResponse};
use crate::tenancy::publish::ActionError;

/// A refused call.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_payload", message)
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let status = match e {
            ActionError::Invalid(_) => StatusCode::BAD_REQUEST,
            ActionError::Reserved(_) => StatusCode::FORBIDDEN,
            ActionError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Self::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    /// `{ ok: false, error: { code, message } }` with the status.
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            ok: false,
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

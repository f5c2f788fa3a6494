//! The OpenAPI 3.1 document of the Server API, generated from the handlers' annotations
//! and the body types (`GET /api/v1/openapi.json`; a copy is kept in `api/openapi.json`
//! and a test checks the two are the same).

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::types::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "rtm Server API", description = "Publish, read presence and disconnect users of one tenant, with one of its API keys."),
    paths(super::publish, super::broadcast, super::batch, super::presence, super::stats, super::disconnect),
    components(schemas(PublishRequest, BroadcastRequest, BatchItem, BatchRequest, DisconnectRequest,
        OkResponse, ErrorBody, ErrorResponse, ItemResult, BatchResponse, PresenceResponse, StatsResponse,
        crate::presence::store::Registration)),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

/// The `bearer` scheme every path names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

pub async fn document() -> Json<serde_json::Value> {
    Json(json())
}

#[cfg(test)]
mod tests {
    /// The copy in the repository is the generated document: regenerate it with
    /// `RTM_WRITE_OPENAPI=1 cargo test -p rtm-host openapi` after changing the API.
    #[test]
    fn the_committed_openapi_document_is_the_generated_one() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/openapi.json");
        let generated = serde_json::to_string_pretty(&super::json()).unwrap_or_default() + "\n";
        if std::env::var_os("RTM_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write api/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "api/openapi.json differs from the generated document; regenerate it with RTM_WRITE_OPENAPI=1 cargo test -p rtm-host openapi"
        );
        assert!(generated.contains("\"openapi\": \"3.1"));
    }
}

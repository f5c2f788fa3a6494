//! Plain HTTP next to Socket.IO: liveness, readiness, metrics and the admin views of
//! plugins and tenants.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, extract::State, routing::get};
use serde_json::json;

use crate::backend::RedisBackend;
use crate::tenancy::Tenants;
use crate::tenancy::secret::Secret;

/// What the HTTP routes read.
#[derive(Clone)]
pub struct HttpState {
    pub redis: Option<RedisBackend>,
    pub tenants: Arc<Tenants>,
    pub admin_token: Option<Arc<Secret>>,
    /// The cross-node adapter's counters (multi-node only).
    pub adapter: Option<crate::cluster::AdapterMetrics>,
    /// Accepted connections by outcome, and how many are open.
    pub connections: crate::connections::ConnMetrics,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/admin/plugins", get(admin_plugins))
        .route("/admin/tenants", get(admin_tenants))
        .with_state(state)
}

/// 200 when every configured backend answers and plugins are loaded; 503 names what is not.
async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if let Some(redis) = &state.redis
        && !redis.ping().await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable");
    }
    if !state.tenants.ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "plugins loading");
    }
    (StatusCode::OK, "ready")
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let mut out = state.tenants.render_metrics();
    if let Some(adapter) = &state.adapter {
        adapter.render(&mut out);
    }
    state.connections.render(&mut out);
    out.push_str("# EOF\n");
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}

/// `Authorization: Bearer <ADMIN_TOKEN>` when one is set, compared in constant time.
fn admin_refused(state: &HttpState, headers: &HeaderMap) -> Option<Response> {
    let token = state.admin_token.as_ref()?;
    let sent = crate::api::bearer(headers);
    (!token.matches(sent))
        .then(|| (StatusCode::UNAUTHORIZED, "admin token required").into_response())
}

/// Loaded plugins with their counters: of the one tenant, of `?tenant=<id>`, or of every
/// tenant (`{ tenants: [...] }`) when a tenants file lists several.
async fn admin_plugins(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = admin_refused(&state, &headers) {
        return refused;
    }
    let tenants = state.tenants.all();
    if let Some(id) = q.get("tenant") {
        return match state.tenants.get(id) {
            Some(t) => Json(t.plugins().admin_json()).into_response(),
            None => (StatusCode::NOT_FOUND, "no such tenant").into_response(),
        };
    }
    match tenants.as_slice() {
        [only] => Json(only.plugins().admin_json()).into_response(),
        all => Json(json!({
            "tenants": all.iter().map(|t| t.plugins().admin_json()).collect::<Vec<_>>()
        }))
        .into_response(),
    }
}

/// Tenants with their connection counts, plugins and effective limits (never secrets),
/// and the last reload's error, if it failed.
async fn admin_tenants(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(refused) = admin_refused(&state, &headers) {
        return refused;
    }
    Json(state.tenants.admin_json()).into_response()
}

//! Plain HTTP next to Socket.IO: liveness, readiness, metrics and the plugin admin view.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, extract::State, routing::get};

use crate::backend::RedisBackend;
use crate::metrics::Metrics;
use crate::plugins::Plugins;

/// What the HTTP routes read.
#[derive(Clone)]
pub struct HttpState {
    pub redis: Option<RedisBackend>,
    pub metrics: Arc<Metrics>,
    pub plugins: Plugins,
    pub admin_token: Option<Arc<str>>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/admin/plugins", get(admin_plugins))
        .with_state(state)
}

/// 200 when every configured backend answers and plugins are loaded; 503 names what is not.
async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    if let Some(redis) = &state.redis
        && !redis.ping().await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable");
    }
    if !state.plugins.ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "plugins loading");
    }
    (StatusCode::OK, "ready")
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let mut out = String::new();
    state.metrics.render(&mut out);
    state.plugins.render_prometheus(&mut out);
    out.push_str("# EOF\n");
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}

/// Loaded plugins with their counters; `Authorization: Bearer <ADMIN_TOKEN>` when set.
async fn admin_plugins(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.admin_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(&**token) {
            return (StatusCode::UNAUTHORIZED, "admin token required").into_response();
        }
    }
    Json(state.plugins.admin_json()).into_response()
}

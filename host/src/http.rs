//! Plain HTTP next to Socket.IO: liveness, readiness and metrics.

use std::sync::Arc;

use axum::{
    Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get,
};

use crate::backend::RedisBackend;
use crate::metrics::Metrics;

/// What the HTTP routes read.
#[derive(Clone)]
pub struct HttpState {
    pub redis: Option<RedisBackend>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// 200 when every configured backend answers; 503 names what does not.
async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    match &state.redis {
        Some(redis) if !redis.ping().await => {
            (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable")
        }
        _ => (StatusCode::OK, "ready"),
    }
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let mut out = String::new();
    state.metrics.render(&mut out);
    out.push_str("# EOF\n");
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
}

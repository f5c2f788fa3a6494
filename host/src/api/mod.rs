//! The Server API (PROTOCOL.md "Server API"): the tenant's own backend publishes,
//! reads presence and disconnects users over HTTP, with one of the tenant's API keys.
//! Every handler only checks the caller and the body, then calls the tenant's service
//! (`tenancy::publish`), the same fan-out and presence paths sockets use.

mod errors;
mod openapi;
pub mod types;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::value::{RawValue, to_raw_value};

use crate::tenancy::publish::ActionError;
use crate::tenancy::{Tenant, Tenants};
pub use errors::ApiError;
use types::*;

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Most items of one batch.
pub const MAX_BATCH_ITEMS: usize = 100;

#[derive(Clone)]
struct ApiState {
    tenants: Arc<Tenants>,
}

/// The routes under `/api/v1`. At most `max_in_flight` calls (`API_MAX_IN_FLIGHT`, all
/// tenants of the node) are served at once; one more is answered `503 unavailable` at
/// once instead of waiting, so a caller looping against a slow Redis cannot pile up
/// requests, and memory, on the node.
pub fn router(tenants: Arc<Tenants>, max_in_flight: usize) -> Router {
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
    Router::new().nest(
        "/api/v1",
        routes()
            .with_state(ApiState { tenants })
            .layer(axum::middleware::from_fn(move |req, next| {
                admit(permits.clone(), req, next)
            })),
    )
}

/// Serves the call if a slot is free; answers `503 unavailable` (with `Retry-After`)
/// otherwise.
async fn admit(
    permits: Arc<tokio::sync::Semaphore>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_slot) = permits.try_acquire_owned() else {
        let refusal = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node is serving its API_MAX_IN_FLIGHT calls already; retry shortly",
        );
        return ([(header::RETRY_AFTER, "1")], refusal).into_response();
    };
    next.run(req).await
}

/// The API's routes, relative to `/api/v1`.
fn routes() -> Router<ApiState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/{tenant}/publish", post(publish))
        .route("/{tenant}/broadcast", post(broadcast))
        .route("/{tenant}/batch", post(batch))
        .route("/{tenant}/rooms/{room}/presence", get(presence))
        .route("/{tenant}/rooms/{room}/stats", get(stats))
        .route("/{tenant}/disconnect", post(disconnect))
        // Unknown routes and methods under /api/v1 answer in the API's error shape.
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // One byte over the limit is enough to tell a body that is too large.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES + 1))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route takes another method",
    )
}

/// The bearer token of `Authorization` (the scheme name in any case, RFC 9110).
pub fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or("")
}

/// The tenant, if the caller holds one of its keys.
fn caller(state: &ApiState, id: &str, headers: &HeaderMap) -> Result<Arc<Tenant>, ApiError> {
    let tenant = state
        .tenants
        .get(id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_tenant", "no such tenant"))?;
    let sent = bearer(headers);
    // Every key is compared (in constant time), so timing tells nothing of which matched.
    let matched = tenant
        .policy()
        .cfg
        .api_keys
        .iter()
        .fold(false, |any, key| key.matches(sent) | any);
    if matched && !sent.is_empty() {
        Ok(tenant)
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key of this tenant is required (Authorization: Bearer <key>)",
        ))
    }
}

/// The body as `T`: too large is 413, anything unreadable 400.
fn body<T: DeserializeOwned>(bytes: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = bytes.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::invalid(e.body_text())
        }
    })?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid(format!("bad body: {e}")))
}

fn raw(data: &serde_json::Value) -> Result<Box<RawValue>, ActionError> {
    to_raw_value(data).map_err(|e| ActionError::Invalid(e.to_string()))
}

/// Runs one call: the caller's tenant (by key), then `call` on it, counted in the
/// tenant's metrics as `op` and rendered as the answer.
async fn serve<T, F, Fut>(
    state: &ApiState,
    id: &str,
    headers: &HeaderMap,
    op: &'static str,
    call: F,
) -> Response
where
    T: serde::Serialize,
    F: FnOnce(Arc<Tenant>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    let started = Instant::now();
    let tenant = match caller(state, id, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let result = call(tenant.clone()).await;
    let code = result.as_ref().map_or_else(|e| e.code, |_| "ok");
    tenant.metrics().observe(op, code, started.elapsed());
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run_publish(tenant: &Tenant, req: PublishRequest) -> Result<(), ActionError> {
    let data = raw(&req.data)?;
    tenant
        .publish(&req.room, &req.event, &data, req.except_conn_id.as_deref())
        .await
}

async fn run_broadcast(tenant: &Tenant, req: BroadcastRequest) -> Result<(), ActionError> {
    let data = raw(&req.data)?;
    tenant.broadcast(&req.event, &data).await
}

const OK: OkResponse = OkResponse { ok: true };

/// Emit an event to a room, on every node.
#[utoipa::path(post, path = "/api/v1/{tenant}/publish", request_body = PublishRequest,
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = OkResponse), (status = "4XX", body = ErrorResponse), (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
async fn publish(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    serve(&state, &id, &headers, "api:publish", |tenant| async move {
        run_publish(&tenant, body(bytes)?).await?;
        Ok(OK)
    })
    .await
}

/// Emit an event to every socket of the tenant, on every node.
#[utoipa::path(post, path = "/api/v1/{tenant}/broadcast", request_body = BroadcastRequest,
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = OkResponse), (status = "4XX", body = ErrorResponse), (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
async fn broadcast(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    serve(
        &state,
        &id,
        &headers,
        "api:broadcast",
        |tenant| async move {
            run_broadcast(&tenant, body(bytes)?).await?;
            Ok(OK)
        },
    )
    .await
}

/// One batch item; a refused item (a malformed one too) answers its error and the
/// others go on.
async fn run_item(tenant: &Tenant, item: serde_json::Value) -> ItemResult {
    let outcome = match serde_json::from_value::<BatchItem>(item) {
        Ok(item) => run_method(tenant, item).await,
        Err(e) => Err(ActionError::Invalid(format!("bad item: {e}"))),
    };
    match outcome {
        Ok(()) => ItemResult {
            ok: true,
            error: None,
        },
        Err(e) => ItemResult {
            ok: false,
            error: Some(ErrorBody {
                code: e.code().to_owned(),
                message: e.to_string(),
            }),
        },
    }
}

async fn run_method(tenant: &Tenant, item: BatchItem) -> Result<(), ActionError> {
    match item.method.as_str() {
        "publish" => match serde_json::from_value(item.params) {
            Ok(req) => run_publish(tenant, req).await,
            Err(e) => Err(ActionError::Invalid(format!("bad params: {e}"))),
        },
        "broadcast" => match serde_json::from_value(item.params) {
            Ok(req) => run_broadcast(tenant, req).await,
            Err(e) => Err(ActionError::Invalid(format!("bad params: {e}"))),
        },
        other => Err(ActionError::Invalid(format!(
            "unknown method {other:?} (publish or broadcast)"
        ))),
    }
}

/// Several publishes and broadcasts in one request (at most 100), one result per item.
#[utoipa::path(post, path = "/api/v1/{tenant}/batch", request_body = BatchRequest,
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = BatchResponse), (status = "4XX", body = ErrorResponse)),
    security(("bearer" = [])))]
async fn batch(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    serve(&state, &id, &headers, "api:batch", |tenant| async move {
        let req: BatchRequest = body(bytes)?;
        if req.items.is_empty() || req.items.len() > MAX_BATCH_ITEMS {
            return Err(ApiError::invalid(format!(
                "a batch holds 1..{MAX_BATCH_ITEMS} items, not {}",
                req.items.len()
            )));
        }
        let mut results = Vec::with_capacity(req.items.len());
        for item in req.items {
            results.push(run_item(&tenant, item).await);
        }
        Ok(BatchResponse { ok: true, results })
    })
    .await
}

/// The room's live members, as `presence:snapshot` answers.
#[utoipa::path(get, path = "/api/v1/{tenant}/rooms/{room}/presence",
    params(("tenant" = String, Path, description = "Tenant id"), ("room" = String, Path, description = "Room id")),
    responses((status = 200, body = PresenceResponse), (status = "4XX", body = ErrorResponse), (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
async fn presence(
    State(state): State<ApiState>,
    Path((id, room)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(&state, &id, &headers, "api:presence", |tenant| async move {
        let snapshot = tenant.room_presence(&room).await?;
        Ok(PresenceResponse { ok: true, snapshot })
    })
    .await
}

/// Members (registrations) and distinct users of a room.
#[utoipa::path(get, path = "/api/v1/{tenant}/rooms/{room}/stats",
    params(("tenant" = String, Path, description = "Tenant id"), ("room" = String, Path, description = "Room id")),
    responses((status = 200, body = StatsResponse), (status = "4XX", body = ErrorResponse), (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
async fn stats(
    State(state): State<ApiState>,
    Path((id, room)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(&state, &id, &headers, "api:stats", |tenant| async move {
        let s = tenant.room_stats(&room).await?;
        Ok(StatsResponse {
            ok: true,
            members: s.members,
            users: s.users,
        })
    })
    .await
}

/// Disconnect a user's sockets, or the socket of one registration, on every node.
#[utoipa::path(post, path = "/api/v1/{tenant}/disconnect", request_body = DisconnectRequest,
    params(("tenant" = String, Path, description = "Tenant id")),
    responses((status = 200, body = OkResponse), (status = "4XX", body = ErrorResponse), (status = 503, body = ErrorResponse)),
    security(("bearer" = [])))]
async fn disconnect(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    serve(
        &state,
        &id,
        &headers,
        "api:disconnect",
        |tenant| async move {
            let req: DisconnectRequest = body(bytes)?;
            match (req.user_id, req.conn_id) {
                (Some(user), None) => tenant.disconnect_user(&user).await?,
                (None, Some(conn)) => tenant.disconnect_conn(&conn).await?,
                _ => return Err(ApiError::invalid("send exactly one of userId and connId")),
            }
            Ok(OK)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Building the routes panics on a conflict, so a test builds them (nested the way
    /// the node does).
    #[test]
    fn the_routes_build() {
        let _ = Router::<ApiState>::new().nest("/api/v1", routes());
    }
}

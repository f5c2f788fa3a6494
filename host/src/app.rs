//! The Socket.IO surface: admitting a socket to its tenant (token, connection quota),
//! admitting each of its events (rate, queue bound), which event goes where, and how
//! each result becomes an ack. Handlers are generic over the adapter so one code path
//! serves the single-node (local adapter) and multi-node (Redis adapter) builds;
//! [`SocketMount`] serves and closes tenants' namespaces.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::future::{self, Either};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, Emitter};
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SendError, SocketError};
use socketioxide_core::adapter::{CoreAdapter, DefinedAdapter};

use crate::auth::Identity;
use crate::fanout::{Fanout, NsFanout, socket_room, user_room};
use crate::plugin_bridge::dispatch_ack;
use crate::plugins::EventCall;
use crate::presence::error::PresenceError;
use crate::presence::{Outcome, Presence};
use crate::serial::{ReserveError, Serial, Slot};
use crate::session::Session;
use crate::tenancy::{Mount, Tenant};

/// The presence operations, by event name.
#[derive(Clone, Copy)]
enum Op {
    Join,
    Heartbeat,
    Leave,
    Snapshot,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Join => "presence:join",
            Op::Heartbeat => "presence:heartbeat",
            Op::Leave => "presence:leave",
            Op::Snapshot => "presence:snapshot",
        }
    }
}

/// The event a client sends with a fresh token before its current one expires.
const REFRESH_EVENT: &str = "auth:refresh";

/// Why a client event was refused on arrival: it is answered `rate_limited` at once (the
/// PROTOCOL.md code for "over a per-socket or per-tenant rate"), never queued, never run.
#[derive(Debug, thiserror::Error)]
enum EventRefusal {
    #[error("over this socket's events_per_second; nothing was done")]
    OverRate,
    #[error("{0}; nothing was done")]
    QueueFull(#[from] ReserveError),
}

/// Turns an adapter's namespace-initialisation result into a future (the local adapter
/// has nothing to wait for; the Redis adapter subscribes).
pub type InitFn<A> = fn(
    <A as CoreAdapter<Emitter>>::InitRes,
) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Serves tenants on one Socket.IO instance.
pub struct SocketMount<A: Adapter> {
    pub io: SocketIo<A>,
    pub init: InitFn<A>,
    /// `SOCKETIO_MAX_QUEUED_EVENTS`: events of one socket that may wait behind the one
    /// being handled (see [`crate::serial`]).
    pub max_queued_events: usize,
}

#[async_trait::async_trait]
impl<A: Adapter + DefinedAdapter> Mount for SocketMount<A> {
    fn fanout(&self, namespaces: &[String]) -> Arc<dyn Fanout> {
        Arc::new(NsFanout::new(self.io.clone(), namespaces.to_vec()))
    }

    async fn mount(&self, tenant: &Arc<Tenant>) -> anyhow::Result<()> {
        for ns in tenant.namespaces() {
            let registered = register(&self.io, ns, tenant.clone(), self.max_queued_events);
            (self.init)(registered).await?;
        }
        Ok(())
    }

    async fn unmount(&self, tenant: &Tenant) {
        for ns in tenant.namespaces() {
            if let Some(op) = self.io.of(ns)
                && let Err(e) = op.local().disconnect().await
            {
                tracing::warn!(ns, error = %e, "disconnecting a removed tenant's sockets");
            }
            self.io.delete_ns(ns);
        }
    }
}

/// Why a connect was refused; the message is the PROTOCOL.md code, which socket.io
/// clients see as `connect_error`'s `message`.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("unauthorized")]
    Unauthorized,
    #[error("quota_exceeded")]
    Quota,
}

/// Serves namespace `ns` for `tenant`. Admission and handlers run in a connect
/// *middleware*: socketioxide awaits middlewares before it sends CONNECT to the client
/// (a refusal becomes `connect_error`), whereas a connect handler runs in its own task
/// after CONNECT, so an event the client sends at once could arrive before its handler
/// exists and be dropped without an ack.
pub fn register<A: Adapter + DefinedAdapter>(
    io: &SocketIo<A>,
    ns: &str,
    tenant: Arc<Tenant>,
    max_queued_events: usize,
) -> A::InitRes {
    let admit = move |s: SocketRef<A>, TryData(auth): TryData<Value>| {
        let tenant = tenant.clone();
        async move {
            let session = admit(&s, auth.ok(), &tenant).await?;
            on_connect(s, tenant, Arc::new(session), max_queued_events);
            Ok::<(), Refusal>(())
        }
    };
    io.ns(ns.to_owned(), (|| async {}).with(admit))
}

/// Checks the connection quota and the token (handshake `auth.token`, or `?token=`).
async fn admit<A: Adapter>(
    s: &SocketRef<A>,
    auth: Option<Value>,
    tenant: &Tenant,
) -> Result<Session, Refusal> {
    let token = auth
        .as_ref()
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| query_token(s.req_parts().uri.query()));
    let identity = tenant.authenticate(token.as_deref()).await.map_err(|e| {
        tracing::info!(tenant = %tenant.id, sid = %s.id, error = %e, "connect refused: unauthorized");
        Refusal::Unauthorized
    })?;
    let place = tenant.admit().ok_or_else(|| {
        tracing::info!(tenant = %tenant.id, sid = %s.id, "connect refused: tenant at max_connections");
        Refusal::Quota
    })?;
    Ok(Session::new(identity, place))
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// Registers the handlers of one admitted socket. Every handler only queues its work
/// on the socket's [`Serial`] queue, so the socket's requests run in arrival order. An
/// event over the socket's rate or beyond its queue's bound is refused on arrival and
/// answered at once, possibly ahead of the acks of earlier events still waiting: it does
/// nothing, so there is nothing to order it against, and answering it in its turn would
/// keep it in memory for as long as the socket's slowest request.
fn on_connect<A: Adapter>(
    socket: SocketRef<A>,
    tenant: Arc<Tenant>,
    session: Arc<Session>,
    max_queued_events: usize,
) {
    tenant.metrics().sockets.inc();
    // Socket.IO puts every socket in a room of its own, and addressing builds on it:
    // `to_socket` reaches one socket on any node, `except` leaves the sender out.
    // socketioxide does not do this by itself. The name is outside the room-id charset
    // so no client can join it.
    socket.join(socket_room(&socket.id.to_string()));
    // An authenticated socket is its user's from the start (the Server API disconnects
    // users by this room); an anonymous one enters it when it joins presence.
    if let Some(user) = session.user() {
        socket.join(user_room(&user));
    }
    let serial = Serial::new(max_queued_events);
    for op in [Op::Join, Op::Heartbeat, Op::Leave, Op::Snapshot] {
        let (tenant, session, serial) = (tenant.clone(), session.clone(), serial.clone());
        socket.on(
            op.name(),
            move |s: SocketRef<A>, TryData(data): TryData<Value>, ack: AckSender<A>| {
                let started = Instant::now();
                let slot = match admit_event(&tenant, &session, &serial) {
                    Ok(slot) => slot,
                    Err(why) => {
                        let sid = s.id.to_string();
                        refuse(&tenant, &serial, op.name(), &sid, &why, ack, started);
                        return Either::Right(future::ready(()));
                    }
                };
                // A missing or undecodable payload is treated as `null`: leave and
                // heartbeat accept that, join and snapshot answer `invalid_payload`.
                let payload = data.unwrap_or(Value::Null);
                let job = async move {
                    presence_request(&tenant, &session, op, &s, payload, ack, started).await;
                };
                Either::Left(slot.run(Box::pin(job)))
            },
        );
    }
    let (refresh_tenant, refresh_session, refresh_serial) =
        (tenant.clone(), session.clone(), serial.clone());
    socket.on(
        REFRESH_EVENT,
        move |s: SocketRef<A>, TryData(data): TryData<Value>, ack: AckSender<A>| {
            // Not rate limited (a socket must always be able to renew its token), but it
            // waits in the queue like any event, so it needs a place there.
            let slot = match refresh_serial.try_reserve() {
                Ok(slot) => slot,
                Err(full) => {
                    let sid = s.id.to_string();
                    let why = EventRefusal::from(full);
                    let (tenant, serial) = (&refresh_tenant, &refresh_serial);
                    refuse(
                        tenant,
                        serial,
                        REFRESH_EVENT,
                        &sid,
                        &why,
                        ack,
                        Instant::now(),
                    );
                    return Either::Right(future::ready(()));
                }
            };
            let job = async move {
                let body = refresh(&refresh_tenant, &refresh_session, data.ok()).await;
                send_ack(ack, &body, "");
            };
            Either::Left(slot.run(Box::pin(job)))
        },
    );
    let (custom_tenant, custom_session, custom_serial) =
        (tenant.clone(), session.clone(), serial.clone());
    socket.on_fallback(
        move |s: SocketRef<A>,
              Event(event): Event,
              TryData(data): TryData<Value>,
              ack: AckSender<A>| {
            let started = Instant::now();
            let sid = s.id.to_string();
            let slot = match admit_event(&custom_tenant, &custom_session, &custom_serial) {
                Ok(slot) => slot,
                Err(why) => {
                    refuse(
                        &custom_tenant,
                        &custom_serial,
                        "custom",
                        &sid,
                        &why,
                        ack,
                        started,
                    );
                    return Either::Right(future::ready(()));
                }
            };
            let payload = data.unwrap_or(Value::Null);
            let job = async move {
                custom_event(
                    &custom_tenant,
                    &custom_session,
                    &sid,
                    event,
                    payload,
                    ack,
                    started,
                )
                .await;
            };
            Either::Left(slot.run(Box::pin(job)))
        },
    );
    let sid = socket.id.to_string();
    tenant.plugins().on_connect(&sid);
    if session.identity().is_some() {
        expire_on_exp(socket.clone(), session.clone());
    }
    // Cleanup queues behind the socket's last requests: a join still queued when the
    // client vanished must not leave a registration behind.
    socket.on_disconnect(move |s: SocketRef<A>| {
        session.close();
        let job = async move {
            tenant.metrics().sockets.dec();
            let sid = s.id.to_string();
            let user = session.user().or_else(|| tenant.presence().user_of(&sid));
            tenant.plugins().on_disconnect(&sid, user.as_deref());
            tenant.presence().disconnect(&sid).await;
        };
        serial.run_last(Box::pin(job))
    });
}

/// Disconnects the socket when its token's `exp` passes without an `auth:refresh`.
fn expire_on_exp<A: Adapter>(socket: SocketRef<A>, session: Arc<Session>) {
    tokio::spawn(async move {
        if session.expired().await {
            tracing::info!(sid = %socket.id, "token expired: disconnecting");
            let _ = socket.disconnect();
        }
    });
}

/// `auth:refresh { token }`: a valid token of the same user moves the expiry.
async fn refresh(tenant: &Tenant, session: &Session, data: Option<Value>) -> Value {
    let Some(current) = session.identity() else {
        return error_ack("unknown_event", "this tenant does not authenticate sockets");
    };
    let token = data
        .as_ref()
        .and_then(|d| d.get("token"))
        .and_then(Value::as_str);
    match tenant.authenticate(token).await {
        Ok(Some(fresh)) if fresh.user == current.user => {
            let exp = fresh.exp;
            session.refresh(fresh);
            json!({ "ok": true, "exp": exp })
        }
        Ok(Some(_)) => error_ack("forbidden", "the new token is for another user"),
        Ok(None) => error_ack("unknown_event", "this tenant does not authenticate sockets"),
        Err(e) => error_ack("unauthorized", &e.to_string()),
    }
}

fn error_ack(code: &str, message: &str) -> Value {
    json!({ "ok": false, "error": { "code": code, "message": message } })
}

/// Admits one client event, in the receive path (so in arrival order): it takes a token
/// from the socket's rate bucket, then a place in its queue. Both are checked on arrival
/// so that a refused event costs nothing while the socket's earlier events wait.
fn admit_event(tenant: &Tenant, session: &Session, serial: &Serial) -> Result<Slot, EventRefusal> {
    if !session.allow_event(&tenant.policy().cfg.limits) {
        return Err(EventRefusal::OverRate);
    }
    serial.try_reserve().map_err(EventRefusal::from)
}

/// Answers a refused event at once and counts it in `rtm_requests_total` (code
/// `rate_limited`). A full queue is also logged, at most once per socket and
/// [`crate::serial::REFUSAL_REPORT_EVERY`] with the number refused since the last line,
/// so an operator sees which socket is stuck without a flood reaching the log.
fn refuse<A: Adapter>(
    tenant: &Tenant,
    serial: &Serial,
    op: &'static str,
    sid: &str,
    why: &EventRefusal,
    ack: AckSender<A>,
    started: Instant,
) {
    if let EventRefusal::QueueFull(full) = why
        && let Some(refused) = serial.note_refusal()
    {
        tracing::warn!(
            tenant = %tenant.id,
            sid,
            op,
            refused,
            error = %full,
            "events refused: the socket's queue is full"
        );
    }
    send_ack(ack, &error_ack("rate_limited", &why.to_string()), sid);
    tenant
        .metrics()
        .observe(op, "rate_limited", started.elapsed());
}

/// A join under auth: the user is the token's `sub`, the room must be one it allows.
/// Fills in a missing `userId`, so the presence service needs no notion of tokens.
fn authorize_join(identity: &Identity, payload: &mut Value) -> Result<(), PresenceError> {
    let Some(obj) = payload.as_object_mut() else {
        return Ok(()); // the presence parser answers invalid_payload
    };
    match obj.get("userId") {
        None | Some(Value::Null) => {
            obj.insert("userId".into(), Value::String(identity.user.clone()));
        }
        Some(Value::String(u)) if *u == identity.user => {}
        Some(_) => {
            return Err(PresenceError::Forbidden(
                "userId must be the token's sub".into(),
            ));
        }
    }
    if let Some(Value::String(room)) = obj.get("roomId")
        && !identity.may_join(room)
    {
        return Err(PresenceError::Forbidden(format!(
            "the token does not allow room {room}"
        )));
    }
    Ok(())
}

/// One presence request, run in its socket's turn.
async fn presence_request<A: Adapter>(
    tenant: &Tenant,
    session: &Session,
    op: Op,
    s: &SocketRef<A>,
    mut payload: Value,
    ack: AckSender<A>,
    started: Instant,
) {
    let sid = s.id.to_string();
    let p: &Presence = tenant.presence();
    let result = match op {
        Op::Join => {
            let identity = session.identity();
            match identity.as_ref().map(|i| authorize_join(i, &mut payload)) {
                Some(Err(e)) => Err(e),
                _ => {
                    let policy = tenant.policy();
                    p.join(&sid, &payload, policy.join_gate(identity.as_ref()))
                        .await
                }
            }
        }
        Op::Heartbeat => p.heartbeat(&sid, &payload).await,
        Op::Leave => p.leave(&sid, &payload).await,
        Op::Snapshot => p.snapshot(&payload).await,
    };
    respond(tenant, op.name(), &sid, result, ack, started).await;
}

/// Any other event: the plugin that declares it answers, or `unknown_event`.
async fn custom_event<A: Adapter>(
    tenant: &Tenant,
    session: &Session,
    sid: &str,
    event: String,
    payload: Value,
    ack: AckSender<A>,
    started: Instant,
) {
    let call = EventCall {
        socket: sid.to_owned(),
        user: session.user().or_else(|| tenant.presence().user_of(sid)),
        event,
        payload_json: payload.to_string(),
    };
    let event = call.event.clone();
    let (body, code) = dispatch_ack(tenant.plugins().dispatch(call).await);
    if code != "ok" {
        tracing::debug!(tenant = %tenant.id, sid, event, code, "custom event refused");
    }
    send_ack(ack, &body, sid);
    tenant.metrics().observe("custom", code, started.elapsed());
}

/// Acks first (so its latency excludes the cross-node broadcast), then publishes events.
async fn respond<A: Adapter>(
    tenant: &Tenant,
    op: &'static str,
    sid: &str,
    result: Result<Outcome, PresenceError>,
    ack: AckSender<A>,
    started: Instant,
) {
    match result {
        Ok(outcome) => {
            send_ack(ack, &outcome.ack, sid);
            tenant.metrics().observe(op, "ok", started.elapsed());
            tenant.presence().publish(outcome.events).await;
        }
        Err(err) => {
            let code = err.code();
            if code == "unavailable" {
                tracing::warn!(tenant = %tenant.id, sid, op, error = %err, "presence backend unavailable");
            } else {
                tracing::debug!(tenant = %tenant.id, sid, op, code, error = %err, "presence request refused");
            }
            send_ack(ack, &err.to_ack(), sid);
            tenant.metrics().observe(op, code, started.elapsed());
        }
    }
}

/// Sends an ack (a no-op when the client asked for none). It fails only when the socket
/// is gone or its outgoing queue is full (`SOCKETIO_MAX_BUFFER_PACKETS`): the client then
/// never sees this ack, which an operator must be able to tell from the log.
fn send_ack<A: Adapter>(ack: AckSender<A>, body: &Value, sid: &str) {
    match ack.send(body) {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            tracing::warn!(
                sid,
                "ack dropped: the socket's outgoing queue is full (SOCKETIO_MAX_BUFFER_PACKETS)"
            );
        }
        Err(e) => tracing::debug!(sid, error = %e, "ack not sent"),
    }
}

//! The Socket.IO surface: which event goes where, and how each result becomes an ack.
//! Handlers are generic over the adapter so one code path serves the single-node
//! (local adapter) and multi-node (Redis adapter) builds.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SendError, SocketError};
use socketioxide_core::adapter::DefinedAdapter;

use crate::fanout::socket_room;
use crate::metrics::Metrics;
use crate::plugin_bridge::dispatch_ack;
use crate::plugins::{EventCall, Plugins};
use crate::presence::error::PresenceError;
use crate::presence::{Outcome, Presence};
use crate::serial::Serial;

/// Everything a connection handler needs, shared by every socket of the node.
pub struct Ctx {
    pub presence: Arc<Presence>,
    pub plugins: Plugins,
    pub metrics: Arc<Metrics>,
}

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

/// Serves the default namespace. Handlers are registered in a connect *middleware*:
/// socketioxide awaits middlewares before it sends CONNECT to the client, whereas a
/// connect handler runs in its own task after CONNECT, so an event the client sends at
/// once could arrive before its handler exists and be dropped without an ack.
pub fn register<A: Adapter + DefinedAdapter>(io: &SocketIo<A>, ctx: Arc<Ctx>) -> A::InitRes {
    let handlers = move |s: SocketRef<A>| {
        let ctx = ctx.clone();
        async move {
            on_connect(s, ctx);
            Ok::<(), Infallible>(())
        }
    };
    io.ns("/", (|| async {}).with(handlers))
}

/// Registers the handlers of one connecting socket. Every handler only queues its work
/// on the socket's [`Serial`] queue, so the socket's requests run in arrival order.
fn on_connect<A: Adapter>(socket: SocketRef<A>, ctx: Arc<Ctx>) {
    ctx.metrics.sockets.inc();
    // Socket.IO puts every socket in a room of its own, and addressing builds on it:
    // `to_socket` reaches one socket on any node, `except` leaves the sender out.
    // socketioxide does not do this by itself. The name is outside the room-id charset
    // so no client can join it.
    socket.join(socket_room(&socket.id.to_string()));
    let serial = Serial::default();
    for op in [Op::Join, Op::Heartbeat, Op::Leave, Op::Snapshot] {
        let ctx = ctx.clone();
        let serial = serial.clone();
        socket.on(
            op.name(),
            move |s: SocketRef<A>, TryData(data): TryData<Value>, ack: AckSender<A>| {
                let started = Instant::now();
                // A missing or undecodable payload is treated as `null`: leave and
                // heartbeat accept that, join and snapshot answer `invalid_payload`.
                let payload = data.unwrap_or(Value::Null);
                let job =
                    async move { presence_request(&ctx, op, &s, payload, ack, started).await };
                serial.run(Box::pin(job))
            },
        );
    }
    let custom_ctx = ctx.clone();
    let custom_serial = serial.clone();
    socket.on_fallback(
        move |s: SocketRef<A>,
              Event(event): Event,
              TryData(data): TryData<Value>,
              ack: AckSender<A>| {
            let started = Instant::now();
            let payload = data.unwrap_or(Value::Null);
            let job = async move {
                custom_event(&custom_ctx, &s.id.to_string(), event, payload, ack, started).await;
            };
            custom_serial.run(Box::pin(job))
        },
    );
    let sid = socket.id.to_string();
    ctx.plugins.on_connect(&sid);
    // Cleanup queues behind the socket's last requests: a join still queued when the
    // client vanished must not leave a registration behind.
    socket.on_disconnect(move |s: SocketRef<A>| {
        let job = async move {
            ctx.metrics.sockets.dec();
            let sid = s.id.to_string();
            let user = ctx.presence.user_of(&sid);
            ctx.plugins.on_disconnect(&sid, user.as_deref());
            ctx.presence.disconnect(&sid).await;
        };
        serial.run_last(Box::pin(job))
    });
}

/// One presence request, run in its socket's turn.
async fn presence_request<A: Adapter>(
    ctx: &Ctx,
    op: Op,
    s: &SocketRef<A>,
    payload: Value,
    ack: AckSender<A>,
    started: Instant,
) {
    let sid = s.id.to_string();
    let p = &ctx.presence;
    let result = match op {
        Op::Join => p.join(&sid, &payload).await,
        Op::Heartbeat => p.heartbeat(&sid, &payload).await,
        Op::Leave => p.leave(&sid, &payload).await,
        Op::Snapshot => p.snapshot(&payload).await,
    };
    respond(ctx, op.name(), &sid, result, ack, started).await;
}

/// Any other event: the plugin that declares it answers, or `unknown_event`.
async fn custom_event<A: Adapter>(
    ctx: &Ctx,
    sid: &str,
    event: String,
    payload: Value,
    ack: AckSender<A>,
    started: Instant,
) {
    let call = EventCall {
        socket: sid.to_owned(),
        user: ctx.presence.user_of(sid),
        event,
        payload_json: payload.to_string(),
    };
    let event = call.event.clone();
    let (body, code) = dispatch_ack(ctx.plugins.dispatch(call).await);
    if code != "ok" {
        tracing::debug!(sid, event, code, "custom event refused");
    }
    send_ack(ack, &body, sid);
    ctx.metrics.observe("custom", code, started.elapsed());
}

/// Acks first (so its latency excludes the cross-node broadcast), then publishes events.
async fn respond<A: Adapter>(
    ctx: &Ctx,
    op: &'static str,
    sid: &str,
    result: Result<Outcome, PresenceError>,
    ack: AckSender<A>,
    started: Instant,
) {
    match result {
        Ok(outcome) => {
            send_ack(ack, &outcome.ack, sid);
            ctx.metrics.observe(op, "ok", started.elapsed());
            ctx.presence.publish(outcome.events).await;
        }
        Err(err) => {
            let code = err.code();
            if code == "unavailable" {
                tracing::warn!(sid, op, error = %err, "presence backend unavailable");
            } else {
                tracing::debug!(sid, op, code, error = %err, "presence request refused");
            }
            send_ack(ack, &err.to_ack(), sid);
            ctx.metrics.observe(op, code, started.elapsed());
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

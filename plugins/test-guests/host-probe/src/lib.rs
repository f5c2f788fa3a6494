//! Test guest: every host call a plugin can make, on demand, so tests can try each path
//! across a tenant boundary and each per-call budget. Events are `probe:<action>`; the
//! reply says what the host call returned (`{ ok: true, ... }` or the host's error
//! `{ ok: false, code }`), so a refused call is visible instead of failing the event.
//!
//! Actions: `emit-socket {socket}`, `emit-room {room}`, `broadcast`, `join {socket,
//! room}`, `members {room}`, `has {socket, room}`, `snapshot {room}`, `kv-set {key,
//! value}`, `kv-get {key}`, `emits {n}` (n emits to the sender), `log {bytes}` (one
//! log line of that size), `reply {bytes}` (a reply carrying that many bytes), `whoami`
//! (the socket and user the host says sent the event). Emits
//! are `probe:ping {from}`, where `from` is the calling socket.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply, emit, kv, log, presence, rooms};
use serde::Deserialize;
use serde_json::{Value, json};

struct Probe;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Args {
    socket: String,
    room: String,
    key: String,
    value: String,
    n: u32,
    bytes: usize,
}

/// The host call's answer as reply data.
fn outcome<T: serde::Serialize>(r: Result<T, Error>) -> Result<Reply, Error> {
    Reply::json(&match r {
        Ok(v) => json!({ "ok": true, "value": v }),
        Err(e) => json!({ "ok": false, "code": e.code, "message": e.message }),
    })
}

fn ping(ctx: &Ctx) -> Value {
    json!({ "from": ctx.socket })
}

impl Plugin for Probe {
    fn manifest() -> Manifest {
        Manifest::new("host-probe", "0.1.0").event("probe:*")
    }

    fn on_event(ctx: Ctx) -> Result<Reply, Error> {
        let a: Args = ctx.payload().unwrap_or_default();
        let action = ctx
            .event
            .strip_prefix("probe:")
            .unwrap_or_default()
            .to_owned();
        match action.as_str() {
            "emit-socket" => outcome(emit::to_socket(&a.socket, "probe:ping", &ping(&ctx))),
            "emit-room" => outcome(emit::to_room(&a.room, "probe:ping", &ping(&ctx))),
            "broadcast" => outcome(emit::broadcast("probe:ping", &ping(&ctx))),
            "join" => outcome(rooms::join(&a.socket, &a.room)),
            "members" => outcome(rooms::members(&a.room)),
            "has" => outcome(rooms::has(&a.socket, &a.room)),
            "snapshot" => outcome(
                presence::snapshot(&a.room)
                    .map(|members| members.into_iter().map(|m| m.user_id).collect::<Vec<_>>()),
            ),
            "kv-set" => outcome(kv::set(&a.key, &a.value, None)),
            "kv-get" => outcome(kv::get::<String>(&a.key)),
            "emits" => {
                let mut sent = 0;
                let mut refused = None;
                for _ in 0..a.n {
                    match emit::to_socket(&ctx.socket, "probe:ping", &ping(&ctx)) {
                        Ok(()) => sent += 1,
                        Err(e) => {
                            refused.get_or_insert(e.code);
                        }
                    }
                }
                Reply::json(&json!({ "sent": sent, "refused": refused }))
            }
            "log" => {
                log::info(&"x".repeat(a.bytes));
                Ok(Reply::Empty)
            }
            "reply" => Reply::json(&json!({ "data": "y".repeat(a.bytes) })),
            "whoami" => Reply::json(&json!({ "socket": ctx.socket, "user": ctx.user })),
            other => Err(Error::new("unknown_action", format!("no action {other:?}"))),
        }
    }
}

rtm_guest::export_plugin!(Probe);

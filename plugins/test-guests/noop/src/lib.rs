//! Test guest: answers every `noop:*` event with `Ok(None)` (the baseline for
//! dispatch benchmarks), and exercises the hooks: `on-connect` emits
//! `noop:hello {socket}` to the socket, `on-disconnect` broadcasts
//! `noop:bye {socket, user}`, `on-presence` broadcasts `noop:presence {event}`.

use rtm_guest::{Ctx, Error, Hooks, Manifest, Plugin, Reply, emit, log};
use serde_json::json;

struct Noop;

impl Plugin for Noop {
    fn manifest() -> Manifest {
        Manifest::new("noop", "0.1.0")
            .event("noop:*")
            .hook(Hooks::CONNECT | Hooks::DISCONNECT | Hooks::PRESENCE)
    }

    fn on_event(_ctx: Ctx) -> Result<Reply, Error> {
        Ok(Reply::Empty)
    }

    fn on_connect(socket: String) {
        if let Err(e) = emit::to_socket(&socket, "noop:hello", &json!({ "socket": socket })) {
            log::warn(&format!("hello failed: {e}"));
        }
    }

    fn on_disconnect(socket: String, user: Option<String>) {
        if let Err(e) = emit::broadcast("noop:bye", &json!({ "socket": socket, "user": user })) {
            log::warn(&format!("bye failed: {e}"));
        }
    }

    fn on_presence(event_json: String) {
        let event: serde_json::Value = serde_json::from_str(&event_json).unwrap_or_default();
        if let Err(e) = emit::broadcast("noop:presence", &json!({ "event": event })) {
            log::warn(&format!("presence failed: {e}"));
        }
        println!("presence event seen");
    }
}

rtm_guest::export_plugin!(Noop);

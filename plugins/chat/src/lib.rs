//! The example chat plugin (PROTOCOL.md, "The example chat plugin").
//!
//! - `chat:message {roomId, text}`: the sender must be in the room; the message
//!   is appended to the room's history (kv list, last [`HISTORY_CAP`] kept, in
//!   one atomic step) and broadcast to the room as `chat:message
//!   {id, roomId, userId, text, ts, v}`; ack `{id}`.
//! - `chat:history {roomId, limit?}`: ack `{messages}`, oldest first.
//! - `chat:typing {roomId, typing}`: broadcast `chat:typing {roomId, userId,
//!   typing}` to the room except the sender.
//!
//! The history lives in kv, never in the instance: warm instances come and go
//! and other nodes must see the same history.
//!
//! `v` is a build-time marker (`RTM_CHAT_MARK`, default `v1`) so hot-reload
//! tests can tell two builds of this plugin apart.

use rtm_guest::{Ctx, Error, Manifest, Plugin, Reply, clock, emit, kv, rooms};
use serde::{Deserialize, Serialize};

/// Messages kept per room.
const HISTORY_CAP: u32 = 100;
/// Longest message, in characters.
const MAX_TEXT_CHARS: usize = 2000;
/// Default and maximum `limit` of `chat:history`.
const MAX_HISTORY_LIMIT: u32 = HISTORY_CAP;
/// Build marker, see the module docs.
const MARK: &str = match option_env!("RTM_CHAT_MARK") {
    Some(mark) => mark,
    None => "v1",
};

struct Chat;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessage {
    room_id: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryQuery {
    room_id: String,
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typing {
    room_id: String,
    typing: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: String,
    room_id: String,
    user_id: String,
    text: String,
    ts: u64,
    v: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TypingNotice<'a> {
    room_id: &'a str,
    user_id: &'a str,
    typing: bool,
}

impl Plugin for Chat {
    fn manifest() -> Manifest {
        Manifest::new("chat", env!("CARGO_PKG_VERSION")).events([
            "chat:message",
            "chat:history",
            "chat:typing",
        ])
    }

    fn on_event(ctx: Ctx) -> Result<Reply, Error> {
        match ctx.event.as_str() {
            "chat:message" => message(&ctx),
            "chat:history" => history(&ctx),
            "chat:typing" => typing(&ctx),
            other => Err(Error::new(
                "unknown_event",
                format!("chat does not handle {other}"),
            )),
        }
    }
}

rtm_guest::export_plugin!(Chat);

fn history_key(room_id: &str) -> String {
    format!("history:{room_id}")
}

/// The sender's user id, provided it is in `room_id`.
fn joined_user<'a>(ctx: &'a Ctx, room_id: &str) -> Result<&'a str, Error> {
    let not_joined = || Error::new("not_joined", format!("join room {room_id:?} first"));
    if room_id.is_empty() || !rooms::has(&ctx.socket, room_id)? {
        return Err(not_joined());
    }
    ctx.user_or(not_joined())
}

fn message(ctx: &Ctx) -> Result<Reply, Error> {
    let req: SendMessage = ctx.payload()?;
    let chars = req.text.chars().count();
    if chars == 0 || chars > MAX_TEXT_CHARS {
        return Err(Error::invalid_payload(format!(
            "text must be 1..{MAX_TEXT_CHARS} characters, got {chars}"
        )));
    }
    let user_id = joined_user(ctx, &req.room_id)?;
    let key = history_key(&req.room_id);
    // A per-room counter gives ids that are unique across nodes and ordered.
    let seq = kv::incr(&format!("seq:{}", req.room_id), 1)?;
    let msg = Message {
        id: format!("{}-{seq}", req.room_id),
        room_id: req.room_id,
        user_id: user_id.to_owned(),
        text: req.text,
        ts: clock::now_ms(),
        v: MARK.to_owned(),
    };
    kv::list_push(&key, &msg, Some(HISTORY_CAP))?;
    emit::to_room(&msg.room_id, "chat:message", &msg)?;
    Reply::json(&serde_json::json!({ "id": msg.id, "v": MARK }))
}

fn history(ctx: &Ctx) -> Result<Reply, Error> {
    let req: HistoryQuery = ctx.payload()?;
    if req.room_id.is_empty() {
        return Err(Error::invalid_payload("roomId must not be empty"));
    }
    let limit = req
        .limit
        .unwrap_or(MAX_HISTORY_LIMIT)
        .min(MAX_HISTORY_LIMIT);
    let messages: Vec<Message> = if limit == 0 {
        Vec::new()
    } else {
        kv::list_range(&history_key(&req.room_id), -i64::from(limit), -1)?
    };
    Reply::json(&serde_json::json!({ "messages": messages }))
}

fn typing(ctx: &Ctx) -> Result<Reply, Error> {
    let req: Typing = ctx.payload()?;
    let user_id = joined_user(ctx, &req.room_id)?;
    let notice = TypingNotice {
        room_id: &req.room_id,
        user_id,
        typing: req.typing,
    };
    emit::to_room_except(&req.room_id, &ctx.socket, "chat:typing", &notice)?;
    Ok(Reply::Empty)
}

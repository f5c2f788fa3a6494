//! `presence:event`, the one message presence sends to rooms.

use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};

use super::clock::now_ms;
use super::store::{Epoch, Reaped, Registration, Transition};

/// The Socket.IO event name.
pub const EVENT_NAME: &str = "presence:event";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Join,
    Update,
    Leave,
    Expire,
}

/// Why a registration ended: the `reason` of a `member_left` webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// `presence:leave`, or superseded by a resume.
    Leave,
    /// Its socket went away (or the node stopped).
    Disconnect,
    /// The reaper found it silent past its TTL.
    Expire,
}

/// `{ type, roomId, userId, connId, state?, ts, epoch? }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEvent {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub room_id: String,
    pub user_id: String,
    pub conn_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Map<String, Value>>,
    pub ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    /// The member's `info` (from its token), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Map<String, Value>>,
    /// Why the registration ended (leave and expire events); for webhooks, not clients.
    #[serde(skip)]
    pub cause: Option<Cause>,
    /// How the change moved the room's occupancy, as the store's atomic step saw it.
    #[serde(skip)]
    pub transitions: Vec<Transition>,
    /// False when only `transitions` are news (nothing to send to the room).
    #[serde(skip)]
    pub announce: bool,
}

impl PresenceEvent {
    /// An event about `reg`; `with_state` for join/update, where the state is the news.
    pub fn of(kind: EventKind, reg: &Registration, with_state: bool) -> Self {
        Self {
            kind,
            room_id: reg.room_id.clone(),
            user_id: reg.user_id.clone(),
            conn_id: reg.conn_id.clone(),
            state: with_state.then(|| reg.state.clone()),
            ts: now_ms(),
            epoch: Some(reg.epoch),
            info: reg.info.clone(),
            cause: None,
            transitions: Vec::new(),
            announce: true,
        }
    }

    /// The end of a registration, and why.
    pub fn ended(kind: EventKind, reg: &Registration, cause: Cause) -> Self {
        Self {
            cause: Some(cause),
            ..Self::of(kind, reg, false)
        }
    }

    /// The same event carrying the occupancy moves of its store step.
    #[must_use]
    pub fn moving(mut self, transitions: Vec<Transition>) -> Self {
        self.transitions = transitions;
        self
    }

    /// The `expire` of a registration the reaper removed.
    pub fn expired(r: Reaped) -> Self {
        Self {
            kind: EventKind::Expire,
            room_id: r.room_id,
            user_id: r.user_id,
            conn_id: r.conn_id,
            state: None,
            ts: now_ms(),
            epoch: r.epoch,
            info: None,
            cause: Some(Cause::Expire),
            transitions: r.transitions,
            announce: r.announce,
        }
    }

    /// Serialized once for every socket it goes to.
    pub fn to_raw(&self) -> Option<Box<RawValue>> {
        serde_json::value::to_raw_value(self).ok()
    }
}

//! What a webhook receiver is told: the events one presence change makes, in the order
//! they happened (`room_occupied`, `user_joined`, `member_joined`; `member_left`,
//! `user_left`, `room_vacated`), each with a cluster-unique `id` kept across retries.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::presence::event::{Cause, EventKind, PresenceEvent};
use crate::presence::store::Transition;

/// A webhook event's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    MemberJoined,
    MemberLeft,
    RoomOccupied,
    RoomVacated,
    UserJoined,
    UserLeft,
}

impl HookKind {
    /// The name a tenant subscribes with (`webhook.events`).
    pub fn name(self) -> &'static str {
        match self {
            Self::MemberJoined => "member_joined",
            Self::MemberLeft => "member_left",
            Self::RoomOccupied => "room_occupied",
            Self::RoomVacated => "room_vacated",
            Self::UserJoined => "user_joined",
            Self::UserLeft => "user_left",
        }
    }
}

/// `{ id, type, roomId, userId, connId?, ts, reason?, state?, info? }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: HookKind,
    pub room_id: String,
    /// The member's user; for `room_*` the user whose registration moved the room.
    pub user_id: String,
    /// The registration (`member_*` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_id: Option<String>,
    pub ts: i64,
    /// Why a member left: `leave`, `disconnect` or `expire`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cause>,
    /// The member's state when it joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Map<String, Value>>,
    /// The member's `info` (from its token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Map<String, Value>>,
}

/// A fresh event id: `evt_` and 16 random bytes in hex.
fn new_id() -> String {
    format!("evt_{}", hex::encode(rand::random::<[u8; 16]>()))
}

impl HookEvent {
    fn about(kind: HookKind, ev: &PresenceEvent, user: &str) -> Self {
        Self {
            id: new_id(),
            kind,
            room_id: ev.room_id.clone(),
            user_id: user.to_owned(),
            conn_id: None,
            ts: ev.ts,
            reason: None,
            state: None,
            info: None,
        }
    }

    fn member(kind: HookKind, ev: &PresenceEvent) -> Self {
        Self {
            conn_id: Some(ev.conn_id.clone()),
            reason: ev.cause.filter(|_| kind == HookKind::MemberLeft),
            state: ev.state.clone().filter(|_| kind == HookKind::MemberJoined),
            info: ev.info.clone(),
            ..Self::about(kind, ev, &ev.user_id)
        }
    }
}

/// The webhook events of one presence change, in order, keeping only the kinds `wanted`.
pub fn events_of(ev: &PresenceEvent, wanted: impl Fn(HookKind) -> bool) -> Vec<HookEvent> {
    let member = match (ev.kind, ev.announce) {
        (EventKind::Join, true) => Some(HookKind::MemberJoined),
        (EventKind::Leave | EventKind::Expire, true) => Some(HookKind::MemberLeft),
        _ => None,
    };
    let mut out = Vec::new();
    let mut push = |e: HookEvent| {
        if wanted(e.kind) {
            out.push(e);
        }
    };
    let occupancy = |t: &Transition| match t {
        Transition::RoomOccupied => HookEvent::about(HookKind::RoomOccupied, ev, &ev.user_id),
        Transition::UserJoined(u) => HookEvent::about(HookKind::UserJoined, ev, u),
        Transition::UserLeft(u) => HookEvent::about(HookKind::UserLeft, ev, u),
        Transition::RoomVacated => HookEvent::about(HookKind::RoomVacated, ev, &ev.user_id),
    };
    // Arrivals are announced after the room and user they open, departures before the
    // user and room they close.
    if member == Some(HookKind::MemberLeft) {
        push(HookEvent::member(HookKind::MemberLeft, ev));
    }
    for t in &ev.transitions {
        push(occupancy(t));
    }
    if member == Some(HookKind::MemberJoined) {
        push(HookEvent::member(HookKind::MemberJoined, ev));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::store::Registration;

    fn reg(user: &str) -> Registration {
        Registration {
            conn_id: "c1".into(),
            user_id: user.into(),
            state: serde_json::json!({"k": 1})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            epoch: 1,
            last_seen: 0,
            info: None,
            room_id: "r".into(),
            owner: "s".into(),
            node: "n".into(),
        }
    }

    fn kinds(events: &[HookEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.name()).collect()
    }

    #[test]
    fn a_first_join_opens_the_room_then_the_user_then_the_member() {
        let ev = PresenceEvent::of(EventKind::Join, &reg("alice"), true).moving(vec![
            Transition::RoomOccupied,
            Transition::UserJoined("alice".into()),
        ]);
        let all = events_of(&ev, |_| true);
        assert_eq!(
            kinds(&all),
            ["room_occupied", "user_joined", "member_joined"]
        );
        assert_eq!(all[2].conn_id.as_deref(), Some("c1"));
        assert_eq!(all[2].state, ev.state);
        assert!(all[0].conn_id.is_none() && all[1].conn_id.is_none());
        let ids: std::collections::BTreeSet<&str> = all.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "every event has its own id");
        let only_rooms = events_of(&ev, |k| k == HookKind::RoomOccupied);
        assert_eq!(kinds(&only_rooms), ["room_occupied"]);
    }

    #[test]
    fn a_last_leave_closes_the_member_then_the_user_then_the_room_with_its_reason() {
        let ev =
            PresenceEvent::ended(EventKind::Expire, &reg("alice"), Cause::Expire).moving(vec![
                Transition::UserLeft("alice".into()),
                Transition::RoomVacated,
            ]);
        let all = events_of(&ev, |_| true);
        assert_eq!(kinds(&all), ["member_left", "user_left", "room_vacated"]);
        assert_eq!(all[0].reason, Some(Cause::Expire));
        let json = serde_json::to_value(&all[0]).unwrap_or_default();
        assert_eq!(json["reason"], "expire");
        assert_eq!(json["type"], "member_left");
        assert_eq!(json["roomId"], "r");
    }

    #[test]
    fn updates_make_no_member_events_but_keep_their_moves() {
        let mut ev = PresenceEvent::of(EventKind::Update, &reg("bob"), true).moving(vec![
            Transition::UserJoined("bob".into()),
            Transition::UserLeft("alice".into()),
        ]);
        assert_eq!(
            kinds(&events_of(&ev, |_| true)),
            ["user_joined", "user_left"]
        );
        ev.transitions.clear();
        assert!(events_of(&ev, |_| true).is_empty());
    }
}

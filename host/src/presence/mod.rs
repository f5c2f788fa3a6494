//! Native presence: who is in which room, with what state, on every node.
//!
//! [`Presence`] owns the request flow (join / heartbeat / leave / snapshot / resume /
//! disconnect) and the `presence:event` broadcasts; a [`store::PresenceStore`] owns where
//! registrations live; the [`reaper`] removes the ones whose clients went silent.
//! This node also remembers, per local socket, which registration it holds in each room
//! (`local`): that is how a socket's heartbeat finds its `connId` without a lookup.

pub mod batch;
pub mod clock;
pub mod error;
pub mod event;
pub mod ids;
pub mod memory;
pub mod reaper;
pub mod redis;
pub mod request;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fanout::Fanout;
use error::PresenceError;
use event::{EventKind, PresenceEvent};
use request::{HeartbeatRequest, JoinRequest, Limits, RoomRequest};
use store::{
    JoinSpec, Patched, PresenceStore, Registration, RemoveSpec, ResumeSpec, Touch, TouchSpec,
};

/// Called with each published `presence:event` (its JSON).
pub type Observer = Box<dyn Fn(&str) + Send + Sync>;

/// What a local socket holds in one room.
#[derive(Debug, Clone)]
struct Held {
    conn_id: String,
    user_id: String,
}

/// A request's answer plus the events it caused; the caller acks first, then publishes,
/// so ack latency does not include the cross-node broadcast.
#[derive(Debug)]
pub struct Outcome {
    pub ack: Value,
    pub events: Vec<PresenceEvent>,
}

/// The presence service of one node. Shared as `Arc<Presence>` by the Socket.IO
/// handlers, the reaper task and the shutdown path.
pub struct Presence {
    store: Arc<dyn PresenceStore>,
    fanout: Arc<dyn Fanout>,
    limits: Limits,
    node: String,
    resume_grace: Duration,
    /// socket id -> room -> registration held. A std mutex: held for map edits only,
    /// never across an await.
    local: Mutex<HashMap<String, HashMap<String, Held>>>,
    /// Told about every event this node publishes (the plugins' `on-presence` hook).
    /// Set once after start, because the plugin runtime is built after presence.
    observer: OnceLock<Observer>,
}

impl Presence {
    pub fn new(
        store: Arc<dyn PresenceStore>,
        fanout: Arc<dyn Fanout>,
        limits: Limits,
        node: String,
        resume_grace: Duration,
    ) -> Self {
        Self {
            store,
            fanout,
            limits,
            node,
            resume_grace,
            local: Mutex::new(HashMap::new()),
            observer: OnceLock::new(),
        }
    }

    /// Registers the one observer of published events (later calls are ignored).
    pub fn observe(&self, f: Observer) {
        let _ = self.observer.set(f);
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn PresenceStore> {
        &self.store
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Held>>> {
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn held(&self, sid: &str, room: &str) -> Option<Held> {
        self.local()
            .get(sid)
            .and_then(|rooms| rooms.get(room))
            .cloned()
    }

    fn hold(&self, sid: &str, room: &str, held: Held) {
        self.local()
            .entry(sid.to_owned())
            .or_default()
            .insert(room.to_owned(), held);
    }

    fn forget(&self, sid: &str, room: &str) {
        let mut local = self.local();
        if let Some(rooms) = local.get_mut(sid) {
            rooms.remove(room);
            if rooms.is_empty() {
                local.remove(sid);
            }
        }
        drop(local);
        self.fanout.leave_local(sid, room);
    }

    /// The user a socket last joined as, for plugins ("user if known").
    pub fn user_of(&self, sid: &str) -> Option<String> {
        self.local()
            .get(sid)
            .and_then(|rooms| rooms.values().next().map(|h| h.user_id.clone()))
    }

    /// `presence:join`: resume when asked and possible, else join or re-join.
    pub async fn join(&self, sid: &str, v: &Value) -> Result<Outcome, PresenceError> {
        let req = JoinRequest::parse(v, &self.limits)?;
        if let Some(token) = &req.resume
            && let Some(outcome) = self.resume(sid, &req, &token.conn_id, token.epoch).await?
        {
            return Ok(outcome);
        }
        let mut events = Vec::new();
        for _ in 0..2 {
            let (conn_id, reserved) = self.reserve(sid, &req);
            let spec = JoinSpec {
                conn_id: &conn_id,
                room_id: &req.room_id,
                user_id: &req.user_id,
                state: req.state.as_ref(),
                owner: sid,
                node: &self.node,
            };
            let joined = match self.store.join(spec).await {
                Ok(j) => j,
                Err(e) => {
                    if reserved {
                        self.forget(sid, &req.room_id);
                    }
                    return Err(e.into());
                }
            };
            let Some(joined) = joined else {
                // Our old registration here was resumed by another socket: start a new one.
                self.local()
                    .get_mut(sid)
                    .map(|rooms| rooms.remove(&req.room_id));
                continue;
            };
            self.fanout.join_local(sid, &req.room_id);
            let reg = &joined.registration;
            let kind = if joined.created {
                EventKind::Join
            } else {
                EventKind::Update
            };
            events.push(PresenceEvent::of(kind, reg, true));
            return Ok(Outcome {
                ack: join_ack(reg, &joined.snapshot),
                events,
            });
        }
        Err(PresenceError::Store(error::StoreError::Malformed(
            "registration kept changing owner".into(),
        )))
    }

    /// The registration id this socket uses for the room, creating (and remembering) a
    /// fresh one if it has none; `true` when it was created now.
    fn reserve(&self, sid: &str, req: &JoinRequest) -> (String, bool) {
        let mut local = self.local();
        let rooms = local.entry(sid.to_owned()).or_default();
        if let Some(held) = rooms.get_mut(&req.room_id) {
            held.user_id.clone_from(&req.user_id);
            return (held.conn_id.clone(), false);
        }
        let conn_id = ids::new_conn_id();
        rooms.insert(
            req.room_id.clone(),
            Held {
                conn_id: conn_id.clone(),
                user_id: req.user_id.clone(),
            },
        );
        (conn_id, true)
    }

    async fn resume(
        &self,
        sid: &str,
        req: &JoinRequest,
        conn_id: &str,
        epoch: store::Epoch,
    ) -> Result<Option<Outcome>, PresenceError> {
        let spec = ResumeSpec {
            conn_id,
            room_id: &req.room_id,
            user_id: &req.user_id,
            epoch,
            state: req.state.as_ref(),
            owner: sid,
            node: &self.node,
        };
        let Some(resumed) = self.store.resume(spec).await? else {
            return Ok(None);
        };
        let mut events = Vec::new();
        // A different registration this socket held in the room is superseded.
        if let Some(prev) = self.held(sid, &req.room_id)
            && prev.conn_id != conn_id
            && let Ok(Some(old)) = self
                .store
                .remove(RemoveSpec {
                    conn_id: &prev.conn_id,
                    room_id: &req.room_id,
                    owner: sid,
                    epoch: None,
                })
                .await
        {
            events.push(PresenceEvent::of(EventKind::Leave, &old, false));
        }
        self.hold(
            sid,
            &req.room_id,
            Held {
                conn_id: conn_id.to_owned(),
                user_id: req.user_id.clone(),
            },
        );
        self.fanout.join_local(sid, &req.room_id);
        let reg = &resumed.registration;
        if resumed.state_changed {
            events.push(PresenceEvent::of(EventKind::Update, reg, true));
        }
        Ok(Some(Outcome {
            ack: join_ack(reg, &resumed.snapshot),
            events,
        }))
    }

    /// `presence:heartbeat`: refresh one room or all, optionally patching state.
    pub async fn heartbeat(&self, sid: &str, v: &Value) -> Result<Outcome, PresenceError> {
        let req = HeartbeatRequest::parse(v, &self.limits)?;
        let room = match (&req.room_id, &req.patch) {
            (Some(room), _) => Some(room.clone()),
            (None, Some(_)) => {
                let local = self.local();
                let rooms: Vec<&String> = local
                    .get(sid)
                    .map(|r| r.keys().collect())
                    .unwrap_or_default();
                match rooms.as_slice() {
                    [only] => Some((*only).clone()),
                    _ => {
                        return Err(PresenceError::InvalidPayload(
                            "roomId is required with patchState unless the socket is in exactly one room"
                                .into(),
                        ));
                    }
                }
            }
            (None, None) => None,
        };
        match room {
            Some(room) => self.heartbeat_room(sid, &room, &req).await,
            None => self.heartbeat_all(sid).await,
        }
    }

    async fn heartbeat_room(
        &self,
        sid: &str,
        room: &str,
        req: &HeartbeatRequest,
    ) -> Result<Outcome, PresenceError> {
        let held = self
            .held(sid, room)
            .ok_or_else(|| PresenceError::NotJoined(room.to_owned()))?;
        let touch = TouchSpec {
            conn_id: &held.conn_id,
            owner: sid,
        };
        let stale = |current| PresenceError::StaleEpoch {
            sent: req.epoch.unwrap_or(0),
            current,
        };
        let Some(patch) = &req.patch else {
            return match self.store.heartbeat(&[touch]).await?.first() {
                Some(Touch::Alive(epoch)) => Ok(Outcome {
                    ack: json!({ "ok": true, "epoch": epoch }),
                    events: Vec::new(),
                }),
                Some(Touch::Fenced(current)) => Err(stale(*current)),
                _ => {
                    self.forget(sid, room);
                    Err(PresenceError::NotJoined(room.to_owned()))
                }
            };
        };
        match self
            .store
            .patch(touch, req.epoch, patch, self.limits.max_state_bytes)
            .await?
        {
            Patched::Done(reg) => Ok(Outcome {
                ack: json!({ "ok": true, "epoch": reg.epoch }),
                events: vec![PresenceEvent::of(EventKind::Update, &reg, true)],
            }),
            Patched::Stale(current) => Err(stale(current)),
            Patched::TooLarge(size) => Err(PresenceError::PayloadTooLarge(format!(
                "merged state would be {size} bytes, the limit is {}",
                self.limits.max_state_bytes
            ))),
            Patched::Missing => {
                self.forget(sid, room);
                Err(PresenceError::NotJoined(room.to_owned()))
            }
        }
    }

    async fn heartbeat_all(&self, sid: &str) -> Result<Outcome, PresenceError> {
        let held: Vec<(String, Held)> = self
            .local()
            .get(sid)
            .map(|rooms| rooms.iter().map(|(r, h)| (r.clone(), h.clone())).collect())
            .unwrap_or_default();
        let specs: Vec<TouchSpec<'_>> = held
            .iter()
            .map(|(_, h)| TouchSpec {
                conn_id: &h.conn_id,
                owner: sid,
            })
            .collect();
        let touches = self.store.heartbeat(&specs).await?;
        let mut epochs = BTreeMap::new();
        for ((room, _), touch) in held.iter().zip(touches) {
            match touch {
                Touch::Alive(epoch) => {
                    epochs.insert(room.clone(), epoch);
                }
                Touch::Fenced(_) => {}
                Touch::Missing => self.forget(sid, room),
            }
        }
        Ok(Outcome {
            ack: json!({ "ok": true, "epochs": epochs }),
            events: Vec::new(),
        })
    }

    /// `presence:leave`: one room or all.
    pub async fn leave(&self, sid: &str, v: &Value) -> Result<Outcome, PresenceError> {
        let req = RoomRequest::parse_leave(v, &self.limits)?;
        let rooms: Vec<String> = match req.room_id {
            Some(room) => {
                if self.held(sid, &room).is_none() {
                    return Err(PresenceError::NotJoined(room));
                }
                vec![room]
            }
            None => self
                .local()
                .get(sid)
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default(),
        };
        let mut events = Vec::new();
        for room in rooms {
            events.extend(self.remove_held(sid, &room).await?);
        }
        Ok(Outcome {
            ack: json!({ "ok": true }),
            events,
        })
    }

    /// Removes this socket's registration in `room` from the store and from `local`.
    async fn remove_held(
        &self,
        sid: &str,
        room: &str,
    ) -> Result<Option<PresenceEvent>, PresenceError> {
        let Some(held) = self.held(sid, room) else {
            return Ok(None);
        };
        let removed = self
            .store
            .remove(RemoveSpec {
                conn_id: &held.conn_id,
                room_id: room,
                owner: sid,
                epoch: None,
            })
            .await?;
        self.forget(sid, room);
        Ok(removed.map(|reg| PresenceEvent::of(EventKind::Leave, &reg, false)))
    }

    /// `presence:snapshot`: the room without joining it.
    pub async fn snapshot(&self, v: &Value) -> Result<Outcome, PresenceError> {
        let room = RoomRequest::parse_snapshot(v, &self.limits)?;
        let members = self.store.snapshot(&room).await?;
        Ok(Outcome {
            ack: json!({ "ok": true, "snapshot": members }),
            events: Vec::new(),
        })
    }

    /// A socket went away: remove its registrations now, or after the resume grace
    /// (then announced as `expire`, unless a new socket resumed them meanwhile).
    pub async fn disconnect(self: &Arc<Self>, sid: &str) {
        let Some(rooms) = self.local().remove(sid) else {
            return;
        };
        if self.resume_grace.is_zero() {
            self.remove_rooms(sid, rooms, EventKind::Leave).await;
            return;
        }
        let this = Arc::clone(self);
        let sid = sid.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(this.resume_grace).await;
            this.remove_rooms(&sid, rooms, EventKind::Expire).await;
        });
    }

    async fn remove_rooms(&self, sid: &str, rooms: HashMap<String, Held>, kind: EventKind) {
        let mut events = Vec::new();
        for (room, held) in rooms {
            let spec = RemoveSpec {
                conn_id: &held.conn_id,
                room_id: &room,
                owner: sid,
                epoch: None,
            };
            match self.store.remove(spec).await {
                Ok(Some(reg)) => events.push(PresenceEvent::of(kind, &reg, false)),
                Ok(None) => {}
                Err(e) => {
                    // The registration stays until its TTL lapses; the reaper announces it.
                    tracing::warn!(sid, room, error = %e, "could not remove registration; the reaper will expire it");
                }
            }
        }
        self.publish(events).await;
    }

    /// Graceful stop: remove every registration this node holds and announce the leaves.
    pub async fn shutdown(&self) {
        let all: Vec<(String, HashMap<String, Held>)> = self.local().drain().collect();
        let count: usize = all.iter().map(|(_, r)| r.len()).sum();
        tracing::info!(registrations = count, "removing this node's registrations");
        for (sid, rooms) in all {
            self.remove_rooms(&sid, rooms, EventKind::Leave).await;
        }
    }

    /// Broadcasts events to their rooms on every node.
    pub async fn publish(&self, events: Vec<PresenceEvent>) {
        for ev in events {
            let Some(raw) = ev.to_raw() else { continue };
            if let Some(observer) = self.observer.get() {
                observer(raw.get());
            }
            if let Err(e) = self
                .fanout
                .to_room(&ev.room_id, None, event::EVENT_NAME, &raw)
                .await
            {
                tracing::warn!(room = %ev.room_id, error = %e, "presence event not delivered");
            }
        }
    }
}

fn join_ack(reg: &Registration, snapshot: &[Registration]) -> Value {
    json!({
        "ok": true,
        "self": { "connId": reg.conn_id, "epoch": reg.epoch },
        "snapshot": snapshot,
    })
}

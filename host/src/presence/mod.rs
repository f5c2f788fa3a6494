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
pub mod layout;
pub mod memory;
pub mod reaper;
pub mod redis;
pub mod request;
pub mod roster;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fanout::{Fanout, FanoutError, conn_room, user_room};
use error::PresenceError;
use event::{Cause, EventKind, PresenceEvent};
use request::{HeartbeatRequest, JoinRequest, Limits, RoomRequest};
use store::{
    JoinSpec, Patched, PresenceStore, Registration, RemoveSpec, ResumeSpec, Touch, TouchSpec,
};

/// Called with each published `presence:event` (its JSON).
pub type Observer = Box<dyn Fn(&str) + Send + Sync>;

/// Called with each change this node made, before it is broadcast (the webhooks).
pub type ChangeObserver = Box<dyn Fn(&PresenceEvent) + Send + Sync>;

/// What a local socket holds in one room.
#[derive(Debug, Clone)]
struct Held {
    conn_id: String,
    user_id: String,
    /// When this room was last joined or resumed (a node-wide sequence number): the
    /// socket's user for plugins is the one of its latest join.
    joined: u64,
}

/// A request's answer plus the events it caused; the caller acks first, then publishes,
/// so ack latency does not include the cross-node broadcast.
#[derive(Debug)]
pub struct Outcome {
    pub ack: Value,
    pub events: Vec<PresenceEvent>,
}

/// What the tenant allows one join: quotas, and the `info` its token carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinGate<'a> {
    pub info: Option<&'a serde_json::Map<String, Value>>,
    /// Rooms a socket may hold at once (0: no limit).
    pub rooms_per_socket: u32,
    /// Registrations a room may hold (0: no limit).
    pub members_per_room: u64,
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
    /// Told about every change, with its cause and occupancy moves (webhooks).
    changes: OnceLock<ChangeObserver>,
    /// Hands out [`Held::joined`].
    joins: AtomicU64,
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
            changes: OnceLock::new(),
            joins: AtomicU64::new(0),
        }
    }

    /// Registers the one observer of published events (later calls are ignored).
    pub fn observe(&self, f: Observer) {
        let _ = self.observer.set(f);
    }

    /// Registers the one observer of changes (later calls are ignored).
    pub fn observe_changes(&self, f: ChangeObserver) {
        let _ = self.changes.set(f);
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
        let mut held = None;
        if let Some(rooms) = local.get_mut(sid) {
            held = rooms.remove(room);
            if rooms.is_empty() {
                local.remove(sid);
            }
        }
        drop(local);
        self.fanout.leave_local(sid, room);
        if let Some(held) = held {
            self.fanout.leave_local(sid, &conn_room(&held.conn_id));
        }
    }

    /// Puts the socket in the Socket.IO rooms of a registration it now holds: the
    /// presence room, the registration's own and its user's (the Server API addresses
    /// both).
    fn enter(&self, sid: &str, room: &str, conn_id: &str, user: &str) {
        self.fanout.join_local(sid, room);
        self.fanout.join_local(sid, &conn_room(conn_id));
        self.fanout.join_local(sid, &user_room(user));
    }

    fn next_join(&self) -> u64 {
        self.joins.fetch_add(1, Ordering::Relaxed)
    }

    /// The user a socket last joined as, for plugins ("user if known"): the `userId` of
    /// its most recent `presence:join` (or resume) among the rooms it still holds, so a
    /// socket that joined two rooms as two users is the second one until it leaves that
    /// room. `None` before any join.
    pub fn user_of(&self, sid: &str) -> Option<String> {
        self.local().get(sid).and_then(|rooms| {
            rooms
                .values()
                .max_by_key(|h| h.joined)
                .map(|h| h.user_id.clone())
        })
    }

    /// `presence:join`: resume when asked and possible, else join or re-join.
    pub async fn join(
        &self,
        sid: &str,
        v: &Value,
        gate: JoinGate<'_>,
    ) -> Result<Outcome, PresenceError> {
        let req = JoinRequest::parse(v, &self.limits)?;
        self.check_room_quota(sid, &req.room_id, gate.rooms_per_socket)?;
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
                info: gate.info,
                max_members: gate.members_per_room,
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
            let mut joined = match joined {
                Ok(joined) => joined,
                Err(store::JoinRefusal::Owned) => {
                    // Our old registration here was resumed by another socket: start anew.
                    self.local()
                        .get_mut(sid)
                        .map(|rooms| rooms.remove(&req.room_id));
                    continue;
                }
                Err(store::JoinRefusal::Full) => {
                    if reserved {
                        self.forget(sid, &req.room_id);
                    }
                    return Err(PresenceError::QuotaExceeded(format!(
                        "room {} holds its limit of {} members",
                        req.room_id, gate.members_per_room
                    )));
                }
            };
            if !reserved {
                self.rejoined(sid, &req);
            }
            self.enter(sid, &req.room_id, &conn_id, &req.user_id);
            let reg = &joined.registration;
            let kind = if joined.created {
                EventKind::Join
            } else {
                EventKind::Update
            };
            let moves = std::mem::take(&mut joined.transitions);
            events.push(PresenceEvent::of(kind, reg, true).moving(moves));
            return Ok(Outcome {
                ack: join_ack(reg, &joined.snapshot),
                events,
            });
        }
        Err(PresenceError::Store(error::StoreError::Malformed(
            "registration kept changing owner".into(),
        )))
    }

    /// Refuses a join of a room the socket does not hold yet when it holds `max` already.
    fn check_room_quota(&self, sid: &str, room: &str, max: u32) -> Result<(), PresenceError> {
        if max == 0 {
            return Ok(());
        }
        let local = self.local();
        let rooms = local.get(sid);
        let held = rooms.map_or(0, HashMap::len);
        if rooms.is_some_and(|r| r.contains_key(room)) || held < max as usize {
            return Ok(());
        }
        Err(PresenceError::QuotaExceeded(format!(
            "this socket holds its limit of {max} rooms"
        )))
    }

    /// The registration id this socket uses for the room, creating (and remembering) a
    /// fresh one if it has none; `true` when it was created now. A re-join's new user is
    /// recorded only once the store took it ([`Self::rejoined`]): heartbeats address the
    /// by-last-seen index by the user the store holds.
    fn reserve(&self, sid: &str, req: &JoinRequest) -> (String, bool) {
        let mut local = self.local();
        let rooms = local.entry(sid.to_owned()).or_default();
        let joined = self.next_join();
        if let Some(held) = rooms.get(&req.room_id) {
            return (held.conn_id.clone(), false);
        }
        let conn_id = ids::new_conn_id();
        rooms.insert(
            req.room_id.clone(),
            Held {
                conn_id: conn_id.clone(),
                user_id: req.user_id.clone(),
                joined,
            },
        );
        (conn_id, true)
    }

    /// Records a successful re-join: its user, and that it is the socket's latest join.
    fn rejoined(&self, sid: &str, req: &JoinRequest) {
        let joined = self.next_join();
        if let Some(held) = self
            .local()
            .get_mut(sid)
            .and_then(|rooms| rooms.get_mut(&req.room_id))
        {
            held.user_id.clone_from(&req.user_id);
            held.joined = joined;
        }
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
        let Some(mut resumed) = self.store.resume(spec).await? else {
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
            events.push(
                PresenceEvent::ended(EventKind::Leave, &old.registration, Cause::Leave)
                    .moving(old.transitions),
            );
        }
        self.hold(
            sid,
            &req.room_id,
            Held {
                conn_id: conn_id.to_owned(),
                user_id: req.user_id.clone(),
                joined: self.next_join(),
            },
        );
        self.enter(sid, &req.room_id, conn_id, &req.user_id);
        let reg = &resumed.registration;
        let moves = std::mem::take(&mut resumed.transitions);
        if resumed.state_changed || !moves.is_empty() {
            let mut update = PresenceEvent::of(EventKind::Update, reg, true).moving(moves);
            update.announce = resumed.state_changed;
            events.push(update);
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
            Some(room) => {
                let (epoch, events) = self.heartbeat_room(sid, &room, &req).await?;
                // PROTOCOL.md: without `roomId` the ack is `epochs` by room, also when
                // the patch went to the socket's only room.
                let ack = if req.room_id.is_some() {
                    json!({ "ok": true, "epoch": epoch })
                } else {
                    json!({ "ok": true, "epochs": { room: epoch } })
                };
                Ok(Outcome { ack, events })
            }
            None => self.heartbeat_all(sid).await,
        }
    }

    /// Refreshes (and patches) one room; the registration's epoch and the events caused.
    async fn heartbeat_room(
        &self,
        sid: &str,
        room: &str,
        req: &HeartbeatRequest,
    ) -> Result<(store::Epoch, Vec<PresenceEvent>), PresenceError> {
        let held = self
            .held(sid, room)
            .ok_or_else(|| PresenceError::NotJoined(room.to_owned()))?;
        let touch = TouchSpec {
            conn_id: &held.conn_id,
            room_id: room,
            user_id: &held.user_id,
            owner: sid,
        };
        let stale = |current| PresenceError::StaleEpoch {
            sent: req.epoch.unwrap_or(0),
            current,
        };
        let Some(patch) = &req.patch else {
            return match self.store.heartbeat(&[touch]).await?.first() {
                Some(Touch::Alive(epoch)) => Ok((*epoch, Vec::new())),
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
            Patched::Done(reg) => Ok((
                reg.epoch,
                vec![PresenceEvent::of(EventKind::Update, &reg, true)],
            )),
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
            .map(|(room, h)| TouchSpec {
                conn_id: &h.conn_id,
                room_id: room,
                user_id: &h.user_id,
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
        Ok(removed.map(|r| {
            PresenceEvent::ended(EventKind::Leave, &r.registration, Cause::Leave)
                .moving(r.transitions)
        }))
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
                Ok(Some(r)) => events.push(
                    PresenceEvent::ended(kind, &r.registration, Cause::Disconnect)
                        .moving(r.transitions),
                ),
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
            if let Some(changes) = self.changes.get() {
                changes(&ev);
            }
            if !ev.announce {
                continue;
            }
            let Some(raw) = ev.to_raw() else { continue };
            if let Some(observer) = self.observer.get() {
                observer(raw.get());
            }
            let sent = self
                .fanout
                .to_room(&ev.room_id, None, event::EVENT_NAME, &raw)
                .await;
            match sent {
                Ok(()) => {}
                // The change is committed, so this node's sockets get it regardless; a
                // publish that timed out may still reach the other nodes once Redis
                // reads it, one that never left is theirs to miss.
                Err(FanoutError::Remote(e)) => {
                    tracing::warn!(room = %ev.room_id, error = %e, "presence event delivered on this node only: publishing to the others failed");
                    let local = self
                        .fanout
                        .to_room_local(&ev.room_id, event::EVENT_NAME, &raw)
                        .await;
                    if let Err(e) = local {
                        tracing::warn!(room = %ev.room_id, error = %e, "presence event not delivered");
                    }
                }
                Err(e) => {
                    tracing::warn!(room = %ev.room_id, error = %e, "presence event not delivered");
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    use error::StoreError;
    use serde_json::value::RawValue;
    use std::sync::atomic::AtomicBool;

    /// A node with no sockets: emits go nowhere, local joins succeed. `unpublishable`:
    /// publishing to the other nodes fails (Redis unreachable); `local` counts what it
    /// delivers to its own sockets instead.
    #[derive(Default)]
    struct Silent {
        unpublishable: bool,
        local: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Fanout for Silent {
        async fn to_room(
            &self,
            _: &str,
            _: Option<&str>,
            _: &str,
            _: &RawValue,
        ) -> Result<(), FanoutError> {
            if self.unpublishable {
                return Err(FanoutError::Remote(
                    "Timeout Error: Request timed out.".into(),
                ));
            }
            Ok(())
        }
        async fn to_room_local(&self, _: &str, _: &str, _: &RawValue) -> Result<(), FanoutError> {
            self.local.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn to_socket(&self, _: &str, _: &str, _: &RawValue) -> Result<(), FanoutError> {
            Ok(())
        }
        async fn to_all(&self, _: &str, _: &RawValue) -> Result<(), FanoutError> {
            Ok(())
        }
        fn join_local(&self, _: &str, _: &str) -> bool {
            true
        }
        fn leave_local(&self, _: &str, _: &str) {}
        fn in_room_local(&self, _: &str, _: &str) -> bool {
            false
        }
        async fn members(&self, _: &str) -> Result<Vec<String>, FanoutError> {
            Ok(Vec::new())
        }
        async fn to_room_except_room(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &RawValue,
        ) -> Result<(), FanoutError> {
            Ok(())
        }
        async fn disconnect_room(&self, _: &str) -> Result<(), FanoutError> {
            Ok(())
        }
    }

    fn presence() -> Presence {
        presence_on(Arc::new(memory::MemoryStore::new(60_000)))
    }

    fn presence_on(store: Arc<dyn PresenceStore>) -> Presence {
        let limits = Limits {
            max_id_len: 128,
            max_state_bytes: 4096,
        };
        Presence::new(
            store,
            Arc::new(Silent::default()),
            limits,
            "n".into(),
            Duration::ZERO,
        )
    }

    /// The memory store, with joins that fail (`unavailable`) while `down` is set.
    struct FlakyJoins {
        inner: memory::MemoryStore,
        down: AtomicBool,
    }

    #[async_trait::async_trait]
    impl PresenceStore for FlakyJoins {
        async fn join(&self, spec: JoinSpec<'_>) -> Result<store::JoinReply, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            self.inner.join(spec).await
        }
        async fn resume(&self, spec: ResumeSpec<'_>) -> Result<Option<store::Resumed>, StoreError> {
            self.inner.resume(spec).await
        }
        async fn heartbeat(&self, specs: &[TouchSpec<'_>]) -> Result<Vec<Touch>, StoreError> {
            self.inner.heartbeat(specs).await
        }
        async fn patch(
            &self,
            touch: TouchSpec<'_>,
            epoch: Option<store::Epoch>,
            patch: &serde_json::Map<String, Value>,
            max_state_bytes: usize,
        ) -> Result<Patched, StoreError> {
            self.inner.patch(touch, epoch, patch, max_state_bytes).await
        }
        async fn remove(&self, spec: RemoveSpec<'_>) -> Result<Option<store::Removed>, StoreError> {
            self.inner.remove(spec).await
        }
        async fn snapshot(&self, room_id: &str) -> Result<Vec<Registration>, StoreError> {
            self.inner.snapshot(room_id).await
        }
        async fn reap(
            &self,
            lookback_ms: u64,
            limit: usize,
        ) -> Result<Vec<store::Reaped>, StoreError> {
            self.inner.reap(lookback_ms, limit).await
        }
        async fn ping(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn a_failed_rejoin_keeps_the_user_the_store_holds() {
        let store = Arc::new(FlakyJoins {
            inner: memory::MemoryStore::new(60_000),
            down: AtomicBool::new(false),
        });
        let p = presence_on(store.clone());
        join(&p, "r", "alice").await;
        store.down.store(true, Ordering::SeqCst);
        let failed = p
            .join(
                "s",
                &json!({ "roomId": "r", "userId": "bob" }),
                JoinGate::default(),
            )
            .await;
        assert!(failed.is_err(), "the store refused the re-join");
        // Heartbeats address the registration by this user: it must stay the stored one.
        assert_eq!(p.user_of("s").as_deref(), Some("alice"));
        store.down.store(false, Ordering::SeqCst);
        join(&p, "r", "bob").await;
        assert_eq!(p.user_of("s").as_deref(), Some("bob"));
    }

    /// The soak found committed changes whose broadcast vanished: the adapter publishes
    /// before it delivers locally, so a publish that timed out left even the node's own
    /// sockets without the event.
    #[tokio::test]
    async fn a_committed_change_whose_publish_fails_still_reaches_this_nodes_sockets() {
        let fanout = Arc::new(Silent {
            unpublishable: true,
            ..Silent::default()
        });
        let limits = Limits {
            max_id_len: 128,
            max_state_bytes: 4096,
        };
        let store = Arc::new(memory::MemoryStore::new(60_000));
        let p = Presence::new(store, fanout.clone(), limits, "n".into(), Duration::ZERO);
        let joined = p
            .join(
                "s",
                &json!({ "roomId": "r", "userId": "alice" }),
                JoinGate::default(),
            )
            .await
            .expect("join");
        assert_eq!(joined.events.len(), 1, "a join is one event");
        p.publish(joined.events).await;
        assert_eq!(
            fanout.local.load(Ordering::SeqCst),
            1,
            "delivered on this node"
        );
    }

    async fn join(p: &Presence, room: &str, user: &str) {
        p.join(
            "s",
            &json!({ "roomId": room, "userId": user }),
            JoinGate::default(),
        )
        .await
        .expect("join");
    }

    #[tokio::test]
    async fn user_of_is_the_latest_join_among_the_rooms_still_held() {
        let p = presence();
        assert_eq!(p.user_of("s"), None);
        // Eight rooms as eight users: with "any entry of the map" this passes by luck
        // with odds of about 1 in 8! (the order of a HashMap is random per process).
        for i in 0..8 {
            join(&p, &format!("r{i}"), &format!("u{i}")).await;
            assert_eq!(p.user_of("s"), Some(format!("u{i}")), "after joining r{i}");
        }
        join(&p, "r2", "again").await;
        assert_eq!(
            p.user_of("s").as_deref(),
            Some("again"),
            "a re-join is a join"
        );
        p.leave("s", &json!({ "roomId": "r2" }))
            .await
            .expect("leave");
        assert_eq!(p.user_of("s").as_deref(), Some("u7"), "latest of the rest");
        p.leave("s", &Value::Null).await.expect("leave all");
        assert_eq!(p.user_of("s"), None);
    }

    #[tokio::test]
    async fn heartbeat_without_room_acks_epochs_by_room_also_with_a_patch() {
        let p = presence();
        join(&p, "only", "u").await;
        let plain = p.heartbeat("s", &Value::Null).await.expect("heartbeat");
        assert_eq!(plain.ack, json!({ "ok": true, "epochs": { "only": 1 } }));
        let patched = p
            .heartbeat("s", &json!({ "patchState": { "n": 1 } }))
            .await
            .expect("patch");
        assert_eq!(patched.ack, json!({ "ok": true, "epochs": { "only": 2 } }));
        let named = p
            .heartbeat("s", &json!({ "roomId": "only", "patchState": { "n": 2 } }))
            .await
            .expect("patch one room");
        assert_eq!(named.ack, json!({ "ok": true, "epoch": 3 }));
    }
}

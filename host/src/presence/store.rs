//! The seam between the presence service and where registrations live: the
//! `PresenceStore` trait and the types both implementations (memory, Redis) share.
//! Every method is one atomic step on the backend, so a crash between two calls never
//! leaves an index pointing at nothing.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value};

use super::error::StoreError;

/// A registration's version: bumped by every state change (join, patch, resume) and
/// compared by every write so an older writer is refused.
pub type Epoch = u64;

/// One socket's membership in one room, as stored (and as clients and the Server API
/// see it: the skipped fields stay inside the host).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub conn_id: String,
    pub user_id: String,
    #[schema(value_type = Object)]
    pub state: Map<String, Value>,
    pub epoch: Epoch,
    pub last_seen: i64,
    /// What the socket's token says about its user (the `info` claim), shown to others.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub info: Option<Map<String, Value>>,
    #[serde(skip)]
    pub room_id: String,
    /// Socket id that owns the registration; writes from any other socket are fenced.
    #[serde(skip)]
    pub owner: String,
    /// Node the owning socket is connected to.
    #[serde(skip)]
    pub node: String,
}

/// A join or re-join of `conn_id` by the socket `owner`.
#[derive(Debug, Clone)]
pub struct JoinSpec<'a> {
    pub conn_id: &'a str,
    pub room_id: &'a str,
    pub user_id: &'a str,
    /// `Some` replaces the state; `None` keeps it on a re-join and starts empty on a join.
    pub state: Option<&'a Map<String, Value>>,
    pub owner: &'a str,
    pub node: &'a str,
    /// The token's `info` claim, stored with the registration (`None` clears it).
    pub info: Option<&'a Map<String, Value>>,
    /// A new registration is refused when the room already holds this many (0: no limit).
    pub max_members: u64,
}

/// Why a join changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    /// The registration exists and another socket owns it (it was resumed elsewhere).
    Owned,
    /// The room holds `max_members` registrations already.
    Full,
}

/// What one join did.
pub type JoinReply = Result<Joined, JoinRefusal>;

/// A takeover of an existing registration by a reconnected client.
#[derive(Debug, Clone)]
pub struct ResumeSpec<'a> {
    pub conn_id: &'a str,
    pub room_id: &'a str,
    pub user_id: &'a str,
    /// The epoch the client last saw; the stored one must not be newer.
    pub epoch: Epoch,
    pub state: Option<&'a Map<String, Value>>,
    pub owner: &'a str,
    pub node: &'a str,
}

/// A move of a room's occupancy that one store step made: kept in the same atomic step
/// as the change itself, so across every node exactly one caller sees each one (they
/// become the `room_*` and `user_*` webhooks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The room had no registration before this one.
    RoomOccupied,
    /// The user's first registration in the room (their first tab).
    UserJoined(String),
    /// The user's last registration in the room is gone.
    UserLeft(String),
    /// The room's last registration is gone.
    RoomVacated,
}

/// Result of a join: the registration and the room as it is now, caller included.
#[derive(Debug, Clone)]
pub struct Joined {
    /// False when the registration already existed (a re-join).
    pub created: bool,
    pub registration: Registration,
    pub snapshot: Vec<Registration>,
    /// What the join did to the room's occupancy (a re-join as another user can end the
    /// old user's presence and start the new one's).
    pub transitions: Vec<Transition>,
}

/// Result of a resume that found its registration.
#[derive(Debug, Clone)]
pub struct Resumed {
    pub registration: Registration,
    pub state_changed: bool,
    pub snapshot: Vec<Registration>,
    pub transitions: Vec<Transition>,
}

/// A registration a `remove` took out, and what that did to the room's occupancy.
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    pub registration: Registration,
    pub transitions: Vec<Transition>,
}

/// What a heartbeat found for one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Touch {
    /// Refreshed; its epoch.
    Alive(Epoch),
    /// Taken over by another socket; the current epoch.
    Fenced(Epoch),
    /// Gone (expired, reaped or left).
    Missing,
}

/// What a state patch did.
#[derive(Debug, Clone, PartialEq)]
pub enum Patched {
    Done(Registration),
    /// Refused: the sent epoch is older, or another socket owns the registration.
    Stale(Epoch),
    Missing,
    /// Refused: the merged state would serialize to this many bytes.
    TooLarge(usize),
}

/// A heartbeat request for one registration. Room and user are the caller's copy of what
/// the registration holds (its owner is its only writer), so a store can address the
/// by-last-seen index without reading the registration first.
#[derive(Debug, Clone, Copy)]
pub struct TouchSpec<'a> {
    pub conn_id: &'a str,
    pub room_id: &'a str,
    pub user_id: &'a str,
    pub owner: &'a str,
}

/// A removal request: by the owner, optionally only if the epoch is still `epoch`.
#[derive(Debug, Clone, Copy)]
pub struct RemoveSpec<'a> {
    pub conn_id: &'a str,
    pub room_id: &'a str,
    pub owner: &'a str,
    pub epoch: Option<Epoch>,
}

/// A registration the reaper removed; `state` is empty when the hash had already expired.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaped {
    pub conn_id: String,
    pub room_id: String,
    pub user_id: String,
    pub epoch: Option<Epoch>,
    pub state: Option<Map<String, Value>>,
    pub transitions: Vec<Transition>,
    /// False for an index entry of a registration that was since re-joined as another
    /// user: nothing left (no `expire` to announce), but its user's count moved.
    pub announce: bool,
}

/// Where registrations live. Implementations: [`super::memory::MemoryStore`] (one node)
/// and [`super::redis::RedisStore`] (many nodes).
#[async_trait]
pub trait PresenceStore: Send + Sync + 'static {
    /// Creates or re-joins a registration (epoch 1, or stored + 1) and returns the room.
    /// A registration owned by another socket is never overwritten (`Owned`), and a room
    /// at `max_members` takes no new one (`Full`).
    async fn join(&self, spec: JoinSpec<'_>) -> Result<JoinReply, StoreError>;

    /// Several joins (of different sockets) as one step, results in order. A store that
    /// has a cheaper batched form overrides it; the snapshot of a room may then already
    /// hold the other registrations of the batch.
    async fn join_batch(&self, specs: &[JoinSpec<'_>]) -> Result<Vec<JoinReply>, StoreError> {
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            out.push(self.join(spec.clone()).await?);
        }
        Ok(out)
    }

    /// Takes a registration over for a new socket when it exists with the same room and
    /// user and a stored epoch not newer than the sent one; `None` otherwise.
    async fn resume(&self, spec: ResumeSpec<'_>) -> Result<Option<Resumed>, StoreError>;

    /// Refreshes TTL and `lastSeen` of each registration its owner still holds.
    async fn heartbeat(&self, specs: &[TouchSpec<'_>]) -> Result<Vec<Touch>, StoreError>;

    /// Shallow-merges `patch` into the state under an epoch compare-and-set.
    async fn patch(
        &self,
        touch: TouchSpec<'_>,
        epoch: Option<Epoch>,
        patch: &Map<String, Value>,
        max_state_bytes: usize,
    ) -> Result<Patched, StoreError>;

    /// Removes a registration if `owner` holds it (and the epoch matches, when given).
    async fn remove(&self, spec: RemoveSpec<'_>) -> Result<Option<Removed>, StoreError>;

    /// Every live registration in a room, on every node.
    async fn snapshot(&self, room_id: &str) -> Result<Vec<Registration>, StoreError>;

    /// Removes up to `limit` registrations whose TTL lapsed or whose `lastSeen` is older
    /// than `lookback_ms`; each is returned to exactly one caller cluster-wide.
    async fn reap(&self, lookback_ms: u64, limit: usize) -> Result<Vec<Reaped>, StoreError>;

    /// True when the backend answers.
    async fn ping(&self) -> bool;
}

/// Serialized size of a state object as the client will see it.
pub fn state_size(state: &Map<String, Value>) -> usize {
    serde_json::to_string(state).map_or(usize::MAX, |s| s.len())
}

//! The Redis store for multi-node deployments. Each operation is one Lua script from
//! `lua/`, loaded once at start and called by hash (reloaded on `NOSCRIPT`, e.g. after a
//! Redis restart), so every multi-key change is atomic and costs one round trip.

use std::sync::Arc;

use async_trait::async_trait;
use fred::clients::Pool;
use fred::prelude::*;
use fred::types::scripts::Script;
use serde_json::{Map, Value as Json};

use super::error::StoreError;
use super::layout::Layout;
use super::roster::{ROSTER_ATTEMPTS, Rosters};
use super::store::*;

macro_rules! script {
    ($file:literal) => {
        Script::from_lua(concat!(
            include_str!("lua/prelude.lua"),
            include_str!($file)
        ))
    };
}

/// One [`Script`] per atomic step.
struct Scripts {
    join_batch: Script,
    resume: Script,
    patch: Script,
    remove: Script,
    snapshot: Script,
    reap_candidates: Script,
    reap: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            join_batch: script!("lua/join_batch.lua"),
            resume: script!("lua/resume.lua"),
            patch: script!("lua/patch.lua"),
            remove: script!("lua/remove.lua"),
            snapshot: script!("lua/snapshot.lua"),
            reap_candidates: script!("lua/reap_candidates.lua"),
            reap: script!("lua/reap.lua"),
        }
    }

    fn all(&self) -> [&Script; 7] {
        [
            &self.join_batch,
            &self.resume,
            &self.patch,
            &self.remove,
            &self.snapshot,
            &self.reap_candidates,
            &self.reap,
        ]
    }
}

/// [`PresenceStore`] on Redis; the layout is in PROTOCOL.md and `lua/prelude.lua`.
pub struct RedisStore {
    pool: Pool,
    layout: Layout,
    ttl_ms: String,
    scripts: Scripts,
    touches: Touches,
    rosters: Rosters,
}

impl RedisStore {
    /// Builds the store on the flat layout under `prefix` and loads its scripts (so the
    /// first request does not pay for it).
    pub async fn new(pool: Pool, prefix: &str, ttl_ms: u64) -> Result<Self, StoreError> {
        Self::with_layout(pool, Layout::flat(prefix), ttl_ms).await
    }

    /// Builds the store on `layout` (a tenant's: [`Layout::tagged`]).
    pub async fn with_layout(pool: Pool, layout: Layout, ttl_ms: u64) -> Result<Self, StoreError> {
        let store = Self {
            layout,
            ttl_ms: ttl_ms.to_string(),
            touches: Touches::new(pool.clone(), ttl_ms),
            pool,
            scripts: Scripts::new(),
            rosters: Rosters::default(),
        };
        for script in store.scripts.all() {
            script.load(store.pool.next()).await.map_err(store_error)?;
        }
        store
            .touches
            .script
            .load(store.pool.next())
            .await
            .map_err(store_error)?;
        Ok(store)
    }

    fn conn_key(&self, room: &str, id: &str) -> String {
        self.layout.conn(room, id)
    }

    fn room_key(&self, room: &str) -> String {
        self.layout.room(room)
    }

    fn seen_key(&self, room: &str) -> String {
        self.layout.seen(room)
    }

    fn users_key(&self, room: &str) -> String {
        self.layout.users(room)
    }

    /// Declares the hash of every member `room`'s roster names (module `roster`).
    fn push_member_keys(&self, room: &str, keys: &mut Vec<String>) {
        for id in self.rosters.ids(&self.room_key(room)) {
            keys.push(self.conn_key(room, &id));
        }
    }

    /// Remembers the ids a script read from `room`'s index.
    fn remember(&self, room: &str, ids: Vec<String>) {
        self.rosters.set(self.room_key(room), ids);
    }

    /// The registration's entry in the by-last-seen index (see `lua/prelude.lua`).
    fn seen_member(conn_id: &str, room_id: &str, user_id: &str) -> String {
        format!("{conn_id} {room_id} {user_id}")
    }

    async fn call(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<Value, StoreError> {
        script
            .evalsha_with_reload::<Value, _, _>(self.pool.next(), keys, args)
            .await
            .map_err(store_error)
    }
}

/// Groups of indices into `items` whose keys share a Redis Cluster hash slot, in order
/// of first appearance: one script call may only touch keys of one slot. On a single
/// Redis everything is one group.
fn by_slot<T>(cluster: bool, items: &[T], key: impl Fn(&T) -> String) -> Vec<Vec<usize>> {
    if !cluster {
        return vec![(0..items.len()).collect()];
    }
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let slot = fred::util::redis_keyslot(key(item).as_bytes());
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push(i),
            None => groups.push((slot, vec![i])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// Runs `call` once per slot group of `items` (concurrently) and puts the results back
/// in the order of `items`.
async fn per_slot<T, R, F, Fut>(
    cluster: bool,
    items: &[T],
    key: impl Fn(&T) -> String,
    call: F,
) -> Result<Vec<R>, StoreError>
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<R>, StoreError>>,
{
    let groups = by_slot(cluster, items, key);
    if groups.len() == 1 {
        return call(items.to_vec()).await;
    }
    let replies = futures::future::try_join_all(
        groups
            .iter()
            .map(|g| call(g.iter().map(|&i| items[i].clone()).collect())),
    )
    .await?;
    let mut out: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (group, results) in groups.iter().zip(replies) {
        if results.len() != group.len() {
            return Err(malformed("reply length of a slot group"));
        }
        for (&i, r) in group.iter().zip(results) {
            out[i] = Some(r);
        }
    }
    out.into_iter()
        .map(|r| r.ok_or_else(|| malformed("a slot group left an item unanswered")))
        .collect()
}

/// Timeouts, I/O and cancellation mean Redis is away; anything else is a reply we cannot use.
fn store_error(e: Error) -> StoreError {
    match e.kind() {
        ErrorKind::Timeout | ErrorKind::IO | ErrorKind::Canceled | ErrorKind::Backpressure => {
            StoreError::Unavailable(e.to_string())
        }
        _ if e.details().starts_with("LOADING") || e.details().contains("connection") => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Malformed(e.to_string()),
    }
}

/// Encodes a state object as `s:<json key>` / `<json value>` hash field pairs.
fn state_pairs(state: &Map<String, Json>, out: &mut Vec<String>) {
    for (k, v) in state {
        out.push(format!("s:{}", Json::String(k.clone())));
        out.push(v.to_string());
    }
}

fn malformed(what: &str) -> StoreError {
    StoreError::Malformed(what.to_owned())
}

fn items(v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        _ => Err(malformed("expected an array")),
    }
}

fn int(v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Integer(i) => Ok(*i),
        other => other
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| malformed("expected an integer")),
    }
}

fn text(v: &Value) -> Result<String, StoreError> {
    v.as_str()
        .map(|s| s.into_owned())
        .ok_or_else(|| malformed("expected a string"))
}

/// Parses an `HGETALL` reply into a registration.
fn registration(v: Value) -> Result<Registration, StoreError> {
    let flat = items(v)?;
    let mut reg = Registration {
        conn_id: String::new(),
        room_id: String::new(),
        user_id: String::new(),
        state: Map::new(),
        epoch: 0,
        last_seen: 0,
        info: None,
        owner: String::new(),
        node: String::new(),
    };
    for pair in flat.chunks(2) {
        let [field, value] = pair else {
            return Err(malformed("odd hash reply"));
        };
        let field = text(field)?;
        match field.as_str() {
            "id" => reg.conn_id = text(value)?,
            "room" => reg.room_id = text(value)?,
            "user" => reg.user_id = text(value)?,
            "owner" => reg.owner = text(value)?,
            "node" => reg.node = text(value)?,
            "epoch" => reg.epoch = u64::try_from(int(value)?).map_err(|_| malformed("epoch"))?,
            "seen" => reg.last_seen = int(value)?,
            "info" => {
                reg.info = match serde_json::from_str(&text(value)?) {
                    Ok(Json::Object(m)) => Some(m),
                    _ => return Err(malformed("info")),
                }
            }
            f if f.starts_with("s:") => {
                let key: String =
                    serde_json::from_str(&f[2..]).map_err(|_| malformed("state key"))?;
                let val: Json =
                    serde_json::from_str(&text(value)?).map_err(|_| malformed("state value"))?;
                reg.state.insert(key, val);
            }
            _ => {}
        }
    }
    if reg.conn_id.is_empty() {
        return Err(malformed("registration without id"));
    }
    Ok(reg)
}

/// One heartbeat with its keys spelled out, so heartbeats of many tenants (stores with
/// different prefixes) can share one script call ([`Touches`]).
#[derive(Debug, Clone)]
pub struct TouchKeys {
    pub conn_key: String,
    pub seen_key: String,
    pub owner: String,
    pub member: String,
}

/// Runs heartbeats on Redis, whoever's they are: the node-wide half of the heartbeat
/// script, used by every tenant's store (and by a batcher that gathers many tenants').
#[derive(Clone)]
pub struct Touches {
    pool: Pool,
    script: Arc<Script>,
    ttl_ms: String,
    /// On a Redis Cluster one call takes the heartbeats of one slot.
    cluster: bool,
}

impl Touches {
    pub fn new(pool: Pool, ttl_ms: u64) -> Self {
        Self {
            cluster: pool.next().is_clustered(),
            pool,
            script: Arc::new(script!("lua/heartbeat.lua")),
            ttl_ms: ttl_ms.to_string(),
        }
    }

    /// Refreshes each registration its owner still holds; one result per entry (one
    /// script call per hash slot on a cluster).
    pub async fn run(&self, touches: &[TouchKeys]) -> Result<Vec<Touch>, StoreError> {
        if touches.is_empty() {
            return Ok(Vec::new());
        }
        per_slot(
            self.cluster,
            touches,
            |t| t.conn_key.clone(),
            |group| async move { self.run_slot(&group).await },
        )
        .await
    }

    async fn run_slot(&self, touches: &[TouchKeys]) -> Result<Vec<Touch>, StoreError> {
        let mut keys = Vec::with_capacity(2 * touches.len());
        let mut args = Vec::with_capacity(1 + 2 * touches.len());
        args.push(self.ttl_ms.clone());
        for t in touches {
            keys.extend([t.conn_key.clone(), t.seen_key.clone()]);
            args.extend([t.owner.clone(), t.member.clone()]);
        }
        let reply = self
            .script
            .evalsha_with_reload::<Value, _, _>(self.pool.next(), keys, args)
            .await
            .map_err(store_error)?;
        let reply = items(reply)?;
        if reply.len() != touches.len() {
            return Err(malformed("heartbeat reply length"));
        }
        reply
            .iter()
            .map(|v| {
                let n = int(v)?;
                Ok(match n {
                    0 => Touch::Missing,
                    n if n < 0 => Touch::Fenced(n.unsigned_abs()),
                    n => Touch::Alive(n.unsigned_abs()),
                })
            })
            .collect()
    }
}

impl RedisStore {
    /// The keys a heartbeat of `spec` touches.
    pub fn touch_keys(&self, spec: &TouchSpec<'_>) -> TouchKeys {
        TouchKeys {
            conn_key: self.conn_key(spec.room_id, spec.conn_id),
            seen_key: self.seen_key(spec.room_id),
            owner: spec.owner.to_owned(),
            member: Self::seen_member(spec.conn_id, spec.room_id, spec.user_id),
        }
    }

    /// The heartbeat runner on this store's pool.
    pub fn touches(&self) -> &Touches {
        &self.touches
    }

    /// KEYS of the resume script: the registration hash, the room's index, the
    /// by-last-seen index, the room's occupancy and its roster's hashes.
    fn registration_keys(&self, conn_id: &str, room_id: &str) -> Vec<String> {
        let mut keys = vec![
            self.conn_key(room_id, conn_id),
            self.room_key(room_id),
            self.seen_key(room_id),
            self.users_key(room_id),
        ];
        self.push_member_keys(room_id, &mut keys);
        keys
    }

    /// ARGV the resume script starts with: the room's key base, connection, room, user.
    fn registration_args(&self, conn_id: &str, room_id: &str, user_id: &str) -> Vec<String> {
        vec![
            self.layout.base(room_id),
            conn_id.to_owned(),
            room_id.to_owned(),
            user_id.to_owned(),
        ]
    }

    /// ARGV the resume script ends with: owner, node, TTL, a has-state flag and the
    /// state's field/value pairs.
    fn push_owner_args(
        &self,
        args: &mut Vec<String>,
        owner: &str,
        node: &str,
        state: Option<&Map<String, Json>>,
    ) {
        args.extend([
            owner.to_owned(),
            node.to_owned(),
            self.ttl_ms.clone(),
            if state.is_some() { "1" } else { "0" }.to_owned(),
        ]);
        if let Some(state) = state {
            state_pairs(state, args);
        }
    }
}

impl RedisStore {
    /// KEYS and ARGV of `join_batch.lua`.
    fn join_batch_call(&self, specs: &[JoinSpec<'_>]) -> (Vec<String>, Vec<String>) {
        let mut keys = Vec::with_capacity(4 * specs.len());
        let mut args = Vec::with_capacity(2 + 10 * specs.len());
        args.extend([self.ttl_ms.clone(), specs.len().to_string()]);
        for spec in specs {
            keys.extend([
                self.conn_key(spec.room_id, spec.conn_id),
                self.room_key(spec.room_id),
                self.seen_key(spec.room_id),
                self.users_key(spec.room_id),
            ]);
            args.extend([
                self.layout.base(spec.room_id),
                spec.conn_id.to_owned(),
                spec.room_id.to_owned(),
                spec.user_id.to_owned(),
                spec.owner.to_owned(),
                spec.node.to_owned(),
                if spec.state.is_some() { "1" } else { "0" }.to_owned(),
                spec.info
                    .map_or_else(String::new, |i| Json::Object(i.clone()).to_string()),
                spec.max_members.to_string(),
                spec.state.map_or(0, Map::len).to_string(),
            ]);
            if let Some(state) = spec.state {
                state_pairs(state, &mut args);
            }
        }
        let mut rooms: Vec<&str> = specs.iter().map(|s| s.room_id).collect();
        rooms.sort_unstable();
        rooms.dedup();
        for room in rooms {
            self.push_member_keys(room, &mut keys);
        }
        (keys, args)
    }

    /// Joins one slot's group, retrying the joins whose room's roster was out of date
    /// (module `roster`) with the ids the script answered.
    async fn join_group(&self, group: Vec<JoinSpec<'_>>) -> Result<Vec<JoinReply>, StoreError> {
        let mut done: Vec<Option<JoinReply>> = (0..group.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..group.len()).collect();
        for _ in 0..ROSTER_ATTEMPTS {
            let specs: Vec<JoinSpec<'_>> = pending.iter().map(|&i| group[i].clone()).collect();
            let (keys, args) = self.join_batch_call(&specs);
            let reply = self.call(&self.scripts.join_batch, keys, args).await?;
            let steps = join_batch_reply(reply, &specs, |room, ids| self.remember(room, ids))?;
            let mut again = Vec::new();
            for (i, step) in pending.into_iter().zip(steps) {
                match step {
                    JoinStep::Done(reply) => done[i] = Some(reply),
                    JoinStep::Stale(ids) => {
                        self.remember(group[i].room_id, ids);
                        again.push(i);
                    }
                }
            }
            if again.is_empty() {
                return done
                    .into_iter()
                    .map(|r| r.ok_or_else(|| malformed("join left unanswered")))
                    .collect();
            }
            pending = again;
        }
        Err(contended())
    }
}

/// A room whose membership changed within every attempt of one call.
fn contended() -> StoreError {
    StoreError::Unavailable("the room's membership kept changing; try again".to_owned())
}

/// One join's answer from `join_batch.lua`. Lives only until it is sorted into the
/// reply, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum JoinStep {
    Done(JoinReply),
    /// Its room's roster was out of date: the room's ids, to declare on the retry.
    Stale(Vec<String>),
}

/// A room as a script read it (prelude: `room_snapshot`): its live registrations and
/// every id its index holds.
struct RoomRead {
    registrations: Vec<Registration>,
    ids: Vec<String>,
}

fn room_read(v: Value) -> Result<RoomRead, StoreError> {
    let mut parts = items(v)?.into_iter();
    let registrations = snapshot(parts.next().unwrap_or(Value::Null))?;
    let ids = ids(parts.next().unwrap_or(Value::Null))?;
    Ok(RoomRead { registrations, ids })
}

fn ids(v: Value) -> Result<Vec<String>, StoreError> {
    items(v)?.iter().map(text).collect()
}

/// Parses `{results, snapshots}` of `join_batch.lua`: each joiner's registration is
/// taken from its room's snapshot, read once per room for the whole batch, and each
/// room's ids go to `remember`.
fn join_batch_reply(
    reply: Value,
    specs: &[JoinSpec<'_>],
    remember: impl Fn(&str, Vec<String>),
) -> Result<Vec<JoinStep>, StoreError> {
    let mut parts = items(reply)?.into_iter();
    let results = items(parts.next().ok_or_else(|| malformed("join results"))?)?;
    let mut snapshots = Vec::new();
    for read in items(parts.next().unwrap_or(Value::Null))? {
        let RoomRead { registrations, ids } = room_read(read)?;
        if let Some(room) = registrations.first().map(|r| r.room_id.clone()) {
            remember(&room, ids);
        }
        snapshots.push(registrations);
    }
    if results.len() != specs.len() {
        return Err(malformed("join reply length"));
    }
    results
        .into_iter()
        .zip(specs)
        .map(|(result, spec)| {
            let mut result = items(result)?.into_iter();
            let status = int(&result.next().ok_or_else(|| malformed("join status"))?)?;
            match status {
                -1 => return Ok(JoinStep::Done(Err(JoinRefusal::Owned))),
                -2 => return Ok(JoinStep::Done(Err(JoinRefusal::Full))),
                -3 => return Ok(JoinStep::Stale(ids(result.next().unwrap_or(Value::Null))?)),
                s if s < 0 => return Err(malformed("join status")),
                _ => {}
            }
            let index = result
                .next()
                .map(|v| int(&v))
                .transpose()?
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| i.checked_sub(1))
                .ok_or_else(|| malformed("join snapshot index"))?;
            let room = snapshots
                .get(index)
                .ok_or_else(|| malformed("join snapshot"))?;
            let registration = room
                .iter()
                .find(|r| r.conn_id == spec.conn_id)
                .cloned()
                .ok_or_else(|| malformed("joined registration missing from its room"))?;
            Ok(JoinStep::Done(Ok(Joined {
                created: status == 1,
                registration,
                snapshot: room.clone(),
                transitions: transitions(result.next())?,
            })))
        })
        .collect()
}

/// Parses the occupancy tokens of a script (`lua/prelude.lua`: `seen_added`).
fn transitions(v: Option<Value>) -> Result<Vec<Transition>, StoreError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    items(v)?
        .iter()
        .map(|t| {
            let t = text(t)?;
            Ok(match t.as_str() {
                "ro" => Transition::RoomOccupied,
                "rv" => Transition::RoomVacated,
                _ => match t.split_once(':') {
                    Some(("uj", user)) => Transition::UserJoined(user.to_owned()),
                    Some(("ul", user)) => Transition::UserLeft(user.to_owned()),
                    _ => return Err(malformed("occupancy token")),
                },
            })
        })
        .collect()
}

fn snapshot(v: Value) -> Result<Vec<Registration>, StoreError> {
    items(v)?.into_iter().map(registration).collect()
}

#[async_trait]
impl PresenceStore for RedisStore {
    async fn join(&self, spec: JoinSpec<'_>) -> Result<JoinReply, StoreError> {
        let mut results = self.join_batch(&[spec]).await?;
        results.pop().ok_or_else(|| malformed("join reply"))
    }

    async fn join_batch(&self, specs: &[JoinSpec<'_>]) -> Result<Vec<JoinReply>, StoreError> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        per_slot(
            self.touches.cluster,
            specs,
            // The room's key base carries its hash tag.
            |s| self.layout.base(s.room_id),
            |group| self.join_group(group),
        )
        .await
    }

    async fn resume(&self, spec: ResumeSpec<'_>) -> Result<Option<Resumed>, StoreError> {
        for _ in 0..ROSTER_ATTEMPTS {
            let keys = self.registration_keys(spec.conn_id, spec.room_id);
            let mut args = self.registration_args(spec.conn_id, spec.room_id, spec.user_id);
            args.push(spec.epoch.to_string());
            self.push_owner_args(&mut args, spec.owner, spec.node, spec.state);
            let mut reply = items(self.call(&self.scripts.resume, keys, args).await?)?.into_iter();
            match int(&reply.next().ok_or_else(|| malformed("resume reply"))?)? {
                1 => {}
                -3 => {
                    self.remember(spec.room_id, ids(reply.next().unwrap_or(Value::Null))?);
                    continue;
                }
                _ => return Ok(None),
            }
            let state_changed = int(&reply.next().ok_or_else(|| malformed("resume flag"))?)? == 1;
            let registration = registration(reply.next().ok_or_else(|| malformed("resume hash"))?)?;
            let room = room_read(reply.next().unwrap_or(Value::Null))?;
            self.remember(spec.room_id, room.ids);
            return Ok(Some(Resumed {
                registration,
                state_changed,
                snapshot: room.registrations,
                transitions: transitions(reply.next())?,
            }));
        }
        Err(contended())
    }

    async fn heartbeat(&self, specs: &[TouchSpec<'_>]) -> Result<Vec<Touch>, StoreError> {
        let touches: Vec<TouchKeys> = specs.iter().map(|s| self.touch_keys(s)).collect();
        self.touches().run(&touches).await
    }

    async fn patch(
        &self,
        touch: TouchSpec<'_>,
        epoch: Option<Epoch>,
        patch: &Map<String, Json>,
        max_state_bytes: usize,
    ) -> Result<Patched, StoreError> {
        let keys = vec![
            self.conn_key(touch.room_id, touch.conn_id),
            self.seen_key(touch.room_id),
        ];
        let mut args = vec![
            touch.owner.to_owned(),
            epoch.map(|e| e.to_string()).unwrap_or_default(),
            self.ttl_ms.clone(),
            max_state_bytes.to_string(),
            Self::seen_member(touch.conn_id, touch.room_id, touch.user_id),
        ];
        state_pairs(patch, &mut args);
        let mut reply = items(self.call(&self.scripts.patch, keys, args).await?)?.into_iter();
        let status = int(&reply.next().ok_or_else(|| malformed("patch reply"))?)?;
        let detail = reply.next();
        Ok(match status {
            0 => Patched::Missing,
            -1 => Patched::Stale(
                u64::try_from(int(&detail.ok_or_else(|| malformed("patch epoch"))?)?).unwrap_or(0),
            ),
            -2 => Patched::TooLarge(
                usize::try_from(int(&detail.ok_or_else(|| malformed("patch size"))?)?)
                    .unwrap_or(usize::MAX),
            ),
            _ => Patched::Done(registration(
                detail.ok_or_else(|| malformed("patch hash"))?,
            )?),
        })
    }

    async fn remove(&self, spec: RemoveSpec<'_>) -> Result<Option<Removed>, StoreError> {
        let keys = vec![
            self.conn_key(spec.room_id, spec.conn_id),
            self.room_key(spec.room_id),
            self.seen_key(spec.room_id),
            self.users_key(spec.room_id),
        ];
        let args = vec![
            spec.owner.to_owned(),
            spec.room_id.to_owned(),
            spec.epoch.map(|e| e.to_string()).unwrap_or_default(),
        ];
        let mut reply = items(self.call(&self.scripts.remove, keys, args).await?)?.into_iter();
        if int(&reply.next().ok_or_else(|| malformed("remove reply"))?)? != 1 {
            return Ok(None);
        }
        let registration = registration(reply.next().ok_or_else(|| malformed("remove hash"))?)?;
        Ok(Some(Removed {
            registration,
            transitions: transitions(reply.next())?,
        }))
    }

    async fn snapshot(&self, room_id: &str) -> Result<Vec<Registration>, StoreError> {
        for _ in 0..ROSTER_ATTEMPTS {
            let mut keys = vec![self.room_key(room_id), self.seen_key(room_id)];
            self.push_member_keys(room_id, &mut keys);
            let args = vec![self.layout.base(room_id), room_id.to_owned()];
            let mut reply =
                items(self.call(&self.scripts.snapshot, keys, args).await?)?.into_iter();
            let status = int(&reply.next().ok_or_else(|| malformed("snapshot reply"))?)?;
            let rest = reply.next().unwrap_or(Value::Null);
            if status == -3 {
                self.remember(room_id, ids(rest)?);
                continue;
            }
            let room = room_read(rest)?;
            self.remember(room_id, room.ids);
            return Ok(room.registrations);
        }
        Err(contended())
    }

    async fn reap(&self, lookback_ms: u64, limit: usize) -> Result<Vec<Reaped>, StoreError> {
        let mut out = Vec::new();
        for base in self.layout.bases() {
            if out.len() >= limit {
                break;
            }
            out.extend(
                self.reap_bucket(&base, lookback_ms, limit - out.len())
                    .await?,
            );
        }
        Ok(out)
    }

    async fn ping(&self) -> bool {
        self.pool.next().ping::<String>(None).await.is_ok()
    }
}

impl RedisStore {
    /// One bucket's reap (the whole store on the flat layout).
    async fn reap_bucket(
        &self,
        base: &str,
        lookback_ms: u64,
        limit: usize,
    ) -> Result<Vec<Reaped>, StoreError> {
        let seen = format!("{base}seen");
        let window = [
            self.ttl_ms.clone(),
            lookback_ms.to_string(),
            limit.to_string(),
        ];
        let candidates = ids(self
            .call(
                &self.scripts.reap_candidates,
                vec![seen.clone()],
                window.to_vec(),
            )
            .await?)?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = vec![seen];
        for entry in &candidates {
            // '<id> <room> <user>'; a malformed entry needs no keys (reap.lua drops it).
            if let [id, room, _user] = entry.splitn(3, ' ').collect::<Vec<_>>()[..] {
                keys.extend([
                    self.conn_key(room, id),
                    self.room_key(room),
                    self.users_key(room),
                ]);
            }
        }
        let mut args = vec![base.to_owned()];
        args.extend(window);
        let reply = self.call(&self.scripts.reap, keys, args).await?;
        items(reply)?
            .into_iter()
            .map(|item| {
                let mut f = items(item)?.into_iter();
                let mut next = || f.next().ok_or_else(|| malformed("reap item"));
                let conn_id = text(&next()?)?;
                let room_id = text(&next()?)?;
                let user_id = text(&next()?)?;
                let raw_epoch = int(&next()?)?;
                let epoch = u64::try_from(raw_epoch).unwrap_or(0);
                let hash = next()?;
                let state = if epoch == 0 {
                    None
                } else {
                    Some(registration(hash)?.state)
                };
                Ok(Reaped {
                    conn_id,
                    room_id,
                    user_id,
                    epoch: (epoch > 0).then_some(epoch),
                    state,
                    transitions: transitions(f.next())?,
                    announce: raw_epoch >= 0,
                })
            })
            .collect()
    }
}

//! The embedded single-node store: the default when `REDIS_URL` is unset, so the quick
//! start needs nothing but the binary. One mutex guards all three indices; every method
//! holds it for one short, allocation-light step and never across an `.await`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::clock::now_ms;
use super::error::StoreError;
use super::store::*;

/// Registrations, the per-room index, the by-last-seen index and the per-room user
/// counts (what tells a user's first and last registration in a room), kept in step.
#[derive(Default)]
struct Tables {
    regs: HashMap<String, Registration>,
    rooms: HashMap<String, HashSet<String>>,
    seen: BTreeSet<(i64, String)>,
    users: HashMap<String, HashMap<String, usize>>,
}

/// In-process [`PresenceStore`]. A registration older than the TTL is invisible (as an
/// expired Redis hash would be) until the reaper removes it and announces `expire`.
pub struct MemoryStore {
    ttl_ms: i64,
    tables: Mutex<Tables>,
}

impl MemoryStore {
    pub fn new(ttl_ms: u64) -> Self {
        Self {
            ttl_ms: i64::try_from(ttl_ms).unwrap_or(i64::MAX),
            tables: Mutex::new(Tables::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A poisoned lock only means another task panicked mid-step; the tables are
        // still consistent because every step mutates them in one place.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Tables {
    fn live<'a>(&'a self, conn_id: &str, now: i64, ttl: i64) -> Option<&'a Registration> {
        self.regs
            .get(conn_id)
            .filter(|r| r.last_seen >= now.saturating_sub(ttl))
    }

    fn touch(&mut self, conn_id: &str, now: i64) {
        if let Some(reg) = self.regs.get_mut(conn_id) {
            self.seen.remove(&(reg.last_seen, conn_id.to_owned()));
            reg.last_seen = now;
            self.seen.insert((now, conn_id.to_owned()));
        }
    }

    /// Stores `reg` (new, or replacing its older self) and returns how that moved the
    /// room's occupancy. The new user is counted in before an old one is counted out, so
    /// a re-join as another user never shows the room empty.
    fn insert(&mut self, reg: Registration) -> Vec<Transition> {
        let mut moves = Vec::new();
        let old = self.regs.get(&reg.conn_id).map(|old| {
            self.seen.remove(&(old.last_seen, old.conn_id.clone()));
            (old.room_id.clone(), old.user_id.clone())
        });
        let same = old
            .as_ref()
            .is_some_and(|(room, user)| *room == reg.room_id && *user == reg.user_id);
        if !same {
            self.count_in(&reg.room_id, &reg.user_id, &mut moves);
        }
        if let Some((room, user)) = old.filter(|_| !same) {
            self.count_out(&room, &user, &mut moves);
        }
        self.rooms
            .entry(reg.room_id.clone())
            .or_default()
            .insert(reg.conn_id.clone());
        self.seen.insert((reg.last_seen, reg.conn_id.clone()));
        self.regs.insert(reg.conn_id.clone(), reg);
        moves
    }

    fn delete(&mut self, conn_id: &str) -> Option<(Registration, Vec<Transition>)> {
        let reg = self.regs.remove(conn_id)?;
        self.seen.remove(&(reg.last_seen, reg.conn_id.clone()));
        if let Some(members) = self.rooms.get_mut(&reg.room_id) {
            members.remove(conn_id);
            if members.is_empty() {
                self.rooms.remove(&reg.room_id);
            }
        }
        let mut moves = Vec::new();
        self.count_out(&reg.room_id, &reg.user_id, &mut moves);
        Some((reg, moves))
    }

    fn count_in(&mut self, room: &str, user: &str, moves: &mut Vec<Transition>) {
        let users = self.users.entry(room.to_owned()).or_default();
        let n = users.entry(user.to_owned()).or_default();
        *n += 1;
        if *n == 1 {
            if users.len() == 1 {
                moves.push(Transition::RoomOccupied);
            }
            moves.push(Transition::UserJoined(user.to_owned()));
        }
    }

    fn count_out(&mut self, room: &str, user: &str, moves: &mut Vec<Transition>) {
        let Some(users) = self.users.get_mut(room) else {
            return;
        };
        let Some(n) = users.get_mut(user) else { return };
        *n -= 1;
        if *n > 0 {
            return;
        }
        users.remove(user);
        moves.push(Transition::UserLeft(user.to_owned()));
        if users.is_empty() {
            self.users.remove(room);
            moves.push(Transition::RoomVacated);
        }
    }

    /// Registrations indexed in a room, as Redis's `SCARD` counts them (lapsed ones the
    /// reaper has not removed yet included).
    fn room_size(&self, room_id: &str) -> u64 {
        self.rooms.get(room_id).map_or(0, |m| m.len() as u64)
    }

    fn room(&self, room_id: &str, now: i64, ttl: i64) -> Vec<Registration> {
        self.rooms
            .get(room_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.live(id, now, ttl).cloned())
            .collect()
    }
}

#[async_trait]
impl PresenceStore for MemoryStore {
    async fn join(&self, spec: JoinSpec<'_>) -> Result<JoinReply, StoreError> {
        let now = now_ms();
        let mut t = self.lock();
        let existing = t.live(spec.conn_id, now, self.ttl_ms).cloned();
        let registration = match existing {
            Some(old) if old.owner != spec.owner || old.room_id != spec.room_id => {
                return Ok(Err(JoinRefusal::Owned));
            }
            Some(old) => Registration {
                user_id: spec.user_id.to_owned(),
                state: spec.state.cloned().unwrap_or(old.state),
                epoch: old.epoch + 1,
                last_seen: now,
                node: spec.node.to_owned(),
                info: spec.info.cloned(),
                ..old
            },
            None if spec.max_members > 0 && t.room_size(spec.room_id) >= spec.max_members => {
                return Ok(Err(JoinRefusal::Full));
            }
            None => Registration {
                conn_id: spec.conn_id.to_owned(),
                room_id: spec.room_id.to_owned(),
                user_id: spec.user_id.to_owned(),
                state: spec.state.cloned().unwrap_or_default(),
                epoch: 1,
                last_seen: now,
                info: spec.info.cloned(),
                owner: spec.owner.to_owned(),
                node: spec.node.to_owned(),
            },
        };
        let created = registration.epoch == 1;
        let transitions = t.insert(registration.clone());
        let snapshot = t.room(spec.room_id, now, self.ttl_ms);
        Ok(Ok(Joined {
            created,
            registration,
            snapshot,
            transitions,
        }))
    }

    async fn resume(&self, spec: ResumeSpec<'_>) -> Result<Option<Resumed>, StoreError> {
        let now = now_ms();
        let mut t = self.lock();
        let Some(old) = t.live(spec.conn_id, now, self.ttl_ms).cloned() else {
            return Ok(None);
        };
        if old.room_id != spec.room_id || old.user_id != spec.user_id || old.epoch > spec.epoch {
            return Ok(None);
        }
        let state_changed = spec.state.is_some_and(|s| *s != old.state);
        let registration = Registration {
            state: spec.state.cloned().unwrap_or_else(|| old.state.clone()),
            epoch: old.epoch + 1,
            last_seen: now,
            owner: spec.owner.to_owned(),
            node: spec.node.to_owned(),
            ..old
        };
        let transitions = t.insert(registration.clone());
        let snapshot = t.room(spec.room_id, now, self.ttl_ms);
        Ok(Some(Resumed {
            registration,
            state_changed,
            snapshot,
            transitions,
        }))
    }

    async fn heartbeat(&self, specs: &[TouchSpec<'_>]) -> Result<Vec<Touch>, StoreError> {
        let now = now_ms();
        let mut t = self.lock();
        Ok(specs
            .iter()
            .map(|s| match t.live(s.conn_id, now, self.ttl_ms) {
                None => Touch::Missing,
                Some(r) if r.owner != s.owner => Touch::Fenced(r.epoch),
                Some(r) => {
                    let epoch = r.epoch;
                    t.touch(s.conn_id, now);
                    Touch::Alive(epoch)
                }
            })
            .collect())
    }

    async fn patch(
        &self,
        touch: TouchSpec<'_>,
        epoch: Option<Epoch>,
        patch: &Map<String, Value>,
        max_state_bytes: usize,
    ) -> Result<Patched, StoreError> {
        let now = now_ms();
        let mut t = self.lock();
        let Some(old) = t.live(touch.conn_id, now, self.ttl_ms) else {
            return Ok(Patched::Missing);
        };
        if old.owner != touch.owner || epoch.is_some_and(|e| e < old.epoch) {
            return Ok(Patched::Stale(old.epoch));
        }
        let mut state = old.state.clone();
        state.extend(patch.iter().map(|(k, v)| (k.clone(), v.clone())));
        let size = state_size(&state);
        if size > max_state_bytes {
            return Ok(Patched::TooLarge(size));
        }
        let registration = Registration {
            state,
            epoch: old.epoch + 1,
            last_seen: now,
            ..old.clone()
        };
        // Same room and user: a patch never moves the occupancy.
        let _ = t.insert(registration.clone());
        Ok(Patched::Done(registration))
    }

    async fn remove(&self, spec: RemoveSpec<'_>) -> Result<Option<Removed>, StoreError> {
        let now = now_ms();
        let mut t = self.lock();
        let holds = t.live(spec.conn_id, now, self.ttl_ms).is_some_and(|r| {
            r.owner == spec.owner
                && r.room_id == spec.room_id
                && spec.epoch.is_none_or(|e| e == r.epoch)
        });
        Ok(holds
            .then(|| t.delete(spec.conn_id))
            .flatten()
            .map(|(registration, transitions)| Removed {
                registration,
                transitions,
            }))
    }

    async fn snapshot(&self, room_id: &str) -> Result<Vec<Registration>, StoreError> {
        Ok(self.lock().room(room_id, now_ms(), self.ttl_ms))
    }

    async fn reap(&self, lookback_ms: u64, limit: usize) -> Result<Vec<Reaped>, StoreError> {
        let now = now_ms();
        let lookback = i64::try_from(lookback_ms).unwrap_or(i64::MAX);
        let ttl_cutoff = now.saturating_sub(self.ttl_ms);
        let cutoff = ttl_cutoff.max(now.saturating_sub(lookback));
        let mut t = self.lock();
        let lapsed: Vec<(i64, String)> = t
            .seen
            .range(..(cutoff, String::new()))
            .take(limit)
            .cloned()
            .collect();
        Ok(lapsed
            .into_iter()
            .filter_map(|(last_seen, conn_id)| {
                let (reg, transitions) = t.delete(&conn_id)?;
                // Like an expired Redis hash: past the TTL the state is already gone.
                let expired = last_seen < ttl_cutoff;
                Some(Reaped {
                    conn_id: reg.conn_id,
                    room_id: reg.room_id,
                    user_id: reg.user_id,
                    epoch: (!expired).then_some(reg.epoch),
                    state: (!expired).then_some(reg.state),
                    transitions,
                    announce: true,
                })
            })
            .collect())
    }

    async fn ping(&self) -> bool {
        true
    }
}

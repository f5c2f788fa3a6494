//! Rosters: the member ids this node last saw in each room of a Redis store.
//!
//! A script that reads a room's registrations (a join's or resume's snapshot, a
//! snapshot) must be handed every hash it reads in `KEYS`: Redis Cluster proxies,
//! managed services and Dragonfly refuse keys a script builds itself. The names of a
//! room's member hashes depend on who is in the room, so the store declares the members
//! its roster names; a script that finds a member the roster missed writes nothing and
//! answers the room's current ids (`{-3, ids}`), and the store retries with them. Every
//! snapshot a script returns refreshes the roster, so in steady state the first call
//! succeeds and costs no extra round trip.

use std::collections::HashMap;
use std::sync::Mutex;

/// Rooms a store remembers; past this the memory is dropped and rebuilt on demand (one
/// retry per room), so a node that sees millions of short-lived rooms stays bounded.
const ROSTER_ROOMS: usize = 65_536;

/// How often one call is retried with a fresher roster before it answers `unavailable`:
/// each retry carries the ids read in the same atomic step that refused, so only a room
/// whose membership changes within every round trip exhausts them.
pub const ROSTER_ATTEMPTS: usize = 16;

/// Member ids per room key.
#[derive(Default)]
pub struct Rosters {
    rooms: Mutex<HashMap<String, Vec<String>>>,
}

impl Rosters {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ids last seen in the room whose index key is `room_key`.
    pub fn ids(&self, room_key: &str) -> Vec<String> {
        self.rooms().get(room_key).cloned().unwrap_or_default()
    }

    /// Remembers `ids` as the room's members (forgets an empty room).
    pub fn set(&self, room_key: String, ids: Vec<String>) {
        let mut rooms = self.rooms();
        if ids.is_empty() {
            rooms.remove(&room_key);
            return;
        }
        if rooms.len() >= ROSTER_ROOMS && !rooms.contains_key(&room_key) {
            rooms.clear();
        }
        rooms.insert(room_key, ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_forgets_empty_rooms_and_stays_bounded() {
        let r = Rosters::default();
        r.set("a".into(), vec!["c1".into(), "c2".into()]);
        assert_eq!(r.ids("a"), ["c1", "c2"]);
        r.set("a".into(), Vec::new());
        assert!(r.ids("a").is_empty());
        for i in 0..=ROSTER_ROOMS {
            r.set(format!("room-{i}"), vec!["c".into()]);
        }
        assert!(r.rooms().len() <= ROSTER_ROOMS);
        assert_eq!(r.ids(&format!("room-{ROSTER_ROOMS}")), ["c"]);
    }
}

//! What the soak's members did and saw, on one clock, and the invariants checked
//! against it: every request answered within its timeout, every acknowledged chat
//! message and presence change delivered to every member that was in its room before
//! it was sent and stayed there (at most once each), no presence event twice.
//!
//! "Stayed" is decided per connection: a member's connection is in its room from the
//! ack of its join until it closes or a heartbeat answers `not_joined`. A message sent
//! after that span opened is owed to it if the span outlived the message's ack by
//! [`Ledger::settle`] (a delivery may lag a partition by that long). Messages sent
//! before a member was in the room, or while it was reconnecting, are owed to nobody; a
//! node's `rtm:gap` notice (its subscriber reconnected: emits from other nodes may be
//! missing) ends the span and opens a new one, as a rejoin would.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One connection of one member: `(member, connection number)`.
pub type Conn = (u32, u32);

/// The identity of one presence change: `(type, connId, epoch)`.
pub type ChangeKey = (String, String, u64);

#[derive(Clone, Copy)]
struct Span {
    from_us: u64,
    to_us: Option<u64>,
}

struct Chat {
    room: u32,
    sender: u32,
    sent_us: u64,
    acked_us: Option<u64>,
    got: Vec<Conn>,
}

struct Change {
    key: ChangeKey,
    room: u32,
    actor: u32,
    sent_us: u64,
    acked_us: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, String), u64>,
    hangs: Vec<String>,
    /// Per member, its connections' spans in its room: `(connection, span)`.
    spans: HashMap<u32, Vec<(u32, Span)>>,
    chats: HashMap<u64, Chat>,
    chat_dups: u64,
    chat_foreign: u64,
    changes: Vec<Change>,
    seen: HashMap<ChangeKey, HashSet<Conn>>,
    event_dups: Vec<String>,
    events_seen: u64,
    gaps: u64,
}

/// The record of one soak.
pub struct Ledger {
    start: Instant,
    users_per_room: u32,
    settle: Duration,
    inner: Mutex<Inner>,
}

/// One invariant's outcome: how many times it was checked and how often it failed,
/// with a few examples.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub name: &'static str,
    pub checks: u64,
    pub violations: u64,
    pub examples: Vec<String>,
}

impl Ledger {
    pub fn new(users_per_room: u32, settle: Duration) -> Self {
        Self {
            start: Instant::now(),
            users_per_room,
            settle,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Microseconds since the soak began.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn settle(&self) -> Duration {
        self.settle
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room member `m` belongs to.
    pub fn room_of(&self, m: u32) -> u32 {
        m / self.users_per_room
    }

    /// A request's end: `outcome` is `ok`, an error code, `closed` or `timeout` (a
    /// hang: the invariant's violation).
    pub fn answered(&self, event: &'static str, outcome: &str, who: Conn) {
        let mut inner = self.lock();
        *inner
            .requests
            .entry((event, outcome.to_owned()))
            .or_default() += 1;
        if outcome == "timeout" && inner.hangs.len() < 10 {
            let at = self.now_us() / 1000;
            inner.hangs.push(format!(
                "{event} of member {} conn {} at +{at} ms",
                who.0, who.1
            ));
        }
    }

    /// `conn` is in its room from now (its join was acknowledged).
    pub fn joined(&self, conn: Conn) {
        let now = self.now_us();
        let span = Span {
            from_us: now,
            to_us: None,
        };
        self.lock()
            .spans
            .entry(conn.0)
            .or_default()
            .push((conn.1, span));
    }

    /// `conn` is out of its room from now (closed, or told `not_joined`).
    pub fn left(&self, conn: Conn) {
        let now = self.now_us();
        let mut inner = self.lock();
        let open = inner.spans.get_mut(&conn.0).and_then(|spans| {
            spans
                .iter_mut()
                .rev()
                .find(|(c, s)| *c == conn.1 && s.to_us.is_none())
        });
        if let Some((_, span)) = open {
            span.to_us = Some(now);
        }
    }

    /// A chat message about to be sent by `sender` (its id is in its text).
    pub fn chat_sent(&self, id: u64, sender: u32, sent_us: u64) {
        let room = self.room_of(sender);
        self.lock().chats.insert(
            id,
            Chat {
                room,
                sender,
                sent_us,
                acked_us: None,
                got: Vec::new(),
            },
        );
    }

    /// The chat message was acknowledged `ok`: from now on it is owed.
    pub fn chat_acked(&self, id: u64) {
        let now = self.now_us();
        if let Some(chat) = self.lock().chats.get_mut(&id) {
            chat.acked_us = Some(now);
        }
    }

    /// `conn` received chat message `id`.
    pub fn chat_received(&self, id: Option<u64>, conn: Conn) {
        let mut inner = self.lock();
        let Some(chat) = id.and_then(|id| inner.chats.get_mut(&id)) else {
            inner.chat_foreign += 1;
            return;
        };
        if chat.got.contains(&conn) {
            inner.chat_dups += 1;
        } else {
            chat.got.push(conn);
        }
    }

    /// A change made by `actor` (sent at `sent_us`) was acknowledged: every other member
    /// of its room in it before then is owed the event `key`.
    pub fn change_acked(&self, key: ChangeKey, actor: u32, sent_us: u64) {
        let acked_us = self.now_us();
        let room = self.room_of(actor);
        self.lock().changes.push(Change {
            key,
            room,
            actor,
            sent_us,
            acked_us,
        });
    }

    /// `conn` received the presence event `key`.
    pub fn event_received(&self, key: ChangeKey, conn: Conn) {
        let at = self.now_us() / 1000;
        let mut inner = self.lock();
        inner.events_seen += 1;
        let first = inner.seen.entry(key.clone()).or_default().insert(conn);
        if !first && inner.event_dups.len() < 1000 {
            inner.event_dups.push(format!(
                "{} {} epoch {} twice at member {} conn {} (+{at} ms)",
                key.0, key.1, key.2, conn.0, conn.1
            ));
        }
    }

    /// Requests by event and outcome.
    pub fn requests(&self) -> BTreeMap<(&'static str, String), u64> {
        self.lock().requests.clone()
    }

    /// The connections of `room`'s members that were in it at `sent_us` and stayed past
    /// `acked_us` + settle (or are in it still), except `actor`'s.
    fn owed(
        inner: &Inner,
        first: u32,
        upr: u32,
        actor: Option<u32>,
        sent: u64,
        due: u64,
    ) -> Vec<Conn> {
        let mut owed = Vec::new();
        for m in first..first + upr {
            if Some(m) == actor {
                continue;
            }
            let spans = inner.spans.get(&m).map_or(&[][..], Vec::as_slice);
            for (c, s) in spans {
                let stayed = s.from_us < sent && s.to_us.is_none_or(|to| to > due);
                if stayed && !owed.contains(&(m, *c)) {
                    owed.push((m, *c));
                }
            }
        }
        owed
    }

    /// The invariants over everything recorded, as of now (call it once the load has
    /// been quiet for at least [`Ledger::settle`]).
    pub fn verdicts(&self) -> Vec<Verdict> {
        let inner = self.lock();
        let upr = self.users_per_room;
        let settle = u64::try_from(self.settle.as_micros()).unwrap_or(u64::MAX);
        let answered: u64 = inner.requests.values().sum();
        let hangs = inner
            .requests
            .iter()
            .filter(|((_, o), _)| o == "timeout")
            .map(|(_, n)| n)
            .sum();
        let mut out = vec![Verdict {
            name: "every request answered (ack or error code) within its timeout",
            checks: answered,
            violations: hangs,
            examples: inner.hangs.clone(),
        }];

        let (mut checks, mut lost, mut examples) = (0u64, 0u64, Vec::new());
        for (id, chat) in &inner.chats {
            let Some(acked) = chat.acked_us else { continue };
            let owed = Self::owed(
                &inner,
                chat.room * upr,
                upr,
                None,
                chat.sent_us,
                acked + settle,
            );
            for conn in owed {
                checks += 1;
                if !chat.got.contains(&conn) {
                    lost += 1;
                    if examples.len() < 10 {
                        examples.push(format!(
                            "message {id} from member {} (sent +{} ms, acked +{} ms) never reached member {} conn {}",
                            chat.sender,
                            chat.sent_us / 1000,
                            acked / 1000,
                            conn.0,
                            conn.1
                        ));
                    }
                }
            }
        }
        out.push(Verdict {
            name: "every acked chat:message reached every member that stayed in its room",
            checks,
            violations: lost,
            examples,
        });
        let deliveries: u64 = inner.chats.values().map(|c| c.got.len() as u64).sum();
        out.push(Verdict {
            name: "each chat:message delivered at most once per member connection",
            checks: deliveries + inner.chat_dups,
            violations: inner.chat_dups,
            examples: Vec::new(),
        });

        let (mut checks, mut missing, mut examples) = (0u64, 0u64, Vec::new());
        for change in &inner.changes {
            let owed = Self::owed(
                &inner,
                change.room * upr,
                upr,
                Some(change.actor),
                change.sent_us,
                change.acked_us + settle,
            );
            let seen = inner.seen.get(&change.key);
            for conn in owed {
                checks += 1;
                if !seen.is_some_and(|s| s.contains(&conn)) {
                    missing += 1;
                    if examples.len() < 10 {
                        examples.push(format!(
                            "{} {} epoch {} (acked +{} ms) never reached member {} conn {}",
                            change.key.0,
                            change.key.1,
                            change.key.2,
                            change.acked_us / 1000,
                            conn.0,
                            conn.1
                        ));
                    }
                }
            }
        }
        out.push(Verdict {
            name: "every acked presence change (join, update) reached every member that stayed in its room",
            checks,
            violations: missing,
            examples,
        });
        out.push(Verdict {
            name: "each presence event broadcast once to each observer (no duplicates from two nodes)",
            checks: inner.events_seen,
            violations: inner.event_dups.len() as u64,
            examples: inner.event_dups.iter().take(10).cloned().collect(),
        });
        out
    }

    /// A node told `conn` it may have missed emits (`rtm:gap`): its open span, if it
    /// has one, ends now and a new one begins.
    pub fn gap_announced(&self, conn: Conn) {
        let now = self.now_us();
        let mut inner = self.lock();
        inner.gaps += 1;
        let spans = inner.spans.entry(conn.0).or_default();
        let open = spans
            .iter_mut()
            .rev()
            .find(|(c, s)| *c == conn.1 && s.to_us.is_none());
        if let Some((_, span)) = open {
            span.to_us = Some(now);
            spans.push((
                conn.1,
                Span {
                    from_us: now,
                    to_us: None,
                },
            ));
        }
    }

    /// How many `rtm:gap` notices connections received.
    pub fn gaps(&self) -> u64 {
        self.lock().gaps
    }

    /// Chat messages that were not this soak's (should be 0).
    pub fn foreign_chats(&self) -> u64 {
        self.lock().chat_foreign
    }
}

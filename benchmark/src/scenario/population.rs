//! Bringing clients up: connect (from rotating source addresses) and `presence:join`,
//! many at once, recording `connect`, `join` and `ready` (connect start to join ack)
//! latencies and every failure by kind. Member `i` goes to room `i % rooms` and, on a
//! multi-node target, to node [`node_of`]`(i, rooms, nodes)`, so every room has members
//! on every node; on a multi-tenant target, room `r` lives in tenant `r % tenants` (see
//! [`crate::tenants`]), and with auth every client connects with a token whose `sub` is
//! its user id.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use futures::StreamExt;

use super::Env;
use super::ack::{self, Ack};
use crate::client::{Client, EventSink};
use crate::progress::Progress;
use crate::recorder::Recorder;

/// One joined client.
pub struct Member {
    pub client: Client,
    pub room: usize,
    /// The node (index into the target's nodes) it is connected to.
    pub node: usize,
    pub room_id: Arc<str>,
    pub conn_id: String,
    /// The registration's epoch as last acknowledged (patches must carry it).
    pub epoch: AtomicU64,
    /// True while a patch of this member is in flight, so two patches never race each
    /// other into a `stale_epoch`.
    pub patching: AtomicBool,
}

/// The joined clients of one session.
pub struct Population {
    pub members: Vec<Arc<Member>>,
    pub room_ids: Vec<Arc<str>>,
    /// Joined members per room (deliveries expected per chat message).
    pub room_sizes: Vec<u64>,
    pub attempted: u64,
}

impl Population {
    /// One `presence:heartbeat` per member, `concurrency` at a time, each awaited;
    /// returns how many were not acknowledged `ok`. Members that send nothing else
    /// between windows would otherwise lapse after `PRESENCE_TTL_MS` (30 s by default),
    /// and the reaper's burst of expiry events would land inside a later window.
    pub async fn heartbeat_all(&self, concurrency: usize) -> usize {
        let acked: Vec<bool> = futures::stream::iter(self.members.iter().cloned())
            .map(|m| async move {
                let payload = format!(r#"{{"roomId":"{}"}}"#, m.room_id);
                let reply = m.client.request("presence:heartbeat", payload).await;
                matches!(reply.as_deref().map(ack::parse), Ok(Ok(Ack::Ok { .. })))
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        acked.iter().filter(|ok| !**ok).count()
    }

    /// Joined members on each of `nodes` nodes.
    pub fn per_node(&self, nodes: usize) -> Vec<u64> {
        let mut per = vec![0u64; nodes.max(1)];
        for m in &self.members {
            if let Some(n) = per.get_mut(m.node) {
                *n += 1;
            }
        }
        per
    }
}

/// Ops a setup recorder must know.
pub const SETUP_OPS: [&str; 3] = ["connect", "join", "ready"];

/// The node of the `i`-th item of a round-robin over `rooms` rooms (member `i` of room
/// `i % rooms`, or the `i`-th publish to room `i % rooms`): a room's `k`-th item goes to
/// node `k % nodes`, so each room's members (and its publishes) alternate between the
/// nodes. (`i % nodes` would put a whole room on one node whenever `nodes` divides
/// `rooms`, and a cross-node fan-out would then cross no node.)
pub fn node_of(i: u64, rooms: usize, nodes: usize) -> usize {
    let (rooms, nodes) = (rooms.max(1) as u64, nodes.max(1) as u64);
    ((i / rooms) % nodes) as usize
}

/// A tag that keeps room ids of successive sessions apart on the same server.
fn session_tag() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "b{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// How many clients to bring up, and how.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub rooms: u32,
    pub total: u32,
    /// Handshakes (and joins) in flight at once.
    pub concurrency: usize,
    /// False: connect only, no `presence:join`.
    pub join: bool,
}

/// The rate scenarios' population: `--room-count` x `--users-per-room` clients,
/// connected and joined with a progress line; an error when nobody could join.
pub async fn join_rooms(
    env: &Env,
    setup: &Arc<Recorder>,
    sink: &(dyn Fn(usize) -> Arc<dyn EventSink> + Sync),
) -> anyhow::Result<Population> {
    let args = &env.args;
    let pop = {
        let _progress = Progress::start(
            env.label("joining"),
            setup.clone(),
            env.probe.clone(),
            args.quiet,
        );
        let plan = Plan {
            rooms: args.rooms(),
            total: args.rooms().saturating_mul(args.users_per_room),
            concurrency: args.connect_concurrency as usize,
            join: true,
        };
        populate(env, plan, setup, sink).await
    };
    if pop.members.is_empty() {
        anyhow::bail!(
            "no client could join {} (errors: {:?})",
            env.opts.authority,
            setup.window_data().errors
        );
    }
    Ok(pop)
}

/// Connects (and joins) `plan.total` clients over `plan.rooms` rooms. `sink(room)` makes
/// each client's event sink. Failures are recorded in `rec`, not returned: the session
/// goes on with whoever joined.
pub async fn populate(
    env: &Env,
    plan: Plan,
    rec: &Arc<Recorder>,
    sink: &(dyn Fn(usize) -> Arc<dyn EventSink> + Sync),
) -> Population {
    let tag = session_tag();
    let rooms = plan.rooms.max(1) as usize;
    let nodes = env.nodes.len();
    let (total, concurrency, join) = (plan.total, plan.concurrency, plan.join);
    let room_ids: Vec<Arc<str>> = (0..rooms)
        .map(|r| Arc::from(format!("{tag}-r{r}")))
        .collect();
    let joined: Vec<Option<Member>> = futures::stream::iter(0..total as usize)
        .map(|i| {
            let seat = Seat {
                room: i % rooms,
                node: node_of(i as u64, rooms, nodes),
            };
            let room_id = room_ids[seat.room].clone();
            let user_id = format!("{tag}-u{i}");
            let sink = sink(seat.room);
            async move { join_one(env, rec, seat, room_id, &user_id, sink, join).await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let members: Vec<Arc<Member>> = joined.into_iter().flatten().map(Arc::new).collect();
    let mut room_sizes = vec![0u64; rooms];
    for m in &members {
        room_sizes[m.room] += 1;
    }
    Population {
        members,
        room_ids,
        room_sizes,
        attempted: u64::from(total),
    }
}

/// Where one client goes: its room and its node.
#[derive(Debug, Clone, Copy)]
struct Seat {
    room: usize,
    node: usize,
}

async fn join_one(
    env: &Env,
    rec: &Recorder,
    seat: Seat,
    room_id: Arc<str>,
    user_id: &str,
    sink: Arc<dyn EventSink>,
    join: bool,
) -> Option<Member> {
    let Seat { room, node } = seat;
    let started = rec.now_us();
    rec.issued();
    let Ok(opts) = env.client_options(room, node, user_id) else {
        rec.err("connect", started, "sign_token");
        return None;
    };
    let client = match Client::connect(&opts, env.sources.next(), sink).await {
        Ok(client) => {
            rec.ok("connect", started, rec.now_us() - started);
            client
        }
        Err(e) => {
            rec.err("connect", started, &e.label());
            return None;
        }
    };
    if !join {
        rec.sample("ready", started, rec.now_us() - started);
        return Some(Member {
            client,
            room,
            node,
            room_id,
            conn_id: String::new(),
            epoch: AtomicU64::new(0),
            patching: AtomicBool::new(false),
        });
    }
    let join_at = rec.now_us();
    rec.issued();
    let payload = format!(r#"{{"roomId":"{room_id}","userId":"{user_id}"}}"#);
    let reply = match client.request("presence:join", payload).await {
        Ok(reply) => reply,
        Err(e) => {
            rec.err("join", join_at, e.kind());
            return None;
        }
    };
    let now = rec.now_us();
    match ack::parse(&reply) {
        Ok(Ack::Ok {
            epoch,
            conn_id: Some(conn_id),
            ..
        }) => {
            rec.ok("join", join_at, now - join_at);
            rec.sample("ready", started, now - started);
            Some(Member {
                client,
                room,
                node,
                room_id,
                conn_id,
                epoch: AtomicU64::new(epoch.unwrap_or(1)),
                patching: AtomicBool::new(false),
            })
        }
        Ok(Ack::Ok { conn_id: None, .. }) => {
            rec.err("join", join_at, "no_conn_id");
            None
        }
        Ok(Ack::Refused { code, .. }) => {
            rec.err("join", join_at, &code);
            None
        }
        Err(_) => {
            rec.err("join", join_at, "bad_ack");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Members per (room, node) when `total` members go round-robin over the rooms.
    fn seats(total: u64, rooms: usize, nodes: usize) -> Vec<Vec<u32>> {
        let mut per = vec![vec![0u32; nodes]; rooms];
        for i in 0..total {
            per[(i % rooms as u64) as usize][node_of(i, rooms, nodes)] += 1;
        }
        per
    }

    #[test]
    fn every_room_spans_every_node() {
        // 100 rooms x 10 on 2 nodes: 5 + 5 in each room (`i % 2` would give 10 + 0).
        assert!(seats(1000, 100, 2).iter().all(|room| room == &[5, 5]));
        // Odd shapes: rooms of 3 on 2 nodes are 2 + 1, on 3 nodes 1 + 1 + 1.
        assert!(seats(21, 7, 2).iter().all(|room| room == &[2, 1]));
        assert!(seats(21, 7, 3).iter().all(|room| room == &[1, 1, 1]));
        // One node: everyone on it.
        assert!(seats(50, 5, 1).iter().all(|room| room == &[10]));
    }

    #[test]
    fn a_rooms_publishes_alternate_nodes() {
        // The i-th publish to room i % rooms: consecutive publishes to one room switch node.
        let rooms = 4;
        let nodes: Vec<usize> = (0..4)
            .map(|k| node_of(3 + k * rooms as u64, rooms, 2))
            .collect();
        assert_eq!(nodes, [0, 1, 0, 1]);
        assert_eq!(
            node_of(7, 0, 0),
            0,
            "degenerate shapes never divide by zero"
        );
    }
}

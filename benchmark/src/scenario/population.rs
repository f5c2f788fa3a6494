//! Bringing clients up: connect (from rotating source addresses) and `presence:join`,
//! many at once, recording `connect`, `join` and `ready` (connect start to join ack)
//! latencies and every failure by kind. Member `i` goes to room `i % rooms`; on a
//! multi-tenant target, room `r` lives in tenant `r % tenants` (see [`crate::tenants`]),
//! and with auth every client connects with a token whose `sub` is its user id.

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

/// Ops a setup recorder must know.
pub const SETUP_OPS: [&str; 3] = ["connect", "join", "ready"];

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
        let _progress = Progress::start(env.label("joining"), setup.clone(), env.probe, args.quiet);
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
    let (total, concurrency, join) = (plan.total, plan.concurrency, plan.join);
    let room_ids: Vec<Arc<str>> = (0..rooms)
        .map(|r| Arc::from(format!("{tag}-r{r}")))
        .collect();
    let joined: Vec<Option<Member>> = futures::stream::iter(0..total as usize)
        .map(|i| {
            let room = i % rooms;
            let room_id = room_ids[room].clone();
            let user_id = format!("{tag}-u{i}");
            let sink = sink(room);
            async move { join_one(env, rec, room, room_id, &user_id, sink, join).await }
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

async fn join_one(
    env: &Env,
    rec: &Recorder,
    room: usize,
    room_id: Arc<str>,
    user_id: &str,
    sink: Arc<dyn EventSink>,
    join: bool,
) -> Option<Member> {
    let started = rec.now_us();
    rec.issued();
    let Ok(opts) = env.client_options(room, user_id) else {
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

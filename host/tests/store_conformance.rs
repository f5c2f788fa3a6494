//! One conformance suite for both presence stores: every test body runs against the
//! embedded memory store and against Redis (a private redis-server), so the two cannot
//! drift apart in semantics, including the exact state-size accounting.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use rtm_host::backend::RedisBackend;
use rtm_host::presence::batch::{BatchConfig, Batcher};
use rtm_host::presence::layout::Layout;
use rtm_host::presence::memory::MemoryStore;
use rtm_host::presence::redis::RedisStore;
use rtm_host::presence::store::*;
use serde_json::{Map, Value, json};

/// TTL of the stores in every test that does not exercise expiry: far longer than any
/// test runs, so a registration never lapses under a test that is slow on a busy CI.
const TTL_MS: u64 = 60_000;

/// TTL of the expiry test: short so it runs quickly, and long enough that a registration
/// made just before a `reap` is still live when it runs (the test waits for the lapse
/// itself by polling, never by timing).
const REAP_TTL_MS: u64 = 3_000;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn join<'a>(
    conn: &'a str,
    room: &'a str,
    user: &'a str,
    owner: &'a str,
    state: Option<&'a Map<String, Value>>,
) -> JoinSpec<'a> {
    JoinSpec {
        conn_id: conn,
        room_id: room,
        user_id: user,
        state,
        owner,
        node: "n1",
        info: None,
        max_members: 0,
    }
}

/// A heartbeat of `conn` (a registration of alice in room "r") by the socket `owner`.
fn touch<'a>(conn: &'a str, owner: &'a str) -> TouchSpec<'a> {
    TouchSpec {
        conn_id: conn,
        room_id: "r",
        user_id: "alice",
        owner,
    }
}

/// A store on the private Redis at `url`, on `layout`, called directly.
async fn direct_store(url: &str, layout: Layout, ttl_ms: u64) -> Arc<RedisStore> {
    let backend = RedisBackend::connect(url, Duration::from_secs(5), 2, true)
        .await
        .expect("connect to the private redis-server");
    Arc::new(
        RedisStore::with_layout(backend.pool.clone(), layout, ttl_ms)
            .await
            .expect("RedisStore loads its scripts"),
    )
}

/// The same behind the heartbeat and join coalescer the server uses.
async fn batched_store(url: &str, layout: Layout, ttl_ms: u64) -> Arc<dyn PresenceStore> {
    let cfg = BatchConfig {
        lanes: 2,
        window: Duration::from_millis(1),
    };
    Arc::new(Batcher::new(direct_store(url, layout, ttl_ms).await, cfg))
}

/// The store a Redis Cluster node gets: tagged layout, behind the batcher.
async fn cluster_store(cluster: &support::RedisCluster, ttl_ms: u64) -> Arc<dyn PresenceStore> {
    let backend = RedisBackend::connect(&cluster.url(), Duration::from_secs(5), 2, true)
        .await
        .expect("connect to the private cluster");
    assert!(
        backend.cluster,
        "a redis-cluster:// URL makes a cluster client"
    );
    let inner = Arc::new(
        RedisStore::with_layout(backend.pool.clone(), Layout::tagged("prs:", "t"), ttl_ms)
            .await
            .expect("RedisStore loads its scripts on every master"),
    );
    let cfg = BatchConfig {
        lanes: 2,
        window: Duration::from_millis(5),
    };
    Arc::new(Batcher::new(inner, cfg))
}

/// Runs `body` against a fresh memory store and a fresh Redis store (direct and behind
/// the batcher the server uses), all with registration TTL `$ttl` (default [`TTL_MS`]).
macro_rules! conformance {
    ($name:ident, $body:expr) => {
        conformance!($name, TTL_MS, $body);
    };
    ($name:ident, $ttl:expr, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn memory() {
                let store: Arc<dyn PresenceStore> = Arc::new(MemoryStore::new($ttl));
                ($body)(store).await;
            }
            #[tokio::test]
            async fn redis() {
                let server = support::Redis::start();
                let backend = RedisBackend::connect(&server.url(), Duration::from_secs(5), 2, true)
                    .await
                    .expect("connect to the private redis-server");
                let store: Arc<dyn PresenceStore> = Arc::new(
                    RedisStore::new(backend.pool.clone(), "prs:", $ttl)
                        .await
                        .expect("RedisStore loads its scripts"),
                );
                ($body)(store).await;
                server.assert_ours();
            }
            /// Redis under `MONITOR`: every command each script ran touched only keys
            /// the call passed in `KEYS` (what Cluster proxies and Dragonfly enforce).
            #[tokio::test]
            async fn redis_declared_keys() {
                let server = support::Redis::start();
                let mut monitor = support::monitor::Monitor::start(&server);
                let store = batched_store(&server.url(), Layout::tagged("prs:", "t"), $ttl).await;
                ($body)(store).await;
                let (undeclared, checked) = monitor.undeclared();
                assert!(checked > 0, "MONITOR saw no script command");
                assert!(undeclared.is_empty(), "undeclared keys: {undeclared:#?}");
                server.assert_ours();
            }
            /// A Redis Cluster (3 masters, 3 replicas) behind the coalescer, on the
            /// hash-tagged layout a cluster gets.
            #[tokio::test]
            async fn redis_cluster() {
                let cluster = support::RedisCluster::start();
                let store = cluster_store(&cluster, $ttl).await;
                ($body)(store).await;
                cluster.assert_ours();
            }
            /// Redis behind the heartbeat and join coalescer the server uses.
            #[tokio::test]
            async fn redis_batched() {
                let server = support::Redis::start();
                let store = batched_store(&server.url(), Layout::flat("prs:"), $ttl).await;
                ($body)(store).await;
                server.assert_ours();
            }
        }
    };
}

conformance!(join_creates_then_rejoin_bumps_epoch, |s: Arc<
    dyn PresenceStore,
>| async move {
    let st = obj(json!({"mood": "ok"}));
    let j = s
        .join(join("c1", "r", "alice", "s1", Some(&st)))
        .await
        .unwrap()
        .unwrap();
    assert!(j.created);
    assert_eq!(j.registration.epoch, 1);
    assert_eq!(j.registration.state, st);
    assert_eq!(j.snapshot.len(), 1);
    assert_eq!(j.snapshot[0].conn_id, "c1");
    // Re-join without state keeps it; with state replaces it.
    let again = s
        .join(join("c1", "r", "alice", "s1", None))
        .await
        .unwrap()
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.registration.epoch, 2);
    assert_eq!(again.registration.state, st);
    let other = obj(json!({"x": 1}));
    let replaced = s
        .join(join("c1", "r", "alice", "s1", Some(&other)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replaced.registration.state, other);
    assert_eq!(replaced.registration.epoch, 3);
    // Another socket cannot overwrite it.
    assert!(
        s.join(join("c1", "r", "mallory", "s2", None))
            .await
            .unwrap()
            .is_err_and(|r| r == JoinRefusal::Owned)
    );
    // A second member shows up in the snapshot.
    s.join(join("c2", "r", "bob", "s2", None))
        .await
        .unwrap()
        .unwrap();
    let mut ids: Vec<String> = s
        .snapshot("r")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.conn_id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["c1", "c2"]);
    assert!(s.snapshot("empty").await.unwrap().is_empty());
});

conformance!(
    a_full_room_takes_no_new_member_but_rejoins_and_info_travel,
    |s: Arc<dyn PresenceStore>| async move {
        let info = obj(json!({"name": "Alice"}));
        let mut first = join("c1", "r", "alice", "s1", None);
        first.info = Some(&info);
        first.max_members = 2;
        let a = s
            .join(first.clone())
            .await
            .unwrap()
            .expect("room has space");
        assert_eq!(a.registration.info.as_ref(), Some(&info));
        let mut second = join("c2", "r", "bob", "s2", None);
        second.max_members = 2;
        s.join(second).await.unwrap().expect("second member fits");
        let mut third = join("c3", "r", "carol", "s3", None);
        third.max_members = 2;
        assert_eq!(s.join(third).await.unwrap().err(), Some(JoinRefusal::Full));
        // A re-join of a member is no new member; other rooms are not counted.
        let again = s.join(first).await.unwrap().expect("re-join of a member");
        assert_eq!(again.registration.epoch, 2);
        let mut elsewhere = join("c4", "other", "dave", "s4", None);
        elsewhere.max_members = 2;
        s.join(elsewhere).await.unwrap().expect("another room");
        let room = s.snapshot("r").await.unwrap();
        assert_eq!(room.len(), 2, "the refused join wrote nothing: {room:?}");
        let alice = room.iter().find(|r| r.conn_id == "c1").expect("alice");
        assert_eq!(alice.info.as_ref(), Some(&info), "info is in the snapshot");
        assert!(
            room.iter()
                .find(|r| r.conn_id == "c2")
                .expect("bob")
                .info
                .is_none()
        );
    }
);

conformance!(
    join_batch_joins_each_and_shows_each_room_once_whole,
    |s: Arc<dyn PresenceStore>| async move {
        // c9 is owned by another socket: its slot in the batch is refused, the rest proceed.
        s.join(join("c9", "r", "zoe", "s9", None))
            .await
            .unwrap()
            .unwrap();
        let st = obj(json!({"n": 1}));
        let specs = [
            join("c1", "r", "alice", "s1", Some(&st)),
            join("c9", "r", "mallory", "s2", None),
            join("c2", "r", "bob", "s2", None),
            join("c3", "other", "carol", "s3", None),
        ];
        let results = s.join_batch(&specs).await.unwrap();
        assert_eq!(results.len(), 4);
        let [Ok(a), Err(JoinRefusal::Owned), Ok(b), Ok(c)] = &results[..] else {
            panic!("unexpected results: {results:?}");
        };
        assert!(a.created && b.created && c.created);
        assert_eq!(
            (
                a.registration.conn_id.as_str(),
                a.registration.user_id.as_str()
            ),
            ("c1", "alice")
        );
        assert_eq!(a.registration.state, st);
        assert_eq!(a.registration.epoch, 1);
        assert!(a.registration.last_seen > 0);
        let ids = |j: &Joined| {
            let mut ids: Vec<String> = j.snapshot.iter().map(|r| r.conn_id.clone()).collect();
            ids.sort();
            ids
        };
        // Each snapshot holds at least the room up to and including its own joiner, and
        // never a member of another room; the refused slot changed nothing.
        assert!(ids(a).contains(&"c1".to_owned()) && ids(a).contains(&"c9".to_owned()));
        assert_eq!(ids(b), ["c1", "c2", "c9"]);
        assert_eq!(ids(c), ["c3"]);
        let c9 = b.snapshot.iter().find(|r| r.conn_id == "c9").unwrap();
        assert_eq!((c9.user_id.as_str(), c9.owner.as_str()), ("zoe", "s9"));
        let mut room: Vec<String> = s
            .snapshot("r")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.conn_id)
            .collect();
        room.sort();
        assert_eq!(room, ["c1", "c2", "c9"]);
        assert!(s.join_batch(&[]).await.unwrap().is_empty());
    }
);

conformance!(heartbeat_moves_last_seen_forward, |s: Arc<
    dyn PresenceStore,
>| async move {
    let joined = s
        .join(join("c1", "r", "alice", "s1", None))
        .await
        .unwrap()
        .unwrap();
    let before = joined.registration.last_seen;
    let touch = touch("c1", "s1");
    // lastSeen has millisecond resolution: heartbeat until the clock has moved on.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(s.heartbeat(&[touch]).await.unwrap(), vec![Touch::Alive(1)]);
        let seen = s.snapshot("r").await.unwrap()[0].last_seen;
        assert!(seen >= before, "lastSeen went back: {seen} < {before}");
        if seen > before {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "lastSeen never moved");
        tokio::task::yield_now().await;
    }
});

conformance!(heartbeat_reports_alive_fenced_missing, |s: Arc<
    dyn PresenceStore,
>| async move {
    s.join(join("c1", "r", "alice", "s1", None))
        .await
        .unwrap()
        .unwrap();
    let touches = s
        .heartbeat(&[touch("c1", "s1"), touch("c1", "s2"), touch("nope", "s1")])
        .await
        .unwrap();
    assert_eq!(
        touches,
        vec![Touch::Alive(1), Touch::Fenced(1), Touch::Missing]
    );
});

conformance!(
    patch_merges_under_epoch_cas,
    |s: Arc<dyn PresenceStore>| async move {
        let st = obj(json!({"a": 1, "b": {"deep": [1, 2]}}));
        s.join(join("c1", "r", "alice", "s1", Some(&st)))
            .await
            .unwrap()
            .unwrap();
        let me = touch("c1", "s1");
        let Patched::Done(reg) = s
            .patch(me, Some(1), &obj(json!({"a": 2, "c": null})), 4096)
            .await
            .unwrap()
        else {
            panic!("patch refused")
        };
        assert_eq!(reg.epoch, 2);
        assert_eq!(
            Value::Object(reg.state),
            json!({"a": 2, "b": {"deep": [1, 2]}, "c": null})
        );
        // Older epoch: refused with the current one, nothing changed.
        assert_eq!(
            s.patch(me, Some(1), &obj(json!({"a": 9})), 4096)
                .await
                .unwrap(),
            Patched::Stale(2)
        );
        // Another socket: fenced.
        let them = touch("c1", "s9");
        assert_eq!(
            s.patch(them, Some(99), &obj(json!({"a": 9})), 4096)
                .await
                .unwrap(),
            Patched::Stale(2)
        );
        // No epoch sent: the owner may patch.
        assert!(
            matches!(s.patch(me, None, &obj(json!({"z": true})), 4096).await.unwrap(), Patched::Done(r) if r.epoch == 3)
        );
        let snap = s.snapshot("r").await.unwrap();
        assert_eq!(snap[0].state.get("a"), Some(&json!(2)));
        assert_eq!(
            s.patch(touch("gone", "s1"), None, &Map::new(), 4096)
                .await
                .unwrap(),
            Patched::Missing
        );
    }
);

conformance!(
    patch_size_limit_is_exact,
    |s: Arc<dyn PresenceStore>| async move {
        let st = obj(json!({"name": "alice"}));
        s.join(join("c1", "r", "alice", "s1", Some(&st)))
            .await
            .unwrap()
            .unwrap();
        let me = touch("c1", "s1");
        let patch = obj(json!({"bio": "x\"y\u{e9}", "n": 12.5}));
        let mut merged = st.clone();
        merged.extend(patch.clone());
        let exact = state_size(&merged);
        assert_eq!(
            s.patch(me, None, &patch, exact - 1).await.unwrap(),
            Patched::TooLarge(exact)
        );
        assert!(matches!(
            s.patch(me, None, &patch, exact).await.unwrap(),
            Patched::Done(_)
        ));
    }
);

conformance!(
    remove_is_compare_and_delete,
    |s: Arc<dyn PresenceStore>| async move {
        s.join(join("c1", "r", "alice", "s1", None))
            .await
            .unwrap()
            .unwrap();
        let spec = |owner, epoch| RemoveSpec {
            conn_id: "c1",
            room_id: "r",
            owner,
            epoch,
        };
        assert!(s.remove(spec("s2", None)).await.unwrap().is_none());
        assert!(s.remove(spec("s1", Some(7))).await.unwrap().is_none());
        let removed = s.remove(spec("s1", Some(1))).await.unwrap().unwrap();
        assert_eq!(removed.registration.user_id, "alice");
        assert!(s.remove(spec("s1", None)).await.unwrap().is_none());
        assert!(s.snapshot("r").await.unwrap().is_empty());
    }
);

conformance!(
    resume_takes_over_and_fences,
    |s: Arc<dyn PresenceStore>| async move {
        let st = obj(json!({"k": 1}));
        s.join(join("c1", "r", "alice", "old", Some(&st)))
            .await
            .unwrap()
            .unwrap();
        let spec = |user, epoch, state| ResumeSpec {
            conn_id: "c1",
            room_id: "r",
            user_id: user,
            epoch,
            state,
            owner: "new",
            node: "n2",
        };
        assert!(
            s.resume(spec("bob", 1, None)).await.unwrap().is_none(),
            "other user"
        );
        assert!(
            s.resume(spec("alice", 0, None)).await.unwrap().is_none(),
            "stored epoch newer"
        );
        let r = s
            .resume(spec("alice", 1, Some(&st)))
            .await
            .unwrap()
            .unwrap();
        assert!(!r.state_changed);
        assert_eq!(r.registration.epoch, 2);
        assert_eq!(r.registration.conn_id, "c1");
        assert_eq!(r.snapshot.len(), 1);
        // The old socket is fenced now.
        assert_eq!(
            s.heartbeat(&[touch("c1", "old")]).await.unwrap(),
            vec![Touch::Fenced(2)]
        );
        assert!(
            s.remove(RemoveSpec {
                conn_id: "c1",
                room_id: "r",
                owner: "old",
                epoch: None
            })
            .await
            .unwrap()
            .is_none()
        );
        let changed = obj(json!({"k": 2}));
        let r2 = s
            .resume(ResumeSpec {
                owner: "newer",
                ..spec("alice", 2, Some(&changed))
            })
            .await
            .unwrap()
            .unwrap();
        assert!(r2.state_changed);
        assert_eq!(r2.registration.state, changed);
    }
);

fn removal<'a>(conn: &'a str, owner: &'a str) -> RemoveSpec<'a> {
    RemoveSpec {
        conn_id: conn,
        room_id: "r",
        owner,
        epoch: None,
    }
}

async fn joined_moves(s: &Arc<dyn PresenceStore>, spec: JoinSpec<'_>) -> Vec<Transition> {
    s.join(spec).await.unwrap().unwrap().transitions
}

async fn removed_moves(s: &Arc<dyn PresenceStore>, spec: RemoveSpec<'_>) -> Vec<Transition> {
    s.remove(spec).await.unwrap().unwrap().transitions
}

conformance!(occupancy_moves_once_per_user_and_per_room, |s: Arc<
    dyn PresenceStore,
>| async move {
    use Transition::*;
    let user = |u: &str| u.to_owned();
    assert_eq!(
        joined_moves(&s, join("c1", "r", "alice", "s1", None)).await,
        [RoomOccupied, UserJoined(user("alice"))]
    );
    // A second tab of alice, and a re-join: nothing moves.
    assert!(
        joined_moves(&s, join("c2", "r", "alice", "s2", None))
            .await
            .is_empty()
    );
    assert!(
        joined_moves(&s, join("c1", "r", "alice", "s1", None))
            .await
            .is_empty()
    );
    assert_eq!(
        joined_moves(&s, join("c3", "r", "bob", "s3", None)).await,
        [UserJoined(user("bob"))]
    );
    // A re-join as another user: the new one is counted in first.
    assert_eq!(
        joined_moves(&s, join("c3", "r", "carol", "s3", None)).await,
        [UserJoined(user("carol")), UserLeft(user("bob"))]
    );
    // Two tabs of dave joining at once (two nodes): one of them is his first.
    let (a, b) = tokio::join!(
        joined_moves(&s, join("c4", "r", "dave", "s4", None)),
        joined_moves(&s, join("c5", "r", "dave", "s5", None))
    );
    let firsts = a
        .iter()
        .chain(&b)
        .filter(|t| **t == UserJoined(user("dave")));
    assert_eq!(firsts.count(), 1, "{a:?} {b:?}");
    for (conn, owner) in [("c4", "s4"), ("c5", "s5"), ("c1", "s1")] {
        let moves = removed_moves(&s, removal(conn, owner)).await;
        let expected: &[Transition] = match conn {
            "c5" => &[UserLeft(user("dave"))],
            _ => &[],
        };
        assert_eq!(moves, expected, "removing {conn}");
    }
    assert_eq!(
        removed_moves(&s, removal("c2", "s2")).await,
        [UserLeft(user("alice"))]
    );
    assert_eq!(
        removed_moves(&s, removal("c3", "s3")).await,
        [UserLeft(user("carol")), RoomVacated]
    );
    assert_eq!(
        joined_moves(&s, join("c6", "r", "alice", "s6", None)).await,
        [RoomOccupied, UserJoined(user("alice"))],
        "an emptied room is occupied anew"
    );
    // A takeover by a reconnected socket moves nothing.
    let resumed = s
        .resume(ResumeSpec {
            conn_id: "c6",
            room_id: "r",
            user_id: "alice",
            epoch: 1,
            state: None,
            owner: "s7",
            node: "n2",
        })
        .await
        .unwrap()
        .unwrap();
    assert!(resumed.transitions.is_empty(), "{:?}", resumed.transitions);
});

/// Polls `snapshot(room)` until `conn` is no longer in it (its TTL lapsed); panics after
/// a generous deadline.
async fn wait_until_lapsed(s: &Arc<dyn PresenceStore>, room: &str, conn: &str) {
    let deadline = std::time::Instant::now() + Duration::from_millis(REAP_TTL_MS) * 10;
    loop {
        let snap = s.snapshot(room).await.expect("snapshot");
        if !snap.iter().any(|r| r.conn_id == conn) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{conn} still in the snapshot long after its {REAP_TTL_MS} ms TTL: {snap:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

conformance!(reaper_removes_lapsed_once, REAP_TTL_MS, |s: Arc<
    dyn PresenceStore,
>| async move {
    s.join(join("quiet", "r", "alice", "s1", None))
        .await
        .unwrap()
        .unwrap();
    // No heartbeat: once the TTL lapsed the registration is invisible even though
    // no reaper has run yet, and cannot be refreshed.
    wait_until_lapsed(&s, "r", "quiet").await;
    assert_eq!(
        s.heartbeat(&[touch("quiet", "s1")]).await.unwrap(),
        vec![Touch::Missing],
        "a lapsed registration cannot be refreshed"
    );

    // A live registration next to it (joined now, so far inside its TTL).
    s.join(join("live", "r", "bob", "s2", None))
        .await
        .unwrap()
        .unwrap();
    // Two reapers at once (two nodes): the lapsed one is removed exactly once, the
    // live one not at all.
    let (a, b) = tokio::join!(s.reap(REAP_TTL_MS * 2, 100), s.reap(REAP_TTL_MS * 2, 100));
    let mut reaped = a.unwrap();
    reaped.extend(b.unwrap());
    assert_eq!(reaped.len(), 1, "{reaped:?}");
    assert_eq!(
        (
            reaped[0].conn_id.as_str(),
            reaped[0].room_id.as_str(),
            reaped[0].user_id.as_str()
        ),
        ("quiet", "r", "alice")
    );
    assert!(
        s.reap(REAP_TTL_MS * 2, 100).await.unwrap().is_empty(),
        "reaped twice"
    );
    assert_eq!(
        reaped[0].transitions,
        [Transition::UserLeft("alice".into())],
        "alice's last registration is gone, bob keeps the room occupied"
    );
    let snap = s.snapshot("r").await.unwrap();
    assert_eq!(snap.len(), 1, "{snap:?}");
    assert_eq!(snap[0].conn_id, "live");
    assert_eq!(
        s.heartbeat(&[touch("quiet", "s1")]).await.unwrap(),
        vec![Touch::Missing],
        "a reaped registration stays gone"
    );
});

/// The fixture never adopts a Redis it did not start: on a port another server holds,
/// its own child cannot bind, and whatever answers there has another pid.
#[test]
fn redis_fixture_never_adopts_a_foreign_server() {
    let first = support::Redis::start();
    let err = support::Redis::try_start_on(first.port)
        .err()
        .expect("a second fixture on a taken port must not start");
    assert!(
        err.contains("another Redis") || err.contains("exited"),
        "{err}"
    );
    first.assert_ours();
}

/// `restart` comes back on the same port as a new child, and proves it.
#[test]
fn redis_fixture_restart_proves_the_new_child() {
    let mut redis = support::Redis::start();
    let (port, pid) = (redis.port, redis.pid());
    redis.restart();
    assert_eq!(redis.port, port);
    assert_ne!(redis.pid(), pid, "a new process");
    redis.assert_ours();
}

/// Two tenants' stores (two key prefixes) behind batchers that share the node's
/// heartbeat queue: heartbeats of both go out in shared script calls and each refreshes
/// its own tenant's registration and index, fencing and all.
#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_of_two_tenants_share_calls_and_stay_in_their_own_keys() {
    use fred::prelude::SortedSetsInterface;
    use rtm_host::presence::batch::SharedBatching;
    use rtm_host::presence::redis::Touches;

    let server = support::Redis::start();
    let backend = RedisBackend::connect(&server.url(), Duration::from_secs(5), 2, true)
        .await
        .expect("connect to the private redis-server");
    let cfg = BatchConfig {
        lanes: 1,
        window: Duration::from_millis(5),
    };
    let shared = SharedBatching::new(Touches::new(backend.pool.clone(), TTL_MS), cfg);
    let mut stores = Vec::new();
    for prefix in ["prs:t1:", "prs:t2:"] {
        let inner = Arc::new(
            RedisStore::new(backend.pool.clone(), prefix, TTL_MS)
                .await
                .expect("RedisStore loads its scripts"),
        );
        stores.push(Batcher::sharing(inner, cfg, &shared));
    }
    for s in &stores {
        s.join(join("c1", "r", "alice", "s1", None))
            .await
            .unwrap()
            .unwrap();
    }
    let before: Vec<Option<f64>> = futures::future::join_all(
        ["prs:t1:seen", "prs:t2:seen"].map(|k| backend.pool.zscore(k, "c1 r alice")),
    )
    .await
    .into_iter()
    .map(|r| r.unwrap())
    .collect();
    assert!(before.iter().all(Option::is_some), "{before:?}");
    let first = [touch("c1", "s1")];
    let second = [touch("c1", "s9"), touch("c1", "s1"), touch("gone", "s1")];
    let (a, b) = tokio::join!(stores[0].heartbeat(&first), stores[1].heartbeat(&second));
    assert_eq!(a.unwrap(), [Touch::Alive(1)]);
    assert_eq!(
        b.unwrap(),
        [Touch::Fenced(1), Touch::Alive(1), Touch::Missing]
    );
    assert!(
        backend
            .pool
            .zscore::<Option<f64>, _, _>("prs:seen", "c1 r alice")
            .await
            .unwrap()
            .is_none(),
        "no tenant-less index was written"
    );
    server.assert_ours();
}

/// On a cluster, joins and heartbeats of many rooms coalesced into one batch span many
/// slots: each slot gets its own script call, every result lands with its request, and
/// every key of a room (its registrations, index, user counts) shares one slot.
#[tokio::test]
async fn cluster_batches_split_by_slot_and_rooms_keep_one_slot() {
    let cluster = support::RedisCluster::start();
    let s = cluster_store(&cluster, TTL_MS).await;
    let rooms: Vec<String> = (0..40).map(|i| format!("room-{i}")).collect();
    let conns: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let owners: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    let joins = (0..40).map(|i| {
        s.join(JoinSpec {
            conn_id: &conns[i],
            room_id: &rooms[i],
            user_id: "alice",
            state: None,
            owner: &owners[i],
            node: "n1",
            info: None,
            max_members: 0,
        })
    });
    for (i, joined) in futures::future::join_all(joins)
        .await
        .into_iter()
        .enumerate()
    {
        let joined = joined.unwrap().unwrap();
        assert_eq!(joined.registration.conn_id, conns[i]);
        assert_eq!(joined.registration.room_id, rooms[i]);
        assert_eq!(
            joined.transitions,
            [
                Transition::RoomOccupied,
                Transition::UserJoined("alice".into())
            ]
        );
    }
    let touches: Vec<TouchSpec<'_>> = (0..40)
        .map(|i| TouchSpec {
            conn_id: &conns[i],
            room_id: &rooms[i],
            user_id: "alice",
            owner: &owners[i],
        })
        .collect();
    let beats = s.heartbeat(&touches).await.unwrap();
    assert_eq!(beats, vec![Touch::Alive(1); 40]);
    for (i, room) in rooms.iter().enumerate() {
        let snap = s.snapshot(room).await.unwrap();
        assert_eq!(snap.len(), 1, "{room}: {snap:?}");
        assert_eq!(snap[0].conn_id, conns[i]);
    }
    let keys = cluster.keys();
    let masters: std::collections::BTreeSet<u16> = keys.iter().map(|(m, _)| *m).collect();
    assert!(
        masters.len() > 1,
        "40 rooms spread over several masters: {keys:?}"
    );
    for (i, room) in rooms.iter().enumerate() {
        let of_room: Vec<&String> = keys
            .iter()
            .map(|(_, k)| k)
            .filter(|k| {
                k.ends_with(&format!(":room:{room}"))
                    || k.ends_with(&format!(":users:{room}"))
                    || k.ends_with(&format!(":conn:{}", conns[i]))
            })
            .collect();
        assert_eq!(of_room.len(), 3, "{room}: {of_room:?}");
        let slots: std::collections::BTreeSet<i64> =
            of_room.iter().map(|k| cluster.slot(k)).collect();
        assert_eq!(slots.len(), 1, "{room}'s keys share one slot: {of_room:?}");
    }
    cluster.assert_ours();
}

/// The MONITOR parser the declared-keys variants rely on.
#[test]
fn monitor_lines_parse() {
    let (lua, args) = support::monitor::parse_line(
        r#"1796160466.7 [0 127.0.0.1:5] "set" "a\"b" "va l\\x01" "\x01""#,
    )
    .unwrap();
    assert!(!lua);
    assert_eq!(args, ["set", "a\"b", "va l\\x01", "\u{1}"]);
    let (lua, args) =
        support::monitor::parse_line(r#"1796160466.7 [0 lua] "GET" "other""#).unwrap();
    assert!(lua);
    assert_eq!(args, ["GET", "other"]);
}

/// Two nodes (two stores on one Redis) sharing rooms: each node's roster of a room lags
/// what the other wrote, so its first script call finds members it did not declare,
/// writes nothing, and succeeds on the retry with the ids it was answered. Joins,
/// snapshots, resumes and removes then see every member; under `MONITOR`, no script
/// touched a key it was not handed.
async fn rosters_catch_up(a: Arc<dyn PresenceStore>, b: Arc<dyn PresenceStore>) {
    let ids: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
    let owners: Vec<String> = (0..6).map(|i| format!("s{i}")).collect();
    for i in 0..5 {
        let node = if i % 2 == 0 { &a } else { &b };
        let joined = node
            .join(join(&ids[i], "r", "alice", &owners[i], None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(joined.snapshot.len(), i + 1, "join {i} sees the room whole");
    }
    for node in [&a, &b] {
        let mut snap: Vec<String> = node
            .snapshot("r")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.conn_id)
            .collect();
        snap.sort();
        assert_eq!(snap, ids[..5]);
    }
    // b removes c0 (a's) and c5 joins through a, whose roster still names c0.
    let gone = b
        .remove(RemoveSpec {
            conn_id: &ids[0],
            room_id: "r",
            owner: &owners[0],
            epoch: None,
        })
        .await
        .unwrap();
    assert!(gone.is_some());
    let joined = a
        .join(join(&ids[5], "r", "bob", &owners[5], None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(joined.snapshot.len(), 5);
    // b resumes c1 for a new socket: its snapshot has c5, which only a wrote.
    let resumed = b
        .resume(ResumeSpec {
            conn_id: &ids[1],
            room_id: "r",
            user_id: "alice",
            epoch: 1,
            state: None,
            owner: "s1-again",
            node: "n2",
        })
        .await
        .unwrap()
        .unwrap();
    assert!(resumed.snapshot.iter().any(|r| r.conn_id == ids[5]));
    assert_eq!(resumed.snapshot.len(), 5);
}

#[tokio::test]
async fn rosters_of_two_nodes_catch_up_on_redis() {
    let server = support::Redis::start();
    let mut monitor = support::monitor::Monitor::start(&server);
    let a = direct_store(&server.url(), Layout::flat("prs:"), TTL_MS).await;
    let b = direct_store(&server.url(), Layout::flat("prs:"), TTL_MS).await;
    rosters_catch_up(a, b).await;
    let (undeclared, checked) = monitor.undeclared();
    assert!(checked > 0, "MONITOR saw no script command");
    assert!(undeclared.is_empty(), "undeclared keys: {undeclared:#?}");
    server.assert_ours();
}

#[tokio::test]
async fn rosters_of_two_nodes_catch_up_on_a_redis_cluster() {
    let cluster = support::RedisCluster::start();
    let a = cluster_store(&cluster, TTL_MS).await;
    let b = cluster_store(&cluster, TTL_MS).await;
    rosters_catch_up(a, b).await;
    cluster.assert_ours();
}

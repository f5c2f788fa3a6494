/**
 * rtm-host on a real Redis Cluster (PROTOCOL.md "Redis Cluster"): two
 * rtm-host processes whose `REDIS_URL` is a `redis-cluster://` URL of a
 * private 3-master + 3-replica cluster (support.mjs RedisCluster: every node
 * our own child, proven by its `process_id`).
 *
 * What is pinned:
 * 1. presence across nodes on 40 rooms whose keys spread over several hash
 *    slots and masters (counted): joins on both nodes are in each other's
 *    snapshots, `join` / `update` / `leave` arrive exactly once on every
 *    member (counted after a barrier), a heartbeat without a room refreshes
 *    every room at once, and a silent member is expired exactly once in every
 *    room by the two racing reapers while heartbeating members live on;
 * 2. the chat plugin (kv history) on both nodes: messages fan out across
 *    nodes exactly once, and the history written through one node is read
 *    through the other;
 * 3. the Server API: `POST /api/v1/default/publish` through node A reaches
 *    the room's sockets on node B once; `rooms/<room>/stats` and
 *    `rooms/<room>/presence` agree with the snapshot on both nodes; a burst of
 *    2,000 emits through node A arrives on node B once each and in order, and
 *    node B's `rtm_adapter_messages_total` counts them queued, none dropped;
 * 4. the key layout after the traffic (every key on every master): every key
 *    starts with `prs:`, every presence key carries a hash tag, each room's
 *    registrations, room index, user counts and by-last-seen index share one
 *    slot, and a plugin's kv keys share the slot of their `{tenant:plugin}`
 *    tag; one example per kind is printed with its slot and master;
 * 5. two tenants of a tenants file on the cluster: the same room name is two
 *    rooms, and their keys are under different tags;
 * 6. failover: the master owning a busy room's slot (50 members on two nodes
 *    heartbeating every 200 ms) is SIGKILLed: every request answers (ok or
 *    `unavailable`) within its ack timeout, none hangs; acks are ok again
 *    within 15 s of the replica's promotion without restarting rtm; then both
 *    nodes' snapshots agree and hold every member exactly once; 200 members
 *    (100 per node) heartbeat and chat meanwhile, and node A SIGKILLed
 *    afterwards has each of its members expired exactly once on node B. A transcript
 *    (kill, first `unavailable`, promotion, first ok again) is printed;
 * 7. a restarted cluster node: a replica killed and restarted; the master
 *    carrying the Socket.IO adapter's shard channel SIGSTOPped until its
 *    replica took over, then SIGCONTed; and that master SIGKILLed, failed
 *    over and restarted (each fault on its own cluster and rtm pair): cross-node
 *    emits (a publish through one node reaching a socket on the other) work
 *    afterwards, both ways, without restarting rtm.
 *
 * How fast anything happens is printed, never asserted, except the 15 s
 * resumption bound the failover contract names (a bounded wait). Nothing
 * sleeps for a fixed time: waits poll a condition, "exactly once" is counted
 * after a barrier (Harness#barrier, or Server API markers).
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  BARRIER_TIMEOUT_MS,
  Harness,
  SLOW_ENV,
  apiRequest,
  assertError,
  assertGuests,
  getText,
  httpStatus,
  listen,
  makePluginsDir,
  metricSum,
  scratchSpace,
  show,
  uid,
  waitUntil,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 300_000 };

/** Short liveness so a silent member expires within a test's patience. */
const FAST_TTL_MS = 2_000;
const FAST_ENV = {
  PRESENCE_TTL_MS: FAST_TTL_MS,
  PRESENCE_REAPER_INTERVAL_MS: 200,
  PRESENCE_REAPER_LOOKBACK_MS: FAST_TTL_MS,
};
/** Heartbeat period under FAST_ENV: several beats per TTL. */
const BEAT_MS = 300;
/** Generous: how fast a loaded machine expires is not asserted, only that it does. */
const EXPIRE_DEADLINE_MS = FAST_TTL_MS + 30_000;
/** How long an expected delivery may take on a loaded machine (bounded, never asserted). */
const DELIVERY_TIMEOUT_MS = 20_000;

/** Rooms of the presence test: enough to spread over several slots and masters. */
const ROOMS = 40;

/** The key prefix (PRESENCE_PREFIX default). */
const PREFIX = 'prs:';

/** The Server API's application event in these tests. */
const EVENT = 'news';

const { scratch, keep, tenantsFile } = scratchSpace();

/** One compiled-artifact cache for the whole file (safe: keyed by content hash). */
const CACHE_DIR = scratch('rtm-plugin-cache-');

/** A fresh random API key. */
const apiKey = (name) => `${name}-${randomBytes(24).toString('base64url')}`;

const sorted = (values) => [...values].sort();

/** Printed at the end of the file: the layout, the failover transcript, the restarts. */
const REPORT = [];
function report(text) {
  REPORT.push(text);
}
after(() => {
  if (REPORT.length > 0) console.log(REPORT.join('\n\n'));
});

/**
 * Starts a host on `cluster` (REDIS_URL is the cluster's `redis-cluster://` URL)
 * and waits for `/readyz` 200: listening may precede the first Redis connection.
 */
async function startClusterHost(h, cluster, name, env = {}) {
  const node = await h.startHost(name, { env: { ...env, REDIS_URL: cluster.url, NODE_ID: name } });
  await waitUntil(async () => (await httpStatus(`${node.url}/readyz`).catch(() => 0)) === 200, {
    timeoutMs: 30_000,
    intervalMs: 100,
    what: `${name} /readyz to answer 200 on the Redis Cluster`,
  });
  return node;
}

/** `rtm_presence_reaped_total` of each node (all series summed). */
async function reapedCounts(nodes) {
  return Promise.all(nodes.map(async (node) => metricSum(await getText(`${node.url}/metrics`), 'rtm_presence_reaped_total')));
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

/** The hash tag Redis Cluster hashes: what is between the first `{` and the next `}`, when not empty. */
function hashTag(key) {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return null;
  return key.slice(open + 1, close);
}

/** What kind of rtm key `key` is. */
function keyKind(key) {
  if (/^prs:(?:[a-z0-9-]+:)?plugin-usage:/.test(key)) return 'plugin kv usage';
  if (/^prs:(?:[a-z0-9-]+:)?plugin:/.test(key)) return 'plugin kv';
  if (key.includes(':conn:')) return 'registration (conn)';
  if (key.includes(':room:')) return 'room index (room)';
  if (key.includes(':users:')) return 'user counts (users)';
  if (key.endsWith(':seen')) return 'by-last-seen index (seen)';
  return 'other';
}
const PRESENCE_KINDS = ['registration (conn)', 'room index (room)', 'user counts (users)', 'by-last-seen index (seen)'];

/**
 * The keys of `room` among `keys` (names only), found by the room's name: its room
 * index `<base>room:<room>` gives the base every other key of the room shares, its
 * user counts `<base>users:<room>`, by-last-seen index `<base>seen`, and one
 * registration `<base>...conn:<connId>` per id of `connIds`. Asserts each exists.
 */
function roomKeys(keys, room, connIds, context) {
  const rooms = keys.filter((k) => k.endsWith(`:room:${room}`));
  assert.equal(rooms.length, 1, `${context}: exactly one room index for ${room}, got ${show(rooms)}`);
  const [roomKey] = rooms;
  const base = roomKey.slice(0, roomKey.length - `room:${room}`.length);
  const users = `${base}users:${room}`;
  const seen = `${base}seen`;
  for (const key of [users, seen]) {
    assert.ok(keys.includes(key), `${context}: ${key} (beside ${roomKey}) must exist; keys under ${base}: ${show(keys.filter((k) => k.startsWith(base)))}`);
  }
  const conns = connIds.map((id) => {
    const found = keys.filter((k) => k.startsWith(base) && k.endsWith(`conn:${id}`));
    assert.equal(found.length, 1, `${context}: one registration key of ${id} under ${base}, got ${show(found)}`);
    return found[0];
  });
  return { base, room: roomKey, users, seen, conns };
}

/** Asserts that every key of a room ({@link roomKeys}) is in one slot; returns that slot. */
async function assertOneSlot(cluster, layout, context) {
  const all = [layout.room, layout.users, layout.seen, ...layout.conns];
  const slots = await cluster.keySlots(all);
  assert.equal(
    new Set(slots).size,
    1,
    `${context}: a room's keys must share one slot, got ${show(all.map((k, i) => `${k} -> ${slots[i]}`))}`,
  );
  return slots[0];
}

describe('redis cluster: two nodes on one cluster (presence, chat plugin, Server API, key layout)', () => {
  const h = new Harness();
  const API_KEY = apiKey('cluster-api');
  let cluster;
  let nodeA;
  let nodeB;
  /** Rooms with live registrations left for the layout test, with their members' connIds. */
  before(async () => {
    assertGuests(['chat-v1.wasm']);
    const dir = keep(makePluginsDir({ 'chat.wasm': 'chat-v1.wasm' }));
    cluster = await h.startRedisCluster();
    const env = { ...FAST_ENV, PLUGINS_DIR: dir, PLUGIN_CACHE_DIR: CACHE_DIR, API_KEY };
    nodeA = await startClusterHost(h, cluster, 'node-a', env);
    nodeB = await startClusterHost(h, cluster, 'node-b', env);
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /** A connected socket on `node` that heartbeats all its registrations every BEAT_MS. */
  async function member(node, label) {
    const c = await h.connect(node, { label });
    h.keepAlive(c, BEAT_MS);
    return c;
  }

  it(
    'presence on 40 rooms spread over the masters: joins on both nodes see each other, events arrive once on every member, heartbeats refresh every room, leave, a silent member expires exactly once',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const rooms = Array.from({ length: ROOMS }, (_, i) => uid(`spread${i}`));
      const a1 = await member(nodeA, 'a1');
      const b1 = await member(nodeB, 'b1');
      const aJoin = new Map();
      const bJoin = new Map();
      for (const room of rooms) aJoin.set(room, await a1.join(room, 'alice', { state: { side: 'a' } }));
      for (const room of rooms) {
        const ack = await b1.join(room, 'bob', { state: { side: 'b' } });
        bJoin.set(room, ack);
        const aId = aJoin.get(room).self.connId;
        assert.deepEqual(sorted(ack.snapshot.map((m) => m.connId)), sorted([aId, ack.self.connId]), `B's join ack in ${room} lists A's member: ${show(ack.snapshot)}`);
        const alice = ack.snapshot.find((m) => m.connId === aId);
        assert.equal(alice.userId, 'alice');
        assert.deepEqual(alice.state, { side: 'a' });
      }
      const aId = (room) => aJoin.get(room).self.connId;
      const bId = (room) => bJoin.get(room).self.connId;

      // The rooms' keys spread over several slots and masters.
      const placed = await cluster.scanAll();
      const roomHomes = rooms.map((room) => {
        const found = placed.filter((k) => k.key.endsWith(`:room:${room}`));
        assert.equal(found.length, 1, `one room index of ${room} in the cluster: ${show(found)}`);
        return found[0];
      });
      const slots = await cluster.keySlots(roomHomes.map((k) => k.key));
      const masters = new Set(roomHomes.map((k) => k.port));
      report(`presence spread: ${ROOMS} rooms' indexes in ${new Set(slots).size} slots on ${masters.size} of ${(await cluster.masters()).length} masters (${show([...masters])})`);
      assert.ok(new Set(slots).size > 1, `the rooms must spread over several slots: ${show(slots)}`);
      assert.ok(masters.size >= 2, `the rooms must spread over several masters, got ${show([...masters])}`);

      // Each node reads the other's members.
      for (const room of rooms) {
        await a1.events.waitFor({ type: 'join', roomId: room, connId: bId(room) });
        await b1.events.waitFor({ type: 'join', roomId: room, connId: bId(room) });
        const snap = await a1.snapshot(room);
        assert.deepEqual(sorted(snap.map((m) => m.connId)), sorted([aId(room), bId(room)]), `snapshot of ${room} on A: ${show(snap)}`);
        assert.deepEqual(snap.find((m) => m.connId === bId(room)).state, { side: 'b' });
      }

      // Heartbeats: a patch per room from A, seen on B; one heartbeat without a room refreshes all 40.
      for (const room of rooms) {
        const { epoch } = aJoin.get(room).self;
        const hb = await a1.ok('presence:heartbeat', { roomId: room, patchState: { n: 1 }, epoch });
        assert.ok(hb.epoch > epoch, `the patch bumps the epoch in ${room}: ${show(hb)}`);
      }
      for (const room of rooms) {
        const up = await b1.events.waitFor({ type: 'update', roomId: room, connId: aId(room) });
        assert.deepEqual(up.state, { side: 'a', n: 1 }, `update in ${room}: ${show(up)}`);
      }
      const all = await b1.ok('presence:heartbeat', {});
      assert.deepEqual(sorted(Object.keys(all.epochs ?? {})), sorted(rooms), `a heartbeat without roomId answers every room's epoch: ${show(all)}`);

      await h.barrier(rooms[0], { nodes: [nodeA, nodeB], observers: [a1, b1], after: [a1, b1] });
      for (const room of rooms) {
        a1.events.assertCount({ type: 'join', roomId: room, connId: aId(room) }, 1, `own join in ${room}`);
        a1.events.assertCount({ type: 'join', roomId: room, connId: bId(room) }, 1, `B's join in ${room}`);
        b1.events.assertCount({ type: 'join', roomId: room, connId: bId(room) }, 1, `own join in ${room}`);
        a1.events.assertCount({ type: 'update', roomId: room, connId: aId(room) }, 1, `own update in ${room}`);
        b1.events.assertCount({ type: 'update', roomId: room, connId: aId(room) }, 1, `A's update in ${room}`);
      }

      // Leave: B leaves half the rooms.
      const left = rooms.slice(0, ROOMS / 2);
      const kept = rooms.slice(ROOMS / 2);
      for (const room of left) await b1.ok('presence:leave', { roomId: room });
      for (const room of left) await a1.events.waitFor({ type: 'leave', roomId: room, connId: bId(room) });
      await h.barrier(kept[0], { nodes: [nodeB, nodeA], observers: [a1, b1], after: [b1] });
      for (const room of left) {
        a1.events.assertCount({ type: 'leave', roomId: room, connId: bId(room) }, 1, `B's leave of ${room}`);
        assert.deepEqual((await a1.snapshot(room)).map((m) => m.connId), [aId(room)], `${room} after B left`);
      }

      // A silent member (a socket on B that never heartbeats) in all 40 rooms.
      const reapedBefore = await reapedCounts([nodeA, nodeB]);
      const silent = await h.connect(nodeB, { label: 'silent' });
      const sIds = new Map();
      for (const room of rooms) sIds.set(room, (await silent.join(room, 'sam')).self.connId);
      for (const room of rooms) await a1.events.waitFor({ type: 'join', roomId: room, connId: sIds.get(room) });
      for (const room of rooms) await a1.events.waitFor({ type: 'expire', roomId: room, connId: sIds.get(room) }, EXPIRE_DEADLINE_MS);
      for (const room of kept) await b1.events.waitFor({ type: 'expire', roomId: room, connId: sIds.get(room) }, EXPIRE_DEADLINE_MS);
      let counts;
      await waitUntil(async () => sum((counts = await reapedCounts([nodeA, nodeB]))) >= sum(reapedBefore) + ROOMS, {
        timeoutMs: EXPIRE_DEADLINE_MS,
        what: () => `the ${ROOMS} removals to be counted (${show(counts)}, before ${show(reapedBefore)})`,
      });
      const reapedAfterExpiry = counts;
      // Both reapers run again to the end before the expires are counted (cluster.test.mjs):
      // sentinels lapse in a room both observers are in, alternating nodes, until each node's
      // count has moved; their expires come in behind anything those runs and earlier ones sent.
      const watchRoom = kept[0];
      const lapsing = [];
      await waitUntil(
        async () => {
          counts = await reapedCounts([nodeA, nodeB]);
          if (counts.every((n, i) => n > reapedAfterExpiry[i])) return true;
          const node = [nodeA, nodeB][lapsing.length % 2];
          const s = await h.connect(node, { label: 'sentinel' });
          lapsing.push({ client: s, connId: (await s.join(watchRoom, uid('sentinel'))).self.connId });
          return false;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: () => `both reapers to expire a sentinel (counts ${show(counts)}, after the expiry ${show(reapedAfterExpiry)})` },
      );
      const stored = new Set((await a1.snapshot(watchRoom)).map((m) => m.connId));
      const reapedSentinels = lapsing.filter((s) => !stored.has(s.connId));
      for (const c of [a1, b1]) {
        for (const s of reapedSentinels) await c.events.waitFor({ type: 'expire', connId: s.connId }, EXPIRE_DEADLINE_MS);
      }
      await h.barrier(watchRoom, { nodes: [nodeA, nodeB], observers: [a1, b1] });
      for (const room of rooms) {
        a1.events.assertCount({ type: 'expire', roomId: room, connId: sIds.get(room) }, 1, `the silent member's expire in ${room}`);
        a1.events.assertCount({ type: 'leave', connId: sIds.get(room) }, 0, 'a lapse is an expire, not a leave');
      }
      for (const room of kept) b1.events.assertCount({ type: 'expire', roomId: room, connId: sIds.get(room) }, 1, `the silent member's expire in ${room}`);
      const ownIds = new Set(rooms.flatMap((room) => [aId(room), bId(room)]));
      for (const c of [a1, b1]) {
        assert.deepEqual(c.events.filter((e) => e.type === 'expire' && ownIds.has(e.connId)), [], `${c.label}: heartbeating members never expire`);
      }
      assert.equal(silent.connected, true, 'the silent socket stays connected');
      for (const s of lapsing) assert.equal((await s.client.request('presence:leave', { roomId: watchRoom }))?.ok, true);
      for (const room of rooms) {
        const want = sorted(left.includes(room) ? [aId(room)] : [aId(room), bId(room)]);
        for (const c of [a1, b1]) assert.deepEqual(sorted((await c.snapshot(room)).map((m) => m.connId)), want, `${room} on ${c.label}`);
      }
    }),
  );

  it(
    'the chat plugin on both nodes: messages fan out across nodes exactly once; the kv history written through one node is read through the other',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('chat');
      const a = await member(nodeA, 'alice');
      const b = await member(nodeB, 'bob');
      const aMsg = listen(a, 'chat:message');
      const bMsg = listen(b, 'chat:message');
      await a.join(roomId, 'alice');
      await b.join(roomId, 'bob');

      const sent = [];
      for (let i = 0; i < 6; i += 1) {
        const [from, user, node] = i % 2 === 0 ? [a, 'alice', 'A'] : [b, 'bob', 'B'];
        const text = `message ${i} from node ${node}`;
        const ack = await from.ok('chat:message', { roomId, text });
        sent.push([ack.data.id, user, text]);
        for (const log of [aMsg, bMsg]) {
          const got = await log.waitFor({ id: ack.data.id });
          assert.deepEqual([got.roomId, got.userId, got.text], [roomId, user, text], `${log.label}: ${show(got)}`);
        }
      }
      assert.equal(new Set(sent.map((m) => m[0])).size, sent.length, `message ids are unique across nodes: ${show(sent)}`);
      await h.barrier(roomId, { nodes: [nodeA, nodeB], observers: [a, b], after: [a, b] });
      await h.barrier(roomId, { nodes: [nodeB, nodeA], observers: [a, b] });
      for (const log of [aMsg, bMsg]) {
        for (const [id] of sent) log.assertCount({ id }, 1, `message ${id} exactly once`);
      }

      for (const [client, label] of [[b, 'via node B'], [a, 'via node A']]) {
        const { messages } = (await client.ok('chat:history', { roomId })).data;
        assert.deepEqual(messages.map((m) => [m.id, m.userId, m.text]), sent, `history ${label}: ${show(messages)}`);
      }
      for (const node of [nodeA, nodeB]) {
        const fresh = await h.connect(node, { label: 'carol' });
        const { messages } = (await fresh.ok('chat:history', { roomId })).data;
        assert.deepEqual(messages.map((m) => m.id), sent.map((m) => m[0]), `a fresh socket on ${node.name} reads the same history`);
      }
      const kv = (await cluster.scanAll()).filter((k) => keyKind(k.key) === 'plugin kv' && k.key.includes(roomId));
      assert.ok(kv.length > 0, `the history is in the cluster under the chat plugin's kv: ${show(await cluster.scanAll())}`);
    }),
  );

  it(
    'the Server API: a publish through node A reaches the room on node B once; stats and presence agree with the snapshot on both nodes',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('api');
      const tabA = await member(nodeA, 'u1-tab-a');
      const tabB = await member(nodeB, 'u1-tab-b');
      const other = await member(nodeB, 'u2');
      const members = [tabA, tabB, other];
      for (const c of members) c.news = listen(c, EVENT);
      await tabA.join(room, 'u1');
      await tabB.join(room, 'u1');
      await other.join(room, 'u2');

      const tag = uid('published');
      const res = await apiRequest(nodeA, '/api/v1/default/publish', { key: API_KEY, body: { room, event: EVENT, data: { tag } } });
      assert.equal(res.status, 200, `publish through node A: ${res.status} ${res.text}`);
      assert.equal(res.body?.ok, true, `publish through node A: ${res.text}`);
      for (const c of members) await c.news.waitFor({ tag }, DELIVERY_TIMEOUT_MS);
      // Markers published through each node in turn come after anything the publish caused.
      for (const node of [nodeA, nodeB]) {
        const marker = uid('marker');
        const m = await apiRequest(node, '/api/v1/default/publish', { key: API_KEY, body: { room, event: EVENT, data: { marker } } });
        assert.equal(m.status, 200, `marker through ${node.name}: ${m.text}`);
        for (const c of members) await c.news.waitFor({ marker }, BARRIER_TIMEOUT_MS);
      }
      for (const c of members) c.news.assertCount({ tag }, 1, 'the publish, exactly once');

      const snap = await tabB.snapshot(room);
      assert.equal(snap.length, 3, show(snap));
      const expected = { members: snap.length, users: new Set(snap.map((m) => m.userId)).size };
      assert.deepEqual(expected, { members: 3, users: 2 });
      for (const node of [nodeA, nodeB]) {
        const st = await apiRequest(node, `/api/v1/default/rooms/${room}/stats`, { method: 'GET', key: API_KEY });
        assert.equal(st.status, 200, `stats through ${node.name}: ${st.text}`);
        assert.deepEqual({ members: st.body.members, users: st.body.users }, expected, `stats through ${node.name} agree with the snapshot: ${st.text}`);
        const pr = await apiRequest(node, `/api/v1/default/rooms/${room}/presence`, { method: 'GET', key: API_KEY });
        assert.equal(pr.status, 200, `presence through ${node.name}: ${pr.text}`);
        const view = (s) => sorted(s.map((m) => `${m.connId} ${m.userId} ${m.epoch}`));
        assert.deepEqual(view(pr.body.snapshot), view(snap), `presence through ${node.name} equals the snapshot`);
      }
    }),
  );

  it(
    'a burst of 2,000 cross-node emits (20 Server API batches of 100 at once through node A) reaches a socket on node B, each once and in order, and node B counts every one queued, none dropped',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('burst');
      const sub = await member(nodeB, 'burst-sub');
      const log = listen(sub, EVENT);
      await sub.join(room, 'u-burst');
      const metrics = async () => getText(`${nodeB.url}/metrics`);
      const before = await metrics();
      const outcome = (text, o) => metricSum(text, 'rtm_adapter_messages_total', { outcome: o });
      const BATCHES = 20;
      const PER_BATCH = 100;
      const replies = await Promise.all(
        Array.from({ length: BATCHES }, (_, b) =>
          apiRequest(nodeA, '/api/v1/default/batch', {
            key: API_KEY,
            body: { items: Array.from({ length: PER_BATCH }, (_, i) => ({ method: 'publish', params: { room, event: EVENT, data: { burst: room, b, i } } })) },
          }),
        ),
      );
      for (const r of replies) assert.equal(r.status, 200, `batch: ${r.status} ${r.text}`);
      const got = await log.waitForCount({ burst: room }, BATCHES * PER_BATCH, DELIVERY_TIMEOUT_MS * 3);
      // Each batch's items are published in order; batches run concurrently.
      for (let b = 0; b < BATCHES; b++) {
        const seq = got.filter((e) => e.b === b).map((e) => e.i);
        assert.deepEqual(seq, Array.from({ length: PER_BATCH }, (_, i) => i), `batch ${b} arrived once each, in order`);
      }
      const marker = uid('burst-marker');
      const m = await apiRequest(nodeA, '/api/v1/default/publish', { key: API_KEY, body: { room, event: EVENT, data: { marker } } });
      assert.equal(m.status, 200, m.text);
      await log.waitFor({ marker }, BARRIER_TIMEOUT_MS);
      log.assertCount({ burst: room }, BATCHES * PER_BATCH, 'no late duplicate');
      const after = await metrics();
      const queued = outcome(after, 'queued') - outcome(before, 'queued');
      assert.ok(queued >= BATCHES * PER_BATCH, `node B queued ${queued} adapter messages for ${BATCHES * PER_BATCH} emits: ${show(after.split('\n').filter((l) => l.startsWith('rtm_adapter')))}`);
      for (const o of ['dropped_full', 'dropped_lagged']) {
        assert.equal(outcome(after, o), outcome(before, o), `node B dropped nothing (${o})`);
      }
    }),
  );

  it(
    'key layout: every key starts with prs:, every presence key has a hash tag, a room\'s conn/room/users/seen keys share one slot, a plugin\'s kv keys the slot of its {tenant:plugin} tag',
    TEST_TIMEOUT,
    h.wrap(async () => {
      // Live traffic: rooms with members on both nodes, chat history in some of them.
      const a = await member(nodeA, 'layout-a');
      const b = await member(nodeB, 'layout-b');
      const rooms = Array.from({ length: 8 }, (_, i) => uid(`layout${i}`));
      const ids = new Map();
      for (const room of rooms) {
        ids.set(room, [(await a.join(room, 'ann', { state: { n: 1 } })).self.connId, (await b.join(room, 'ben')).self.connId]);
      }
      for (const room of rooms.slice(0, 3)) await a.ok('chat:message', { roomId: room, text: 'kept in kv' });

      const placed = await cluster.scanAll();
      const keys = placed.map((k) => k.key);
      const home = new Map(placed.map((k) => [k.key, k.port]));
      assert.ok(keys.length > 0, 'rtm wrote keys');
      assert.deepEqual(keys.filter((k) => !k.startsWith(PREFIX)), [], `every key starts with ${PREFIX}`);
      const presenceKeys = keys.filter((k) => PRESENCE_KINDS.includes(keyKind(k)));
      assert.deepEqual(presenceKeys.filter((k) => hashTag(k) === null), [], `every presence key carries a hash tag: ${show(presenceKeys)}`);

      const layouts = [];
      for (const room of rooms) {
        const layout = roomKeys(keys, room, ids.get(room), `room ${room}`);
        layout.slot = await assertOneSlot(cluster, layout, `room ${room}`);
        layouts.push(layout);
      }

      const pluginKeys = keys.filter((k) => keyKind(k).startsWith('plugin kv'));
      assert.deepEqual(pluginKeys.filter((k) => hashTag(k) === null), [], `every plugin kv key carries a hash tag: ${show(pluginKeys)}`);
      const byTag = new Map();
      for (const k of pluginKeys) byTag.set(hashTag(k), [...(byTag.get(hashTag(k)) ?? []), k]);
      assert.ok(byTag.has('default:chat'), `the chat plugin's kv is tagged {default:chat}: ${show(pluginKeys)}`);
      for (const [tag, group] of byTag) {
        assert.match(tag, /^[a-z0-9-]+:[A-Za-z0-9_.-]+$/, `a plugin kv tag names tenant and plugin: ${tag}`);
        const tagSlot = await cluster.keySlot(`{${tag}}`);
        const slotsOf = await cluster.keySlots(group);
        assert.deepEqual(
          group.filter((_, i) => slotsOf[i] !== tagSlot),
          [],
          `every kv key of {${tag}} is in its tag's slot ${tagSlot}`,
        );
      }
      const chatKeys = byTag.get('default:chat');
      for (const room of rooms.slice(0, 3)) {
        assert.ok(chatKeys.some((k) => k.includes(room)), `chat history of ${room} under {default:chat}: ${show(chatKeys)}`);
      }

      // One example key per kind, with its slot and owning master.
      const example = new Map();
      const first = layouts[0];
      example.set('registration (conn)', first.conns[0]);
      example.set('room index (room)', first.room);
      example.set('user counts (users)', first.users);
      example.set('by-last-seen index (seen)', first.seen);
      for (const k of keys) if (!example.has(keyKind(k))) example.set(keyKind(k), k);
      const exampleKeys = [...example.values()];
      const exampleSlots = await cluster.keySlots(exampleKeys);
      const kinds = new Map();
      for (const k of keys) kinds.set(keyKind(k), (kinds.get(keyKind(k)) ?? 0) + 1);
      const masters = await cluster.masters();
      const lines = [
        `key layout on the Redis Cluster (${keys.length} keys on ${new Set(placed.map((k) => k.port)).size} masters; masters ${masters.map((m) => `:${m.port} slots ${m.slots.map((r) => r.join('-')).join(',')}`).join(', ')}):`,
        ...[...example.entries()].map(([kind, key], i) => `  ${kind.padEnd(26)} ${key}  slot ${exampleSlots[i]}  master :${home.get(key)}  (${kinds.get(kind)} keys of this kind)`),
        `  rooms of this test: ${layouts.map((l) => `slot ${l.slot} on :${home.get(l.room)}`).join('; ')}`,
      ];
      report(lines.join('\n'));
    }),
  );
});

describe('redis cluster: two tenants on two nodes', () => {
  const h = new Harness();
  let cluster;
  let node1;
  let node2;
  before(async () => {
    const file = tenantsFile('rtm-cluster-tenants-', { tenants: [{ id: 'a' }, { id: 'b' }] });
    cluster = await h.startRedisCluster();
    const env = { ...SLOW_ENV, TENANTS_FILE: file };
    node1 = await startClusterHost(h, cluster, 'node1', env);
    node2 = await startClusterHost(h, cluster, 'node2', env);
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'the same room name in tenants a and b is two rooms (snapshots and events never cross), and their keys are under different hash tags',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('shared');
      const tenantSocket = (node, id, label) => h.connect(node, { namespace: `/${id}`, label });
      const b1 = await tenantSocket(node2, 'b', 'b1');
      const b2 = await tenantSocket(node1, 'b', 'b2');
      const a1 = await tenantSocket(node1, 'a', 'a1');
      const a2 = await tenantSocket(node2, 'a', 'a2');
      const b1Id = (await b1.join(room, 'bob', { state: { tenant: 'b' } })).self.connId;
      const b2Id = (await b2.join(room, 'bea')).self.connId;
      const a1Join = await a1.join(room, 'alice', { state: { tenant: 'a' } });
      const a1Id = a1Join.self.connId;
      assert.deepEqual(a1Join.snapshot.map((m) => m.connId), [a1Id], `a's room holds only a's member: ${show(a1Join.snapshot)}`);
      const a2Join = await a2.join(room, 'alan');
      const a2Id = a2Join.self.connId;
      assert.deepEqual(sorted(a2Join.snapshot.map((m) => m.connId)), sorted([a1Id, a2Id]), `a's room on node2: ${show(a2Join.snapshot)}`);
      await a1.events.waitFor({ type: 'join', connId: a2Id });
      await b1.events.waitFor({ type: 'join', connId: b2Id });
      assert.deepEqual(sorted((await b2.snapshot(room)).map((m) => m.connId)), sorted([b1Id, b2Id]), "b's room on node1");

      await h.barrier(room, { nodes: [node1, node2], observers: [b1, b2], after: [a1, a2], marker: { namespace: '/b' } });
      await h.barrier(room, { nodes: [node2, node1], observers: [a1, a2], after: [b1, b2], marker: { namespace: '/a' } });
      const own = { a: new Set([a1Id, a2Id]), b: new Set([b1Id, b2Id]) };
      const foreign = (c, id) => c.events.filter((e) => !own[id].has(e.connId) && !String(e.userId).startsWith('barrier-marker'));
      for (const c of [b1, b2]) assert.deepEqual(foreign(c, 'b'), [], `${c.label} gets nothing of tenant a`);
      for (const c of [a1, a2]) assert.deepEqual(foreign(c, 'a'), [], `${c.label} gets nothing of tenant b`);

      const placed = await cluster.scanAll();
      const keys = placed.map((k) => k.key);
      assert.deepEqual(keys.filter((k) => !k.startsWith('prs:a:') && !k.startsWith('prs:b:')), [], `every key under its tenant: ${show(keys)}`);
      const la = roomKeys(keys.filter((k) => k.startsWith('prs:a:')), room, [a1Id, a2Id], `tenant a's ${room}`);
      const lb = roomKeys(keys.filter((k) => k.startsWith('prs:b:')), room, [b1Id, b2Id], `tenant b's ${room}`);
      const slotA = await assertOneSlot(cluster, la, `tenant a's ${room}`);
      const slotB = await assertOneSlot(cluster, lb, `tenant b's ${room}`);
      const [tagA, tagB] = [hashTag(la.room), hashTag(lb.room)];
      assert.ok(tagA?.startsWith('a:') && tagB?.startsWith('b:'), `each tenant's tag names it: ${la.room}, ${lb.room}`);
      assert.notEqual(tagA, tagB, 'the two tenants\' rooms of one name are under different tags');
      report(`tenants: room ${room} of a is ${la.room} (tag {${tagA}}, slot ${slotA}), of b ${lb.room} (tag {${tagB}}, slot ${slotB})`);
    }),
  );
});

describe('redis cluster: failover of the master owning a busy room', () => {
  const h = new Harness();
  const CLIENTS = 200;
  const HEARTBEAT_MS = 200;
  /** Each member also chats in a room of CHAT_GROUP members, one message per CHAT_MS. */
  const CHAT_GROUP = 10;
  const CHAT_MS = 2_000;
  /** Ack deadline of each heartbeat: far above REDIS_TIMEOUT_MS; a request past it hangs. */
  const HEARTBEAT_ACK_MS = 10_000;
  /** The failover contract: acks are ok again this soon after the promotion. */
  const RESUME_WITHIN_MS = 15_000;
  let cluster;
  let nodeA;
  let nodeB;
  before(async () => {
    assertGuests(['chat-v1.wasm']);
    const dir = keep(makePluginsDir({ 'chat.wasm': 'chat-v1.wasm' }));
    cluster = await h.startRedisCluster();
    // A TTL far above the gap: a member must survive the failover without re-joining.
    const env = { ...SLOW_ENV, PLUGINS_DIR: dir, PLUGIN_CACHE_DIR: CACHE_DIR };
    nodeA = await startClusterHost(h, cluster, 'node-a', env);
    nodeB = await startClusterHost(h, cluster, 'node-b', env);
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'SIGKILL of the master under 200 members heartbeating and chatting: requests answer (ok or unavailable) within their ack timeout, acks are ok again within 15 s of the promotion, both nodes\' snapshots hold every member exactly once, and a node SIGKILLed afterwards has each of its members expired exactly once on the other',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const busy = uid('busy');
      const members = [];
      for (let i = 0; i < CLIENTS; i += 1) {
        const node = i % 2 === 0 ? nodeA : nodeB;
        const client = await h.connect(node, { label: `m${i}` });
        const { self } = await client.join(busy, `user${i}`, { state: { i } });
        const chatRoom = `${busy}-chat${Math.floor(i / CHAT_GROUP)}`;
        await client.join(chatRoom, `user${i}`);
        members.push({ client, connId: self.connId, userId: `user${i}`, inflight: false, chatRoom, chatting: false });
      }

      // Every member chats in its group's room every CHAT_MS, one message at a time.
      const chats = [];
      let chatting = true;
      const chatTimers = members.map((m, i) =>
        setInterval(() => {
          if (!chatting || m.chatting) return;
          m.chatting = true;
          const sent = Date.now();
          m.client
            .request('chat:message', { roomId: m.chatRoom, text: `m${i} at ${sent}` }, HEARTBEAT_ACK_MS)
            .then(
              (ack) => chats.push({ m, sent, at: Date.now(), ack }),
              (err) => chats.push({ m, sent, at: Date.now(), error: err.message }),
            )
            .finally(() => {
              m.chatting = false;
            });
        }, CHAT_MS),
      );

      // Every member heartbeats the room every 200 ms, one request at a time, each answer recorded.
      const records = [];
      let load = true;
      /** Members whose node still runs (the last phase SIGKILLs node A). */
      let beating = () => true;
      const timers = members.map((m) =>
        setInterval(() => {
          if (!load || m.inflight || !beating(m)) return;
          m.inflight = true;
          const sent = Date.now();
          m.client
            .request('presence:heartbeat', { roomId: busy }, HEARTBEAT_ACK_MS)
            .then(
              (ack) => records.push({ m, sent, at: Date.now(), ack }),
              (err) => records.push({ m, sent, at: Date.now(), error: err.message }),
            )
            .finally(() => {
              m.inflight = false;
            });
        }, HEARTBEAT_MS),
      );
      const okSince = (m, t) => records.some((r) => r.m === m && r.sent >= t && r.ack?.ok === true);
      try {
        await waitUntil(() => members.every((m) => okSince(m, 0)), { timeoutMs: 30_000, what: 'every member to heartbeat ok before the kill' });

        const roomKey = (await cluster.scanAll()).find((k) => k.key.endsWith(`:room:${busy}`));
        assert.ok(roomKey, `the busy room's index is in the cluster`);
        const slot = await cluster.keySlot(roomKey.key);
        const victim = await cluster.masterOfSlot(slot);
        assert.equal(victim, roomKey.port, 'the scan found the room index on the master of its slot');
        const replicas = (await cluster.masters()).find((m) => m.port === victim).replicas;
        // Everything written so far (the 50 joins) has reached the replica.
        await cluster.waitReplicated(victim);

        const killAt = Date.now();
        await cluster.kill(victim);
        const promoted = await cluster.waitFailover(slot, { from: victim, timeoutMs: 60_000 });
        let resumedAt;
        await waitUntil(() => members.every((m) => okSince(m, promoted.at)) && (resumedAt = Date.now()), {
          timeoutMs: Math.max(0, promoted.at + RESUME_WITHIN_MS - Date.now()),
          intervalMs: 20,
          what: () =>
            `every member's heartbeat to be ok again within ${RESUME_WITHIN_MS} ms of the promotion (${members.filter((m) => !okSince(m, promoted.at)).length} not yet; ` +
            `answers since the promotion: ${show(records.filter((r) => r.sent >= promoted.at).slice(-5).map((r) => r.ack ?? r.error))})`,
        });
        load = false;
        chatting = false;
        await waitUntil(() => members.every((m) => !m.inflight && !m.chatting), {
          timeoutMs: HEARTBEAT_ACK_MS + 5_000,
          what: 'the last heartbeats and chat messages to be answered',
        });

        // The transcript.
        const rel = (t) => `+${t - killAt} ms`.padStart(10);
        const byAt = [...records].sort((x, y) => x.at - y.at);
        const firstUnavailable = byAt.find((r) => r.at >= killAt && r.ack?.error?.code === 'unavailable');
        const firstOkAgain = byAt.find((r) => r.ack?.ok === true && r.sent >= killAt && (!firstUnavailable || r.at > firstUnavailable.at));
        const gapEnd = firstOkAgain?.at ?? resumedAt;
        const gap = records.filter((r) => r.sent >= killAt && r.at <= gapEnd);
        const slowest = Math.max(0, ...records.filter((r) => r.sent >= killAt).map((r) => r.at - r.sent));
        const who = (r) => `${r.m.client.label}`;
        const timeline = [
          [killAt, `SIGKILL master :${victim} (replicas ${show(replicas)})`],
          [promoted.at, `promotion seen: :${promoted.port} master of slot ${slot}, cluster_state:ok on every live node`],
          [resumedAt, `every member acked ok again (${resumedAt - promoted.at} ms after the promotion)`],
        ];
        if (firstUnavailable) {
          timeline.push([firstUnavailable.at, `first unavailable ack (sent ${rel(firstUnavailable.sent).trim()}, ${who(firstUnavailable)}): ${show(firstUnavailable.ack)}`]);
        }
        if (firstOkAgain) timeline.push([firstOkAgain.at, `first ok ack again (sent ${rel(firstOkAgain.sent).trim()}, ${who(firstOkAgain)})`]);
        timeline.sort((x, y) => x[0] - y[0]);
        report(
          [
            `failover transcript (times from the SIGKILL; slot ${slot} holds ${roomKey.key}; ${CLIENTS} members on 2 nodes heartbeating every ${HEARTBEAT_MS} ms):`,
            ...timeline.map(([t, line]) => `  ${rel(t)}  ${line}`),
            ...(firstUnavailable ? [] : ['  (no unavailable ack: every request in the gap waited and was served)']),
            `  chat messages: ${chats.length} (${chats.filter((r) => r.ack?.ok).length} ok, ${chats.filter((r) => r.ack && !r.ack.ok).length} refused: ${show([...new Set(chats.filter((r) => r.ack && !r.ack.ok).map((r) => r.ack.error?.code))])}, ${chats.filter((r) => r.error).length} unanswered)`,
            `  requests: ${records.length} in all; in the gap (sent after the kill, answered by the first ok again): ${gap.filter((r) => r.ack?.ok).length} ok, ${gap.filter((r) => r.ack?.error?.code === 'unavailable').length} unavailable, ${gap.filter((r) => r.error).length} unanswered; slowest answer after the kill ${slowest} ms (ack timeout ${HEARTBEAT_ACK_MS} ms)`,
          ].join('\n'),
        );

        const hung = records.filter((r) => r.error);
        assert.deepEqual(hung.map((r) => `${who(r)} sent ${rel(r.sent).trim()}: ${r.error}`), [], 'no request hangs past its ack timeout');
        const hungChats = chats.filter((r) => r.error);
        assert.deepEqual(hungChats.map((r) => `${who(r)} chat sent ${rel(r.sent).trim()}: ${r.error}`), [], 'no chat message hangs past its ack timeout');
        for (const r of chats.filter((x) => x.ack && !x.ack.ok)) assert.equal(typeof r.ack.error?.code, 'string', `a refused chat message carries a code: ${show(r.ack)}`);
        assert.ok(chats.some((r) => r.ack?.ok), 'chat messages were acked');
        const odd = records.filter((r) => r.ack && r.ack.ok !== true && r.ack?.error?.code !== 'unavailable');
        assert.deepEqual(odd.map((r) => r.ack), [], 'every answer is ok or unavailable');
        for (const r of records.filter((x) => x.ack?.ok !== true)) assertError(r.ack, 'unavailable', `${who(r)} heartbeat during the failover`);
        assert.deepEqual(members.filter((m) => !m.client.connected).map((m) => m.client.label), [], 'a failover disconnects nobody');
        assert.ok(nodeA.running && nodeB.running, 'rtm was not restarted');

        // No registration lost or duplicated, on either node.
        const want = sorted(members.map((m) => m.connId));
        const views = [];
        for (const node of [nodeA, nodeB]) {
          const reader = members.find((m) => m.client.host === node).client;
          const snap = await reader.snapshot(busy);
          const ids = snap.map((m) => m.connId);
          assert.equal(new Set(ids).size, ids.length, `${node.name}: each member once in the snapshot: ${show(ids)}`);
          assert.deepEqual(sorted(ids), want, `${node.name}: every still-connected member is in the snapshot`);
          for (const entry of snap) {
            const m = members.find((x) => x.connId === entry.connId);
            assert.equal(entry.userId, m.userId, show(entry));
          }
          views.push(sorted(snap.map((e) => `${e.connId} ${e.userId} ${e.epoch} ${JSON.stringify(e.state)}`)));
        }
        assert.deepEqual(views[0], views[1], 'both nodes read the same room');

        // Node A dies after the failover: node B's reaper expires each of A's members
        // exactly once (the failover left no duplicate index entry behind), seen by
        // every member on B, which keeps heartbeating.
        const onA = members.filter((m) => m.client.host === nodeA);
        const onB = members.filter((m) => m.client.host === nodeB);
        beating = (m) => m.client.host === nodeB;
        load = true;
        nodeA.signal('SIGKILL');
        await nodeA.waitExit(10_000).catch(() => {});
        const aIds = new Set(onA.map((m) => m.connId));
        const expiredOfA = (e) => e.type === 'expire' && aIds.has(e.connId);
        for (const m of onB) await m.client.events.waitForCount(expiredOfA, onA.length, SLOW_ENV.PRESENCE_TTL_MS + 60_000);
        await h.barrier(busy, { nodes: [nodeB], observers: onB.map((m) => m.client) });
        for (const m of onB) {
          for (const a of onA) m.client.events.assertCount({ type: 'expire', connId: a.connId }, 1, `${a.client.label} expired once`);
        }
        report(`  node-a SIGKILLed after the failover: each of its ${onA.length} members expired exactly once on all ${onB.length} members of node-b`);
      } finally {
        load = false;
        chatting = false;
        for (const t of [...timers, ...chatTimers]) clearInterval(t);
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// 7. a restarted cluster node
// ---------------------------------------------------------------------------

/**
 * One describe block's parts: a cluster and two rtm nodes with the Server API on
 * (`API_KEY`), started in `before` and stopped in `after`. Each fault scenario gets
 * its own, so a broken subscription cannot leak into the next one.
 */
function twoNodesWithApi() {
  const ctx = { h: new Harness(), key: apiKey('restart-api') };
  before(async () => {
    ctx.cluster = await ctx.h.startRedisCluster();
    const env = { ...SLOW_ENV, API_KEY: ctx.key };
    ctx.nodeA = await startClusterHost(ctx.h, ctx.cluster, 'node-a', env);
    ctx.nodeB = await startClusterHost(ctx.h, ctx.cluster, 'node-b', env);
  });
  after(() => ctx.h.stop());
  afterEach(() => ctx.h.closeClients());
  return ctx;
}

/** A watched socket on `node` in `room`. */
async function inRoom(ctx, node, room, label) {
  const c = await ctx.h.connect(node, { label });
  c.news = listen(c, EVENT);
  await c.join(room, label);
  return c;
}

/**
 * Publishes fresh probes to `room` through `from`'s Server API, one per poll, until
 * `observer` (a socket on the other node) has received any of them: cross-node
 * emits flow. (A probe published before the subscription came back is lost for
 * good, hence new probes rather than waiting on the first.) Returns a line saying
 * what it took.
 */
async function crossNode(ctx, from, observer, room, timeoutMs = 30_000) {
  const probes = [];
  const refused = [];
  const started = Date.now();
  await waitUntil(
    async () => {
      if (probes.some((probe) => observer.news.count({ probe }) > 0)) return true;
      const probe = uid('probe');
      const res = await apiRequest(from, '/api/v1/default/publish', { key: ctx.key, body: { room, event: EVENT, data: { probe } } });
      if (res.status === 200 && res.body?.ok) probes.push(probe);
      else refused.push(`${res.status} ${res.text.slice(0, 200)}`);
      return false;
    },
    {
      timeoutMs,
      intervalMs: 250,
      what: () => `${observer.label} to receive a publish made through ${from.name} (${probes.length} published and answered 200 ok, none arrived; refused: ${show(refused)})`,
    },
  );
  const arrived = probes.findIndex((probe) => observer.news.count({ probe }) > 0);
  return `${from.name} -> ${observer.label}: probe ${arrived + 1} of ${probes.length} arrived after ${Date.now() - started} ms${refused.length ? `, ${refused.length} refused` : ''}`;
}

/** `PUBSUB SHARDNUMSUB channel` on every live master: `{ <port>: subscribers }`. */
async function channelSubscribers(cluster, channel) {
  const out = {};
  for (const m of await cluster.masters()) out[m.port] = (await cluster.command(m.port, 'PUBSUB', 'SHARDNUMSUB', channel))[1];
  return out;
}

/**
 * The Socket.IO adapter's broadcast channel (`<prefix>sio-request#/#`, a shard
 * channel) and the master both rtm nodes are subscribed to it on.
 */
async function adapterChannel(cluster) {
  let found;
  await waitUntil(
    async () => {
      for (const m of await cluster.masters()) {
        const channel = (await cluster.command(m.port, 'PUBSUB', 'SHARDCHANNELS')).find((c) => c.endsWith('-request#/#'));
        if (channel && (await cluster.command(m.port, 'PUBSUB', 'SHARDNUMSUB', channel))[1] === 2) return (found = { channel, port: m.port });
      }
      return false;
    },
    { timeoutMs: 10_000, what: 'both rtm nodes to be subscribed to the adapter request channel on one master' },
  );
  return found;
}

/**
 * The master carrying the adapter channel suffers `fault` ('stop': SIGSTOP until
 * its replica is promoted, then SIGCONT; 'kill': SIGKILL, then restarted on its
 * port), rejoins as a replica, and cross-node emits must work again both ways.
 */
async function channelMasterFault(ctx, fault) {
  const { cluster, nodeA, nodeB } = ctx;
  const room = uid(`channel-${fault}`);
  const a = await inRoom(ctx, nodeA, room, 'a');
  const b = await inRoom(ctx, nodeB, room, 'b');
  await crossNode(ctx, nodeA, b, room);
  await crossNode(ctx, nodeB, a, room);
  const found = await adapterChannel(cluster);
  const slot = await cluster.keySlot(found.channel);
  assert.equal(await cluster.masterOfSlot(slot), found.port, 'the channel is subscribed on the master of its slot');

  const faultAt = Date.now();
  let promoted;
  if (fault === 'stop') {
    cluster.pause(found.port);
    try {
      promoted = await cluster.waitFailover(slot, { from: found.port, timeoutMs: 60_000 });
    } finally {
      cluster.resume(found.port);
    }
  } else {
    await cluster.kill(found.port);
    promoted = await cluster.waitFailover(slot, { from: found.port, timeoutMs: 60_000 });
    await cluster.restart(found.port);
  }
  await cluster.waitHealthy();
  const healthyAt = Date.now();
  const what = fault === 'stop' ? 'SIGSTOP' : 'SIGKILL';
  const lines = [
    `adapter channel ${found.channel} (slot ${slot}) on master :${found.port}: ${what} at +0 ms, :${promoted.port} promoted at +${promoted.at - faultAt} ms, ` +
      `${fault === 'stop' ? 'SIGCONT' : 'restarted'}, cluster healthy at +${healthyAt - faultAt} ms (:${found.port} now a replica)`,
  ];
  try {
    lines.push(`  ${await crossNode(ctx, nodeA, b, room)}`, `  ${await crossNode(ctx, nodeB, a, room)}`);
    lines.push(`  subscribers of ${found.channel} per master: ${show(await channelSubscribers(cluster, found.channel))}`);
  } catch (err) {
    const subscribers = show(await channelSubscribers(cluster, found.channel));
    lines.push(`  cross-node emits did not resume: ${err.message}`, `  subscribers of ${found.channel} per master now: ${subscribers}`);
    throw new Error(`${err.message}; subscribers of ${found.channel} per master now: ${subscribers}`);
  } finally {
    report(lines.join('\n'));
  }
  assert.ok(nodeA.running && nodeB.running, 'rtm was not restarted');
}

describe('redis cluster: a replica restarted under two rtm nodes', () => {
  const ctx = twoNodesWithApi();
  it(
    'a replica SIGKILLed and restarted rejoins the cluster; cross-node emits and presence keep working',
    TEST_TIMEOUT,
    ctx.h.wrap(async () => {
      const { cluster, nodeA, nodeB } = ctx;
      const room = uid('replica');
      const a = await inRoom(ctx, nodeA, room, 'a');
      const b = await inRoom(ctx, nodeB, room, 'b');
      await crossNode(ctx, nodeA, b, room);
      const [{ replicas }] = await cluster.masters();
      const replica = replicas[0];
      await cluster.kill(replica);
      await cluster.waitHealthy({ replicas: 0 });
      await cluster.restart(replica);
      await cluster.waitHealthy();
      const lines = [`replica :${replica} SIGKILLed and restarted (new pid ${cluster.nodes.find((n) => n.port === replica).pid})`];
      lines.push(`  ${await crossNode(ctx, nodeA, b, room)}`, `  ${await crossNode(ctx, nodeB, a, room)}`);
      const late = await ctx.h.connect(nodeA, { label: 'late' });
      const { self } = await late.join(room, 'late');
      await b.events.waitFor({ type: 'join', connId: self.connId }, DELIVERY_TIMEOUT_MS);
      report(lines.join('\n'));
    }),
  );
});

describe('redis cluster: the master of the adapter channel paused (SIGSTOP / SIGCONT)', () => {
  const ctx = twoNodesWithApi();
  it(
    "the master carrying the Socket.IO adapter's shard channel is SIGSTOPped until its replica takes over, then SIGCONTed: cross-node emits resume both ways without restarting rtm",
    TEST_TIMEOUT,
    ctx.h.wrap(() => channelMasterFault(ctx, 'stop')),
  );
});

describe('redis cluster: the master of the adapter channel killed and restarted', () => {
  const ctx = twoNodesWithApi();
  it(
    "the master carrying the Socket.IO adapter's shard channel is SIGKILLed, its replica takes over, it is restarted: cross-node emits resume both ways without restarting rtm",
    TEST_TIMEOUT,
    ctx.h.wrap(() => channelMasterFault(ctx, 'kill')),
  );
});

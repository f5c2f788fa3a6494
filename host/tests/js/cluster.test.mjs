/**
 * Multi-node end-to-end: several rtm-host processes sharing one private
 * Redis, as in production behind a load balancer.
 *
 * What is pinned (PROTOCOL.md "Each change is broadcast exactly once,
 * however many nodes run", "Redis layout and liveness", DESIGN.md
 * "Cluster"):
 * - join / update / leave made on one node reach clients on every node,
 *   exactly once (counted after a barrier: a marker published by every node
 *   involved, after which no late duplicate can still arrive);
 * - a crashed node's registrations are expired by the reapers of the
 *   surviving nodes, exactly once even with two reapers racing;
 * - a SIGTERMed node says goodbye (`leave`) and exits 0;
 * - a Redis outage fails requests fast with `unavailable` and flips
 *   /readyz, and after Redis comes back on the same address the running
 *   hosts recover, including cross-node emits (the resubscribe bug).
 *
 * Each describe block has its own Redis and nodes so one scenario's
 * wreckage cannot leak into the next.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, assertError, getText, httpStatus, metricValue, show, uid, waitUntil, SLOW_ENV
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 180_000 };

/** Short liveness settings so expiry happens within a test's patience. */
const FAST_TTL_MS = 1_500;
const FAST_REAPER_MS = 200;
const FAST_ENV = {
  PRESENCE_TTL_MS: FAST_TTL_MS,
  PRESENCE_REAPER_INTERVAL_MS: FAST_REAPER_MS,
  PRESENCE_REAPER_LOOKBACK_MS: FAST_TTL_MS,
};
/** Heartbeat period for clients under FAST_ENV: several beats per TTL. */
const BEAT_MS = 300;

/** Generous deadline for an expiry: how fast a loaded machine gets there is not asserted. */
const EXPIRE_DEADLINE_MS = FAST_TTL_MS + FAST_REAPER_MS + 30_000;

/**
 * A registration that lapses: a fresh socket on `node` joins `room` and never
 * heartbeats, so the reapers expire it PRESENCE_TTL_MS after it joined.
 * Returns `{ client, connId }`. The reaper removes lapsed registrations oldest
 * `lastSeen` first, so once a sentinel is expired, every registration that
 * had lapsed before it has been expired too (in that sweep or an earlier one).
 */
async function sentinel(h, node, room) {
  const client = await h.connect(node, { label: 'sentinel' });
  return { client, connId: (await client.join(room, uid('sentinel'))).self.connId };
}

/** `rtm_presence_reaped_total` of each node: registrations its reaper removed so far. */
async function reapedCounts(nodes) {
  return Promise.all(nodes.map(async (node) => metricValue(await getText(`${node.url}/metrics`), 'rtm_presence_reaped_total')));
}

/** Starts `names` as Redis-backed nodes of one harness. */
async function startNodes(h, names, env) {
  const nodes = [];
  for (const name of names) {
    nodes.push(await h.startHost(name, { redis: true, env: { ...env, NODE_ID: name } }));
  }
  return nodes;
}

describe('cluster: fan-out between two nodes', () => {
  const h = new Harness();
  let nodeA;
  let nodeB;
  before(async () => {
    await h.startRedis();
    [nodeA, nodeB] = await startNodes(h, ['node-a', 'node-b'], SLOW_ENV);
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'join, update and leave made on one node are seen exactly once on the other node and on the same node',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const [userA, userB] = [uid('userA'), uid('userB')];
      const b1 = await h.connect(nodeB, { label: 'b1' });
      const a1 = await h.connect(nodeA, { label: 'a1' });
      const aLocal = await h.connect(nodeA, { label: 'a-local' });

      const bJoin = await b1.join(room, userB, { state: { side: 'b' } });
      await aLocal.join(room, uid('local'));
      const aJoin = await a1.join(room, userA, { state: { side: 'a' } });
      const aId = aJoin.self.connId;
      const bId = bJoin.self.connId;
      assert.equal(aJoin.snapshot.length, 3, `A's join ack lists members of both nodes: ${show(aJoin.snapshot)}`);
      assert.ok(aJoin.snapshot.some((m) => m.connId === bId && m.userId === userB), "B's member is in A's snapshot");

      // join
      const seen = await b1.events.waitFor({ type: 'join', connId: aId });
      assert.equal(seen.userId, userA);
      assert.equal(seen.roomId, room);
      assert.deepEqual(seen.state, { side: 'a' });
      await aLocal.events.waitFor({ type: 'join', connId: aId });
      await a1.events.waitFor({ type: 'join', connId: aId });

      // update, both directions
      await a1.ok('presence:heartbeat', { roomId: room, patchState: { cursor: 1 }, epoch: aJoin.self.epoch });
      await b1.ok('presence:heartbeat', { roomId: room, patchState: { cursor: 2 }, epoch: bJoin.self.epoch });
      const upA = await b1.events.waitFor({ type: 'update', connId: aId });
      assert.deepEqual(upA.state, { side: 'a', cursor: 1 });
      const upB = await a1.events.waitFor({ type: 'update', connId: bId });
      assert.deepEqual(upB.state, { side: 'b', cursor: 2 });
      await aLocal.events.waitFor({ type: 'update', connId: bId });
      await b1.events.waitFor({ type: 'update', connId: bId });

      // A1 counts before it leaves the room (afterwards nothing of the room reaches it).
      await h.barrier(room, { nodes: [nodeA, nodeB], observers: [a1, b1, aLocal], after: [a1, b1] });
      a1.events.assertCount({ type: 'join', connId: aId }, 1, 'the caller sees its own join exactly once');
      a1.events.assertCount({ type: 'update', connId: aId }, 1, 'the caller sees its own update exactly once');
      a1.events.assertCount({ type: 'update', connId: bId }, 1, "A sees B's update exactly once");
      b1.events.assertCount({ type: 'update', connId: bId }, 1, 'B sees its own update exactly once');

      // leave
      await a1.ok('presence:leave', { roomId: room });
      await b1.events.waitFor({ type: 'leave', connId: aId });
      await aLocal.events.waitFor({ type: 'leave', connId: aId });

      await h.barrier(room, { nodes: [nodeA, nodeB], observers: [b1, aLocal], after: [a1, b1] });
      for (const [client, label] of [
        [b1, 'other node'],
        [aLocal, 'same node'],
      ]) {
        for (const type of ['join', 'update', 'leave']) {
          assert.equal(
            client.events.count({ type, connId: aId }),
            1,
            `${label} sees A's ${type} exactly once: ${show(client.events.filter({ connId: aId }))}`,
          );
        }
        assert.equal(client.events.count({ type: 'update', connId: bId }), 1, `${label} sees B's update exactly once`);
      }
      assert.equal(a1.events.count({ type: 'join', connId: aId }), 1, 'the caller sees its own join exactly once');
      assert.equal(a1.events.count({ type: 'update', connId: bId }), 1, "A sees B's update exactly once");
      assert.ok(!(await b1.snapshot(room)).some((m) => m.connId === aId), 'A is gone from the snapshot on B');
    }),
  );

  it(
    'a disconnect on one node is seen as one leave on the other',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const b1 = await h.connect(nodeB, { label: 'b1' });
      const a1 = await h.connect(nodeA, { label: 'a1' });
      await b1.join(room, uid('userB'));
      const { self } = await a1.join(room, uid('userA'));
      await b1.events.waitFor({ type: 'join', connId: self.connId });
      a1.close();
      await b1.events.waitFor({ type: 'leave', connId: self.connId });
      // Markers from the node that sent the leave and from the node relaying it.
      await h.barrier(room, { nodes: [nodeA, nodeB], observers: [b1] });
      b1.events.assertCount((e) => e.connId === self.connId && ['leave', 'expire'].includes(e.type), 1, 'one leave');
    }),
  );

  it(
    'snapshot on node B lists a member registered on node A, with its state and epoch',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const user = uid('userA');
      const a1 = await h.connect(nodeA, { label: 'a1' });
      const reader = await h.connect(nodeB, { label: 'reader' });
      const { self } = await a1.join(room, user, { state: { where: 'A' } });
      await a1.ok('presence:heartbeat', { roomId: room, patchState: { n: 1 }, epoch: self.epoch });

      const snap = await reader.snapshot(room);
      assert.equal(snap.length, 1, show(snap));
      assert.equal(snap[0].connId, self.connId);
      assert.equal(snap[0].userId, user);
      assert.deepEqual(snap[0].state, { where: 'A', n: 1 });
      assert.equal(snap[0].epoch, self.epoch + 1);
      assert.equal(typeof snap[0].lastSeen, 'number');
    }),
  );
});

describe('cluster: a node crashes (SIGKILL)', () => {
  const h = new Harness();
  let nodeA;
  let nodeB;
  let nodeC;
  before(async () => {
    await h.startRedis();
    [nodeA, nodeB, nodeC] = await startNodes(h, ['node-a', 'node-b', 'node-c'], FAST_ENV);
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    "its members are expired exactly once, seen on both survivors, within TTL + reaper interval, while heartbeating members live on",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const b1 = await h.connect(nodeB, { label: 'b1' });
      const c1 = await h.connect(nodeC, { label: 'c1' });
      const a1 = await h.connect(nodeA, { label: 'a1' });
      const a2 = await h.connect(nodeA, { label: 'a2' });
      const bJ = await b1.join(room, uid('userB'));
      const cJ = await c1.join(room, uid('userC'));
      const aUsers = [uid('userA1'), uid('userA2')];
      const aIds = [(await a1.join(room, aUsers[0])).self.connId, (await a2.join(room, aUsers[1])).self.connId];
      for (const c of [b1, c1, a1, a2]) h.keepAlive(c, BEAT_MS);
      for (const c of [b1, c1]) for (const id of aIds) await c.events.waitFor({ type: 'join', connId: id });
      const all = [nodeA, nodeB, nodeC];
      const reapedBefore = await reapedCounts(all);

      // Longer than the TTL: heartbeats must keep everyone registered. A sentinel joined
      // now lapses a TTL later; once it is expired, a member its heartbeats failed to keep
      // (an older lastSeen) has been expired as well, by some node in that sweep or an
      // earlier one, and markers from every node bring such an expire in.
      const s0 = await sentinel(h, nodeB, room);
      for (const c of [b1, c1]) await c.events.waitFor({ type: 'expire', connId: s0.connId }, EXPIRE_DEADLINE_MS);
      await h.barrier(room, { nodes: all, observers: [b1, c1] });
      for (const c of [b1, c1]) {
        const expired = c.events.filter((e) => e.type === 'expire' && e.connId !== s0.connId);
        assert.deepEqual(expired, [], `${c.label}: nobody heartbeating may expire: ${show(c.events.events)}`);
      }
      assert.equal((await b1.snapshot(room)).length, 4, 'all four members alive');
      // A node counts a removal once its expire is out: wait until the sentinel is counted.
      const sum = (counts) => counts.reduce((a, b) => a + b, 0);
      let counts;
      await waitUntil(async () => sum((counts = await reapedCounts(all))) >= sum(reapedBefore) + 1, {
        what: () => `the sentinel's removal to be counted (${show(counts)})`,
      });
      const survivors = [nodeB, nodeC];
      const reapedAtKill = counts.slice(1);

      nodeA.signal('SIGKILL');
      const exit = await nodeA.waitExit(5_000);
      assert.equal(exit.signal, 'SIGKILL');

      // The reapers are due after TTL + one interval; how fast a loaded machine gets
      // there is not asserted, only that it does (generous deadline).
      for (const [i, id] of aIds.entries()) {
        const ev = await b1.events.waitFor({ type: 'expire', connId: id }, EXPIRE_DEADLINE_MS);
        assert.equal(ev.userId, aUsers[i]);
        assert.equal(ev.roomId, room);
      }
      for (const id of aIds) await c1.events.waitFor({ type: 'expire', connId: id }, EXPIRE_DEADLINE_MS);
      await waitUntil(async () => sum((counts = await reapedCounts(survivors))) >= sum(reapedAtKill) + aIds.length, {
        what: () => `the survivors to count the removal of A's members (${show(counts)}, at the kill ${show(reapedAtKill)})`,
      });
      const reapedAfterExpiry = counts;

      // Both surviving reapers must run again, to the end, before the expires are counted:
      // a second copy from either (two reapers racing, or one repeating itself) went out
      // before that run ended. A run shows in rtm_presence_reaped_total only when it
      // removed something, so sentinels lapse, alternating nodes, until each node's count
      // has moved; the expires of every sentinel removed by then come in behind whatever
      // those runs, and the ones before them, sent to the room.
      const lapsing = [];
      await waitUntil(
        async () => {
          counts = await reapedCounts(survivors);
          if (counts.every((n, i) => n > reapedAfterExpiry[i])) return true;
          lapsing.push(await sentinel(h, survivors[lapsing.length % survivors.length], room));
          return false;
        },
        {
          timeoutMs: 60_000,
          intervalMs: FAST_REAPER_MS / 2,
          what: () => `both surviving reapers to expire a sentinel (counts ${show(counts)}, after the expiry ${show(reapedAfterExpiry)})`,
        },
      );
      const stored = new Set((await b1.snapshot(room)).map((m) => m.connId));
      const reapedSentinels = lapsing.filter((s) => !stored.has(s.connId));
      assert.ok(reapedSentinels.length >= survivors.length, `each surviving node reaped a sentinel: ${show(reapedSentinels.map((s) => s.connId))}`);
      for (const c of [b1, c1]) {
        for (const s of reapedSentinels) await c.events.waitFor({ type: 'expire', connId: s.connId }, EXPIRE_DEADLINE_MS);
      }
      for (const c of [b1, c1]) {
        for (const id of aIds) {
          assert.equal(c.events.count({ type: 'expire', connId: id }), 1, `${c.label}: exactly one expire for ${id}: ${show(c.events.events)}`);
          assert.equal(c.events.count({ type: 'leave', connId: id }), 0, `${c.label}: a crash is an expire, not a leave`);
        }
        for (const id of [bJ.self.connId, cJ.self.connId]) {
          assert.equal(c.events.count({ type: 'expire', connId: id }), 0, `${c.label}: survivors' members stay`);
        }
      }
      // The sentinels not expired yet go away.
      for (const s of lapsing) assert.equal((await s.client.request('presence:leave', { roomId: room }))?.ok, true);
      const snap = await b1.snapshot(room);
      assert.deepEqual(snap.map((m) => m.connId).sort(), [bJ.self.connId, cJ.self.connId].sort(), 'only survivors remain');
      await h.redis.assertNoTrace(aIds, 'prs:*', 'after expiry');
    }),
  );
});

describe('cluster: a node shuts down (SIGTERM)', () => {
  const h = new Harness();
  let nodeA;
  let nodeB;
  before(async () => {
    await h.startRedis();
    [nodeA, nodeB] = await startNodes(h, ['node-a', 'node-b'], FAST_ENV);
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'the node exits 0 within 5 s, its members leave (seen once on the other node) and are not expired later',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const b1 = await h.connect(nodeB, { label: 'b1' });
      const a1 = await h.connect(nodeA, { label: 'a1' });
      const a2 = await h.connect(nodeA, { label: 'a2' });
      await b1.join(room, uid('userB'));
      const aIds = [(await a1.join(room, uid('userA1'))).self.connId, (await a2.join(room, uid('userA2'))).self.connId];
      for (const c of [b1, a1, a2]) h.keepAlive(c, BEAT_MS);
      for (const id of aIds) await b1.events.waitFor({ type: 'join', connId: id });

      nodeA.signal('SIGTERM');
      const exit = await nodeA.waitExit(5_000);
      assert.deepEqual(exit, { code: 0, signal: null }, 'graceful shutdown exits 0');
      for (const id of aIds) await b1.events.waitFor({ type: 'leave', connId: id });

      // Past TTL and a reaper run: a graceful stop left nothing for the reaper. A sentinel
      // joined now lapses after A's members would have (their last heartbeat came before
      // it joined), so B's reaper, the only one left, sends their expire before its own.
      const s = await sentinel(h, nodeB, room);
      await b1.events.waitFor({ type: 'expire', connId: s.connId }, EXPIRE_DEADLINE_MS);
      for (const id of aIds) {
        assert.equal(b1.events.count({ type: 'leave', connId: id }), 1, `exactly one leave for ${id}: ${show(b1.events.events)}`);
        assert.equal(b1.events.count({ type: 'expire', connId: id }), 0, `no expire after a leave for ${id}`);
      }
      assert.equal((await b1.snapshot(room)).length, 1, 'only B remains');
      await h.redis.assertNoTrace(aIds, 'prs:*', 'after graceful shutdown');
    }),
  );
});

describe('cluster: Redis outage and recovery', () => {
  const h = new Harness();
  let nodeA;
  let nodeB;
  before(async () => {
    await h.startRedis();
    [nodeA, nodeB] = await startNodes(h, ['node-a', 'node-b'], SLOW_ENV);
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /**
   * Sends a request and asserts it fails with `unavailable` while Redis is
   * still down: the host answers during the outage instead of waiting for
   * Redis to come back (REDIS_TIMEOUT_MS bounds it; how fast is not asserted,
   * the ack deadline is generous).
   */
  async function assertUnavailableDuringOutage(client, event, payload) {
    const ack = await client.request(event, payload, 60_000);
    assertError(ack, 'unavailable', `${client.label} ${event} during the outage`);
    assert.equal(h.redis.running, false, `${client.label} ${event}: answered while Redis is down`);
  }

  /**
   * Joins fresh members through new sockets on `from`, one per poll, until
   * `observer` (an old socket on another node, in the room since before the
   * outage) has seen the join of any of them: proves cross-node emits flow
   * again. (A join made before the node resubscribed is lost for good, hence
   * new probes rather than waiting on the first.)
   */
  async function awaitCrossNodeJoin(from, observer, room, deadlineMs) {
    const probes = [];
    const attempts = [];
    return waitUntil(
      async () => {
        const crossed = probes.find((connId) => observer.events.count({ type: 'join', connId }) > 0);
        if (crossed) return crossed;
        const probe = await h.connect(from, { label: 'probe' });
        const ack = await probe.request('presence:join', { roomId: room, userId: uid('probe') });
        if (ack?.ok) {
          probes.push(ack.self.connId);
        } else {
          attempts.push(`join refused: ${show(ack)}`);
          probe.close();
        }
        return false;
      },
      {
        timeoutMs: deadlineMs,
        intervalMs: 250,
        what: () =>
          `${observer.label} to see a join made on ${from.name} (${probes.length} joined, not seen across nodes; ${show(attempts)})`,
      },
    );
  }

  it(
    'requests fail with unavailable during the outage and /readyz is 503; after Redis restarts on the same port, requests and cross-node emits recover without restarting the hosts',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const a1 = await h.connect(nodeA, { label: 'a1' });
      const b1 = await h.connect(nodeB, { label: 'b1' });
      // ADAPTER_GAP_POLICY=notify (the default): once a node's subscriber is back, its
      // sockets are told that emits from the other nodes may have been missed.
      const gaps = { a1: [], b1: [] };
      a1.socket.on('rtm:gap', (notice) => gaps.a1.push(notice));
      b1.socket.on('rtm:gap', (notice) => gaps.b1.push(notice));
      await a1.join(room, uid('userA'));
      const bJ = await b1.join(room, uid('userB'));
      await a1.events.waitFor({ type: 'join', connId: bJ.self.connId });
      for (const node of [nodeA, nodeB]) assert.equal(await httpStatus(`${node.url}/readyz`), 200, `${node.name} ready`);

      await h.redis.kill9();

      await assertUnavailableDuringOutage(a1, 'presence:join', { roomId: uid('room'), userId: uid('user') });
      await assertUnavailableDuringOutage(b1, 'presence:join', { roomId: room, userId: uid('user') });
      await assertUnavailableDuringOutage(a1, 'presence:heartbeat', { roomId: room });
      await assertUnavailableDuringOutage(b1, 'presence:heartbeat', { roomId: room, patchState: { x: 1 }, epoch: bJ.self.epoch });
      await assertUnavailableDuringOutage(a1, 'presence:snapshot', { roomId: room });
      assert.ok(a1.connected && b1.connected, 'an outage does not disconnect clients');

      for (const node of [nodeA, nodeB]) {
        await waitUntil(async () => (await httpStatus(`${node.url}/readyz`)) === 503, {
          timeoutMs: 30_000,
          what: `${node.name} /readyz to answer 503 while Redis is down`,
        });
        assert.equal(await httpStatus(`${node.url}/healthz`), 200, `${node.name} /healthz stays 200`);
      }
      assert.ok(nodeA.running && nodeB.running, 'hosts survive the outage');

      await h.redis.restart();

      for (const node of [nodeA, nodeB]) {
        await waitUntil(async () => (await httpStatus(`${node.url}/readyz`)) === 200, {
          timeoutMs: 30_000,
          intervalMs: 200,
          what: `${node.name} /readyz to answer 200 after Redis came back`,
        });
      }
      for (const client of [a1, b1]) {
        await waitUntil(async () => (await client.request('presence:snapshot', { roomId: room }))?.ok === true, {
          timeoutMs: 30_000,
          intervalMs: 200,
          what: `${client.label} requests to succeed again`,
        });
      }

      // Both directions: each node's subscriptions must have been restored.
      await awaitCrossNodeJoin(nodeA, b1, room, 30_000);
      await awaitCrossNodeJoin(nodeB, a1, room, 30_000);
      assert.ok(nodeA.running && nodeB.running, 'recovered without restarting the hosts');
      const restartedAt = Date.now() - 120_000;
      for (const [label, seen] of Object.entries(gaps)) {
        await waitUntil(() => seen.length > 0, { timeoutMs: 30_000, what: `${label} to get rtm:gap after the restart` });
        assert.ok(
          seen.every((n) => Number.isInteger(n?.ts) && n.ts > restartedAt),
          `${label}'s rtm:gap notices carry the time: ${JSON.stringify(seen)}`,
        );
      }
      assert.ok(a1.connected && b1.connected, 'a gap notice does not disconnect');
    }),
  );
});

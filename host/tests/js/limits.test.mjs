/**
 * Per-tenant limits end-to-end (PROTOCOL.md "Limits and quotas", and the
 * details pinned for issue 11), against spawned `rtm-host` processes
 * started with a tenants file whose limits are small enough to reach.
 *
 * What is pinned:
 * 1. events_per_second / events_burst per socket: the events beyond the
 *    burst are answered `rate_limited` and do nothing, the socket stays and
 *    another socket of the tenant is not affected; once the bucket has
 *    refilled the socket is served again; `auth:refresh` is not limited;
 * 2. rooms_per_socket and members_per_room: the join beyond is answered
 *    `quota_exceeded` and registers nothing, the socket keeps working, and a
 *    freed slot (leave, disconnect) can be taken again;
 * 3. max_connections of a tenant: the connect beyond is a `connect_error`
 *    `quota_exceeded`, other tenants are not affected, and a closed socket
 *    frees its slot; on Redis the count is cluster-wide (N sockets on node 1
 *    make node 2 refuse the next one once the count has propagated; how fast
 *    it propagates is waited for, never asserted).
 *
 * Rates are counted, never timed: the number of events served out of a
 * burst is bounded by the burst plus what the bucket can have refilled in
 * the measured time the burst took.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  Harness,
  assertError,
  nowSeconds,
  show,
  signJwt,
  tenantView,
  uid,
  waitConnections,
  waitUntil,
  writeTenantsFile,
  scratchSpace,
  makePluginsDir,
  tenantsView,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 120_000 };

const space = scratchSpace();

/** Writes a tenants file into a fresh temporary folder (removed at the end); returns its path. */
const tenantsFile = (spec) => space.tenantsFile('rtm-limits-', spec);

/**
 * Waits until a connect to tenant `id` on `node` is accepted; refusals on
 * the way must be `quota_exceeded`. Returns the connected client.
 */
async function connectOnceFree(h, node, id, what) {
  return waitUntil(
    async () => {
      const { client, error } = await h.tryConnect(node, { namespace: `/${id}`, label: `probe(${what})` });
      if (error) {
        assert.equal(error.message, 'quota_exceeded', `${what}: a refusal on the way is quota_exceeded`);
        return false;
      }
      return client;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `${node.name}: a connect to /${id} to be accepted (${what})` },
  );
}

/**
 * Waits until a connect to tenant `id` on `node` is refused with
 * `quota_exceeded` (a probe accepted meanwhile, on a count not yet
 * propagated, is closed again). Returns the connect_error.
 */
async function refusedOnceFull(h, node, id, what) {
  return waitUntil(
    async () => {
      const { client, error } = await h.tryConnect(node, { namespace: `/${id}`, label: `probe(${what})` });
      if (!error) {
        client.close();
        return false;
      }
      assert.equal(error.message, 'quota_exceeded', `${what}: connect_error message (data: ${show(error.data)})`);
      return error;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: `${node.name}: a connect to /${id} to be refused quota_exceeded (${what})` },
  );
}

// ---------------------------------------------------------------------------
// 1. events per second, with a burst
// ---------------------------------------------------------------------------

describe('limits: client events per second per socket, with a burst', () => {
  const h = new Harness();
  let node;
  /** One event per second sustained: a burst of BURST + 10 cannot be served by refill on any machine. */
  const RATE = 1;
  const BURST = 5;
  const SECRET = randomBytes(24).toString('hex');

  before(async () => {
    const file = tenantsFile({
      tenants: [
        { id: 'rl', limits: { events_per_second: RATE, events_burst: BURST } },
        { id: 'rla', auth: { hs256_secret: SECRET }, limits: { events_per_second: RATE, events_burst: 2 } },
      ],
    });
    node = await h.startHost('limits-rate', { env: { TENANTS_FILE: file } });
    const view = await tenantView(node, 'rl');
    assert.equal(view?.limits?.events_per_second, RATE, show(view));
    assert.equal(view?.limits?.events_burst, BURST, show(view));
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /**
   * Asserts that nobody is registered in any of `rooms`, read by fresh
   * sockets (each reads fewer rooms than its own burst).
   */
  async function assertRoomsEmpty(rooms, context) {
    for (let i = 0; i < rooms.length; i += BURST - 1) {
      const reader = await h.connect(node, { namespace: '/rl', label: 'reader' });
      for (const room of rooms.slice(i, i + BURST - 1)) {
        assert.deepEqual(await reader.snapshot(room), [], `${context}: ${room} must hold nobody`);
      }
      reader.close();
    }
  }

  it(
    'events beyond the burst get rate_limited and do nothing; the socket stays, others are unaffected; after the refill it is served again',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const peer = await h.connect(node, { namespace: '/rl', label: 'peer' });
      const c = await h.connect(node, { namespace: '/rl', label: 'bursty' });
      const N = BURST + 10;
      const rooms = Array.from({ length: N }, () => uid('burst'));
      const started = Date.now();
      const acks = await Promise.all(rooms.map((roomId) => c.request('presence:join', { roomId, userId: 'bea' })));
      const elapsedMs = Date.now() - started;

      const served = [];
      const limited = [];
      for (const [i, ack] of acks.entries()) {
        if (ack?.ok === true) {
          served.push(rooms[i]);
        } else {
          assertError(ack, 'rate_limited', `join #${i + 1} of the burst`);
          limited.push(rooms[i]);
        }
      }
      assert.deepEqual(
        acks.slice(0, BURST).map((a) => a?.ok),
        Array(BURST).fill(true),
        `the first ${BURST} events (the burst) are served: ${show(acks)}`,
      );
      // At most the burst plus what RATE/s can have refilled while the burst was handled (+1 for rounding).
      const bound = BURST + Math.floor((elapsedMs * RATE) / 1000) + 1;
      assert.ok(served.length <= bound, `served ${served.length} of ${N} in ${elapsedMs} ms; at most ${bound} allowed`);
      assert.ok(limited.length >= 1, `some of ${N} events beyond a burst of ${BURST} must be rate_limited: ${show(acks)}`);

      assert.equal(c.connected, true, 'a rate-limited socket stays connected');
      await assertRoomsEmpty(limited, 'a rate-limited join does nothing');
      const reader = await h.connect(node, { namespace: '/rl', label: 'reader' });
      assert.deepEqual((await reader.snapshot(served[0])).map((m) => m.userId), ['bea'], 'a served join registered');
      // Another socket of the tenant has its own bucket.
      await peer.join(uid('peer'), 'pia');

      // Once the bucket has refilled the socket is served again (probes spaced wider than
      // one token's refill, so even a limiter that charges refused events recovers).
      const probeRoom = uid('after-refill');
      await waitUntil(
        async () => {
          const ack = await c.request('presence:join', { roomId: probeRoom, userId: 'bea' });
          if (ack?.ok === true) return true;
          assertError(ack, 'rate_limited', 'probe while the bucket refills');
          return false;
        },
        { timeoutMs: 30_000, intervalMs: 1_100, what: 'the bursty socket to be served again after the refill' },
      );
      assert.deepEqual((await reader.snapshot(probeRoom)).map((m) => m.userId), ['bea'], 'the join after the refill registered');
      assert.equal(c.connected, true);
    }),
  );

  it(
    'auth:refresh is not rate limited',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const token = (exp) => signJwt({ sub: 'rhea', exp }, { key: SECRET });
      const c = await h.connect(node, { namespace: '/rla', auth: { token: token(nowSeconds() + 600) }, label: 'refresher' });
      let limited = null;
      for (let i = 0; i < 10 && !limited; i += 1) {
        const ack = await c.request('presence:snapshot', { roomId: uid('drain') });
        if (ack?.ok !== true) limited = assertError(ack, 'rate_limited', `snapshot #${i + 1}`);
      }
      assert.ok(limited, 'the bucket of 2 ran dry within 10 snapshots');
      const newExp = nowSeconds() + 900;
      const ack = await c.ok('auth:refresh', { token: token(newExp) });
      assert.equal(ack.exp, newExp, show(ack));
      assert.equal(c.connected, true);
    }),
  );
});

// ---------------------------------------------------------------------------
// 2. rooms per socket, members per room
// ---------------------------------------------------------------------------

describe('limits: rooms per socket and members per room', () => {
  const h = new Harness();
  let node;
  const ROOMS = 3;
  const MEMBERS = 2;

  before(async () => {
    const file = tenantsFile({
      defaults: { limits: { rooms_per_socket: 64 } },
      tenants: [{ id: 'q', limits: { rooms_per_socket: ROOMS, members_per_room: MEMBERS } }, { id: 'roomy' }],
    });
    node = await h.startHost('limits-quota', { env: { TENANTS_FILE: file } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  const q = (label) => h.connect(node, { namespace: '/q', label });

  it(
    'rooms_per_socket: the join beyond is quota_exceeded and registers nothing; the socket keeps working; a leave frees a slot',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await q('collector');
      const reader = await q('reader');
      const rooms = Array.from({ length: ROOMS + 2 }, () => uid('rps'));
      for (const room of rooms.slice(0, ROOMS)) await c.join(room, 'cole');
      const over = rooms[ROOMS];
      await c.fails('presence:join', { roomId: over, userId: 'cole' }, 'quota_exceeded');
      await c.assertStillServing('after quota_exceeded');
      assert.deepEqual(await reader.snapshot(over), [], 'the refused join registered nothing');

      // Joining a room it holds again is an update, not a new room.
      await c.join(rooms[0], 'cole', { state: { again: true } });
      await c.ok('presence:heartbeat', {});
      await c.ok('presence:leave', { roomId: rooms[1] });
      await c.join(over, 'cole');
      await c.fails('presence:join', { roomId: rooms[ROOMS + 1], userId: 'cole' }, 'quota_exceeded');
      assert.deepEqual((await reader.snapshot(over)).map((m) => m.userId), ['cole']);

      // The limit is the tenant's: a tenant with the default limit is not held to it.
      const roomy = await h.connect(node, { namespace: '/roomy', label: 'roomy' });
      for (const room of rooms) await roomy.join(room, 'rosa');
    }),
  );

  it(
    'members_per_room: the member beyond is quota_exceeded and registers nothing; it can join elsewhere; a leave or a disconnect frees a slot',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('mpr');
      const [s1, s2, s3, s4] = [await q('s1'), await q('s2'), await q('s3'), await q('s4')];
      const id1 = (await s1.join(room, 'ann')).self.connId;
      const id2 = (await s2.join(room, 'ben')).self.connId;
      await s3.fails('presence:join', { roomId: room, userId: 'cat' }, 'quota_exceeded');
      await s3.assertStillServing('after quota_exceeded');
      await s3.join(uid('elsewhere'), 'cat');
      assert.deepEqual((await s3.snapshot(room)).map((m) => m.connId).sort(), [id1, id2].sort(), 'the full room is unchanged');
      // A member of a full room may still update its registration.
      await s1.join(room, 'ann', { state: { again: true } });

      // A leave frees a slot.
      await s1.ok('presence:leave', { roomId: room });
      const id3 = (await s3.join(room, 'cat')).self.connId;
      await s4.fails('presence:join', { roomId: room, userId: 'dan' }, 'quota_exceeded');

      // So does a disconnect (its registration leaves).
      s2.close();
      await s3.events.waitFor({ type: 'leave', connId: id2 });
      await s4.join(room, 'dan');
      const snap = await s4.snapshot(room);
      assert.equal(snap.length, MEMBERS, show(snap));
      assert.ok(snap.some((m) => m.connId === id3));
    }),
  );
});

// ---------------------------------------------------------------------------
// 3. connections of a tenant
// ---------------------------------------------------------------------------

describe('limits: max_connections of a tenant on one node', () => {
  const h = new Harness();
  let node;
  const MAX = 3;

  before(async () => {
    const file = tenantsFile({
      tenants: [
        { id: 'mc', limits: { max_connections: MAX } },
        { id: 'other' },
        // tenants.example.toml: 0 is no limit.
        { id: 'unlimited', limits: { max_connections: 0 } },
      ],
    });
    node = await h.startHost('limits-conns', { env: { TENANTS_FILE: file } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'the connect beyond max_connections is a connect_error quota_exceeded; other tenants are unaffected; a closed socket frees its slot',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const sockets = [];
      for (let i = 0; i < MAX; i += 1) sockets.push(await h.connect(node, { namespace: '/mc', label: `mc${i + 1}` }));
      await h.refused(node, { namespace: '/mc', label: 'one too many' }, 'quota_exceeded');
      await waitConnections(node, 'mc', MAX);
      for (const s of sockets) await s.assertStillServing('at the connection limit');
      const other = await h.connect(node, { namespace: '/other', label: 'other tenant' });
      await other.join(uid('other'), 'otto');

      sockets[0].close();
      const back = await connectOnceFree(h, node, 'mc', 'after a close');
      await back.join(uid('back'), 'bo');
      await h.refused(node, { namespace: '/mc', label: 'full again' }, 'quota_exceeded');
      await waitConnections(node, 'mc', MAX);
    }),
  );

  it(
    'max_connections = 0 is no limit',
    TEST_TIMEOUT,
    h.wrap(async () => {
      for (let i = 0; i < MAX + 3; i += 1) await h.connect(node, { namespace: '/unlimited', label: `u${i + 1}` });
      await waitConnections(node, 'unlimited', MAX + 3);
    }),
  );
});

describe('limits: max_connections is cluster-wide on Redis', () => {
  const h = new Harness();
  let node1;
  let node2;
  const MAX = 3;

  before(async () => {
    const file = tenantsFile({ tenants: [{ id: 'mc', limits: { max_connections: MAX } }] });
    await h.startRedis();
    node1 = await h.startHost('node1', { redis: true, env: { TENANTS_FILE: file, NODE_ID: 'node1' } });
    node2 = await h.startHost('node2', { redis: true, env: { TENANTS_FILE: file, NODE_ID: 'node2' } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'N sockets on node 1 make node 2 refuse the next one; after they close, node 2 accepts again',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const on1 = [];
      for (let i = 0; i < MAX; i += 1) on1.push(await h.connect(node1, { namespace: '/mc', label: `n1-${i + 1}` }));
      await h.refused(node1, { namespace: '/mc', label: 'node1 over' }, 'quota_exceeded');
      await waitConnections(node2, 'mc', 0, { cluster: MAX, timeoutMs: 30_000 });
      await refusedOnceFull(h, node2, 'mc', 'node 1 holds them all');
      for (const s of on1) await s.assertStillServing('at the cluster-wide limit');

      for (const s of on1) s.close();
      const first = await connectOnceFree(h, node2, 'mc', 'node 1 closed its sockets');
      await first.join(uid('free'), 'fay');
      // Node 2's socket counts on node 1 as well: two more fit there, then node 1 refuses.
      await connectOnceFree(h, node1, 'mc', 'room for two more');
      await connectOnceFree(h, node1, 'mc', 'room for one more');
      await refusedOnceFull(h, node1, 'mc', 'one on node 2, two on node 1');
      await waitConnections(node1, 'mc', MAX - 1, { cluster: MAX, timeoutMs: 30_000 });
      await waitConnections(node2, 'mc', 1, { cluster: MAX, timeoutMs: 30_000 });
    }),
  );
});

describe('limits: plugin CPU, wall time and memory are each tenant\'s own', () => {
  const h = new Harness();
  let node;

  before(async () => {
    const plugins = () => space.keep(makePluginsDir({ 'spin.wasm': 'spin.wasm', 'membomb.wasm': 'membomb.wasm' }));
    const file = tenantsFile({
      tenants: [
        // a: little CPU, plenty of wall time and memory. Enough CPU, though, for the memory
        // bomb to fill 48 MiB first (page faults on a busy VM took over 30 ms).
        { id: 'a', plugins_dir: plugins(), plugins: { cpu_ms: 300, timeout_ms: 10_000, memory_mb: 48 } },
        // b: plenty of CPU, little wall time and memory.
        { id: 'b', plugins_dir: plugins(), plugins: { cpu_ms: 10_000, timeout_ms: 300, memory_mb: 16 } },
      ],
    });
    // The node's pool slots (PLUGIN_MEMORY_MB) bound every tenant's memory_mb.
    node = await h.startHost('limits-plugins', { env: { TENANTS_FILE: file, PLUGIN_MEMORY_MB: 64 } });
    await waitUntil(
      async () => {
        const view = await tenantsView(node);
        return view.tenants.every((t) => t.pluginsReady && t.plugins.length === 2);
      },
      { what: 'both tenants loaded spin and membomb', timeoutMs: 60_000 },
    );
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /** The failure message of `event` in tenant `id` (the ack must be plugin_failed). */
  async function failure(id, event) {
    const c = await h.connect(node, { namespace: `/${id}`, label: `${id} ${event}` });
    const ack = await c.request(event, {}, 30_000);
    assertError(ack, 'plugin_failed', `${event} in ${id}`);
    await c.assertStillServing(`after ${event} failed in ${id}`);
    return ack.error.message;
  }

  it(
    'a spinning call stops at tenant a\'s CPU budget and at tenant b\'s wall-clock limit',
    TEST_TIMEOUT,
    h.wrap(async () => {
      assert.match(await failure('a', 'spin:go'), /CPU time limit/);
      assert.match(await failure('b', 'spin:go'), /wall-clock limit of 300 ms/);
    }),
  );

  it(
    'a hoarding call stops at its own tenant\'s memory cap',
    TEST_TIMEOUT,
    h.wrap(async () => {
      assert.match(await failure('b', 'membomb:go'), /memory limit of 16 MiB/);
      assert.match(await failure('a', 'membomb:go'), /memory limit of 48 MiB/);
    }),
  );
});

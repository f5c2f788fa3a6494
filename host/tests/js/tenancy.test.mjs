/**
 * Multi-tenancy end-to-end (PROTOCOL.md "Tenants", and the details the team
 * pinned for issue 11: `TENANTS_FILE`, namespaces `/<id>`, key layout
 * `prs:<id>:...`, `/admin/tenants`), driven by the official socket.io-client
 * against spawned `rtm-host` processes started with a tenants file.
 *
 * What is pinned:
 * 1. isolation: two tenants `a` and `b` on two nodes sharing one Redis. The
 *    same room name in both is two rooms (snapshots, `presence:event`), the
 *    chat plugin loaded in both keeps two histories and its broadcasts stay in
 *    the tenant, kv of the same plugin in two tenants never meets, `/metrics`
 *    labels series `tenant="a"` / `tenant="b"`, `/admin/tenants` counts each
 *    tenant's connections on the node and cluster-wide, and every Redis key
 *    starts with `prs:a:` or `prs:b:`;
 * 2. a SIGKILLed node's registrations expire only in their own tenant;
 * 3. the file is reloaded while clients are connected: an added tenant starts
 *    serving, a lowered limit applies to the next call, a broken file changes
 *    nothing (the error shows in `/admin/tenants`), a removed tenant's sockets
 *    are disconnected, its registrations are gone and its namespace refuses
 *    new connects; SIGHUP reloads too;
 * 4. a bad tenants file at start: exit code 2 and one stderr line;
 * 5. `/admin/tenants` lists tenants with connections, merged limits and auth
 *    kind, and never a secret (searched for in the JSON text); a `default`
 *    tenant is also served on `/`;
 * 6. the repository's commented `tenants.example.toml` starts a host.
 *
 * Tenants files and plugin folders are written into temporary directories;
 * guests come prebuilt from `RTM_GUESTS_DIR` (missing guests fail, nothing
 * is skipped). "Never" and "exactly once" are counted after a barrier in the
 * observer's own tenant (Harness#barrier with `marker: { namespace }`).
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import {
  Harness,
  REPO_ROOT,
  assertGuests,
  getText,
  httpStatus,
  listen,
  makeKeyPair,
  makePluginsDir,
  nowSeconds,
  runHostUntilExit,
  show,
  signJwt,
  tenantView,
  tenantsToml,
  tenantsView,
  uid,
  waitConnections,
  waitUntil,
  writeTenantsFile,
  scratchSpace,
  SLOW_ENV,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 180_000 };

/** Short liveness so a crashed node's members expire within a test's patience. */
const FAST_TTL_MS = 1_500;
const FAST_ENV = {
  PRESENCE_TTL_MS: FAST_TTL_MS,
  PRESENCE_REAPER_INTERVAL_MS: 200,
  PRESENCE_REAPER_LOOKBACK_MS: FAST_TTL_MS,
};
/** Heartbeat period under FAST_ENV: several beats per TTL. */
const BEAT_MS = 300;
/** Generous: how fast a loaded machine expires is not asserted, only that it does. */
const EXPIRE_DEADLINE_MS = FAST_TTL_MS + 30_000;

/** How long a reload of the tenants file may take to show (never asserted, only bounded). */
const RELOAD_DEADLINE_MS = 30_000;

const { scratch, keep } = scratchSpace();

/** One compiled-artifact cache for the whole file (safe: keyed by content hash). */
const CACHE_DIR = scratch('rtm-plugin-cache-');

/** A plugins folder holding chat v1 and kv-a, removed at the end. */
function tenantPlugins() {
  const dir = makePluginsDir({ 'chat.wasm': 'chat-v1.wasm', 'kv-a.wasm': 'kv-a.wasm' });
  return keep(dir);
}

/** Names of the plugins `/admin/tenants` lists for a tenant (names, or objects with a name). */
function pluginNames(tenant) {
  return (tenant?.plugins ?? []).map((p) => (typeof p === 'string' ? p : p?.name)).sort();
}

/** Waits until `node` has loaded `names` for tenant `id`. */
async function waitTenantPlugins(node, id, names) {
  let last;
  await waitUntil(
    async () => {
      last = await tenantView(node, id);
      return names.every((n) => pluginNames(last).includes(n));
    },
    { timeoutMs: 60_000, intervalMs: 100, what: () => `${node.name}: tenant ${id} to load ${names.join(', ')} (last: ${show(last)})` },
  );
}

/** Sample lines (not comments) of a Prometheus text that carry `tenant="<id>"`. */
function tenantSeries(text, id) {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#') && line.includes(`tenant="${id}"`));
}

/** Sorted copy, for order-free comparisons. */
const sorted = (values) => [...values].sort();

/** Every `presence:event` of `client` that is neither its own nor a barrier marker's. */
function foreignEvents(client, ownConnIds) {
  const own = new Set(ownConnIds);
  return client.events.filter((e) => !own.has(e.connId) && !String(e.userId).startsWith('barrier-marker'));
}

// ---------------------------------------------------------------------------
// 1. isolation: two tenants, two nodes, one Redis
// ---------------------------------------------------------------------------

describe('tenancy: two tenants on two nodes sharing one Redis', () => {
  const h = new Harness();
  let node1;
  let node2;
  let file;

  before(async () => {
    assertGuests(['chat-v1.wasm', 'kv-a.wasm']);
    file = join(scratch('rtm-tenants-'), 'tenants.toml');
    writeTenantsFile(file, {
      tenants: [
        { id: 'a', plugins_dir: tenantPlugins() },
        { id: 'b', plugins_dir: tenantPlugins() },
      ],
    });
    await h.startRedis();
    const env = { ...SLOW_ENV, TENANTS_FILE: file, PLUGIN_CACHE_DIR: CACHE_DIR };
    node1 = await h.startHost('node1', { redis: true, env: { ...env, NODE_ID: 'node1' } });
    node2 = await h.startHost('node2', { redis: true, env: { ...env, NODE_ID: 'node2' } });
    for (const node of [node1, node2]) {
      for (const id of ['a', 'b']) await waitTenantPlugins(node, id, ['chat', 'kv-a']);
    }
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /** A connected socket of tenant `id` on `node`. */
  const tenantSocket = (node, id, label) => h.connect(node, { namespace: `/${id}`, label });

  it(
    'the same room name in two tenants is two rooms: snapshots and presence events never cross',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('shared');
      const bObserver = await tenantSocket(node2, 'b', 'b-observer');
      const bJoin = await bObserver.join(room, 'bob', { state: { tenant: 'b' } });
      const bId = bJoin.self.connId;

      const a1 = await tenantSocket(node1, 'a', 'a1');
      const a2 = await tenantSocket(node2, 'a', 'a2');
      const a1Join = await a1.join(room, 'alice', { state: { tenant: 'a' } });
      const a1Id = a1Join.self.connId;
      assert.deepEqual(
        a1Join.snapshot.map((m) => m.connId),
        [a1Id],
        `a's room ${room} holds only a's member (b's same-named room is another room): ${show(a1Join.snapshot)}`,
      );
      const a2Join = await a2.join(room, 'alan');
      const a2Id = a2Join.self.connId;
      assert.deepEqual(sorted(a2Join.snapshot.map((m) => m.connId)), sorted([a1Id, a2Id]), `a's snapshot on node2: ${show(a2Join.snapshot)}`);
      await a1.events.waitFor({ type: 'join', connId: a2Id });

      // b's room, read on both nodes, has only b's member.
      for (const node of [node1, node2]) {
        const reader = await tenantSocket(node, 'b', 'b-reader');
        const snap = await reader.snapshot(room);
        assert.deepEqual(snap.map((m) => [m.connId, m.userId]), [[bId, 'bob']], `b's snapshot on ${node.name}: ${show(snap)}`);
        reader.close();
      }

      // Changes on both sides: update and leave in a, update in b.
      await a1.ok('presence:heartbeat', { roomId: room, patchState: { typing: true }, epoch: a1Join.self.epoch });
      await a2.events.waitFor({ type: 'update', connId: a1Id });
      await bObserver.ok('presence:heartbeat', { roomId: room, patchState: { typing: true }, epoch: bJoin.self.epoch });
      await bObserver.events.waitFor({ type: 'update', connId: bId });
      await a2.ok('presence:leave', { roomId: room });
      await a1.events.waitFor({ type: 'leave', connId: a2Id });

      // After markers of both nodes in b's room, nothing of a has reached b, and vice versa.
      await h.barrier(room, { nodes: [node1, node2], observers: [bObserver], after: [a1, a2], marker: { namespace: '/b' } });
      assert.deepEqual(foreignEvents(bObserver, [bId]), [], `b's socket must get no event of tenant a: ${show(bObserver.events.events)}`);
      await h.barrier(room, { nodes: [node2, node1], observers: [a1], after: [bObserver], marker: { namespace: '/a' } });
      assert.deepEqual(foreignEvents(a1, [a1Id, a2Id]), [], `a's socket must get no event of tenant b: ${show(a1.events.events)}`);
      assert.equal(a1.events.count({ connId: bId }), 0, "b's connId never appears in a");

      const finalA = await a1.snapshot(room);
      assert.deepEqual(finalA.map((m) => m.connId), [a1Id], `a's room after a2 left: ${show(finalA)}`);
      const finalB = await bObserver.snapshot(room);
      assert.deepEqual(finalB.map((m) => m.connId), [bId], `b's room is untouched by a's leave: ${show(finalB)}`);
    }),
  );

  it(
    'the chat plugin loaded in both tenants keeps two histories, and its broadcasts stay in the tenant',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('chat');
      const a1 = await tenantSocket(node1, 'a', 'a1');
      const a2 = await tenantSocket(node2, 'a', 'a2');
      const b1 = await tenantSocket(node1, 'b', 'b1');
      const b2 = await tenantSocket(node2, 'b', 'b2');
      const logs = new Map([a1, a2, b1, b2].map((c) => [c, listen(c, 'chat:message')]));
      await a1.join(room, 'alice');
      await a2.join(room, 'alan');
      await b1.join(room, 'bob');
      await b2.join(room, 'bea');

      const fromA = await a1.ok('chat:message', { roomId: room, text: 'said in tenant a' });
      for (const c of [a1, a2]) await logs.get(c).waitFor({ id: fromA.data.id, text: 'said in tenant a' });
      const fromB = await b2.ok('chat:message', { roomId: room, text: 'said in tenant b' });
      for (const c of [b1, b2]) await logs.get(c).waitFor({ id: fromB.data.id, text: 'said in tenant b' });

      await h.barrier(room, { nodes: [node1, node2], observers: [b1, b2], after: [a1, b2], marker: { namespace: '/b' } });
      await h.barrier(room, { nodes: [node2, node1], observers: [a1, a2], after: [b2], marker: { namespace: '/a' } });
      // Message ids are the chat plugin's own per room (its kv counter), so the same id may
      // well exist in both tenants: the texts tell the messages apart.
      for (const c of [b1, b2]) {
        logs.get(c).assertCount({ text: 'said in tenant a' }, 0, "a's message never reaches b");
        logs.get(c).assertCount({ id: fromB.data.id, text: 'said in tenant b' }, 1, "b's message reaches b once");
        logs.get(c).assertCount(() => true, 1, 'b gets nothing else');
      }
      for (const c of [a1, a2]) {
        logs.get(c).assertCount({ text: 'said in tenant b' }, 0, "b's message never reaches a");
        logs.get(c).assertCount({ id: fromA.data.id, text: 'said in tenant a' }, 1, "a's message reaches a once");
        logs.get(c).assertCount(() => true, 1, 'a gets nothing else');
      }

      // Two histories, whichever node reads them.
      for (const [client, id, text] of [
        [a2, fromA.data.id, 'said in tenant a'],
        [b1, fromB.data.id, 'said in tenant b'],
      ]) {
        const { messages } = (await client.ok('chat:history', { roomId: room })).data;
        assert.deepEqual(messages.map((m) => [m.id, m.text]), [[id, text]], `${client.label} history: ${show(messages)}`);
      }
      const freshB = await tenantSocket(node2, 'b', 'fresh-b');
      const { messages } = (await freshB.ok('chat:history', { roomId: room })).data;
      assert.deepEqual(messages.map((m) => m.id), [fromB.data.id], `a fresh socket of b reads only b's history: ${show(messages)}`);

      // In Redis each history lives under its own tenant's plugin namespace.
      const dumpA = await h.redis.dump(`prs:a:plugin:{a:chat}:*${room}*`);
      const dumpB = await h.redis.dump(`prs:b:plugin:{b:chat}:*${room}*`);
      assert.ok(dumpA.length > 0, `a's chat history under prs:a:plugin:{a:chat}: (all keys: ${show(await h.redis.scan('*'))})`);
      assert.ok(dumpB.length > 0, `b's chat history under prs:b:plugin:{b:chat}: (all keys: ${show(await h.redis.scan('*'))})`);
      assert.ok(!JSON.stringify(dumpA).includes('said in tenant b'), `a's keys hold nothing of b: ${show(dumpA)}`);
      assert.ok(!JSON.stringify(dumpB).includes('said in tenant a'), `b's keys hold nothing of a: ${show(dumpB)}`);
    }),
  );

  it(
    'the same plugin in two tenants has two kv namespaces; within a tenant both nodes share one',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const empty = { value: null, list: [], hash: null, counter: 0 };
      const a1 = await tenantSocket(node1, 'a', 'a1');
      const a2 = await tenantSocket(node2, 'a', 'a2');
      const b1 = await tenantSocket(node1, 'b', 'b1');
      assert.deepEqual((await a1.ok('kva:get')).data, empty, 'kv-a of tenant a starts empty');
      assert.deepEqual((await b1.ok('kva:get')).data, empty, 'kv-a of tenant b starts empty');

      await a1.ok('kva:set', { value: 'only-in-a' });
      assert.deepEqual((await b1.ok('kva:get')).data, empty, "b's kv-a does not see what a's wrote");
      const ofA = { value: 'only-in-a', list: ['only-in-a'], hash: 'only-in-a', counter: 1 };
      assert.deepEqual((await a2.ok('kva:get')).data, ofA, "a's value, read via the other node");

      await b1.ok('kva:set', { value: 'only-in-b' });
      assert.deepEqual((await a1.ok('kva:get')).data, ofA, "a's kv-a unchanged by b's write");
      assert.deepEqual((await b1.ok('kva:get')).data, { value: 'only-in-b', list: ['only-in-b'], hash: 'only-in-b', counter: 1 });

      const dumpA = await h.redis.dump('prs:a:plugin:{a:kv-a}:*');
      const dumpB = await h.redis.dump('prs:b:plugin:{b:kv-a}:*');
      assert.ok(dumpA.length > 0 && dumpB.length > 0, `kv keys per tenant, got ${show(await h.redis.scan('*'))}`);
      assert.ok(!JSON.stringify(dumpA).includes('only-in-b'), `a's kv holds nothing of b: ${show(dumpA)}`);
      assert.ok(!JSON.stringify(dumpB).includes('only-in-a'), `b's kv holds nothing of a: ${show(dumpB)}`);
    }),
  );

  it(
    '/admin/tenants lists both tenants with their plugins, limits and connections on this node and cluster-wide',
    TEST_TIMEOUT,
    h.wrap(async () => {
      await tenantSocket(node1, 'a', 'a1');
      await tenantSocket(node1, 'a', 'a2');
      await tenantSocket(node1, 'b', 'b1');
      await tenantSocket(node2, 'b', 'b2');

      const view = await tenantsView(node1);
      assert.equal(view.file, file, `/admin/tenants names the file: ${show(view)}`);
      assert.equal(view.error, null, `no reload error: ${show(view)}`);
      assert.equal(typeof view.loadedAt, 'number', `loadedAt is a ms timestamp: ${show(view)}`);
      assert.deepEqual(sorted(view.tenants.map((t) => t.id)), ['a', 'b'], `tenants: ${show(view.tenants)}`);
      for (const t of view.tenants) {
        assert.deepEqual(t.namespaces, [`/${t.id}`], `namespaces of ${t.id}: ${show(t)}`);
        assert.equal(t.auth, 'none', `tenant ${t.id} has no auth: ${show(t)}`);
        assert.deepEqual(pluginNames(t), ['chat', 'kv-a'], `plugins of ${t.id}: ${show(t)}`);
        for (const key of ['max_connections', 'events_per_second', 'events_burst', 'rooms_per_socket', 'members_per_room']) {
          assert.equal(typeof t.limits?.[key], 'number', `limits.${key} of ${t.id}: ${show(t)}`);
        }
        for (const key of ['memory_mb', 'cpu_ms', 'timeout_ms', 'max_concurrency', 'kv_max_bytes', 'kv_max_keys', 'emits_per_call', 'log_bytes_per_call', 'reply_max_bytes']) {
          assert.equal(typeof t.pluginLimits?.[key], 'number', `pluginLimits.${key} of ${t.id}: ${show(t)}`);
        }
      }
      // Connections: this node's own, and the cluster's (approximate, so waited for).
      await waitConnections(node1, 'a', 2, { cluster: 2 });
      await waitConnections(node1, 'b', 1, { cluster: 2 });
      await waitConnections(node2, 'a', 0, { cluster: 2 });
      await waitConnections(node2, 'b', 1, { cluster: 2 });
    }),
  );

  it(
    '/metrics labels per-tenant series with tenant="a" and tenant="b" on both nodes',
    TEST_TIMEOUT,
    h.wrap(async () => {
      // Traffic of both tenants on both nodes.
      for (const node of [node1, node2]) {
        for (const id of ['a', 'b']) {
          const c = await tenantSocket(node, id, `${id}-traffic`);
          const roomId = uid('metrics');
          await c.join(roomId, 'mia');
          await c.ok('chat:message', { roomId, text: 'counted' });
        }
      }
      for (const node of [node1, node2]) {
        const text = await getText(`${node.url}/metrics`);
        for (const id of ['a', 'b']) {
          assert.ok(tenantSeries(text, id).length > 0, `${node.name} /metrics has series with tenant="${id}":\n${text.slice(0, 3000)}`);
        }
      }
    }),
  );

  it(
    'every Redis key the two tenants wrote starts with prs:a: or prs:b: and carries a hash tag of its tenant and room (or plugin)',
    TEST_TIMEOUT,
    h.wrap(async () => {
      // Live registrations in both tenants, on both nodes, next to what earlier tests left.
      const ids = {};
      for (const [node, id] of [
        [node1, 'a'],
        [node2, 'b'],
      ]) {
        const c = await tenantSocket(node, id, `${id}-live`);
        const roomId = uid('keys');
        ids[id] = (await c.join(roomId, 'kim', { state: { n: 1 } })).self.connId;
        await c.ok('chat:message', { roomId, text: 'stored' });
      }
      const keys = await h.redis.scan('*');
      assert.ok(keys.length > 0, 'the tenants wrote keys');
      const stray = keys.filter((k) => !k.startsWith('prs:a:') && !k.startsWith('prs:b:'));
      assert.deepEqual(stray, [], `every key carries its tenant (prs:a: / prs:b:); all keys: ${show(keys)}`);
      for (const id of ['a', 'b']) {
        // Redis Cluster layout: a room's keys share a hash tag of tenant and room bucket,
        // a plugin's kv keys one of tenant and plugin; only the connection count is bare.
        const presence = new RegExp(`^prs:${id}:\\{${id}:b\\d+\\}:(conn:|room:|users:|seen$)`);
        const kv = new RegExp(`^prs:${id}:plugin(-usage)?:\\{${id}:[a-z0-9-]+\\}:`);
        const untagged = keys.filter(
          (k) => k.startsWith(`prs:${id}:`) && k !== `prs:${id}:conns` && !presence.test(k) && !kv.test(k),
        );
        assert.deepEqual(untagged, [], `every key of ${id} but its connection count carries a hash tag: ${show(keys)}`);
        assert.ok(
          keys.some((k) => presence.test(k) && k.endsWith(`:conn:${ids[id]}`)),
          `tenant ${id}'s registration ${ids[id]} is under prs:${id}:{${id}:b<k>}:conn:; all keys: ${show(keys)}`,
        );
        assert.ok(keys.some((k) => k.startsWith(`prs:${id}:plugin:{${id}:chat}:`)), `tenant ${id}'s chat kv under prs:${id}:plugin:{${id}:chat}:`);
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// 2. a crashed node's members expire in their own tenant only
// ---------------------------------------------------------------------------

describe('tenancy: a SIGKILLed node, two tenants', () => {
  const h = new Harness();
  let victim;
  let survivor;

  before(async () => {
    const file = join(scratch('rtm-tenants-'), 'tenants.toml');
    writeTenantsFile(file, { tenants: [{ id: 'a' }, { id: 'b' }] });
    await h.startRedis();
    const env = { ...FAST_ENV, TENANTS_FILE: file };
    victim = await h.startHost('victim', { redis: true, env: { ...env, NODE_ID: 'victim' } });
    survivor = await h.startHost('survivor', { redis: true, env: { ...env, NODE_ID: 'survivor' } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    "each crashed member's expire reaches only the observers of its own tenant, once",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('crash');
      const obsA = await h.connect(survivor, { namespace: '/a', label: 'obs-a' });
      const obsB = await h.connect(survivor, { namespace: '/b', label: 'obs-b' });
      const obsAId = (await obsA.join(room, 'olga')).self.connId;
      const obsBId = (await obsB.join(room, 'oscar')).self.connId;
      const va = await h.connect(victim, { namespace: '/a', label: 'victim-a' });
      const vb = await h.connect(victim, { namespace: '/b', label: 'victim-b' });
      const vaId = (await va.join(room, 'vera')).self.connId;
      const vbId = (await vb.join(room, 'viktor')).self.connId;
      for (const c of [obsA, obsB, va, vb]) h.keepAlive(c, BEAT_MS);
      await obsA.events.waitFor({ type: 'join', connId: vaId });
      await obsB.events.waitFor({ type: 'join', connId: vbId });

      victim.signal('SIGKILL');
      assert.equal((await victim.waitExit(5_000)).signal, 'SIGKILL');

      await obsA.events.waitFor({ type: 'expire', connId: vaId }, EXPIRE_DEADLINE_MS);
      await obsB.events.waitFor({ type: 'expire', connId: vbId }, EXPIRE_DEADLINE_MS);
      await h.barrier(room, { nodes: [survivor], observers: [obsA], marker: { namespace: '/a' } });
      await h.barrier(room, { nodes: [survivor], observers: [obsB], marker: { namespace: '/b' } });

      obsA.events.assertCount({ type: 'expire', connId: vaId }, 1, "a's crashed member expires once in a");
      obsB.events.assertCount({ type: 'expire', connId: vbId }, 1, "b's crashed member expires once in b");
      assert.deepEqual(foreignEvents(obsA, [obsAId, vaId]), [], `a's observer sees nothing of b: ${show(obsA.events.events)}`);
      assert.deepEqual(foreignEvents(obsB, [obsBId, vbId]), [], `b's observer sees nothing of a: ${show(obsB.events.events)}`);
      assert.deepEqual((await obsA.snapshot(room)).map((m) => m.connId), [obsAId], "a's room keeps its live member only");
      assert.deepEqual((await obsB.snapshot(room)).map((m) => m.connId), [obsBId], "b's room keeps its live member only");

      const stray = (await h.redis.scan('*')).filter((k) => !k.startsWith('prs:a:') && !k.startsWith('prs:b:'));
      assert.deepEqual(stray, [], 'every key carries its tenant, the reaper included');
    }),
  );
});

// ---------------------------------------------------------------------------
// 3. reload while clients are connected
// ---------------------------------------------------------------------------

describe('tenancy: the tenants file is reloaded while clients are connected', () => {
  // The steps build on each other (one file, one node): each test writes the
  // whole file it needs and leaves it valid. The veteran socket of tenant a
  // is connected for the whole block and must survive every reload.
  const h = new Harness();
  let node;
  let file;
  let veteran;
  let veteranRoom;
  let veteranId;
  let limited;
  const limitedRooms = [uid('lim'), uid('lim')];

  /** The file's content: tenant a with `roomsPerSocket`, plus `more` tenants. */
  const spec = (roomsPerSocket, more = []) => ({
    defaults: { limits: { rooms_per_socket: 64 } },
    tenants: [{ id: 'a', limits: { rooms_per_socket: roomsPerSocket } }, ...more],
  });

  /**
   * Waits for a successful reload after `since` (the `loadedAt` before the write)
   * whose view satisfies `applied` (so it is the load of the new content).
   */
  async function reloaded(since, what, applied) {
    let last;
    return waitUntil(
      async () => {
        last = await tenantsView(node);
        return last.loadedAt > since && last.error === null && applied(last) ? last : false;
      },
      { timeoutMs: RELOAD_DEADLINE_MS, what: () => `reload: ${what} (last view: ${show(last)})` },
    );
  }

  /** Waits until `/admin/tenants` reports a failed reload; returns the view. */
  async function reloadFailed(what) {
    let last;
    return waitUntil(
      async () => {
        last = await tenantsView(node);
        return typeof last.error === 'string' && last.error.length > 0 ? last : false;
      },
      { timeoutMs: RELOAD_DEADLINE_MS, what: () => `a reload error for ${what} in /admin/tenants (last view: ${show(last)})` },
    );
  }

  /**
   * Waits until `/admin/tenants` shows no reload error again (after a failed
   * one was seen, so this is the next good file's load; whether `loadedAt`
   * moves when the content equals what is loaded is not pinned).
   */
  async function errorCleared(what) {
    let last;
    return waitUntil(
      async () => {
        last = await tenantsView(node);
        return last.error === null ? last : false;
      },
      { timeoutMs: RELOAD_DEADLINE_MS, what: () => `the reload error to clear: ${what} (last view: ${show(last)})` },
    );
  }

  before(async () => {
    file = join(scratch('rtm-tenants-'), 'tenants.toml');
    writeTenantsFile(file, spec(5));
    await h.startRedis();
    node = await h.startHost('reload', { redis: true, env: { ...SLOW_ENV, TENANTS_FILE: file } });
    veteran = await h.connect(node, { namespace: '/a', label: 'veteran' });
    veteranRoom = uid('veteran');
    veteranId = (await veteran.join(veteranRoom, 'vic')).self.connId;
    limited = await h.connect(node, { namespace: '/a', label: 'limited' });
    for (const room of limitedRooms) await limited.join(room, 'lia');
  });
  after(() => h.stop());

  /** The veteran is still connected, serving, and still registered. */
  async function veteranSurvived(context) {
    await veteran.assertStillServing(context);
    const snap = await veteran.snapshot(veteranRoom);
    assert.deepEqual(snap.map((m) => m.connId), [veteranId], `${context}: the veteran's registration is intact: ${show(snap)}`);
  }

  it(
    'a tenant added to the file starts serving its namespace; connected sockets stay',
    TEST_TIMEOUT,
    h.wrap(async () => {
      await h.refused(node, { namespace: '/c', label: 'c-too-early' }, 'Invalid namespace');
      const since = (await tenantsView(node)).loadedAt;
      writeTenantsFile(file, spec(5, [{ id: 'c' }]));
      const view = await reloaded(since, 'tenant c added', (v) => v.tenants.some((t) => t.id === 'c'));
      assert.deepEqual(sorted(view.tenants.map((t) => t.id)), ['a', 'c'], `tenants after the add: ${show(view.tenants)}`);

      const c = await h.connect(node, { namespace: '/c', label: 'c-new' });
      const room = uid('c-room');
      const { self } = await c.join(room, 'cleo');
      assert.deepEqual((await c.snapshot(room)).map((m) => m.connId), [self.connId]);
      c.close();
      await veteranSurvived('after tenant c was added');
    }),
  );

  it(
    'a lowered rooms_per_socket applies to the next join (quota_exceeded); what was joined stays; raising it again lets the join through',
    TEST_TIMEOUT,
    h.wrap(async () => {
      // `limited` holds 2 rooms under a limit of 5. Lower it to 2, rewriting the file in place.
      let since = (await tenantsView(node)).loadedAt;
      writeTenantsFile(file, spec(2, [{ id: 'c' }]), { inPlace: true });
      await reloaded(since, 'rooms_per_socket 5 -> 2', (v) => v.tenants.find((t) => t.id === 'a')?.limits?.rooms_per_socket === 2);
      assert.equal((await tenantView(node, 'a')).limits.rooms_per_socket, 2, '/admin/tenants shows the new limit');

      const third = uid('lim-third');
      await limited.fails('presence:join', { roomId: third, userId: 'lia' }, 'quota_exceeded');
      await limited.assertStillServing('after quota_exceeded');
      assert.deepEqual(await limited.snapshot(third), [], 'the refused join registered nothing');
      for (const room of limitedRooms) {
        assert.equal((await limited.snapshot(room)).length, 1, `the registration in ${room} made under the old limit stays`);
      }
      // Joining a room the socket already holds is no new room.
      await limited.join(limitedRooms[0], 'lia', { state: { again: true } });

      since = (await tenantsView(node)).loadedAt;
      writeTenantsFile(file, spec(3, [{ id: 'c' }]));
      await reloaded(since, 'rooms_per_socket 2 -> 3', (v) => v.tenants.find((t) => t.id === 'a')?.limits?.rooms_per_socket === 3);
      await limited.join(third, 'lia');
      limitedRooms.push(third);
      await limited.fails('presence:join', { roomId: uid('lim-fourth'), userId: 'lia' }, 'quota_exceeded');
      await veteranSurvived('after the limit changes');
    }),
  );

  it(
    'a broken file changes nothing: the old tenants and limits keep serving and /admin/tenants shows the error',
    TEST_TIMEOUT,
    h.wrap(async () => {
      for (const [what, text] of [
        ['a file that is not TOML', '[[tenant]\nid = "a"\nthis is not toml\n'],
        ['an invalid tenant id', tenantsToml(spec(64, [{ id: 'Not_Valid!' }]))],
      ]) {
        const before = await tenantsView(node);
        writeTenantsFile(file, text);
        const view = await reloadFailed(what);
        assert.deepEqual(sorted(view.tenants.map((t) => t.id)), ['a', 'c'], `${what}: the old tenants are still listed: ${show(view)}`);
        assert.equal((await tenantView(node, 'a')).limits.rooms_per_socket, 3, `${what}: the old limit is still listed`);

        // Still served as before: sockets, new connects, and the old limit.
        await veteranSurvived(`after ${what}`);
        await limited.fails('presence:join', { roomId: uid('lim-over'), userId: 'lia' }, 'quota_exceeded');
        for (const id of ['a', 'c']) {
          const fresh = await h.connect(node, { namespace: `/${id}`, label: `fresh-${id}` });
          await fresh.join(uid('fresh'), 'fred');
          fresh.close();
        }

        // The good file again (the content loaded before): the error is cleared.
        writeTenantsFile(file, spec(3, [{ id: 'c' }]));
        const fixed = await errorCleared(`the good file after ${what}`);
        assert.ok(fixed.loadedAt >= before.loadedAt, show(fixed));
        assert.equal(fixed.tenants.find((t) => t.id === 'a')?.limits?.rooms_per_socket, 3, show(fixed));
        assert.deepEqual(sorted(fixed.tenants.map((t) => t.id)), ['a', 'c']);
      }
    }),
  );

  it(
    "a removed tenant's sockets are disconnected, its registrations are gone and its namespace refuses new connects",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('doomed');
      const c1 = await h.connect(node, { namespace: '/c', label: 'c1' });
      const c2 = await h.connect(node, { namespace: '/c', label: 'c2' });
      const c1Id = (await c1.join(room, 'cara', { state: { doomed: true } })).self.connId;
      const c2Id = (await c2.join(room, 'carl')).self.connId;
      await c1.events.waitFor({ type: 'join', connId: c2Id });
      // The same room name in tenant a, which must not notice anything.
      const aId = (await veteran.join(room, 'vic')).self.connId;
      assert.ok((await h.redis.scan('prs:c:*')).length > 0, "tenant c's registrations are in Redis");

      const since = (await tenantsView(node)).loadedAt;
      writeTenantsFile(file, spec(3));
      const view = await reloaded(since, 'tenant c removed', (v) => !v.tenants.some((t) => t.id === 'c'));
      assert.deepEqual(view.tenants.map((t) => t.id), ['a'], `tenants after the removal: ${show(view.tenants)}`);

      await c1.waitDisconnected(RELOAD_DEADLINE_MS);
      await c2.waitDisconnected(RELOAD_DEADLINE_MS);
      await h.refused(node, { namespace: '/c', label: 'c-after' }, 'Invalid namespace');
      // Their registrations left like on any disconnect: no key of tenant c mentions them.
      await waitUntil(
        async () => {
          await h.redis.assertNoTrace([c1Id, c2Id, room], 'prs:c:*', "tenant c's registrations after the removal");
          return true;
        },
        { timeoutMs: RELOAD_DEADLINE_MS, what: "tenant c's registrations to leave Redis" },
      );

      // Tenant a is untouched, in the same-named room too.
      await h.barrier(room, { nodes: [node], observers: [veteran], after: [veteran], marker: { namespace: '/a' } });
      assert.equal(veteran.events.count((e) => e.connId === c1Id || e.connId === c2Id), 0, "a's socket saw nothing of c");
      assert.deepEqual((await veteran.snapshot(room)).map((m) => m.connId), [aId]);
      await veteranSurvived('after tenant c was removed');
      await limited.assertStillServing('after tenant c was removed');
    }),
  );
});

describe('tenancy: SIGHUP reloads the tenants file', () => {
  // TENANTS_FILE is a symlink whose target is swapped (the way Kubernetes updates a
  // mounted ConfigMap): the target's folder sees no change of the file it holds, so
  // this reload is SIGHUP's.
  const h = new Harness();
  let node;
  let link;
  let content;

  before(async () => {
    const linkDir = scratch('rtm-tenants-link-');
    content = scratch('rtm-tenants-content-');
    writeTenantsFile(join(content, 'v1.toml'), { tenants: [{ id: 'a' }] });
    link = join(linkDir, 'tenants.toml');
    symlinkSync(join(content, 'v1.toml'), link);
    node = await h.startHost('sighup', { env: { TENANTS_FILE: link } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'after SIGHUP the file is re-read: a tenant added behind the swapped symlink serves, connected sockets stay',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const veteran = await h.connect(node, { namespace: '/a', label: 'veteran' });
      const room = uid('hup');
      await veteran.join(room, 'vic');
      await h.refused(node, { namespace: '/hup', label: 'hup-too-early' }, 'Invalid namespace');

      writeTenantsFile(join(content, 'v2.toml'), { tenants: [{ id: 'a' }, { id: 'hup' }] });
      const tmpLink = join(dirname(link), '.tenants.toml.new');
      symlinkSync(join(content, 'v2.toml'), tmpLink);
      renameSync(tmpLink, link);
      node.signal('SIGHUP');

      let last;
      await waitUntil(
        async () => {
          last = await tenantsView(node);
          return last.tenants.some((t) => t.id === 'hup');
        },
        { timeoutMs: RELOAD_DEADLINE_MS, what: () => `tenant hup after SIGHUP (last view: ${show(last)})` },
      );
      assert.equal(last.error, null, show(last));
      const c = await h.connect(node, { namespace: '/hup', label: 'hup' });
      await c.join(uid('hup'), 'hugo');
      await veteran.assertStillServing('after the SIGHUP reload');
      assert.equal((await veteran.snapshot(room)).length, 1, "the veteran's registration is intact");
      assert.equal(node.running, true, 'SIGHUP does not stop the host');
    }),
  );
});

// ---------------------------------------------------------------------------
// 4. a bad tenants file at start
// ---------------------------------------------------------------------------

describe('tenancy: a bad tenants file at start exits 2 with one line on stderr', () => {
  const h = new Harness();
  let dir;
  before(() => {
    dir = scratch('rtm-bad-tenants-');
  });
  after(() => h.stop());

  /** Asserts exit code 2, exactly one non-empty stderr line starting `rtm-host: `, and no listener. */
  function assertStartRefused(result, what) {
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    assert.equal(result.code, 2, `${what}: exit code 2 (got code ${result.code}, signal ${result.signal}); stderr:\n${result.stderr}`);
    assert.equal(lines.length, 1, `${what}: exactly one stderr line, got ${lines.length}:\n${result.stderr}`);
    assert.match(lines[0], /^rtm-host: \S/, `${what}: the line starts "rtm-host: " and says why`);
    assert.doesNotMatch(result.stdout, /listening/, `${what}: the host never listened: ${result.stdout}`);
  }

  const CASES = [
    ['a file that is not TOML', 'this is = not [toml\n'],
    ['an invalid tenant id', tenantsToml({ tenants: [{ id: 'Bad_Id' }] })],
    ['a tenant id longer than 32 characters', tenantsToml({ tenants: [{ id: `a${'b'.repeat(32)}` }] })],
    ['a duplicate tenant id', tenantsToml({ tenants: [{ id: 'twice' }, { id: 'twice' }] })],
    ['a tenant without an id', '[[tenant]]\nplugins_dir = "/tmp"\n'],
    ['a limit of the wrong type', tenantsToml({ tenants: [{ id: 'a', limits: { rooms_per_socket: 'many' } }] })],
    ['an env: secret whose variable is not set', tenantsToml({ tenants: [{ id: 'a', auth: { hs256_secret: 'env:RTM_TEST_UNSET_SECRET' } }] })],
  ];

  for (const [what, text] of CASES) {
    it(
      what,
      TEST_TIMEOUT,
      h.wrap(async () => {
        const file = join(dir, `${uid('bad')}.toml`);
        writeTenantsFile(file, text);
        assertStartRefused(await runHostUntilExit({ env: { TENANTS_FILE: file } }), `${what} (TENANTS_FILE)`);
        assertStartRefused(await runHostUntilExit({ args: ['--tenants-file', file] }), `${what} (--tenants-file)`);
      }),
    );
  }

  it(
    'a file that does not exist',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const missing = join(dir, 'no-such-tenants.toml');
      assertStartRefused(await runHostUntilExit({ env: { TENANTS_FILE: missing } }), 'a missing file');
    }),
  );

  it(
    'control: the same kind of file, valid, starts and serves (by TENANTS_FILE and by --tenants-file)',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const file = join(dir, 'good.toml');
      writeTenantsFile(file, { tenants: [{ id: 'a', limits: { rooms_per_socket: 4 }, auth: { hs256_secret: 'env:RTM_TEST_SET_SECRET' } }] });
      const secret = randomBytes(16).toString('hex');
      const byEnv = await h.startHost('good-env', { env: { TENANTS_FILE: file, RTM_TEST_SET_SECRET: secret } });
      const byFlag = await h.startHost('good-flag', { args: ['--tenants-file', file], env: { RTM_TEST_SET_SECRET: secret } });
      for (const node of [byEnv, byFlag]) {
        const token = signJwt({ sub: 'gail', exp: nowSeconds() + 600 }, { key: secret });
        const c = await h.connect(node, { namespace: '/a', auth: { token }, label: 'good' });
        await c.ok('presence:join', { roomId: uid('good') });
        assert.equal((await tenantView(node, 'a')).limits.rooms_per_socket, 4);
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// 5. /admin/tenants never shows a secret; `default` is served on `/`
// ---------------------------------------------------------------------------

describe('tenancy: /admin/tenants and the default tenant', () => {
  const h = new Harness();
  let node;
  let file;
  let sink;
  const secrets = {
    jwtA: `jwt-a-${randomBytes(12).toString('hex')}`,
    jwtB: `jwt-b-${randomBytes(12).toString('hex')}`,
    apiA1: `api-a1-${randomBytes(12).toString('hex')}`,
    apiA2: `api-a2-${randomBytes(12).toString('hex')}`,
    apiB: `api-b-${randomBytes(12).toString('hex')}`,
    hookA: `hook-a-${randomBytes(12).toString('hex')}`,
    hookB: `hook-b-${randomBytes(12).toString('hex')}`,
  };

  before(async () => {
    // A webhook receiver that accepts everything, so configured webhooks have somewhere to go.
    sink = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
    });
    await new Promise((res) => sink.listen(0, '127.0.0.1', res));
    const hookUrl = `http://127.0.0.1:${sink.address().port}/rtm`;
    file = join(scratch('rtm-tenants-'), 'tenants.toml');
    writeTenantsFile(file, {
      defaults: {
        limits: { events_per_second: 40, events_burst: 80, members_per_room: 900 },
        plugins: { memory_mb: 48 },
      },
      tenants: [
        { id: 'default' },
        {
          id: 'a',
          api_keys: ['env:RTM_T_A_API_KEY', secrets.apiA2],
          auth: { hs256_secret: 'env:RTM_T_A_JWT_SECRET', audience: 'aud-a' },
          limits: { max_connections: 50, rooms_per_socket: 7 },
          plugins: { cpu_ms: 50 },
          webhook: { url: hookUrl, secret: 'env:RTM_T_A_WEBHOOK_SECRET', events: ['member_joined', 'member_left'] },
        },
        {
          id: 'b',
          api_keys: [secrets.apiB],
          auth: { hs256_secret: secrets.jwtB },
          webhook: { url: hookUrl, secret: secrets.hookB, events: ['room_occupied'] },
        },
      ],
    });
    node = await h.startHost('admin', {
      env: {
        TENANTS_FILE: file,
        RTM_T_A_API_KEY: secrets.apiA1,
        RTM_T_A_JWT_SECRET: secrets.jwtA,
        RTM_T_A_WEBHOOK_SECRET: secrets.hookA,
      },
    });
  });
  after(async () => {
    await h.stop();
    await new Promise((res) => sink.close(res));
  });
  afterEach(() => h.closeClients());

  const tokenA = (sub) => signJwt({ sub, aud: 'aud-a', exp: nowSeconds() + 600 }, { key: secrets.jwtA });
  const tokenB = (sub) => signJwt({ sub, exp: nowSeconds() + 600 }, { key: secrets.jwtB });

  it(
    'lists every tenant with its namespaces, auth kind and limits merged over [defaults]',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const view = await tenantsView(node);
      assert.equal(view.error, null, show(view));
      assert.equal(view.file, file, show(view));
      const byId = Object.fromEntries(view.tenants.map((t) => [t.id, t]));
      assert.deepEqual(sorted(Object.keys(byId)), ['a', 'b', 'default'], show(view.tenants));
      assert.ok(byId.default.namespaces.includes('/'), `the default tenant is served on /: ${show(byId.default)}`);
      assert.deepEqual(byId.a.namespaces, ['/a']);
      assert.deepEqual(byId.b.namespaces, ['/b']);
      assert.equal(byId.default.auth, 'none');
      assert.equal(byId.a.auth, 'hs256');
      assert.equal(byId.b.auth, 'hs256');

      const expectA = { max_connections: 50, events_per_second: 40, events_burst: 80, rooms_per_socket: 7, members_per_room: 900 };
      // b overrides nothing: [defaults] where set, else the host's defaults (LIMIT_* env
      // defaults; LIMIT_MAX_CONNECTIONS is 0 = no limit).
      const expectB = { max_connections: 0, events_per_second: 40, events_burst: 80, rooms_per_socket: 64, members_per_room: 900 };
      for (const [id, expected] of [
        ['a', expectA],
        ['b', expectB],
      ]) {
        for (const [key, value] of Object.entries(expected)) {
          assert.equal(byId[id].limits?.[key], value, `tenant ${id} limits.${key}: ${show(byId[id].limits)}`);
        }
      }
      assert.equal(byId.a.pluginLimits?.cpu_ms, 50, `a's own plugin cpu_ms: ${show(byId.a.pluginLimits)}`);
      assert.equal(byId.a.pluginLimits?.memory_mb, 48, `[defaults.plugins] memory_mb: ${show(byId.a.pluginLimits)}`);
      assert.equal(byId.b.pluginLimits?.memory_mb, 48, `[defaults.plugins] memory_mb: ${show(byId.b.pluginLimits)}`);
      assert.equal(byId.b.pluginLimits?.cpu_ms, 100, `b keeps the host default cpu_ms: ${show(byId.b.pluginLimits)}`);
    }),
  );

  it(
    'counts connections per tenant and never contains a configured secret (admin JSON and /metrics searched)',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const a1 = await h.connect(node, { namespace: '/a', auth: { token: tokenA('ann') }, label: 'a1' });
      await h.connect(node, { namespace: '/a', auth: { token: tokenA('abe') }, label: 'a2' });
      const b1 = await h.connect(node, { namespace: '/b', auth: { token: tokenB('ben') }, label: 'b1' });
      await h.connect(node, { label: 'default1' });
      await a1.ok('presence:join', { roomId: uid('counted') });
      await b1.ok('presence:join', { roomId: uid('counted') });
      await waitConnections(node, 'a', 2);
      await waitConnections(node, 'b', 1);
      await waitConnections(node, 'default', 1);
      a1.close();
      await waitConnections(node, 'a', 1);

      const adminText = await getText(`${node.url}/admin/tenants`);
      const metricsText = await getText(`${node.url}/metrics`);
      for (const [name, value] of Object.entries(secrets)) {
        assert.ok(!adminText.includes(value), `/admin/tenants must not contain secret ${name}:\n${adminText}`);
        assert.ok(!metricsText.includes(value), `/metrics must not contain secret ${name}`);
        // tenants.example.toml: "Secrets never appear in logs, metrics or /admin output."
        assert.ok(!node.stderr.includes(value) && !node.stdout.includes(value), `the host's log must not contain secret ${name}`);
      }
    }),
  );

  it(
    'the default tenant on / and tenant a are separate: the same room name is two rooms',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('slash');
      const d = await h.connect(node, { label: 'default' });
      const dId = (await d.join(room, 'dora')).self.connId;
      const a = await h.connect(node, { namespace: '/a', auth: { token: tokenA('ann') }, label: 'a' });
      const aJoin = await a.ok('presence:join', { roomId: room });
      assert.deepEqual(aJoin.snapshot.map((m) => m.connId), [aJoin.self.connId], `a's room does not list default's member: ${show(aJoin.snapshot)}`);
      await h.barrier(room, { nodes: [node], observers: [d], after: [a] });
      assert.deepEqual(foreignEvents(d, [dId]), [], `the default tenant's socket saw nothing of a: ${show(d.events.events)}`);
      assert.deepEqual((await d.snapshot(room)).map((m) => m.connId), [dId]);
    }),
  );
});

// ---------------------------------------------------------------------------
// 6. the repository's example file
// ---------------------------------------------------------------------------

describe("tenancy: the repository's tenants.example.toml", () => {
  const h = new Harness();
  after(() => h.stop());

  /** A value for an `env:NAME` the example references: a real PEM or URL where the name says so. */
  function envValue(name) {
    if (/PEM|PUBLIC_KEY/i.test(name)) return { value: makeKeyPair('rsa').publicPem, secret: false };
    if (/URL/i.test(name)) return { value: 'http://127.0.0.1:9/.well-known/jwks.json', secret: false };
    return { value: `example-${name.toLowerCase()}-${randomBytes(12).toString('hex')}`, secret: true };
  }

  it(
    'parses: a host started with it (and the env vars it references) serves the tenants it lists and shows no secret',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const path = join(REPO_ROOT, 'tenants.example.toml');
      assert.ok(existsSync(path), `the example ${path} must exist`);
      const text = readFileSync(path, 'utf8');
      const names = [...new Set([...text.matchAll(/env:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]))];
      const env = { TENANTS_FILE: path };
      const secretValues = [];
      for (const name of names) {
        const { value, secret } = envValue(name);
        env[name] = value;
        if (secret) secretValues.push(value);
      }
      const ids = [...text.matchAll(/^\s*id\s*=\s*"([^"]+)"/gm)].map((m) => m[1]);
      assert.ok(ids.length > 0, 'the example lists at least one tenant');

      const node = await h.startHost('example', { env, waitReady: false });
      const view = await tenantsView(node);
      assert.equal(view.error, null, `the example loads without error: ${show(view)}`);
      assert.deepEqual(sorted(view.tenants.map((t) => t.id)), sorted(ids), `the example's tenants are served: ${show(view.tenants)}`);
      const adminText = JSON.stringify(view);
      for (const value of secretValues) assert.ok(!adminText.includes(value), `a secret from the environment shows in /admin/tenants: ${adminText}`);
      await waitUntil(async () => (await httpStatus(`${node.url}/readyz`)) === 200, {
        timeoutMs: 30_000,
        what: 'the example host to be ready',
      });
    }),
  );
});

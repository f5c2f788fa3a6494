/**
 * Plugin isolation between tenants, and per-call plugin budgets per tenant
 * (PROTOCOL.md "Tenants" (isolation), "Authentication", "Limits and
 * quotas"), driven through the `host-probe` test guest
 * (`plugins/test-guests/host-probe`): every host call a plugin can make, on
 * demand. `probe:<action>` answers the host call's outcome inside the ack's
 * data, `{ ok: true, value }` or `{ ok: false, code, message }`, so a refused
 * call is visible instead of failing the event; its emits are
 * `probe:ping { from }`, `from` being the socket whose event made them.
 *
 * What is pinned:
 * 1. two tenants `a` (HS256 auth) and `b`, each loading host-probe from its
 *    own folder, on two nodes sharing one Redis. For every host-call path a
 *    plugin of tenant a cannot reach tenant b, and the same call works
 *    within the tenant (the positive control of each test):
 *    - `emit.to-socket` with a b socket id (on the caller's node and on the
 *      other node) delivers nothing to it;
 *    - `emit.to-room` of a room name b's sockets are in (joined through
 *      `presence:join` in tenant b) reaches a's members of that name only;
 *    - `emit.broadcast` reaches a's sockets only;
 *    - `rooms.join` of a b socket into a room of a is refused or has no
 *      effect: a's room does not list it, a's emits to the room do not reach
 *      it, and b's room of that name does not get it either;
 *    - `rooms.members` / `rooms.has` list none of b's sockets, for a room
 *      name both tenants use and for one only b uses;
 *    - `presence.snapshot` of a room b has members in is empty in a, and
 *      lists only a's members once a joins the same name;
 *    - `kv.set` / `kv.get` of the same key in both tenants keeps two values
 *      (read on both nodes), stored under each tenant's own prefix;
 *    and `event-ctx.user`: the token's `sub` from the first event of an
 *    authenticated socket on, `null` for a socket of b before any join;
 * 2. per-call budgets and the kv quota, set per tenant in `[tenant.plugins]`
 *    (tenant a: `emits_per_call = 3`, `reply_max_bytes = 1000`,
 *    `log_bytes_per_call = 100`, `kv_max_keys = 5`; tenant b: `kv_max_keys = 7`,
 *    defaults otherwise, so b is also the control that the limits are a's):
 *    the 4th and later emits of a call fail `quota_exceeded` and exactly 3
 *    pings arrive, the next call has its budget again; a reply over the
 *    limit is `plugin_failed`; a log line over the budget is cut and the host
 *    logs a warning naming `log_bytes_per_call`; the 6th key is
 *    `quota_exceeded`, sequentially and (7 keys, 40 sockets on two nodes at
 *    once) cluster-wide, and exactly the keys acked ok are stored;
 * 3. after each group, every Redis key starts with `prs:a:` or `prs:b:`.
 *
 * "Nothing arrived" is counted after a barrier along the same path: a fresh
 * socket of the observer's own tenant, on the node where the checked call
 * ran (then on the other node), has its own plugin emit a ping to the
 * observers the same way (to the socket, to the room, or to everyone), and
 * every observer waits for it. One node's emits reach a client in order and
 * each node's publications reach the other nodes in order, so whatever the
 * checked call could have delivered has arrived by then. The guest comes
 * prebuilt from `RTM_GUESTS_DIR` (missing: every test fails, nothing is
 * skipped).
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  BARRIER_TIMEOUT_MS,
  Harness,
  assertGuests,
  listen,
  makePluginsDir,
  nowSeconds,
  show,
  signJwt,
  tenantView,
  uid,
  waitUntil,
  writeTenantsFile,
  scratchSpace,
  SLOW_ENV,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 180_000 };

/** The guest under test, as `scripts/build-guests.sh` names it. */
const PROBE_GUEST = 'host-probe.wasm';
/** Its manifest name (the kv namespace, `/admin/tenants` plugins). */
const PROBE_PLUGIN = 'host-probe';

const { scratch, keep } = scratchSpace();

/** One compiled-artifact cache for the whole file (safe: keyed by content hash). */
const CACHE_DIR = scratch('rtm-plugin-cache-');

/** A tenant's own plugins folder holding a copy of host-probe. */
function probePlugins() {
  const dir = makePluginsDir({ [PROBE_GUEST]: PROBE_GUEST });
  return keep(dir);
}

/** Names of the plugins `/admin/tenants` lists for a tenant (names, or objects with a name). */
function pluginNames(tenant) {
  return (tenant?.plugins ?? []).map((p) => (typeof p === 'string' ? p : p?.name)).sort();
}

/** Waits until `node` has loaded host-probe for tenant `id`. */
async function waitProbeLoaded(node, id) {
  let last;
  await waitUntil(
    async () => {
      last = await tenantView(node, id);
      return pluginNames(last).includes(PROBE_PLUGIN);
    },
    { timeoutMs: 60_000, intervalMs: 100, what: () => `${node.name}: tenant ${id} to load ${PROBE_PLUGIN} (last: ${show(last)})` },
  );
}

/** Sorted copy, for order-free comparisons. */
const sorted = (values) => [...values].sort();

/**
 * Sends `probe:<action>` and returns the plugin's reply (the ack's `data`);
 * the event itself must be served (`{ ok: true }`).
 */
async function probe(client, action, args = {}, timeoutMs = undefined) {
  const ack = await client.ok(`probe:${action}`, args, timeoutMs);
  return ack.data;
}

/** The host call behind a probe succeeded: returns its value. */
function hostOk(result, context) {
  assert.equal(result?.ok, true, `${context}: the host call must succeed, got ${show(result)}`);
  return result.value;
}

/** The host call behind a probe failed with `code`. */
function hostRefused(result, code, context) {
  assert.equal(result?.ok, false, `${context}: the host call must fail ${code}, got ${show(result)}`);
  assert.equal(result.code, code, `${context}: error code, got ${show(result)}`);
  assert.equal(typeof result.message, 'string', `${context}: error message, got ${show(result)}`);
  return result;
}

/** A `rooms.has` answer that does not claim membership: `false`, or a refusal. */
function assertNotMember(result, context) {
  assert.ok(
    result?.ok === false || (result?.ok === true && result.value === false),
    `${context}: must not report membership, got ${show(result)}`,
  );
}

/**
 * Barrier for "no probe:ping from the checked call reached these targets":
 * for each node in turn (the node of the checked call first), a fresh socket
 * of the targets' own tenant (`openMarker(node, label)`) makes its plugin
 * ping every target along `path` (`{ socket: true }`: to each target's id;
 * `{ room }`: to the room; `{ broadcast: true }`: to the tenant), and every
 * target waits for that ping. Returns the markers' socket ids.
 */
async function pingBarrier(openMarker, nodes, targets, path = { socket: true }) {
  const markers = [];
  for (const node of nodes) {
    const marker = await openMarker(node, 'ping-marker');
    const from = marker.socket.id;
    markers.push(from);
    if (path.room !== undefined) {
      hostOk(await probe(marker, 'emit-room', { room: path.room }), `barrier marker on ${node.name}: emit-room ${path.room}`);
    } else if (path.broadcast) {
      hostOk(await probe(marker, 'broadcast'), `barrier marker on ${node.name}: broadcast`);
    } else {
      for (const t of targets) {
        hostOk(await probe(marker, 'emit-socket', { socket: t.socket.id }), `barrier marker on ${node.name}: emit-socket to ${t.label}`);
      }
    }
    await Promise.all(targets.map((t) => t.pings.waitFor({ from }, BARRIER_TIMEOUT_MS)));
    marker.close();
  }
  return markers;
}

/** Redis keys that carry neither tenant's prefix. */
function strayKeys(keys) {
  return keys.filter((k) => !k.startsWith('prs:a:') && !k.startsWith('prs:b:'));
}

// ---------------------------------------------------------------------------
// 1. every plugin host-call path stays in its tenant
// ---------------------------------------------------------------------------

describe('isolation: host-probe in tenants a and b on two nodes sharing one Redis', () => {
  const h = new Harness();
  let node1;
  let node2;
  const SECRET = randomBytes(32).toString('hex');

  before(async () => {
    assertGuests([PROBE_GUEST]);
    const file = join(scratch('rtm-isolation-'), 'tenants.toml');
    writeTenantsFile(file, {
      tenants: [
        { id: 'a', plugins_dir: probePlugins(), auth: { hs256_secret: SECRET } },
        { id: 'b', plugins_dir: probePlugins() },
      ],
    });
    await h.startRedis();
    const env = { ...SLOW_ENV, TENANTS_FILE: file, PLUGIN_CACHE_DIR: CACHE_DIR };
    node1 = await h.startHost('node1', { redis: true, env: { ...env, NODE_ID: 'node1' } });
    node2 = await h.startHost('node2', { redis: true, env: { ...env, NODE_ID: 'node2' } });
    for (const node of [node1, node2]) {
      for (const id of ['a', 'b']) await waitProbeLoaded(node, id);
    }
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /** An HS256 token of tenant a for `sub`, valid for an hour. */
  const token = (sub) => signJwt({ sub, iat: nowSeconds(), exp: nowSeconds() + 3600 }, { key: SECRET });

  /** A connected, authenticated socket of tenant a on `node` (`c.sub` its user), logging its pings. */
  async function aSocket(node, label = 'a', sub = uid('ann')) {
    const c = await h.connect(node, { namespace: '/a', auth: { token: token(sub) }, label });
    c.sub = sub;
    c.pings = listen(c, 'probe:ping');
    return c;
  }

  /** A connected socket of tenant b (no auth) on `node`, logging its pings. */
  async function bSocket(node, label = 'b') {
    const c = await h.connect(node, { namespace: '/b', label });
    c.pings = listen(c, 'probe:ping');
    return c;
  }

  it(
    "emit.to-socket: a's plugin cannot reach a b socket by its id, on the same node or the other; a's own sockets it reaches",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const caller = await aSocket(node1, 'a-caller');
      const aNear = await aSocket(node1, 'a-near');
      const aFar = await aSocket(node2, 'a-far');
      const bNear = await bSocket(node1, 'b-near');
      const bFar = await bSocket(node2, 'b-far');
      const from = caller.socket.id;

      // Across the boundary: refused or delivered to nobody, the host may answer either way.
      const answers = new Map();
      for (const b of [bNear, bFar]) answers.set(b, await probe(caller, 'emit-socket', { socket: b.socket.id }));

      // Within the tenant the same call reaches the socket, on either node.
      for (const a of [aNear, aFar]) {
        hostOk(await probe(caller, 'emit-socket', { socket: a.socket.id }), `a's emit-socket to ${a.label}`);
        await a.pings.waitFor({ from });
      }

      await pingBarrier(bSocket, [node1, node2], [bNear, bFar]);
      for (const b of [bNear, bFar]) {
        b.pings.assertCount({ from }, 0, `a's emit-socket to ${b.label} (host answered ${show(answers.get(b))})`);
      }
    }),
  );

  it(
    "emit.to-room: a's emit to a room name b's sockets are in reaches a's members of that name only",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('shared-room');
      const bNear = await bSocket(node1, 'b-near');
      const bFar = await bSocket(node2, 'b-far');
      await bNear.join(room, uid('bob'));
      await bFar.join(room, uid('bea'));
      const aNear = await aSocket(node1, 'a-near');
      const aFar = await aSocket(node2, 'a-far');
      await aNear.join(room, aNear.sub);
      await aFar.join(room, aFar.sub);
      const caller = await aSocket(node1, 'a-caller');
      const from = caller.socket.id;

      hostOk(await probe(caller, 'emit-room', { room }), `a's emit-room ${room}`);
      for (const a of [aNear, aFar]) await a.pings.waitFor({ from });

      // b's own emit to its room of that name is the barrier (and shows that room is real).
      await pingBarrier(bSocket, [node1, node2], [bNear, bFar], { room });
      for (const b of [bNear, bFar]) b.pings.assertCount({ from }, 0, `a's emit-room ${room} must not reach b's room of that name`);
    }),
  );

  it(
    "emit.broadcast: a's broadcast reaches every socket of a, on both nodes, and none of b",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const caller = await aSocket(node1, 'a-caller');
      const aFar = await aSocket(node2, 'a-far');
      const bNear = await bSocket(node1, 'b-near');
      const bFar = await bSocket(node2, 'b-far');
      const from = caller.socket.id;

      hostOk(await probe(caller, 'broadcast'), "a's broadcast");
      for (const a of [caller, aFar]) await a.pings.waitFor({ from });

      await pingBarrier(bSocket, [node1, node2], [bNear, bFar], { broadcast: true });
      for (const b of [bNear, bFar]) b.pings.assertCount({ from }, 0, `a's broadcast must not reach ${b.label}`);
    }),
  );

  it(
    "rooms.join: a's plugin cannot put a b socket into a room; it gets none of the room's emits, in a or in b",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('a-room');
      const caller = await aSocket(node1, 'a-caller');
      const aJoined = await aSocket(node1, 'a-joined');
      const bNear = await bSocket(node1, 'b-near');
      const bFar = await bSocket(node2, 'b-far');
      const from = caller.socket.id;

      // Within the tenant: a socket of this node is put in the room.
      hostOk(await probe(caller, 'join', { socket: aJoined.socket.id, room }), `a's join of ${aJoined.label}`);
      // Across the boundary: refused, or no effect (checked below).
      const answers = new Map();
      for (const b of [bNear, bFar]) answers.set(b, await probe(caller, 'join', { socket: b.socket.id, room }));
      const said = () => `(host answered ${show([...answers.values()])})`;

      assert.deepEqual(hostOk(await probe(caller, 'members', { room }), "a's members"), [aJoined.socket.id], `a's room holds only a's socket ${said()}`);
      for (const b of [bNear, bFar]) {
        assertNotMember(await probe(caller, 'has', { socket: b.socket.id, room }), `a's has(${b.label}) ${said()}`);
      }
      hostOk(await probe(caller, 'emit-room', { room }), `a's emit-room ${room}`);
      await aJoined.pings.waitFor({ from });

      // Nor did the join land in b's room of that name.
      const bReader = await bSocket(node2, 'b-reader');
      assert.deepEqual(hostOk(await probe(bReader, 'members', { room }), "b's members"), [], `b's room ${room} stays empty ${said()}`);
      for (const b of [bNear, bFar]) {
        assert.equal(hostOk(await probe(bReader, 'has', { socket: b.socket.id, room }), `b's has(${b.label})`), false, `${b.label} is in no room ${room} of b ${said()}`);
      }

      await pingBarrier(bSocket, [node1, node2], [bNear, bFar]);
      for (const b of [bNear, bFar]) b.pings.assertCount({ from }, 0, `a's emit-room after joining ${b.label} ${said()}`);
    }),
  );

  it(
    "rooms.members / rooms.has: a sees only a's sockets of a room name both use, and none of a room only b uses",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('shared-room');
      const bOnly = uid('b-only');
      const bNear = await bSocket(node1, 'b-near');
      const bFar = await bSocket(node2, 'b-far');
      await bNear.join(room, uid('bob'));
      await bFar.join(room, uid('bea'));
      await bNear.join(bOnly, uid('bob'));
      const aNear = await aSocket(node1, 'a-near');
      const aFar = await aSocket(node2, 'a-far');
      await aNear.join(room, aNear.sub);
      await aFar.join(room, aFar.sub);

      // a's view, asked on node1: its own sockets on both nodes, nothing of b.
      const aMembers = hostOk(await probe(aNear, 'members', { room }), "a's members of the shared room");
      assert.deepEqual(sorted(aMembers), sorted([aNear.socket.id, aFar.socket.id]), `a's members: ${show(aMembers)}`);
      assert.deepEqual(hostOk(await probe(aNear, 'members', { room: bOnly }), "a's members of b's room"), [], `a sees nobody in ${bOnly}`);
      for (const a of [aNear, aFar]) {
        assert.equal(hostOk(await probe(aNear, 'has', { socket: a.socket.id, room }), `a's has(${a.label})`), true, `a's has(${a.label}, room)`);
      }
      for (const [b, r] of [
        [bNear, room],
        [bFar, room],
        [bNear, bOnly],
      ]) {
        assertNotMember(await probe(aNear, 'has', { socket: b.socket.id, room: r }), `a's has(${b.label}, ${r})`);
        assertNotMember(await probe(aFar, 'has', { socket: b.socket.id, room: r }), `a's has(${b.label}, ${r}) asked on node2`);
      }

      // b's view is its own: the same calls work there.
      const bMembers = hostOk(await probe(bNear, 'members', { room }), "b's members of the shared room");
      assert.deepEqual(sorted(bMembers), sorted([bNear.socket.id, bFar.socket.id]), `b's members: ${show(bMembers)}`);
      assert.deepEqual(hostOk(await probe(bFar, 'members', { room: bOnly }), "b's members of its own room"), [bNear.socket.id]);
      assert.equal(hostOk(await probe(bNear, 'has', { socket: bFar.socket.id, room }), "b's has(b-far)"), true);
      assertNotMember(await probe(bNear, 'has', { socket: aNear.socket.id, room }), "b's has(a-near)");
    }),
  );

  it(
    "presence.snapshot: a room b has members in is empty for a's plugin; with a's members it lists only those",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('shared-room');
      const bob = uid('bob');
      const bea = uid('bea');
      const bNear = await bSocket(node1, 'b-near');
      const bFar = await bSocket(node2, 'b-far');
      await bNear.join(room, bob);
      await bFar.join(room, bea);
      const caller = await aSocket(node1, 'a-caller');

      assert.deepEqual(hostOk(await probe(caller, 'snapshot', { room }), "a's snapshot"), [], `a's plugin sees none of b's members in ${room}`);
      // In b the same call lists them (read on the other node).
      assert.deepEqual(sorted(hostOk(await probe(bFar, 'snapshot', { room }), "b's snapshot")), sorted([bob, bea]));

      const aNear = await aSocket(node1, 'a-near');
      const aFar = await aSocket(node2, 'a-far');
      await aNear.join(room, aNear.sub);
      await aFar.join(room, aFar.sub);
      for (const reader of [caller, aFar]) {
        const users = hostOk(await probe(reader, 'snapshot', { room }), `a's snapshot on ${reader.host.name}`);
        assert.deepEqual(sorted(users), sorted([aNear.sub, aFar.sub]), `a's snapshot lists a's members only: ${show(users)}`);
      }
      assert.deepEqual(sorted(hostOk(await probe(bNear, 'snapshot', { room }), "b's snapshot")), sorted([bob, bea]), "b's room is untouched by a's joins");
    }),
  );

  it(
    'kv: the same key in both tenants holds two values, each read the same on both nodes',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const key = uid('key');
      const a1 = await aSocket(node1, 'a1');
      const a2 = await aSocket(node2, 'a2');
      const b1 = await bSocket(node1, 'b1');
      const b2 = await bSocket(node2, 'b2');

      assert.equal(hostOk(await probe(b1, 'kv-get', { key }), "b's get before anything"), null);
      hostOk(await probe(a1, 'kv-set', { key, value: 'value-of-a' }), "a's set");
      assert.equal(hostOk(await probe(b1, 'kv-get', { key }), "b's get after a's set"), null, "b does not see a's value");
      assert.equal(hostOk(await probe(b2, 'kv-get', { key }), "b's get after a's set, node2"), null, "b does not see a's value on node2");
      assert.equal(hostOk(await probe(a2, 'kv-get', { key }), "a's get on node2"), 'value-of-a', "a's value, read on the other node");

      hostOk(await probe(b2, 'kv-set', { key, value: 'value-of-b' }), "b's set");
      for (const a of [a1, a2]) assert.equal(hostOk(await probe(a, 'kv-get', { key }), `a's get on ${a.host.name}`), 'value-of-a', "a's value is unchanged by b's set");
      for (const b of [b1, b2]) assert.equal(hostOk(await probe(b, 'kv-get', { key }), `b's get on ${b.host.name}`), 'value-of-b');

      // Two keys, one under each tenant's plugin namespace.
      const keys = await h.redis.scan(`*${key}*`);
      assert.deepEqual(
        keys,
        [`prs:a:plugin:{a:${PROBE_PLUGIN}}:${key}`, `prs:b:plugin:{b:${PROBE_PLUGIN}}:${key}`],
        `the key of each tenant under its own prefix: ${show(keys)}`,
      );
      const [rowA, rowB] = await Promise.all(keys.map((k) => h.redis.dump(k)));
      assert.ok(JSON.stringify(rowA).includes('value-of-a') && !JSON.stringify(rowA).includes('value-of-b'), show(rowA));
      assert.ok(JSON.stringify(rowB).includes('value-of-b') && !JSON.stringify(rowB).includes('value-of-a'), show(rowB));
    }),
  );

  it(
    "event-ctx.user: the token's sub from an authenticated socket's first event on; null in b before any join",
    TEST_TIMEOUT,
    h.wrap(async () => {
      // Tenant a requires a token: without one there is no socket at all.
      await h.refused(node1, { namespace: '/a', label: 'a without token' }, 'unauthorized');
      for (const node of [node1, node2]) {
        const sub = uid('who');
        const a = await aSocket(node, 'a-whoami', sub);
        const first = await probe(a, 'whoami');
        assert.deepEqual(first, { socket: a.socket.id, user: sub }, `the first event of an authenticated socket on ${node.name}`);
      }

      const b = await bSocket(node1, 'b-whoami');
      assert.deepEqual(await probe(b, 'whoami'), { socket: b.socket.id, user: null }, 'a socket of b before any join has no user');
      // Control: the same path reports a user once there is one.
      const bob = uid('bob');
      await b.join(uid('room'), bob);
      assert.deepEqual(await probe(b, 'whoami'), { socket: b.socket.id, user: bob }, 'after presence:join the user is the joined userId');
    }),
  );

  it(
    'every Redis key the two tenants wrote starts with prs:a: or prs:b:',
    TEST_TIMEOUT,
    h.wrap(async () => {
      // Live registrations and kv of both tenants, next to what earlier tests left.
      const a = await aSocket(node1, 'a-live');
      const b = await bSocket(node2, 'b-live');
      const aConn = (await a.join(uid('keys'), a.sub, { state: { n: 1 } })).self.connId;
      const bConn = (await b.join(uid('keys'), uid('bo'), { state: { n: 1 } })).self.connId;
      hostOk(await probe(a, 'kv-set', { key: 'live', value: 'a' }), "a's set");
      hostOk(await probe(b, 'kv-set', { key: 'live', value: 'b' }), "b's set");

      const keys = await h.redis.scan('*');
      assert.ok(keys.length > 0, 'the tenants wrote keys');
      assert.deepEqual(strayKeys(keys), [], `every key carries its tenant (prs:a: / prs:b:); all keys: ${show(keys)}`);
      for (const [id, connId] of [
        ['a', aConn],
        ['b', bConn],
      ]) {
        // Redis Cluster layout: a room's keys carry a hash tag of tenant and room bucket,
        // a plugin's kv keys one of tenant and plugin.
        const conn = new RegExp(`^prs:${id}:\\{${id}:b\\d+\\}:conn:${connId}$`);
        assert.ok(keys.some((k) => conn.test(k)), `tenant ${id}'s registration under prs:${id}:{${id}:b<k>}:conn:; all keys: ${show(keys)}`);
        assert.ok(keys.includes(`prs:${id}:plugin:{${id}:${PROBE_PLUGIN}}:live`), `tenant ${id}'s kv under prs:${id}:plugin:{${id}:${PROBE_PLUGIN}}:; all keys: ${show(keys)}`);
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// 2. per-call budgets and kv quotas, per tenant
// ---------------------------------------------------------------------------

describe('isolation: per-call budgets and kv quotas set per tenant in [tenant.plugins]', () => {
  const h = new Harness();
  let node1;
  let node2;
  /** Tenant a's plugin limits; tenant b keeps the defaults except its own kv_max_keys. */
  const LIMITS_A = { emits_per_call: 3, reply_max_bytes: 1000, log_bytes_per_call: 100, kv_max_keys: 5 };
  const LIMITS_B = { kv_max_keys: 7 };

  before(async () => {
    assertGuests([PROBE_GUEST]);
    const file = join(scratch('rtm-budgets-'), 'tenants.toml');
    writeTenantsFile(file, {
      tenants: [
        { id: 'a', plugins_dir: probePlugins(), plugins: LIMITS_A },
        { id: 'b', plugins_dir: probePlugins(), plugins: LIMITS_B },
      ],
    });
    await h.startRedis();
    // The log test reads the plugin's info lines and the host's warning.
    const rustLog = process.env.RUST_LOG ? `${process.env.RUST_LOG},rtm::plugin=info` : 'info';
    const env = { ...SLOW_ENV, TENANTS_FILE: file, PLUGIN_CACHE_DIR: CACHE_DIR, RUST_LOG: rustLog };
    node1 = await h.startHost('node1', { redis: true, env: { ...env, NODE_ID: 'node1' } });
    node2 = await h.startHost('node2', { redis: true, env: { ...env, NODE_ID: 'node2' } });
    for (const node of [node1, node2]) {
      for (const id of ['a', 'b']) await waitProbeLoaded(node, id);
      // The limits the tests count on are the ones the host applies.
      const a = await tenantView(node, 'a');
      for (const [k, v] of Object.entries(LIMITS_A)) assert.equal(a?.pluginLimits?.[k], v, `${node.name} tenant a pluginLimits.${k}: ${show(a)}`);
      const b = await tenantView(node, 'b');
      assert.equal(b?.pluginLimits?.kv_max_keys, LIMITS_B.kv_max_keys, `${node.name} tenant b pluginLimits: ${show(b)}`);
      for (const k of ['emits_per_call', 'reply_max_bytes', 'log_bytes_per_call']) {
        assert.ok(b?.pluginLimits?.[k] > LIMITS_A[k] * 3, `${node.name} tenant b keeps a larger default ${k}: ${show(b)}`);
      }
    }
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /** A connected socket of tenant `id` on `node`, logging its pings. */
  async function socketOf(id, node, label = id) {
    const c = await h.connect(node, { namespace: `/${id}`, label });
    c.pings = listen(c, 'probe:ping');
    return c;
  }
  const aSocket = (node, label = 'a') => socketOf('a', node, label);
  const bSocket = (node, label = 'b') => socketOf('b', node, label);

  /** What `node` logged since stderr offset `from`. */
  const logSince = (node, from) => node.stderr.slice(from);

  it(
    'emits_per_call = 3: a call asking for 10 emits sends 3, the rest fail quota_exceeded, 3 pings arrive; the next call has its budget again',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await aSocket(node1, 'a-emitter');
      const from = c.socket.id;

      assert.deepEqual(await probe(c, 'emits', { n: 10 }), { sent: 3, refused: 'quota_exceeded' }, 'the first call');
      await pingBarrier(aSocket, [node1], [c]);
      c.pings.assertCount({ from }, 3, 'pings of the call over budget');

      assert.deepEqual(await probe(c, 'emits', { n: 3 }), { sent: 3, refused: null }, 'the next call has the whole budget');
      await pingBarrier(aSocket, [node1], [c]);
      c.pings.assertCount({ from }, 6, 'pings of both calls');

      // The budget is tenant a's: b has the default.
      const cb = await bSocket(node1, 'b-emitter');
      assert.deepEqual(await probe(cb, 'emits', { n: 10 }), { sent: 10, refused: null }, "b's call of 10 emits");
      await pingBarrier(bSocket, [node1], [cb]);
      cb.pings.assertCount({ from: cb.socket.id }, 10, "b's pings");
    }),
  );

  it(
    'reply_max_bytes = 1000: a 5000-byte reply is plugin_failed, a 100-byte one is served',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await aSocket(node1, 'a-replier');
      await c.fails('probe:reply', { bytes: 5000 }, 'plugin_failed');
      assert.equal(c.connected, true, 'the socket stays');
      const small = await probe(c, 'reply', { bytes: 100 });
      assert.equal(small?.data, 'y'.repeat(100), `the 100-byte reply: ${show(small)}`);
      // On the other node too.
      const far = await aSocket(node2, 'a-replier-far');
      await far.fails('probe:reply', { bytes: 5000 }, 'plugin_failed');

      // The limit is tenant a's: b replies 5000 bytes.
      const cb = await bSocket(node1, 'b-replier');
      const big = await probe(cb, 'reply', { bytes: 5000 });
      assert.equal(big?.data, 'y'.repeat(5000), `b's 5000-byte reply (length ${big?.data?.length})`);
    }),
  );

  it(
    'log_bytes_per_call = 100: a 5000-byte log line is cut, the host warns naming log_bytes_per_call, the call is served',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await aSocket(node1, 'a-logger');
      const from = node1.stderr.length;
      const ack = await c.ok('probe:log', { bytes: 5000 });
      assert.equal(ack.ok, true, show(ack));

      const warning = await waitUntil(
        () => logSince(node1, from).split('\n').find((line) => line.includes('log_bytes_per_call')),
        { timeoutMs: 15_000, what: () => `node1 to log a warning naming log_bytes_per_call; logged:\n${logSince(node1, from).slice(-3000)}` },
      );
      assert.match(warning, /warn/i, `the note is a warning: ${warning}`);
      // The warning is written after the call's own output: the whole call has been logged.
      const longest = Math.max(0, ...(logSince(node1, from).match(/x+/g) ?? []).map((run) => run.length));
      assert.ok(longest <= LIMITS_A.log_bytes_per_call, `no more than ${LIMITS_A.log_bytes_per_call} bytes of the line are logged, found a run of ${longest}`);

      // The budget is tenant a's: b's 500-byte line is logged whole (and shows the line lands here).
      const cb = await bSocket(node1, 'b-logger');
      const fromB = node1.stderr.length;
      await cb.ok('probe:log', { bytes: 500 });
      await waitUntil(() => /(^|[^x])x{500}([^x]|$)/m.test(logSince(node1, fromB)), {
        timeoutMs: 15_000,
        what: () => `node1 to log b's 500-byte line; logged:\n${logSince(node1, fromB).slice(-3000)}`,
      });
    }),
  );

  it(
    'kv_max_keys = 5: of k0..k9 set in turn, k0..k4 are stored and the rest fail quota_exceeded',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await aSocket(node1, 'a-kv');
      const results = [];
      for (let i = 0; i < 10; i += 1) results.push(await probe(c, 'kv-set', { key: `k${i}`, value: `v${i}` }));
      for (const [i, r] of results.entries()) {
        if (i < LIMITS_A.kv_max_keys) hostOk(r, `kv-set k${i}`);
        else hostRefused(r, 'quota_exceeded', `kv-set k${i}`);
      }
      for (const reader of [c, await aSocket(node2, 'a-kv-reader')]) {
        for (let i = 0; i < 10; i += 1) {
          const value = hostOk(await probe(reader, 'kv-get', { key: `k${i}` }), `kv-get k${i} on ${reader.host.name}`);
          assert.equal(value, i < LIMITS_A.kv_max_keys ? `v${i}` : null, `k${i} on ${reader.host.name}`);
        }
      }
    }),
  );

  it(
    'kv_max_keys = 7, 40 sockets on two nodes setting 40 keys at once: exactly 7 are stored cluster-wide, 33 fail quota_exceeded',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const N = 40;
      const sockets = await Promise.all(Array.from({ length: N }, (_, i) => bSocket(i % 2 === 0 ? node1 : node2, `b-kv${i}`)));
      const keyOf = (i) => `c${i}`;
      const valueOf = (i) => `cv${i}`;
      const results = await Promise.all(sockets.map((s, i) => probe(s, 'kv-set', { key: keyOf(i), value: valueOf(i) }, 60_000)));

      const stored = [];
      for (const [i, r] of results.entries()) {
        if (r?.ok === true) stored.push(i);
        else hostRefused(r, 'quota_exceeded', `kv-set ${keyOf(i)} from ${sockets[i].label}`);
      }
      assert.equal(stored.length, LIMITS_B.kv_max_keys, `exactly ${LIMITS_B.kv_max_keys} sets acked ok cluster-wide, got ${stored.length}: ${show(results)}`);

      for (const node of [node1, node2]) {
        const reader = await bSocket(node, 'b-kv-reader');
        const found = [];
        for (let i = 0; i < N; i += 1) {
          const value = hostOk(await probe(reader, 'kv-get', { key: keyOf(i) }), `kv-get ${keyOf(i)} on ${node.name}`);
          if (value !== null) {
            assert.equal(value, valueOf(i), `${keyOf(i)} on ${node.name}`);
            found.push(i);
          }
        }
        assert.deepEqual(found, stored, `${node.name}: the stored keys are exactly the ones acked ok`);
      }
    }),
  );

  it(
    'every Redis key of the budgets run starts with prs:a: or prs:b:',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const a = await aSocket(node1, 'a-live');
      const b = await bSocket(node2, 'b-live');
      await a.join(uid('keys'), uid('al'));
      await b.join(uid('keys'), uid('bo'));
      const keys = await h.redis.scan('*');
      assert.ok(keys.some((k) => k.startsWith(`prs:a:plugin:{a:${PROBE_PLUGIN}}:`)), `a's kv keys are there: ${show(keys)}`);
      assert.ok(keys.some((k) => k.startsWith(`prs:b:plugin:{b:${PROBE_PLUGIN}}:`)), `b's kv keys are there: ${show(keys)}`);
      assert.deepEqual(strayKeys(keys), [], `every key carries its tenant (prs:a: / prs:b:); all keys: ${show(keys)}`);
    }),
  );
});

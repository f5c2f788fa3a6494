/**
 * The Server API end-to-end (PROTOCOL.md "Server API", and the details the
 * team pinned for issue 12: statuses, codes, bodies), driven with Node's own
 * `fetch` against spawned `rtm-host` processes, and observed through official
 * socket.io-client sockets.
 *
 * What is pinned:
 * 1. two tenants on two nodes sharing one Redis: `a` (HS256 auth, real JWTs)
 *    and `b` (no auth), each with its own `api_keys`, plus `c` without keys:
 *    - `publish` reaches every socket of the room on both nodes exactly once,
 *      whichever node takes the call; `data` defaults to null; no socket of
 *      another room of the tenant, in no room, or in tenant b's room of the
 *      same name gets it; `exceptConnId` leaves out the socket holding that
 *      registration, on the node of the call and on the other one;
 *    - `broadcast` reaches every socket of a on both nodes and none of b;
 *    - `batch`: one result per item in order, the good items delivered, the
 *      refused ones (reserved event names, an unknown method, a bad room) not
 *      and not stopping the others; 100 items are served, 101 (and 0) are
 *      `400 invalid_payload` with nothing emitted;
 *    - `rooms/{room}/presence` equals the `presence:snapshot` ack (same member
 *      objects, on both nodes); `rooms/{room}/stats` counts registrations and
 *      distinct users (one user with two tabs on two nodes plus another user:
 *      members 3, users 2) and follows leaves;
 *    - `disconnect { userId }` closes that user's sockets on both nodes (the
 *      authenticated `sub` in a, even a socket that never joined; the joined
 *      userId in b) and their members leave; other users, and the same userId
 *      in the other tenant, stay; `disconnect { connId }` closes only the
 *      socket holding that registration (all its registrations leave);
 *    - every refusal with its status and code and nothing emitted: 401
 *      `unauthorized` (no header, wrong key, the other tenant's key, a tenant
 *      without keys), 400 `invalid_payload` (bad JSON, not an object, bad
 *      fields, room ids outside the charset, in the body and in the path),
 *      413 `payload_too_large` (one byte over 1 MiB; exactly 1 MiB is
 *      served), 403 `forbidden` (every reserved event name), 404
 *      `unknown_tenant` (before the key is looked at);
 *    - `GET /api/v1/openapi.json` (no key) is an OpenAPI 3.1 document listing
 *      every path above;
 *    - `/metrics` counts the calls as `rtm_requests_total{tenant, op="api:publish", code}`,
 *      and no API key ever shows in `/admin/tenants`, `/metrics` or the logs;
 * 2. the single-tenant host (no TENANTS_FILE): with `API_KEY` the `default`
 *    tenant's API serves sockets on `/`; without it every call is 401;
 * 3. Redis down: 503 `unavailable` (a batch's item), and served again once
 *    Redis is back.
 *
 * "Nothing arrived" and "exactly once" are counted after a barrier along the
 * same path: a marker published (or broadcast) through the API of the
 * observers' own tenant, via each node in turn, that every observer waits
 * for. An API call answers after its emits are handed to the node's sockets
 * and to the adapter; one node emits in order and its publications reach the
 * other nodes in order, so whatever a checked call could have delivered has
 * arrived before the marker. Where the API is off, the presence barrier
 * (Harness#barrier) stands in for it.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  BARRIER_TIMEOUT_MS,
  Harness,
  apiRequest,
  assertError,
  getText,
  listen,
  metricSum,
  nowSeconds,
  show,
  signJwt,
  uid,
  waitUntil,
  writeTenantsFile,
  scratchSpace,
  SLOW_ENV,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 180_000 };

/** How long an expected delivery or disconnect may take on a loaded machine (bounded, never asserted). */
const DELIVERY_TIMEOUT_MS = 20_000;

/** The application event the tests publish (and the barrier markers use). */
const EVENT = 'news';

/** The body limit of the Server API: 1 MiB. */
const MAX_BODY_BYTES = 1_048_576;

/** Every event name the API must refuse with 403 forbidden (host prefixes and Socket.IO's own). */
const RESERVED_EVENTS = [
  'presence:event',
  'presence:join',
  'rtm:x',
  'auth:refresh',
  'auth:x',
  'connect',
  'connect_error',
  'disconnect',
  'disconnecting',
  'newListener',
  'removeListener',
];

const { scratch } = scratchSpace();

/** A fresh random API key. */
const apiKey = (name) => `${name}-${randomBytes(24).toString('base64url')}`;

/** Sorted copy, for order-free comparisons. */
const sorted = (values) => [...values].sort();

/** A snapshot ordered by connId, for comparing two reads of one room. */
const byConn = (snapshot) => [...snapshot].sort((x, y) => (x.connId < y.connId ? -1 : x.connId > y.connId ? 1 : 0));

/** A barrier marker (or null data): anything the checked calls sent is neither. */
const isMarker = (e) => e !== null && typeof e === 'object' && typeof e.marker === 'string';

/**
 * Starts logging what `client` receives: `news` (its {@link EVENT} log) and
 * `received`, every event packet of any name (`onAny`), so a forged host or
 * Socket.IO event (`presence:event`, `disconnect`, ...) would show too.
 */
function watch(client) {
  client.news = listen(client, EVENT);
  client.received = [];
  client.socket.onAny((event, ...args) => client.received.push({ event, args }));
  return client;
}

/** The packets of `client` whose event name or arguments mention `needle`. */
const mentions = (client, needle) => client.received.filter((p) => JSON.stringify(p).includes(needle));

/** An answer `200 { ok: true, ... }`; returns the body. */
function expectOk(res, context) {
  assert.equal(res.status, 200, `${context}: expected HTTP 200, got ${res.status}: ${res.text.slice(0, 400)}`);
  assert.equal(res.body?.ok, true, `${context}: expected { ok: true }, got ${res.text.slice(0, 400)}`);
  return res.body;
}

/** An answer `<status> { ok: false, error: { code, message } }`. */
function expectRefused(res, status, code, context) {
  assert.equal(res.status, status, `${context}: expected HTTP ${status} ${code}, got ${res.status}: ${res.text.slice(0, 400)}`);
  assertError(res.body, code, `${context} (HTTP ${res.status})`);
  return res.body;
}

/** `/api/v1/<tenant>/<rest>`. */
const apiPath = (tenant, rest) => `/api/v1/${tenant}/${rest}`;

/** `POST /api/v1/<tenant>/<rest>` with `body` and tenant key `key`. */
const post = (node, tenant, rest, body, key) => apiRequest(node, apiPath(tenant, rest), { key, body });

/** `GET /api/v1/<tenant>/<rest>` with key `key`. */
const get = (node, tenant, rest, key) => apiRequest(node, apiPath(tenant, rest), { method: 'GET', key });

/**
 * "Nothing more arrives" barrier along the Server API path: for each node in
 * turn, a marker is published to `room` of `tenant` (or, without a room,
 * broadcast to the tenant) through that node's API with `key`, and every
 * observer (watched, in that room or tenant) waits for it.
 */
async function apiBarrier(nodes, { tenant, key, room, observers }) {
  assert.ok(nodes.length > 0 && observers.length > 0, 'apiBarrier: at least one node and one observer');
  for (const node of nodes) {
    const marker = uid('marker');
    const res =
      room === undefined
        ? await post(node, tenant, 'broadcast', { event: EVENT, data: { marker } }, key)
        : await post(node, tenant, 'publish', { room, event: EVENT, data: { marker } }, key);
    expectOk(res, `barrier marker ${room === undefined ? 'broadcast' : `to ${room}`} in tenant ${tenant} via ${node.name}`);
    await Promise.all(observers.map((o) => o.news.waitFor({ marker }, BARRIER_TIMEOUT_MS)));
  }
}

/** Asserts that `client` is still connected, was never disconnected, and still serves a request. */
async function assertStays(client, context) {
  assert.deepEqual(client.disconnectReasons, [], `${client.label} must not have been disconnected (${context})`);
  await client.assertStillServing(`(${context})`);
}

/**
 * A JSON publish body of exactly `bytes` bytes: `{ room, event, data: { tag, pad } }`
 * with `pad` filling it up.
 */
function publishBodyOfSize(bytes, room, tag) {
  const base = JSON.stringify({ room, event: EVENT, data: { tag, pad: '' } });
  const text = JSON.stringify({ room, event: EVENT, data: { tag, pad: 'x'.repeat(bytes - Buffer.byteLength(base)) } });
  assert.equal(Buffer.byteLength(text), bytes, 'publishBodyOfSize: body size');
  return text;
}

// ---------------------------------------------------------------------------
// 1. tenants a and b on two nodes sharing one Redis
// ---------------------------------------------------------------------------

describe('api: tenants a (HS256 auth) and b, each with its api_keys, on two nodes sharing one Redis', () => {
  const h = new Harness();
  let node1;
  let node2;
  const SECRET_A = randomBytes(32).toString('hex');
  const KEY_A = apiKey('key-a');
  const KEY_A2 = apiKey('key-a2');
  const KEY_B = apiKey('key-b');
  const KEYS = { a: KEY_A, b: KEY_B };

  before(async () => {
    const file = join(scratch('rtm-api-'), 'tenants.toml');
    writeTenantsFile(file, {
      tenants: [
        // a's first key comes from the environment, its second is written in the file.
        { id: 'a', api_keys: ['env:RTM_T_API_KEY_A', KEY_A2], auth: { hs256_secret: SECRET_A } },
        { id: 'b', api_keys: [KEY_B] },
        // No keys: every call is refused.
        { id: 'c' },
      ],
    });
    await h.startRedis();
    const env = { ...SLOW_ENV, TENANTS_FILE: file, RTM_T_API_KEY_A: KEY_A };
    node1 = await h.startHost('node1', { redis: true, env: { ...env, NODE_ID: 'node1' } });
    node2 = await h.startHost('node2', { redis: true, env: { ...env, NODE_ID: 'node2' } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  /** An HS256 token of tenant a for `sub`, valid for an hour, with `info` when given. */
  const tokenA = (sub, info) =>
    signJwt({ sub, iat: nowSeconds(), exp: nowSeconds() + 3600, ...(info === undefined ? {} : { info }) }, { key: SECRET_A });

  /** A connected, authenticated, watched socket of tenant a on `node`; `c.sub` is its user. */
  async function aSocket(node, label = 'a', { sub = uid('ann'), info } = {}) {
    const c = await h.connect(node, { namespace: '/a', auth: { token: tokenA(sub, info) }, label });
    c.sub = sub;
    return watch(c);
  }

  /** A connected, watched socket of tenant b (no auth) on `node`. */
  async function bSocket(node, label = 'b') {
    return watch(await h.connect(node, { namespace: '/b', label }));
  }

  /** Joins `room` (as `userId`, default the socket's sub) and returns the registration's connId. */
  async function joinAs(client, room, userId = client.sub, extra = {}) {
    const ack = await client.join(room, userId, extra);
    return ack.self.connId;
  }

  /** Publishes through `node` as tenant `tenant` and expects `{ ok: true }`. */
  async function publishOk(node, tenant, body, key = KEYS[tenant]) {
    return expectOk(await post(node, tenant, 'publish', body, key), `publish ${show(body)} in ${tenant} via ${node.name}`);
  }

  /** `rooms/{room}/stats` of `tenant` through `node`: `{ members, users }`. */
  async function stats(node, tenant, room, key = KEYS[tenant]) {
    const body = expectOk(await get(node, tenant, `rooms/${room}/stats`, key), `stats of ${room} in ${tenant} via ${node.name}`);
    return { members: body.members, users: body.users };
  }

  /** `rooms/{room}/presence` of `tenant` through `node`: the snapshot array. */
  async function presence(node, tenant, room, key = KEYS[tenant]) {
    const body = expectOk(await get(node, tenant, `rooms/${room}/presence`, key), `presence of ${room} in ${tenant} via ${node.name}`);
    assert.ok(Array.isArray(body.snapshot), `presence of ${room}: snapshot must be an array, got ${show(body)}`);
    return body.snapshot;
  }

  it(
    'publish reaches every socket of the room on both nodes exactly once, from either node; no socket of another room, of no room, or of b; exceptConnId leaves out its socket',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const otherRoom = uid('other-room');
      const inRoom = [
        await aSocket(node1, 'a-in-room-1'),
        await aSocket(node1, 'a-in-room-2'),
        await aSocket(node2, 'a-in-room-3'),
        await aSocket(node2, 'a-in-room-4'),
      ];
      for (const c of inRoom) c.connId = await joinAs(c, room);
      const inOther = [await aSocket(node1, 'a-other-room-1'), await aSocket(node2, 'a-other-room-2')];
      for (const c of inOther) await joinAs(c, otherRoom);
      const inNoRoom = [await aSocket(node1, 'a-no-room-1'), await aSocket(node2, 'a-no-room-2')];
      const bSame = [await bSocket(node1, 'b-same-room-1'), await bSocket(node2, 'b-same-room-2')];
      for (const c of bSame) await joinAs(c, room, uid('bo'));

      const via1 = uid('via-node1');
      const via2 = uid('via-node2');
      await publishOk(node1, 'a', { room, event: EVENT, data: { tag: via1, n: 1, nested: { list: [1, 'two', null] } } });
      await publishOk(node2, 'a', { room, event: EVENT, data: { tag: via2 } });
      for (const c of inRoom) {
        const got = await c.news.waitFor({ tag: via1 }, DELIVERY_TIMEOUT_MS);
        assert.deepEqual(got, { tag: via1, n: 1, nested: { list: [1, 'two', null] } }, `${c.label}: the data as published`);
        await c.news.waitFor({ tag: via2 }, DELIVERY_TIMEOUT_MS);
      }

      // `data` defaults to null.
      await publishOk(node1, 'a', { room, event: EVENT });
      for (const c of inRoom) await c.news.waitFor((e) => e === null, DELIVERY_TIMEOUT_MS);

      // exceptConnId: the socket holding that registration, on the node of the call and on the other.
      const exceptNear = uid('except-near');
      const exceptFar = uid('except-far');
      const [near, , far] = inRoom;
      await publishOk(node1, 'a', { room, event: EVENT, data: { tag: exceptNear }, exceptConnId: near.connId });
      await publishOk(node1, 'a', { room, event: EVENT, data: { tag: exceptFar }, exceptConnId: far.connId });
      for (const c of inRoom) {
        if (c !== near) await c.news.waitFor({ tag: exceptNear }, DELIVERY_TIMEOUT_MS);
        if (c !== far) await c.news.waitFor({ tag: exceptFar }, DELIVERY_TIMEOUT_MS);
      }

      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, room, observers: inRoom });
      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, room: otherRoom, observers: inOther });
      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, observers: inNoRoom });
      await apiBarrier([node1, node2], { tenant: 'b', key: KEY_B, room, observers: bSame });

      for (const c of inRoom) {
        c.news.assertCount({ tag: via1 }, 1, 'the publish via node1, exactly once');
        c.news.assertCount({ tag: via2 }, 1, 'the publish via node2, exactly once');
        c.news.assertCount((e) => e === null, 1, 'the publish without data, exactly once');
        c.news.assertCount({ tag: exceptNear }, c === near ? 0 : 1, `exceptConnId ${near.connId} (${near.label})`);
        c.news.assertCount({ tag: exceptFar }, c === far ? 0 : 1, `exceptConnId ${far.connId} (${far.label})`);
        c.news.assertCount((e) => !isMarker(e), c === near || c === far ? 4 : 5, 'nothing else');
      }
      for (const c of [...inOther, ...inNoRoom, ...bSame]) {
        c.news.assertCount((e) => !isMarker(e), 0, `no publish to ${room} of tenant a reaches ${c.label}`);
      }
    }),
  );

  it(
    'broadcast reaches every socket of tenant a on both nodes exactly once, from either node, and none of tenant b',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const aSockets = [
        await aSocket(node1, 'a-joined-1'),
        await aSocket(node1, 'a-idle-1'),
        await aSocket(node2, 'a-joined-2'),
        await aSocket(node2, 'a-idle-2'),
      ];
      await joinAs(aSockets[0], room);
      await joinAs(aSockets[2], uid('elsewhere'));
      const bSockets = [await bSocket(node1, 'b-joined-1'), await bSocket(node2, 'b-idle-2')];
      await joinAs(bSockets[0], room, uid('bo'));

      const via1 = uid('bc-node1');
      const via2 = uid('bc-node2');
      expectOk(await post(node1, 'a', 'broadcast', { event: EVENT, data: { tag: via1 } }, KEY_A), 'broadcast via node1');
      expectOk(await post(node2, 'a', 'broadcast', { event: EVENT, data: { tag: via2 } }, KEY_A2), "broadcast via node2 with a's second key");
      for (const c of aSockets) {
        await c.news.waitFor({ tag: via1 }, DELIVERY_TIMEOUT_MS);
        await c.news.waitFor({ tag: via2 }, DELIVERY_TIMEOUT_MS);
      }

      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, observers: aSockets });
      await apiBarrier([node1, node2], { tenant: 'b', key: KEY_B, observers: bSockets });
      for (const c of aSockets) {
        c.news.assertCount({ tag: via1 }, 1, 'broadcast via node1, exactly once');
        c.news.assertCount({ tag: via2 }, 1, 'broadcast via node2, exactly once');
        c.news.assertCount((e) => !isMarker(e), 2, 'nothing else');
      }
      for (const c of bSockets) c.news.assertCount((e) => !isMarker(e), 0, `a's broadcasts never reach ${c.label}`);
    }),
  );

  it(
    'batch: one result per item in order; the good items are delivered, the refused ones (reserved names, unknown method, bad room) are not and do not stop the others',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const inRoom = [await aSocket(node1, 'a-in-room-1'), await aSocket(node2, 'a-in-room-2')];
      for (const c of inRoom) c.connId = await joinAs(c, room);
      const elsewhere = await aSocket(node2, 'a-no-room');
      const bSame = await bSocket(node1, 'b-same-room');
      await joinAs(bSame, room, uid('bo'));

      const t = {
        first: uid('first'),
        broadcast: uid('broadcast'),
        forgedPresence: uid('forged-presence'),
        unknownMethod: uid('unknown-method'),
        forgedRtm: uid('forged-rtm'),
        badRoom: uid('bad-room'),
        forgedDisconnect: uid('forged-disconnect'),
        last: uid('last'),
      };
      const items = [
        { method: 'publish', params: { room, event: EVENT, data: { tag: t.first } } },
        { method: 'broadcast', params: { event: EVENT, data: { tag: t.broadcast } } },
        {
          method: 'publish',
          params: { room, event: 'presence:event', data: { type: 'leave', roomId: room, userId: inRoom[0].sub, connId: inRoom[0].connId, tag: t.forgedPresence } },
        },
        { method: 'kick', params: { room, event: EVENT, data: { tag: t.unknownMethod } } },
        { method: 'broadcast', params: { event: 'rtm:x', data: { tag: t.forgedRtm } } },
        { method: 'publish', params: { room: 'a b', event: EVENT, data: { tag: t.badRoom } } },
        { method: 'broadcast', params: { event: 'disconnect', data: { tag: t.forgedDisconnect } } },
        { method: 'publish', params: { room, event: EVENT, data: { tag: t.last } } },
      ];
      const expected = [null, null, 'forbidden', 'invalid_payload', 'forbidden', 'invalid_payload', 'forbidden', null];
      const body = expectOk(await post(node1, 'a', 'batch', { items }, KEY_A), 'batch of mixed items');
      assert.ok(Array.isArray(body.results), `batch answers results: ${show(body)}`);
      assert.equal(body.results.length, items.length, `one result per item: ${show(body.results)}`);
      for (const [i, code] of expected.entries()) {
        const r = body.results[i];
        const context = `batch result ${i} (${items[i].method} ${show(items[i].params.event)})`;
        if (code === null) {
          assert.equal(r?.ok, true, `${context}: expected { ok: true }, got ${show(r)}`);
          assert.equal(r.error, undefined, `${context}: an ok result carries no error: ${show(r)}`);
        } else {
          assertError(r, code, context);
        }
      }

      for (const c of inRoom) {
        for (const tag of [t.first, t.broadcast, t.last]) await c.news.waitFor({ tag }, DELIVERY_TIMEOUT_MS);
      }
      await elsewhere.news.waitFor({ tag: t.broadcast }, DELIVERY_TIMEOUT_MS);

      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, room, observers: inRoom });
      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, observers: [...inRoom, elsewhere] });
      await apiBarrier([node1, node2], { tenant: 'b', key: KEY_B, room, observers: [bSame] });
      for (const c of inRoom) {
        for (const tag of [t.first, t.broadcast, t.last]) c.news.assertCount({ tag }, 1, `batch item ${tag}, exactly once`);
        c.news.assertCount((e) => !isMarker(e), 3, 'only the good items');
      }
      elsewhere.news.assertCount({ tag: t.broadcast }, 1, 'the batch broadcast, exactly once');
      elsewhere.news.assertCount((e) => !isMarker(e), 1, 'only the broadcast reaches a socket in no room');
      bSame.news.assertCount((e) => !isMarker(e), 0, "nothing of a's batch reaches b");
      for (const c of [...inRoom, elsewhere, bSame]) {
        for (const tag of [t.forgedPresence, t.unknownMethod, t.forgedRtm, t.badRoom, t.forgedDisconnect]) {
          assert.deepEqual(mentions(c, tag), [], `${c.label}: the refused batch item ${tag} emitted nothing`);
        }
        await assertStays(c, 'a forged disconnect event in a batch');
      }
    }),
  );

  it(
    'batch of 100 items is served (100 results, 100 deliveries); 101 items and 0 items are 400 invalid_payload and emit nothing',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const inRoom = [await aSocket(node1, 'a-in-room-1'), await aSocket(node2, 'a-in-room-2')];
      for (const c of inRoom) await joinAs(c, room);

      const tooMany = uid('too-many');
      const items101 = Array.from({ length: 101 }, (_, i) => ({ method: 'publish', params: { room, event: EVENT, data: { tag: tooMany, i } } }));
      expectRefused(await post(node1, 'a', 'batch', { items: items101 }, KEY_A), 400, 'invalid_payload', 'batch of 101 items');
      expectRefused(await post(node1, 'a', 'batch', { items: [] }, KEY_A), 400, 'invalid_payload', 'batch of 0 items');
      expectRefused(await post(node1, 'a', 'batch', { items: { method: 'publish' } }, KEY_A), 400, 'invalid_payload', 'batch whose items is not an array');
      expectRefused(await post(node1, 'a', 'batch', {}, KEY_A), 400, 'invalid_payload', 'batch without items');

      const hundred = uid('hundred');
      const items100 = Array.from({ length: 100 }, (_, i) => ({ method: 'publish', params: { room, event: EVENT, data: { tag: hundred, i } } }));
      const body = expectOk(await post(node2, 'a', 'batch', { items: items100 }, KEY_A), 'batch of 100 items');
      assert.equal(body.results?.length, 100, `100 results: ${show(body)}`);
      for (const [i, r] of body.results.entries()) assert.equal(r?.ok, true, `result ${i}: ${show(r)}`);
      for (const c of inRoom) await c.news.waitForCount({ tag: hundred }, 100, DELIVERY_TIMEOUT_MS);

      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, room, observers: inRoom });
      for (const c of inRoom) {
        const got = c.news.assertCount({ tag: hundred }, 100, 'each of the 100 items exactly once');
        assert.deepEqual(sorted(got.map((e) => String(e.i).padStart(3, '0'))), Array.from({ length: 100 }, (_, i) => String(i).padStart(3, '0')));
        assert.deepEqual(mentions(c, tooMany), [], `${c.label}: nothing of the refused 101-item batch`);
      }
    }),
  );

  it(
    "rooms/{room}/presence equals the presence:snapshot ack on both nodes; stats counts registrations and distinct users (two tabs on two nodes + another user: 3 and 2) and follows leaves; b's room of that name is its own",
    TEST_TIMEOUT,
    h.wrap(async () => {
      // Every character class of the id charset, in the path unencoded.
      const room = `${uid('lobby')}:floor_2@eu.west`;
      const alice = uid('alice');
      const info = { name: 'Alice', color: 'teal' };
      const tab1 = await aSocket(node1, 'alice-tab1', { sub: alice, info });
      const tab2 = await aSocket(node2, 'alice-tab2', { sub: alice, info });
      const bob = await aSocket(node1, 'bob');
      const tab1Id = await joinAs(tab1, room, alice, { state: { tab: 1 } });
      const tab2Id = await joinAs(tab2, room, alice, { state: { tab: 2, nested: { deep: true } } });
      const bobId = await joinAs(bob, room, bob.sub);
      // Tenant b has a room of the same name, with a member of the same userId.
      const bAlice = await bSocket(node2, 'b-alice');
      const bAliceId = await joinAs(bAlice, room, alice);

      const fromNode1 = await bob.snapshot(room);
      const fromNode2 = await tab2.snapshot(room);
      assert.deepEqual(sorted(fromNode1.map((m) => m.connId)), sorted([tab1Id, tab2Id, bobId]), `the room's members: ${show(fromNode1)}`);
      assert.deepEqual(byConn(fromNode2), byConn(fromNode1), 'the socket snapshots of both nodes agree');
      assert.deepEqual(fromNode1.find((m) => m.connId === tab1Id)?.info, info, `the member carries the token's info: ${show(fromNode1)}`);
      for (const node of [node1, node2]) {
        assert.deepEqual(byConn(await presence(node, 'a', room)), byConn(fromNode1), `rooms/${room}/presence via ${node.name} equals the presence:snapshot ack`);
        assert.deepEqual(await stats(node, 'a', room), { members: 3, users: 2 }, `stats via ${node.name}`);
      }

      // Tenant b's room of that name: its own member only, read with b's key.
      const bSnapshot = await presence(node1, 'b', room);
      assert.deepEqual(bSnapshot.map((m) => m.connId), [bAliceId], `b's room: ${show(bSnapshot)}`);
      assert.deepEqual(byConn(bSnapshot), byConn(await bAlice.snapshot(room)), "b's presence equals b's presence:snapshot ack");
      assert.deepEqual(await stats(node2, 'b', room), { members: 1, users: 1 }, "b's stats");

      // A room nobody is in.
      const empty = uid('empty');
      assert.deepEqual(await presence(node2, 'a', empty), [], 'an empty room');
      assert.deepEqual(await stats(node1, 'a', empty), { members: 0, users: 0 }, "an empty room's stats");

      // One of alice's tabs leaves: she is still a user of the room.
      await tab2.ok('presence:leave', { roomId: room });
      assert.deepEqual(await stats(node1, 'a', room), { members: 2, users: 2 }, 'after one tab left');
      assert.deepEqual(byConn(await presence(node2, 'a', room)), byConn(await bob.snapshot(room)), 'presence after one tab left');
      await tab1.ok('presence:leave', { roomId: room });
      assert.deepEqual(await stats(node2, 'a', room), { members: 1, users: 1 }, 'after both tabs left');
      assert.deepEqual((await presence(node1, 'a', room)).map((m) => m.connId), [bobId], 'only bob is left');
      assert.deepEqual(await stats(node1, 'b', room), { members: 1, users: 1 }, "b's room is untouched by a's leaves");
    }),
  );

  it(
    "disconnect { userId }: that user's sockets on both nodes close (joined or not) and their members leave; other users and the same userId in b stay",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const side = uid('side-room');
      const alice = uid('alice');
      const tab1 = await aSocket(node1, 'alice-tab1', { sub: alice });
      const tab2 = await aSocket(node2, 'alice-tab2', { sub: alice });
      const unjoined = await aSocket(node2, 'alice-tab3-unjoined', { sub: alice });
      const tab1Id = await joinAs(tab1, room);
      const tab2Id = await joinAs(tab2, room);
      const tab2SideId = await joinAs(tab2, side);
      const bob1 = await aSocket(node1, 'bob-1', { sub: uid('bob') });
      const bob2 = await aSocket(node2, 'bob-2', { sub: bob1.sub });
      const carol = await aSocket(node2, 'carol');
      const bob1Id = await joinAs(bob1, room);
      const bob2Id = await joinAs(bob2, room);
      const carolId = await joinAs(carol, room);
      // The same userId in tenant b (no auth: it joined as alice).
      const bAlice = await bSocket(node1, 'b-alice');
      await joinAs(bAlice, room, alice);
      assert.deepEqual(await stats(node1, 'a', room), { members: 5, users: 3 }, 'before the disconnect');

      expectOk(await post(node1, 'a', 'disconnect', { userId: alice }, KEY_A), `disconnect ${alice}`);
      for (const c of [tab1, tab2, unjoined]) await c.waitDisconnected(DELIVERY_TIMEOUT_MS);
      const observers = [bob1, bob2, carol];
      for (const o of observers) {
        for (const connId of [tab1Id, tab2Id]) await o.events.waitFor({ type: 'leave', connId }, DELIVERY_TIMEOUT_MS);
      }

      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, room, observers });
      await apiBarrier([node1, node2], { tenant: 'b', key: KEY_B, room, observers: [bAlice] });
      for (const o of observers) {
        for (const connId of [tab1Id, tab2Id]) o.events.assertCount({ type: 'leave', connId }, 1, `${o.label}: alice's member leaves once`);
        for (const connId of [bob1Id, bob2Id, carolId]) o.events.assertCount({ type: 'leave', connId }, 0, `${o.label}: nobody else leaves`);
        await assertStays(o, `disconnect of ${alice}`);
      }
      await assertStays(bAlice, `disconnect of ${alice} in tenant a`);
      for (const c of [tab1, tab2, unjoined]) assert.equal(c.connected, false, `${c.label} stays closed`);

      assert.deepEqual(await stats(node2, 'a', room), { members: 3, users: 2 }, 'after the disconnect');
      assert.deepEqual(sorted((await presence(node1, 'a', room)).map((m) => m.connId)), sorted([bob1Id, bob2Id, carolId]));
      // The closed socket's registration in its other room is gone too.
      let last;
      await waitUntil(
        async () => {
          last = await stats(node1, 'a', side);
          return last.members === 0;
        },
        { timeoutMs: DELIVERY_TIMEOUT_MS, what: () => `alice's registration ${tab2SideId} in ${side} to leave (last stats: ${show(last)})` },
      );
      assert.deepEqual(await stats(node1, 'b', room), { members: 1, users: 1 }, "b's alice is still in b's room");
    }),
  );

  it(
    'disconnect { userId } in a tenant without auth: the sockets that joined presence as that user close on both nodes; others stay',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const side = uid('side-room');
      const bo = uid('bo');
      const bo1 = await bSocket(node1, 'bo-1');
      const bo2 = await bSocket(node2, 'bo-2');
      const bo1Id = await joinAs(bo1, room, bo);
      await joinAs(bo2, side, bo);
      const bea = await bSocket(node2, 'bea');
      const beaId = await joinAs(bea, room, uid('bea'));
      const nobody = await bSocket(node1, 'b-never-joined');

      expectOk(await post(node2, 'b', 'disconnect', { userId: bo }, KEY_B), `disconnect ${bo} in b`);
      for (const c of [bo1, bo2]) await c.waitDisconnected(DELIVERY_TIMEOUT_MS);
      await bea.events.waitFor({ type: 'leave', connId: bo1Id }, DELIVERY_TIMEOUT_MS);

      await apiBarrier([node2, node1], { tenant: 'b', key: KEY_B, room, observers: [bea] });
      await apiBarrier([node2, node1], { tenant: 'b', key: KEY_B, observers: [bea, nobody] });
      bea.events.assertCount({ type: 'leave', connId: bo1Id }, 1, "bo's member leaves once");
      bea.events.assertCount({ type: 'leave', connId: beaId }, 0, 'bea stays');
      for (const c of [bea, nobody]) await assertStays(c, `disconnect of ${bo}`);
      assert.deepEqual(await stats(node1, 'b', room), { members: 1, users: 1 }, 'only bea is left');
      let last;
      await waitUntil(
        async () => {
          last = await stats(node2, 'b', side);
          return last.members === 0;
        },
        { timeoutMs: DELIVERY_TIMEOUT_MS, what: () => `bo's registration in ${side} to leave (last stats: ${show(last)})` },
      );
    }),
  );

  it(
    "disconnect { connId }: only the socket holding that registration closes (all its registrations leave), from either node; a connId of tenant b is out of a's reach",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const side = uid('side-room');
      const carolSub = uid('carol');
      const c1 = await aSocket(node1, 'carol-tab1', { sub: carolSub });
      const c2 = await aSocket(node2, 'carol-tab2', { sub: carolSub });
      const c1Id = await joinAs(c1, room);
      const c1SideId = await joinAs(c1, side);
      const c2Id = await joinAs(c2, room);
      const dave = await aSocket(node1, 'dave');
      const erin = await aSocket(node2, 'erin');
      const daveId = await joinAs(dave, room);
      const erinId = await joinAs(erin, room);
      const bSock = await bSocket(node1, 'b-member');
      const bId = await joinAs(bSock, room, carolSub);

      // Through node2, for a socket on node1.
      expectOk(await post(node2, 'a', 'disconnect', { connId: c1Id }, KEY_A), `disconnect connId ${c1Id}`);
      await c1.waitDisconnected(DELIVERY_TIMEOUT_MS);
      for (const o of [c2, dave, erin]) await o.events.waitFor({ type: 'leave', connId: c1Id }, DELIVERY_TIMEOUT_MS);
      await apiBarrier([node2, node1], { tenant: 'a', key: KEY_A, room, observers: [c2, dave, erin] });
      for (const o of [c2, dave, erin]) {
        o.events.assertCount({ type: 'leave', connId: c1Id }, 1, `${o.label}: carol's first tab leaves once`);
        for (const connId of [c2Id, daveId, erinId]) o.events.assertCount({ type: 'leave', connId }, 0, `${o.label}: nobody else leaves`);
        await assertStays(o, `disconnect of connId ${c1Id}`);
      }
      let last;
      await waitUntil(
        async () => {
          last = await stats(node2, 'a', side);
          return last.members === 0;
        },
        { timeoutMs: DELIVERY_TIMEOUT_MS, what: () => `the closed socket's registration ${c1SideId} in ${side} to leave (last stats: ${show(last)})` },
      );

      // Through node2, for a socket on node2.
      expectOk(await post(node2, 'a', 'disconnect', { connId: c2Id }, KEY_A), `disconnect connId ${c2Id}`);
      await c2.waitDisconnected(DELIVERY_TIMEOUT_MS);
      for (const o of [dave, erin]) await o.events.waitFor({ type: 'leave', connId: c2Id }, DELIVERY_TIMEOUT_MS);

      // Tenant a's key cannot disconnect b's registration (whatever a's answer), nor b's user.
      const crossConn = await post(node1, 'a', 'disconnect', { connId: bId }, KEY_A);
      const crossUser = await post(node2, 'a', 'disconnect', { userId: carolSub }, KEY_A);
      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, room, observers: [dave, erin] });
      await apiBarrier([node1, node2], { tenant: 'b', key: KEY_B, room, observers: [bSock] });
      for (const o of [dave, erin]) {
        o.events.assertCount({ type: 'leave', connId: c2Id }, 1, `${o.label}: carol's second tab leaves once`);
        await assertStays(o, `disconnect of connId ${c2Id}`);
      }
      await assertStays(bSock, `a's disconnect of b's connId (answered ${crossConn.status} ${crossConn.text}) and of its userId (answered ${crossUser.status} ${crossUser.text})`);
      assert.deepEqual((await presence(node2, 'b', room)).map((m) => m.connId), [bId], "b's registration is still there");
      assert.deepEqual(await stats(node1, 'a', room), { members: 2, users: 2 }, 'dave and erin are left');
    }),
  );

  it(
    'every refusal answers its status and code and emits nothing: 401, 400, 413, 403, 404 (observers on both nodes, barrier after)',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('guarded');
      const obs1 = await aSocket(node1, 'a-observer-1');
      const obs2 = await aSocket(node2, 'a-observer-2');
      const observers = [obs1, obs2];
      for (const o of observers) o.connId = await joinAs(o, room);
      const bObs = await bSocket(node1, 'b-observer');
      await joinAs(bObs, room, obs1.sub);
      const tag = uid('refused');
      const good = { room, event: EVENT, data: { tag } };
      const wrongKey = apiKey('wrong');

      /** [what, node, path, request options, status, code] */
      const cases = [];
      const add = (what, node, path, opts, status, code) => cases.push({ what, node, path, opts, status, code });
      const A = (rest) => apiPath('a', rest);

      // 401 unauthorized: every route of a, without a key or with a key that is not one of a's.
      const routes = [
        ['POST publish', A('publish'), { body: good }],
        ['POST broadcast', A('broadcast'), { body: { event: EVENT, data: { tag } } }],
        ['POST batch', A('batch'), { body: { items: [{ method: 'publish', params: good }] } }],
        ['GET presence', A(`rooms/${room}/presence`), { method: 'GET' }],
        ['GET stats', A(`rooms/${room}/stats`), { method: 'GET' }],
        ['POST disconnect', A('disconnect'), { body: { userId: obs1.sub } }],
      ];
      const badAuth = [
        ['no Authorization header', {}],
        ['a wrong key', { key: wrongKey }],
        ["tenant b's key", { key: KEY_B }],
        ["a's key plus one character", { key: `${KEY_A}x` }],
        ["a's key less its last character", { key: KEY_A.slice(0, -1) }],
        ['an empty bearer', { headers: { authorization: 'Bearer ' } }],
        ["a's key without the Bearer scheme", { headers: { authorization: KEY_A } }],
        ["a's key as Basic credentials", { headers: { authorization: `Basic ${KEY_A}` } }],
      ];
      for (const [route, path, opts] of routes) {
        for (const [auth, authOpts] of badAuth) {
          for (const node of [node1, node2]) add(`${route} with ${auth}`, node, path, { ...opts, ...authOpts }, 401, 'unauthorized');
        }
      }
      // A tenant without api_keys refuses every key.
      for (const key of [KEY_A, KEY_A2, KEY_B, '']) {
        add(`tenant c (no keys) with ${key === '' ? 'an empty key' : 'a key of another tenant'}`, node1, apiPath('c', 'publish'), { key, body: good }, 401, 'unauthorized');
      }
      add('tenant c (no keys): GET stats', node2, apiPath('c', `rooms/${room}/stats`), { method: 'GET', key: KEY_A }, 401, 'unauthorized');

      // 404 unknown_tenant, checked before the key.
      add('unknown tenant with a key', node1, apiPath('zz-nope', 'publish'), { key: KEY_A, body: good }, 404, 'unknown_tenant');
      add('unknown tenant without a key', node2, apiPath('zz-nope', 'publish'), { body: good }, 404, 'unknown_tenant');
      add('unknown tenant: GET presence', node1, apiPath('zz-nope', `rooms/${room}/presence`), { method: 'GET', key: KEY_A }, 404, 'unknown_tenant');

      // 400 invalid_payload: bodies.
      const invalid = (what, opts, node = node1, path = A('publish')) => add(what, node, path, { key: KEY_A, ...opts }, 400, 'invalid_payload');
      invalid('bad JSON', { raw: `{"room":"${room}","event":"${EVENT}","data":{"tag":"${tag}"` });
      invalid('a JSON array body', { raw: JSON.stringify([good]) });
      invalid('a JSON string body', { raw: JSON.stringify(JSON.stringify(good)) });
      invalid('a JSON number body', { raw: '42' });
      invalid('a JSON null body', { raw: 'null' });
      invalid('an empty body', { raw: '' });
      invalid('no room', { body: { event: EVENT, data: { tag } } });
      invalid('no event', { body: { room, data: { tag } } });
      invalid('a numeric room', { body: { room: 7, event: EVENT, data: { tag } } });
      invalid('a numeric event', { body: { room, event: 7, data: { tag } } });
      invalid('an empty event', { body: { room, event: '', data: { tag } } });
      invalid('an event of 129 characters', { body: { room, event: 'e'.repeat(129), data: { tag } } });
      invalid('a numeric exceptConnId', { body: { ...good, exceptConnId: 7 } });
      invalid('a room id with a space', { body: { ...good, room: `${room} x` } });
      invalid('an empty room id', { body: { ...good, room: '' } });
      invalid('a room id of 129 characters', { body: { ...good, room: 'r'.repeat(129) } });
      invalid('a room id outside the charset', { body: { ...good, room: `${room}/x` } }, node2);
      invalid('broadcast without event', { body: { data: { tag } } }, node1, A('broadcast'));
      invalid('broadcast, a JSON array body', { raw: JSON.stringify([{ event: EVENT, data: { tag } }]) }, node2, A('broadcast'));
      invalid('batch, bad JSON', { raw: '{"items":[' }, node1, A('batch'));
      invalid('disconnect with both userId and connId', { body: { userId: obs1.sub, connId: obs1.connId } }, node1, A('disconnect'));
      invalid('disconnect with neither userId nor connId', { body: {} }, node2, A('disconnect'));
      invalid('disconnect with a numeric userId', { body: { userId: 7 } }, node1, A('disconnect'));
      invalid('disconnect with a userId outside the charset', { body: { userId: `${obs1.sub} x` } }, node2, A('disconnect'));
      // ... and room ids in the path.
      invalid('GET presence of a room id with a space', { method: 'GET' }, node1, A(`rooms/${encodeURIComponent(`${room} x`)}/presence`));
      invalid('GET stats of a room id with a space', { method: 'GET' }, node2, A(`rooms/${encodeURIComponent(`${room} x`)}/stats`));
      invalid('GET presence of a room id of 129 characters', { method: 'GET' }, node1, A(`rooms/${'r'.repeat(129)}/presence`));

      // 413 payload_too_large: one byte over 1 MiB.
      add('a body of 1 MiB + 1 byte', node1, A('publish'), { key: KEY_A, raw: publishBodyOfSize(MAX_BODY_BYTES + 1, room, tag) }, 413, 'payload_too_large');
      add('a batch body of 1 MiB + 1 byte', node2, A('batch'), {
        key: KEY_A,
        raw: (() => {
          const base = JSON.stringify({ items: [{ method: 'publish', params: { ...good, data: { tag, pad: '' } } }] });
          const pad = 'x'.repeat(MAX_BODY_BYTES + 1 - Buffer.byteLength(base));
          return JSON.stringify({ items: [{ method: 'publish', params: { ...good, data: { tag, pad } } }] });
        })(),
      }, 413, 'payload_too_large');

      // 403 forbidden: every reserved event name, published and broadcast, through both nodes.
      for (const event of RESERVED_EVENTS) {
        const data = { tag, type: 'leave', roomId: room, userId: obs1.sub, connId: obs1.connId };
        add(`publish of reserved ${event}`, node1, A('publish'), { key: KEY_A, body: { room, event, data } }, 403, 'forbidden');
        add(`broadcast of reserved ${event}`, node2, A('broadcast'), { key: KEY_A, body: { event, data } }, 403, 'forbidden');
      }

      const failures = [];
      for (const c of cases) {
        const res = await apiRequest(c.node, c.path, { method: 'POST', ...c.opts });
        try {
          expectRefused(res, c.status, c.code, `${c.what} via ${c.node.name}`);
        } catch (err) {
          failures.push(err.message);
        }
      }
      assert.deepEqual(failures, [], `${failures.length} of ${cases.length} refusals answered otherwise:\n${failures.join('\n')}`);

      // The boundary: exactly 1 MiB is served and delivered.
      const exact = uid('exactly-1-mib');
      const exactBody = publishBodyOfSize(MAX_BODY_BYTES, room, exact);
      expectOk(await apiRequest(node1, A('publish'), { key: KEY_A, raw: exactBody }), 'a body of exactly 1 MiB');
      for (const o of observers) {
        const got = await o.news.waitFor({ tag: exact }, DELIVERY_TIMEOUT_MS);
        assert.equal(got.pad.length, JSON.parse(exactBody).data.pad.length, `${o.label}: the 1 MiB publish arrives whole`);
      }

      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, room, observers });
      await apiBarrier([node1, node2], { tenant: 'a', key: KEY_A, observers });
      await apiBarrier([node1, node2], { tenant: 'b', key: KEY_B, room, observers: [bObs] });
      for (const o of [...observers, bObs]) {
        assert.deepEqual(mentions(o, tag), [], `${o.label}: no refused call emitted anything`);
        o.events.assertCount({ type: 'leave' }, 0, 'no member left (no forged presence:event, no disconnect)');
        await assertStays(o, 'refused calls, among them disconnects and forged disconnect events');
      }
      for (const o of observers) o.news.assertCount({ tag: exact }, 1, 'the 1 MiB publish, exactly once');
      assert.deepEqual(sorted((await presence(node2, 'a', room)).map((m) => m.connId)), sorted(observers.map((o) => o.connId)), 'the room is untouched');
    }),
  );

  it(
    'GET /api/v1/openapi.json (no key) is an OpenAPI 3.1 document listing every path of the API',
    TEST_TIMEOUT,
    h.wrap(async () => {
      for (const node of [node1, node2]) {
        const res = await apiRequest(node, '/api/v1/openapi.json', { method: 'GET' });
        assert.equal(res.status, 200, `${node.name}: openapi.json answers 200 without a key, got ${res.status}: ${res.text.slice(0, 300)}`);
        const doc = res.body;
        assert.ok(doc !== null && typeof doc === 'object' && !Array.isArray(doc), `${node.name}: openapi.json is a JSON object: ${res.text.slice(0, 300)}`);
        assert.equal(typeof doc.openapi, 'string', `openapi field: ${show(doc.openapi)}`);
        assert.ok(doc.openapi.startsWith('3.1'), `an OpenAPI 3.1 document, got openapi ${show(doc.openapi)}`);
        assert.equal(typeof doc.info?.title, 'string', `info.title: ${show(doc.info)}`);
        assert.equal(typeof doc.info?.version, 'string', `info.version: ${show(doc.info)}`);
        assert.ok(doc.paths !== null && typeof doc.paths === 'object', `paths: ${show(doc.paths)}`);

        // Paths may be written in full or under a server url ending in /api/v1.
        let prefix = '';
        if (typeof doc.servers?.[0]?.url === 'string') prefix = new URL(doc.servers[0].url, 'http://host.invalid').pathname.replace(/\/$/, '');
        const full = Object.keys(doc.paths).map((key) => ({ key, path: key.startsWith('/api/v1/') ? key : `${prefix}${key}` }));
        const param = '\\{[^/{}]+\\}';
        const wanted = [
          ['post', 'publish'],
          ['post', 'broadcast'],
          ['post', 'batch'],
          ['get', `rooms/${param}/presence`],
          ['get', `rooms/${param}/stats`],
          ['post', 'disconnect'],
        ];
        for (const [method, rest] of wanted) {
          const re = new RegExp(`^/api/v1/${param}/${rest}$`);
          const hit = full.find((p) => re.test(p.path));
          assert.ok(hit, `${node.name}: openapi.json lists /api/v1/{tenant}/${rest.replaceAll(param, '{room}')}; paths: ${show(Object.keys(doc.paths))} (server prefix ${show(prefix)})`);
          assert.equal(typeof doc.paths[hit.key][method], 'object', `${node.name}: ${hit.key} has a ${method} operation: ${show(doc.paths[hit.key])}`);
        }
      }
    }),
  );

  it(
    '/metrics counts API calls as rtm_requests_total{tenant, op="api:publish", code}; no API key shows in /admin/tenants, /metrics or the logs',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('counted');
      const metrics = async () => getText(`${node1.url}/metrics`);
      const read = (text) => ({
        aOk: metricSum(text, 'rtm_requests_total', { tenant: 'a', op: 'api:publish', code: 'ok' }),
        aForbidden: metricSum(text, 'rtm_requests_total', { tenant: 'a', op: 'api:publish', code: 'forbidden' }),
        aAll: metricSum(text, 'rtm_requests_total', { tenant: 'a', op: 'api:publish' }),
        bOk: metricSum(text, 'rtm_requests_total', { tenant: 'b', op: 'api:publish', code: 'ok' }),
      });
      const before = read(await metrics());

      for (let i = 0; i < 3; i += 1) await publishOk(node1, 'a', { room, event: EVENT, data: { i } });
      expectRefused(await post(node1, 'a', 'publish', { room, event: 'rtm:x', data: {} }, KEY_A), 403, 'forbidden', 'a reserved name');
      for (let i = 0; i < 2; i += 1) await publishOk(node1, 'b', { room, event: EVENT, data: { i } });

      const want = { aOk: before.aOk + 3, aForbidden: before.aForbidden + 1, aAll: before.aAll + 4, bOk: before.bOk + 2 };
      let last;
      let text;
      await waitUntil(
        async () => {
          text = await metrics();
          last = read(text);
          return Object.entries(want).every(([k, v]) => last[k] === v);
        },
        {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: () =>
            `node1's rtm_requests_total to count 3 ok and 1 forbidden api:publish of tenant a, 2 of b (before ${show(before)}, want ${show(want)}, last ${show(last)}); ` +
            `series: ${show(text?.split('\n').filter((l) => l.startsWith('rtm_requests_total') && l.includes('api:')))}`,
        },
      );
      const series = text.split('\n').filter((l) => l.startsWith('rtm_requests_total{') && l.includes('op="api:publish"') && l.includes('tenant="a"'));
      assert.ok(series.length > 0, 'a series with tenant="a" and op="api:publish"');

      for (const [name, key] of Object.entries({ KEY_A, KEY_A2, KEY_B })) {
        for (const node of [node1, node2]) {
          assert.ok(!(await getText(`${node.url}/admin/tenants`)).includes(key), `${node.name} /admin/tenants must not contain ${name}`);
          assert.ok(!(await getText(`${node.url}/metrics`)).includes(key), `${node.name} /metrics must not contain ${name}`);
          assert.ok(!node.stderr.includes(key) && !node.stdout.includes(key), `${node.name}'s log must not contain ${name}`);
        }
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// 2. the single-tenant host: API_KEY
// ---------------------------------------------------------------------------

describe('api: the single-tenant host (no TENANTS_FILE), API_KEY', () => {
  const h = new Harness();
  let withKey;
  let withoutKey;
  const KEY = apiKey('api-key');

  before(async () => {
    withKey = await h.startHost('with-api-key', { env: { ...SLOW_ENV, API_KEY: KEY } });
    withoutKey = await h.startHost('without-api-key', { env: SLOW_ENV });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'with API_KEY: publish to /api/v1/default/publish reaches a socket on /, broadcast reaches every socket, presence and stats read the room; a wrong key is 401, another tenant 404',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const member = watch(await h.connect(withKey, { label: 'member' }));
      const memberId = (await member.join(room, uid('solo'), { state: { here: true } })).self.connId;
      const idle = watch(await h.connect(withKey, { label: 'idle' }));

      const published = uid('published');
      const broadcast = uid('broadcast');
      expectOk(await post(withKey, 'default', 'publish', { room, event: EVENT, data: { tag: published } }, KEY), 'publish in default');
      expectOk(await post(withKey, 'default', 'broadcast', { event: EVENT, data: { tag: broadcast } }, KEY), 'broadcast in default');
      await member.news.waitFor({ tag: published }, DELIVERY_TIMEOUT_MS);
      for (const c of [member, idle]) await c.news.waitFor({ tag: broadcast }, DELIVERY_TIMEOUT_MS);

      const snap = expectOk(await get(withKey, 'default', `rooms/${room}/presence`, KEY), 'presence in default');
      assert.deepEqual(snap.snapshot, await member.snapshot(room), 'presence equals the presence:snapshot ack');
      assert.deepEqual(snap.snapshot.map((m) => m.connId), [memberId]);
      const st = expectOk(await get(withKey, 'default', `rooms/${room}/stats`, KEY), 'stats in default');
      assert.deepEqual([st.members, st.users], [1, 1], `stats: ${show(st)}`);

      const wrong = uid('wrong-key');
      expectRefused(await post(withKey, 'default', 'publish', { room, event: EVENT, data: { tag: wrong } }, apiKey('wrong')), 401, 'unauthorized', 'a wrong key');
      expectRefused(await post(withKey, 'default', 'publish', { room, event: EVENT, data: { tag: wrong } }, undefined), 401, 'unauthorized', 'no key');
      expectRefused(await post(withKey, 'a', 'publish', { room, event: EVENT, data: { tag: wrong } }, KEY), 404, 'unknown_tenant', 'tenant a on the single-tenant host');

      await apiBarrier([withKey], { tenant: 'default', key: KEY, room, observers: [member] });
      await apiBarrier([withKey], { tenant: 'default', key: KEY, observers: [member, idle] });
      member.news.assertCount({ tag: published }, 1, 'the publish, exactly once');
      idle.news.assertCount({ tag: published }, 0, 'the publish reaches only the room');
      for (const c of [member, idle]) {
        c.news.assertCount({ tag: broadcast }, 1, 'the broadcast, exactly once');
        assert.deepEqual(mentions(c, wrong), [], `${c.label}: nothing of the refused calls`);
      }
    }),
  );

  it(
    'the scheme name is case-insensitive; a malformed batch item fails alone; unknown routes and methods answer in the API error shape',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const member = watch(await h.connect(withKey, { label: 'member' }));
      await member.join(room, uid('solo'));
      const tag = uid('lower');
      const lower = await apiRequest(withKey, apiPath('default', 'publish'), {
        body: { room, event: EVENT, data: { tag } },
        headers: { authorization: `bearer ${KEY}` },
      });
      expectOk(lower, 'publish with a lowercase bearer scheme');
      await member.news.waitFor({ tag }, DELIVERY_TIMEOUT_MS);

      const good = uid('good');
      const mixed = expectOk(
        await post(withKey, 'default', 'batch', { items: [{ method: 'publish' }, 7, { method: 'publish', params: { room, event: EVENT, data: { tag: good } } }] }, KEY),
        'a batch with malformed items',
      );
      assert.deepEqual(mixed.results.map((r) => r.ok), [false, false, true], show(mixed));
      for (const r of mixed.results.slice(0, 2)) assert.equal(r.error.code, 'invalid_payload', show(r));
      await member.news.waitFor({ tag: good }, DELIVERY_TIMEOUT_MS);

      expectRefused(await apiRequest(withKey, '/api/v1/default/nope', { key: KEY }), 404, 'not_found', 'an unknown route');
      expectRefused(await apiRequest(withKey, apiPath('default', 'publish'), { method: 'GET', key: KEY }), 405, 'method_not_allowed', 'GET on a POST route');
    }),
  );

  it(
    'without API_KEY every call is 401 unauthorized and nothing is emitted or disconnected',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const member = watch(await h.connect(withoutKey, { label: 'member' }));
      const userId = uid('solo');
      const memberId = (await member.join(room, userId)).self.connId;
      const tag = uid('refused');
      const routes = [
        ['POST publish', 'publish', { body: { room, event: EVENT, data: { tag } } }],
        ['POST broadcast', 'broadcast', { body: { event: EVENT, data: { tag } } }],
        ['POST batch', 'batch', { body: { items: [{ method: 'publish', params: { room, event: EVENT, data: { tag } } }] } }],
        ['GET presence', `rooms/${room}/presence`, { method: 'GET' }],
        ['GET stats', `rooms/${room}/stats`, { method: 'GET' }],
        ['POST disconnect userId', 'disconnect', { body: { userId } }],
        ['POST disconnect connId', 'disconnect', { body: { connId: memberId } }],
      ];
      const auths = [
        ['no Authorization header', {}],
        ['some key', { key: apiKey('guess') }],
        ["the other host's key", { key: KEY }],
        ['an empty bearer', { headers: { authorization: 'Bearer ' } }],
      ];
      const failures = [];
      for (const [route, rest, opts] of routes) {
        for (const [auth, authOpts] of auths) {
          const res = await apiRequest(withoutKey, apiPath('default', rest), { method: 'POST', ...opts, ...authOpts });
          try {
            expectRefused(res, 401, 'unauthorized', `${route} with ${auth}`);
          } catch (err) {
            failures.push(err.message);
          }
        }
      }
      assert.deepEqual(failures, [], `${failures.length} calls answered otherwise:\n${failures.join('\n')}`);

      // The API is off, so the presence barrier stands in for an API marker.
      await h.barrier(room, { nodes: [withoutKey], observers: [member] });
      assert.deepEqual(mentions(member, tag), [], 'nothing of the refused calls arrived');
      member.events.assertCount({ type: 'leave', connId: memberId }, 0, 'the member did not leave');
      await assertStays(member, 'refused disconnects');
      assert.deepEqual((await member.snapshot(room)).map((m) => m.connId), [memberId], 'the registration is still there');
    }),
  );
});

// ---------------------------------------------------------------------------
// 3. Redis down: 503 unavailable
// ---------------------------------------------------------------------------

describe('api: with Redis down every call answers 503 unavailable; once Redis is back the API serves again', () => {
  const h = new Harness();
  let node;
  const KEY = apiKey('key-a');

  before(async () => {
    const file = join(scratch('rtm-api-outage-'), 'tenants.toml');
    writeTenantsFile(file, { tenants: [{ id: 'a', api_keys: [KEY] }] });
    await h.startRedis();
    node = await h.startHost('node', { redis: true, env: { ...SLOW_ENV, TENANTS_FILE: file, REDIS_TIMEOUT_MS: 1000 } });
  });
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'publish, broadcast, presence, stats and disconnect are 503 unavailable (a batch answers unavailable for its item); after a restart of Redis a publish reaches a member again',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      await h.redis.kill9();
      const routes = [
        ['POST publish', 'publish', { body: { room, event: EVENT, data: {} } }],
        ['POST broadcast', 'broadcast', { body: { event: EVENT, data: {} } }],
        ['GET presence', `rooms/${room}/presence`, { method: 'GET' }],
        ['GET stats', `rooms/${room}/stats`, { method: 'GET' }],
        ['POST disconnect', 'disconnect', { body: { userId: uid('someone') } }],
      ];
      for (const [route, rest, opts] of routes) {
        expectRefused(await apiRequest(node, apiPath('a', rest), { key: KEY, ...opts }), 503, 'unavailable', `${route} with Redis down`);
      }
      // A batch: the item is refused unavailable (or the whole call is).
      const batch = await post(node, 'a', 'batch', { items: [{ method: 'publish', params: { room, event: EVENT, data: {} } }] }, KEY);
      if (batch.status === 503) {
        expectRefused(batch, 503, 'unavailable', 'batch with Redis down');
      } else {
        const body = expectOk(batch, 'batch with Redis down');
        assert.equal(body.results?.length, 1, `one result: ${show(body)}`);
        assertError(body.results[0], 'unavailable', 'the batch item with Redis down');
      }
      // Refusals that need no Redis keep their own codes.
      expectRefused(await post(node, 'a', 'publish', { room, event: EVENT }, apiKey('wrong')), 401, 'unauthorized', 'a wrong key with Redis down');
      expectRefused(await post(node, 'a', 'publish', { room, event: 'rtm:x' }, KEY), 403, 'forbidden', 'a reserved name with Redis down');

      await h.redis.restart();
      let last;
      await waitUntil(
        async () => {
          last = await get(node, 'a', `rooms/${room}/stats`, KEY);
          return last.status === 200;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: () => `stats to answer 200 once Redis is back (last: ${last?.status} ${last?.text})` },
      );
      const member = watch(await h.connect(node, { namespace: '/a', label: 'member' }));
      await waitUntil(async () => (await member.request('presence:join', { roomId: room, userId: 'mo' })).ok === true, {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'presence:join to succeed once Redis is back',
      });
      const tag = uid('after-outage');
      expectOk(await post(node, 'a', 'publish', { room, event: EVENT, data: { tag } }, KEY), 'publish once Redis is back');
      await member.news.waitFor({ tag }, DELIVERY_TIMEOUT_MS);
      const st = expectOk(await get(node, 'a', `rooms/${room}/stats`, KEY), 'stats once Redis is back');
      assert.deepEqual([st.members, st.users], [1, 1], `stats: ${show(st)}`);
    }),
  );
});

/**
 * Webhooks end-to-end (PROTOCOL.md "Webhooks"): spawned `rtm-host` processes
 * POST presence changes to a receiver started here with `node:http`, which
 * keeps every raw body, checks its `X-Rtm-Signature` with the tenant's secret
 * and answers as each test tells it to (200, 500 for the first N requests,
 * never, or once released).
 *
 * What is pinned:
 * 1. two nodes sharing one Redis, tenant acme subscribed to every event (its
 *    secret read from the environment, `env:NAME`):
 *    - alice joins R on node A, bob joins on B, bob leaves, carol joins on A
 *      and stops heartbeating (the reaper expires her), alice's socket goes
 *      away: the receiver gets exactly this sequence, each event once (by id
 *      and by what it says), no more: room_occupied, user_joined,
 *      member_joined (alice, with her state); user_joined, member_joined
 *      (bob); member_left `leave`, user_left (bob); user_joined, member_joined
 *      (carol); member_left `expire`, user_left (carol); member_left
 *      `disconnect`, user_left, room_vacated (alice). Every body is
 *      `{ tenant: "acme", events }`, `application/json`, correctly signed;
 *      ids are `evt_<32 hex>` and unique; `connId` only on member events,
 *      `reason` only on member_left; the nodes count what they delivered;
 *    - one user with two tabs on two nodes, joining at the same time and
 *      leaving at the same time (5 rounds): room_occupied, user_joined,
 *      user_left and room_vacated once per round, member_joined and
 *      member_left twice;
 *    - a socket that re-joins its room as another user (while another tab of
 *      the first user stays) makes only the user_* events whose counts move,
 *      and no member events;
 * 2. delivery: a receiver answering 500 three times gets the batch on the 4th
 *    attempt with the same bytes (same ids, same signature);
 *    `rtm_webhook_attempts_total{result="status"}` counts the failures and
 *    `rtm_webhook_events_total{outcome="delivered"}` the events; an attempt
 *    left unanswered past WEBHOOK_TIMEOUT_MS is retried with the same body
 *    (`result="timeout"`); a receiver that always fails is given up after
 *    WEBHOOK_RETRY_FOR_MS (`outcome="undelivered"`);
 * 3. a receiver that never answers does not hold presence acks: 200
 *    join/leave rounds are all acked while the receiver holds the host's
 *    requests open and has answered none, with events queued behind it
 *    (ack p99 is printed, next to a host with a prompt receiver, never
 *    asserted); released, it gets every event once. With WEBHOOK_QUEUE=5 and
 *    WEBHOOK_CONCURRENCY=1 every change is still acked, the overflow is
 *    counted as `dropped`, and only one request is ever in flight;
 * 4. tenants a (only room_occupied / room_vacated), b (everything) and c (no
 *    webhook) on one node: each receiver gets only its tenant's events, in
 *    its tenant's name, signed with its own secret (a's bodies do not verify
 *    with b's secret and the other way round), and the room name both use
 *    opens a room for each; nothing of c goes anywhere;
 * 5. the single-tenant host: WEBHOOK_URL / WEBHOOK_SECRET send the `default`
 *    tenant's events, WEBHOOK_EVENTS filters them; WEBHOOK_URL without a
 *    secret, an empty secret, an unknown event name (also in a tenants file),
 *    or a tenants-file secret from an unset variable: the host exits 2 with
 *    one line naming the problem.
 *
 * "No more than that" is counted after a barrier ({@link hookBarrier}), never
 * after a quiet window. It rests on what the contract pins: a node posts only
 * its own changes, one change's events are queued together and in order, and
 * with WEBHOOK_CONCURRENCY=1 a node's batches go out one after another in
 * queue order (the next starts once the previous was answered). So once a
 * marker change made on a node has reached the receiver, everything that node
 * queued before it has too. Reaper expiries get sentinels first, as in
 * cluster.test.mjs: registrations lapse until every node's reaper has removed
 * one, so a racing second reaper has queued whatever it would have.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  BARRIER_TIMEOUT_MS,
  Harness,
  getText,
  metricSum,
  runHostUntilExit,
  scratchSpace,
  show,
  uid,
  waitUntil,
  SLOW_ENV,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 180_000 };

/** How long an expected webhook may take on a loaded machine (bounded, never asserted). */
const DELIVERY_TIMEOUT_MS = 30_000;

/** Short liveness settings so a silent registration expires within a test's patience. */
const FAST_TTL_MS = 1_500;
const FAST_REAPER_MS = 200;
const FAST_ENV = {
  PRESENCE_TTL_MS: FAST_TTL_MS,
  PRESENCE_REAPER_INTERVAL_MS: FAST_REAPER_MS,
  PRESENCE_REAPER_LOOKBACK_MS: FAST_TTL_MS,
};
/** Heartbeat period for sockets that must live under FAST_ENV: several beats per TTL. */
const BEAT_MS = 300;
/** Generous deadline for an expiry; how fast it comes is not asserted. */
const EXPIRE_DEADLINE_MS = FAST_TTL_MS + FAST_REAPER_MS + 30_000;

/**
 * Delivery settings of the barrier's premise: one batch in flight per tenant,
 * so a node's batches arrive in the order it queued them; a short batch window
 * keeps the tests brisk; a timeout far above any healthy answer so a loaded
 * machine never causes a retry (a retry would repeat ids on purpose).
 */
const ORDERED_DELIVERY = {
  WEBHOOK_CONCURRENCY: 1,
  WEBHOOK_BATCH_MS: 20,
  WEBHOOK_TIMEOUT_MS: 30_000,
};

const EVENT_TYPES = ['member_joined', 'member_left', 'room_occupied', 'room_vacated', 'user_joined', 'user_left'];
const MEMBER_TYPES = new Set(['member_joined', 'member_left']);
const REASONS = new Set(['leave', 'disconnect', 'expire']);
const EVENT_ID_RE = /^evt_[0-9a-f]{32}$/;

const { tenantsFile } = scratchSpace();

/** A fresh webhook secret. */
const newSecret = (name) => `${name}-${randomBytes(24).toString('hex')}`;

// ---------------------------------------------------------------------------
// the receiver
// ---------------------------------------------------------------------------

/**
 * Whether `header` is `sha256=<hex HMAC-SHA256 of raw with secret>` (compared
 * in constant time).
 */
function signatureOk(secret, raw, header) {
  if (typeof header !== 'string' || !header.startsWith('sha256=')) return false;
  const hex = header.slice('sha256='.length);
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return false;
  const sent = Buffer.from(hex, 'hex');
  const want = createHmac('sha256', secret).update(raw).digest();
  return sent.length === want.length && timingSafeEqual(sent, want);
}

/** Behaviour: a promise that never settles (the request is held open until the host gives up). */
const HANG = () => new Promise(() => {});

/**
 * A webhook receiver on 127.0.0.1 (`url` ends in `/hook`). It records every
 * request (`requests`: raw body Buffer, headers, parsed body, whether the
 * signature verifies with `secret`, how it was answered) and every event of
 * every request in arrival order (`events`, retries included, each carrying
 * its request's `tenant`, `request` number and `sigOk`), and logs one line per
 * request and per event.
 *
 * How it answers is `behaviour(record)`: a status, or a promise of one (held
 * until it settles; one that never settles holds the request until the host
 * gives up on it). A record's `state` is `open` until it is answered
 * (`answered`, with `status`) or the host closes it first (`aborted`).
 */
class HookReceiver {
  constructor(name, secret, { quiet = false } = {}) {
    this.name = name;
    this.secret = secret;
    this.quiet = quiet;
    this.requests = [];
    this.events = [];
    this.behaviour = () => 200;
    this.releases = new Set();
    this.server = createServer((req, res) => this.#handle(req, res));
    // Idle keep-alive connections stay open longer than the host's pool keeps them, so
    // this side never closes one just as the host reuses it (a spurious failed attempt).
    this.server.keepAliveTimeout = 600_000;
    this.server.requestTimeout = 0;
  }

  static async start(name, secret, options) {
    const receiver = new HookReceiver(name, secret, options);
    await new Promise((res, rej) => {
      receiver.server.once('error', rej);
      receiver.server.listen(0, '127.0.0.1', res);
    });
    receiver.port = receiver.server.address().port;
    receiver.url = `http://127.0.0.1:${receiver.port}/hook`;
    return receiver;
  }

  /** Sets how the next requests are answered. */
  behave(behaviour) {
    this.behaviour = behaviour;
  }

  /** Behaviour: hold each request until {@link release} is called, then answer 200. */
  untilReleased() {
    return new Promise((res) => this.releases.add(() => res(200)));
  }

  /** Answers every request held by {@link untilReleased} (and the next ones) with 200. */
  release() {
    this.behaviour = () => 200;
    for (const answer of this.releases) answer();
    this.releases.clear();
  }

  /** Requests received and not answered (nor closed by the host) yet. */
  get open() {
    return this.requests.filter((r) => r.state === 'open').length;
  }

  /** Requests answered (any status). */
  get answered() {
    return this.requests.filter((r) => r.state === 'answered').length;
  }

  #handle(req, res) {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', async () => {
      const raw = Buffer.concat(chunks);
      const record = {
        n: this.requests.length + 1,
        method: req.method,
        path: req.url,
        headers: req.headers,
        raw,
        body: undefined,
        parseError: undefined,
        sigOk: signatureOk(this.secret, raw, req.headers['x-rtm-signature']),
        state: 'open',
        status: null,
      };
      try {
        record.body = JSON.parse(raw.toString('utf8'));
      } catch (err) {
        record.parseError = err.message;
      }
      this.requests.push(record);
      const events = Array.isArray(record.body?.events) ? record.body.events : [];
      const sig = record.sigOk ? 'ok' : 'BAD';
      console.log(
        `webhook[${this.name}] req#${record.n} ${req.method} ${req.url} tenant=${record.body?.tenant} sig=${sig} events=${events.length}` +
          (record.parseError ? ` UNPARSABLE: ${record.parseError}` : ''),
      );
      for (const ev of events) {
        this.events.push({ ...ev, tenant: record.body.tenant, request: record.n, sigOk: record.sigOk });
        if (!this.quiet) {
          console.log(
            `webhook[${this.name}]   #${record.n} ${ev.id} ${ev.type} room=${ev.roomId} user=${ev.userId} conn=${ev.connId ?? '-'} reason=${ev.reason ?? '-'} sig=${sig}`,
          );
        }
      }
      res.on('close', () => {
        if (record.state === 'open') {
          record.state = 'aborted';
          console.log(`webhook[${this.name}] req#${record.n} closed unanswered (by the host, or by this receiver at teardown)`);
        }
      });
      const status = await this.behaviour(record);
      if (record.state !== 'open' || res.destroyed) return;
      record.state = 'answered';
      record.status = status;
      if (status !== 200) console.log(`webhook[${this.name}] req#${record.n} answered ${status}`);
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'no');
    });
  }

  /** Waits for an event matching `pred`; returns it. */
  waitFor(pred, what, timeoutMs = DELIVERY_TIMEOUT_MS) {
    return waitUntil(() => this.events.find(pred), {
      timeoutMs,
      what: () => `webhook[${this.name}] to receive ${what} (received: ${show(this.events.map(brief))})`,
    });
  }

  /** Events of `rooms` (a Set or array of room ids), in arrival order. */
  inRooms(rooms) {
    const set = new Set(rooms);
    return this.events.filter((e) => set.has(e.roomId));
  }

  /** Stops listening and drops every held connection. */
  async close() {
    this.release();
    this.server.closeAllConnections();
    await new Promise((res) => this.server.close(() => res()));
  }
}

/** One event as a short string, for assertion messages. */
function brief(e) {
  return `${e.type} room=${e.roomId} user=${e.userId} conn=${e.connId ?? '-'}${e.reason ? ` reason=${e.reason}` : ''}`;
}

/**
 * Asserts the shape the contract gives every request of `receiver` (only
 * those the filter `which` keeps): `POST /hook`, `application/json`, a valid
 * signature, `{ tenant, events: [...] }`, and every event well formed.
 */
function assertWellFormed(receiver, tenant, which = () => true) {
  const requests = receiver.requests.filter(which);
  assert.ok(requests.length > 0, `webhook[${receiver.name}]: no request to check`);
  for (const r of requests) {
    const where = `webhook[${receiver.name}] req#${r.n}`;
    assert.equal(r.method, 'POST', `${where}: method`);
    assert.equal(r.path, '/hook', `${where}: path`);
    assert.match(String(r.headers['content-type']), /^application\/json\b/, `${where}: content-type`);
    assert.equal(r.sigOk, true, `${where}: X-Rtm-Signature ${show(r.headers['x-rtm-signature'])} must be the HMAC-SHA256 of the body`);
    assert.equal(r.parseError, undefined, `${where}: body must be JSON`);
    assert.equal(r.body.tenant, tenant, `${where}: body.tenant`);
    assert.ok(Array.isArray(r.body.events) && r.body.events.length > 0, `${where}: body.events must be a non-empty array: ${show(r.body)}`);
    assert.deepEqual(Object.keys(r.body).sort(), ['events', 'tenant'], `${where}: body fields`);
    for (const e of r.body.events) {
      const ctx = `${where} event ${show(e)}`;
      assert.match(String(e.id), EVENT_ID_RE, `${ctx}: id`);
      assert.ok(EVENT_TYPES.includes(e.type), `${ctx}: type`);
      assert.equal(typeof e.roomId, 'string', `${ctx}: roomId`);
      assert.equal(typeof e.userId, 'string', `${ctx}: userId`);
      assert.ok(Number.isInteger(e.ts) && e.ts > 1_600_000_000_000, `${ctx}: ts must be epoch milliseconds`);
      if (MEMBER_TYPES.has(e.type)) assert.equal(typeof e.connId, 'string', `${ctx}: member events carry connId`);
      else assert.equal(e.connId, undefined, `${ctx}: room and user events carry no connId`);
      if (e.type === 'member_left') assert.ok(REASONS.has(e.reason), `${ctx}: member_left carries a reason`);
      else assert.equal(e.reason, undefined, `${ctx}: only member_left carries a reason`);
      if (e.type === 'member_joined') assert.equal(typeof e.state, 'object', `${ctx}: member_joined carries the state`);
      else assert.equal(e.state, undefined, `${ctx}: only member_joined carries a state`);
    }
  }
}

/** Asserts no event id occurs twice among `events` (a retry would, so these tests make none). */
function assertIdsUnique(events, context) {
  const seen = new Map();
  for (const e of events) {
    const first = seen.get(e.id);
    if (first) assert.fail(`${context}: event id ${e.id} received twice: ${brief(first)} (req#${first.request}) and ${brief(e)} (req#${e.request})`);
    seen.set(e.id, e);
  }
}

// ---------------------------------------------------------------------------
// metrics and barriers
// ---------------------------------------------------------------------------

/** The webhook series of `tenant` on `node`. */
async function hookMetrics(node, tenant) {
  const text = await getText(`${node.url}/metrics`);
  const events = (outcome) => metricSum(text, 'rtm_webhook_events_total', { tenant, outcome });
  const attempts = (result) => metricSum(text, 'rtm_webhook_attempts_total', { tenant, result });
  return {
    delivered: events('delivered'),
    dropped: events('dropped'),
    undelivered: events('undelivered'),
    attempts: { ok: attempts('ok'), status: attempts('status'), timeout: attempts('timeout'), error: attempts('error') },
    depth: metricSum(text, 'rtm_webhook_queue_depth', { tenant }),
    text,
  };
}

/** Sums of the webhook series of `tenant` over `nodes`. */
async function hookMetricsSum(nodes, tenant) {
  const all = await Promise.all(nodes.map((n) => hookMetrics(n, tenant)));
  const sum = (f) => all.reduce((acc, m) => acc + f(m), 0);
  return {
    delivered: sum((m) => m.delivered),
    dropped: sum((m) => m.dropped),
    undelivered: sum((m) => m.undelivered),
    notOk: sum((m) => m.attempts.status + m.attempts.timeout + m.attempts.error),
    depth: sum((m) => m.depth),
  };
}

/**
 * Waits until `host` counts only the sockets still open to it here
 * (`rtm_sockets_connected`, every tenant): every close has been handled.
 */
async function socketsHandled(h, host) {
  let last;
  await waitUntil(
    async () => {
      const open = h.clients.filter((c) => c.host === host && c.connected).length;
      last = { open, gauge: metricSum(await getText(`${host.url}/metrics`), 'rtm_sockets_connected') };
      return last.gauge === open;
    },
    { timeoutMs: BARRIER_TIMEOUT_MS, what: () => `${host.name} to count only the open sockets (${show(last)})` },
  );
}

/** `rtm_presence_reaped_total` of `tenant` on each node. */
async function reapedCounts(nodes, tenant) {
  return Promise.all(nodes.map(async (n) => metricSum(await getText(`${n.url}/metrics`), 'rtm_presence_reaped_total', { tenant })));
}

/**
 * "Nothing more will arrive" barrier for `receiver`: once it resolves, every
 * webhook event any of `nodes` queued before the call has reached the
 * receiver. Requires WEBHOOK_CONCURRENCY=1 (a node's batches arrive in queue
 * order) and that the tenant subscribes to `last`, the final event of a
 * marker's leave (`room_vacated` by default).
 *
 * For each node in turn (with two or more: A, B, ..., A again), a marker
 * socket on it makes a change in a room of its own (joins and leaves it) and
 * the receiver waits for that change's `last` event: the node queued it
 * after anything it queued before, so those have arrived. With several nodes,
 * the marker first joins a relay room where an observer on every node sees
 * its `join`: each node's publications reach the others in order, so every
 * node has by then handled whatever the marker's node published before (a
 * node that wrongly posted another node's changes has queued that copy
 * before its own marker, which comes later in the turn order).
 */
async function hookBarrier(h, receiver, { nodes, namespace, last = 'room_vacated', beatMs, timeoutMs = BARRIER_TIMEOUT_MS }) {
  assert.ok(nodes.length > 0, 'hookBarrier: at least one node');
  const turns = nodes.length > 1 ? [...nodes, nodes[0]] : nodes;
  const relayRoom = uid('hook-barrier-relay');
  const observers = [];
  if (nodes.length > 1) {
    for (const node of nodes) {
      const observer = await h.connect(node, { namespace, label: 'hook-barrier-observer' });
      if (beatMs) h.keepAlive(observer, beatMs);
      await observer.join(relayRoom, uid('observer'));
      observers.push(observer);
    }
  }
  for (const node of turns) {
    const marker = await h.connect(node, { namespace, label: 'hook-barrier-marker' });
    if (beatMs) h.keepAlive(marker, beatMs);
    if (observers.length > 0) {
      const { self } = await marker.join(relayRoom, uid('marker'));
      await Promise.all(observers.map((o) => o.events.waitFor({ type: 'join', connId: self.connId }, timeoutMs)));
    }
    const flushRoom = uid('hook-barrier');
    await marker.join(flushRoom, uid('marker'));
    await marker.ok('presence:leave', { roomId: flushRoom });
    await receiver.waitFor((e) => e.roomId === flushRoom && e.type === last, `the barrier's ${last} in ${flushRoom} from ${node.name}`, timeoutMs);
    marker.close();
  }
}

/**
 * Reaper sentinels (see cluster.test.mjs): registrations in a room of their
 * own that never heartbeat lapse, alternating nodes, until every node's
 * `rtm_presence_reaped_total` has passed `since`. A reaper runs its sweeps one
 * after another, so each node has then finished any sweep that raced the
 * expiry being checked, and queued whatever webhook it made.
 */
async function reapersRanAgain(h, nodes, { namespace, tenant, since }) {
  const room = uid('sentinels');
  let made = 0;
  let counts;
  await waitUntil(
    async () => {
      counts = await reapedCounts(nodes, tenant);
      if (counts.every((n, i) => n > since[i])) return true;
      const sentinel = await h.connect(nodes[made % nodes.length], { namespace, label: 'sentinel' });
      made += 1;
      await sentinel.join(room, uid('sentinel'));
      return false;
    },
    {
      timeoutMs: 90_000,
      intervalMs: FAST_REAPER_MS / 2,
      what: () => `every reaper to expire a sentinel (reaped ${show(counts)}, before ${show(since)}, ${made} sentinels)`,
    },
  );
}

/**
 * The events of `room` as readable lines, names instead of ids (`names`
 * maps user and conn ids to names): `type user conn reason`.
 */
function sequence(events, names) {
  const n = (id) => (id === undefined ? '-' : (names[id] ?? id));
  return events.map((e) => `${e.type} ${n(e.userId)} ${n(e.connId)}${e.reason ? ` ${e.reason}` : ''}`);
}

/** Writes a one-tenant-or-more tenants file and returns its path. */
function hookTenants(prefix, tenants) {
  return tenantsFile(prefix, { tenants });
}

// ---------------------------------------------------------------------------
// 1. two nodes sharing one Redis: one change sequence, exactly once
// ---------------------------------------------------------------------------

describe('webhooks: two nodes sharing one Redis, tenant acme with every event', () => {
  const h = new Harness();
  const SECRET = newSecret('acme');
  const NS = '/acme';
  let receiver;
  let nodeA;
  let nodeB;
  before(async () => {
    receiver = await HookReceiver.start('acme', SECRET);
    // The secret comes from the environment (`env:NAME`), the file only names it.
    const file = hookTenants('rtm-hooks-cluster-', [{ id: 'acme', webhook: { url: receiver.url, secret: 'env:RTM_TEST_HOOK_SECRET' } }]);
    await h.startRedis();
    const env = { ...FAST_ENV, ...ORDERED_DELIVERY, TENANTS_FILE: file, RTM_TEST_HOOK_SECRET: SECRET };
    nodeA = await h.startHost('node-a', { redis: true, env: { ...env, NODE_ID: 'node-a' } });
    nodeB = await h.startHost('node-b', { redis: true, env: { ...env, NODE_ID: 'node-b' } });
  });
  after(async () => {
    await receiver?.close();
    await h.stop();
  });
  afterEach(() => h.closeClients());

  it(
    'join, join on the other node, leave, expire, disconnect: every event exactly once, in order, signed, with its reason',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const [alice, bob, carol] = [uid('alice'), uid('bob'), uid('carol')];
      const names = { [alice]: 'alice', [bob]: 'bob', [carol]: 'carol' };
      const last = (type, pred = () => true) => (e) => e.roomId === room && e.type === type && pred(e);

      const a1 = await h.connect(nodeA, { namespace: NS, label: 'alice' });
      const b1 = await h.connect(nodeB, { namespace: NS, label: 'bob' });
      h.keepAlive(a1, BEAT_MS);
      h.keepAlive(b1, BEAT_MS);

      // 1. alice joins on A: the room opens, then the user, then the member.
      const aliceConn = (await a1.join(room, alice, { state: { who: 'alice' } })).self.connId;
      names[aliceConn] = 'alice@A';
      await receiver.waitFor(last('member_joined', (e) => e.connId === aliceConn), "alice's member_joined");

      // 2. bob joins on B.
      const bobConn = (await b1.join(room, bob)).self.connId;
      names[bobConn] = 'bob@B';
      await receiver.waitFor(last('member_joined', (e) => e.connId === bobConn), "bob's member_joined");

      // 3. bob leaves: reason `leave`, then his user leaves.
      await b1.ok('presence:leave', { roomId: room });
      await receiver.waitFor(last('user_left', (e) => e.userId === bob), "bob's user_left");

      // 4. carol joins on A and never heartbeats: the reaper of some node expires her.
      const reapedBefore = await reapedCounts([nodeA, nodeB], 'acme');
      const c1 = await h.connect(nodeA, { namespace: NS, label: 'carol' });
      const carolConn = (await c1.join(room, carol)).self.connId;
      names[carolConn] = 'carol@A';
      await receiver.waitFor(last('member_joined', (e) => e.connId === carolConn), "carol's member_joined");
      await receiver.waitFor(last('user_left', (e) => e.userId === carol), "carol's user_left after her expiry", EXPIRE_DEADLINE_MS);
      let reaped;
      await waitUntil(
        async () => (reaped = await reapedCounts([nodeA, nodeB], 'acme')).reduce((x, y) => x + y) >= reapedBefore.reduce((x, y) => x + y) + 1,
        { what: () => `carol's removal to be counted (${show(reaped)}, before ${show(reapedBefore)})` },
      );
      // Her socket goes away too: a registration already expired says nothing more.
      c1.close();
      await socketsHandled(h, nodeA);

      // 5. alice's socket goes away: reason `disconnect`, her user leaves, the room empties.
      a1.close();
      await receiver.waitFor(last('room_vacated'), 'room_vacated');

      // Nothing more: both reapers swept again (a racing second expiry is queued by then),
      // then a marker per node in turn.
      await reapersRanAgain(h, [nodeA, nodeB], { namespace: NS, tenant: 'acme', since: reaped });
      await hookBarrier(h, receiver, { nodes: [nodeA, nodeB], namespace: NS, beatMs: BEAT_MS });

      const got = receiver.inRooms([room]);
      assert.deepEqual(
        sequence(got, names),
        [
          'room_occupied alice -',
          'user_joined alice -',
          'member_joined alice alice@A',
          'user_joined bob -',
          'member_joined bob bob@B',
          'member_left bob bob@B leave',
          'user_left bob -',
          'user_joined carol -',
          'member_joined carol carol@A',
          'member_left carol carol@A expire',
          'user_left carol -',
          'member_left alice alice@A disconnect',
          'user_left alice -',
          'room_vacated alice -',
        ],
        'the receiver got exactly this sequence for the room, each change once, in order',
      );
      assertIdsUnique(receiver.events, 'every event id is unique');
      assertWellFormed(receiver, 'acme');
      for (const e of got) assert.equal(e.roomId, room);
      assert.deepEqual(got.find((e) => e.type === 'member_joined' && e.connId === aliceConn).state, { who: 'alice' }, "alice's member_joined carries her state");
      assert.deepEqual(got.find((e) => e.type === 'member_joined' && e.connId === bobConn).state, {}, "bob's member_joined carries his (empty) state");

      // The nodes count what they delivered, and nothing failed.
      let m;
      await waitUntil(
        async () => {
          m = await hookMetricsSum([nodeA, nodeB], 'acme');
          return m.delivered === receiver.events.length && m.depth === 0;
        },
        { timeoutMs: DELIVERY_TIMEOUT_MS, what: () => `delivered to count the ${receiver.events.length} events received (${show(m)})` },
      );
      assert.equal(m.notOk, 0, `no attempt failed: ${show(m)}`);
      assert.equal(m.dropped + m.undelivered, 0, `nothing dropped or undelivered: ${show(m)}`);
    }),
  );
});

// ---------------------------------------------------------------------------
// 1b. two nodes: tabs of one user, and re-joins as another user
// ---------------------------------------------------------------------------

describe('webhooks: two nodes sharing one Redis, one user with several tabs', () => {
  const h = new Harness();
  const SECRET = newSecret('acme');
  const NS = '/acme';
  let receiver;
  let nodeA;
  let nodeB;
  before(async () => {
    receiver = await HookReceiver.start('acme-tabs', SECRET);
    const file = hookTenants('rtm-hooks-tabs-', [{ id: 'acme', webhook: { url: receiver.url, secret: SECRET, events: [] } }]);
    await h.startRedis();
    const env = { ...SLOW_ENV, ...ORDERED_DELIVERY, TENANTS_FILE: file };
    nodeA = await h.startHost('node-a', { redis: true, env: { ...env, NODE_ID: 'node-a' } });
    nodeB = await h.startHost('node-b', { redis: true, env: { ...env, NODE_ID: 'node-b' } });
  });
  after(async () => {
    await receiver?.close();
    await h.stop();
  });
  afterEach(() => h.closeClients());

  it(
    'two tabs on two nodes joining at once and leaving at once: room and user events once per round, member events twice (5 rounds)',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const tab1 = await h.connect(nodeA, { namespace: NS, label: 'tab1' });
      const tab2 = await h.connect(nodeB, { namespace: NS, label: 'tab2' });
      const rounds = [];
      for (let i = 0; i < 5; i += 1) {
        const room = uid(`tabs-${i}`);
        const user = uid('u');
        const [j1, j2] = await Promise.all([tab1.join(room, user), tab2.join(room, user)]);
        const conns = [j1.self.connId, j2.self.connId];
        const inRoom = (type) => receiver.events.filter((e) => e.roomId === room && e.type === type);
        await waitUntil(() => inRoom('member_joined').length >= 2 && inRoom('room_occupied').length >= 1 && inRoom('user_joined').length >= 1, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: () => `round ${i}: both member_joined, room_occupied and user_joined (${show(receiver.inRooms([room]).map(brief))})`,
        });
        await Promise.all([tab1.ok('presence:leave', { roomId: room }), tab2.ok('presence:leave', { roomId: room })]);
        await waitUntil(() => inRoom('member_left').length >= 2 && inRoom('user_left').length >= 1 && inRoom('room_vacated').length >= 1, {
          timeoutMs: DELIVERY_TIMEOUT_MS,
          what: () => `round ${i}: both member_left, user_left and room_vacated (${show(receiver.inRooms([room]).map(brief))})`,
        });
        rounds.push({ room, user, conns });
      }
      await hookBarrier(h, receiver, { nodes: [nodeA, nodeB], namespace: NS });

      assertIdsUnique(receiver.events, 'every event id is unique');
      assertWellFormed(receiver, 'acme');
      for (const [i, { room, user, conns }] of rounds.entries()) {
        const got = receiver.inRooms([room]);
        const ctx = `round ${i}: ${show(got.map(brief))}`;
        const of = (type) => got.filter((e) => e.type === type);
        for (const type of ['room_occupied', 'user_joined', 'user_left', 'room_vacated']) {
          assert.equal(of(type).length, 1, `${type} exactly once (${ctx})`);
          assert.equal(of(type)[0].userId, user, `${type} names the user (${ctx})`);
        }
        assert.deepEqual(of('member_joined').map((e) => e.connId).sort(), [...conns].sort(), `member_joined once per tab (${ctx})`);
        assert.deepEqual(of('member_left').map((e) => e.connId).sort(), [...conns].sort(), `member_left once per tab (${ctx})`);
        for (const e of of('member_left')) assert.equal(e.reason, 'leave', `member_left reason (${ctx})`);
        assert.equal(got.length, 8, `nothing else (${ctx})`);
        // Order within a change, as far as it shows across two nodes: the winning join's
        // room_occupied, user_joined and member_joined come in that order; the last leave's
        // member_left, user_left and room_vacated too.
        const at = (pred) => got.findIndex(pred);
        const occ = at((e) => e.type === 'room_occupied');
        const uj = at((e) => e.type === 'user_joined');
        assert.ok(occ < uj, `room_occupied before user_joined (${ctx})`);
        assert.ok(got.slice(uj + 1).some((e) => e.type === 'member_joined'), `a member_joined follows user_joined (${ctx})`);
        const ul = at((e) => e.type === 'user_left');
        const rv = at((e) => e.type === 'room_vacated');
        assert.ok(ul < rv, `user_left before room_vacated (${ctx})`);
        assert.ok(got.slice(0, ul).some((e) => e.type === 'member_left'), `a member_left precedes user_left (${ctx})`);
        const lastJoin = Math.max(...got.map((e, k) => (e.type === 'member_joined' ? k : -1)));
        assert.ok(lastJoin < at((e) => e.type === 'member_left'), `every join's events come before the leaves' (${ctx})`);
      }
    }),
  );

  it(
    're-joining the room as another user makes only the user events whose counts move, no member events',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('rejoin');
      const [u1, u2] = [uid('u1'), uid('u2')];
      const s = await h.connect(nodeA, { namespace: NS, label: 's' });
      const o = await h.connect(nodeB, { namespace: NS, label: 'o' });
      const inRoom = (pred) => (e) => e.roomId === room && pred(e);

      const sConn = (await s.join(room, u1)).self.connId;
      await receiver.waitFor(inRoom((e) => e.type === 'member_joined' && e.connId === sConn), "s's member_joined");
      // A second tab of u1 on the other node.
      const oConn = (await o.join(room, u1)).self.connId;
      await receiver.waitFor(inRoom((e) => e.type === 'member_joined' && e.connId === oConn), "o's member_joined");
      // s becomes u2: u2 arrives; u1 stays (o still holds it).
      const again = await s.join(room, u2);
      assert.equal(again.self.connId, sConn, 'a re-join keeps the registration');
      await receiver.waitFor(inRoom((e) => e.type === 'user_joined' && e.userId === u2), 'user_joined of u2');
      // s becomes u1 again: u2 is gone; u1 gains a tab, which is no news.
      await s.join(room, u1);
      await receiver.waitFor(inRoom((e) => e.type === 'user_left' && e.userId === u2), 'user_left of u2');
      // o leaves: u1 stays (s), the room stays.
      await o.ok('presence:leave', { roomId: room });
      await receiver.waitFor(inRoom((e) => e.type === 'member_left' && e.connId === oConn), "o's member_left");
      // s leaves: the member, the user, the room.
      await s.ok('presence:leave', { roomId: room });
      await receiver.waitFor(inRoom((e) => e.type === 'room_vacated'), 'room_vacated');
      await hookBarrier(h, receiver, { nodes: [nodeA, nodeB], namespace: NS });

      const names = { [u1]: 'u1', [u2]: 'u2', [sConn]: 's@A', [oConn]: 'o@B' };
      assert.deepEqual(
        sequence(receiver.inRooms([room]), names),
        [
          'room_occupied u1 -',
          'user_joined u1 -',
          'member_joined u1 s@A',
          'member_joined u1 o@B',
          'user_joined u2 -',
          'user_left u2 -',
          'member_left u1 o@B leave',
          'member_left u1 s@A leave',
          'user_left u1 -',
          'room_vacated u1 -',
        ],
        'the receiver got exactly this sequence for the room',
      );
      assertIdsUnique(receiver.events, 'every event id is unique');
      assertWellFormed(receiver, 'acme');
    }),
  );
});

// ---------------------------------------------------------------------------
// 2. delivery: retries with the same body, timeouts, giving up
// ---------------------------------------------------------------------------

describe('webhooks: retries keep the body', () => {
  const h = new Harness();
  const secrets = { flaky: newSecret('flaky'), slow: newSecret('slow'), dead: newSecret('dead') };
  const receivers = {};
  let node;
  let quitter;
  before(async () => {
    receivers.flaky = await HookReceiver.start('flaky', secrets.flaky);
    receivers.flaky.behave((r) => (r.n <= 3 ? 500 : 200));
    receivers.slow = await HookReceiver.start('slow', secrets.slow);
    receivers.slow.behave((r) => (r.n === 1 ? HANG() : 200));
    receivers.dead = await HookReceiver.start('dead', secrets.dead);
    receivers.dead.behave(() => 503);
    const hook = (id) => ({ id, webhook: { url: receivers[id].url, secret: secrets[id] } });
    node = await h.startHost('retrying', {
      env: {
        ...SLOW_ENV,
        TENANTS_FILE: hookTenants('rtm-hooks-retry-', [hook('flaky'), hook('slow')]),
        WEBHOOK_CONCURRENCY: 1,
        WEBHOOK_RETRY_BASE_MS: 50,
        WEBHOOK_TIMEOUT_MS: 2_000,
      },
    });
    quitter = await h.startHost('giving-up', {
      env: {
        ...SLOW_ENV,
        TENANTS_FILE: hookTenants('rtm-hooks-dead-', [hook('dead')]),
        WEBHOOK_CONCURRENCY: 1,
        WEBHOOK_RETRY_BASE_MS: 50,
        WEBHOOK_RETRY_FOR_MS: 500,
      },
    });
  });
  after(async () => {
    await Promise.all(Object.values(receivers).map((r) => r.close()));
    await h.stop();
  });
  afterEach(() => h.closeClients());

  /** Asserts every request of `receiver` carried the same bytes and signature as the first. */
  function assertSameBody(receiver) {
    const [first, ...rest] = receiver.requests;
    for (const r of rest) {
      assert.ok(r.raw.equals(first.raw), `req#${r.n} repeats req#1 byte for byte:\n${first.raw}\n${r.raw}`);
      assert.equal(r.headers['x-rtm-signature'], first.headers['x-rtm-signature'], `req#${r.n} has req#1's signature`);
    }
  }

  it(
    'answered 500 three times, the batch arrives on the 4th attempt with the same bytes and ids; the failures and the delivery are counted',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const recv = receivers.flaky;
      const c = await h.connect(node, { namespace: '/flaky', label: 'flaky' });
      const room = uid('room');
      const user = uid('user');
      const { connId } = (await c.join(room, user)).self;
      await waitUntil(() => recv.requests.some((r) => r.status === 200), {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: () => `a request answered 200 (statuses: ${show(recv.requests.map((r) => r.status))})`,
      });
      assert.deepEqual(recv.requests.map((r) => r.status), [500, 500, 500, 200], 'three failed attempts, then the delivery');
      assertSameBody(recv);
      assertWellFormed(recv, 'flaky');
      const ids = recv.requests.map((r) => r.body.events.map((e) => e.id));
      for (const list of ids) assert.deepEqual(list, ids[0], 'every attempt carries the same event ids');
      assert.deepEqual(
        recv.requests[0].body.events.map((e) => `${e.type} ${e.connId ?? '-'}`),
        ['room_occupied -', 'user_joined -', `member_joined ${connId}`],
        'the batch is the join',
      );

      let m;
      await waitUntil(async () => (m = await hookMetrics(node, 'flaky')).delivered === 3, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: () => `delivered to count 3 (${show(m && { ...m, text: undefined })})`,
      });
      assert.ok(m.attempts.status >= 3, `attempts{result="status"} counts the three 500s: ${show(m.attempts)}`);
      assert.equal(m.attempts.status, 3, `exactly three failed attempts: ${show(m.attempts)}`);
      assert.equal(m.attempts.ok, 1, `one successful attempt: ${show(m.attempts)}`);
      assert.equal(m.undelivered + m.dropped, 0, 'nothing undelivered or dropped');
    }),
  );

  it(
    'an attempt left unanswered past WEBHOOK_TIMEOUT_MS is retried with the same body, and counted as a timeout',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const recv = receivers.slow;
      const c = await h.connect(node, { namespace: '/slow', label: 'slow' });
      await c.join(uid('room'), uid('user'));
      await waitUntil(() => recv.requests.some((r) => r.status === 200), {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: () => `a request answered 200 (states: ${show(recv.requests.map((r) => r.state))})`,
      });
      await waitUntil(() => recv.requests[0].state === 'aborted', {
        what: 'the host to close the unanswered first request',
      });
      assertSameBody(recv);
      assertWellFormed(recv, 'slow');
      let m;
      await waitUntil(async () => (m = await hookMetrics(node, 'slow')).delivered === 3, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: () => `delivered to count 3 (${show(m && { ...m, text: undefined })})`,
      });
      assert.ok(m.attempts.timeout >= 1, `attempts{result="timeout"} counts the held attempt: ${show(m.attempts)}`);
      assert.equal(m.attempts.ok, 1, `one successful attempt: ${show(m.attempts)}`);
    }),
  );

  it(
    'a receiver that always fails is given up after WEBHOOK_RETRY_FOR_MS: the events are counted undelivered',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const recv = receivers.dead;
      const c = await h.connect(quitter, { namespace: '/dead', label: 'dead' });
      await c.join(uid('room'), uid('user'));
      let m;
      await waitUntil(async () => (m = await hookMetrics(quitter, 'dead')).undelivered > 0, {
        timeoutMs: DELIVERY_TIMEOUT_MS,
        what: () => `undelivered to be counted (${show(m && { ...m, text: undefined })})`,
      });
      assert.ok(recv.requests.length >= 1, 'the receiver was tried');
      assertSameBody(recv);
      assertWellFormed(recv, 'dead');
      assert.equal(m.undelivered, recv.requests[0].body.events.length, `undelivered counts the batch's events: ${show(m.attempts)}`);
      assert.equal(m.delivered, 0, 'nothing delivered');
      assert.equal(m.attempts.ok, 0, 'no attempt succeeded');
      assert.equal(m.attempts.status, recv.requests.length, `every attempt the receiver saw is counted as a status failure: ${show(m.attempts)}`);
    }),
  );
});

// ---------------------------------------------------------------------------
// 3. a receiver that never answers
// ---------------------------------------------------------------------------

describe('webhooks: a receiver that never answers', () => {
  const h = new Harness();
  const SECRET = newSecret('hold');
  let hung;
  let prompt;
  let tinyRecv;
  let hungHost;
  let promptHost;
  let tinyHost;
  before(async () => {
    hung = await HookReceiver.start('hung', SECRET, { quiet: true });
    hung.behave(() => hung.untilReleased());
    prompt = await HookReceiver.start('prompt', SECRET, { quiet: true });
    tinyRecv = await HookReceiver.start('tiny-queue', SECRET, { quiet: true });
    tinyRecv.behave(HANG);
    const file = (recv) => hookTenants('rtm-hooks-hold-', [{ id: 'acme', webhook: { url: recv.url, secret: SECRET } }]);
    // Requests stay open for the whole test however slow the machine: the host gives up
    // on none of them (the longest timeout it accepts), so nothing is retried either.
    const env = { ...SLOW_ENV, WEBHOOK_TIMEOUT_MS: 600_000 };
    hungHost = await h.startHost('hung-receiver', { env: { ...env, TENANTS_FILE: file(hung) } });
    promptHost = await h.startHost('prompt-receiver', { env: { ...env, TENANTS_FILE: file(prompt) } });
    tinyHost = await h.startHost('tiny-queue', {
      env: { ...SLOW_ENV, TENANTS_FILE: file(tinyRecv), WEBHOOK_QUEUE: 5, WEBHOOK_CONCURRENCY: 1, WEBHOOK_TIMEOUT_MS: 600_000 },
    });
  });
  after(async () => {
    await Promise.all([hung, prompt, tinyRecv].filter(Boolean).map((r) => r.close()));
    await h.stop();
  });
  afterEach(() => h.closeClients());

  /**
   * `rounds` sequential join + leave of one socket in one room; returns each
   * ack's latency in ms, calling `onAck()` right after every ack.
   */
  async function joinLeaveRounds(client, rounds, onAck = () => {}) {
    const room = uid('timed');
    const user = uid('timed-user');
    const samples = [];
    for (let i = 0; i < rounds; i += 1) {
      let t0 = performance.now();
      await client.join(room, user);
      samples.push(performance.now() - t0);
      onAck();
      t0 = performance.now();
      await client.ok('presence:leave', { roomId: room });
      samples.push(performance.now() - t0);
      onAck();
    }
    return samples;
  }

  const p99 = (samples) => {
    const sorted = [...samples].sort((x, y) => x - y);
    return sorted[Math.ceil(sorted.length * 0.99) - 1];
  };

  it(
    'presence acks do not wait for it: 200 join/leave rounds all acked while it holds every request open; released, it gets every event once',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const ROUNDS = 200;
      // Warm up both hosts, and have the hung receiver hold the host's first request.
      const c = await h.connect(hungHost, { namespace: '/acme', label: 'timed-hung' });
      await joinLeaveRounds(c, 1);
      await waitUntil(() => hung.open >= 1, { timeoutMs: DELIVERY_TIMEOUT_MS, what: 'the hung receiver to hold a request' });
      const control = await h.connect(promptHost, { namespace: '/acme', label: 'timed-prompt' });
      await joinLeaveRounds(control, 1);

      const breaches = [];
      const hungSamples = await joinLeaveRounds(c, ROUNDS, () => {
        if (!(hung.open > 0 && hung.answered === 0)) breaches.push({ open: hung.open, answered: hung.answered });
      });
      const promptSamples = await joinLeaveRounds(control, ROUNDS);
      console.log(
        `measured: presence join/leave ack p99 over ${hungSamples.length} acks: ${p99(hungSamples).toFixed(2)} ms with a receiver holding every request open, ` +
          `${p99(promptSamples).toFixed(2)} ms with a prompt receiver (${promptSamples.length} acks)`,
      );
      // Causal, not timed: every ack came while the host's requests were held and none answered.
      assert.deepEqual(breaches, [], 'every ack arrived while the receiver held requests open and had answered none');
      assert.ok(hung.open > 0 && hung.answered === 0, `still held: open ${hung.open}, answered ${hung.answered}`);
      const held = await hookMetrics(hungHost, 'acme');
      assert.ok(held.depth > 0, `events wait in the queue behind the held requests (rtm_webhook_queue_depth ${held.depth})`);
      assert.equal(held.delivered, 0, 'nothing counted delivered while nothing was answered');
      assert.equal(held.dropped, 0, 'the default queue holds them all');

      // Released, the receiver gets every event of the 201 rounds, each once.
      const expected = (ROUNDS + 1) * 6;
      hung.release();
      let m;
      await waitUntil(async () => (m = await hookMetrics(hungHost, 'acme')).delivered === expected && m.depth === 0, {
        timeoutMs: 60_000,
        what: () => `all ${expected} events delivered (${show(m && { ...m, text: undefined })}, received ${hung.events.length})`,
      });
      assertIdsUnique(hung.events, 'no event twice after the release');
      assert.equal(hung.events.length, expected, 'every event received');
      assertWellFormed(hung, 'acme');
      for (const type of EVENT_TYPES) {
        assert.equal(hung.events.filter((e) => e.type === type).length, ROUNDS + 1, `${type} once per round`);
      }
    }),
  );

  it(
    'with WEBHOOK_QUEUE=5 and WEBHOOK_CONCURRENCY=1 every change is still acked and the overflow is counted as dropped',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await h.connect(tinyHost, { namespace: '/acme', label: 'tiny' });
      await joinLeaveRounds(c, 1);
      await waitUntil(() => tinyRecv.open >= 1, { timeoutMs: DELIVERY_TIMEOUT_MS, what: 'the receiver to hold a request' });
      await joinLeaveRounds(c, 50);
      let m;
      await waitUntil(async () => (m = await hookMetrics(tinyHost, 'acme')).dropped > 0, {
        what: () => `dropped to be counted (${show(m && { ...m, text: undefined })})`,
      });
      assert.ok(m.depth <= 5, `the queue never holds more than WEBHOOK_QUEUE: depth ${m.depth}`);
      assert.equal(m.delivered, 0, 'nothing delivered');
      assert.equal(tinyRecv.requests.length, 1, 'one batch in flight at a time: the held one is the only request');
      assert.equal(tinyRecv.open, 1, 'and it is still held');
      assert.match(m.text, /rtm_webhook_events_total\{[^}]*outcome="dropped"[^}]*\} [1-9]/, 'the dropped series in /metrics');
    }),
  );
});

// ---------------------------------------------------------------------------
// 4. tenants: filters, isolation, secrets
// ---------------------------------------------------------------------------

describe('webhooks: tenant a (room events only), b (everything) and c (none) on one node', () => {
  const h = new Harness();
  const SECRET_A = newSecret('a');
  const SECRET_B = newSecret('b');
  let recvA;
  let recvB;
  let node;
  before(async () => {
    recvA = await HookReceiver.start('a', SECRET_A);
    recvB = await HookReceiver.start('b', SECRET_B);
    const file = hookTenants('rtm-hooks-tenants-', [
      { id: 'a', webhook: { url: recvA.url, secret: SECRET_A, events: ['room_occupied', 'room_vacated'] } },
      { id: 'b', webhook: { url: recvB.url, secret: 'env:RTM_TEST_B_HOOK_SECRET' } },
      { id: 'c' },
    ]);
    node = await h.startHost('tenants', { env: { ...SLOW_ENV, ...ORDERED_DELIVERY, TENANTS_FILE: file, RTM_TEST_B_HOOK_SECRET: SECRET_B } });
  });
  after(async () => {
    await Promise.all([recvA, recvB].filter(Boolean).map((r) => r.close()));
    await h.stop();
  });
  afterEach(() => h.closeClients());

  it(
    "each receiver gets only its tenant's subscribed events, in its tenant's name, signed with its own secret; the same room name opens a room in each",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const shared = uid('shared-room');
      const onlyA = uid('a-room');
      const [ua, ub, uc] = [uid('ua'), uid('ub'), uid('uc')];
      const ca = await h.connect(node, { namespace: '/a', label: 'a' });
      const cb = await h.connect(node, { namespace: '/b', label: 'b' });
      const cc = await h.connect(node, { namespace: '/c', label: 'c' });
      await ca.join(shared, ua);
      await ca.join(onlyA, ua);
      const bConn = (await cb.join(shared, ub)).self.connId;
      const cConn = (await cc.join(shared, uc)).self.connId;
      await ca.ok('presence:leave', {});
      await cb.ok('presence:leave', { roomId: shared });
      await cc.ok('presence:leave', { roomId: shared });
      for (const room of [shared, onlyA]) await recvA.waitFor((e) => e.roomId === room && e.type === 'room_vacated', `a's room_vacated of ${room}`);
      await recvB.waitFor((e) => e.roomId === shared && e.type === 'room_vacated', "b's room_vacated");
      await hookBarrier(h, recvA, { nodes: [node], namespace: '/a' });
      await hookBarrier(h, recvB, { nodes: [node], namespace: '/b' });

      const names = { [ua]: 'ua', [ub]: 'ub', [bConn]: 'b1' };
      const barrierRoom = (e) => e.roomId.startsWith('hook-barrier');
      const aGot = recvA.events.filter((e) => !barrierRoom(e));
      assert.deepEqual(
        aGot.map((e) => `${e.roomId === shared ? 'shared' : e.roomId === onlyA ? 'onlyA' : e.roomId} ${e.type} ${names[e.userId] ?? e.userId}`).sort(),
        ['onlyA room_occupied ua', 'onlyA room_vacated ua', 'shared room_occupied ua', 'shared room_vacated ua'],
        `a gets only its rooms' room_occupied / room_vacated: ${show(aGot.map(brief))}`,
      );
      for (const e of recvA.events) assert.ok(['room_occupied', 'room_vacated'].includes(e.type), `a subscribed to room events only: ${brief(e)}`);
      assert.deepEqual(
        sequence(recvB.events.filter((e) => !barrierRoom(e)), names),
        ['room_occupied ub -', 'user_joined ub -', 'member_joined ub b1', 'member_left ub b1 leave', 'user_left ub -', 'room_vacated ub -'],
        `b gets everything of its own room only: ${show(recvB.events.map(brief))}`,
      );
      for (const e of recvB.events) assert.notEqual(e.roomId, onlyA, "b never hears of a's room");
      const strangers = new Map([
        [recvA, [ub, uc, bConn, cConn]],
        [recvB, [ua, uc, cConn]],
      ]);
      for (const [recv, ids] of strangers) {
        const leak = recv.events.filter((e) => ids.includes(e.userId) || ids.includes(e.connId));
        assert.deepEqual(leak.map(brief), [], `webhook[${recv.name}] hears nothing of another tenant`);
        assert.ok(recv.events.every((e) => e.tenant === recv.name), `webhook[${recv.name}]: every body names tenant ${recv.name}`);
      }
      assertIdsUnique([...recvA.events, ...recvB.events], 'ids are unique across tenants');
      assertWellFormed(recvA, 'a');
      assertWellFormed(recvB, 'b');
      // Each tenant's bodies verify with its own secret and not with the other's.
      for (const r of recvA.requests) {
        assert.equal(signatureOk(SECRET_A, r.raw, r.headers['x-rtm-signature']), true, `a req#${r.n} verifies with a's secret`);
        assert.equal(signatureOk(SECRET_B, r.raw, r.headers['x-rtm-signature']), false, `a req#${r.n} does not verify with b's secret`);
        const forged = `sha256=${createHmac('sha256', SECRET_B).update(r.raw).digest('hex')}`;
        assert.equal(signatureOk(SECRET_A, r.raw, forged), false, `a signature made with b's secret does not verify a's req#${r.n}`);
      }
      for (const r of recvB.requests) {
        assert.equal(signatureOk(SECRET_B, r.raw, r.headers['x-rtm-signature']), true, `b req#${r.n} verifies with b's secret`);
        assert.equal(signatureOk(SECRET_A, r.raw, r.headers['x-rtm-signature']), false, `b req#${r.n} does not verify with a's secret`);
      }
      // Every series is the tenant's own: each counts its receiver's events, c nothing.
      for (const [tenant, recv] of [['a', recvA], ['b', recvB]]) {
        let m;
        await waitUntil(async () => (m = await hookMetrics(node, tenant)).delivered === recv.events.length, {
          what: () => `${tenant}'s delivered to count the ${recv.events.length} events its receiver got (${show(m && { ...m, text: undefined })})`,
        });
      }
      const mc = await hookMetrics(node, 'c');
      assert.equal(mc.delivered + mc.dropped + mc.undelivered + mc.depth, 0, "c's webhook series count nothing");
    }),
  );
});

// ---------------------------------------------------------------------------
// 5. the single-tenant host
// ---------------------------------------------------------------------------

describe('webhooks: the single-tenant host (WEBHOOK_URL, WEBHOOK_SECRET, WEBHOOK_EVENTS)', () => {
  const h = new Harness();
  const SECRET = newSecret('default');
  let recvAll;
  let recvSome;
  let allHost;
  let someHost;
  before(async () => {
    recvAll = await HookReceiver.start('default', SECRET);
    recvSome = await HookReceiver.start('default-filtered', SECRET);
    allHost = await h.startHost('single', { env: { ...SLOW_ENV, ...ORDERED_DELIVERY, WEBHOOK_URL: recvAll.url, WEBHOOK_SECRET: SECRET } });
    someHost = await h.startHost('single-filtered', {
      env: { ...SLOW_ENV, ...ORDERED_DELIVERY, WEBHOOK_URL: recvSome.url, WEBHOOK_SECRET: SECRET, WEBHOOK_EVENTS: 'member_joined,member_left' },
    });
  });
  after(async () => {
    await Promise.all([recvAll, recvSome].filter(Boolean).map((r) => r.close()));
    await h.stop();
  });
  afterEach(() => h.closeClients());

  it(
    "a join and a disconnect on / send the default tenant's events; WEBHOOK_EVENTS keeps only the listed types",
    TEST_TIMEOUT,
    h.wrap(async () => {
      const room = uid('room');
      const user = uid('user');
      const c = await h.connect(allHost, { label: 'single' });
      const conn = (await c.join(room, user, { state: { n: 1 } })).self.connId;
      c.close();
      await recvAll.waitFor((e) => e.roomId === room && e.type === 'room_vacated', 'room_vacated');
      await hookBarrier(h, recvAll, { nodes: [allHost] });
      const names = { [user]: 'user', [conn]: 'c' };
      assert.deepEqual(
        sequence(recvAll.inRooms([room]), names),
        ['room_occupied user -', 'user_joined user -', 'member_joined user c', 'member_left user c disconnect', 'user_left user -', 'room_vacated user -'],
        'the default tenant gets the whole change',
      );
      assert.deepEqual(recvAll.inRooms([room])[2].state, { n: 1 }, 'member_joined carries the state');
      assertWellFormed(recvAll, 'default');
      assertIdsUnique(recvAll.events, 'ids are unique');

      const room2 = uid('room');
      const f = await h.connect(someHost, { label: 'single-filtered' });
      const fConn = (await f.join(room2, user)).self.connId;
      await f.ok('presence:leave', { roomId: room2 });
      await recvSome.waitFor((e) => e.roomId === room2 && e.type === 'member_left', 'member_left');
      await hookBarrier(h, recvSome, { nodes: [someHost], last: 'member_left' });
      assert.deepEqual(
        sequence(recvSome.inRooms([room2]), { [user]: 'user', [fConn]: 'f' }),
        ['member_joined user f', 'member_left user f leave'],
        'only the listed types',
      );
      for (const e of recvSome.events) assert.ok(MEMBER_TYPES.has(e.type), `only member events: ${brief(e)}`);
      assertWellFormed(recvSome, 'default');
    }),
  );

  /** The host refused to start: exit 2, one line `rtm-host: ...` matching `pattern`, never listening. */
  function assertRefused(result, pattern, what) {
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
    assert.equal(result.code, 2, `${what}: exit code 2 (got code ${result.code}, signal ${result.signal}); stderr:\n${result.stderr}`);
    assert.equal(lines.length, 1, `${what}: exactly one stderr line, got ${lines.length}:\n${result.stderr}`);
    assert.match(lines[0], /^rtm-host: \S/, `${what}: the line starts "rtm-host: "`);
    assert.match(lines[0], pattern, `${what}: the line names the problem`);
    assert.doesNotMatch(result.stdout, /listening/, `${what}: the host never listened: ${result.stdout}`);
  }

  it(
    'refuses to start (exit 2, one line naming it) with WEBHOOK_URL but no or an empty WEBHOOK_SECRET, with an unknown event name, and with a tenants-file webhook secret from an unset variable',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const url = recvAll.url;
      assertRefused(await runHostUntilExit({ env: { WEBHOOK_URL: url } }), /WEBHOOK_SECRET/, 'WEBHOOK_URL without WEBHOOK_SECRET');
      assertRefused(await runHostUntilExit({ env: { WEBHOOK_URL: url, WEBHOOK_SECRET: '' } }), /WEBHOOK_SECRET/, 'an empty WEBHOOK_SECRET');
      assertRefused(
        await runHostUntilExit({ env: { WEBHOOK_URL: url, WEBHOOK_SECRET: SECRET, WEBHOOK_EVENTS: 'member_joined,member_moved' } }),
        /member_moved/,
        'an unknown WEBHOOK_EVENTS name',
      );
      const badEvent = hookTenants('rtm-hooks-bad-', [{ id: 'a', webhook: { url, secret: SECRET, events: ['room_occupied', 'room_exploded'] } }]);
      assertRefused(await runHostUntilExit({ env: { TENANTS_FILE: badEvent } }), /room_exploded/, 'an unknown event in a tenants file');
      const unsetSecret = hookTenants('rtm-hooks-bad-', [{ id: 'a', webhook: { url, secret: 'env:RTM_TEST_NEVER_SET_SECRET' } }]);
      assertRefused(await runHostUntilExit({ env: { TENANTS_FILE: unsetSecret } }), /RTM_TEST_NEVER_SET_SECRET/, 'a webhook secret from an unset variable');
    }),
  );
});

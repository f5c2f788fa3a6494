/**
 * Bounds end-to-end: how much one client can make the host hold for it, and
 * whether a slow log output can make the host wait, against spawned
 * `rtm-host` processes.
 *
 * What is pinned:
 * 1. SOCKETIO_MAX_QUEUED_EVENTS: while one request of a socket waits on a
 *    frozen Redis (SIGSTOP), at most that many of its later events wait
 *    behind it. The ones beyond are answered `rate_limited` at once (before
 *    the waiting request is answered), with a message naming the setting;
 *    they do nothing, and they are counted
 *    (`rtm_requests_total{code="rate_limited"}`) and logged (a warning that
 *    names the socket). The queued ones are answered afterwards, in send
 *    order. Every request is answered exactly once (counted on the wire, by
 *    ack id), and the socket stays connected and served.
 * 2. LIMIT_EVENTS_PER_SECOND: events over the rate are answered on arrival,
 *    ahead of an earlier request that is still waiting, instead of in their
 *    turn behind it.
 * 3. API_MAX_IN_FLIGHT: while the calls a node serves wait on a frozen Redis,
 *    one more is answered `503 unavailable` (with `Retry-After`) at once,
 *    before any waiting call is answered; once Redis is back the API serves.
 * 4. LOG_BUFFER_LINES: while nobody reads the host's stderr (the pipe is
 *    full), a flood of debug lines does not stop the host: a flooding socket
 *    and other sockets are answered, a new socket connects, `/healthz`
 *    answers. Once stderr is read again the host reports the lines it
 *    dropped.
 *
 * Nothing sleeps for a fixed time and no speed is asserted. "At once" is an
 * order: the refusals arrive before the answer of a request that cannot be
 * answered while Redis is frozen, and Redis is thawed only once the refusals
 * are in (or that request has been answered anyway, which fails the test).
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  Harness,
  SLOW_ENV,
  apiRequest,
  assertError,
  getText,
  httpStatus,
  metricValue,
  show,
  uid,
  waitUntil,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 180_000 };

/** Ack deadline of a request that may wait behind others on a frozen Redis: far above any REDIS_TIMEOUT_MS chain here. */
const LONG_ACK_MS = 60_000;

/**
 * Redis command timeout of the queue tests: the request stuck on the frozen Redis is
 * answered `unavailable` after this long. Long enough that the burst behind it
 * arrives first on any machine; short enough that a queue of timeouts ends soon.
 */
const REDIS_TIMEOUT_MS = 2_000;

/**
 * Counts the Socket.IO ack packets that reach `client`, by ack id, straight from its
 * Engine.IO packets: socket.io-client hands only an id's first answer to the
 * callback and drops any later one, so a duplicate answer is only visible here.
 */
function countAcks(client) {
  const byId = new Map();
  client.socket.io.engine.on('packet', (packet) => {
    if (packet.type !== 'message' || typeof packet.data !== 'string') return;
    // An ACK on namespace "/" is `3<id>[...]`.
    const m = /^3(\d+)\[/.exec(packet.data);
    if (m) byId.set(Number(m[1]), (byId.get(Number(m[1])) ?? 0) + 1);
  });
  return byId;
}

/**
 * Sends requests on `client` and records the order their acks arrive in:
 * `send(i, event, payload)` resolves with the ack; `arrivals` lists the
 * indices in arrival order.
 */
function orderedSender(client) {
  const arrivals = [];
  const acks = [];
  const send = (i, event, payload) =>
    client.request(event, payload, LONG_ACK_MS).then((ack) => {
      arrivals.push(i);
      acks[i] = ack;
      return ack;
    });
  return { arrivals, acks, send };
}

const codeOf = (ack) => (ack?.ok === true ? 'ok' : ack?.error?.code);

describe('bounds: the per-socket queue behind a frozen Redis', () => {
  const h = new Harness();
  let redis;
  let frozen = false;
  const freeze = () => {
    redis.proc.kill('SIGSTOP');
    frozen = true;
  };
  const thaw = () => {
    if (frozen) redis.proc.kill('SIGCONT');
    frozen = false;
  };

  before(async () => {
    redis = await h.startRedis();
  });
  afterEach(async () => {
    thaw();
    await h.closeClients();
  });
  after(async () => {
    thaw();
    await h.stop();
  });

  it(
    'SOCKETIO_MAX_QUEUED_EVENTS = 8: behind a join stuck on a frozen Redis, 8 joins wait and the 42 beyond are answered rate_limited at once, naming the limit, doing nothing, counted and logged; the 8 are answered afterwards in send order; every request is answered exactly once and the socket is still served',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const MAX = 8;
      const LATER = 50;
      const REFUSED = LATER - MAX;
      const host = await h.startHost('bounds-queue', {
        redis: true,
        env: {
          ...SLOW_ENV,
          SOCKETIO_MAX_QUEUED_EVENTS: MAX,
          REDIS_TIMEOUT_MS,
          // A subscriber that reconnects after the thaw must not close the sockets under test.
          ADAPTER_GAP_POLICY: 'keep',
        },
      });
      const reader = await h.connect(host, { label: 'reader' });
      const c = await h.connect(host, { label: 'queued' });
      const userId = uid('queued-user');
      const acksById = countAcks(c);
      const { arrivals, acks, send } = orderedSender(c);
      // #0 is the socket's first request (so no earlier one can still hold the running
      // place): it waits on the frozen Redis; #1..#50 are sent right behind it.
      const rooms = Array.from({ length: LATER + 1 }, () => uid('behind'));

      freeze();
      const pending = rooms.map((roomId, i) => send(i, 'presence:join', { roomId, userId }));
      const refusedSoFar = () => acks.filter((ack) => codeOf(ack) === 'rate_limited').length;
      await waitUntil(() => refusedSoFar() >= REFUSED || arrivals.includes(0), {
        timeoutMs: LONG_ACK_MS,
        what: () => `${REFUSED} refusals or the stuck join's answer (acks so far: ${show(arrivals)})`,
      });
      thaw();
      await Promise.all(pending);

      const admitted = Array.from({ length: MAX + 1 }, (_, i) => i);
      const refused = Array.from({ length: REFUSED }, (_, k) => MAX + 1 + k);
      for (const i of admitted) {
        assert.ok(
          ['ok', 'unavailable'].includes(codeOf(acks[i])),
          `request #${i} waited in the queue: ok or unavailable, got ${show(acks[i])}`,
        );
      }
      for (const i of refused) {
        const ack = assertError(acks[i], 'rate_limited', `join #${i}, beyond the ${MAX} waiting`);
        assert.match(ack.error.message, /SOCKETIO_MAX_QUEUED_EVENTS/, `the refusal names the limit: ${show(ack)}`);
      }
      const firstAnswer = arrivals.indexOf(0);
      const lateRefusals = refused.filter((i) => arrivals.indexOf(i) > firstAnswer);
      assert.deepEqual(lateRefusals, [], `every refusal arrives before the stuck join's answer; arrival order ${show(arrivals)}`);
      assert.deepEqual(
        arrivals.filter((i) => i <= MAX),
        admitted,
        `the queued requests are answered in send order; arrival order ${show(arrivals)}`,
      );

      // Served after all of it, through the same queue.
      assert.equal(c.connected, true, 'a socket whose queue was full stays connected');
      await c.assertStillServing('after its queue was full');
      // Nothing can still be on its way: the round trip above queued behind every earlier job.
      const twice = [...acksById].filter(([, n]) => n !== 1);
      assert.deepEqual(twice, [], `no ack id answered more than once: ${show(twice)}`);
      assert.equal(acksById.size, LATER + 2, `one ack for each of the ${LATER + 1} requests and the check's snapshot`);

      // A refused join did nothing; a queued one that was answered ok registered.
      for (const [i, roomId] of rooms.entries()) {
        const members = (await reader.snapshot(roomId)).map((m) => m.userId);
        if (refused.includes(i)) {
          assert.deepEqual(members, [], `refused join #${i} must register nothing in ${roomId}`);
        } else if (codeOf(acks[i]) === 'ok') {
          assert.deepEqual(members, [userId], `join #${i} was answered ok: ${roomId} holds its user`);
        }
        // A join answered `unavailable` timed out on the frozen Redis, which may still run
        // it once thawed: either outcome is allowed there.
      }

      const metrics = await getText(`${host.url}/metrics`);
      assert.equal(
        metricValue(metrics, 'rtm_requests_total', { tenant: 'default', op: 'presence:join', code: 'rate_limited' }),
        REFUSED,
        'every refusal is counted in rtm_requests_total{code="rate_limited"}',
      );
      const warnings = () =>
        host.stderr
          .slice(host.mark)
          .split('\n')
          .filter((line) => line.includes("events refused: the socket's queue is full") && line.includes(c.socket.id));
      await waitUntil(() => warnings().length > 0, { what: 'the queue-full warning naming the socket' });
      assert.ok(
        warnings().length < REFUSED,
        `the warning is rate limited, not one line per refusal: ${warnings().length} lines for ${REFUSED} refusals`,
      );
    }),
  );

  it(
    'LIMIT_EVENTS_PER_SECOND = 1, burst 3: events over the rate are answered rate_limited on arrival, ahead of an earlier join stuck on a frozen Redis, not in their turn behind it',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const LATER = 10;
      const host = await h.startHost('bounds-rate', {
        redis: true,
        env: {
          ...SLOW_ENV,
          LIMIT_EVENTS_PER_SECOND: 1,
          LIMIT_EVENTS_BURST: 3,
          REDIS_TIMEOUT_MS,
          ADAPTER_GAP_POLICY: 'keep',
        },
      });
      const c = await h.connect(host, { label: 'over-rate' });
      const userId = uid('rate-user');
      const { arrivals, acks, send } = orderedSender(c);

      freeze();
      // #0, the socket's first request, waits on the frozen Redis; #1..#10 follow at once.
      const pending = Array.from({ length: LATER + 1 }, (_, i) => send(i, 'presence:join', { roomId: uid('over'), userId }));
      // Everything that was admitted times out on the frozen Redis (`unavailable`), so
      // the whole burst is answered without thawing.
      await Promise.all(pending);
      thaw();

      assert.ok(['ok', 'unavailable'].includes(codeOf(acks[0])), `the stuck join: ${show(acks[0])}`);
      const limited = [];
      for (const [i, ack] of acks.entries()) {
        if (codeOf(ack) !== 'rate_limited') continue;
        assert.match(ack.error.message, /events_per_second/, `an over-rate refusal says why: ${show(ack)}`);
        limited.push(i);
      }
      // A bucket of 3 cannot serve 11 events sent at once.
      assert.ok(limited.length >= 1, `some of ${LATER + 1} events beyond a burst of 3 are rate_limited: ${show(acks)}`);
      const firstAnswer = arrivals.indexOf(0);
      const late = limited.filter((i) => arrivals.indexOf(i) > firstAnswer);
      assert.deepEqual(late, [], `every over-rate refusal arrives before the stuck join's answer; arrival order ${show(arrivals)}`);
      const served = arrivals.filter((i) => !limited.includes(i));
      assert.deepEqual(served, [...served].sort((a, b) => a - b), `the admitted requests are answered in send order: ${show(arrivals)}`);
      assert.equal(c.connected, true, 'a rate-limited socket stays connected');
    }),
  );

  it(
    'API_MAX_IN_FLIGHT = 4: with 4 Server API calls waiting on a frozen Redis, 16 more are answered 503 unavailable with Retry-After at once, before any waiting one; after the thaw the API serves',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const MAX = 4;
      const MORE = 16;
      const KEY = `key-${uid('api')}`;
      const host = await h.startHost('bounds-api', {
        redis: true,
        env: { ...SLOW_ENV, API_KEY: KEY, API_MAX_IN_FLIGHT: MAX, REDIS_TIMEOUT_MS, ADAPTER_GAP_POLICY: 'keep' },
      });
      const room = uid('api-room');
      const stats = () => apiRequest(host, `/api/v1/default/rooms/${room}/stats`, { method: 'GET', key: KEY, timeoutMs: LONG_ACK_MS });
      assert.equal((await stats()).status, 200, 'stats answer with Redis up');

      freeze();
      // All at once: the node admits exactly MAX (their Redis reads wait on the frozen
      // Redis until REDIS_TIMEOUT_MS) and refuses the rest on arrival.
      const order = [];
      const calls = Array.from({ length: MAX + MORE }, (_, i) => stats().then((res) => (order.push(i), res)));
      const answers = await Promise.all(calls);
      thaw();
      const refusedAt = (res) => res.status === 503 && /API_MAX_IN_FLIGHT/.test(res.body?.error?.message ?? '');
      const refused = answers.map((res, i) => (refusedAt(res) ? i : -1)).filter((i) => i >= 0);
      const held = answers.map((res, i) => (refusedAt(res) ? -1 : i)).filter((i) => i >= 0);
      assert.equal(refused.length, MORE, `exactly ${MORE} of ${MAX + MORE} calls refused: ${show(answers.map((r) => [r.status, r.body?.error?.message]))}`);
      for (const i of refused) {
        assertError(answers[i].body, 'unavailable', 'a call beyond API_MAX_IN_FLIGHT');
        assert.equal(answers[i].headers.get('retry-after'), '1', 'a refusal says when to retry');
      }
      for (const i of held) {
        assert.ok([200, 503].includes(answers[i].status), `a held call is answered: ${answers[i].status} ${answers[i].text}`);
      }
      const lastRefusal = Math.max(...refused.map((i) => order.indexOf(i)));
      const firstHeld = Math.min(...held.map((i) => order.indexOf(i)));
      assert.ok(lastRefusal < firstHeld, `every refusal arrived before any held call was answered: ${show(order)}`);
      await waitUntil(async () => (await stats()).status === 200, { what: 'the API to serve again after the thaw' });
    }),
  );
});

describe('bounds: a host whose stderr nobody reads', () => {
  const h = new Harness();
  after(() => h.stop());
  afterEach(() => h.closeClients());

  it(
    'LOG_BUFFER_LINES = 64, RUST_LOG=debug: with its stderr pipe full, the host answers every request of a flooding socket and of another, connects a new socket and serves /healthz; read again, it reports the dropped lines',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const host = await h.startHost('bounds-logs', {
        env: { ...SLOW_ENV, RUST_LOG: 'debug', LOG_BUFFER_LINES: 64, PRESENCE_MAX_ID_LEN: 1024 },
      });
      const other = await h.connect(host, { label: 'other' });
      const flooder = await h.connect(host, { label: 'flooder' });
      // Each heartbeat for a room the socket is not in is refused `not_joined` with a
      // debug line naming the room: over 1 KB of log per request.
      const longRoom = () => `${uid('r')}-${'x'.repeat(1_000)}`;
      const ROUNDS = 40;
      const WINDOW = 50;
      const flood = async (what) => {
        for (let r = 0; r < ROUNDS; r += 1) {
          const acks = await Promise.all(
            Array.from({ length: WINDOW }, () => flooder.request('presence:heartbeat', { roomId: longRoom() })),
          );
          for (const ack of acks) assertError(ack, 'not_joined', `${what}, round ${r + 1}`);
        }
      };

      const stderr = host.proc.stderr;
      stderr.pause();
      try {
        await flood('flood while stderr is not read');
        // Precondition: this process stopped reading the pipe (a paused stream reads until
        // its buffer is full, then stops), so the host's writes now fill the pipe.
        await waitUntil(() => stderr.readableLength >= stderr.readableHighWaterMark, {
          timeoutMs: 30_000,
          what: () => `the host's unread stderr to fill this process' buffer (${stderr.readableLength} of ${stderr.readableHighWaterMark} B)`,
        });
        // The pipe is full now: the host must still answer everyone.
        await flood('flood with the stderr pipe full');
        for (let i = 0; i < 20; i += 1) await other.snapshot(uid('other'));
        const late = await h.connect(host, { label: 'late' });
        await late.assertStillServing('connected while the log pipe was full');
        assert.equal(await httpStatus(`${host.url}/healthz`), 200, '/healthz while the log pipe is full');
        assert.equal(flooder.connected, true);
        assert.equal(other.connected, true);
      } finally {
        stderr.resume();
      }
      await waitUntil(() => host.stderr.includes('log lines dropped'), {
        timeoutMs: 30_000,
        what: 'the host to report the log lines it dropped once stderr is read again',
      });
      await other.assertStillServing('after the log pipe drained');
    }),
  );
});

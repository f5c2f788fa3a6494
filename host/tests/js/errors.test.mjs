/**
 * Error contract end-to-end: every error code of PROTOCOL.md reachable
 * without plugins or auth (`invalid_payload`, `payload_too_large`,
 * `not_joined`, `stale_epoch`, `unknown_event`).
 *
 * Three promises are checked after every refusal, because they are what a
 * client relies on when it gets input wrong:
 * - the ack has the stable shape `{ ok: false, error: { code, message } }`;
 * - the socket is not punished: still connected, and the next valid
 *   request succeeds;
 * - on Redis, a refused registration leaves no key behind (no
 *   `prs:conn:*`, no index entry mentioning the room or user).
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, NO_PAYLOAD, show, uid, waitUntil } from './support.mjs';

const STORES = ['memory', 'redis'];
const TRANSPORTS = ['websocket', 'polling'];
const TEST_TIMEOUT = { timeout: 60_000 };
const MAX_STATE_BYTES = 4_096; // the default of PRESENCE_MAX_STATE_BYTES

/** The protocol's id charset, used to build a 128-char id that must be accepted. */
const ID_CHARSET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@-';

/** `{"s":"xxx…"}` whose compact JSON is exactly `bytes` bytes long. */
function stateOfBytes(bytes) {
  const overhead = JSON.stringify({ s: '' }).length;
  const state = { s: 'x'.repeat(bytes - overhead) };
  assert.equal(Buffer.byteLength(JSON.stringify(state)), bytes);
  return state;
}

/**
 * Sends every `[label, event, payload]` case and returns the ones whose ack
 * is not `{ ok: false, error: { code, message } }` with `code`, or after
 * which the socket was disconnected. Collecting instead of failing on the
 * first mismatch makes one run report every deviation at once.
 */
async function refusalMismatches(client, cases, code) {
  const mismatches = [];
  for (const [label, event, payload] of cases) {
    let ack;
    try {
      ack = await client.request(event, payload);
    } catch (err) {
      mismatches.push(`${event} ${label}: ${err.message}`);
      continue;
    }
    const shapeOk = ack?.ok === false && ack.error?.code === code && typeof ack.error.message === 'string';
    if (!shapeOk) mismatches.push(`${event} ${label}: expected ${code}, got ${show(ack)}`);
    if (!client.connected) mismatches.push(`${event} ${label}: socket disconnected`);
  }
  return mismatches;
}

for (const store of STORES) {
  const redis = store === 'redis';

  describe(`errors on the ${store} store`, () => {
    const h = new Harness();
    let host;

    before(async () => {
      if (redis) await h.startRedis();
      host = await h.startHost(`${store}-errors`, { redis, env: { PRESENCE_TTL_MS: 30_000 } });
    });
    after(() => h.stop());
    afterEach(() => h.closeClients());

    /**
     * On Redis: waits until no registration is stored (the previous test's
     * sockets were closed in afterEach and their leaves may still be in
     * flight), so "no prs:conn:* key" after a refusal means something.
     */
    async function quietStore() {
      if (!redis) return;
      await waitUntil(async () => (await h.redis.scan('prs:conn:*')).length === 0, {
        what: 'no prs:conn:* keys left from earlier tests',
      });
    }

    /** On Redis: the refused requests wrote nothing at all. */
    async function assertNothingStored(tokens, context) {
      if (!redis) return;
      assert.deepEqual(await h.redis.scan('prs:conn:*'), [], `${context}: no registration may be stored`);
      await h.redis.assertNoTrace(tokens, 'prs:*', context);
    }

    for (const transport of TRANSPORTS) {
      describe(`over ${transport}`, () => {
        const connect = (label) => h.connect(host, { transport, label });

        it(
          'presence:join with a malformed payload is refused with invalid_payload and stores nothing',
          TEST_TIMEOUT,
          h.wrap(async () => {
            await quietStore();
            const c = await connect('C');
            // Every id built here contains `tok`, so one trace check covers all of them.
            const tok = uid('tok');
            const room = `${tok}-room`;
            const user = `${tok}-user`;
            const cases = [
              ['payload is a string', `${tok}`],
              ['payload is a number', 42],
              ['payload is an array', [room, user]],
              ['payload is null', null],
              ['payload is a boolean', true],
              ['no payload at all', NO_PAYLOAD],
              ['roomId missing', { userId: user }],
              ['roomId empty', { roomId: '', userId: user }],
              ['roomId 129 chars', { roomId: tok + 'r'.repeat(129 - tok.length), userId: user }],
              ['roomId with a space', { roomId: `${tok} x`, userId: user }],
              ['roomId non-ASCII', { roomId: `${tok}ä`, userId: user }],
              ['roomId with a slash', { roomId: `${tok}/x`, userId: user }],
              ['roomId a number', { roomId: 42, userId: user }],
              ['roomId null', { roomId: null, userId: user }],
              ['userId missing', { roomId: room }],
              ['userId empty', { roomId: room, userId: '' }],
              ['userId 129 chars', { roomId: room, userId: tok + 'u'.repeat(129 - tok.length) }],
              ['userId with a space', { roomId: room, userId: `${tok} y` }],
              ['userId non-ASCII', { roomId: room, userId: `${tok}ü` }],
              ['userId an object', { roomId: room, userId: { id: tok } }],
              ['state an array', { roomId: room, userId: user, state: [tok] }],
              ['state a string', { roomId: room, userId: user, state: tok }],
              ['state a number', { roomId: room, userId: user, state: 5 }],
              ['state a boolean', { roomId: room, userId: user, state: true }],
              ['resume a string', { roomId: room, userId: user, resume: tok }],
              ['resume.connId a number', { roomId: room, userId: user, resume: { connId: 5, epoch: 1 } }],
              ['resume.epoch a string', { roomId: room, userId: user, resume: { connId: tok, epoch: 'one' } }],
              ['resume.epoch not an integer', { roomId: room, userId: user, resume: { connId: tok, epoch: 1.5 } }],
            ];
            const mismatches = await refusalMismatches(
              c,
              cases.map(([label, payload]) => [label, 'presence:join', payload]),
              'invalid_payload',
            );
            assert.deepEqual(mismatches, [], `malformed joins not refused as invalid_payload:\n${mismatches.join('\n')}`);
            await c.assertStillServing('after the refused joins');
            assert.deepEqual(await c.snapshot(room), [], 'nothing registered in the room');
            await assertNothingStored([tok], 'after refused joins');
            const hb = await c.ok('presence:heartbeat', {});
            assert.deepEqual(hb.epochs, {}, `the socket has no registration: ${show(hb)}`);
          }),
        );

        it(
          'the limits are inclusive: 128-char ids over the whole charset, a state of exactly the max bytes, and state null (absent)',
          TEST_TIMEOUT,
          h.wrap(async () => {
            const c = await connect('C');
            const longRoom = (ID_CHARSET + ID_CHARSET).slice(0, 128);
            const longUser = (ID_CHARSET.split('').reverse().join('') + ID_CHARSET).slice(0, 128);
            const roomAck = await c.join(longRoom, longUser, { state: stateOfBytes(MAX_STATE_BYTES) });
            assert.equal(roomAck.self.epoch, 1);
            const me = roomAck.snapshot.find((m) => m.connId === roomAck.self.connId);
            assert.equal(me?.userId, longUser, `128-char userId stored verbatim: ${show(me?.userId)}`);
            assert.deepEqual(me.state, stateOfBytes(MAX_STATE_BYTES));

            const nullAck = await c.join(uid('room'), uid('user'), { state: null });
            const nullMe = nullAck.snapshot.find((m) => m.connId === nullAck.self.connId);
            assert.deepEqual(nullMe?.state, {}, `state null is treated as absent: ${show(nullMe)}`);
          }),
        );

        it(
          'heartbeat, leave and snapshot with a malformed payload are refused with invalid_payload and change nothing',
          TEST_TIMEOUT,
          h.wrap(async () => {
            const room = uid('room');
            const c = await connect('C');
            const o = await connect('O');
            await o.join(room, uid('observer'));
            const { self } = await c.join(room, uid('user'), { state: { v: 1 } });
            const cases = [
              ['presence:heartbeat', 'a string', 'hello'],
              ['presence:heartbeat', 'a number', 7],
              ['presence:heartbeat', 'roomId empty', { roomId: '' }],
              ['presence:heartbeat', 'roomId bad charset', { roomId: 'a b' }],
              ['presence:heartbeat', 'roomId a number', { roomId: 5 }],
              ['presence:heartbeat', 'patchState an array', { roomId: room, patchState: [1], epoch: self.epoch }],
              ['presence:heartbeat', 'patchState a string', { roomId: room, patchState: 'v=2', epoch: self.epoch }],
              ['presence:heartbeat', 'patchState a number', { roomId: room, patchState: 2, epoch: self.epoch }],
              ['presence:heartbeat', 'epoch not an integer', { roomId: room, patchState: { v: 2 }, epoch: 1.5 }],
              ['presence:heartbeat', 'epoch a string', { roomId: room, patchState: { v: 2 }, epoch: '1' }],
              ['presence:leave', 'a string', 'everything'],
              ['presence:leave', 'a number', 3],
              ['presence:leave', 'roomId empty', { roomId: '' }],
              ['presence:leave', 'roomId bad charset', { roomId: 'ä' }],
              ['presence:leave', 'roomId a number', { roomId: 9 }],
              ['presence:snapshot', 'no payload', NO_PAYLOAD],
              ['presence:snapshot', 'roomId missing', {}],
              ['presence:snapshot', 'roomId empty', { roomId: '' }],
              ['presence:snapshot', 'roomId 129 chars', { roomId: 'x'.repeat(129) }],
              ['presence:snapshot', 'a string', room],
              ['presence:snapshot', 'roomId a number', { roomId: 3 }],
            ];
            const mismatches = await refusalMismatches(
              c,
              cases.map(([event, label, payload]) => [label, event, payload]),
              'invalid_payload',
            );
            assert.deepEqual(mismatches, [], `malformed requests not refused as invalid_payload:\n${mismatches.join('\n')}`);
            await c.assertStillServing('after the refused requests');
            const m = (await o.snapshot(room)).find((x) => x.connId === self.connId);
            assert.deepEqual(m?.state, { v: 1 }, `state untouched: ${show(m)}`);
            assert.equal(m.epoch, self.epoch, 'epoch untouched');
            await h.barrier(room, { nodes: [host], observers: [o], after: [c] });
            o.events.assertCount((e) => e.connId === self.connId && e.type !== 'join', 0, 'no update or leave from refused requests');
            await c.ok('presence:heartbeat', { roomId: room, patchState: { v: 2 }, epoch: self.epoch });
          }),
        );

        it(
          'patchState without roomId is invalid_payload unless the socket has exactly one registration (two, or none)',
          TEST_TIMEOUT,
          h.wrap(async () => {
            const [r1, r2] = [uid('room'), uid('room')];
            const user = uid('user');
            const c = await connect('C');
            const j1 = await c.join(r1, user, { state: { a: 0 } });
            const j2 = await c.join(r2, user, { state: { a: 0 } });
            const none = await connect('None');
            const mismatches = [
              ...(await refusalMismatches(c, [['with two registrations', 'presence:heartbeat', { patchState: { a: 1 }, epoch: 1 }]], 'invalid_payload')),
              ...(await refusalMismatches(none, [['with no registration', 'presence:heartbeat', { patchState: { a: 1 }, epoch: 1 }]], 'invalid_payload')),
            ];
            await c.assertStillServing('with two registrations');
            await none.assertStillServing('with no registration');
            for (const [room, j] of [
              [r1, j1],
              [r2, j2],
            ]) {
              const m = (await c.snapshot(room)).find((x) => x.connId === j.self.connId);
              assert.deepEqual(m?.state, { a: 0 }, `${room} untouched: ${show(m)}`);
              assert.equal(m.epoch, 1);
            }
            assert.deepEqual(mismatches, [], `patchState without roomId:\n${mismatches.join('\n')}`);
          }),
        );

        it(
          'payload_too_large: a join state above the limit (in UTF-8 bytes) stores nothing, and a patch whose merge exceeds it changes nothing',
          TEST_TIMEOUT,
          h.wrap(async () => {
            await quietStore();
            const c = await connect('C');
            const tok = uid('big');
            const room = `${tok}-room`;
            const user = `${tok}-user`;

            await c.fails('presence:join', { roomId: room, userId: user, state: stateOfBytes(MAX_STATE_BYTES + 1) }, 'payload_too_large');
            // 2 108 characters but 4 224 bytes: the limit counts bytes.
            const accents = { s: 'é'.repeat(2_100), t: tok };
            assert.ok(JSON.stringify(accents).length < MAX_STATE_BYTES);
            assert.ok(Buffer.byteLength(JSON.stringify(accents)) > MAX_STATE_BYTES);
            await c.fails('presence:join', { roomId: room, userId: user, state: accents }, 'payload_too_large');
            await c.fails('presence:join', { roomId: room, userId: user, state: { blob: 'z'.repeat(20_000) } }, 'payload_too_large');
            await c.assertStillServing('after oversized joins');
            assert.deepEqual(await c.snapshot(room), [], 'no member registered');
            await assertNothingStored([tok], 'after oversized joins');

            const o = await connect('O');
            await o.join(room, uid('observer'));
            const { self } = await c.join(room, user, { state: { a: 'x'.repeat(3_000) } });
            // 3 000 + 1 200 bytes of values: each part fits, the merge does not.
            await c.fails(
              'presence:heartbeat',
              { roomId: room, patchState: { b: 'y'.repeat(1_200) }, epoch: self.epoch },
              'payload_too_large',
            );
            await c.fails(
              'presence:heartbeat',
              { roomId: room, patchState: { a: 'w'.repeat(MAX_STATE_BYTES + 10) }, epoch: self.epoch },
              'payload_too_large',
            );
            await c.assertStillServing('after oversized patches');
            const m = (await o.snapshot(room)).find((x) => x.connId === self.connId);
            assert.deepEqual(m?.state, { a: 'x'.repeat(3_000) }, 'state unchanged');
            assert.equal(m.epoch, self.epoch, 'epoch unchanged');
            await h.barrier(room, { nodes: [host], observers: [o], after: [c] });
            o.events.assertCount({ type: 'update', connId: self.connId }, 0, 'no update');

            // A patch that replaces the big key keeps the merge under the limit and is accepted.
            const ok = await c.ok('presence:heartbeat', { roomId: room, patchState: { a: 'small', b: 'y'.repeat(1_200) }, epoch: self.epoch });
            assert.equal(ok.epoch, self.epoch + 1);
          }),
        );

        it(
          "not_joined: heartbeat, patch and leave for a room this socket has not joined, even when another socket has",
          TEST_TIMEOUT,
          h.wrap(async () => {
            await quietStore();
            const c = await connect('C');
            const tok = uid('nj');
            await c.fails('presence:heartbeat', { roomId: `${tok}-never` }, 'not_joined');
            await c.fails('presence:heartbeat', { roomId: `${tok}-never`, patchState: { a: 1 }, epoch: 1 }, 'not_joined');
            await c.fails('presence:leave', { roomId: `${tok}-never` }, 'not_joined');
            await c.assertStillServing('after not_joined');
            await assertNothingStored([tok], 'after not_joined on an unknown room');

            const room = uid('room');
            const other = await connect('Other');
            const o = await connect('O');
            await o.join(room, uid('observer'));
            const { self } = await other.join(room, uid('user'), { state: { mine: true } });
            await c.fails('presence:heartbeat', { roomId: room }, 'not_joined');
            await c.fails('presence:heartbeat', { roomId: room, patchState: { mine: false }, epoch: self.epoch }, 'not_joined');
            await c.fails('presence:leave', { roomId: room }, 'not_joined');
            await c.assertStillServing("after not_joined on another socket's room");
            const m = (await o.snapshot(room)).find((x) => x.connId === self.connId);
            assert.deepEqual(m?.state, { mine: true }, `the other socket's registration is untouched: ${show(m)}`);
            await h.barrier(room, { nodes: [host], observers: [o], after: [c, other] });
            o.events.assertCount((e) => e.connId === self.connId && e.type !== 'join', 0, 'no update or leave for the other socket');
          }),
        );

        it(
          'stale_epoch: a patch with an older epoch carries the current epoch and keeps the socket usable',
          TEST_TIMEOUT,
          h.wrap(async () => {
            const room = uid('room');
            const c = await connect('C');
            const { self } = await c.join(room, uid('user'), { state: { n: 0 } });
            await c.ok('presence:heartbeat', { roomId: room, patchState: { n: 1 }, epoch: self.epoch });
            await c.ok('presence:heartbeat', { roomId: room, patchState: { n: 2 }, epoch: self.epoch + 1 });
            const stale = await c.fails('presence:heartbeat', { roomId: room, patchState: { n: -1 }, epoch: self.epoch }, 'stale_epoch');
            assert.equal(stale.epoch, self.epoch + 2, `current epoch in the ack: ${show(stale)}`);
            await c.assertStillServing('after stale_epoch');
            const m = (await c.snapshot(room)).find((x) => x.connId === self.connId);
            assert.deepEqual(m?.state, { n: 2 });
            const retry = await c.ok('presence:heartbeat', { roomId: room, patchState: { n: 3 }, epoch: stale.epoch });
            assert.equal(retry.epoch, stale.epoch + 1, 'retrying with the epoch from the ack succeeds');
          }),
        );

        it(
          'unknown_event: custom events without a loaded plugin, whatever their payload',
          TEST_TIMEOUT,
          h.wrap(async () => {
            const c = await connect('C');
            const room = uid('room');
            await c.join(room, uid('user'));
            const cases = [
              ['chat:message', { roomId: room, text: 'hello' }],
              ['chat:history', { roomId: room }],
              ['foo:bar', {}],
              ['foo', NO_PAYLOAD],
              ['x:y', 'a string'],
              ['x:y', 12],
              ['presence:nonsense', { roomId: room }],
            ];
            for (const [event, payload] of cases) {
              await c.fails(event, payload, 'unknown_event');
              assert.equal(c.connected, true, `${event}: socket must stay connected`);
            }
            await c.assertStillServing('after unknown events');
            await c.ok('presence:heartbeat', { roomId: room });
          }),
        );
      });
    }
  });
}

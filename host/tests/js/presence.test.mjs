/**
 * Presence end-to-end: every case of PROTOCOL.md "Presence", driven by the
 * official socket.io-client against a spawned rtm-host.
 *
 * The whole matrix runs twice per store (in-memory and Redis) and per
 * transport (WebSocket and HTTP long-polling), because the two stores are
 * separate implementations of one contract and the two transports take
 * different paths through Engine.IO (acks and broadcasts over polling are
 * where Socket.IO servers usually break first).
 *
 * Every test uses fresh room and user ids, so tests sharing a host cannot
 * see each other's events.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  Harness,
  NO_PAYLOAD,
  assertOk,
  httpStatus,
  show,
  uid,
  waitUntil,
} from './support.mjs';

const STORES = ['memory', 'redis'];
const TRANSPORTS = ['websocket', 'polling'];

/** Long TTL: nothing may expire by accident while a test runs without heartbeats. */
const TTL_MS = 30_000;
/** Resume grace of the "grace" host; long enough that a resume always lands inside it. */
const GRACE_MS = 5_000;
/** Per-test bound: generous, but a hang still fails instead of stalling the run. */
const TEST_TIMEOUT = { timeout: 60_000 };

const BASE_ENV = {
  PRESENCE_TTL_MS: TTL_MS,
  PRESENCE_REAPER_INTERVAL_MS: 500,
  PRESENCE_REAPER_LOOKBACK_MS: TTL_MS,
};


/** The snapshot entry for `connId`, asserting there is exactly one. */
function member(snapshot, connId, context = '') {
  const entries = snapshot.filter((m) => m.connId === connId);
  assert.equal(entries.length, 1, `${context}: expected exactly one snapshot entry for ${connId}, got ${show(snapshot)}`);
  return entries[0];
}

/** Asserts `connId` is absent from the snapshot. */
function absent(snapshot, connId, context = '') {
  assert.equal(
    snapshot.some((m) => m.connId === connId),
    false,
    `${context}: ${connId} must not be in the snapshot, got ${show(snapshot)}`,
  );
}

/** Asserts the documented shape of a `presence:event`. */
function assertEventShape(event, { type, roomId, userId, connId }) {
  assert.equal(event.type, type, `event type in ${show(event)}`);
  assert.equal(event.roomId, roomId, `event roomId in ${show(event)}`);
  assert.equal(event.userId, userId, `event userId in ${show(event)}`);
  assert.equal(event.connId, connId, `event connId in ${show(event)}`);
  assert.equal(typeof event.ts, 'number', `event ts must be a number in ${show(event)}`);
  assert.ok(Math.abs(event.ts - Date.now()) < 60_000, `event ts must be a ms timestamp near now in ${show(event)}`);
}

/**
 * The epoch of `roomId` from the ack of a heartbeat sent WITHOUT `roomId`:
 * PROTOCOL.md says that ack is `{ ok, epochs: { <roomId>: n } }`, patch or
 * no patch, so a lone `epoch` (the one-room shape) is a protocol error here.
 */
function allRoomsEpoch(ack, roomId, context = 'heartbeat without roomId') {
  assert.equal(ack.epoch, undefined, `${context}: the all-rooms ack carries epochs, not epoch: ${show(ack)}`);
  assert.equal(typeof ack.epochs, 'object', `${context}: ack must carry epochs: ${show(ack)}`);
  assert.notEqual(ack.epochs, null, `${context}: epochs must not be null: ${show(ack)}`);
  assert.equal(typeof ack.epochs[roomId], 'number', `${context}: epochs.${roomId} must be a number: ${show(ack)}`);
  return ack.epochs[roomId];
}

/** Events that would betray a resume: anything announcing the member left or arrived anew. */
const churn = (connId) => (e) => e.connId === connId && ['join', 'leave', 'expire'].includes(e.type);

for (const store of STORES) {
  const redis = store === 'redis';

  describe(`presence on the ${store} store`, () => {
    /** Grace 0: disconnect removes at once. */
    const plainH = new Harness();
    /** PRESENCE_RESUME_GRACE_MS > 0: its own Redis, so the two hosts do not form a cluster. */
    const graceH = new Harness();
    let plain;
    let grace;

    before(async () => {
      if (redis) await Promise.all([plainH.startRedis(), graceH.startRedis()]);
      plain = await plainH.startHost(`${store}-plain`, { redis, env: BASE_ENV });
      grace = await graceH.startHost(`${store}-grace`, {
        redis,
        env: { ...BASE_ENV, PRESENCE_RESUME_GRACE_MS: GRACE_MS },
      });
    });
    after(async () => {
      await Promise.all([plainH.stop(), graceH.stop()]);
    });
    afterEach(async () => {
      await Promise.all([plainH.closeClients(), graceH.closeClients()]);
    });

    it(
      'GET /healthz and /readyz answer 200',
      TEST_TIMEOUT,
      plainH.wrap(async () => {
        assert.equal(await httpStatus(`${plain.url}/healthz`), 200);
        assert.equal(await httpStatus(`${plain.url}/readyz`), 200);
      }),
    );

    for (const transport of TRANSPORTS) {
      describe(`over ${transport}`, () => {
        const connectPlain = (label) => plainH.connect(plain, { transport, label });
        const connectGrace = (label) => graceH.connect(grace, { transport, label });

        it(
          'a request emitted the moment the socket connects is always answered',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            // Clients flush buffered emits as soon as CONNECT arrives, so a server that
            // registers its event handlers only after sending CONNECT drops some of them
            // silently. The window is small: many short cycles make it show.
            const CYCLES = 100;
            const lost = [];
            for (let i = 0; i < CYCLES && lost.length < 3; i += 1) {
              const c = await connectPlain(`quick${i}`);
              try {
                assertOk(await c.request('presence:snapshot', { roomId: uid('room') }, 2_000), `cycle ${i}`);
              } catch (err) {
                lost.push(`cycle ${i} (sid ${c.socket.id}): ${err.message}`);
              }
              c.close();
            }
            assert.deepEqual(lost, [], `requests sent right after connect were not answered: ${show(lost)}`);
          }),
        );

        it(
          'join acks self { connId, epoch: 1 } and a snapshot including the caller, and the caller gets its own join event',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const user = uid('user');
            const a = await connectPlain('A');
            const state = { color: 'red', n: 1, nested: { x: [1, 2] } };
            const ack = await a.join(room, user, { state });

            assert.equal(typeof ack.self?.connId, 'string', `self.connId in ${show(ack)}`);
            assert.ok(ack.self.connId.length > 0, 'connId must not be empty');
            assert.equal(ack.self.epoch, 1, `a fresh join has epoch 1: ${show(ack)}`);
            assert.ok(Array.isArray(ack.snapshot), `snapshot must be an array: ${show(ack)}`);
            const me = member(ack.snapshot, ack.self.connId, 'join ack');
            assert.equal(me.userId, user);
            assert.deepEqual(me.state, state);
            assert.equal(me.epoch, 1);
            assert.equal(typeof me.lastSeen, 'number', `lastSeen in ${show(me)}`);
            assert.ok(Math.abs(me.lastSeen - Date.now()) < 60_000, `lastSeen is a ms timestamp near now: ${me.lastSeen}`);

            const own = await a.events.waitFor({ type: 'join', connId: ack.self.connId });
            assertEventShape(own, { type: 'join', roomId: room, userId: user, connId: ack.self.connId });
            assert.deepEqual(own.state, state, 'join event carries the state');
            await plainH.barrier(room, { nodes: [plain], observers: [a], after: [a] });
            a.events.assertCount({ type: 'join', connId: ack.self.connId }, 1, 'own join once');

            // Without `state` the member starts with an empty object.
            const b = await connectPlain('B');
            const bAck = await b.join(room, uid('user'));
            assert.deepEqual(member(bAck.snapshot, bAck.self.connId, 'stateless join').state, {});
          }),
        );

        it(
          "a second member's join reaches the first as a join event, once, and both are in the snapshot",
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const a = await connectPlain('A');
            const b = await connectPlain('B');
            const aAck = await a.join(room, uid('userA'), { state: { role: 'host' } });
            const bUser = uid('userB');
            const bAck = await b.join(room, bUser, { state: { role: 'guest' } });

            assert.notEqual(bAck.self.connId, aAck.self.connId, 'two registrations have two connIds');
            assert.equal(bAck.snapshot.length, 2, `snapshot lists both members: ${show(bAck.snapshot)}`);
            member(bAck.snapshot, aAck.self.connId, "B's join ack");
            member(bAck.snapshot, bAck.self.connId, "B's join ack");

            const seen = await a.events.waitFor({ type: 'join', connId: bAck.self.connId });
            assertEventShape(seen, { type: 'join', roomId: room, userId: bUser, connId: bAck.self.connId });
            assert.deepEqual(seen.state, { role: 'guest' });
            if (seen.epoch !== undefined) assert.equal(seen.epoch, 1, 'join event epoch');
            await plainH.barrier(room, { nodes: [plain], observers: [a, b], after: [b] });
            a.events.assertCount({ type: 'join', connId: bAck.self.connId }, 1, "B's join");
            b.events.assertCount({ type: 'join', connId: bAck.self.connId }, 1, 'own join once');
          }),
        );

        it(
          'heartbeat with roomId acks { ok, epoch }, refreshes lastSeen, keeps the epoch and broadcasts nothing',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            await o.join(room, uid('observer'));
            const ack = await a.join(room, uid('user'));
            const before = member(ack.snapshot, ack.self.connId, 'join').lastSeen;

            // lastSeen has millisecond resolution and comes from this machine's clock:
            // once that clock is past it, a refresh must store a later value.
            await waitUntil(() => Date.now() > before, { intervalMs: 1, what: `the clock to pass lastSeen ${before}` });
            const hb = await a.ok('presence:heartbeat', { roomId: room });
            assert.equal(hb.epoch, 1, `heartbeat without patch keeps the epoch: ${show(hb)}`);

            const now = member(await o.snapshot(room), ack.self.connId, 'after heartbeat');
            assert.ok(now.lastSeen > before, `lastSeen must advance: ${before} -> ${now.lastSeen}`);
            assert.equal(now.epoch, 1);
            await plainH.barrier(room, { nodes: [plain], observers: [o, a], after: [a] });
            for (const client of [o, a]) {
              client.events.assertCount((e) => e.connId === ack.self.connId && e.type !== 'join', 0, 'a plain heartbeat is not a change');
            }
          }),
        );

        it(
          'heartbeat without roomId acks { ok, epochs } with the epoch of every room joined',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const [r1, r2] = [uid('room'), uid('room')];
            const user = uid('user');
            const a = await connectPlain('A');
            const j1 = await a.join(r1, user);
            await a.join(r2, user);
            await a.ok('presence:heartbeat', { roomId: r1, patchState: { x: 1 }, epoch: j1.self.epoch });

            const hb = await a.ok('presence:heartbeat', {});
            assert.deepEqual(hb.epochs, { [r1]: 2, [r2]: 1 }, `epochs per room: ${show(hb)}`);
          }),
        );

        it(
          'patchState with the current epoch shallow-merges, bumps the epoch and broadcasts one update',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const user = uid('user');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            await o.join(room, uid('observer'));
            const { self } = await a.join(room, user, { state: { keep: 'k', cursor: { x: 1, y: 1 } } });

            const ack = await a.ok('presence:heartbeat', {
              roomId: room,
              patchState: { cursor: { x: 5 }, added: true },
              epoch: self.epoch,
            });
            assert.equal(ack.epoch, self.epoch + 1, `patch bumps the epoch: ${show(ack)}`);

            // Shallow: top-level keys replaced, untouched keys kept, nested objects not merged.
            const merged = { keep: 'k', cursor: { x: 5 }, added: true };
            const update = await o.events.waitFor({ type: 'update', connId: self.connId });
            assertEventShape(update, { type: 'update', roomId: room, userId: user, connId: self.connId });
            assert.deepEqual(update.state, merged, 'update carries the merged state');
            if (update.epoch !== undefined) assert.equal(update.epoch, self.epoch + 1, 'update event epoch');
            await a.events.waitFor({ type: 'update', connId: self.connId }); // the caller is in the room too

            const m = member(await o.snapshot(room), self.connId, 'after patch');
            assert.deepEqual(m.state, merged);
            assert.equal(m.epoch, self.epoch + 1);
            await plainH.barrier(room, { nodes: [plain], observers: [o, a], after: [a] });
            o.events.assertCount({ type: 'update', connId: self.connId }, 1, 'one update');
            a.events.assertCount({ type: 'update', connId: self.connId }, 1, 'one update to the caller');
          }),
        );

        it(
          'patchState with an older epoch is refused with stale_epoch carrying the current epoch, and nothing changes',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            await o.join(room, uid('observer'));
            const { self } = await a.join(room, uid('user'), { state: { v: 0 } });
            await a.ok('presence:heartbeat', { roomId: room, patchState: { v: 1 }, epoch: self.epoch });
            await o.events.waitFor({ type: 'update', connId: self.connId });

            const stale = await a.fails(
              'presence:heartbeat',
              { roomId: room, patchState: { v: 99, extra: 'no' }, epoch: self.epoch },
              'stale_epoch',
            );
            assert.equal(stale.epoch, self.epoch + 1, `stale_epoch ack carries the current epoch: ${show(stale)}`);

            const m = member(await o.snapshot(room), self.connId, 'after refused patch');
            assert.deepEqual(m.state, { v: 1 }, 'state unchanged');
            assert.equal(m.epoch, self.epoch + 1, 'epoch unchanged');
            await plainH.barrier(room, { nodes: [plain], observers: [o], after: [a] });
            o.events.assertCount({ type: 'update', connId: self.connId }, 1, 'no update for the refused patch');
            await a.assertStillServing('after stale_epoch');
          }),
        );

        it(
          'patchState without roomId applies to the single registration of the socket',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            await o.join(room, uid('observer'));
            const { self } = await a.join(room, uid('user'), { state: { a: 1 } });

            const ack = await a.ok('presence:heartbeat', { patchState: { b: 2 }, epoch: self.epoch });
            assert.equal(allRoomsEpoch(ack, room), self.epoch + 1, `epoch bumped: ${show(ack)}`);
            const update = await o.events.waitFor({ type: 'update', connId: self.connId });
            assert.deepEqual(update.state, { a: 1, b: 2 });
          }),
        );

        it(
          'heartbeat without roomId but with patchState acks epochs',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const a = await connectPlain('A');
            const { self } = await a.join(room, uid('user'), { state: { a: 1 } });

            // With and without an epoch: the ack of a heartbeat sent without roomId is
            // always the all-rooms shape, `{ ok: true, epochs: { <roomId>: n } }`.
            const withEpoch = await a.ok('presence:heartbeat', { patchState: { b: 2 }, epoch: self.epoch });
            assert.deepEqual(withEpoch, { ok: true, epochs: { [room]: self.epoch + 1 } }, `patch with epoch: ${show(withEpoch)}`);
            const withoutEpoch = await a.ok('presence:heartbeat', { patchState: { c: 3 } });
            assert.deepEqual(withoutEpoch, { ok: true, epochs: { [room]: self.epoch + 2 } }, `patch without epoch: ${show(withoutEpoch)}`);
            const plainBeat = await a.ok('presence:heartbeat', {});
            assert.deepEqual(plainBeat, { ok: true, epochs: { [room]: self.epoch + 2 } }, `no patch: ${show(plainBeat)}`);
            const [m] = await a.snapshot(room);
            assert.deepEqual(m.state, { a: 1, b: 2, c: 3 });
          }),
        );

        it(
          'joining the same room again updates the state, keeps the connId, bumps the epoch and broadcasts update (not join)',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const user = uid('user');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            await o.join(room, uid('observer'));
            const first = await a.join(room, user, { state: { a: 1, b: 1 } });
            await o.events.waitFor({ type: 'join', connId: first.self.connId });

            const again = await a.join(room, user, { state: { a: 2, b: 2 } });
            assert.equal(again.self.connId, first.self.connId, 'one registration per socket and room');
            assert.equal(again.self.epoch, first.self.epoch + 1, 'epoch bumped');
            const mine = again.snapshot.filter((m) => m.connId === first.self.connId);
            assert.equal(mine.length, 1, `no duplicate registration: ${show(again.snapshot)}`);
            assert.deepEqual(mine[0].state, { a: 2, b: 2 });

            const update = await o.events.waitFor({ type: 'update', connId: first.self.connId });
            assert.deepEqual(update.state, { a: 2, b: 2 });
            await plainH.barrier(room, { nodes: [plain], observers: [o], after: [a] });
            o.events.assertCount({ type: 'join', connId: first.self.connId }, 1, 'no second join');
            o.events.assertCount({ type: 'update', connId: first.self.connId }, 1, 'one update for the re-join');
          }),
        );

        it(
          'leave of one room broadcasts leave there only, leaves the Socket.IO room and keeps the other registration',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const [r1, r2] = [uid('room'), uid('room')];
            const user = uid('user');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            const o1 = await o.join(r1, uid('observer'));
            await o.join(r2, uid('observer'));
            const a1 = await a.join(r1, user);
            const a2 = await a.join(r2, user);

            const ack = await a.ok('presence:leave', { roomId: r1 });
            assert.deepEqual(ack, { ok: true });
            const leave = await o.events.waitFor({ type: 'leave', connId: a1.self.connId });
            assertEventShape(leave, { type: 'leave', roomId: r1, userId: user, connId: a1.self.connId });

            absent(await o.snapshot(r1), a1.self.connId, 'r1 after leave');
            member(await o.snapshot(r2), a2.self.connId, 'r2 after leaving r1');
            await a.fails('presence:heartbeat', { roomId: r1 }, 'not_joined');
            await a.ok('presence:heartbeat', { roomId: r2 });

            // A left the Socket.IO room r1: O's update there must not reach A. The barrier
            // reaches A through r2, from the same node, after that update would have.
            await o.ok('presence:heartbeat', { roomId: r1, patchState: { ping: 1 }, epoch: o1.self.epoch });
            await o.events.waitFor({ type: 'update', connId: o1.self.connId });
            await plainH.barrier(r2, { nodes: [plain], observers: [a, o], after: [o, a] });
            a.events.assertCount({ roomId: r1, type: 'update' }, 0, 'no r1 events after leaving r1');
            o.events.assertCount({ type: 'leave', connId: a2.self.connId }, 0, 'r2 registration kept');
            o.events.assertCount({ type: 'leave', connId: a1.self.connId }, 1, 'one leave in r1');
          }),
        );

        it(
          'leave without roomId (no payload at all, or {}) removes every registration and broadcasts each leave',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const [r1, r2] = [uid('room'), uid('room')];
            const o = await connectPlain('O');
            await o.join(r1, uid('observer'));
            await o.join(r2, uid('observer'));

            for (const [label, payload] of [
              ['no payload', NO_PAYLOAD],
              ['{}', {}],
            ]) {
              const a = await connectPlain(`A(${label})`);
              const user = uid('user');
              const a1 = await a.join(r1, user);
              const a2 = await a.join(r2, user);
              const ack = await a.ok('presence:leave', payload);
              assert.deepEqual(ack, { ok: true }, `leave all with ${label}`);
              await o.events.waitFor({ type: 'leave', roomId: r1, connId: a1.self.connId });
              await o.events.waitFor({ type: 'leave', roomId: r2, connId: a2.self.connId });
              absent(await o.snapshot(r1), a1.self.connId, `r1 after leave all (${label})`);
              absent(await o.snapshot(r2), a2.self.connId, `r2 after leave all (${label})`);
              const hb = await a.ok('presence:heartbeat', {});
              assert.deepEqual(hb.epochs, {}, `no registrations left (${label}): ${show(hb)}`);
            }
          }),
        );

        it(
          'snapshot works without joining, lists the members, and does not subscribe the caller to the room',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const user = uid('user');
            const a = await connectPlain('A');
            const s = await connectPlain('S');
            const { self } = await a.join(room, user, { state: { s: 'x' } });

            const snap = await s.snapshot(room);
            assert.equal(snap.length, 1, `only A is in the room: ${show(snap)}`);
            const m = member(snap, self.connId, 'snapshot without join');
            assert.equal(m.userId, user);
            assert.deepEqual(m.state, { s: 'x' });
            assert.equal(m.epoch, 1);
            assert.equal(typeof m.lastSeen, 'number');

            assert.deepEqual(await s.snapshot(uid('empty-room')), [], 'an unknown room has an empty snapshot');

            await a.ok('presence:heartbeat', { roomId: room, patchState: { s: 'y' }, epoch: self.epoch });
            await a.events.waitFor({ type: 'update', connId: self.connId });
            // Barrier for S: its own join in a room of its own, emitted by the same node after
            // A's update (A synced first), arrives after that update would have.
            await a.sync();
            const own = await s.join(uid('room'), uid('reader'));
            await s.events.waitFor({ type: 'join', connId: own.self.connId });
            assert.deepEqual(
              s.events.events.map((e) => [e.type, e.connId]),
              [['join', own.self.connId]],
              'a snapshot reader receives no room events',
            );
          }),
        );

        it(
          'disconnect removes the registration and broadcasts leave',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const user = uid('user');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            await o.join(room, uid('observer'));
            const { self } = await a.join(room, user);

            a.close();
            const leave = await o.events.waitFor({ type: 'leave', connId: self.connId });
            assertEventShape(leave, { type: 'leave', roomId: room, userId: user, connId: self.connId });
            // Gone from the store, so no reaper can expire it later; the barrier (after
            // the disconnect's leave, from the same node) catches a second leave.
            absent(await o.snapshot(room), self.connId, 'after disconnect');
            await plainH.barrier(room, { nodes: [plain], observers: [o] });
            o.events.assertCount((e) => e.connId === self.connId && ['leave', 'expire'].includes(e.type), 1, 'one leave, no later expire');
          }),
        );

        it(
          'a request without an ack callback is still processed, and bad input without ack does not disconnect',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const user = uid('user');
            const a = await connectPlain('A');
            const o = await connectPlain('O');
            await o.join(room, uid('observer'));

            a.socket.emit('presence:join', { roomId: room, userId: user, state: { noAck: true } });
            const join = await o.events.waitFor({ type: 'join', userId: user });
            assert.deepEqual(join.state, { noAck: true });
            const snap = await o.snapshot(room);
            assert.ok(snap.some((m) => m.userId === user), `registered without ack: ${show(snap)}`);

            a.socket.emit('presence:join', 'not an object');
            a.socket.emit('presence:heartbeat', { roomId: 'a b' });
            await a.assertStillServing('after bad input without ack');
          }),
        );

        describe('resume', () => {
          it(
            'after a reconnect, resume keeps the connId, bumps the epoch and broadcasts no leave, join or update',
            TEST_TIMEOUT,
            graceH.wrap(async () => {
              const room = uid('room');
              const user = uid('user');
              const o = await connectGrace('O');
              await o.join(room, uid('observer'));
              const a = await connectGrace('A');
              const { self } = await a.join(room, user, { state: { s: 1 } });
              await o.events.waitFor({ type: 'join', connId: self.connId });

              a.close();
              // Resume after the disconnect, not racing it. (A leave it wrongly caused would
              // also show in the count after the barrier below.)
              await graceH.disconnectsHandled(grace);
              assert.equal(o.events.count(churn(self.connId)), 1, 'within the grace nothing but the original join');
              member(await o.snapshot(room), self.connId, 'held during the grace');

              const a2 = await connectGrace('A2');
              const ack = await a2.join(room, user, { state: { s: 1 }, resume: { connId: self.connId, epoch: self.epoch } });
              assert.equal(ack.self.connId, self.connId, `resume returns the same connId: ${show(ack)}`);
              assert.ok(ack.self.epoch > self.epoch, `resume bumps the epoch: ${self.epoch} -> ${ack.self.epoch}`);
              const mine = member(ack.snapshot, self.connId, 'resume ack snapshot');
              assert.equal(mine.userId, user);
              assert.deepEqual(mine.state, { s: 1 });
              assert.equal(mine.epoch, ack.self.epoch);

              await graceH.barrier(room, { nodes: [grace], observers: [o, a2], after: [a2] });
              o.events.assertCount(churn(self.connId), 1, 'no leave/join pair on resume');
              o.events.assertCount({ type: 'update', connId: self.connId }, 0, 'state unchanged: no update');
              a2.events.assertCount((e) => e.connId === self.connId, 0, 'the resumed socket gets no event about itself');

              // The registration now belongs to the new socket, which is in the room.
              const hb = await a2.ok('presence:heartbeat', { roomId: room });
              assert.equal(hb.epoch, ack.self.epoch);
              await a2.ok('presence:heartbeat', { roomId: room, patchState: { s: 2 }, epoch: ack.self.epoch });
              await o.events.waitFor({ type: 'update', connId: self.connId });
              await a2.events.waitFor({ type: 'update', connId: self.connId });
            }),
          );

          it(
            'resume with a changed state broadcasts exactly one update and no leave/join',
            TEST_TIMEOUT,
            graceH.wrap(async () => {
              const room = uid('room');
              const user = uid('user');
              const o = await connectGrace('O');
              await o.join(room, uid('observer'));
              const a = await connectGrace('A');
              const { self } = await a.join(room, user, { state: { s: 1 } });
              await o.events.waitFor({ type: 'join', connId: self.connId });
              a.close();
              await graceH.disconnectsHandled(grace);

              const a2 = await connectGrace('A2');
              const ack = await a2.join(room, user, { state: { s: 2 }, resume: { connId: self.connId, epoch: self.epoch } });
              assert.equal(ack.self.connId, self.connId);
              const update = await o.events.waitFor({ type: 'update', connId: self.connId });
              assertEventShape(update, { type: 'update', roomId: room, userId: user, connId: self.connId });
              assert.deepEqual(update.state, { s: 2 });
              await graceH.barrier(room, { nodes: [grace], observers: [o], after: [a2] });
              o.events.assertCount({ type: 'update', connId: self.connId }, 1, 'one update');
              o.events.assertCount(churn(self.connId), 1, 'only the original join');
            }),
          );

          it(
            'resume that does not match (wrong userId, stored epoch newer than sent, other room, unknown connId) is a fresh join and leaves the held registration intact',
            TEST_TIMEOUT,
            graceH.wrap(async () => {
              const room = uid('room');
              const otherRoom = uid('room');
              const user = uid('user');
              const o = await connectGrace('O');
              await o.join(room, uid('observer'));
              await o.join(otherRoom, uid('observer'));
              const a = await connectGrace('A');
              const joined = await a.join(room, user, { state: { orig: true } });
              // Bump the stored epoch to 2 so that a resume sending epoch 1 is behind it.
              const patched = await a.ok('presence:heartbeat', { roomId: room, patchState: { orig: true }, epoch: joined.self.epoch });
              const self = { connId: joined.self.connId, epoch: patched.epoch };
              assert.equal(self.epoch, 2);
              await o.events.waitFor({ type: 'join', connId: self.connId });
              a.close();
              await graceH.disconnectsHandled(grace);

              const attempts = [
                ['wrong userId', room, uid('intruder'), { connId: self.connId, epoch: self.epoch }],
                ['stored epoch newer than the one sent', room, user, { connId: self.connId, epoch: self.epoch - 1 }],
                ['other room', otherRoom, user, { connId: self.connId, epoch: self.epoch }],
                ['unknown connId', room, user, { connId: uid('no-such-conn'), epoch: 1 }],
              ];
              const attempters = [];
              for (const [label, roomId, userId, resume] of attempts) {
                const c = await connectGrace(`C(${label})`);
                attempters.push(c);
                const ack = await c.join(roomId, userId, { resume });
                assert.notEqual(ack.self.connId, self.connId, `${label}: must not take the registration over`);
                assert.equal(ack.self.epoch, 1, `${label}: a fresh join starts at epoch 1`);
                const join = await o.events.waitFor({ type: 'join', connId: ack.self.connId });
                assert.equal(join.userId, userId, `${label}: join event for the fresh registration`);
                const held = member(await o.snapshot(room), self.connId, `${label}: original still held`);
                assert.equal(held.userId, user, `${label}: original userId untouched`);
                assert.deepEqual(held.state, { orig: true }, `${label}: original state untouched`);
                assert.equal(held.epoch, self.epoch, `${label}: original epoch untouched`);
              }

              // The failed attempts did not spoil a correct resume.
              const a2 = await connectGrace('A2');
              const ok = await a2.join(room, user, { resume: { connId: self.connId, epoch: self.epoch } });
              assert.equal(ok.self.connId, self.connId, 'the matching resume still succeeds');
              // O is in both rooms an attempt went to.
              for (const r of [room, otherRoom]) {
                await graceH.barrier(r, { nodes: [grace], observers: [o], after: [...attempters, a2] });
              }
              o.events.assertCount(churn(self.connId), 1, 'no churn for the original');
            }),
          );

          it(
            'within the grace a resumed registration survives, while one never resumed expires after the grace',
            TEST_TIMEOUT,
            graceH.wrap(async () => {
              const room = uid('room');
              // A1 also holds a registration in `side`, never resumed: its expire shows when
              // A1's grace timer has run, the same step that must leave `room` alone.
              const side = uid('room');
              const [u1, u2] = [uid('user'), uid('user')];
              const o = await connectGrace('O');
              await o.join(room, uid('observer'));
              await o.join(side, uid('observer'));
              const a1 = await connectGrace('A1');
              const a2 = await connectGrace('A2');
              const j1 = await a1.join(room, u1);
              const j1side = await a1.join(side, u1);
              const j2 = await a2.join(room, u2);
              await o.events.waitFor({ type: 'join', connId: j2.self.connId });
              await o.events.waitFor({ type: 'join', connId: j1side.self.connId });
              const ids = [j1.self.connId, j1side.self.connId, j2.self.connId];

              const t0 = Date.now();
              a1.close();
              a2.close();
              await graceH.disconnectsHandled(grace);
              // O is in both rooms; the barrier in `room` also orders what the node sent to `side`.
              await graceH.barrier(room, { nodes: [grace], observers: [o] });
              assert.equal(ids.reduce((n, id) => n + o.events.count(churn(id)), 0), 3, 'only the joins so far');
              const held = await o.snapshot(room);
              member(held, j1.self.connId, 'A1 held');
              member(held, j2.self.connId, 'A2 held');
              member(await o.snapshot(side), j1side.self.connId, "A1's side registration held");

              const back = await connectGrace('A1-back');
              const r = await back.join(room, u1, { resume: { connId: j1.self.connId, epoch: j1.self.epoch } });
              assert.equal(r.self.connId, j1.self.connId);

              const expire = await o.events.waitFor({ type: 'expire', connId: j2.self.connId }, GRACE_MS + 30_000);
              const elapsed = Date.now() - t0;
              assertEventShape(expire, { type: 'expire', roomId: room, userId: u2, connId: j2.self.connId });
              assert.ok(elapsed >= GRACE_MS - 250, `expired only after the grace (${GRACE_MS} ms), got ${elapsed} ms`);
              assert.equal(o.events.count({ type: 'leave', connId: j2.self.connId }), 0, 'an abandoned registration expires, it does not leave');
              absent(await o.snapshot(room), j2.self.connId, 'after expiry');

              // A1's own grace timer runs out too (its side registration expires); it must not
              // touch the resumed registration. Its events go out together, so the barrier
              // after the side expire catches one it wrongly sent to `room`.
              const sideExpire = await o.events.waitFor({ type: 'expire', connId: j1side.self.connId }, GRACE_MS + 30_000);
              assertEventShape(sideExpire, { type: 'expire', roomId: side, userId: u1, connId: j1side.self.connId });
              assert.ok(Date.now() - t0 >= GRACE_MS - 250, `A1's side registration expired only after the grace`);
              await graceH.barrier(room, { nodes: [grace], observers: [o, back], after: [back] });
              o.events.assertCount(churn(j1.self.connId), 1, 'resumed one survives its old grace');
              back.events.assertCount((e) => e.connId === j1.self.connId, 0, 'the resumed socket hears nothing about its registration');
              member(await o.snapshot(room), j1.self.connId, 'resumed after the grace');
              await back.ok('presence:heartbeat', { roomId: room });
            }),
          );

          it(
            'resume by a second live socket fences the first: its patch gets stale_epoch and its disconnect removes nothing',
            TEST_TIMEOUT,
            plainH.wrap(async () => {
              const room = uid('room');
              // A also holds a registration of its own in `side`: its leave shows when A's
              // disconnect cleanup runs, the same step that must leave B's registration alone.
              const side = uid('room');
              const user = uid('user');
              const o = await connectPlain('O');
              await o.join(room, uid('observer'));
              await o.join(side, uid('observer'));
              const a = await connectPlain('A');
              const b = await connectPlain('B');
              const { self } = await a.join(room, user, { state: { owner: 'A' } });
              const aSide = await a.join(side, user);
              await o.events.waitFor({ type: 'join', connId: self.connId });

              const taken = await b.join(room, user, { state: { owner: 'A' }, resume: { connId: self.connId, epoch: self.epoch } });
              assert.equal(taken.self.connId, self.connId, 'B took the registration over');
              assert.ok(taken.self.epoch > self.epoch, 'epoch bumped by the takeover');

              const stale = await a.fails(
                'presence:heartbeat',
                { roomId: room, patchState: { owner: 'A-late' }, epoch: self.epoch },
                'stale_epoch',
              );
              assert.equal(stale.epoch, taken.self.epoch, `stale_epoch carries the current epoch: ${show(stale)}`);
              assert.deepEqual(member(await o.snapshot(room), self.connId, 'after fenced write').state, { owner: 'A' });

              const bPatch = await b.ok('presence:heartbeat', { roomId: room, patchState: { owner: 'B' }, epoch: taken.self.epoch });
              assert.equal(bPatch.epoch, taken.self.epoch + 1);

              a.close();
              await o.events.waitFor({ type: 'leave', connId: aSide.self.connId });
              // A's cleanup sends its events together: the barrier after its side leave catches
              // a leave it wrongly sent for the registration B took over.
              await plainH.barrier(room, { nodes: [plain], observers: [o, b], after: [b] });
              o.events.assertCount(churn(self.connId), 1, "A's disconnect must not remove B's registration");
              b.events.assertCount({ type: 'leave', connId: self.connId }, 0, 'B is told of no leave of its registration');
              assert.deepEqual(member(await o.snapshot(room), self.connId, 'after A left').state, { owner: 'B' });

              b.close();
              await o.events.waitFor({ type: 'leave', connId: self.connId });
              await plainH.barrier(room, { nodes: [plain], observers: [o] });
              o.events.assertCount({ type: 'leave', connId: self.connId }, 1, 'one leave when the owner goes');
            }),
          );
        });
      });
    }

    if (redis) {
      describe('Redis layout', () => {
        it(
          'a registration is one prs:conn:<connId> hash with a TTL refreshed by heartbeats; leave and disconnect leave no trace',
          TEST_TIMEOUT,
          plainH.wrap(async () => {
            const room = uid('room');
            const user = uid('user');
            const a = await plainH.connect(plain, { label: 'A' });
            const { self } = await a.join(room, user, { state: { k: 'v' } });

            const row = (await plainH.redis.dump()).find((r) => r.key === `prs:conn:${self.connId}`);
            assert.ok(row, `prs:conn:${self.connId} must exist: ${show(await plainH.redis.scan())}`);
            assert.equal(row.type, 'hash');
            assert.ok(row.pttl > 0 && row.pttl <= TTL_MS, `hash has a TTL within PRESENCE_TTL_MS: ${row.pttl}`);
            // Field names are the host's business; the registration's ids must be in it.
            const values = Object.values(row.value);
            assert.ok(values.includes(room), `the hash holds the roomId: ${show(row.value)}`);
            assert.ok(values.includes(user), `the hash holds the userId: ${show(row.value)}`);

            // Instead of waiting for the TTL to run down, shorten it as if most of it had
            // passed; a heartbeat must set it back to PRESENCE_TTL_MS.
            const SHORT_MS = 5_000;
            assert.equal(await plainH.redis.cli('PEXPIRE', `prs:conn:${self.connId}`, String(SHORT_MS)), '1');
            const before = Number(await plainH.redis.cli('PTTL', `prs:conn:${self.connId}`));
            assert.ok(before > 0 && before <= SHORT_MS, `TTL shortened: ${before}`);
            await a.ok('presence:heartbeat', { roomId: room });
            const afterHb = Number(await plainH.redis.cli('PTTL', `prs:conn:${self.connId}`));
            assert.ok(afterHb > SHORT_MS && afterHb <= TTL_MS, `heartbeat refreshes the TTL to PRESENCE_TTL_MS: ${before} -> ${afterHb}`);

            await a.ok('presence:leave', { roomId: room });
            await plainH.redis.assertNoTrace([self.connId, room, user], 'prs:*', 'after leave');

            const b = await plainH.connect(plain, { label: 'B' });
            const room2 = uid('room');
            const bAck = await b.join(room2, user);
            b.close();
            await waitUntil(async () => !(await plainH.redis.scan(`prs:conn:${bAck.self.connId}`)).length, {
              what: 'the registration to be deleted after disconnect',
            });
            await plainH.redis.assertNoTrace([bAck.self.connId, room2], 'prs:*', 'after disconnect');
          }),
        );

        describe('with PRESENCE_PREFIX', () => {
          const h = new Harness();
          let host;
          before(async () => {
            await h.startRedis();
            host = await h.startHost('prefixed', { redis: true, env: { ...BASE_ENV, PRESENCE_PREFIX: 'rtmtest:' } });
          });
          after(() => h.stop());

          it(
            'every key lives under the configured prefix',
            TEST_TIMEOUT,
            h.wrap(async () => {
              const a = await h.connect(host, { label: 'A' });
              const room = uid('room');
              const { self } = await a.join(room, uid('user'));
              const keys = await h.redis.scan('rtmtest:*');
              assert.ok(keys.includes(`rtmtest:conn:${self.connId}`), `rtmtest:conn:<connId> exists: ${show(keys)}`);
              assert.deepEqual(await h.redis.scan('prs:*'), [], 'nothing under the default prefix');
              assert.deepEqual(
                (await h.redis.scan('*')).filter((k) => !k.startsWith('rtmtest:')),
                [],
                'no key outside the prefix',
              );
            }),
          );
        });
      });
    }
  });
}

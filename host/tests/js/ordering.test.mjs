/**
 * Per-socket ordering, on the memory store and on a private Redis, over
 * WebSocket: what one socket sends back to back is handled in send order.
 *
 * Socket.IO delivers a socket's packets in order; a host that runs each
 * event in its own task can still apply them out of order. These tests send
 * without waiting for acks (as a chat client or a cursor stream does) and
 * check the observable order:
 *
 * - 200 `chat:message` (the chat plugin): the other member receives all 200
 *   in send order, and the room's history (capped at 100) is the newest 100
 *   in send order;
 * - 50 `presence:heartbeat` with `patchState { n: i }` and no epoch: after
 *   all acks the snapshot shows n = 50, and the acked epochs strictly
 *   increase in send order.
 *
 * No timing is asserted and nothing sleeps: every wait is for a condition,
 * with a generous deadline.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Harness, assertOk, listen, makePluginsDir, show, tempDir, uid } from './support.mjs';

const TEST_TIMEOUT = { timeout: 180_000 };
/** Deadline for all acks / broadcasts of a burst on a loaded 2-core machine. */
const BURST_DEADLINE_MS = 60_000;
const MESSAGES = 200;
const HISTORY_CAP = 100;
const PATCHES = 50;

const CACHE_DIR = tempDir('rtm-plugin-cache-');
after(() => rmSync(CACHE_DIR, { recursive: true, force: true }));

/** Index of the first position where two arrays differ, for a readable failure. */
function firstDifference(got, want) {
  for (let i = 0; i < Math.max(got.length, want.length); i += 1) {
    if (got[i] !== want[i]) return { index: i, got: got.slice(i, i + 5), want: want.slice(i, i + 5) };
  }
  return null;
}

for (const store of ['memory', 'redis']) {
  const redis = store === 'redis';

  describe(`per-socket ordering on the ${store} store (websocket)`, () => {
    const h = new Harness();
    let host;
    let dir;

    before(async () => {
      dir = makePluginsDir({ 'chat.wasm': 'chat-v1.wasm' });
      if (redis) await h.startRedis();
      host = await h.startHost(`ordering-${store}`, {
        redis,
        env: { PLUGINS_DIR: dir, PLUGIN_CACHE_DIR: CACHE_DIR, PRESENCE_TTL_MS: 60_000 },
      });
    });
    after(async () => {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    afterEach(() => h.closeClients());

    it(
      `${MESSAGES} chat:message sent back to back reach the other member in send order, and the history keeps that order`,
      TEST_TIMEOUT,
      h.wrap(async () => {
        const roomId = uid('order-chat');
        const a = await h.connect(host, { label: 'sender' });
        const b = await h.connect(host, { label: 'receiver' });
        const bMsg = listen(b, 'chat:message');
        await a.join(roomId, 'alice');
        await b.join(roomId, 'bob');

        const texts = Array.from({ length: MESSAGES }, (_, i) => `m${String(i).padStart(3, '0')}`);
        // Back to back: every emit is on the wire before the first ack is awaited.
        const pending = texts.map((text) => a.request('chat:message', { roomId, text }, BURST_DEADLINE_MS));
        const acks = await Promise.all(pending);
        acks.forEach((ack, i) => assertOk(ack, `chat:message #${i}`));

        const received = await bMsg.waitForCount({ roomId }, MESSAGES, BURST_DEADLINE_MS);
        const got = received.map((m) => m.text);
        assert.equal(got.length, MESSAGES, `receiver got ${got.length} messages, each once`);
        assert.deepEqual(
          got,
          texts,
          `the receiver must see the messages in send order; first difference: ${show(firstDifference(got, texts))}`,
        );
        // The ack of the i-th send names the i-th broadcast.
        assert.deepEqual(
          received.map((m) => m.id),
          acks.map((ack) => ack.data.id),
          'the i-th broadcast is the message of the i-th ack',
        );

        const history = (await b.ok('chat:history', { roomId, limit: HISTORY_CAP })).data.messages.map((m) => m.text);
        const newest = texts.slice(-HISTORY_CAP);
        assert.deepEqual(
          history,
          newest,
          `history must be the newest ${HISTORY_CAP} in send order; first difference: ${show(firstDifference(history, newest))}`,
        );
      }),
    );

    it(
      `${PATCHES} presence:heartbeat patches sent back to back without epoch apply in send order`,
      TEST_TIMEOUT,
      h.wrap(async () => {
        const roomId = uid('order-patch');
        const a = await h.connect(host, { label: 'patcher' });
        const o = await h.connect(host, { label: 'observer' });
        const { self } = await a.join(roomId, uid('user'), { state: { n: 0 } });

        const pending = [];
        for (let i = 1; i <= PATCHES; i += 1) {
          pending.push(a.request('presence:heartbeat', { roomId, patchState: { n: i } }, BURST_DEADLINE_MS));
        }
        const acks = await Promise.all(pending);
        acks.forEach((ack, i) => assertOk(ack, `heartbeat patch n=${i + 1}`));
        const epochs = acks.map((ack) => ack.epoch);
        for (const [i, epoch] of epochs.entries()) {
          assert.equal(typeof epoch, 'number', `ack #${i + 1} carries the room's epoch: ${show(acks[i])}`);
        }
        const outOfOrder = epochs.flatMap((epoch, i) => (i > 0 && epoch <= epochs[i - 1] ? [{ sent: i + 1, epoch, previous: epochs[i - 1] }] : []));
        assert.deepEqual(outOfOrder, [], `acked epochs must strictly increase in send order: ${show(epochs)}`);
        assert.equal(epochs.at(-1), self.epoch + PATCHES, `every patch bumped the epoch once: ${show(epochs)}`);

        const [member] = (await o.snapshot(roomId)).filter((m) => m.connId === self.connId);
        assert.ok(member, 'the patcher is registered');
        assert.deepEqual(member.state, { n: PATCHES }, `the last patch sent is the one that stays: ${show(member)}`);
        assert.equal(member.epoch, self.epoch + PATCHES);
      }),
    );
  });
}

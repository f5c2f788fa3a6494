/**
 * Socket ids are not room names. Every socket sits in a Socket.IO room named
 * by its id (that is how "emit to one socket" and "to the room except the
 * sender" are addressed), and socket ids fit the room-id charset, so a
 * client that learns another socket's id could ask for it as a presence
 * room. Whatever the host does with such a request (refuse it, or keep the
 * presence room apart from the socket's own address), nothing addressed to
 * one socket may reach another, and room traffic may not reach a socket
 * that never joined the room.
 *
 * Run on the memory store and on a private Redis (where addressing goes
 * through the Redis adapter), with the chat plugin. Negative checks use a
 * barrier instead of a quiet window: a later emit to the same socket, from
 * the same node, arrives after anything emitted to it before.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { EVENT_TIMEOUT_MS, Harness, listen, makePluginsDir, show, tempDir, uid } from './support.mjs';

const TEST_TIMEOUT = { timeout: 120_000 };
/** Generous: an expected event that is not there after this is missing. */
const DEADLINE_MS = 4 * EVENT_TIMEOUT_MS;
const ID_CHARSET = /^[A-Za-z0-9_.:@-]{1,128}$/;

const CACHE_DIR = tempDir('rtm-plugin-cache-');
after(() => rmSync(CACHE_DIR, { recursive: true, force: true }));

for (const store of ['memory', 'redis']) {
  const redis = store === 'redis';

  describe(`sid rooms on the ${store} store`, () => {
    const h = new Harness();
    let host;
    let dir;

    before(async () => {
      dir = makePluginsDir({ 'chat.wasm': 'chat-v1.wasm' });
      if (redis) await h.startRedis();
      host = await h.startHost(`sid-rooms-${store}`, { redis, env: { PLUGINS_DIR: dir, PLUGIN_CACHE_DIR: CACHE_DIR } });
    });
    after(async () => {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    afterEach(() => h.closeClients());

    /**
     * A and B in a shared room; then B asks for A's socket id as a presence
     * room. Returns B's ack (ok or refused) after B saw its own join there.
     */
    async function intruder() {
      const shared = uid('shared');
      const a = await h.connect(host, { label: 'A' });
      const b = await h.connect(host, { label: 'B' });
      const logs = { aTyping: listen(a, 'chat:typing'), bTyping: listen(b, 'chat:typing'), aMsg: listen(a, 'chat:message'), bMsg: listen(b, 'chat:message') };
      await a.join(shared, 'alice');
      const bShared = await b.join(shared, 'bob');
      const sidA = a.socket.id;
      assert.match(sidA, ID_CHARSET, 'a socket id fits the room-id charset');
      const joined = await b.request('presence:join', { roomId: sidA, userId: 'bob' });
      if (joined.ok) await b.events.waitFor({ type: 'join', roomId: sidA, connId: joined.self.connId }, DEADLINE_MS);
      return { a, b, shared, sidA, joined, bShared, ...logs };
    }

    it(
      "B in a presence room named by A's socket id still hears A's typing in their shared room (except-the-sender means A only)",
      TEST_TIMEOUT,
      h.wrap(async () => {
        const { a, shared, sidA, joined, aTyping, bTyping, aMsg } = await intruder();
        assert.deepEqual(await a.ok('chat:typing', { roomId: shared, typing: true }), { ok: true });
        // "To the room except the sender" must leave out A's socket, not every socket in a room named like it.
        const notice = await bTyping.waitFor({ roomId: shared, userId: 'alice', typing: true }, DEADLINE_MS).catch((err) => {
          throw new Error(`B (presence:join ${sidA} answered ${show(joined)}) never got A's typing: ${err.message}`);
        });
        assert.deepEqual(notice, { roomId: shared, userId: 'alice', typing: true });
        // Barrier for A: its own message comes after anything emitted to it before.
        const sent = await a.ok('chat:message', { roomId: shared, text: 'barrier' });
        await aMsg.waitFor({ id: sent.data.id }, DEADLINE_MS);
        assert.deepEqual(aTyping.events, [], 'the sender never gets its own typing');
      }),
    );

    it(
      "a presence room named by A's socket id does not reach A: neither its presence events nor its chat",
      TEST_TIMEOUT,
      h.wrap(async () => {
        const { a, b, shared, sidA, joined, bShared, aMsg, bMsg } = await intruder();
        if (joined.ok) {
          // B talks in "its" room: only B is in it.
          const sent = await b.ok('chat:message', { roomId: sidA, text: 'for the room named like A' });
          await bMsg.waitFor({ id: sent.data.id }, DEADLINE_MS);
        }
        // Barrier for A: a change in the shared room, emitted after all of the above.
        await b.ok('presence:heartbeat', { roomId: shared, patchState: { barrier: true }, epoch: bShared.self.epoch });
        await a.events.waitFor({ type: 'update', roomId: shared, connId: bShared.self.connId }, DEADLINE_MS);
        assert.deepEqual(
          a.events.filter({ roomId: sidA }),
          [],
          `A never joined room ${sidA} (B's join answered ${show(joined)}) and must get none of its presence events`,
        );
        assert.deepEqual(aMsg.filter({ roomId: sidA }), [], `A must get no chat of room ${sidA}`);
      }),
    );
  });
}

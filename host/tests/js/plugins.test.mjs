/**
 * WebAssembly plugins end-to-end (PROTOCOL.md "Custom events (plugins)",
 * wit/README.md), driven by the official socket.io-client against spawned
 * `rtm-host` processes loaded with real guest components:
 *
 * 1. the chat plugin on one node: message / history / typing, and every
 *    refusal (`plugin_error` with the plugin's reason, `unknown_event`,
 *    `payload_too_large`);
 * 2. chat across two nodes sharing one private Redis;
 * 3. hot reload under load: v1 -> v2 by write-then-rename with no lost or
 *    unacked event, every request sent after v2 appeared served by v2; a
 *    corrupt file keeps v2 serving; a deleted file unloads the plugin (how
 *    long a reload takes is measured and printed, never asserted);
 * 4. failing guests (trap, panic, spin, membomb) answer `plugin_failed`
 *    (their limits stop them) and are quarantined after repeated failures, while
 *    presence and chat keep answering; fs/net guests get no file or network
 *    access; `/metrics` has per-plugin counters;
 * 5. kv namespacing: two plugins writing the same key names never meet;
 * 6. a bad manifest is refused and listed, the other plugins load.
 *
 * Guests come prebuilt from `RTM_GUESTS_DIR` (default
 * `<repo>/target/wasm-guests/artifacts`, built by scripts/build-guests.sh).
 * If they are missing every test fails and says so; nothing is skipped.
 * Each describe block gets its own temporary PLUGINS_DIR; the compiled-code
 * cache (keyed by content hash) is one temporary directory for the file.
 */

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import {
  Harness,
  REPO_ROOT,
  NO_PAYLOAD,
  assertError,
  assertGuests,
  getJson,
  getText,
  guestPath,
  httpStatus,
  listen,
  makePluginsDir,
  metricValue,
  show,
  tempDir,
  uid,
  waitUntil,
} from './support.mjs';

const TEST_TIMEOUT = { timeout: 120_000 };

const ALL_GUESTS = [
  'chat-v1.wasm',
  'chat-v2.wasm',
  'trap.wasm',
  'panic.wasm',
  'spin.wasm',
  'membomb.wasm',
  'fs.wasm',
  'net.wasm',
  'bad-manifest.wasm',
  'noop.wasm',
  'kv-a.wasm',
  'kv-b.wasm',
];

/** One compiled-artifact cache for the whole file (safe: keyed by content hash). */
const CACHE_DIR = tempDir('rtm-plugin-cache-');
after(() => rmSync(CACHE_DIR, { recursive: true, force: true }));

/** Host env for a plugin-enabled node. */
function pluginEnv(dir, extra = {}) {
  return { PLUGINS_DIR: dir, PLUGIN_CACHE_DIR: CACHE_DIR, ...extra };
}

/** `/admin/plugins` of a host. */
function admin(host) {
  return getJson(`${host.url}/admin/plugins`);
}

/** The `/admin/plugins` entry of plugin `name`, or undefined. */
async function pluginInfo(host, name) {
  return (await admin(host)).plugins.find((p) => p.name === name);
}

/** `/metrics` of a host. */
function metrics(host) {
  return getText(`${host.url}/metrics`);
}

/** Asserts `{ ok:false, error:{ code:'plugin_error', message, reason } }`. */
function assertPluginError(ack, reason, context) {
  assertError(ack, 'plugin_error', context);
  assert.equal(ack.error.reason, reason, `${context}: expected plugin reason ${reason}, got ${show(ack)}`);
  assert.equal(ack.data, undefined, `${context}: an error ack carries no data, got ${show(ack)}`);
  return ack;
}

/** Hex SHA-256 of a file (what admin shows as `hash`). */
function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function rmDir(dir) {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/** Writes `bytes` under a hidden temporary name in `dir`, then renames it to `name` (atomic replace). */
function dropByRename(dir, name, bytes) {
  const tmp = join(dir, '.chat.tmp');
  writeFileSync(tmp, bytes);
  renameSync(tmp, join(dir, name));
}

/** Numbers worth reading in the report (reload time, failure timings). */
const MEASURED = [];
function measured(t, line) {
  MEASURED.push(line);
  t.diagnostic(line);
}
after(() => {
  if (MEASURED.length > 0) console.log(`measured:\n  ${MEASURED.join('\n  ')}`);
});

it('the prebuilt guest components are present', () => {
  assertGuests(ALL_GUESTS);
});

// ---------------------------------------------------------------------------
// 1. chat on one node
// ---------------------------------------------------------------------------

describe('chat plugin on one node (memory store)', () => {
  /** Large enough for a 2001-char text to reach the plugin (which must refuse it itself). */
  const MAX_PAYLOAD = 4096;
  const h = new Harness();
  let host;
  let dir;

  before(async () => {
    dir = makePluginsDir({ 'chat.wasm': 'chat-v1.wasm' });
    host = await h.startHost('chat-memory', { env: pluginEnv(dir, { PLUGIN_MAX_PAYLOAD_BYTES: MAX_PAYLOAD }) });
  });
  after(async () => {
    await h.stop();
    rmDir(dir);
  });
  afterEach(() => h.closeClients());

  /** alice and bob joined to `roomId`, with logs of their chat events. */
  async function pair(roomId) {
    const a = await h.connect(host, { label: 'alice' });
    const b = await h.connect(host, { label: 'bob' });
    const logs = {
      aMsg: listen(a, 'chat:message'),
      bMsg: listen(b, 'chat:message'),
      aTyping: listen(a, 'chat:typing'),
      bTyping: listen(b, 'chat:typing'),
    };
    await a.join(roomId, 'alice');
    await b.join(roomId, 'bob');
    return { a, b, ...logs };
  }

  it(
    'chat:message is acked with its id and broadcast once to every member, sender included',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const { a, b, aMsg, bMsg } = await pair('r');
      const before = Date.now();
      const ack = await a.ok('chat:message', { roomId: 'r', text: 'hi' });
      const afterAck = Date.now();
      assert.equal(typeof ack.data, 'object', `ack must carry data: ${show(ack)}`);
      assert.equal(typeof ack.data.id, 'string', `ack data must carry the message id: ${show(ack)}`);
      assert.ok(ack.data.id.length > 0, `message id must not be empty: ${show(ack)}`);
      assert.equal(ack.data.v, 'v1', `chat v1 is loaded: ${show(ack)}`);

      for (const log of [aMsg, bMsg]) {
        const msg = await log.waitFor({ id: ack.data.id });
        assert.equal(msg.roomId, 'r', `${log.label}: ${show(msg)}`);
        assert.equal(msg.userId, 'alice', `${log.label}: ${show(msg)}`);
        assert.equal(msg.text, 'hi', `${log.label}: ${show(msg)}`);
        assert.equal(typeof msg.ts, 'number', `${log.label}: ts must be a number: ${show(msg)}`);
        assert.ok(msg.ts >= before - 5_000 && msg.ts <= afterAck + 5_000, `${log.label}: ts ${msg.ts} is not now`);
      }
      // The barrier's marker (a presence join) takes the same path, the room on this node.
      await h.barrier('r', { nodes: [host], observers: [a, b], after: [a] });
      aMsg.assertCount({ id: ack.data.id }, 1, 'sender gets it once');
      bMsg.assertCount({ id: ack.data.id }, 1, 'member gets it once');
    }),
  );

  it(
    'chat:history returns the room messages oldest first, honouring limit',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('hist');
      const { a, b } = await pair(roomId);
      const texts = ['first', 'second', 'third'];
      const ids = [];
      for (const text of texts) ids.push((await a.ok('chat:message', { roomId, text })).data.id);
      assert.equal(new Set(ids).size, 3, `message ids must be distinct: ${show(ids)}`);

      const all = (await b.ok('chat:history', { roomId })).data?.messages;
      assert.ok(Array.isArray(all), `history must be { data: { messages: [] } }`);
      assert.deepEqual(
        all.map((m) => [m.id, m.userId, m.text]),
        ids.map((id, i) => [id, 'alice', texts[i]]),
        `history oldest first: ${show(all)}`,
      );
      for (let i = 1; i < all.length; i += 1) assert.ok(all[i].ts >= all[i - 1].ts, `ts ascending: ${show(all)}`);

      const last2 = (await a.ok('chat:history', { roomId, limit: 2 })).data.messages;
      assert.deepEqual(last2.map((m) => m.text), ['second', 'third'], `limit 2 = the two newest, oldest first`);

      const other = (await a.ok('chat:history', { roomId: uid('empty') })).data.messages;
      assert.deepEqual(other, [], 'a room without messages has an empty history');
    }),
  );

  it(
    'chat:typing reaches the other members but not the sender',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('typing');
      const { a, b, aTyping, bTyping } = await pair(roomId);
      const ack = await a.ok('chat:typing', { roomId, typing: true });
      assert.deepEqual(ack, { ok: true }, 'typing acks without data');
      const notice = await bTyping.waitFor({ roomId, userId: 'alice', typing: true });
      assert.deepEqual(notice, { roomId, userId: 'alice', typing: true });
      await a.ok('chat:typing', { roomId, typing: false });
      await bTyping.waitFor({ roomId, userId: 'alice', typing: false });
      await h.barrier(roomId, { nodes: [host], observers: [a, b], after: [a] });
      aTyping.assertCount(() => true, 0, 'the sender never gets its own typing');
      bTyping.assertCount(() => true, 2, 'the member gets each typing once');
    }),
  );

  it(
    'a socket not joined to the room gets plugin_error with reason not_joined',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('closed');
      const { b, bMsg, bTyping } = await pair(roomId);
      const c = await h.connect(host, { label: 'carol' });
      const text = `intruder-${uid('t')}`;
      assertPluginError(await c.request('chat:message', { roomId, text }), 'not_joined', 'never joined: message');
      assertPluginError(await c.request('chat:typing', { roomId, typing: true }), 'not_joined', 'never joined: typing');
      // Joined elsewhere is not joined here.
      await c.join(uid('elsewhere'), 'carol');
      assertPluginError(await c.request('chat:message', { roomId, text }), 'not_joined', 'joined another room');
      await h.barrier(roomId, { nodes: [host], observers: [b], after: [c] });
      bMsg.assertCount({ text }, 0, 'a refused message is not broadcast');
      bTyping.assertCount(() => true, 0, 'a refused typing is not broadcast');
      await c.assertStillServing('after not_joined');
    }),
  );

  it(
    'empty and 2001-char text answer plugin_error invalid_payload; 2000 chars are accepted',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('len');
      const { a, b, bMsg } = await pair(roomId);
      const cases = [
        ['empty text', { roomId, text: '' }],
        ['2001 chars', { roomId, text: 'x'.repeat(2001) }],
        ['2001 multi-byte chars', { roomId, text: 'é'.repeat(2001) }],
        ['text missing', { roomId }],
        ['text not a string', { roomId, text: 42 }],
        ['no payload', NO_PAYLOAD],
      ];
      for (const [label, payload] of cases) {
        assertPluginError(await a.request('chat:message', payload), 'invalid_payload', `chat:message ${label}`);
      }
      const ok = await a.ok('chat:message', { roomId, text: 'y'.repeat(2000) });
      const got = await bMsg.waitFor({ id: ok.data.id });
      assert.equal(got.text.length, 2000);
      await h.barrier(roomId, { nodes: [host], observers: [b], after: [a] });
      bMsg.assertCount(() => true, 1, 'only the valid message was broadcast');
      await a.assertStillServing('after invalid_payload');
    }),
  );

  it(
    'an event no plugin declares answers unknown_event',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const c = await h.connect(host, { label: 'carol' });
      await c.fails('foo:bar', { roomId: 'r', text: 'hi' }, 'unknown_event');
      await c.fails('foo:bar', NO_PAYLOAD, 'unknown_event');
      // chat declares exact names, not chat:*
      await c.fails('chat:unknown', { roomId: 'r' }, 'unknown_event');
      await c.assertStillServing('after unknown_event');
    }),
  );

  it(
    'a payload above PLUGIN_MAX_PAYLOAD_BYTES answers payload_too_large without reaching the plugin',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('big');
      const { a, b, bMsg } = await pair(roomId);
      const overhead = JSON.stringify({ roomId, text: '' }).length;
      const atLimit = { roomId, text: 'z'.repeat(MAX_PAYLOAD - overhead) };
      const overLimit = { roomId, text: 'z'.repeat(MAX_PAYLOAD - overhead + 1) };
      assert.equal(JSON.stringify(atLimit).length, MAX_PAYLOAD);

      const callsBefore = (await pluginInfo(host, 'chat')).calls;
      await a.fails('chat:message', overLimit, 'payload_too_large');
      await a.fails('chat:message', { roomId, text: 'z'.repeat(10 * MAX_PAYLOAD) }, 'payload_too_large');
      await a.fails('chat:history', { roomId, pad: 'p'.repeat(MAX_PAYLOAD) }, 'payload_too_large');
      assert.equal((await pluginInfo(host, 'chat')).calls, callsBefore, 'refused payloads never reach the plugin');

      // Exactly at the limit the plugin is called, and refuses the 4000+ chars itself.
      assertPluginError(await a.request('chat:message', atLimit), 'invalid_payload', 'payload of exactly the limit');
      assert.equal((await pluginInfo(host, 'chat')).calls, callsBefore + 1, 'a payload at the limit reaches the plugin');
      await h.barrier(roomId, { nodes: [host], observers: [b], after: [a] });
      bMsg.assertCount(() => true, 0, 'nothing was broadcast');
      await a.assertStillServing('after payload_too_large');
    }),
  );
});

// ---------------------------------------------------------------------------
// 2. chat across two nodes
// ---------------------------------------------------------------------------

describe('chat plugin across two nodes sharing one Redis', () => {
  const h = new Harness();
  let node1;
  let node2;
  let dir;

  before(async () => {
    dir = makePluginsDir({ 'chat.wasm': 'chat-v1.wasm' });
    await h.startRedis();
    node1 = await h.startHost('node1', { redis: true, env: pluginEnv(dir) });
    node2 = await h.startHost('node2', { redis: true, env: pluginEnv(dir) });
  });
  after(async () => {
    await h.stop();
    rmDir(dir);
  });
  afterEach(() => h.closeClients());

  it(
    'a message sent on node 1 reaches a member on node 2 exactly once; history written via node 1 is read via node 2',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('x');
      const a = await h.connect(node1, { label: 'alice' });
      const b = await h.connect(node2, { label: 'bob' });
      const aMsg = listen(a, 'chat:message');
      const bMsg = listen(b, 'chat:message');
      await a.join(roomId, 'alice');
      await b.join(roomId, 'bob');

      const first = await a.ok('chat:message', { roomId, text: 'hello from node 1' });
      const got = await bMsg.waitFor({ id: first.data.id });
      assert.equal(got.userId, 'alice');
      assert.equal(got.text, 'hello from node 1');
      assert.equal(got.roomId, roomId);
      // Markers from the sending node, then from the relaying one.
      await h.barrier(roomId, { nodes: [node1, node2], observers: [a, b], after: [a] });
      bMsg.assertCount({ id: first.data.id }, 1, 'cross-node broadcast arrives once');
      aMsg.assertCount({ id: first.data.id }, 1, 'local broadcast arrives once');

      const reply = await b.ok('chat:message', { roomId, text: 'hello from node 2' });
      assert.notEqual(reply.data.id, first.data.id, 'ids are unique across nodes');
      await aMsg.waitFor({ id: reply.data.id });
      await bMsg.waitFor({ id: reply.data.id });
      await h.barrier(roomId, { nodes: [node2, node1], observers: [a, b], after: [b] });
      aMsg.assertCount({ id: reply.data.id }, 1, 'reverse direction arrives once');
      bMsg.assertCount({ id: reply.data.id }, 1, 'the sender gets its own message once');

      const expected = [
        [first.data.id, 'alice', 'hello from node 1'],
        [reply.data.id, 'bob', 'hello from node 2'],
      ];
      for (const [client, label] of [[b, 'via node 2'], [a, 'via node 1']]) {
        const messages = (await client.ok('chat:history', { roomId })).data.messages;
        assert.deepEqual(messages.map((m) => [m.id, m.userId, m.text]), expected, `history ${label}: ${show(messages)}`);
      }
      // A fresh socket on node 2 that never saw the messages reads the same history.
      const c = await h.connect(node2, { label: 'carol' });
      const messages = (await c.ok('chat:history', { roomId })).data.messages;
      assert.deepEqual(messages.map((m) => m.id), expected.map((e) => e[0]));

      // The history lives in Redis under the plugin's namespace.
      const keys = await h.redis.scan(`prs:plugin:default:chat:*${roomId}*`);
      assert.ok(keys.length > 0, `expected chat kv keys for ${roomId} under prs:plugin:default:chat:, got none`);
    }),
  );

  it(
    'chat:typing from node 1 reaches a member on node 2 once and never comes back to the sender',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const roomId = uid('typing-x');
      const a = await h.connect(node1, { label: 'alice' });
      const b = await h.connect(node2, { label: 'bob' });
      const aTyping = listen(a, 'chat:typing');
      const bTyping = listen(b, 'chat:typing');
      await a.join(roomId, 'alice');
      await b.join(roomId, 'bob');
      assert.deepEqual(await a.ok('chat:typing', { roomId, typing: true }), { ok: true });
      await bTyping.waitFor({ roomId, userId: 'alice', typing: true });
      await h.barrier(roomId, { nodes: [node1, node2], observers: [a, b], after: [a] });
      bTyping.assertCount(() => true, 1, 'typing crosses nodes once');
      aTyping.assertCount(() => true, 0, 'the sender never gets its own typing');
    }),
  );
});

// ---------------------------------------------------------------------------
// 3. hot reload under load
// ---------------------------------------------------------------------------

describe('hot reload of chat under load', () => {
  /** Generous deadlines: how fast a reload is gets measured, not asserted. */
  const RELOAD_DEADLINE_MS = 60_000;
  const UNLOAD_DEADLINE_MS = 60_000;
  const WINDOW = 4; // requests in flight
  const h = new Harness();
  let host;
  let dir;

  before(async () => {
    dir = makePluginsDir({ 'chat.wasm': 'chat-v1.wasm' });
    host = await h.startHost('reload', { env: pluginEnv(dir) });
  });
  after(async () => {
    await h.stop();
    rmDir(dir);
  });
  afterEach(() => h.closeClients());

  it(
    'v1 -> v2 by rename loses no event and then serves v2 only; a corrupt file keeps v2; deletion unloads',
    TEST_TIMEOUT,
    h.wrap(async (t) => {
      const roomId = uid('reload');
      const a = await h.connect(host, { label: 'sender' });
      const b = await h.connect(host, { label: 'watcher' });
      /** Every broadcast the watcher got, with its arrival time. */
      const seen = [];
      b.socket.on('chat:message', (msg) => seen.push({ msg, at: performance.now() }));
      await a.join(roomId, 'alice');
      await b.join(roomId, 'bob');

      // Load: WINDOW workers, each sending acked chat:messages back to back.
      const results = [];
      let stop = false;
      let seq = 0;
      const worker = async () => {
        while (!stop) {
          seq += 1;
          const n = seq;
          const sentAt = performance.now();
          let ack;
          try {
            ack = await a.request('chat:message', { roomId, text: `load-${n}` }, 5_000);
          } catch (err) {
            ack = { noAck: err.message };
          }
          results.push({ n, ack, sentAt, at: performance.now() });
        }
      };
      const workers = Array.from({ length: WINDOW }, worker);
      const stopLoad = async () => {
        stop = true;
        await Promise.all(workers);
      };

      try {
        await waitUntil(() => results.length >= 20, { timeoutMs: 60_000, what: '20 acks under v1' });

        // v1 -> v2: write under a hidden temporary name, rename over chat.wasm.
        const tmp = join(dir, '.chat.tmp');
        copyFileSync(guestPath('chat-v2.wasm'), tmp);
        renameSync(tmp, join(dir, 'chat.wasm'));
        const renamedAt = performance.now();
        const v2At = () => {
          const acks = results.filter((r) => r.ack?.data?.v === 'v2').map((r) => r.at);
          const casts = seen.filter((s) => s.msg?.v === 'v2').map((s) => s.at);
          const all = [...acks, ...casts];
          return all.length > 0 ? Math.min(...all) : undefined;
        };
        const firstV2 = await waitUntil(v2At, { timeoutMs: RELOAD_DEADLINE_MS, intervalMs: 10, what: 'an ack or broadcast with v: v2' });
        const reloadMs = Math.round(firstV2 - renamedAt);
        const loadLine = /plugin reloaded .*took_ms=([\d.]+)/.exec(host.stderr.slice(host.mark));
        const loadMs = loadLine ? `${Math.round(Number(loadLine[1]))} ms` : 'not logged';
        measured(
          t,
          `hot reload: v2 observed ${reloadMs} ms after the rename (measured, not asserted; ` +
            `host-logged load of v2 incl. cold compile: ${loadMs}; ${results.length} acks so far)`,
        );

        // Keep the load on v2 for a moment, then drop a corrupt file over it.
        const v2Count = () => results.filter((r) => r.ack?.data?.v === 'v2').length;
        await waitUntil(() => v2Count() >= 20, { timeoutMs: 60_000, what: '20 acks under v2' });
        const corrupt = randomBytes(64 * 1024);
        dropByRename(dir, 'chat.wasm', corrupt);
        const corruptAt = performance.now();
        const rejection = await waitUntil(
          async () => (await admin(host)).rejected.find((r) => r.file === 'chat.wasm'),
          { timeoutMs: 60_000, intervalMs: 50, what: 'admin to list chat.wasm under rejected' },
        );
        const rejectedAt = performance.now();
        measured(t, `hot reload: corrupt chat.wasm listed as rejected ${Math.round(rejectedAt - corruptAt)} ms after the rename`);
        assert.equal(typeof rejection.error, 'string');
        assert.ok(rejection.error.length > 0, `rejection carries why: ${show(rejection)}`);
        assert.equal(typeof rejection.at, 'number');
        const afterRejection = () => results.filter((r) => r.sentAt > rejectedAt).length;
        await waitUntil(() => afterRejection() >= 20, { timeoutMs: 60_000, what: '20 acks after the corrupt file was refused' });
        await stopLoad();

        // Zero lost or unacked events.
        const bad = results.filter((r) => r.ack?.ok !== true);
        assert.deepEqual(bad.map((r) => ({ n: r.n, ack: r.ack })), [], `every send must be acked ok:true (${results.length} sent)`);
        measured(t, `hot reload: ${results.length} acked chat:message sent across the reloads, ${WINDOW} in flight, all ok`);

        // A request sent after v2 was observed can only be served by v2.
        const lateV1 = results.filter((r) => r.sentAt > firstV2 && r.ack.data?.v !== 'v2');
        assert.deepEqual(lateV1.map((r) => ({ n: r.n, v: r.ack.data?.v })), [], 'requests sent after v2 appeared were served by v2');
        // The corrupt file changed nothing: every request sent after it was served by v2.
        const afterCorrupt = results.filter((r) => r.sentAt >= corruptAt);
        assert.ok(afterCorrupt.length >= 20);
        assert.deepEqual(
          afterCorrupt.filter((r) => r.ack.data?.v !== 'v2').map((r) => ({ n: r.n, ack: r.ack })),
          [],
          'v2 keeps serving after a corrupt file was dropped over it',
        );
        const info = await pluginInfo(host, 'chat');
        assert.ok(info, 'chat is still loaded after the corrupt file');
        assert.equal(info.hash, sha256File(guestPath('chat-v2.wasm')), 'the loaded chat is v2 (by hash)');
        assert.equal(info.state, 'active');

        // Every acked message was broadcast exactly once, by the version that acked it.
        const ids = results.map((r) => r.ack.data.id);
        assert.equal(new Set(ids).size, ids.length, 'message ids are unique across versions');
        await waitUntil(() => ids.every((id) => seen.some((s) => s.msg.id === id)), {
          timeoutMs: 60_000,
          what: 'the watcher to receive every acked message',
        });
        // The load has stopped (every request acked); a marker in the room comes in behind
        // any second copy of a broadcast.
        await h.barrier(roomId, { nodes: [host], observers: [b], after: [a] });
        const byId = new Map();
        for (const { msg } of seen) byId.set(msg.id, [...(byId.get(msg.id) ?? []), msg]);
        const wrong = results.filter((r) => {
          const got = byId.get(r.ack.data.id) ?? [];
          return got.length !== 1 || got[0].v !== r.ack.data.v || got[0].text !== `load-${r.n}`;
        });
        assert.deepEqual(
          wrong.map((r) => ({ n: r.n, ack: r.ack.data, broadcasts: byId.get(r.ack.data.id) })),
          [],
          'each acked message broadcast once, with the same version as its ack',
        );
        // History (kv) survived both versions.
        const history = (await a.ok('chat:history', { roomId, limit: 100 })).data.messages;
        const lastIds = ids.slice(-Math.min(100, ids.length));
        assert.deepEqual(new Set(history.map((m) => m.id)), new Set(lastIds), 'history holds the newest messages of both versions');

        // Deleting the file unloads the plugin: unknown_event (waited for, generously).
        unlinkSync(join(dir, 'chat.wasm'));
        const deletedAt = performance.now();
        const answers = [];
        await waitUntil(
          async () => {
            const ack = await a.request('chat:message', { roomId, text: 'after delete' });
            answers.push(ack);
            return ack?.ok === false && ack.error?.code === 'unknown_event';
          },
          { timeoutMs: UNLOAD_DEADLINE_MS, intervalMs: 20, what: 'chat:message to answer unknown_event after chat.wasm was deleted' },
        );
        measured(t, `hot reload: unknown_event ${Math.round(performance.now() - deletedAt)} ms after chat.wasm was deleted`);
        const odd = answers.filter((ack) => ack?.ok !== true && ack?.error?.code !== 'unknown_event');
        assert.deepEqual(odd, [], 'until unloaded chat answers normally; afterwards unknown_event, nothing else');
        const final = await admin(host);
        assert.equal(final.plugins.find((p) => p.name === 'chat'), undefined, `chat is unloaded: ${show(final)}`);
        assert.equal(final.rejected.find((r) => r.file === 'chat.wasm'), undefined, `a deleted file is no longer listed as rejected: ${show(final)}`);
        await a.assertStillServing('after the unload');
      } finally {
        stop = true;
        await Promise.allSettled(workers);
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// 4. failing guests
// ---------------------------------------------------------------------------

describe('failing plugins are contained', () => {
  const TIMEOUT_MS = 1_000;
  const CPU_MS = 100;
  const QUARANTINE_FAILURES = 3;
  const h = new Harness();
  let host;
  let dir;
  let secretDir;

  before(async () => {
    dir = makePluginsDir({
      'chat.wasm': 'chat-v1.wasm',
      'trap.wasm': 'trap.wasm',
      'panic.wasm': 'panic.wasm',
      'spin.wasm': 'spin.wasm',
      'membomb.wasm': 'membomb.wasm',
      'fs.wasm': 'fs.wasm',
      'net.wasm': 'net.wasm',
    });
    secretDir = tempDir('rtm-secret-');
    host = await h.startHost('failures', {
      env: pluginEnv(dir, {
        PLUGIN_CPU_MS: CPU_MS,
        PLUGIN_TIMEOUT_MS: TIMEOUT_MS,
        PLUGIN_MEMORY_MB: 32,
        PLUGIN_QUARANTINE_FAILURES: QUARANTINE_FAILURES,
        PLUGIN_QUARANTINE_WINDOW_MS: 60_000,
        // Long enough that the quarantine outlives the test.
        PLUGIN_QUARANTINE_BASE_MS: 120_000,
        PLUGIN_QUARANTINE_MAX_MS: 120_000,
      }),
    });
    const loaded = (await admin(host)).plugins.map((p) => p.name).sort();
    assert.deepEqual(loaded, ['chat', 'fs', 'membomb', 'net', 'panic', 'spin', 'trap']);
  });
  after(async () => {
    await h.stop();
    rmDir(dir);
    rmDir(secretDir);
  });
  afterEach(() => h.closeClients());

  /** A client joined to a fresh room, with a log of its chat broadcasts. */
  async function member() {
    const roomId = uid('contain');
    const a = await h.connect(host, { label: 'alice' });
    const msgs = listen(a, 'chat:message');
    await a.join(roomId, 'alice');
    return { a, roomId, msgs };
  }

  /** Presence and chat both answer (and chat still broadcasts). */
  async function assertOthersServe({ a, roomId, msgs }, context) {
    const hb = await a.ok('presence:heartbeat', { roomId });
    assert.equal(typeof hb.epoch, 'number', `${context}: heartbeat ack ${show(hb)}`);
    const sent = await a.ok('chat:message', { roomId, text: context });
    await msgs.waitFor({ id: sent.data.id });
  }

  for (const guest of ['trap', 'panic', 'spin', 'membomb']) {
    it(
      `${guest}: plugin_failed within the limits, presence and chat keep answering, quarantined after ${QUARANTINE_FAILURES} failures`,
      TEST_TIMEOUT,
      h.wrap(async (t) => {
        const m = await member();
        const { a, roomId } = m;
        // Another socket in the same room: a socket's own events are handled in send
        // order, so "meanwhile" is about everybody else.
        const other = await h.connect(host, { label: 'bob' });
        await other.join(roomId, 'bob');
        const event = `${guest}:go`;
        const timings = [];
        let firstMessage;
        for (let i = 1; i <= QUARANTINE_FAILURES; i += 1) {
          const startedAt = performance.now();
          const failing = a.request(event, { i }, 60_000).then((ack) => ({ ack, at: performance.now() }));
          // While the guest runs (or right after it failed), presence and chat answer other sockets.
          const hb = await other.ok('presence:heartbeat', {});
          const hbAt = performance.now();
          const chat = await other.ok('chat:message', { roomId, text: `during ${guest} #${i}` });
          const { ack, at } = await failing;
          const elapsed = Math.round(at - startedAt);
          timings.push(elapsed);
          assertError(ack, 'plugin_failed', `${event} #${i}`);
          firstMessage ??= ack.error.message;
          assert.equal(typeof hb.epochs, 'object', `heartbeat during ${event}: ${show(hb)}`);
          assert.equal(chat.data.v, 'v1');
          if (guest === 'spin') {
            // The spinning guest does not hold up the runtime: presence answered another socket before it was stopped.
            assert.ok(hbAt < at, `heartbeat answered ${Math.round(hbAt - startedAt)} ms in, spin failed at ${elapsed} ms`);
          }
          await assertOthersServe(m, `after ${guest} failure #${i}`);
        }
        measured(
          t,
          `${guest}: plugin_failed after ${timings.join(' / ')} ms (cpu ${CPU_MS} ms, timeout ${TIMEOUT_MS} ms); ` +
            `first message: ${show(firstMessage)}`,
        );

        const info = await pluginInfo(host, guest);
        assert.equal(info.quarantined, true, `${guest} is quarantined after ${QUARANTINE_FAILURES} failures: ${show(info)}`);
        assert.equal(info.state, 'quarantined', show(info));
        assert.ok(info.failures >= QUARANTINE_FAILURES, show(info));

        // Quarantined: refused without running the guest (the metric proves it; the time is only printed).
        const rejectedBefore = metricValue(await metrics(host), 'rtm_plugin_rejected_total', { plugin: guest }) ?? 0;
        const fast = [];
        for (let i = 0; i < 3; i += 1) {
          const startedAt = performance.now();
          const ack = await a.request(event, { quarantined: i });
          fast.push(Math.round(performance.now() - startedAt));
          assertError(ack, 'plugin_failed', `${event} while quarantined`);
        }
        measured(t, `${guest}: quarantined calls answered plugin_failed in ${fast.join(' / ')} ms`);
        const rejectedAfter = metricValue(await metrics(host), 'rtm_plugin_rejected_total', { plugin: guest });
        assert.equal(rejectedAfter, rejectedBefore + 3, 'the quarantined calls were refused without running the guest');

        // Chat is unaffected.
        await assertOthersServe(m, `while ${guest} is quarantined`);
        const chat = await pluginInfo(host, 'chat');
        assert.equal(chat.quarantined, false, show(chat));
        assert.equal(chat.state, 'active', show(chat));
        assert.equal(chat.failures, 0, `chat never failed: ${show(chat)}`);
      }),
    );
  }

  it(
    'fs: the guest cannot read any file (fs_denied), and expected errors do not quarantine',
    TEST_TIMEOUT,
    h.wrap(async (t) => {
      const m = await member();
      const { a } = m;
      const secret = join(secretDir, 'secret.txt');
      writeFileSync(secret, 'top secret');
      const paths = [
        secret,
        'secret.txt',
        '/etc/passwd',
        '/etc/hostname',
        '/proc/self/environ',
        join(REPO_ROOT, 'Cargo.toml'),
        join(dir, 'fs.wasm'),
        '.',
        '/',
        '../../etc/passwd',
      ];
      const timings = [];
      for (const path of paths) {
        const startedAt = performance.now();
        const ack = await a.request('fs:read', { path });
        timings.push(Math.round(performance.now() - startedAt));
        assertPluginError(ack, 'fs_denied', `fs:read ${path}`);
        await a.ok('presence:heartbeat', {});
      }
      measured(t, `fs: ${paths.length} reads denied, ${Math.min(...timings)}-${Math.max(...timings)} ms each`);
      const info = await pluginInfo(host, 'fs');
      assert.equal(info.quarantined, false, `plugin errors are not failures: ${show(info)}`);
      assert.equal(info.failures, 0, show(info));
      assert.ok(info.errors >= paths.length, show(info));
      await assertOthersServe(m, 'after fs');
    }),
  );

  it(
    'net: the guest cannot open a connection (net_denied), not even to localhost',
    TEST_TIMEOUT,
    h.wrap(async (t) => {
      const m = await member();
      const { a } = m;
      /** Remote ports of every connection the test server accepted, in accept order. */
      const accepted = [];
      const server = createServer((socket) => {
        accepted.push(socket.remotePort);
        socket.destroy();
      });
      await new Promise((res, rej) => {
        server.once('error', rej);
        server.listen(0, '127.0.0.1', res);
      });
      try {
        const { port } = server.address();
        const addrs = [`127.0.0.1:${port}`, `localhost:${port}`, `0.0.0.0:${port}`, `127.0.0.1:${host.port}`, `[::1]:${port}`, `example.com:80`];
        const timings = [];
        for (const addr of addrs) {
          const startedAt = performance.now();
          const ack = await a.request('net:connect', { addr });
          timings.push(Math.round(performance.now() - startedAt));
          assertPluginError(ack, 'net_denied', `net:connect ${addr}`);
          await a.ok('presence:heartbeat', {});
        }
        measured(t, `net: ${addrs.length} connects denied, ${Math.min(...timings)}-${Math.max(...timings)} ms each`);
        // Barrier: a connection of our own, made after every net:connect was answered. The
        // kernel queues accepted connections in order, so one the guest made would have
        // been accepted before ours.
        const probe = connect({ port, host: '127.0.0.1' });
        try {
          await new Promise((res, rej) => {
            probe.once('connect', res);
            probe.once('error', rej);
          });
          const probePort = probe.localPort;
          await waitUntil(() => accepted.includes(probePort), { what: 'the test server to accept our own probe connection' });
          assert.deepEqual(accepted, [probePort], 'the test server saw no connection from the guest, only our probe');
        } finally {
          probe.destroy();
        }
      } finally {
        server.close();
      }
      const info = await pluginInfo(host, 'net');
      assert.equal(info.quarantined, false, show(info));
      assert.equal(info.failures, 0, show(info));
      await assertOthersServe(m, 'after net');
    }),
  );

  it(
    '/metrics has per-plugin call counters',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const { a, roomId } = await member();
      const calls = (text) => metricValue(text, 'rtm_plugin_calls_total', { tenant: 'default', plugin: 'chat' });
      const before = await metrics(host);
      assert.notEqual(calls(before), undefined, `no rtm_plugin_calls_total for chat in:\n${before}`);
      for (let i = 0; i < 3; i += 1) await a.ok('chat:message', { roomId, text: `count ${i}` });
      await a.ok('chat:history', { roomId });
      const text = await metrics(host);
      assert.equal(calls(text), calls(before) + 4, 'every chat call is counted');
      assert.equal(metricValue(text, 'rtm_plugin_failures_total', { plugin: 'chat' }), 0);
      assert.equal(metricValue(text, 'rtm_plugin_quarantined', { plugin: 'chat' }), 0);
      assert.ok(metricValue(text, 'rtm_plugin_call_duration_seconds_count', { plugin: 'chat' }) >= 4);
      // The failing guests of the earlier tests are counted too (when they ran first).
      for (const guest of ['trap', 'panic', 'spin', 'membomb']) {
        const failures = metricValue(text, 'rtm_plugin_failures_total', { plugin: guest });
        assert.notEqual(failures, undefined, `rtm_plugin_failures_total for ${guest}`);
      }
    }),
  );
});

// ---------------------------------------------------------------------------
// 5. kv namespacing
// ---------------------------------------------------------------------------

for (const store of ['memory', 'redis']) {
  const redis = store === 'redis';

  describe(`kv namespacing through the socket (${store} store)`, () => {
    const h = new Harness();
    let host;
    let dir;

    before(async () => {
      dir = makePluginsDir({ 'kv-a.wasm': 'kv-a.wasm', 'kv-b.wasm': 'kv-b.wasm' });
      if (redis) await h.startRedis();
      host = await h.startHost(`kv-${store}`, { redis, env: pluginEnv(dir) });
    });
    after(async () => {
      await h.stop();
      rmDir(dir);
    });
    afterEach(() => h.closeClients());

    it(
      'kv-a and kv-b write the same key names and never see each other’s values',
      TEST_TIMEOUT,
      h.wrap(async () => {
        const c = await h.connect(host, { label: 'probe' });
        const empty = { value: null, list: [], hash: null, counter: 0 };
        assert.deepEqual((await c.ok('kva:get')).data, empty, 'kv-a starts empty');

        await c.ok('kva:set', { value: 'from-a' });
        assert.deepEqual((await c.ok('kvb:get')).data, empty, 'kv-b does not see what kv-a wrote');

        await c.ok('kvb:set', { value: 'from-b' });
        assert.deepEqual((await c.ok('kva:get')).data, { value: 'from-a', list: ['from-a'], hash: 'from-a', counter: 1 });
        assert.deepEqual((await c.ok('kvb:get')).data, { value: 'from-b', list: ['from-b'], hash: 'from-b', counter: 1 });

        await c.ok('kva:set', { value: 'a2' });
        assert.deepEqual((await c.ok('kva:get')).data, { value: 'a2', list: ['from-a', 'a2'], hash: 'a2', counter: 2 });
        assert.deepEqual(
          (await c.ok('kvb:get')).data,
          { value: 'from-b', list: ['from-b'], hash: 'from-b', counter: 1 },
          'kv-b unchanged by kv-a’s second write',
        );

        if (redis) {
          const dump = await h.redis.dump('*');
          const keys = dump.map((row) => row.key).filter((k) => !k.startsWith('prs:conn') && !k.includes(':room') && !k.includes('lastseen'));
          const aKeys = keys.filter((k) => k.startsWith('prs:plugin:default:kv-a:'));
          const bKeys = keys.filter((k) => k.startsWith('prs:plugin:default:kv-b:'));
          assert.ok(aKeys.length >= 4 && bKeys.length >= 4, `kv keys per plugin namespace, got ${show(keys)}`);
          const ofA = JSON.stringify(dump.filter((r) => aKeys.includes(r.key)));
          const ofB = JSON.stringify(dump.filter((r) => bKeys.includes(r.key)));
          assert.ok(!ofA.includes('from-b'), `kv-a's keys hold nothing of kv-b: ${ofA}`);
          assert.ok(!ofB.includes('from-a') && !ofB.includes('a2'), `kv-b's keys hold nothing of kv-a: ${ofB}`);
          const stray = dump.filter((r) => /shared|counter/.test(r.key) && !r.key.startsWith('prs:plugin:default:kv-'));
          assert.deepEqual(stray, [], 'no plugin key outside its namespace');
        }
      }),
    );
  });
}

// ---------------------------------------------------------------------------
// 6. bad manifest
// ---------------------------------------------------------------------------

describe('a plugin with a bad manifest is refused', () => {
  const h = new Harness();
  let host;
  let dir;

  before(async () => {
    dir = makePluginsDir({ 'chat.wasm': 'chat-v1.wasm', 'noop.wasm': 'noop.wasm', 'bad-manifest.wasm': 'bad-manifest.wasm' });
    host = await h.startHost('bad-manifest', { env: pluginEnv(dir) });
  });
  after(async () => {
    await h.stop();
    rmDir(dir);
  });
  afterEach(() => h.closeClients());

  it(
    'at startup: listed under rejected, the other plugins load and serve',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const view = await admin(host);
      assert.equal(view.ready, true);
      assert.deepEqual(view.plugins.map((p) => p.name).sort(), ['chat', 'noop'], `loaded plugins: ${show(view)}`);
      const bad = view.rejected.find((r) => r.file === 'bad-manifest.wasm');
      assert.ok(bad, `bad-manifest.wasm must be listed under rejected: ${show(view.rejected)}`);
      assert.match(bad.error, /manifest/i, `the rejection says why: ${show(bad)}`);
      assert.equal(await httpStatus(`${host.url}/readyz`), 200, 'a refused file does not make the node unready');

      const c = await h.connect(host, { label: 'client' });
      await c.fails('bad:ok', {}, 'unknown_event');
      assert.deepEqual(await c.ok('noop:ping', {}), { ok: true });
      const roomId = uid('ok');
      await c.join(roomId, 'alice');
      assert.equal((await c.ok('chat:message', { roomId, text: 'still here' })).data.v, 'v1');
    }),
  );

  it(
    'dropped into a running node: refused and listed, chat keeps serving',
    TEST_TIMEOUT,
    h.wrap(async () => {
      const failuresBefore = metricValue(await metrics(host), 'rtm_plugin_load_failures_total');
      const tmp = join(dir, '.bad.tmp');
      copyFileSync(guestPath('bad-manifest.wasm'), tmp);
      renameSync(tmp, join(dir, 'bad-late.wasm'));
      const rejected = await waitUntil(
        async () => (await admin(host)).rejected.find((r) => r.file === 'bad-late.wasm'),
        { timeoutMs: 10_000, what: 'bad-late.wasm under rejected' },
      );
      assert.match(rejected.error, /manifest/i);
      const view = await admin(host);
      assert.deepEqual(view.plugins.map((p) => p.name).sort(), ['chat', 'noop']);
      assert.ok(metricValue(await metrics(host), 'rtm_plugin_load_failures_total') > failuresBefore);
      const c = await h.connect(host, { label: 'client' });
      const roomId = uid('ok');
      await c.join(roomId, 'alice');
      await c.ok('chat:message', { roomId, text: 'still here' });
      await c.fails('bad:ok', {}, 'unknown_event');
    }),
  );
});

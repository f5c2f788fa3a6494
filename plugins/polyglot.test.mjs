/**
 * End-to-end tests of the polyglot plugins against a real rtm-host, driven by
 * the official socket.io-client:
 *
 * - chat conformance, one suite run once per plugin file: the Rust chat
 *   (RTM_CHAT_WASM, default the workspace's wasm32-wasip2 release build) and
 *   the JavaScript chat (plugins/dist/chat-js.wasm) must answer alike;
 * - a Rust chat replaced by the JS one in a live host keeps serving the same
 *   history (same manifest name, same kv layout);
 * - the Python moderation plugin (mod:*);
 * - sandbox parity: spin-js (infinite loop) and membomb-py (unbounded
 *   allocation) answer `plugin_failed` within their limits while presence
 *   keeps answering;
 * - hot reload: chat-js.wasm replaced by write-then-rename with a build
 *   marked v2 is picked up (acks and broadcasts carry v: 'v2').
 *
 * Each test spawns its own host (`PORT=0 BIND_ADDR=127.0.0.1`) with its own
 * temporary PLUGINS_DIR. Compiled plugin artifacts are cached across hosts
 * and runs in $TMPDIR/rtm-polyglot-plugin-cache, so only the first load of a
 * 12-18 MB JS/Python component pays the Cranelift compile (~10 s here).
 *
 * - sid rooms: a socket that joins a presence room named by another
 *   socket's id does not receive what a plugin emits to that socket alone
 *   (`emit.toSocket` of a small JS guest built by this file).
 *
 * Run: (cd plugins && npm ci && npm test)     [npm test runs build-polyglot.sh]
 * Env: RTM_HOST_BIN (default target/debug/rtm-host), RTM_CHAT_WASM,
 *      RTM_POLYGLOT_DIST (default plugins/dist).
 * Nothing is skipped: a missing host binary or component fails the file at
 * once, naming what is missing and how to build it.
 */

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

import { io } from 'socket.io-client';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const hostBin = resolve(process.env.RTM_HOST_BIN ?? join(repo, 'target/debug/rtm-host'));
const dist = resolve(process.env.RTM_POLYGLOT_DIST ?? join(here, 'dist'));
const rustChat = resolve(
  process.env.RTM_CHAT_WASM ?? join(repo, 'target/wasm-guests/wasm32-wasip2/release/chat.wasm'),
);
const jsChat = join(dist, 'chat-js.wasm');
const jsChatV2Dir = join(dist, 'hot-reload-v2');
const jsChatV2 = join(jsChatV2Dir, 'chat-js.wasm');
const cacheDir = join(tmpdir(), 'rtm-polyglot-plugin-cache');

/** Generous: the first load of a JS/Python component compiles ~10 s on 2 cores. */
const LOAD_TIMEOUT_MS = 120_000;
const TEST = { timeout: 240_000 };

/**
 * Everything this file needs must exist before any test runs: a missing
 * piece is a failure that says what to build, never a skip.
 */
function requireBuilt(files) {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length > 0) {
    throw new Error(
      `polyglot suite: missing ${missing.map((f) => f.replace(`${repo}/`, '')).join(', ')}. ` +
        'Build the host (cargo build -p rtm-host, or set RTM_HOST_BIN), the Rust guests ' +
        '(scripts/build-guests.sh, or set RTM_CHAT_WASM) and the JS/Python components ' +
        '(plugins/build-polyglot.sh, or set RTM_POLYGLOT_DIST).',
    );
  }
}
requireBuilt([
  hostBin,
  rustChat,
  jsChat,
  join(dist, 'spin-js.wasm'),
  join(dist, 'moderation-py.wasm'),
  join(dist, 'membomb-py.wasm'),
]);

/**
 * A spawned host gets no rtm setting from the caller's shell (REDIS_URL,
 * PLUGINS_DIR, API_KEY, ...): only these process basics, then what the
 * test sets.
 */
const INHERITED_ENV = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'TMP', 'TEMP', 'LANG', 'LANGUAGE', 'TZ', 'RUST_LOG', 'RUST_BACKTRACE', 'RUST_LIB_BACKTRACE']);
function hostEnv(settings) {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k, v]) => v !== undefined && (INHERITED_ENV.has(k) || k.startsWith('LC_'))),
  );
  return { ...base, ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, String(v)])) };
}

// ---- harness ---------------------------------------------------------------

/** A host process with its own PLUGINS_DIR; `stop()` kills it and removes the dir. */
class Host {
  static async start({ plugins = {}, env = {} } = {}) {
    const dir = await mkdtemp(join(tmpdir(), 'rtm-polyglot-'));
    const pluginsDir = join(dir, 'plugins');
    await mkdir(pluginsDir);
    for (const [name, src] of Object.entries(plugins)) await copyFile(src, join(pluginsDir, name));
    const host = new Host(dir, pluginsDir);
    host.proc = spawn(hostBin, [], {
      env: hostEnv({
        PORT: '0',
        BIND_ADDR: '127.0.0.1',
        PLUGINS_DIR: pluginsDir,
        PLUGIN_CACHE_DIR: cacheDir,
        RUST_LOG: process.env.RUST_LOG ?? 'info',
        ...env,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    host.url = await new Promise((resolveUrl, reject) => {
      let out = '';
      // The host listens once its plugins are loaded: the first load of a
      // JS/Python component compiles for tens of seconds.
      const timer = setTimeout(() => reject(new Error(`host did not listen in ${LOAD_TIMEOUT_MS} ms:\n${host.logs()}`)), LOAD_TIMEOUT_MS);
      host.proc.stdout.on('data', (chunk) => {
        out += chunk;
        host.log.push(String(chunk));
        const m = /rtm-host listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolveUrl(m[1]);
        }
      });
      host.proc.stderr.on('data', (chunk) => host.log.push(String(chunk)));
      host.proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`host exited (${code ?? signal}):\n${host.logs()}`));
      });
    });
    return host;
  }

  constructor(dir, pluginsDir) {
    this.dir = dir;
    this.pluginsDir = pluginsDir;
    this.log = [];
    this.sockets = [];
  }

  logs() {
    return this.log.join('').split('\n').slice(-60).join('\n');
  }

  /** A connected client; `join(room, user)` does presence:join and checks the ack. */
  async connect() {
    const socket = io(this.url, { transports: ['websocket'], forceNew: true, reconnection: false });
    this.sockets.push(socket);
    await new Promise((ok, fail) => {
      socket.once('connect', ok);
      socket.once('connect_error', fail);
    });
    return new Client(socket);
  }

  async http(path) {
    const res = await fetch(new URL(path, this.url));
    return { status: res.status, body: await res.text() };
  }

  /**
   * Waits until `event` with `payload` is routed to a plugin (any ack other
   * than `unknown_event`), i.e. the plugin is compiled and loaded.
   */
  async waitForEvent(client, event, payload, { timeoutMs = LOAD_TIMEOUT_MS, until = () => true } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    while (Date.now() < deadline) {
      const admin = await this.http('/admin/plugins').catch(() => null);
      const rejected = admin?.status === 200 ? JSON.parse(admin.body).rejected : [];
      if (rejected?.length) throw new Error(`plugins rejected: ${JSON.stringify(rejected)}\n${this.logs()}`);
      last = await client.ack(event, payload, 10_000).catch((e) => ({ timeout: e.message }));
      if (!last.timeout && last.error?.code !== 'unknown_event' && until(last)) return last;
      await sleep(200);
    }
    throw new Error(`${event} not served in ${timeoutMs} ms (last ack ${JSON.stringify(last)}):\n${this.logs()}`);
  }

  /**
   * Waits until the plugin named `name` is loaded, without sending it any
   * event (for test guests whose every event misbehaves): /admin/plugins
   * lists it, or else /readyz says plugins are loaded.
   */
  async waitForPlugin(name, timeoutMs = LOAD_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const admin = await this.http('/admin/plugins').catch(() => ({ status: 0, body: '' }));
      if (admin.status === 200) {
        const view = JSON.parse(admin.body);
        if (view.plugins?.some((p) => p.name === name)) return view;
        if (view.ready && view.rejected?.length) {
          throw new Error(`plugins rejected: ${JSON.stringify(view.rejected)}`);
        }
      } else if (admin.status === 404) {
        const ready = await this.http('/readyz').catch(() => ({ status: 0 }));
        if (ready.status === 200) return null;
      }
      await sleep(200);
    }
    throw new Error(`plugin ${name} not loaded in ${timeoutMs} ms:\n${this.logs()}`);
  }

  /** The /admin/plugins entry of plugin `name` (undefined when not loaded). */
  async adminEntry(name) {
    const admin = await this.http('/admin/plugins');
    return admin.status === 200 ? JSON.parse(admin.body).plugins?.find((p) => p.name === name) : undefined;
  }

  async stop() {
    for (const s of this.sockets) s.disconnect();
    if (this.proc && this.proc.exitCode === null) {
      const exited = new Promise((ok) => this.proc.once('exit', ok));
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

class Client {
  constructor(socket) {
    this.socket = socket;
    this.received = [];
    socket.onAny((event, payload) => this.received.push({ event, payload }));
  }

  get id() {
    return this.socket.id;
  }

  ack(event, payload, timeoutMs = 10_000) {
    return this.socket.timeout(timeoutMs).emitWithAck(event, payload);
  }

  async join(roomId, userId) {
    const a = await this.ack('presence:join', { roomId, userId });
    assert.equal(a.ok, true, `presence:join ${JSON.stringify(a)}`);
    return a;
  }

  /** Resolves with the next `event` payload matching `pred` (already received ones count). */
  async next(event, pred = () => true, timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((r) => r.event === event && pred(r.payload));
      if (i >= 0) return this.received.splice(i, 1)[0].payload;
      if (Date.now() > deadline) throw new Error(`no ${event} within ${timeoutMs} ms; got ${JSON.stringify(this.received.map((r) => r.event))}`);
      await sleep(20);
    }
  }

  /** The `event`s received so far (consumed). */
  take(event) {
    const out = this.received.filter((r) => r.event === event).map((r) => r.payload);
    this.received = this.received.filter((r) => r.event !== event);
    return out;
  }
}

let counter = 0;
const uid = (prefix) => `${prefix}-${process.pid}-${++counter}`;

/**
 * The error code a plugin chose, or the host's code for host-side failures.
 * The host wraps every error a plugin returns as `{ code: 'plugin_error',
 * message, reason: <the plugin's code> }` (PROTOCOL.md error table).
 */
function errCode(ack) {
  if (!ack || ack.ok !== false) return `ok:${JSON.stringify(ack)}`;
  if (ack.error?.code === 'plugin_error') return ack.error.reason;
  return ack.error?.code;
}

// The hot-reload build: chat-js marked v2, via the same build script.
function buildChatV2() {
  execFileSync('bash', [join(here, 'build-polyglot.sh'), '--out', jsChatV2Dir, 'chat-js'], {
    env: { ...process.env, RTM_CHAT_MARK: 'v2' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

// ---- chat conformance, per plugin file --------------------------------------

const chats = [
  { name: 'rust chat', file: rustChat },
  { name: 'js chat', file: jsChat },
];

for (const chat of chats) {
  describe(`chat conformance: ${chat.name} (${chat.file.replace(`${repo}/`, '')})`, () => {
    let host;
    let a;
    let b;
    let c;
    const room = uid('lobby');

    before(async () => {
      host = await Host.start({ plugins: { 'chat.wasm': chat.file } });
      [a, b, c] = [await host.connect(), await host.connect(), await host.connect()];
      await host.waitForEvent(c, 'chat:history', { roomId: 'probe' });
      await a.join(room, 'alice');
      await b.join(room, 'bob');
    });
    after(() => host?.stop());

    test('a sender that has not joined the room gets not_joined', TEST, async () => {
      assert.equal(errCode(await c.ack('chat:message', { roomId: room, text: 'hi' })), 'not_joined');
      assert.equal(errCode(await c.ack('chat:typing', { roomId: room, typing: true })), 'not_joined');
      assert.equal(errCode(await a.ack('chat:message', { roomId: uid('elsewhere'), text: 'hi' })), 'not_joined');
    });

    test('text must be 1..2000 characters; bad payloads are invalid_payload', TEST, async () => {
      const wire = await a.ack('chat:message', { roomId: room, text: '' });
      assert.deepEqual(Object.keys(wire.error).sort(), ['code', 'message', 'reason']);
      assert.equal(wire.error.code, 'plugin_error', 'plugin errors reach the wire as plugin_error');
      assert.equal(wire.error.reason, 'invalid_payload');
      for (const payload of [
        { roomId: room, text: '' },
        { roomId: room, text: 'x'.repeat(2001) },
        { roomId: room, text: '😀'.repeat(2001) },
        { roomId: room, text: 42 },
        { roomId: room },
        { text: 'hi' },
        null,
        'just a string',
      ]) {
        const ack = await a.ack('chat:message', payload);
        assert.equal(errCode(ack), 'invalid_payload', JSON.stringify(payload)?.slice(0, 60));
        assert.equal(typeof ack.error.message, 'string');
      }
      assert.equal(errCode(await a.ack('chat:history', { roomId: '' })), 'invalid_payload');
      assert.equal(errCode(await a.ack('chat:history', { roomId: room, limit: -1 })), 'invalid_payload');
      assert.equal(errCode(await a.ack('chat:typing', { roomId: room, typing: 'yes' })), 'invalid_payload');
    });

    test('chat:message is broadcast to the room (sender included) and acked with its id', TEST, async () => {
      a.take('chat:message');
      b.take('chat:message');
      const text = 'hello "world" ✓ 😀';
      const ack = await a.ack('chat:message', { roomId: room, text });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      assert.deepEqual(Object.keys(ack.data).sort(), ['id', 'v']);
      assert.equal(ack.data.v, 'v1');
      assert.match(ack.data.id, new RegExp(`^${room}-\\d+$`));
      for (const client of [a, b]) {
        const msg = await client.next('chat:message', (m) => m.id === ack.data.id);
        assert.deepEqual(Object.keys(msg), ['id', 'roomId', 'userId', 'text', 'ts', 'v']);
        assert.deepEqual({ ...msg, ts: 0 }, { id: ack.data.id, roomId: room, userId: 'alice', text, ts: 0, v: 'v1' });
        assert.ok(Math.abs(msg.ts - Date.now()) < 60_000, `ts ${msg.ts}`);
      }
      await sleep(100);
      assert.deepEqual(c.take('chat:message'), [], 'a socket outside the room hears nothing');
      const exactly2000 = await a.ack('chat:message', { roomId: room, text: '😀'.repeat(2000) });
      assert.equal(exactly2000.ok, true, '2000 code points are allowed');
    });

    test('chat:history: oldest first, limit, capped at 100', TEST, async () => {
      const r = uid('hist');
      await a.join(r, 'alice');
      const ids = [];
      for (let i = 0; i < 105; i++) {
        const ack = await a.ack('chat:message', { roomId: r, text: `m${i}` });
        assert.equal(ack.ok, true);
        ids.push(ack.data.id);
      }
      const all = await c.ack('chat:history', { roomId: r });
      assert.equal(all.ok, true);
      assert.equal(all.data.messages.length, 100);
      assert.deepEqual(all.data.messages.map((m) => m.id), ids.slice(5));
      assert.deepEqual(all.data.messages[0], { ...all.data.messages[0], roomId: r, userId: 'alice', text: 'm5', v: 'v1' });
      const last3 = await c.ack('chat:history', { roomId: r, limit: 3 });
      assert.deepEqual(last3.data.messages.map((m) => m.text), ['m102', 'm103', 'm104']);
      assert.deepEqual((await c.ack('chat:history', { roomId: r, limit: 0 })).data, { messages: [] });
      assert.equal((await c.ack('chat:history', { roomId: r, limit: 1000 })).data.messages.length, 100);
      assert.deepEqual((await c.ack('chat:history', { roomId: uid('empty') })).data, { messages: [] });
    });

    test('chat:typing reaches the room except the sender; ack has no data', TEST, async () => {
      a.take('chat:typing');
      b.take('chat:typing');
      const ack = await a.ack('chat:typing', { roomId: room, typing: true });
      assert.deepEqual(ack, { ok: true });
      assert.deepEqual(await b.next('chat:typing'), { roomId: room, userId: 'alice', typing: true });
      await sleep(150);
      assert.deepEqual(a.take('chat:typing'), [], 'the sender does not hear its own typing');
      assert.deepEqual(c.take('chat:typing'), []);
    });

    test('events no plugin declares are unknown_event (from the host)', TEST, async () => {
      const ack = await a.ack('chat:nope', {});
      assert.equal(ack.error.code, 'unknown_event');
    });
  });
}

// ---- Rust chat replaced by the JS chat in a live host ----------------------

describe('Rust chat -> JS chat in a live host', () => {
  let host;
  before(() => buildChatV2());
  after(() => host?.stop());

  test('the JS chat reads and continues the Rust chat\'s history', TEST, async () => {
    host = await Host.start({ plugins: { 'chat.wasm': rustChat } });
    const a = await host.connect();
    await host.waitForEvent(a, 'chat:history', { roomId: 'probe' });
    const room = uid('swap');
    await a.join(room, 'alice');
    const first = await a.ack('chat:message', { roomId: room, text: 'from rust' });
    assert.equal(first.ok, true);

    // Write-then-rename: the watcher ignores dot-files, then sees one whole file.
    const tmp = join(host.pluginsDir, '.chat.wasm.tmp');
    await copyFile(jsChatV2, tmp);
    await rename(tmp, join(host.pluginsDir, 'chat.wasm'));
    // Probe in a room of its own (each probe adds a message; the history is capped).
    const probeRoom = uid('probe');
    await a.join(probeRoom, 'alice');
    await host.waitForEvent(a, 'chat:message', { roomId: probeRoom, text: 'probe' }, { until: (ack) => ack.data?.v === 'v2' });
    const hist = await a.ack('chat:message', { roomId: room, text: 'from js' });
    assert.equal(hist.ok, true);
    assert.equal(hist.data.v, 'v2');
    const history = await a.ack('chat:history', { roomId: room });
    const texts = history.data.messages.map((m) => [m.text, m.v]);
    assert.deepEqual(texts[0], ['from rust', 'v1']);
    assert.deepEqual(texts.at(-1), ['from js', 'v2']);
    // Ids continue the same per-room counter.
    const n = (id) => Number(id.slice(room.length + 1));
    assert.ok(n(hist.data.id) > n(first.data.id));
  });
});

// ---- the Python moderation plugin --------------------------------------------

describe('moderation-py', () => {
  let host;
  let a;
  let b;
  let c;
  const room = uid('mod');
  before(async () => {
    host = await Host.start({ plugins: { 'moderation-py.wasm': join(dist, 'moderation-py.wasm') } });
    [a, b, c] = [await host.connect(), await host.connect(), await host.connect()];
    await host.waitForEvent(c, 'mod:list', { roomId: 'probe' });
    await a.join(room, 'alice');
    await b.join(room, 'bob');
  });
  after(() => host?.stop());

  test('add, list, check (masking), remove', TEST, async () => {
    assert.deepEqual(await c.ack('mod:list', { roomId: room }), { ok: true, data: { words: [] } });
    const add = await a.ack('mod:add-words', { roomId: room, words: ['Darn', 'heck', ' DARN '] });
    assert.deepEqual(add, { ok: true, data: { words: ['darn', 'heck'], added: 2 } });
    assert.deepEqual(await b.next('mod:words'), { roomId: room, words: ['darn', 'heck'] });
    assert.deepEqual((await c.ack('mod:list', { roomId: room })).data, { words: ['darn', 'heck'] });
    assert.deepEqual(await c.ack('mod:check', { roomId: room, text: 'Darn it, what the HECK? darnit' }), {
      ok: true,
      data: { allowed: false, masked: '**** it, what the ****? darnit' },
    });
    assert.deepEqual((await c.ack('mod:check', { roomId: room, text: 'all good' })).data, { allowed: true, masked: 'all good' });
    assert.deepEqual((await c.ack('mod:check', { roomId: uid('other'), text: 'darn' })).data, { allowed: true, masked: 'darn' });
    const rm = await a.ack('mod:remove-words', { roomId: room, words: ['HECK'] });
    assert.deepEqual(rm, { ok: true, data: { words: ['darn'], removed: 1 } });
    assert.deepEqual((await c.ack('mod:check', { roomId: room, text: 'heck darn' })).data, { allowed: false, masked: 'heck ****' });
  });

  test('errors: not_joined, invalid_payload, unknown mod: event', TEST, async () => {
    assert.equal(errCode(await c.ack('mod:add-words', { roomId: room, words: ['x'] })), 'not_joined');
    assert.equal(errCode(await c.ack('mod:remove-words', { roomId: room, words: ['x'] })), 'not_joined');
    assert.equal(errCode(await a.ack('mod:add-words', { roomId: room, words: ['two words'] })), 'invalid_payload');
    assert.equal(errCode(await a.ack('mod:add-words', { roomId: room, words: 'darn' })), 'invalid_payload');
    assert.equal(errCode(await a.ack('mod:check', { roomId: room })), 'invalid_payload');
    assert.equal(errCode(await a.ack('mod:check', null)), 'invalid_payload');
    // mod:* is the plugin's: it answers unknown_event itself (wrapped as plugin_error).
    const nope = await a.ack('mod:nope', {});
    assert.deepEqual([nope.error.code, nope.error.reason], ['plugin_error', 'unknown_event']);
  });
});

// ---- sandbox parity -----------------------------------------------------------

/**
 * Sends `event` (which misbehaves) and, while it is in flight, keeps
 * presence busy on another socket: every snapshot must be answered, and
 * presence still answers afterwards. No speed is asserted: the limits are
 * the host's business, the test only waits (generously) for the outcome.
 */
async function misbehaves(host, event, { reason }) {
  const bad = await host.connect();
  const good = await host.connect();
  const room = uid('sandbox');
  await good.join(room, 'watcher');
  const t0 = Date.now();
  const pending = bad.ack(event, { roomId: room }, 120_000).then((ack) => ({ ack, ms: Date.now() - t0 }));
  let settled = false;
  pending.finally(() => {
    settled = true;
  });
  let served = 0;
  while (!settled) {
    const snap = await good.ack('presence:snapshot', { roomId: room }, 30_000);
    assert.equal(snap.ok, true, `presence:snapshot while ${event} runs: ${JSON.stringify(snap)}`);
    served += 1;
    await sleep(25);
  }
  const { ack, ms } = await pending;
  assert.equal(errCode(ack), 'plugin_failed', JSON.stringify(ack));
  // The first failures name the limit; once quarantined, the message says so instead.
  assert.match(ack.error.message, new RegExp(`${reason.source}|quarantine`, 'i'));
  assert.ok(served >= 1, 'presence was asked while the guest misbehaved');
  const hb = await good.ack('presence:heartbeat', { roomId: room });
  assert.equal(hb.ok, true, 'presence still answers afterwards');
  return { ms, served };
}

describe('sandbox parity', () => {
  let host;
  afterEach(() => host?.stop());

  test('spin-js: an infinite loop is stopped by the CPU/time limit, presence keeps answering', TEST, async (t) => {
    host = await Host.start({
      plugins: { 'spin-js.wasm': join(dist, 'spin-js.wasm') },
      env: { PLUGIN_CPU_MS: 100, PLUGIN_TIMEOUT_MS: 1000 },
    });
    await host.waitForPlugin('spin-js');
    const first = await misbehaves(host, 'spin:forever', { reason: /cpu|time/ });
    const second = await misbehaves(host, 'spin:again', { reason: /cpu|time/ });
    t.diagnostic(`spin-js answered plugin_failed after ${first.ms} and ${second.ms} ms; ${first.served + second.served} snapshots answered meanwhile`);
  });

  test('membomb-py: unbounded allocation is stopped by the memory cap, presence keeps answering', TEST, async (t) => {
    host = await Host.start({
      plugins: { 'membomb-py.wasm': join(dist, 'membomb-py.wasm') },
      env: { PLUGIN_MEMORY_MB: 64, PLUGIN_CPU_MS: 2000, PLUGIN_TIMEOUT_MS: 5000 },
    });
    await host.waitForPlugin('membomb-py');
    const first = await misbehaves(host, 'bomb:go', { reason: /memory/ });
    const second = await misbehaves(host, 'bomb:again', { reason: /memory/ });
    t.diagnostic(`membomb-py answered plugin_failed after ${first.ms} and ${second.ms} ms; ${first.served + second.served} snapshots answered meanwhile`);
    const entry = await host.adminEntry('membomb-py');
    if (entry) assert.ok(entry.failures >= 2, JSON.stringify(entry));
  });
});

// ---- hot reload ---------------------------------------------------------------

describe('hot reload: chat-js', () => {
  let host;
  before(() => buildChatV2());
  after(() => host?.stop());

  test('replacing chat-js.wasm (write, then rename) with a v2 build switches the marker; history survives', TEST, async () => {
    host = await Host.start({ plugins: { 'chat-js.wasm': jsChat } });
    const a = await host.connect();
    const b = await host.connect();
    await host.waitForEvent(a, 'chat:history', { roomId: 'probe' });
    const room = uid('reload');
    await a.join(room, 'alice');
    await b.join(room, 'bob');
    const v1 = await a.ack('chat:message', { roomId: room, text: 'before' });
    assert.equal(v1.data.v, 'v1');
    assert.equal((await b.next('chat:message')).v, 'v1');

    const tmp = join(host.pluginsDir, '.chat-js.wasm.tmp');
    await copyFile(jsChatV2, tmp);
    await rename(tmp, join(host.pluginsDir, 'chat-js.wasm'));
    // The old version keeps serving while the new one compiles. Probe in a
    // room of its own: every probe is a message, and the history is capped.
    const probeRoom = uid('probe');
    await a.join(probeRoom, 'alice');
    await host.waitForEvent(a, 'chat:message', { roomId: probeRoom, text: 'probe' }, { until: (ack) => ack.ok && ack.data.v === 'v2' });
    const v2 = await a.ack('chat:message', { roomId: room, text: 'after' });
    assert.equal(v2.data.v, 'v2');
    assert.equal((await b.next('chat:message', (m) => m.id === v2.data.id)).v, 'v2');
    const history = (await b.ack('chat:history', { roomId: room })).data.messages;
    assert.deepEqual(history.map((m) => [m.text, m.v]), [
      ['before', 'v1'],
      ['after', 'v2'],
    ]);
  });
});

describe('hot reload: moderation-py', () => {
  let host;
  after(() => host?.stop());

  test('a Python component dropped into a running host is served, and deleting it unloads it', TEST, async () => {
    host = await Host.start({ plugins: {} });
    const c = await host.connect();
    assert.equal(errCode(await c.ack('mod:list', { roomId: 'r' })), 'unknown_event');
    const target = join(host.pluginsDir, 'moderation-py.wasm');
    const tmp = join(host.pluginsDir, '.moderation-py.wasm.tmp');
    await copyFile(join(dist, 'moderation-py.wasm'), tmp);
    const dropped = Date.now();
    await rename(tmp, target);
    await host.waitForEvent(c, 'mod:list', { roomId: 'r' });
    console.log(`moderation-py: dropped -> first call served in ${Date.now() - dropped} ms`);
    assert.deepEqual(await c.ack('mod:list', { roomId: 'r' }), { ok: true, data: { words: [] } });
    await unlink(target);
    const deadline = Date.now() + LOAD_TIMEOUT_MS;
    let code;
    while (Date.now() < deadline) {
      code = errCode(await c.ack('mod:list', { roomId: 'r' }));
      if (code === 'unknown_event') break;
      await sleep(50);
    }
    assert.equal(code, 'unknown_event');
  });
});

// ---- sid rooms -------------------------------------------------------------------

/**
 * A guest whose `emit:to-me` emits `emit:private` to the calling socket
 * alone, then `emit:public` to every socket (in that order, in one call).
 */
const EMIT_PROBE_JS = `
import { definePlugin, emit } from '@rtm/guest';

export const handler = definePlugin({
  name: 'emit-probe',
  version: '0.1.0',
  // The host lets a plugin emit only events its manifest declares: one pattern covers all three.
  on: {
    'emit:*': (ctx) => {
      if (ctx.event !== 'emit:to-me') return { ignored: ctx.event };
      emit.toSocket(ctx.socket, 'emit:private', { to: ctx.socket });
      emit.broadcast('emit:public', { from: ctx.socket });
      return { socket: ctx.socket };
    },
  },
});
`;

describe('sid rooms: what a plugin emits to one socket reaches that socket only', () => {
  let host;
  let buildDir;
  let emitProbe;
  before(async () => {
    buildDir = await mkdtemp(join(tmpdir(), 'rtm-emit-probe-'));
    const entry = join(buildDir, 'emit-probe.js');
    await writeFile(entry, EMIT_PROBE_JS);
    emitProbe = join(buildDir, 'emit-probe.wasm');
    execFileSync(process.execPath, [join(repo, 'guest-sdk/js/build.mjs'), entry, '-o', emitProbe, '-q'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    requireBuilt([emitProbe]);
  });
  after(async () => {
    await host?.stop();
    if (buildDir) await rm(buildDir, { recursive: true, force: true });
  });

  test("a socket that joins a presence room named by another socket's id does not get that socket's emits", TEST, async () => {
    host = await Host.start({ plugins: { 'emit-probe.wasm': emitProbe } });
    const a = await host.connect();
    const b = await host.connect();
    await host.waitForPlugin('emit-probe');
    assert.match(a.id, /^[A-Za-z0-9_.:@-]{1,128}$/, 'a socket id fits the room-id charset, so it can be asked for as a room');

    // B learns A's socket id and asks for it as a presence room. The host may
    // refuse that, or keep the room apart from A's own address; either way B
    // must not overhear A, and A must not hear room traffic it never joined.
    const joined = await b.ack('presence:join', { roomId: a.id, userId: 'bob' });
    if (joined.ok) await b.next('presence:event', (e) => e.type === 'join' && e.roomId === a.id);

    const ack = await a.ack('emit:to-me', {});
    assert.deepEqual(ack, { ok: true, data: { socket: a.id } });
    assert.deepEqual(await a.next('emit:private'), { to: a.id }, 'the socket the plugin addressed gets the emit');
    // The guest emits emit:public right after emit:private, in the same call: once B
    // has emit:public, anything emitted to B before it has arrived too.
    await b.next('emit:public');
    assert.deepEqual(b.take('emit:private'), [], `B (joined room ${a.id}: ${JSON.stringify(joined)}) got the emit meant for A alone`);
    assert.deepEqual(
      a.take('presence:event').filter((e) => e.roomId === a.id),
      [],
      'A never joined the room named by its id, so it gets none of its presence events',
    );
  });
});

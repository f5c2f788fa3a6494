/**
 * Test support for the rtm-host end-to-end suite.
 *
 * Everything here exists so the test files can read like the protocol
 * (PROTOCOL.md) instead of like process plumbing:
 *
 * - {@link RedisServer}: a private `redis-server` on a free port, which can
 *   be SIGKILLed and restarted on the same port (the cluster tests need the
 *   hosts to find "their" Redis again at the same address).
 * - {@link HostNode}: one spawned `rtm-host` process; waits for its
 *   "listening" line, keeps its stderr so a failing test can show it.
 * - {@link Client}: an official `socket.io-client` socket plus a log of the
 *   `presence:event`s it received, with small request helpers.
 * - {@link Harness}: owns all of the above for one `describe` block and
 *   tears everything down in `after`, even when a test failed.
 * - {@link RedisCluster}: a private Redis Cluster (3 masters + 3 replicas by
 *   default) whose nodes can be killed, paused and restarted, for the hosts'
 *   `redis-cluster://` URL.
 *
 * Timeouts are generous (the suite shares a 2-core machine with Rust
 * builds) but always bounded, and nothing sleeps for a fixed time: waits poll
 * a condition, and "nothing else happened" (exactly once, never) is proven
 * with a barrier ({@link Harness#barrier}), an event that is ordered after
 * anything the checked action could still have caused, instead of a quiet
 * window.
 */

import { spawn, execFile } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import { connect, createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

const execFileAsync = promisify(execFile);

/** Repository root: this file lives in `<repo>/host/tests/js/`. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The host binary under test (`RTM_HOST_BIN` overrides the debug build). */
export const HOST_BIN = process.env.RTM_HOST_BIN ?? resolve(REPO_ROOT, 'target', 'debug', 'rtm-host');

/** Default per-request ack timeout; far above any healthy round trip. */
export const ACK_TIMEOUT_MS = 5_000;

/** How long to wait for an expected event before failing. */
export const EVENT_TIMEOUT_MS = 5_000;

/**
 * How long a barrier's marker may take to reach every observer: generous,
 * because a loaded machine is slow, not wrong; a marker that never comes
 * fails the test.
 */
export const BARRIER_TIMEOUT_MS = 30_000;

/**
 * Presence settings for suites whose tests run without heartbeats: a TTL far longer than
 * a test, so nothing expires by accident, and a brisk reaper for what a test kills.
 */
export const SLOW_ENV = {
  PRESENCE_TTL_MS: 30_000,
  PRESENCE_REAPER_INTERVAL_MS: 500,
  PRESENCE_REAPER_LOOKBACK_MS: 30_000,
};

/** Sentinel for {@link emitAck}: emit the event with no payload argument at all. */
export const NO_PAYLOAD = Symbol('no payload');

/**
 * Host configuration is never inherited from the caller's shell (a stray
 * REDIS_URL would turn a memory test into a Redis one, a PLUGINS_DIR would
 * load plugins nobody asked for, an API_KEY or TENANTS_FILE would change what
 * the host serves). A spawned host gets only the process basics below from
 * the caller's environment, then the harness defaults, then exactly what the
 * test sets.
 */
const INHERITED_ENV = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TMPDIR',
  'TMP',
  'TEMP',
  'LANG',
  'LANGUAGE',
  'TZ',
  'RUST_LOG',
  'RUST_BACKTRACE',
  'RUST_LIB_BACKTRACE',
]);

/**
 * Every rtm host setting (README "Configuration", PROTOCOL.md tenants/API):
 * exact names, and prefixes for families of settings present and to come.
 * Never inherited (see {@link INHERITED_ENV}); {@link hostChildEnv} also
 * refuses to let one through by accident.
 */
const HOST_ENV_KEYS = new Set([
  'PORT',
  'BIND_ADDR',
  'NODE_ID',
  'ADMIN_TOKEN',
  'PLUGINS_DIR',
  'SHUTDOWN_TIMEOUT_MS',
  'LOG_JSON',
  'TENANTS_FILE',
  'API_KEY',
]);
const HOST_ENV_PREFIXES = ['REDIS_', 'PRESENCE_', 'PLUGIN_', 'PLUGINS_', 'SOCKETIO_', 'TENANT', 'JWT_', 'AUTH_', 'ADMIN_', 'API_', 'WEBHOOK_', 'HTTP_'];

/** Whether `key` is (or looks like) an rtm host setting. */
export function isHostConfigKey(key) {
  return HOST_ENV_KEYS.has(key) || HOST_ENV_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/**
 * The environment of a spawned host: the inherited basics, `defaults`, then
 * `env` (the test's settings; values stringified). Nothing else reaches the
 * host, whatever the caller's shell exports.
 */
export function hostChildEnv(env = {}, defaults = {}) {
  const base = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && (INHERITED_ENV.has(key) || key.startsWith('LC_'))) base[key] = value;
  }
  for (const key of Object.keys(base)) {
    if (isHostConfigKey(key)) throw new Error(`hostChildEnv: ${key} must never be inherited`);
  }
  const stringify = (obj) => Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, String(v)]));
  return { ...base, ...stringify(defaults), ...stringify(env) };
}

/** Every child process we spawned, so a crashing runner still reaps them. */
const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// ---------------------------------------------------------------------------
// small utilities
// ---------------------------------------------------------------------------

let uidCounter = 0;

/**
 * A unique id in the protocol's charset `[A-Za-z0-9_.:@-]`, so rooms and
 * users of different tests never meet even when they share a host.
 */
export function uid(prefix = 'id') {
  uidCounter += 1;
  return `${prefix}-${uidCounter}-${randomBytes(4).toString('hex')}`;
}

/** Asks the kernel for a free TCP port on 127.0.0.1 (used for redis-server). */
export async function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

/**
 * Polls `check` until it returns a truthy value (which is returned) or the
 * deadline passes (then throws, naming `what` (a string, or a function
 * returning one) and the last error seen).
 */
export async function waitUntil(check, { timeoutMs = EVENT_TIMEOUT_MS, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const reason = lastError ? `; last error: ${lastError.message}` : '';
      const label = typeof what === 'function' ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}${reason}`);
    }
    await sleep(intervalMs);
  }
}

/** HTTP status of `GET url`, bounded so a wedged host fails the test instead of hanging it. */
export async function httpStatus(url, timeoutMs = 3_000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  return res.status;
}

/** Compact JSON for assertion messages. */
export function show(value) {
  if (value === undefined) return 'undefined';
  const text = JSON.stringify(value);
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

// ---------------------------------------------------------------------------
// ack assertions
// ---------------------------------------------------------------------------

/** Asserts a success ack `{ ok: true, ... }` and returns it. */
export function assertOk(ack, context = 'request') {
  assert.equal(typeof ack, 'object', `${context}: ack must be an object, got ${show(ack)}`);
  assert.notEqual(ack, null, `${context}: ack must not be null`);
  assert.equal(ack.ok, true, `${context}: expected { ok: true }, got ${show(ack)}`);
  return ack;
}

/**
 * Asserts the protocol's error shape `{ ok: false, error: { code, message } }`
 * with the given stable code, and returns the ack.
 */
export function assertError(ack, code, context = 'request') {
  assert.equal(typeof ack, 'object', `${context}: ack must be an object, got ${show(ack)}`);
  assert.notEqual(ack, null, `${context}: ack must not be null`);
  assert.equal(ack.ok, false, `${context}: expected { ok: false } with ${code}, got ${show(ack)}`);
  assert.equal(typeof ack.error, 'object', `${context}: error must be an object, got ${show(ack)}`);
  assert.equal(ack.error?.code, code, `${context}: expected error code ${code}, got ${show(ack)}`);
  assert.equal(typeof ack.error.message, 'string', `${context}: error.message must be a string, got ${show(ack)}`);
  return ack;
}

// ---------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------

/**
 * Lua that reads every key matching a pattern with its type, PTTL and
 * content in one round trip, so tests can assert on the whole layout
 * (including index entries) without knowing index key names.
 */
const DUMP_SCRIPT = `
local out = {}
local cursor = '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    local t = redis.call('TYPE', k)['ok']
    local v = nil
    if t == 'string' then v = { redis.call('GET', k) }
    elseif t == 'hash' then v = redis.call('HGETALL', k)
    elseif t == 'set' then v = redis.call('SMEMBERS', k)
    elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
    elseif t ~= 'none' then v = {}
    end
    if v ~= nil then table.insert(out, { k, t, redis.call('PTTL', k), v }) end
  end
until cursor == '0'
return cjson.encode(out)
`;

/** How many fresh ports {@link RedisServer.start} tries before giving up. */
const REDIS_START_ATTEMPTS = 20;

/** redis-server could not be ours on this port (it exited, or another server answers there). */
class RedisPortLost extends Error {}

/**
 * A private redis-server for one test file (or one describe block).
 *
 * "Private" is proven, not assumed: a free port is only free when the kernel
 * was asked, so another test (or anything else) may bind it first. Then our
 * redis-server exits ("Address already in use") and we retry on a new port;
 * and before the server is used, `INFO server` must report our child's
 * `process_id`, so a PONG from somebody else's Redis is never accepted.
 */
export class RedisServer {
  /**
   * @param {number} port
   * @param {string[]} extraArgs more redis-server arguments after the defaults (a
   *   cluster node's `--cluster-enabled yes ...`; none for a plain server), kept for
   *   {@link restart}
   */
  constructor(port, extraArgs = []) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.proc = null;
    this.output = '';
    this.extraArgs = extraArgs;
  }

  /**
   * Starts redis-server on a free port and waits until it answers as our own child.
   * Options (used by {@link RedisCluster}; without them a plain private server):
   * `pickPort` an async port chooser (default {@link freePort}), `args(port)` extra
   * redis-server arguments for that port.
   */
  static async start({ pickPort = freePort, args = () => [] } = {}) {
    const lost = [];
    for (let attempt = 1; attempt <= REDIS_START_ATTEMPTS; attempt += 1) {
      const port = await pickPort();
      const server = new RedisServer(port, args(port));
      try {
        await server.#spawn();
        return server;
      } catch (err) {
        await server.kill9();
        if (!(err instanceof RedisPortLost)) throw err;
        lost.push(`port ${server.port}: ${err.message}`);
      }
    }
    throw new Error(`no private redis-server after ${REDIS_START_ATTEMPTS} ports:\n${lost.join('\n')}`);
  }

  /**
   * Spawns redis-server on `this.port`; resolves once it answers PING and
   * `INFO server` names our child's pid. Throws {@link RedisPortLost} when the
   * port cannot be ours (the child exited early, or another server answers).
   */
  async #spawn() {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...this.extraArgs];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(child);
    this.proc = child;
    const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
    child.exited = exited;
    exited.then(() => liveChildren.delete(child));
    const keep = (chunk) => {
      this.output = (this.output + chunk.toString()).slice(-16_384);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let spawnError;
    child.once('error', (err) => {
      spawnError = err;
      this.output += `\nspawn error: ${err.message}`;
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (spawnError) throw new Error(`cannot spawn redis-server: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new RedisPortLost(`redis-server exited early (code ${child.exitCode}, signal ${child.signalCode}):\n${this.output.trim()}`);
      }
      let pong = false;
      try {
        pong = (await this.cli('PING')) === 'PONG';
      } catch {
        // not listening yet
      }
      if (pong) {
        const info = await this.cli('INFO', 'server').catch((err) => `INFO failed: ${err.message}`);
        const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
        if (pid === child.pid) return;
        // Somebody else's Redis holds the port; ours cannot bind it and must not be used.
        throw new RedisPortLost(`port answered by another redis-server (process_id ${pid}, our child is ${child.pid})`);
      }
      if (Date.now() > deadline) {
        throw new Error(`redis-server on port ${this.port} did not answer PING within 20 s:\n${this.output}`);
      }
      await sleep(50);
    }
  }

  /** True while the redis-server process runs. */
  get running() {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** SIGKILLs the server (an outage, not a shutdown: no save, no goodbye). */
  async kill9() {
    // A child that never started (spawn error) has no pid and may never emit 'exit'.
    if (!this.running || this.proc.pid === undefined) return;
    const child = this.proc;
    child.kill('SIGKILL');
    await child.exited;
  }

  /**
   * Starts a fresh (empty) server on the same port after {@link kill9} (the
   * hosts must find "their" Redis again at the same address). Proven ours
   * like the first start; if the port was taken meanwhile the test fails
   * loudly rather than talking to a stranger.
   */
  async restart() {
    await this.kill9();
    // The port is normally free at once (redis uses SO_REUSEADDR); retry
    // for a while in case the kernel has not released it yet.
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await this.#spawn();
        return;
      } catch (err) {
        await this.kill9();
        if (!(err instanceof RedisPortLost) || Date.now() > deadline) {
          throw new Error(`redis-server could not restart as our own child on port ${this.port}: ${err.message}`);
        }
      }
      await sleep(200);
    }
  }

  /** Stops the server for good (cleanup). */
  async stop() {
    await this.kill9();
  }

  /** Runs `redis-cli -p <port> --raw ...args` and returns trimmed stdout. */
  async cli(...args) {
    const { stdout } = await execFileAsync('redis-cli', ['-p', String(this.port), '--raw', ...args], {
      timeout: 5_000,
    });
    return stdout.trim();
  }

  /** Key names matching `pattern` (via `redis-cli --scan`), sorted. */
  async scan(pattern = 'prs:*') {
    const { stdout } = await execFileAsync(
      'redis-cli',
      ['-p', String(this.port), '--scan', '--pattern', pattern],
      { timeout: 5_000 },
    );
    return stdout
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean)
      .sort();
  }

  /**
   * Every key matching `pattern` with its content:
   * `[{ key, type, pttl, value }]`, where a hash's value is an object, a
   * zset's an array of `[member, score]`, other types an array of strings.
   */
  async dump(pattern = 'prs:*') {
    const raw = await this.cli('EVAL', DUMP_SCRIPT, '0', pattern);
    const parsed = JSON.parse(raw);
    const rows = Array.isArray(parsed) ? parsed : [];
    return rows
      .map(([key, type, pttl, value]) => {
        const flat = Array.isArray(value) ? value : [];
        let content = flat;
        if (type === 'hash') {
          content = {};
          for (let i = 0; i < flat.length; i += 2) content[flat[i]] = flat[i + 1];
        } else if (type === 'zset') {
          content = [];
          for (let i = 0; i < flat.length; i += 2) content.push([flat[i], Number(flat[i + 1])]);
        }
        return { key, type, pttl, value: content };
      })
      .sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /**
   * Asserts that no key name and no stored value under `pattern` mentions
   * any of `needles` (room ids, user ids, conn ids): a refused or removed
   * registration must leave no trace, not even a dangling index entry.
   */
  async assertNoTrace(needles, pattern = 'prs:*', context = '') {
    const dump = await this.dump(pattern);
    for (const needle of needles) {
      const hits = dump.filter((row) => row.key.includes(needle) || JSON.stringify(row.value).includes(needle));
      assert.deepEqual(
        hits,
        [],
        `${context}: expected no Redis key or value under ${pattern} to mention ${show(needle)}, found ${show(hits)}`,
      );
    }
  }

  /** Tail of redis-server's own output, for failure reports. */
  diagnostics() {
    return `--- redis-server :${this.port} (${this.running ? "running" : "stopped"}) ---\n${this.output.trim().split("\n").slice(-8).join("\n")}`;
  }
}

// ---------------------------------------------------------------------------
// Redis Cluster (added for redis-cluster.test.mjs)
// ---------------------------------------------------------------------------

/** A Redis error reply (`-ERR ...`, `-MOVED ...`), as a value of {@link redisPipeline}. */
export class RedisReplyError extends Error {}

/** One command as RESP: an array of bulk strings. */
function respEncode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Parses one RESP2 reply at `i` of `buf`: `{ value, next }`, or null while it is
 * incomplete. Simple strings and bulk strings become strings, integers numbers,
 * arrays arrays, nil null, error replies {@link RedisReplyError} values.
 */
function respParse(buf, i) {
  if (i >= buf.length) return null;
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  switch (type) {
    case '+':
      return { value: line, next: eol + 2 };
    case '-':
      return { value: new RedisReplyError(line), next: eol + 2 };
    case ':':
      return { value: Number(line), next: eol + 2 };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, next: eol + 2 };
      const end = eol + 2 + n;
      if (buf.length < end + 2) return null;
      return { value: buf.toString('utf8', eol + 2, end), next: end + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, next: eol + 2 };
      const items = [];
      let j = eol + 2;
      for (let k = 0; k < n; k += 1) {
        const item = respParse(buf, j);
        if (item === null) return null;
        items.push(item.value);
        j = item.next;
      }
      return { value: items, next: j };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

/**
 * Sends `commands` (arrays of arguments) pipelined on one fresh connection to
 * 127.0.0.1:`port` and resolves with one reply per command (an error reply is
 * a {@link RedisReplyError} value, not a rejection). Bounded: a refused
 * connection, a closed one or no full answer within `timeoutMs` (a dead or
 * SIGSTOPped server) rejects. A raw RESP client rather than `redis-cli`,
 * because cluster checks need structured replies (`CLUSTER SLOTS`) and many
 * `CLUSTER KEYSLOT`s in one round trip.
 */
export function redisPipeline(port, commands, { timeoutMs = 5_000 } = {}) {
  return new Promise((res, rej) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let offset = 0;
    const replies = [];
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) rej(err);
      else res(replies);
    };
    const what = () => `redis :${port} ${commands.map((c) => c.join(' ').slice(0, 80)).join('; ').slice(0, 300)}`;
    const timer = setTimeout(
      () => finish(new Error(`${what()}: no complete answer within ${timeoutMs} ms (${replies.length}/${commands.length} replies)`)),
      timeoutMs,
    );
    socket.on('connect', () => socket.write(Buffer.concat(commands.map(respEncode))));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        for (;;) {
          const reply = respParse(buf, offset);
          if (reply === null) break;
          replies.push(reply.value);
          offset = reply.next;
          if (replies.length === commands.length) return finish();
        }
      } catch (err) {
        finish(new Error(`${what()}: ${err.message}`));
      }
    });
    socket.on('error', (err) => finish(new Error(`${what()}: ${err.message}`)));
    socket.on('close', () => finish(new Error(`${what()}: connection closed after ${replies.length}/${commands.length} replies`)));
  });
}

/** One command via {@link redisPipeline}; an error reply rejects. */
export async function redisCommand(port, args, options) {
  const [reply] = await redisPipeline(port, [args], options);
  if (reply instanceof RedisReplyError) throw reply;
  return reply;
}

/** `field:value` lines of an `INFO` or `CLUSTER INFO` reply as an object. */
function parseInfo(text) {
  const out = {};
  for (const line of String(text).split(/\r?\n/)) {
    const m = /^([a-z0-9_]+):(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** Hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

/**
 * `CLUSTER NODES` as `[{ id, port, flags, masterId, link, slots: [[from, to]], self,
 * master, replica, failing }]` (slots being imported or migrated are ignored).
 */
function parseClusterNodes(text) {
  return String(text)
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [id, addr, flagText, masterId, , , , link, ...slotTexts] = line.split(' ');
      const flags = flagText.split(',');
      const port = Number(/:(\d+)@/.exec(addr)?.[1]);
      const slots = slotTexts
        .filter((s) => !s.startsWith('['))
        .map((s) => {
          const [from, to = from] = s.split('-').map(Number);
          return [from, to];
        });
      return {
        id,
        port,
        flags,
        masterId: masterId === '-' ? null : masterId,
        link,
        slots,
        self: flags.includes('myself'),
        master: flags.includes('master'),
        replica: flags.includes('slave'),
        failing: flags.includes('fail') || flags.includes('fail?') || flags.includes('noaddr') || flags.includes('handshake'),
      };
    });
}

/** How many slots `ranges` ([[from, to]]) cover, or -1 when two of them overlap or leave 0..16383. */
function slotCoverage(ranges) {
  const seen = new Uint8Array(CLUSTER_SLOTS);
  let count = 0;
  for (const [from, to] of ranges) {
    for (let slot = from; slot <= to; slot += 1) {
      if (slot < 0 || slot >= CLUSTER_SLOTS || seen[slot]) return -1;
      seen[slot] = 1;
      count += 1;
    }
  }
  return count;
}

/** A free port `p` of 127.0.0.1 whose cluster bus port `p + 10000` is free too (so at most 55535). */
async function freeClusterPort() {
  for (;;) {
    const port = await freePort();
    if (port > 55_535) continue;
    const busFree = await new Promise((res) => {
      const probe = createServer();
      probe.unref();
      probe.once('error', () => res(false));
      probe.listen(port + 10_000, '127.0.0.1', () => probe.close(() => res(true)));
    });
    if (busFree) return port;
  }
}

/**
 * A private Redis Cluster for one describe block: `masters` masters with
 * `replicas` replicas each (default 3 + 3), every node a {@link RedisServer}
 * started with `--cluster-enabled yes` on a free port (and free bus port) and
 * proven ours the same way: `INFO server` names the pid of the child we
 * spawned, so a server already on a port is never adopted. `redis-cli
 * --cluster create` joins them, and {@link waitHealthy} waits until every node
 * agrees that all 16384 slots are served by `masters` masters, each with its
 * replicas connected.
 *
 * - `url`: `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=127.0.0.1:P3`
 *   (the initial masters; fred's cluster URL), for the host's `REDIS_URL`;
 * - `nodes`: `[{ port, pid, role }]`, `role` as created (`masters()` is current);
 * - faults: {@link kill} (SIGKILL), {@link pause} / {@link resume} (SIGSTOP /
 *   SIGCONT), {@link restart} (same port, same `nodes-<port>.conf`, so the node
 *   rejoins: a failed-over master comes back as a replica).
 */
export class RedisCluster {
  constructor(dir, { masters, replicas, nodeTimeoutMs }) {
    this.dir = dir;
    this.masterCount = masters;
    this.replicasPerMaster = replicas;
    this.nodeTimeoutMs = nodeTimeoutMs;
    /** @type {RedisServer[]} */
    this.servers = [];
    /** Ports of SIGSTOPped nodes (alive, but not answering). */
    this.paused = new Set();
    this.roles = new Map();
    this.url = null;
    this.createOutput = '';
  }

  /** Starts the nodes, creates the cluster, waits until it is healthy. */
  static async start({ masters = 3, replicas = 1, nodeTimeoutMs = 1_000, timeoutMs = 60_000 } = {}) {
    const dir = tempDir('rtm-redis-cluster-');
    const cluster = new RedisCluster(dir, { masters, replicas, nodeTimeoutMs });
    try {
      for (let i = 0; i < masters * (1 + replicas); i += 1) {
        cluster.servers.push(
          await RedisServer.start({
            pickPort: freeClusterPort,
            args: (port) => {
              // A conf left by an attempt on this port that lost it would make a stranger of us.
              rmSync(join(dir, `nodes-${port}.conf`), { force: true });
              return cluster.#nodeArgs(port);
            },
          }),
        );
      }
      const addrs = cluster.servers.map((s) => `127.0.0.1:${s.port}`);
      const { stdout, stderr } = await execFileAsync(
        'redis-cli',
        ['--cluster', 'create', ...addrs, '--cluster-replicas', String(replicas), '--cluster-yes'],
        { timeout: timeoutMs },
      ).catch((err) => {
        throw new Error(`redis-cli --cluster create failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
      });
      cluster.createOutput = `${stdout}\n${stderr}`;
      const topology = await cluster.waitHealthy({ timeoutMs });
      for (const m of topology) {
        cluster.roles.set(m.port, 'master');
        for (const r of m.replicas) cluster.roles.set(r, 'replica');
      }
      const seeds = topology.map((m) => m.port);
      cluster.url = `redis-cluster://127.0.0.1:${seeds[0]}?${seeds
        .slice(1)
        .map((p) => `node=127.0.0.1:${p}`)
        .join('&')}`;
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  #nodeArgs(port) {
    return [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(this.dir, `nodes-${port}.conf`),
      '--cluster-node-timeout',
      String(this.nodeTimeoutMs),
      '--dir',
      this.dir,
    ];
  }

  /** The node on `port`. */
  server(port) {
    const server = this.servers.find((s) => s.port === port);
    assert.ok(server, `no node of this cluster on port ${port}`);
    return server;
  }

  /** `[{ port, pid, role }]`: every node, its current pid (none while killed) and its role at creation. */
  get nodes() {
    return this.servers.map((s) => ({ port: s.port, pid: s.running ? s.proc.pid : null, role: this.roles.get(s.port) ?? 'unknown' }));
  }

  /** Ports of the nodes that run and answer (not killed, not SIGSTOPped). */
  livePorts() {
    return this.servers.filter((s) => s.running && !this.paused.has(s.port)).map((s) => s.port);
  }

  /** Any command on the node at `port`, as parsed RESP (an error reply rejects). */
  command(port, ...args) {
    return redisCommand(port, args);
  }

  /** Asks the live nodes in turn; the first answer wins. */
  async #anyLive(fn) {
    const errors = [];
    for (const port of this.livePorts()) {
      try {
        return await fn(port);
      } catch (err) {
        errors.push(`:${port}: ${err.message}`);
      }
    }
    throw new Error(`no live cluster node answered: ${errors.join('; ') || 'none is running'}`);
  }

  /** `CLUSTER NODES` as seen by the node at `port` (see parseClusterNodes). */
  async clusterNodes(port) {
    return parseClusterNodes(await this.command(port, 'CLUSTER', 'NODES'));
  }

  /**
   * The current masters (from `CLUSTER NODES` of a live node; roles change after a
   * failover): `[{ port, id, slots: [[from, to]], replicas: [port] }]`, by first slot.
   * Failed nodes are left out.
   */
  async masters() {
    return this.#anyLive(async (port) => RedisCluster.#mastersOf(await this.clusterNodes(port)));
  }

  static #mastersOf(view) {
    return view
      .filter((n) => n.master && !n.failing && n.slots.length > 0)
      .map((m) => ({
        port: m.port,
        id: m.id,
        slots: m.slots,
        replicas: view.filter((r) => r.replica && !r.failing && r.masterId === m.id).map((r) => r.port),
      }))
      .sort((a, b) => a.slots[0][0] - b.slots[0][0]);
  }

  /** `CLUSTER KEYSLOT key`. */
  async keySlot(key) {
    return this.#anyLive((port) => this.command(port, 'CLUSTER', 'KEYSLOT', key));
  }

  /** The slot of each of `keys` (one pipelined round trip). */
  async keySlots(keys) {
    if (keys.length === 0) return [];
    return this.#anyLive(async (port) => {
      const replies = await redisPipeline(port, keys.map((k) => ['CLUSTER', 'KEYSLOT', k]));
      const bad = replies.find((r) => typeof r !== 'number');
      if (bad !== undefined) throw new Error(`CLUSTER KEYSLOT answered ${show(String(bad))}`);
      return replies;
    });
  }

  /**
   * Every key on every current master: `[{ key, port }]` (SCAN 0 MATCH * COUNT 1000
   * until the cursor is 0, on each master), sorted by key.
   */
  async scanAll() {
    const out = [];
    for (const { port } of await this.masters()) {
      let cursor = '0';
      do {
        const [next, keys] = await this.command(port, 'SCAN', cursor, 'MATCH', '*', 'COUNT', 1000);
        for (const key of keys) out.push({ key, port });
        cursor = next;
      } while (cursor !== '0');
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Port of the master serving `slot` (`CLUSTER SLOTS` of a live node), or null. */
  async masterOfSlot(slot) {
    return this.#anyLive((port) => this.#masterOfSlotAt(port, slot));
  }

  async #masterOfSlotAt(port, slot) {
    const ranges = await this.command(port, 'CLUSTER', 'SLOTS');
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    return range ? Number(range[2][1]) : null;
  }

  /** SIGKILLs the node at `port` (no save, no goodbye). */
  async kill(port) {
    const server = this.server(port);
    await server.kill9();
    this.paused.delete(port);
  }

  /** SIGSTOPs the node at `port`: it keeps its sockets but answers nothing. */
  pause(port) {
    const server = this.server(port);
    assert.ok(server.running, `pause: node ${port} is not running`);
    server.proc.kill('SIGSTOP');
    this.paused.add(port);
  }

  /** SIGCONTs a node {@link pause}d before. */
  resume(port) {
    const server = this.server(port);
    server.proc.kill('SIGCONT');
    this.paused.delete(port);
  }

  /**
   * Starts a killed node again on its port with its `nodes-<port>.conf`, proven our
   * own child like the first start (an empty dataset: it resyncs from its master).
   */
  async restart(port) {
    await this.server(port).restart();
    this.paused.delete(port);
  }

  /**
   * Waits until `slot` is served by another master than `from` and every live node
   * says `cluster_state:ok` and names that master for the slot. Resolves with
   * `{ port, at }`: the new master and when this was first seen.
   */
  async waitFailover(slot, { from, timeoutMs = 60_000 } = {}) {
    assert.equal(typeof from, 'number', 'waitFailover: `from` is the old master port');
    let last;
    const port = await waitUntil(
      async () => {
        const views = [];
        for (const p of this.livePorts()) {
          const state = parseInfo(await this.command(p, 'CLUSTER', 'INFO')).cluster_state;
          views.push({ node: p, state, master: await this.#masterOfSlotAt(p, slot) });
        }
        last = views;
        const masters = new Set(views.map((v) => v.master));
        const [master] = masters;
        const ok = views.length > 0 && views.every((v) => v.state === 'ok') && masters.size === 1;
        return ok && master !== from && master !== null && this.livePorts().includes(master) ? master : false;
      },
      { timeoutMs, intervalMs: 50, what: () => `slot ${slot} to fail over from :${from} (views: ${show(last)})` },
    );
    return { port, at: Date.now() };
  }

  /**
   * Waits until the cluster is healthy on every live node: `cluster_state:ok` with all
   * 16384 slots ok, `CLUSTER NODES` and `CLUSTER SLOTS` both covering every slot once
   * with `masters` masters that every node agrees on, each with at least `replicas`
   * connected replicas, and every replica's `master_link_status:up`. Resolves with
   * the topology (see {@link masters}).
   */
  async waitHealthy({ masters = this.masterCount, replicas = this.replicasPerMaster, timeoutMs = 60_000 } = {}) {
    let problem = 'not checked yet';
    return waitUntil(
      async () => {
        problem = await this.#healthProblem(masters, replicas);
        return typeof problem === 'string' ? false : problem;
      },
      { timeoutMs, intervalMs: 100, what: () => `the Redis Cluster to be healthy (${masters} masters with ${replicas} replica(s) each): ${problem}` },
    );
  }

  /** A string naming what is not healthy yet, or the topology. */
  async #healthProblem(masterCount, replicaCount) {
    const live = this.livePorts();
    if (live.length === 0) return 'no live node';
    let agreed = null;
    for (const port of live) {
      let info;
      let view;
      let slots;
      let replication;
      try {
        [info, view, slots, replication] = await redisPipeline(port, [
          ['CLUSTER', 'INFO'],
          ['CLUSTER', 'NODES'],
          ['CLUSTER', 'SLOTS'],
          ['INFO', 'replication'],
        ]);
      } catch (err) {
        return `:${port} does not answer (${err.message})`;
      }
      const ci = parseInfo(info);
      if (ci.cluster_state !== 'ok') return `:${port} cluster_state:${ci.cluster_state}`;
      if (Number(ci.cluster_slots_ok) !== CLUSTER_SLOTS) return `:${port} cluster_slots_ok:${ci.cluster_slots_ok}`;
      const nodes = parseClusterNodes(view);
      const topology = RedisCluster.#mastersOf(nodes);
      if (topology.length !== masterCount) return `:${port} sees ${topology.length} masters: ${show(topology)}`;
      const covered = slotCoverage(topology.flatMap((m) => m.slots));
      if (covered !== CLUSTER_SLOTS) return `:${port} CLUSTER NODES masters cover ${covered} slots`;
      const short = topology.find((m) => m.replicas.length < replicaCount);
      if (short) return `:${port} sees master :${short.port} with replicas ${show(short.replicas)}`;
      if (topology.some((m) => !live.includes(m.port))) return `:${port} names a master that is not live: ${show(topology)}`;
      if (!Array.isArray(slots)) return `:${port} CLUSTER SLOTS answered ${show(slots)}`;
      const slotRanges = slots.map(([from, to]) => [from, to]);
      if (slotCoverage(slotRanges) !== CLUSTER_SLOTS) return `:${port} CLUSTER SLOTS covers ${slotCoverage(slotRanges)} slots`;
      for (const [from, , master, ...reps] of slots) {
        const owner = topology.find((m) => m.slots.some(([a, b]) => from >= a && from <= b));
        if (!owner || owner.port !== Number(master[1])) return `:${port} CLUSTER SLOTS and CLUSTER NODES disagree on slot ${from}`;
        if (reps.length < replicaCount) return `:${port} CLUSTER SLOTS lists ${reps.length} replicas for slot ${from}`;
      }
      const me = nodes.find((n) => n.self);
      const repl = parseInfo(replication);
      if (me?.replica && repl.master_link_status !== 'up') return `replica :${port} master_link_status:${repl.master_link_status}`;
      const signature = JSON.stringify(topology.map((m) => [m.port, m.slots, [...m.replicas].sort()]));
      if (agreed === null) agreed = signature;
      else if (agreed !== signature) return `nodes disagree on the topology: ${agreed} vs ${signature} (:${port})`;
    }
    return JSON.parse(agreed).map(([port, slots, reps]) => ({ port, slots, replicas: reps }));
  }

  /**
   * Waits until the replicas of the master at `port` have received everything the
   * master had written when called (replication offsets), so a failover loses
   * nothing written before.
   */
  async waitReplicated(port, { timeoutMs = 30_000 } = {}) {
    const offset = Number(parseInfo(await this.command(port, 'INFO', 'replication')).master_repl_offset);
    const master = (await this.masters()).find((m) => m.port === port);
    assert.ok(master && master.replicas.length > 0, `waitReplicated: :${port} is no master with replicas (${show(master)})`);
    let last;
    await waitUntil(
      async () => {
        last = [];
        for (const r of master.replicas) {
          last.push(Number(parseInfo(await this.command(r, 'INFO', 'replication')).slave_repl_offset));
        }
        return last.every((o) => o >= offset);
      },
      { timeoutMs, what: () => `replicas ${show(master.replicas)} of :${port} to reach offset ${offset} (at ${show(last)})` },
    );
  }

  /** Stops every node (SIGKILL) and removes the folder. */
  async stop() {
    await Promise.allSettled(this.servers.map((s) => s.kill9()));
    this.paused.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Tail of each node's output, for failure reports. */
  diagnostics() {
    const parts = [`--- redis cluster ${this.url ?? '(not created)'} nodes ${show(this.nodes)} paused ${show([...this.paused])} ---`];
    for (const s of this.servers) parts.push(s.diagnostics());
    return parts.join('\n');
  }
}

// ---------------------------------------------------------------------------
// host nodes
// ---------------------------------------------------------------------------

/** Fails loudly (never skips) when the host binary has not been built. */
export function assertHostBinary() {
  try {
    accessSync(HOST_BIN, fsConstants.X_OK);
  } catch {
    throw new Error(
      `rtm-host binary not found or not executable at ${HOST_BIN}. ` +
        "Build it first (cargo build -p rtm-host) or point RTM_HOST_BIN at it.",
    );
  }
}

const LISTENING_RE = /^rtm-host listening on (http:\/\/127\.0\.0\.1:(\d+))\s*$/m;

/**
 * Spawns the host binary on a free port of 127.0.0.1 with only the settings `env` gives
 * (see {@link hostChildEnv}); the child is killed with the test process if it is left.
 */
function spawnHost(env, args) {
  assertHostBinary();
  const childEnv = hostChildEnv(env, {
    PORT: '0',
    BIND_ADDR: '127.0.0.1',
    RUST_LOG: process.env.RUST_LOG ?? 'info',
    NO_COLOR: '1',
  });
  const child = spawn(HOST_BIN, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  return child;
}

/** One spawned `rtm-host` process. */
export class HostNode {
  constructor(name, child) {
    this.name = name;
    this.proc = child;
    this.url = null;
    this.port = null;
    this.stdout = '';
    /** Full stderr (logs) is kept, capped, so a failure can show what the host saw. */
    this.stderr = '';
    /** Offset into {@link stderr} at which the current test started. */
    this.mark = 0;
    this.exit = null;
    this.exited = new Promise((res) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        liveChildren.delete(child);
        res(this.exit);
      }),
    );
  }

  /**
   * Spawns a host. `env` holds the host config (PORT, REDIS_URL,
   * PRESENCE_*...); the host gets nothing else of the caller's shell but
   * the basics of {@link hostChildEnv}, so a stray REDIS_URL cannot turn a
   * memory test into a Redis one.
   */
  static async start({ name = 'host', env = {}, readyTimeoutMs = 30_000, args = [], waitReady } = {}) {
    const child = spawnHost(env, args);
    const node = new HostNode(name, child);
    node.env = env;
    node.args = args;

    const ready = new Promise((res, rej) => {
      child.stdout.on('data', (chunk) => {
        node.stdout += chunk.toString();
        const m = LISTENING_RE.exec(node.stdout);
        if (m && !node.url) {
          node.url = m[1];
          node.port = Number(m[2]);
          res();
        }
      });
      child.once('error', (err) => rej(new Error(`${name}: cannot spawn ${HOST_BIN}: ${err.message}`)));
      node.exited.then(({ code, signal }) =>
        rej(new Error(`${name}: rtm-host exited before it was ready (code ${code}, signal ${signal})\n${node.logTail()}`)),
      );
    });
    child.stderr.on('data', (chunk) => {
      node.stderr += chunk.toString();
      if (node.stderr.length > 4_000_000) {
        const cut = node.stderr.length - 2_000_000;
        node.stderr = node.stderr.slice(cut);
        node.mark = Math.max(0, node.mark - cut);
      }
    });

    let timer;
    const timeout = new Promise((_, rej) => {
      timer = setTimeout(
        () => rej(new Error(`${name}: no "rtm-host listening on ..." line within ${readyTimeoutMs} ms\n${node.logTail()}`)),
        readyTimeoutMs,
      );
    });
    try {
      await Promise.race([ready, timeout]);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    } finally {
      clearTimeout(timer);
    }
    // With a tenants file every tenant's plugins folder loads the same way.
    if (waitReady ?? Boolean(env.PLUGINS_DIR || env.TENANTS_FILE || args.includes('--tenants-file'))) {
      // Plugins compile in the background after the listener is up; /readyz says when
      // every file has been tried.
      await waitUntil(async () => (await httpStatus(`${node.url}/readyz`).catch(() => 0)) === 200, {
        timeoutMs: readyTimeoutMs,
        what: `${name} /readyz (plugins loaded)`,
      });
    }
    return node;
  }

  /** True while the process runs. */
  get running() {
    return this.exit === null;
  }

  /** Sends a signal (SIGTERM for a graceful stop, SIGKILL for a crash). */
  signal(sig) {
    if (this.running) this.proc.kill(sig);
  }

  /** Waits for the process to exit; throws after `timeoutMs`. */
  async waitExit(timeoutMs = 5_000) {
    let timer;
    const timeout = new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${this.name}: still running ${timeoutMs} ms after the signal`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cleanup: SIGTERM, then SIGKILL if it does not exit promptly. */
  async stop() {
    if (!this.running) return;
    this.signal('SIGTERM');
    try {
      await this.waitExit(3_000);
    } catch {
      this.signal('SIGKILL');
      await this.exited;
    }
  }

  /** The last `maxLines` lines of stderr since `from` (default: all kept). */
  logTail(from = 0, maxLines = 200) {
    const lines = this.stderr.slice(from).split('\n');
    const tail = lines.slice(-maxLines).join('\n');
    const dropped = lines.length > maxLines ? `[${lines.length - maxLines} earlier lines omitted]\n` : '';
    return dropped + tail;
  }

  /** Logs since the current test started, plus exit status. */
  diagnostics() {
    const status = this.running ? 'running' : `exited code=${this.exit.code} signal=${this.exit.signal}`;
    return `--- ${this.name} ${this.url ?? '(not ready)'} (${status}) stderr since test start ---\n${this.logTail(this.mark)}`;
  }
}

// ---------------------------------------------------------------------------
// clients
// ---------------------------------------------------------------------------

/**
 * Emits `event` and resolves with the first ack argument, failing after
 * `timeoutMs` (a host that never acks is a bug, not a hang).
 * Pass {@link NO_PAYLOAD} to emit the event without any argument.
 */
export async function emitAck(socket, event, payload, timeoutMs = ACK_TIMEOUT_MS) {
  const args = payload === NO_PAYLOAD ? [] : [payload];
  try {
    return await socket.timeout(timeoutMs).emitWithAck(event, ...args);
  } catch (err) {
    throw new Error(`no ack for ${event} ${payload === NO_PAYLOAD ? '(no payload)' : show(payload)} within ${timeoutMs} ms (${err.message})`);
  }
}

/** Builds a predicate matching events whose fields equal those of `fields`. */
export function matching(fields) {
  return (event) => Object.entries(fields).every(([k, v]) => event?.[k] === v);
}

/**
 * Every `presence:event` a socket received, in order, with waiting helpers.
 * Attached at connect time so no event can slip past between an ack and
 * the test starting to listen.
 */
export class EventLog {
  constructor(socket, label, eventName = 'presence:event') {
    this.label = label;
    this.eventName = eventName;
    this.events = [];
    this.waiters = new Set();
    socket.on(eventName, (event) => {
      this.events.push(event);
      for (const waiter of this.waiters) waiter();
    });
  }

  /** Events matching `pred` (a predicate or a fields object). */
  filter(pred) {
    const p = typeof pred === 'function' ? pred : matching(pred);
    return this.events.filter(p);
  }

  count(pred) {
    return this.filter(pred).length;
  }

  /** Resolves with the first event matching `pred`, received before or after the call. */
  async waitFor(pred, timeoutMs = EVENT_TIMEOUT_MS) {
    const [event] = await this.waitForCount(pred, 1, timeoutMs);
    return event;
  }

  /** Resolves once at least `n` events match `pred`; returns the matches. */
  async waitForCount(pred, n, timeoutMs = EVENT_TIMEOUT_MS) {
    const p = typeof pred === 'function' ? pred : matching(pred);
    const found = () => this.events.filter(p);
    if (found().length >= n) return found();
    return new Promise((res, rej) => {
      const waiter = () => {
        if (found().length >= n) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          res(found());
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const want = typeof pred === 'function' ? 'a matching event' : show(pred);
        rej(
          new Error(
            `${this.label}: expected ${n} ${this.eventName}(s) matching ${want} within ${timeoutMs} ms, ` +
              `got ${found().length}; all events received: ${show(this.events)}`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /**
   * Asserts that exactly `n` events match `pred` so far. After a barrier
   * ({@link Harness#barrier}) this proves "exactly once" (no late duplicate)
   * or "never" (n = 0): anything the action caused has arrived by then.
   */
  assertCount(pred, n, context = '') {
    const p = typeof pred === 'function' ? pred : matching(pred);
    const hits = this.events.filter(p);
    assert.equal(
      hits.length,
      n,
      `${this.label}${context ? ` (${context})` : ''}: expected exactly ${n} event(s) matching ` +
        `${typeof pred === 'function' ? 'predicate' : show(pred)}, got ${hits.length}: ${show(hits)}`,
    );
    return hits;
  }
}

/** A connected `socket.io-client` socket with presence helpers. */
export class Client {
  constructor(socket, label, transport, host = null) {
    this.socket = socket;
    this.label = label;
    this.transport = transport;
    /** The {@link HostNode} this socket talks to. */
    this.host = host;
    this.events = new EventLog(socket, label);
    /** Reasons of every `disconnect` this socket saw (socket.io-client's reason strings). */
    this.disconnectReasons = [];
    socket.on('disconnect', (reason) => this.disconnectReasons.push(reason));
  }

  /**
   * Waits until the server has disconnected this socket (the socket saw a
   * `disconnect`); returns the reason. Fails after `timeoutMs`.
   */
  async waitDisconnected(timeoutMs = EVENT_TIMEOUT_MS) {
    await waitUntil(() => this.disconnectReasons.length > 0, {
      timeoutMs,
      what: `${this.label} to be disconnected by the server`,
    });
    return this.disconnectReasons[0];
  }

  get connected() {
    return this.socket.connected;
  }

  /** Raw request: resolves with the ack, whatever it is. */
  request(event, payload = NO_PAYLOAD, timeoutMs = ACK_TIMEOUT_MS) {
    return emitAck(this.socket, event, payload, timeoutMs);
  }

  /** Request that must succeed; returns the ack. */
  async ok(event, payload = NO_PAYLOAD, timeoutMs = ACK_TIMEOUT_MS) {
    return assertOk(await this.request(event, payload, timeoutMs), `${this.label} ${event} ${show(payload === NO_PAYLOAD ? '(none)' : payload)}`);
  }

  /** Request that must fail with `code`; returns the ack. */
  async fails(event, payload, code, timeoutMs = ACK_TIMEOUT_MS) {
    return assertError(
      await this.request(event, payload, timeoutMs),
      code,
      `${this.label} ${event} ${show(payload === NO_PAYLOAD ? '(none)' : payload)}`,
    );
  }

  /** `presence:join` that must succeed. */
  join(roomId, userId, extra = {}) {
    return this.ok('presence:join', { roomId, userId, ...extra });
  }

  /** `presence:snapshot` that must succeed; returns the snapshot array. */
  async snapshot(roomId) {
    const ack = await this.ok('presence:snapshot', { roomId });
    assert.ok(Array.isArray(ack.snapshot), `${this.label}: snapshot must be an array, got ${show(ack)}`);
    return ack.snapshot;
  }

  /**
   * One read-only round trip that proves every earlier request of this
   * socket has been handled completely. The host handles one socket's
   * requests strictly in arrival order and emits each request's ack and the
   * broadcasts it causes before it handles the next one, so once this ack is
   * in, everything the earlier requests caused has been emitted.
   */
  async sync() {
    await this.snapshot(uid('sync'));
  }

  /**
   * Proves the socket survived whatever came before: still connected and a
   * valid (read-only) request still succeeds.
   */
  async assertStillServing(context = '') {
    assert.equal(this.socket.connected, true, `${this.label} must still be connected ${context}`);
    await this.snapshot(uid('alive-check'));
  }

  /** Closes the socket cleanly (the host sees a disconnect). */
  close() {
    this.socket.disconnect();
  }
}

// ---------------------------------------------------------------------------
// harness
// ---------------------------------------------------------------------------

/**
 * Owns the processes and sockets of one describe block. Use
 * `after(() => h.stop())` and `afterEach(() => h.closeClients())`, and wrap
 * test bodies in {@link Harness#wrap} so a failure carries the host logs.
 */
export class Harness {
  constructor() {
    this.redis = null;
    /** A {@link RedisCluster} of this harness ({@link startRedisCluster}), or null. */
    this.redisCluster = null;
    this.hosts = [];
    this.clients = [];
    this.intervals = new Set();
  }

  /** Starts this harness' private Redis. */
  async startRedis() {
    this.redis = await RedisServer.start();
    return this.redis;
  }

  /**
   * Starts this harness' private Redis Cluster (see {@link RedisCluster.start} for
   * `options`), stopped with the harness. Hosts reach it with
   * `env: { REDIS_URL: cluster.url }` (`startHost`'s `redis: true` is the single Redis).
   */
  async startRedisCluster(options) {
    this.redisCluster = await RedisCluster.start(options);
    return this.redisCluster;
  }

  /**
   * Starts a host. With `redis: true` it uses this harness' Redis, otherwise
   * the in-memory store.
   */
  async startHost(name, { redis = false, env = {}, args, waitReady } = {}) {
    const fullEnv = { ...env };
    if (redis) {
      assert.ok(this.redis, 'startRedis() before starting a Redis-backed host');
      fullEnv.REDIS_URL = this.redis.url;
    }
    const node = await HostNode.start({ name, env: fullEnv, args, waitReady });
    this.hosts.push(node);
    if (redis) {
      // "Listening" may precede the first Redis connection; tests start from a ready node.
      await waitUntil(async () => (await httpStatus(`${node.url}/readyz`)) === 200, {
        timeoutMs: 15_000,
        intervalMs: 100,
        what: `${name} /readyz to answer 200 with Redis up`,
      });
    }
    return node;
  }

  /**
   * Opens an official socket.io-client socket to `host` over one transport
   * without waiting for the connection: emits made now are buffered by the
   * client and flushed the moment the server's CONNECT arrives, which is
   * what browsers do on page load. `forceNew` so sockets never share an
   * Engine.IO connection, and no automatic reconnection: tests decide when
   * a client comes back.
   */
  open(host, { transport = 'websocket', label = 'client', namespace, auth, query } = {}) {
    // Tenants are namespaces (PROTOCOL.md "Tenants"): `/acme` is tenant acme.
    const nsp = namespace && namespace !== '/' ? namespace : '';
    const options = {
      transports: [transport],
      forceNew: true,
      reconnection: false,
      timeout: 10_000,
    };
    if (auth !== undefined) options.auth = auth;
    if (query !== undefined) options.query = query;
    const socket = io(`${host.url}${nsp}`, options);
    const client = new Client(socket, `${label}@${host.name}${nsp}/${transport}`, transport, host);
    client.namespace = nsp || '/';
    this.clients.push(client);
    return client;
  }

  /** Like {@link open}, but resolves once the socket is connected. */
  async connect(host, options = {}) {
    const client = this.open(host, options);
    const { socket } = client;
    await new Promise((res, rej) => {
      const timer = setTimeout(() => {
        socket.off('connect', onConnect);
        socket.off('connect_error', onError);
        rej(new Error(`${client.label}: not connected within 10 s`));
      }, 10_000);
      const onConnect = () => {
        clearTimeout(timer);
        socket.off('connect_error', onError);
        res();
      };
      const onError = (err) => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        rej(new Error(`${client.label}: connect_error: ${err.message}`));
      };
      socket.once('connect', onConnect);
      socket.once('connect_error', onError);
    });
    return client;
  }

  /**
   * Opens a socket like {@link open} and waits for the outcome of its
   * namespace connect: `{ client }` once connected, or `{ error }` (the
   * `connect_error`: `error.message`, `error.data`) when the server refused
   * it. A refused socket is closed at once. Neither within 10 s fails.
   */
  async tryConnect(host, options = {}) {
    const client = this.open(host, options);
    const { socket } = client;
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        socket.off('connect', onConnect);
        socket.off('connect_error', onError);
        rej(new Error(`${client.label}: neither connect nor connect_error within 10 s`));
      }, 10_000);
      const onConnect = () => {
        clearTimeout(timer);
        socket.off('connect_error', onError);
        res({ client });
      };
      const onError = (error) => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.disconnect();
        res({ error, client });
      };
      socket.once('connect', onConnect);
      socket.once('connect_error', onError);
    });
  }

  /**
   * A connect that the server must refuse: resolves with the `connect_error`
   * (after asserting its message is `message`, when given, and that its
   * `data`, where the transport carries one, names the same code). A socket
   * that connects instead fails the test.
   */
  async refused(host, options = {}, message = undefined) {
    const { client, error } = await this.tryConnect(host, options);
    if (!error) {
      client.close();
      assert.fail(`${client.label}: expected the connect to be refused${message ? ` with ${message}` : ''}, but it connected`);
    }
    if (message !== undefined) {
      assert.equal(error.message, message, `${client.label}: connect_error message (data: ${show(error.data)})`);
      if (error.data !== undefined && error.data !== null && typeof error.data === 'object' && 'code' in error.data) {
        assert.equal(error.data.code, message, `${client.label}: connect_error data.code: ${show(error.data)}`);
      }
    }
    return error;
  }

  /**
   * Heartbeats all registrations of `client` every `everyMs` so a short
   * PRESENCE_TTL_MS does not expire them while the test runs. Failures are
   * ignored on purpose: the socket may be killed along with its node.
   */
  keepAlive(client, everyMs) {
    const handle = setInterval(() => {
      if (client.connected) client.request('presence:heartbeat', {}, everyMs * 3).catch(() => {});
    }, everyMs);
    this.intervals.add(handle);
    return () => {
      clearInterval(handle);
      this.intervals.delete(handle);
    };
  }

  /**
   * Ordering barrier for "nothing else happened" checks (exactly once, never)
   * in room `roomId`: resolves once everything already caused there has
   * reached every client of `observers` (members of the room), so a count
   * taken right after it is final. It rests on what the host guarantees:
   *
   * 1. each client of `after` (the sockets whose requests caused what is
   *    checked; they must still be connected) makes one more round trip
   *    ({@link Client#sync}), so those requests' broadcasts have been emitted;
   * 2. then for each node of `nodes`, one after another, a fresh socket on
   *    that node joins `roomId` and every observer waits for its `join` (the
   *    marker). A node emits to a room in publication order, the connection to
   *    a client is ordered, and each node's publications reach the other
   *    nodes in order: whatever that node emitted to the room before the
   *    marker (a duplicate, a stray event, a relayed copy) reached every
   *    observer before it. Nodes take turns so that a node relaying another
   *    node's events has received them before its own marker is published.
   *
   * The marker leaves again (its `leave` arrives later), so snapshots taken
   * afterwards do not list it.
   */
  async barrier(roomId, { nodes, observers, after = [], timeoutMs = BARRIER_TIMEOUT_MS, marker: markerSpec = {} }) {
    assert.ok(nodes.length > 0 && observers.length > 0, 'barrier: at least one node and one observer');
    await Promise.all(after.map((client) => client.sync()));
    for (const node of nodes) {
      // `marker` (an object, or a function of the node) may name the marker's tenant
      // namespace, its auth and its userId (which must match the token's `sub`).
      const { userId = uid('barrier-marker'), ...connectOptions } =
        typeof markerSpec === 'function' ? markerSpec(node) : markerSpec;
      const marker = await this.connect(node, { label: 'barrier-marker', ...connectOptions });
      const { self } = await marker.join(roomId, userId);
      await Promise.all(observers.map((o) => o.events.waitFor({ type: 'join', connId: self.connId }, timeoutMs)));
      await marker.ok('presence:leave', { roomId });
      marker.close();
    }
  }

  /**
   * Waits until `host` has been through the disconnect of every socket this
   * harness closed: its `rtm_sockets_connected` gauge equals the sockets
   * still open to it here. The host counts a socket out in the same step that
   * hands its registrations to removal (or, with a resume grace, to the grace
   * timer), and nothing else announces a disconnect under a grace period.
   */
  async disconnectsHandled(host, timeoutMs = BARRIER_TIMEOUT_MS) {
    let last;
    await waitUntil(
      async () => {
        const open = this.clients.filter((c) => c.host === host && c.connected).length;
        last = { open, gauge: metricValue(await getText(`${host.url}/metrics`), 'rtm_sockets_connected') };
        return last.gauge === open;
      },
      { timeoutMs, what: () => `${host.name} to count only the open sockets (last: ${show(last)})` },
    );
  }

  /** Disconnects every client (between tests, so registrations do not pile up). */
  async closeClients() {
    for (const handle of this.intervals) clearInterval(handle);
    this.intervals.clear();
    for (const client of this.clients) client.socket.disconnect();
    this.clients = [];
  }

  /** Tears everything down; safe to call after a failed `before`. */
  async stop() {
    await this.closeClients();
    await Promise.allSettled(this.hosts.map((h) => h.stop()));
    if (this.redis) await this.redis.stop();
    if (this.redisCluster) await this.redisCluster.stop();
  }

  /** Logs of every host since the test started, plus Redis' tail. */
  diagnostics() {
    const parts = this.hosts.map((h) => h.diagnostics());
    if (this.redis) parts.push(this.redis.diagnostics());
    if (this.redisCluster) parts.push(this.redisCluster.diagnostics());
    return parts.join('\n');
  }

  /**
   * Wraps a test body: marks where each host's log stands, and on failure
   * attaches the host logs since that mark to the test report so the
   * failure can be read without rerunning.
   */
  wrap(fn) {
    return async (t) => {
      for (const h of this.hosts) h.mark = h.stderr.length;
      try {
        await fn(t);
      } catch (err) {
        t.diagnostic(`==== host logs for failed test "${t.name}" ====`);
        for (const line of this.diagnostics().split('\n')) t.diagnostic(line);
        throw err;
      }
    };
  }
}

// ---------------------------------------------------------------------------
// plugins (added for plugins.test.mjs)
// ---------------------------------------------------------------------------

/**
 * Prebuilt guest components (`scripts/build-guests.sh`): `RTM_GUESTS_DIR`,
 * default `<repo>/target/wasm-guests/artifacts`.
 */
export const GUESTS_DIR = process.env.RTM_GUESTS_DIR
  ? resolve(process.env.RTM_GUESTS_DIR)
  : resolve(REPO_ROOT, 'target', 'wasm-guests', 'artifacts');

/** Path of a prebuilt guest, e.g. `guestPath('chat-v1.wasm')`. */
export function guestPath(file) {
  return resolve(GUESTS_DIR, file);
}

/** Fails loudly (never skips) when a prebuilt guest component is missing. */
export function assertGuests(files) {
  const missing = files.filter((file) => {
    try {
      accessSync(guestPath(file), fsConstants.R_OK);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(
      `prebuilt guest component(s) missing from ${GUESTS_DIR}: ${missing.join(', ')}. ` +
        'Build them with scripts/build-guests.sh or point RTM_GUESTS_DIR at them.',
    );
  }
}

/**
 * A fresh temporary directory (under the OS temp dir) whose name starts
 * with `prefix`; remove it with `rmSync(dir, { recursive: true, force: true })`.
 */
export function tempDir(prefix = 'rtm-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Temporary folders of one test file, all removed when its tests end (call it at the
 * top level of the file): `scratch(prefix)` makes one, `keep(dir)` adds one made
 * elsewhere, `tenantsFile(prefix, spec)` writes a tenants file (see
 * {@link writeTenantsFile}) into a fresh one and returns its path.
 */
export function scratchSpace() {
  const dirs = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const scratch = (prefix) => {
    const dir = tempDir(prefix);
    dirs.push(dir);
    return dir;
  };
  const keep = (dir) => {
    dirs.push(dir);
    return dir;
  };
  const tenantsFile = (prefix, spec) => {
    const file = join(scratch(prefix), 'tenants.toml');
    writeTenantsFile(file, spec);
    return file;
  };
  return { scratch, keep, tenantsFile };
}

/**
 * A fresh temporary PLUGINS_DIR holding copies of prebuilt guests:
 * `files` maps the name in the directory to the guest's file name, e.g.
 * `{ 'chat.wasm': 'chat-v1.wasm', 'trap.wasm': 'trap.wasm' }`.
 */
export function makePluginsDir(files) {
  assertGuests(Object.values(files));
  const dir = tempDir('rtm-plugins-');
  for (const [name, guest] of Object.entries(files)) copyFileSync(guestPath(guest), join(dir, name));
  return dir;
}

/** `GET url` as parsed JSON (bounded); throws on a non-2xx status. */
export async function getJson(url, timeoutMs = 3_000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** `GET url` as text (bounded); throws on a non-2xx status. */
export async function getText(url, timeoutMs = 3_000) {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

/**
 * Records every `eventName` the client's socket receives (an
 * {@link EventLog} on another event than `presence:event`).
 */
export function listen(client, eventName) {
  return new EventLog(client.socket, `${client.label} ${eventName}`, eventName);
}

/**
 * Value of one Prometheus sample, e.g.
 * `metricValue(text, 'rtm_plugin_calls_total', { plugin: 'chat' })`;
 * `undefined` when no sample of that name carries all the given labels.
 */
export function metricValue(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^([^{\s]+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[pair[1]] = pair[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === String(v))) return Number(m[3]);
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// tenants, auth and limits (added for tenancy/auth/limits.test.mjs)
// ---------------------------------------------------------------------------

/**
 * Spawns a host that is expected to refuse to start (a bad tenants file):
 * resolves with `{ code, signal, stdout, stderr }` once it has exited and
 * its output is drained. A host still running after `timeoutMs` is killed
 * and fails the test (it started when it should not have).
 */
export async function runHostUntilExit({ env = {}, args = [], timeoutMs = 20_000 } = {}) {
  const child = spawnHost(env, args);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk.toString();
  });
  let timer;
  try {
    return await new Promise((res, rej) => {
      child.once('error', (err) => rej(new Error(`cannot spawn ${HOST_BIN}: ${err.message}`)));
      // 'close': the process exited and its stdio is drained.
      child.once('close', (code, signal) => {
        liveChildren.delete(child);
        res({ code, signal, stdout, stderr });
      });
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        rej(new Error(`rtm-host still running after ${timeoutMs} ms (expected it to exit)\nstdout:\n${stdout}\nstderr:\n${stderr.slice(-4000)}`));
      }, timeoutMs);
    });
  } finally {
    clearTimeout(timer);
  }
}

/** One TOML value: strings (JSON escapes are valid TOML basic-string escapes), numbers, booleans, arrays. */
export function tomlValue(value) {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    assert.ok(Number.isFinite(value), `tomlValue: ${value} is not a finite number`);
    return String(value);
  }
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[${value.map(tomlValue).join(', ')}]`;
  throw new Error(`tomlValue: cannot write ${show(value)}`);
}

const isTable = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function tomlPairs(table) {
  return Object.entries(table)
    .filter(([, v]) => v !== undefined && !isTable(v))
    .map(([k, v]) => `${k} = ${tomlValue(v)}`);
}

/**
 * The text of a tenants file (PROTOCOL.md "Tenants"):
 * `{ defaults: { limits: {...}, plugins: {...} }, tenants: [{ id, plugins_dir,
 * api_keys, auth: {...}, limits: {...}, plugins: {...}, webhook: {...} }] }`;
 * a tenant's plain-object values become its `[tenant.<key>]` sub-tables.
 */
export function tenantsToml({ defaults = {}, tenants = [] } = {}) {
  const lines = ['# tenants file written by host/tests/js'];
  for (const [name, table] of Object.entries(defaults)) {
    lines.push('', `[defaults.${name}]`, ...tomlPairs(table));
  }
  for (const tenant of tenants) {
    const { id, ...rest } = tenant;
    lines.push('', '[[tenant]]', ...tomlPairs({ id, ...rest }));
    for (const [name, table] of Object.entries(rest)) {
      if (isTable(table)) lines.push(`[tenant.${name}]`, ...tomlPairs(table));
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes a tenants file (`spec` for {@link tenantsToml}, or raw text). By
 * default the new content is written under a hidden temporary name in the
 * same folder and renamed over the file (what editors and config managers
 * do, and never a half-written file); `{ inPlace: true }` rewrites the file
 * itself instead.
 */
export function writeTenantsFile(path, spec, { inPlace = false } = {}) {
  const text = typeof spec === 'string' ? spec : tenantsToml(spec);
  if (inPlace) {
    writeFileSync(path, text);
  } else {
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(3).toString('hex')}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  }
  return text;
}

/** `GET /admin/tenants` of a host. */
export function tenantsView(host) {
  return getJson(`${host.url}/admin/tenants`);
}

/** The `/admin/tenants` entry of tenant `id`, or undefined. */
export async function tenantView(host, id) {
  const view = await tenantsView(host);
  assert.ok(Array.isArray(view.tenants), `/admin/tenants must list tenants: ${show(view)}`);
  return view.tenants.find((t) => t.id === id);
}

/**
 * Waits until `host` counts exactly `n` sockets of tenant `id`
 * (`/admin/tenants` `connections`, and `connectionsCluster` too when
 * `cluster` is given). A refused or closed socket that stays counted never
 * gets there.
 */
export async function waitConnections(host, id, n, { cluster, timeoutMs = EVENT_TIMEOUT_MS * 2 } = {}) {
  let last;
  await waitUntil(
    async () => {
      last = await tenantView(host, id);
      return last !== undefined && last.connections === n && (cluster === undefined || last.connectionsCluster === cluster);
    },
    {
      timeoutMs,
      what: () => `${host.name} to count ${n} connection(s) of tenant ${id}${cluster === undefined ? '' : ` (${cluster} cluster-wide)`} (last: ${show(last)})`,
    },
  );
  return last;
}

// --- JWT (signed here with node:crypto only; no JWT library) ---

/** base64url of a string or Buffer, unpadded (RFC 7515). */
export function base64url(input) {
  return Buffer.from(input).toString('base64url');
}

/** Seconds since the epoch (the unit of `exp`, `nbf`, `iat`). */
export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

/**
 * A compact JWS: `header.claims.signature`. `alg` goes into the header and
 * picks the signature unless `signWith` says otherwise (to forge mismatches):
 * `HS256` (key: the secret, string or Buffer), `RS256` / `ES256` / `EdDSA`
 * (key: a private KeyObject; ES256 signatures are raw r||s, `dsaEncoding:
 * 'der'` forges the wrong encoding), `none` (empty signature).
 */
export function signJwt(claims, { alg = 'HS256', key, kid, header = {}, signWith = alg, dsaEncoding = 'ieee-p1363' } = {}) {
  const head = { alg, typ: 'JWT', ...(kid === undefined ? {} : { kid }), ...header };
  const input = `${base64url(JSON.stringify(head))}.${base64url(typeof claims === 'string' ? claims : JSON.stringify(claims))}`;
  let signature;
  switch (signWith) {
    case 'none':
      signature = Buffer.alloc(0);
      break;
    case 'HS256':
      signature = createHmac('sha256', key).update(input).digest();
      break;
    case 'RS256':
      signature = cryptoSign('sha256', Buffer.from(input), key);
      break;
    case 'ES256':
      signature = cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding });
      break;
    case 'EdDSA':
      signature = cryptoSign(null, Buffer.from(input), key);
      break;
    default:
      throw new Error(`signJwt: unsupported alg ${signWith}`);
  }
  return `${input}.${base64url(signature)}`;
}

/**
 * A fresh signing key: `kind` `rsa` (RS256, 2048 bits), `ec` (ES256, P-256)
 * or `ed25519` (EdDSA). Returns the private and public KeyObjects, the
 * public key as SPKI PEM (for `public_key_pem`), as a JWK carrying `kid`
 * (for a JWKS), and `sign(claims, opts)`.
 */
export function makeKeyPair(kind, kid = uid(`${kind}-key`)) {
  const alg = { rsa: 'RS256', ec: 'ES256', ed25519: 'EdDSA' }[kind];
  assert.ok(alg, `makeKeyPair: unknown kind ${kind}`);
  const options = kind === 'rsa' ? { modulusLength: 2048 } : kind === 'ec' ? { namedCurve: 'P-256' } : undefined;
  const { privateKey, publicKey } = generateKeyPairSync(kind, options);
  return {
    kind,
    alg,
    kid,
    privateKey,
    publicKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }),
    jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
    sign: (claims, opts = {}) => signJwt(claims, { alg, key: privateKey, kid, ...opts }),
  };
}

// ---------------------------------------------------------------------------
// Server API (added for api.test.mjs)
// ---------------------------------------------------------------------------

/**
 * One Server API call (PROTOCOL.md "Server API") with Node's own `fetch`:
 * `method` on `${host.url}${path}` (e.g. `/api/v1/acme/publish`). `key`, when
 * given, is sent as `Authorization: Bearer <key>` (`headers` may set any
 * Authorization instead); `body` is sent as JSON, `raw` (a string or Buffer) as
 * it is, both as `Content-Type: application/json`. Resolves with
 * `{ status, body, text, headers }`, `body` the parsed JSON (or `undefined` when the
 * answer is not JSON); bounded, so a wedged host fails the test.
 */
export async function apiRequest(host, path, { method = 'POST', key, body, raw, headers = {}, timeoutMs = 15_000 } = {}) {
  const sent = { ...headers };
  if (key !== undefined) sent.authorization = `Bearer ${key}`;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) sent['content-type'] = 'application/json';
  const res = await fetch(`${host.url}${path}`, { method, headers: sent, body: payload, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/**
 * Sum of every Prometheus sample of `name` that carries all the given labels
 * (e.g. every `code` of one `op`); 0 when there is none.
 */
export function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([^{\s]+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) have[pair[1]] = pair[2];
    if (Object.entries(labels).every(([k, v]) => have[k] === String(v))) sum += Number(m[3]);
  }
  return sum;
}

/**
 * Hostile and broken clients against one node (memory store): what a peer that
 * misbehaves at the TCP, HTTP or Engine.IO level may cost the node, and that it
 * costs the well-behaved clients nothing.
 *
 * Every test starts its own host (PORT=0) and keeps a pair of well-behaved
 * `socket.io-client` members ({@link startSteady}) heartbeating throughout, one of
 * them patching its state on every beat; at the end every one of their acks must
 * have been `ok`, and both must have received every `update` of the patching
 * member, once, in order. What is pinned:
 *
 * 1. A raw WebSocket client that joins a room and then stops reading (its TCP
 *    window closes) while another member floods the room: the others get every
 *    event and every ack, the stalled client is disconnected (ping timeout; the
 *    room sees its `leave`, once) and its TCP connection is closed by the server
 *    without the client ever reading again; the host's RSS stays bounded.
 * 2. 5,000 TCP connections that never send a byte, plus a few that send one
 *    keep-alive request and then idle, are all closed by the server
 *    (`HTTP_HEADER_TIMEOUT_MS=1000`), while a normal client connects and is
 *    served; a control host with `HTTP_HEADER_TIMEOUT_MS=600000`, whose idle
 *    connections were opened first, still holds all of them when the last of the
 *    5,000 has gone (so the setting closed them, not some default).
 * 3. `HTTP_MAX_CONNECTIONS`: with the node full (the two members plus 50 idle
 *    connections), every further connection, and a socket.io-client, is closed at
 *    once (before any of the idle ones, opened earlier, reaches its header
 *    timeout); the members keep being served; `/metrics` counts exactly those
 *    refusals as `refused_full` and every other accept as `accepted`; once the
 *    idle ones timed out a normal client connects again.
 * 4. 5,000 Engine.IO long-polling handshakes that never poll again: after ping
 *    interval + timeout every one of those sids is unknown (HTTP 400, Engine.IO
 *    error code 1).
 * 5. A long-polling client that connects, joins a room and then never polls
 *    again: the server closes it after ping interval + timeout and the room sees
 *    its `leave` (or `expire`), once.
 * 6. One byte at a time: (a) HTTP/1.1 request heads trickled one byte per 200 ms
 *    are closed by the server before the head is complete
 *    (`HTTP_HEADER_TIMEOUT_MS=1000`); (b) a WebSocket client that, once joined,
 *    trickles an incomplete frame (so it never answers a ping again) is closed
 *    after ping interval + timeout and the room sees its `leave`; (c) the
 *    HTTP/2 form of a slow head (the connection preface and a HEADERS frame,
 *    trickled) is closed before it is complete too.
 *
 * Raw peers are built here on `node:net` (a minimal RFC 6455 client and raw
 * HTTP), so the test decides exactly what is sent and when the socket reads.
 * Nothing sleeps to wait for something: waits poll a condition with a generous
 * deadline. "Before" claims are orderings (closed while fewer bytes were sent
 * than the head has; refused while connections opened earlier are still open),
 * not speeds. Measurements (RSS, TCP queues, counts) are printed as `hostile:`
 * lines.
 */

import { describe, it, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as pace } from 'node:timers/promises';
import { Harness, metricValue, show, uid, waitUntil } from './support.mjs';

/** Presence settings: nothing expires by TTL during a test, so a `leave` can only come from a disconnect. */
const LONG_TTL = {
  PRESENCE_TTL_MS: 300_000,
  PRESENCE_REAPER_INTERVAL_MS: 1_000,
  PRESENCE_REAPER_LOOKBACK_MS: 300_000,
};

/** Deadline for anything the host should do "soon" on a loaded 2-core machine. */
const SOON_MS = 60_000;

const EIO_WS_PATH = '/socket.io/?EIO=4&transport=websocket';
const EIO_POLL_PATH = '/socket.io/?EIO=4&transport=polling';
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Engine.IO's payload separator (polling). */
const RS = '\x1e';

const log = (...parts) => console.log('hostile:', ...parts);

// ---------------------------------------------------------------------------
// bookkeeping: every raw socket and timer of a test is gone after it
// ---------------------------------------------------------------------------

const rawSockets = new Set();
const timers = new Set();
/** Halts of the steady members' heartbeat loops (a failed test never reaches `stop()`). */
const steadies = new Set();

function track(socket) {
  rawSockets.add(socket);
  socket.once('close', () => rawSockets.delete(socket));
  return socket;
}

function every(ms, fn) {
  const handle = setInterval(fn, ms);
  timers.add(handle);
  return () => {
    clearInterval(handle);
    timers.delete(handle);
  };
}

// ---------------------------------------------------------------------------
// process and kernel views
// ---------------------------------------------------------------------------

/** Resident set size of process `pid` in KiB (/proc/<pid>/status VmRSS). */
function rssKb(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

const mb = (kb) => `${(kb / 1024).toFixed(1)} MB`;

/** RSS of `pid` sampled every 100 ms until `stop()`: `{ start, peak, last, stop }`. */
function sampleRss(pid) {
  const s = { start: rssKb(pid), peak: 0, last: 0 };
  s.peak = s.start;
  s.last = s.start;
  const stop = every(100, () => {
    try {
      s.last = rssKb(pid);
      s.peak = Math.max(s.peak, s.last);
    } catch {
      // the process is gone; the test notices elsewhere
    }
  });
  s.stop = () => {
    stop();
    try {
      s.last = rssKb(pid);
      s.peak = Math.max(s.peak, s.last);
    } catch {
      // gone
    }
    return s;
  };
  return s;
}

/** "Max open files" (soft) of a process, as /proc/<pid>/limits states it. */
function fdLimit(pid = 'self') {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? m[1] : 'unknown';
  } catch {
    return 'unknown';
  }
}

const TCP_STATES = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

/**
 * Both ends of the loopback connection between the host's `hostPort` and the
 * test's `clientPort`, from /proc/net/tcp: `{ server, client }`, each
 * `{ state, txQueue, rxQueue }` (bytes not yet acknowledged by the peer / not
 * yet read by the application) or undefined when the kernel no longer has it.
 */
function tcpPair(hostPort, clientPort) {
  const out = {};
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const lp = parseInt(f[1].split(':')[1], 16);
    const rp = parseInt(f[2].split(':')[1], 16);
    const [tx, rx] = f[4].split(':').map((x) => parseInt(x, 16));
    const entry = { state: TCP_STATES[f[3]] ?? f[3], txQueue: tx, rxQueue: rx };
    if (lp === hostPort && rp === clientPort) out.server = entry;
    if (lp === clientPort && rp === hostPort) out.client = entry;
  }
  return out;
}

// ---------------------------------------------------------------------------
// raw TCP connections
// ---------------------------------------------------------------------------

/**
 * One raw TCP connection to the host that the test never closes before the end:
 * `closed` with `byServer` once the host closed it (FIN or RST), `received`
 * bytes (and the first ones, for reports), `error` the last socket error.
 */
class RawConn {
  constructor(port, label) {
    this.label = label;
    this.connected = false;
    this.closed = false;
    this.byServer = false;
    this.mine = false;
    this.error = null;
    this.received = 0;
    this.firstBytes = '';
    this.openedAt = Date.now();
    this.socket = track(netConnect({ host: '127.0.0.1', port }));
    this.socket.on('data', (chunk) => {
      this.received += chunk.length;
      if (this.firstBytes.length < 200) this.firstBytes += chunk.toString('latin1').slice(0, 200 - this.firstBytes.length);
    });
    this.socket.on('error', (err) => {
      this.error = err;
    });
    this.ready = new Promise((res) => {
      this.socket.once('connect', () => {
        this.connected = true;
        res();
      });
      this.socket.once('close', () => {
        this.closed = true;
        this.closedAt = Date.now();
        this.byServer = this.connected && !this.mine;
        res();
      });
    });
  }

  write(bytes) {
    if (!this.closed) this.socket.write(bytes);
  }

  destroy() {
    this.mine = true;
    this.socket.destroy();
  }
}

/** Runs `fn(i)` for i in 0..n-1 with at most `limit` at once; resolves with the results in order. */
async function mapConcurrent(n, limit, fn) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next;
      next += 1;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

/** Opens `n` raw connections (at most `concurrency` connecting at once); resolves once each connected or failed. */
async function openMany(port, n, { concurrency = 100, label = 'raw' } = {}) {
  return mapConcurrent(n, concurrency, async (i) => {
    const conn = new RawConn(port, `${label}#${i}`);
    await conn.ready;
    return conn;
  });
}

/**
 * Fails, saying why, unless every connection of `conns` was established (a
 * client-side descriptor limit shows as EMFILE here; nothing is raised).
 */
function assertAllConnected(conns, what, hostPid) {
  const failed = conns.filter((c) => !c.connected);
  if (failed.length === 0) return;
  const codes = {};
  for (const c of failed) {
    const code = c.error?.code ?? c.error?.message ?? 'closed before connect';
    codes[code] = (codes[code] ?? 0) + 1;
  }
  const emfile = codes.EMFILE || codes.ENFILE;
  assert.fail(
    `${what}: ${failed.length} of ${conns.length} connections could not be opened: ${show(codes)}` +
      (emfile ? ' (the test process ran out of file descriptors: raise `ulimit -n`; nothing is raised system-wide by this test)' : '') +
      `; open-file limit of the test process ${fdLimit()}, of the host ${fdLimit(hostPid)}`,
  );
}

/** How many of `conns` are closed, and how many of those by the server. */
function closedSummary(conns) {
  const closed = conns.filter((c) => c.closed);
  const withBytes = closed.filter((c) => c.received > 0);
  return {
    closed: closed.length,
    byServer: closed.filter((c) => c.byServer).length,
    of: conns.length,
    withBytesBeforeClose: withBytes.length,
    firstBytesSample: withBytes[0]?.firstBytes,
    errors: [...new Set(closed.map((c) => c.error?.code).filter(Boolean))],
  };
}

/**
 * Opens `n` connections that each send one complete keep-alive request
 * (`GET /healthz`), read its whole answer and then send nothing more.
 */
async function keepAliveThenIdle(port, n, label = 'keepalive') {
  return mapConcurrent(n, 10, async (i) => {
    const conn = new RawConn(port, `${label}#${i}`);
    await conn.ready;
    assert.ok(conn.connected, `${conn.label}: could not connect (${conn.error?.message})`);
    let buf = '';
    const answered = new Promise((res, rej) => {
      const onData = (chunk) => {
        buf += chunk.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length >= end + 4 + length) {
          conn.socket.off('data', onData);
          res();
        }
      };
      conn.socket.on('data', onData);
      conn.socket.once('close', () => rej(new Error(`${conn.label}: closed before its request was answered (got ${show(buf)})`)));
    });
    conn.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: rtm-hostile-keepalive\r\n\r\n`);
    await answered;
    assert.match(buf, /^HTTP\/1\.1 200 /, `${conn.label}: /healthz answer`);
    assert.doesNotMatch(buf, /\r\nconnection:\s*close/i, `${conn.label}: the server must keep the connection alive after /healthz`);
    conn.idleSince = Date.now();
    return conn;
  });
}

/**
 * Sends `bytes` on `conn` one byte every `everyMs` until all are sent or the
 * connection is closed; returns a live `{ sent, total }`.
 */
function trickle(conn, bytes, everyMs) {
  const state = { sent: 0, total: bytes.length };
  const stop = every(everyMs, () => {
    if (conn.closed || state.sent >= bytes.length) {
      stop();
      return;
    }
    conn.write(bytes.subarray(state.sent, state.sent + 1));
    state.sent += 1;
  });
  return state;
}

// ---------------------------------------------------------------------------
// raw HTTP
// ---------------------------------------------------------------------------

/**
 * One HTTP request with node:http: `{ status, text }`. `agent: false` (the default)
 * is a fresh connection with `Connection: close`; pass an Agent to reuse them.
 */
function httpOnce(port, path, { method = 'GET', body, headers = {}, agent = false, timeoutMs = 30_000 } = {}) {
  return new Promise((res, rej) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      method,
      agent,
      headers: { ...(agent === false ? { connection: 'close' } : {}), ...(body === undefined ? {} : { 'content-type': 'text/plain;charset=UTF-8' }), ...headers },
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on('response', (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      r.on('error', rej);
    });
    req.on('error', rej);
    req.end(body);
  });
}

/** A connection closed (FIN or RST) before any answer: what a refused connection looks like. */
function isDropped(err) {
  return err?.code === 'ECONNRESET' || err?.code === 'EPIPE' || /socket hang up/.test(err?.message ?? '');
}

/**
 * {@link httpOnce} over a keep-alive agent, retried when a reused connection was
 * closed by the server just as the request went out (its idle timeout).
 */
async function httpAgent(port, path, agent, options = {}) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await httpOnce(port, path, { ...options, agent });
    } catch (err) {
      if (attempt >= 4 || !isDropped(err)) throw err;
    }
  }
}

/** An Engine.IO long-polling handshake: the open packet (`{ sid, pingInterval, pingTimeout, ... }`). */
async function pollingHandshake(port, agent) {
  const r = agent ? await httpAgent(port, EIO_POLL_PATH, agent) : await httpOnce(port, EIO_POLL_PATH);
  assert.equal(r.status, 200, `polling handshake: HTTP ${r.status} ${show(r.text)}`);
  const [open] = r.text.split(RS);
  assert.equal(open[0], '0', `polling handshake must answer an open packet: ${show(r.text)}`);
  const info = JSON.parse(open.slice(1));
  assert.equal(typeof info.sid, 'string', `open packet sid: ${show(info)}`);
  return info;
}

const pollPath = (sid) => `${EIO_POLL_PATH}&sid=${encodeURIComponent(sid)}`;

/** Whether an answer is Engine.IO's "Session ID unknown" (HTTP 400, error code 1). */
function isUnknownSid(r) {
  if (r.status !== 400) return false;
  try {
    return Number(JSON.parse(r.text).code) === 1;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// a raw WebSocket (RFC 6455) Engine.IO / Socket.IO client
// ---------------------------------------------------------------------------

/** One client-to-server frame (FIN set, masked as RFC 6455 requires of clients). */
function wsFrame(opcode, payload) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = data.length;
  let header;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, 0x80 | len]);
  } else if (len < 65_536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i += 1) body[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([header, mask, body]);
}

/**
 * A hand-made WebSocket client speaking Engine.IO 4 / Socket.IO 5 on `/`: it
 * answers pings (Engine.IO `2` with `3`, WebSocket pings with pongs) while
 * `autoPong` is set, records every text message and `presence:event`, and can
 * stop reading ({@link stopReading}) or be made to write anything.
 */
class RawWs {
  static open(port, label) {
    return new Promise((res, rej) => {
      const key = randomBytes(16).toString('base64');
      const socket = track(netConnect({ host: '127.0.0.1', port }));
      socket.setNoDelay(true);
      let head = Buffer.alloc(0);
      let done = false;
      const finish = (err, value) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
        if (err) {
          socket.destroy();
          rej(new Error(`${label}: WebSocket handshake failed: ${err.message}`));
        } else {
          res(value);
        }
      };
      const timer = setTimeout(() => finish(new Error(`no 101 within 10 s (got ${show(head.toString('latin1'))})`)), 10_000);
      const onError = (err) => finish(err);
      const onClose = () => finish(new Error(`closed during the handshake (got ${show(head.toString('latin1'))})`));
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const text = head.subarray(0, end).toString('latin1');
        if (!/^HTTP\/1\.1 101 /.test(text)) return finish(new Error(`expected 101, got ${show(text)}`));
        const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
        const want = createHash('sha1').update(key + WS_GUID).digest('base64');
        if (accept !== want) return finish(new Error(`bad Sec-WebSocket-Accept ${accept} (want ${want})`));
        const ws = new RawWs(socket, label);
        finish(null, ws);
        const rest = head.subarray(end + 4);
        if (rest.length > 0) ws.onData(rest);
      };
      socket.on('data', onData);
      socket.on('close', onClose);
      socket.on('error', onError);
      socket.once('connect', () =>
        socket.write(
          `GET ${EIO_WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: rtm-hostile-raw-ws\r\n\r\n`,
        ),
      );
    });
  }

  constructor(socket, label) {
    this.socket = socket;
    this.label = label;
    this.autoPong = true;
    this.discarding = false;
    this.discarded = 0;
    this.buf = Buffer.alloc(0);
    this.partial = [];
    this.partialOp = 0;
    this.messages = [];
    this.presence = [];
    this.pings = 0;
    this.closeFrames = 0;
    this.closed = false;
    this.error = null;
    this.ackId = 0;
    this.waiters = new Set();
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.once('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      for (const w of this.waiters) w();
    });
  }

  onData(chunk) {
    if (this.discarding) {
      this.discarded += chunk.length;
      return;
    }
    this.buf = this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const op = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      let mask = null;
      if (masked) {
        if (b.length < off + 4) return;
        mask = b.subarray(off, off + 4);
        off += 4;
      }
      if (b.length < off + len) return;
      const payload = Buffer.from(b.subarray(off, off + len));
      if (mask) for (let i = 0; i < payload.length; i += 1) payload[i] ^= mask[i & 3];
      this.buf = b.subarray(off + len);
      this.onFrame(fin, op, payload);
    }
  }

  onFrame(fin, op, payload) {
    if (op === 0x8) {
      this.closeFrames += 1;
      return;
    }
    if (op === 0x9) {
      if (this.autoPong) this.write(wsFrame(0xa, payload));
      return;
    }
    if (op === 0xa) return;
    if (op === 0x1 || op === 0x2) {
      this.partial = [payload];
      this.partialOp = op;
    } else if (op === 0x0) {
      this.partial.push(payload);
    }
    if (!fin) return;
    const whole = Buffer.concat(this.partial);
    this.partial = [];
    if (this.partialOp === 0x1) this.onText(whole.toString('utf8'));
  }

  onText(text) {
    this.messages.push(text);
    if (text === '2') {
      this.pings += 1;
      if (this.autoPong) this.send('3');
    } else if (text.startsWith('42[')) {
      try {
        const [name, data] = JSON.parse(text.slice(2));
        if (name === 'presence:event') this.presence.push(data);
      } catch {
        // not ours to judge here
      }
    }
    for (const w of this.waiters) w();
  }

  write(bytes) {
    if (!this.closed) this.socket.write(bytes);
  }

  /** Sends one Engine.IO packet as a text frame. */
  send(text) {
    this.write(wsFrame(0x1, text));
  }

  /** Resolves with the first message matching `pred`, received before or after the call. */
  waitMessage(pred, timeoutMs = 10_000, what = 'a matching message') {
    const found = () => this.messages.find(pred);
    const hit = found();
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((res, rej) => {
      const waiter = () => {
        const m = found();
        if (m !== undefined || this.closed) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          if (m !== undefined) res(m);
          else rej(new Error(`${this.label}: closed while waiting for ${what}; messages: ${show(this.messages.slice(-10))}`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        rej(new Error(`${this.label}: no ${what} within ${timeoutMs} ms; messages: ${show(this.messages.slice(-10))}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /**
   * The Engine.IO open packet, then a Socket.IO CONNECT to `/` and its reply
   * (events sent before that reply could reach a namespace the socket is not in yet).
   */
  async connectNamespace() {
    const open = await this.waitMessage((m) => m[0] === '0', 10_000, 'Engine.IO open packet');
    this.eio = JSON.parse(open.slice(1));
    this.send('40');
    const reply = await this.waitMessage((m) => m.startsWith('40') || m.startsWith('44'), 10_000, 'CONNECT reply');
    assert.ok(reply.startsWith('40'), `${this.label}: namespace connect refused: ${reply}`);
    this.sioSid = JSON.parse(reply.slice(2) || '{}').sid;
    return this.eio;
  }

  /** Emits `event` with an ack id; resolves with the ack's first argument. */
  async request(event, payload, timeoutMs = 30_000) {
    this.ackId += 1;
    const id = this.ackId;
    this.send(`42${id}${JSON.stringify([event, payload])}`);
    const m = await this.waitMessage((x) => x.startsWith(`43${id}[`), timeoutMs, `ack ${id} of ${event}`);
    return JSON.parse(m.slice(2 + String(id).length))[0];
  }

  /** Stops reading the socket (and so answering pings): the kernel's receive window closes. */
  stopReading() {
    this.autoPong = false;
    this.socket.pause();
  }

  /** Reads again, throwing away whatever arrives (counted in `discarded`). */
  resumeDiscarding() {
    this.discarding = true;
    this.socket.resume();
  }

  destroy() {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------
// well-behaved members
// ---------------------------------------------------------------------------

/** Asserts `got` equals `want` (long number arrays), naming the first difference. */
function assertSequence(got, want, context) {
  for (let i = 0; i < Math.max(got.length, want.length); i += 1) {
    if (got[i] !== want[i]) {
      assert.fail(
        `${context}: ${got.length} received, ${want.length} expected; first difference at ${i}: got ${show(got.slice(i, i + 5))}, want ${show(want.slice(i, i + 5))}`,
      );
    }
  }
}

/**
 * Two well-behaved socket.io-client members of `roomId` (transports as given),
 * heartbeating until {@link stop}: `a` patches `{ beat: n }` every `everyMs`
 * (each ack awaited before the next), `b` sends plain heartbeats. `served(what)`
 * waits until both have been answered twice more; `stop()` asserts that every
 * ack was ok, that both stayed connected and that `a`, `b` and `observers` got
 * every update of `a`, once, in order.
 */
async function startSteady(h, host, { roomId = uid('steady-room'), transports = ['websocket', 'websocket'], everyMs = 100 } = {}) {
  const a = await h.connect(host, { label: 'steady-a', transport: transports[0] });
  const b = await h.connect(host, { label: 'steady-b', transport: transports[1] });
  const ja = await a.join(roomId, uid('steady-user-a'));
  await b.join(roomId, uid('steady-user-b'));
  const connA = ja.self.connId;
  const beats = [];
  let bAcks = 0;
  const failures = [];
  let running = true;
  const halt = () => {
    running = false;
  };
  steadies.add(halt);
  const loopA = (async () => {
    let n = 0;
    while (running) {
      n += 1;
      try {
        const ack = await a.request('presence:heartbeat', { roomId, patchState: { beat: n } }, SOON_MS);
        if (ack?.ok === true) beats.push(n);
        else failures.push(`steady-a beat ${n}: ${show(ack)}`);
      } catch (err) {
        failures.push(`steady-a beat ${n}: ${err.message}`);
      }
      await pace(everyMs);
    }
  })();
  const loopB = (async () => {
    let n = 0;
    while (running) {
      n += 1;
      try {
        const ack = await b.request('presence:heartbeat', { roomId }, SOON_MS);
        if (ack?.ok === true) bAcks += 1;
        else failures.push(`steady-b heartbeat ${n}: ${show(ack)}`);
      } catch (err) {
        failures.push(`steady-b heartbeat ${n}: ${err.message}`);
      }
      await pace(everyMs);
    }
  })();
  return {
    roomId,
    a,
    b,
    connA,
    async served(what) {
      const a0 = beats.length;
      const b0 = bAcks;
      await waitUntil(() => beats.length >= a0 + 2 && bAcks >= b0 + 2, {
        timeoutMs: SOON_MS,
        what: () => `the steady members to be served ${what} (failures: ${show(failures)})`,
      });
      assert.deepEqual(failures, [], `steady members: every ack ok ${what}`);
    },
    async stop(observers = []) {
      // Two more rounds first, so the last beats come after any observer's join.
      await this.served('at the end');
      halt();
      steadies.delete(halt);
      await Promise.all([loopA, loopB]);
      assert.deepEqual(failures, [], 'steady members: every heartbeat must be answered ok');
      assert.ok(beats.length >= 3 && bAcks >= 3, `steady members ran throughout (a: ${beats.length} beats, b: ${bAcks} heartbeats)`);
      assert.deepEqual(a.disconnectReasons, [], 'steady-a stayed connected');
      assert.deepEqual(b.disconnectReasons, [], 'steady-b stayed connected');
      const last = beats.at(-1);
      for (const c of [a, b, ...observers]) {
        await c.events.waitFor((e) => e.type === 'update' && e.connId === connA && e.state?.beat === last, SOON_MS);
        const got = c.events.filter((e) => e.type === 'update' && e.connId === connA).map((e) => e.state?.beat);
        // a and b were in the room before the first beat; an observer that joined
        // later gets every beat from its first one on.
        const want = c === a || c === b ? beats : beats.slice(Math.max(0, beats.indexOf(got[0])));
        assertSequence(got, want, `${c.label}: every update of steady-a, once, in order`);
      }
      log(`steady members: ${beats.length} patches and ${bAcks} heartbeats answered ok, every update delivered`);
      return { beats: beats.length, heartbeats: bAcks };
    },
  };
}

// ---------------------------------------------------------------------------
// the tests
// ---------------------------------------------------------------------------

describe('hostile clients (memory store)', () => {
  const h = new Harness();
  after(() => h.stop());
  afterEach(async () => {
    for (const halt of steadies) halt();
    steadies.clear();
    for (const t of timers) clearInterval(t);
    timers.clear();
    for (const s of rawSockets) s.destroy();
    rawSockets.clear();
    await h.closeClients();
    await Promise.allSettled(h.hosts.map((node) => node.stop()));
    h.hosts = [];
  });

  it(
    '1. a WebSocket client that stops reading during a flood: the others get every event and ack, it is disconnected (leave, once) and its TCP connection closed, RSS stays bounded',
    { timeout: 400_000 },
    h.wrap(async () => {
      const FLOOD_MIN = 3_000;
      const FLOOD_MAX = 15_000;
      const WINDOW = 32;
      const PAD = 'x'.repeat(2_500);
      const RSS_CAP_KB = 200 * 1024;
      const host = await h.startHost('hostile-stalled', {
        // A write that makes no progress for 3 s closes the connection (HTTP_WRITE_TIMEOUT_MS).
        env: { ...LONG_TTL, SOCKETIO_PING_INTERVAL_MS: 2_000, SOCKETIO_PING_TIMEOUT_MS: 3_000, HTTP_WRITE_TIMEOUT_MS: 3_000 },
      });
      const roomId = uid('flood-room');
      const steady = await startSteady(h, host, { roomId });
      const flooder = await h.connect(host, { label: 'flooder' });
      const { self: floodSelf } = await flooder.join(roomId, uid('flooder'));

      const stalled = await RawWs.open(host.port, 'stalled');
      await stalled.connectNamespace();
      const joined = await stalled.request('presence:join', { roomId, userId: uid('stalled') });
      assert.equal(joined?.ok, true, `stalled client's join: ${show(joined)}`);
      const stalledConn = joined.self.connId;
      await steady.b.events.waitFor({ type: 'join', connId: stalledConn });
      const clientPort = stalled.socket.localPort;

      const rss = sampleRss(host.proc.pid);
      const queues = { maxClientRx: 0, maxServerTx: 0 };
      const stopQueues = every(100, () => {
        const pair = tcpPair(host.port, clientPort);
        queues.maxClientRx = Math.max(queues.maxClientRx, pair.client?.rxQueue ?? 0);
        if (pair.server?.state === 'ESTABLISHED') queues.maxServerTx = Math.max(queues.maxServerTx, pair.server.txQueue);
      });
      stalled.stopReading();

      // The flood: patches with a 2.5 KB state, WINDOW in flight, until the stalled
      // client has left (and at least FLOOD_MIN were sent). One socket's events are
      // handled in order, so the updates carry seq 0, 1, 2, ...
      const stalledLeft = () => steady.b.events.count({ type: 'leave', connId: stalledConn }) > 0;
      const acks = [];
      let next = 0;
      const worker = async () => {
        while ((next < FLOOD_MIN || !stalledLeft()) && next < FLOOD_MAX) {
          const seq = next;
          next += 1;
          try {
            acks[seq] = await flooder.request('presence:heartbeat', { roomId, patchState: { seq, pad: PAD } }, SOON_MS);
          } catch (err) {
            acks[seq] = { error: err.message };
          }
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, worker));
      const sent = next;
      stopQueues();
      rss.stop();
      log(
        `flood: ${sent} patches of ${PAD.length + 20} B; host RSS start ${mb(rss.start)}, peak ${mb(rss.peak)}, end ${mb(rss.last)}; ` +
          `stalled connection backlog: client receive queue up to ${queues.maxClientRx} B, server send queue up to ${queues.maxServerTx} B`,
      );

      const bad = acks.map((ack, seq) => [seq, ack]).filter(([, ack]) => ack?.ok !== true);
      assert.equal(bad.length, 0, `every flood ack must be ok: ${bad.length} were not, first ${show(bad.slice(0, 3))}`);
      const want = Array.from({ length: sent }, (_, i) => i);
      for (const c of [flooder, steady.a, steady.b]) {
        await c.events.waitFor((e) => e.type === 'update' && e.connId === floodSelf.connId && e.state?.seq === sent - 1, SOON_MS);
        const got = c.events.filter((e) => e.type === 'update' && e.connId === floodSelf.connId).map((e) => e.state?.seq);
        assertSequence(got, want, `${c.label}: every flood update, once, in order`);
      }
      assert.ok(
        queues.maxClientRx + queues.maxServerTx >= 64 * 1024,
        `the stalled client's TCP connection must have backed up during the flood (client receive queue ${queues.maxClientRx} B, server send queue ${queues.maxServerTx} B)`,
      );
      assert.ok(
        rss.peak - rss.start < RSS_CAP_KB,
        `host RSS grew by ${mb(rss.peak - rss.start)} during the flood (start ${mb(rss.start)}, peak ${mb(rss.peak)}); cap ${mb(RSS_CAP_KB)}`,
      );

      await steady.stop([flooder]);

      const metricsText = (await httpOnce(host.port, '/metrics')).text;
      log(`after the flood: stalled client left: ${stalledLeft()}; rtm_sockets_connected ${metricValue(metricsText, 'rtm_sockets_connected')} (the steady pair, the flooder and the stalled client are 4)`);
      const left = await steady.b.events.waitFor({ type: 'leave', connId: stalledConn }, SOON_MS).then(
        () => true,
        () => false,
      );
      if (left) {
        await h.barrier(roomId, { nodes: [host], observers: [steady.b], after: [flooder] });
        steady.b.events.assertCount({ type: 'leave', connId: stalledConn }, 1, 'the stalled client leaves once');
        steady.b.events.assertCount({ type: 'expire', connId: stalledConn }, 0, 'the stalled client does not also expire');
      }

      // The server must let go of the TCP connection itself: the client still reads nothing.
      let pair;
      let serverClosed = true;
      try {
        await waitUntil(
          () => {
            pair = tcpPair(host.port, clientPort);
            return pair.server === undefined || pair.server.state !== 'ESTABLISHED';
          },
          { timeoutMs: 30_000, intervalMs: 100, what: 'the server to close the stalled TCP connection' },
        );
      } catch {
        serverClosed = false;
      }
      log(`stalled connection, client still not reading: server side ${show(pair?.server ?? 'gone')}, client side ${show(pair?.client)}`);
      stalled.resumeDiscarding();
      const closedOnRead = await waitUntil(() => stalled.closed, { timeoutMs: 30_000, what: 'the stalled socket to close once read' }).catch(() => false);
      log(`stalled client, reading again: ${stalled.discarded} B drained, ${closedOnRead ? 'then closed by the server' : 'still open 30 s later'}`);
      assert.ok(
        left,
        `the stalled client (ping interval 2 s + timeout 3 s) must be disconnected: no leave for it ${SOON_MS / 1000} s after a flood of ${sent} patches`,
      );
      assert.ok(
        serverClosed,
        `the server must close the stalled client's TCP connection without waiting for it to read: 30 s later the server side is still ${show(pair?.server)}`,
      );
    }),
  );

  it(
    '2. 5,000 TCP connections that never send a byte (and idle keep-alive ones) are closed by the server after HTTP_HEADER_TIMEOUT_MS while a normal client connects and is served',
    { timeout: 400_000 },
    h.wrap(async () => {
      const IDLE = 5_000;
      const KEEPALIVE = 20;
      const CONTROL = 20;
      const CONTROL_TIMEOUT_MS = 600_000;
      const host = await h.startHost('hostile-idle', { env: { ...LONG_TTL, HTTP_HEADER_TIMEOUT_MS: 1_000 } });
      // The longest timeout the host accepts, far beyond this test's 120 s deadline.
      const control = await h.startHost('hostile-idle-control', { env: { HTTP_HEADER_TIMEOUT_MS: CONTROL_TIMEOUT_MS } });
      const steady = await startSteady(h, host);

      // The control's idle connections come first: had the 1,000 ms setting been
      // ignored for some default, they would go no later than the 5,000.
      const controlIdle = await openMany(control.port, CONTROL, { label: 'control-idle' });
      assertAllConnected(controlIdle, 'control idle', control.proc.pid);
      const controlKeepAlive = await keepAliveThenIdle(control.port, 5, 'control-keepalive');

      const rss = sampleRss(host.proc.pid);
      const first = await openMany(host.port, IDLE / 2, { concurrency: 200, label: 'idle' });
      const [second, late] = await Promise.all([
        openMany(host.port, IDLE / 2, { concurrency: 200, label: 'idle' }),
        (async () => {
          const c = await h.connect(host, { label: 'late-joiner' });
          const { self } = await c.join(steady.roomId, uid('late-joiner'));
          await c.ok('presence:heartbeat', { roomId: steady.roomId });
          return { c, self };
        })(),
      ]);
      const idle = [...first, ...second];
      assertAllConnected(idle, 'idle', host.proc.pid);
      await steady.served('while thousands of idle connections are open');
      const keepAlive = await keepAliveThenIdle(host.port, KEEPALIVE);

      await waitUntil(() => idle.every((c) => c.closed) && keepAlive.every((c) => c.closed), {
        timeoutMs: 120_000,
        intervalMs: 100,
        what: 'every idle connection to be closed',
      }).catch(() => {}); // what did not close is reported below
      // The control is read the moment the wait ended (all closed, or the deadline).
      const controlSummary = { idle: closedSummary(controlIdle), keepAlive: closedSummary(controlKeepAlive) };
      rss.stop();
      const idleSummary = closedSummary(idle);
      const keepAliveSummary = closedSummary(keepAlive);
      log(`never sent a byte: ${show(idleSummary)}; idle after one keep-alive request: ${show(keepAliveSummary)}; control host: ${show(controlSummary)}`);
      log(`host RSS start ${mb(rss.start)}, peak ${mb(rss.peak)}, end ${mb(rss.last)}`);
      const problems = [];
      if (idleSummary.byServer !== IDLE) {
        problems.push(`${IDLE - idleSummary.byServer} of ${IDLE} connections that never sent a byte were not closed by the server within 120 s (${show(idleSummary)})`);
      }
      if (keepAliveSummary.byServer !== KEEPALIVE) {
        problems.push(`${KEEPALIVE - keepAliveSummary.byServer} of ${KEEPALIVE} connections idle after a keep-alive request were not closed by the server (${show(keepAliveSummary)})`);
      }
      if (controlSummary.idle.closed + controlSummary.keepAlive.closed !== 0) {
        problems.push(`the control host (HTTP_HEADER_TIMEOUT_MS=${CONTROL_TIMEOUT_MS}) closed idle connections opened before the 5,000: ${show(controlSummary)}`);
      }
      assert.deepEqual(problems, [], `HTTP_HEADER_TIMEOUT_MS=1000 closes idle connections; ${CONTROL_TIMEOUT_MS} ms does not`);

      // The client that connected among the idle ones, and the members, are still served.
      assert.equal(late.c.connected, true, 'the late joiner stayed connected');
      await late.c.ok('presence:heartbeat', { roomId: steady.roomId });
      await steady.b.events.waitFor({ type: 'join', connId: late.self.connId });
      await steady.stop([late.c]);
    }),
  );

  it(
    '3. HTTP_MAX_CONNECTIONS: a full node closes further connections at once and counts them as refused_full; after the idle ones time out a normal client connects again',
    { timeout: 300_000 },
    h.wrap(async () => {
      const IDLE = 50;
      const EXTRA = 10;
      const MEMBERS = 2; // the steady pair: one WebSocket connection each
      const CAP = IDLE + MEMBERS;
      const host = await h.startHost('hostile-cap', {
        env: { ...LONG_TTL, HTTP_MAX_CONNECTIONS: CAP, HTTP_HEADER_TIMEOUT_MS: 8_000 },
      });
      // No other connection before the idle ones: the node holds exactly CAP once they are in.
      const steady = await startSteady(h, host);
      const idle = await openMany(host.port, IDLE, { concurrency: 10, label: 'idle' });
      assertAllConnected(idle, 'idle', host.proc.pid);

      const extras = [];
      for (let i = 0; i < EXTRA; i += 1) {
        const [conn] = await openMany(host.port, 1, { label: `extra${i}` });
        extras.push(conn);
        await waitUntil(() => conn.closed, { timeoutMs: 30_000, intervalMs: 20, what: `connection ${i} beyond the cap to be closed` });
      }
      const overCap = await h.tryConnect(host, { label: 'over-cap' });
      if (!overCap.error) {
        overCap.client.close();
        assert.fail('a socket.io-client connecting to the full node must be refused');
      }
      const idleEarly = idle.filter((c) => c.closed);
      assert.equal(
        idleEarly.length,
        0,
        `every refusal came while all ${IDLE} idle connections (opened earlier, 8 s header timeout) were still open, so it was at once; ${idleEarly.length} had closed: ${show(closedSummary(idle))}`,
      );
      assert.equal(
        extras.filter((c) => c.byServer).length,
        EXTRA,
        `every connection beyond the cap was closed by the server: ${show(closedSummary(extras))}`,
      );
      await steady.served('while the node is full');
      log(`cap ${CAP} reached: ${EXTRA} raw connections and 1 socket.io-client refused while all ${IDLE} idle ones stayed open; members served meanwhile`);

      const timedOut = await waitUntil(() => idle.every((c) => c.closed), { timeoutMs: SOON_MS, intervalMs: 100 }).then(
        () => true,
        () => false,
      );
      const idleAfter = closedSummary(idle);
      log(`idle connections ${SOON_MS / 1000} s after the cap phase: ${show(idleAfter)}`);
      // Should the header timeout not have closed them, the test closes them itself so the
      // counts and the reconnect below are still checked; the failure is reported at the end.
      for (const c of idle) if (!c.closed) c.destroy();
      await waitUntil(() => idle.every((c) => c.closed), { timeoutMs: SOON_MS, what: 'the idle connections to be closed' });

      // Probes until the node answers again, each a fresh connection; any refused on the way is counted.
      const probes = { ok: 0, refused: 0 };
      const until = (path) =>
        waitUntil(
          async () => {
            try {
              const r = await httpOnce(host.port, path);
              probes.ok += 1;
              return r.status === 200 ? r : false;
            } catch (err) {
              if (!isDropped(err)) throw err;
              probes.refused += 1;
              return false;
            }
          },
          { timeoutMs: SOON_MS, intervalMs: 100, what: `GET ${path} to be answered after the idle connections left` },
        );
      await until('/healthz');
      const { text } = await until('/metrics');
      const refusedFull = metricValue(text, 'rtm_http_connections_total', { outcome: 'refused_full' });
      const accepted = metricValue(text, 'rtm_http_connections_total', { outcome: 'accepted' });
      const open = metricValue(text, 'rtm_http_connections_open');
      log(
        `cap ${CAP}: refused_full ${refusedFull}, accepted ${accepted}, open ${open}; ${EXTRA} raw + 1 socket.io-client refused, probes ${show(probes)}; extras ${show(closedSummary(extras))}`,
      );
      assert.equal(refusedFull, EXTRA + 1 + probes.refused, `refused_full counts each connection closed for the cap (${EXTRA} raw, 1 socket.io-client, ${probes.refused} probes)`);
      assert.equal(accepted, MEMBERS + IDLE + probes.ok, `accepted counts the members, the idle connections and the answered probes`);

      const again = await h.connect(host, { label: 'after-the-cap' });
      const { self } = await again.join(steady.roomId, uid('after-the-cap'));
      await steady.b.events.waitFor({ type: 'join', connId: self.connId });
      await again.ok('presence:heartbeat', { roomId: steady.roomId });
      await steady.stop([again]);
      assert.ok(
        timedOut && idleAfter.byServer === IDLE,
        `every idle connection must be closed by the server after HTTP_HEADER_TIMEOUT_MS=8000: ${show(idleAfter)} after ${SOON_MS / 1000} s`,
      );
    }),
  );

  it(
    '4. 5,000 Engine.IO long-polling handshakes that never poll again are gone after ping interval + timeout while a normal client is served',
    { timeout: 400_000 },
    h.wrap(async () => {
      const SESSIONS = 5_000;
      const host = await h.startHost('hostile-handshakes', {
        env: { ...LONG_TTL, SOCKETIO_PING_INTERVAL_MS: 1_000, SOCKETIO_PING_TIMEOUT_MS: 2_000 },
      });
      const steady = await startSteady(h, host, { transports: ['websocket', 'polling'] });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      const rss = sampleRss(host.proc.pid);
      try {
        const opens = await mapConcurrent(SESSIONS, 16, () => pollingHandshake(host.port, agent));
        const sids = opens.map((o) => o.sid);
        assert.equal(new Set(sids).size, SESSIONS, 'every handshake got its own sid');
        assert.equal(opens[0].pingInterval, 1_000, `open packet: ${show(opens[0])}`);
        assert.equal(opens[0].pingTimeout, 2_000, `open packet: ${show(opens[0])}`);
        await steady.served(`after ${SESSIONS} handshakes`);

        // Barrier: a sentinel session opened after all of them, and then a second one
        // opened once the first is gone; polling a sentinel never answers a ping.
        for (const n of [1, 2]) {
          const sentinel = await pollingHandshake(host.port, agent);
          await waitUntil(async () => isUnknownSid(await httpAgent(host.port, pollPath(sentinel.sid), agent)), {
            timeoutMs: SOON_MS,
            intervalMs: 100,
            what: `sentinel session ${n} to be gone`,
          });
        }
        const answers = await mapConcurrent(SESSIONS, 16, (i) => httpAgent(host.port, pollPath(sids[i]), agent));
        const alive = answers.map((r, i) => ({ sid: sids[i], status: r.status, text: r.text.slice(0, 80) })).filter((_, i) => !isUnknownSid(answers[i]));
        rss.stop();
        log(`${SESSIONS} silent polling sessions: ${SESSIONS - alive.length} unknown afterwards; host RSS start ${mb(rss.start)}, peak ${mb(rss.peak)}, end ${mb(rss.last)}`);
        assert.equal(alive.length, 0, `every silent session must be gone (HTTP 400, code 1); ${alive.length} answered otherwise, e.g. ${show(alive.slice(0, 3))}`);
        await steady.stop();
      } finally {
        rss.stop();
        agent.destroy();
      }
    }),
  );

  it(
    '5. a long-polling client that joins a room and never polls again is closed after ping interval + timeout, and the room sees it leave once',
    { timeout: 300_000 },
    h.wrap(async () => {
      const host = await h.startHost('hostile-ghost', {
        env: { ...LONG_TTL, SOCKETIO_PING_INTERVAL_MS: 1_000, SOCKETIO_PING_TIMEOUT_MS: 2_000 },
      });
      const steady = await startSteady(h, host);
      const ghostUser = uid('ghost');

      const { sid } = await pollingHandshake(host.port);
      const post = async (body) => {
        const r = await httpOnce(host.port, pollPath(sid), { method: 'POST', body });
        assert.deepEqual([r.status, r.text], [200, 'ok'], `POST ${show(body)}`);
      };
      await post('40');
      // Poll until the CONNECT reply is in (answering pings on the way, as a live client does).
      const seen = [];
      const deadline = Date.now() + SOON_MS;
      while (!seen.some((p) => p.startsWith('40'))) {
        assert.ok(Date.now() < deadline, `no CONNECT reply for the polling client: ${show(seen)}`);
        const r = await httpOnce(host.port, pollPath(sid));
        assert.equal(r.status, 200, `poll: HTTP ${r.status} ${show(r.text)}`);
        for (const p of r.text.split(RS).filter(Boolean)) {
          seen.push(p);
          assert.ok(!p.startsWith('44'), `namespace connect refused: ${p}`);
          if (p === '2') await post('3');
        }
      }
      // The join with an ack id; its ack is never read: this client never polls again.
      await post(`420${JSON.stringify(['presence:join', { roomId: steady.roomId, userId: ghostUser }])}`);
      const joinEvent = await steady.b.events.waitFor({ type: 'join', userId: ghostUser }, SOON_MS);
      const gone = await steady.b.events.waitFor(
        (e) => (e.type === 'leave' || e.type === 'expire') && e.connId === joinEvent.connId,
        SOON_MS,
      );
      log(`silent polling client: ${gone.type} after it stopped polling`);
      await steady.served('after the silent polling client');
      await h.barrier(steady.roomId, { nodes: [host], observers: [steady.b], after: [steady.a] });
      steady.b.events.assertCount((e) => (e.type === 'leave' || e.type === 'expire') && e.connId === joinEvent.connId, 1, 'it goes once');
      const later = await httpOnce(host.port, pollPath(sid));
      assert.ok(isUnknownSid(later), `its session is gone: HTTP ${later.status} ${show(later.text)}`);
      await steady.stop();
    }),
  );

  describe('6. one byte at a time', () => {
    const BYTE_EVERY_MS = 200;

    it(
      '6a. HTTP/1.1 request heads sent one byte every 200 ms are closed by the server before they are complete (HTTP_HEADER_TIMEOUT_MS=1000)',
      { timeout: 300_000 },
      h.wrap(async () => {
        const SLOW = 10;
        const host = await h.startHost('hostile-slow-head', { env: { ...LONG_TTL, HTTP_HEADER_TIMEOUT_MS: 1_000 } });
        const steady = await startSteady(h, host);
        // 150 bytes: 30 s at this pace, three times the default timeout and 30 times the one set.
        const head = (i) => {
          const start = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\nUser-Agent: rtm-hostile-slow/${i}\r\nX-Pad: `;
          return Buffer.from(`${start}${'p'.repeat(150 - start.length - 4)}\r\n\r\n`, 'latin1');
        };
        const conns = await openMany(host.port, SLOW, { label: 'slow-head' });
        assertAllConnected(conns, 'slow heads', host.proc.pid);
        const trickles = conns.map((c, i) => trickle(c, head(i), BYTE_EVERY_MS));
        await waitUntil(() => conns.every((c) => c.closed) || trickles.some((t) => t.sent >= t.total), {
          timeoutMs: 120_000,
          intervalMs: 50,
          what: () => `the slow heads to be closed (${show(closedSummary(conns))}, sent ${show(trickles.map((t) => t.sent))})`,
        });
        await steady.served('while heads trickle in');
        log(`slow heads: sent ${show(trickles.map((t) => t.sent))} of ${trickles[0].total} bytes when closed; ${show(closedSummary(conns))}`);
        for (const [i, c] of conns.entries()) {
          assert.ok(c.closed && c.byServer, `${c.label} must be closed by the server (sent ${trickles[i].sent} of ${trickles[i].total})`);
          assert.ok(trickles[i].sent < trickles[i].total, `${c.label} closed before its head was complete (${trickles[i].sent} of ${trickles[i].total} sent)`);
          assert.doesNotMatch(c.firstBytes, /^HTTP\/1\.1 2/, `${c.label} must not be served`);
        }
        await steady.stop();
      }),
    );

    it(
      '6b. a WebSocket client that trickles an incomplete frame (and so never answers a ping) is closed after ping interval + timeout; the room sees it leave once',
      { timeout: 300_000 },
      h.wrap(async () => {
        const host = await h.startHost('hostile-slow-frame', {
          env: { ...LONG_TTL, HTTP_HEADER_TIMEOUT_MS: 1_000, SOCKETIO_PING_INTERVAL_MS: 1_000, SOCKETIO_PING_TIMEOUT_MS: 1_500 },
        });
        const steady = await startSteady(h, host);
        const ws = await RawWs.open(host.port, 'slow-frame');
        await ws.connectNamespace();
        const joined = await ws.request('presence:join', { roomId: steady.roomId, userId: uid('slow-frame') });
        assert.equal(joined?.ok, true, `join: ${show(joined)}`);
        const connId = joined.self.connId;
        await steady.b.events.waitFor({ type: 'join', connId });

        // A masked text frame announcing 300 bytes, sent one byte at a time (60 s at this pace).
        const payload = Buffer.from(`42["presence:heartbeat",{"roomId":"${steady.roomId}","patchState":{"p":"${'q'.repeat(300)}"}}]`).subarray(0, 300);
        const frame = wsFrame(0x1, payload);
        ws.autoPong = false; // a pong now would land inside the unfinished frame
        const state = trickle(ws, frame, BYTE_EVERY_MS);
        await waitUntil(() => ws.closed || state.sent >= state.total, {
          timeoutMs: 120_000,
          intervalMs: 50,
          what: () => `the slow-frame client to be closed (sent ${state.sent} of ${state.total})`,
        });
        log(`slow frame: closed by the server after ${state.sent} of ${state.total} bytes (pings seen ${ws.pings}, close frames ${ws.closeFrames})`);
        assert.ok(ws.closed, 'the slow-frame client must be closed by the server');
        assert.ok(state.sent < state.total, `closed before the frame was complete (${state.sent} of ${state.total} sent)`);
        await steady.b.events.waitFor({ type: 'leave', connId }, SOON_MS);
        await h.barrier(steady.roomId, { nodes: [host], observers: [steady.b], after: [steady.a] });
        steady.b.events.assertCount({ type: 'leave', connId }, 1, 'it leaves once');
        steady.b.events.assertCount({ type: 'expire', connId }, 0, 'it does not also expire');
        await steady.stop();
      }),
    );

    it(
      '6c. the HTTP/2 form of a slow head (connection preface, SETTINGS, a HEADERS frame) sent one byte every 200 ms is closed before it is complete',
      { timeout: 300_000 },
      h.wrap(async () => {
        const host = await h.startHost('hostile-slow-h2', { env: { ...LONG_TTL, HTTP_HEADER_TIMEOUT_MS: 1_000 } });
        const steady = await startSteady(h, host);
        const frameHeader = (length, type, flags, stream) => {
          const b = Buffer.alloc(9);
          b.writeUIntBE(length, 0, 3);
          b[3] = type;
          b[4] = flags;
          b.writeUInt32BE(stream, 5);
          return b;
        };
        const bytes = Buffer.concat([
          Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'),
          frameHeader(0, 0x4, 0, 0), // SETTINGS, empty
          frameHeader(100, 0x1, 0x4, 1), // HEADERS, END_HEADERS, stream 1, 100 bytes that never all come
          Buffer.alloc(100, 0x82),
        ]);
        const [conn] = await openMany(host.port, 1, { label: 'slow-h2' });
        assertAllConnected([conn], 'slow h2', host.proc.pid);
        const state = trickle(conn, bytes, BYTE_EVERY_MS);
        await waitUntil(() => conn.closed || state.sent >= state.total, {
          timeoutMs: 120_000,
          intervalMs: 50,
          what: () => `the slow HTTP/2 connection to be closed (sent ${state.sent} of ${state.total})`,
        });
        await steady.served('while an HTTP/2 preface trickles in');
        log(`slow HTTP/2 head: ${conn.closed ? 'closed' : 'still open'} after ${state.sent} of ${state.total} bytes; ${show(closedSummary([conn]))}`);
        assert.ok(conn.closed && conn.byServer, 'the slow HTTP/2 connection must be closed by the server');
        assert.ok(state.sent < state.total, `closed before its HEADERS frame was complete (${state.sent} of ${state.total} sent)`);
        await steady.stop();
      }),
    );
  });
});

// Presence (PROTOCOL.md "Presence"): join with resume, heartbeat with patchState under an
// epoch compare-and-set, leave, snapshot, disconnect -> leave, and the TTL reaper.
//
// Redis holds the truth (see lua/prelude.lua for the layout); every multi-key change is
// one Lua script. This node also remembers, per local socket, which registration it
// holds in each room (`Held`), with the state it last wrote: the socket that owns a
// registration is its only writer (a resume elsewhere changes the owner and fences this
// copy), so a patch merges into that copy instead of reading the hash back, and
// snapshots reuse it instead of re-parsing JSON that this node wrote itself.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import {
  RtmError,
  invalid,
  isPlainObject,
  on,
  optionalEpoch,
  optionalId,
  payloadObject,
  requiredId,
} from './protocol.mjs';

/** Registrations removed per reaper call; a backlog is drained in several calls. */
const REAP_BATCH = 256;

const lua = (name) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

/** Registers the presence scripts on an ioredis client (EVALSHA, EVAL on NOSCRIPT). */
export function definePresenceScripts(redis) {
  const prelude = lua('prelude');
  const scripts = {
    prsJoin: ['join', 3],
    prsResume: ['resume', 3],
    prsHeartbeat: ['heartbeat', undefined], // variable: the caller passes numberOfKeys
    prsPatch: ['patch', 2],
    prsRemove: ['remove', 3],
    prsSnapshot: ['snapshot', 1],
    prsReap: ['reap', 1],
  };
  for (const [command, [file, numberOfKeys]] of Object.entries(scripts)) {
    redis.defineCommand(command, { lua: prelude + lua(file), numberOfKeys });
  }
}

const notJoined = (roomId) => new RtmError('not_joined', `not joined to room ${roomId}`);
const stale = (epoch) =>
  new RtmError('stale_epoch', `stale epoch: the registration is at epoch ${epoch} (or owned by another connection)`, { epoch });

/** 16 random bytes as 32 hex characters: a registration outlives its socket on resume. */
const newConnId = () => randomBytes(16).toString('hex');

/** The registration one local socket holds in one room. */
class Held {
  constructor(socket, roomId, connId, userId, prefix) {
    this.socket = socket;
    this.roomId = roomId;
    this.connId = connId;
    this.key = `${prefix}conn:${connId}`;
    this.setUser(userId);
    this.state = {};
    this.epoch = 0; // 0 until the store confirmed the join
    this.tail = Promise.resolve();
  }

  setUser(userId) {
    this.userId = userId;
    this.member = `${this.connId} ${this.roomId} ${userId}`; // its entry in the seen index
  }

  /** Runs state writes of this registration one after another (merge base stays current). */
  serial(fn) {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }
}

export class Presence {
  /** socket -> Map(roomId -> Held) */
  #sockets = new WeakMap();
  /** connId -> Held, every registration held on this node */
  #local = new Map();
  /** removals still running (drained on shutdown) */
  #pending = new Set();
  /** disconnected sockets' registrations kept for a resume: timer -> { owner, list } */
  #grace = new Map();
  #reaper = null;
  #sweeping = false;
  #draining = false;
  reaped = 0;

  constructor({ io, redis, config, node, log }) {
    this.io = io;
    this.redis = redis;
    this.log = log;
    this.node = node;
    this.prefix = config.prefix;
    this.seenKey = `${config.prefix}seen`;
    this.ttl = config.ttlMs;
    this.lookback = config.lookbackMs;
    this.reaperInterval = config.reaperIntervalMs;
    this.maxId = config.maxIdLen;
    this.maxState = config.maxStateBytes;
    this.graceMs = config.resumeGraceMs;
  }

  get localRegistrations() {
    return this.#local.size;
  }

  bind(socket) {
    on(socket, 'presence:join', (p, s) => this.join(p, s), this.log);
    on(socket, 'presence:heartbeat', (p, s) => this.heartbeat(p, s), this.log);
    on(socket, 'presence:leave', (p, s) => this.leave(p, s), this.log);
    on(socket, 'presence:snapshot', (p) => this.snapshot(p), this.log);
    socket.on('disconnect', () => this.#disconnected(socket));
  }

  /** The user a socket joined `roomId` as, or undefined (for chat). */
  userIn(socket, roomId) {
    const held = this.#sockets.get(socket)?.get(roomId);
    return held && held.epoch > 0 ? held.userId : undefined;
  }

  // --- requests --------------------------------------------------------------------------

  async join(p, socket) {
    const o = payloadObject(p, false);
    const roomId = requiredId(o, 'roomId', this.maxId);
    const userId = requiredId(o, 'userId', this.maxId);
    const state = this.#optionalState(o.state, 'state');
    const stateJson = state === undefined ? '' : this.#serialize(state, 'state');
    const resume = this.#resumeToken(o.resume);
    const rooms = this.#roomsOf(socket, true);
    if (resume) {
      const resumed = await this.#resume(socket, rooms, roomId, userId, state, stateJson, resume);
      if (resumed) return resumed;
    }
    // Twice at most: once more when our old registration here was resumed by another socket.
    for (let attempt = 0; attempt < 2; attempt++) {
      let held = rooms.get(roomId);
      const fresh = !held;
      if (fresh) {
        held = new Held(socket, roomId, newConnId(), userId, this.prefix);
        rooms.set(roomId, held);
      }
      let res;
      try {
        res = await held.serial(() =>
          this.redis.prsJoin(
            held.key, this.#roomKey(roomId), this.seenKey,
            this.prefix, held.connId, roomId, userId, socket.id, this.node, this.ttl,
            `${held.connId} ${roomId} ${userId}`, stateJson,
          ),
        );
      } catch (err) {
        if (fresh && held.epoch === 0) this.#forget(held);
        throw err;
      }
      if (res[0] === -1) {
        this.#forget(held);
        continue;
      }
      const [created, epoch, , rows] = res;
      held.setUser(userId);
      held.epoch = epoch;
      if (state !== undefined) held.state = state;
      else if (created === 1) held.state = {};
      rooms.set(roomId, held);
      this.#local.set(held.connId, held);
      const event = this.#event(created === 1 ? 'join' : 'update', held, epoch, true);
      if (!socket.connected) {
        // Gone while the join ran: announce it and take it back, as a disconnect would.
        this.#publish([event]);
        this.#removeAll([held], 'leave');
        return { ok: false, error: { code: 'unavailable', message: 'disconnected' } };
      }
      socket.join(roomId);
      const ack = {
        ok: true,
        self: { connId: held.connId, epoch },
        snapshot: this.#snapshotOf(rows),
      };
      return { ack, after: () => this.#publish([event]) };
    }
    throw new Error('registration kept changing owner');
  }

  async #resume(socket, rooms, roomId, userId, state, stateJson, token) {
    const { connId, epoch: sent } = token;
    const member = `${connId} ${roomId} ${userId}`;
    const res = await this.redis.prsResume(
      `${this.prefix}conn:${connId}`, this.#roomKey(roomId), this.seenKey,
      this.prefix, connId, roomId, userId, sent, socket.id, this.node, this.ttl, member, stateJson,
    );
    if (res[0] === 0) return null; // gone: join as a fresh registration
    const [, changed, epoch, storedState, rows] = res;
    const events = [];
    // A different registration this socket held in the room is superseded.
    const prev = rooms.get(roomId);
    if (prev && prev.connId !== connId) {
      const left = await this.#remove(prev, 'leave');
      if (left) events.push(left);
    }
    const held = new Held(socket, roomId, connId, userId, this.prefix);
    held.epoch = epoch;
    held.state = state ?? JSON.parse(storedState);
    rooms.set(roomId, held);
    this.#local.set(connId, held); // a fenced copy on another local socket stays fenced
    socket.join(roomId);
    if (changed === 1) events.push(this.#event('update', held, epoch, true));
    const ack = { ok: true, self: { connId, epoch }, snapshot: this.#snapshotOf(rows) };
    return { ack, after: () => this.#publish(events) };
  }

  async heartbeat(p, socket) {
    const o = payloadObject(p, true);
    const roomId = optionalId(o, 'roomId', this.maxId);
    const patch = this.#optionalPatch(o.patchState);
    const sent = optionalEpoch(o, 'epoch');
    const rooms = this.#roomsOf(socket, false);

    if (patch !== undefined) {
      let held;
      if (roomId !== undefined) {
        held = this.#joined(rooms, roomId);
      } else {
        const all = rooms ? [...rooms.values()].filter((h) => h.epoch > 0) : [];
        if (all.length !== 1) {
          throw invalid('roomId is required with patchState unless the socket is in exactly one room');
        }
        held = all[0];
      }
      const epoch = await this.#patch(held, patch, sent);
      const event = this.#event('update', held, epoch, true);
      const ack = roomId !== undefined ? { ok: true, epoch } : { ok: true, epochs: { [held.roomId]: epoch } };
      return { ack, after: () => this.#publish([event]) };
    }

    if (roomId !== undefined) {
      const held = this.#joined(rooms, roomId);
      const [r] = await this.redis.prsHeartbeat(2, this.seenKey, held.key, socket.id, this.ttl, held.member);
      if (r > 0) return { ok: true, epoch: r };
      if (r < 0) throw stale(-r);
      this.#forget(held);
      throw notJoined(roomId);
    }

    // Every registration of the socket, in one script call.
    const list = rooms ? [...rooms.values()].filter((h) => h.epoch > 0) : [];
    const epochs = {};
    if (list.length === 0) return { ok: true, epochs };
    const res = await this.redis.prsHeartbeat(
      1 + list.length, this.seenKey, ...list.map((h) => h.key),
      socket.id, this.ttl, ...list.map((h) => h.member),
    );
    list.forEach((held, i) => {
      if (res[i] > 0) epochs[held.roomId] = res[i];
      else if (res[i] === 0) this.#forget(held);
      // < 0: fenced by a resume elsewhere; not this socket's any more
    });
    return { ok: true, epochs };
  }

  #patch(held, patch, sent) {
    return held.serial(async () => {
      if (this.#sockets.get(held.socket)?.get(held.roomId) !== held) throw notJoined(held.roomId);
      const merged = { ...held.state, ...patch };
      const json = this.#serialize(merged, 'merged state');
      const [status, epoch] = await this.redis.prsPatch(
        held.key, this.seenKey, held.socket.id, sent ?? '', this.ttl, held.member, json,
      );
      if (status === 0) {
        this.#forget(held);
        throw notJoined(held.roomId);
      }
      if (status === -1) throw stale(epoch);
      held.state = merged;
      held.epoch = epoch;
      return epoch;
    });
  }

  async leave(p, socket) {
    const o = payloadObject(p, true);
    const roomId = optionalId(o, 'roomId', this.maxId);
    const rooms = this.#roomsOf(socket, false);
    const list = roomId !== undefined ? [this.#joined(rooms, roomId)] : [...(rooms?.values() ?? [])];
    const events = (await Promise.all(list.map((h) => this.#remove(h, 'leave')))).filter(Boolean);
    return { ack: { ok: true }, after: () => this.#publish(events) };
  }

  async snapshot(p) {
    const roomId = requiredId(payloadObject(p, false), 'roomId', this.maxId);
    const rows = await this.redis.prsSnapshot(this.#roomKey(roomId), this.prefix);
    return { ok: true, snapshot: this.#snapshotOf(rows) };
  }

  // --- disconnect, reaper, shutdown ---------------------------------------------------

  #disconnected(socket) {
    const rooms = this.#sockets.get(socket);
    this.#sockets.delete(socket);
    if (!rooms || rooms.size === 0) return;
    const list = [...rooms.values()];
    if (this.graceMs > 0 && !this.#draining) {
      // Kept for a resume; afterwards removed (unless resumed meanwhile) and announced as expire.
      const timer = setTimeout(() => {
        this.#grace.delete(timer);
        this.#removeAll(list, 'expire');
      }, this.graceMs);
      this.#grace.set(timer, list);
      return;
    }
    this.#removeAll(list, 'leave');
  }

  #removeAll(list, type) {
    const run = Promise.all(list.map((h) => this.#remove(h, type)))
      .then((events) => this.#publish(events.filter(Boolean)))
      .catch((err) => this.log.warn(`could not remove registrations; the reaper will expire them: ${err.message}`))
      .finally(() => this.#pending.delete(run));
    this.#pending.add(run);
  }

  /** Compare-and-delete of a registration this node holds; the event to publish, if removed. */
  async #remove(held, type) {
    const epoch = await this.redis.prsRemove(
      held.key, this.#roomKey(held.roomId), this.seenKey, held.socket.id, held.connId, held.member,
    );
    this.#forget(held);
    return epoch > 0 ? this.#event(type, held, epoch, false) : null;
  }

  startReaper() {
    this.#reaper = setInterval(() => this.#sweep(), this.reaperInterval);
    this.#reaper.unref();
  }

  async #sweep() {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      for (;;) {
        const rows = await this.redis.prsReap(this.seenKey, this.prefix, this.ttl, this.lookback, REAP_BATCH);
        const events = [];
        const ts = Date.now();
        for (let i = 0; i < rows.length; i += 4) {
          const [connId, roomId, userId, epoch] = [rows[i], rows[i + 1], rows[i + 2], rows[i + 3]];
          const event = { type: 'expire', roomId, userId, connId, ts };
          if (epoch > 0) event.epoch = epoch;
          events.push(event);
          const held = this.#local.get(connId);
          if (held) this.#forget(held);
        }
        this.reaped += events.length;
        this.#publish(events);
        if (events.length < REAP_BATCH) return;
      }
    } catch (err) {
      this.log.warn(`reaper pass failed; retrying next interval: ${err.message}`);
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * Graceful stop: stop the reaper, run `disconnect` (which closes every local socket:
   * their registrations are removed now and announced as `leave`, without a resume grace),
   * remove what sockets gone earlier left for a resume, and wait for every removal.
   */
  async drain(disconnect) {
    clearInterval(this.#reaper);
    this.#draining = true;
    disconnect();
    for (const [timer, list] of this.#grace) {
      clearTimeout(timer);
      this.#removeAll(list, 'expire');
    }
    this.#grace.clear();
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  // --- helpers ------------------------------------------------------------------------

  #roomKey(roomId) {
    return `${this.prefix}room:${roomId}`;
  }

  #roomsOf(socket, create) {
    let rooms = this.#sockets.get(socket);
    if (!rooms && create) {
      rooms = new Map();
      this.#sockets.set(socket, rooms);
    }
    return rooms;
  }

  #joined(rooms, roomId) {
    const held = rooms?.get(roomId);
    if (!held || held.epoch === 0) throw notJoined(roomId);
    return held;
  }

  #forget(held) {
    const rooms = this.#sockets.get(held.socket);
    if (rooms?.get(held.roomId) === held) {
      rooms.delete(held.roomId);
      if (held.socket.connected) held.socket.leave(held.roomId);
    }
    if (this.#local.get(held.connId) === held) this.#local.delete(held.connId);
  }

  #optionalState(v, field) {
    if (v === undefined || v === null) return undefined;
    if (!isPlainObject(v)) throw invalid(`${field} must be a JSON object`);
    return v;
  }

  #optionalPatch(v) {
    return this.#optionalState(v, 'patchState');
  }

  /** The state as stored, refused above PRESENCE_MAX_STATE_BYTES. */
  #serialize(state, what) {
    const json = JSON.stringify(state);
    const size = Buffer.byteLength(json);
    if (size > this.maxState) {
      throw new RtmError('payload_too_large', `${what} is ${size} bytes, the limit is ${this.maxState}`);
    }
    return json;
  }

  #resumeToken(v) {
    if (v === undefined || v === null) return undefined;
    if (!isPlainObject(v)) throw invalid('resume must be an object { connId, epoch }');
    const connId = optionalId(v, 'connId', 128);
    const epoch = optionalEpoch(v, 'epoch');
    if (connId === undefined) throw invalid('resume.connId is required');
    if (epoch === undefined) throw invalid('resume.epoch is required');
    return { connId, epoch };
  }

  /** Script rows (connId, userId, state, epoch, lastSeen, ...) as the ack's snapshot. */
  #snapshotOf(rows) {
    const out = [];
    for (let i = 0; i < rows.length; i += 5) {
      const connId = rows[i];
      const epoch = Number(rows[i + 3]);
      const held = this.#local.get(connId);
      out.push({
        connId,
        userId: rows[i + 1],
        // This node wrote that state: no need to parse it back.
        state: held && held.epoch === epoch ? held.state : JSON.parse(rows[i + 2]),
        epoch,
        lastSeen: Number(rows[i + 4]),
      });
    }
    return out;
  }

  #event(type, held, epoch, withState) {
    const event = { type, roomId: held.roomId, userId: held.userId, connId: held.connId, ts: Date.now(), epoch };
    if (withState) event.state = held.state;
    return event;
  }

  /** Broadcast to the rooms on every node (the Redis adapter), each change exactly once. */
  #publish(events) {
    for (const event of events) this.io.to(event.roomId).emit('presence:event', event);
  }
}

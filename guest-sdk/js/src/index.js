// @rtm/guest: write rtm plugins in JavaScript.
//
// A thin layer over the raw WIT imports of `rtm:plugin@0.1.0` (world
// `plugin`, see ../../../wit): JSON in and out, numbers instead of BigInt,
// one error type, and `definePlugin` which builds the exported `handler`
// interface (manifest, on-event with routing by event name, the three hooks).
//
//   import { definePlugin, emit, kv } from '@rtm/guest';
//   export const handler = definePlugin({
//     name: 'echo', version: '0.1.0',
//     on: { 'echo:say': (ctx) => ctx.payload({ text: 'string' }) },
//   });
//
// The plugin module and this helper are bundled into one ES module by
// esbuild (`build.mjs`), then turned into a component by componentize-js.
// Keep this file free of Node or browser APIs: it runs inside StarlingMonkey.

import * as rawEmit from 'rtm:plugin/emit@0.1.0';
import * as rawRooms from 'rtm:plugin/rooms@0.1.0';
import * as rawKv from 'rtm:plugin/kv@0.1.0';
import * as rawPresence from 'rtm:plugin/presence@0.1.0';
import * as rawLog from 'rtm:plugin/log@0.1.0';
import * as rawClock from 'rtm:plugin/clock@0.1.0';

/**
 * An expected failure, sent to the client as `{ ok: false, error: { code, message } }`.
 * Host calls that fail throw it too (with the host's code, e.g. `unavailable`),
 * so an uncaught host failure reaches the client unchanged.
 */
export class PluginError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'PluginError';
    this.code = code;
    // componentize-js turns a thrown value's `payload` into the WIT `err`.
    Object.defineProperty(this, 'payload', {
      value: { code, message },
      enumerable: false,
    });
  }
}

/** `invalid_payload`: the client sent something this plugin cannot accept. */
export function invalidPayload(message) {
  return new PluginError('invalid_payload', message);
}

/** `internal`: the plugin itself got something wrong. */
export function internal(message) {
  return new PluginError('internal', message);
}

// Runs a raw host call, turning its `err` (thrown by the bindings as an
// error whose `payload` is the WIT `error` record) into a PluginError.
function host(call) {
  try {
    return call();
  } catch (e) {
    if (e instanceof PluginError) throw e;
    const p = e && e.payload;
    if (p && typeof p.code === 'string') {
      throw new PluginError(p.code, String(p.message ?? ''));
    }
    throw e;
  }
}

function encode(value, what) {
  let json;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw internal(`${what} does not serialize: ${e.message}`);
  }
  if (json === undefined) throw internal(`${what} does not serialize: ${typeof value}`);
  return json;
}

function decode(json, what) {
  try {
    return JSON.parse(json);
  } catch (e) {
    throw internal(`${what} does not decode: ${e.message}`);
  }
}

// WIT s64/u64 cross as BigInt; plugin code uses plain numbers.
const num = (big) => Number(big);
const big = (n, what) => {
  if (typeof n === 'bigint') return n;
  if (!Number.isInteger(n)) throw internal(`${what} must be an integer, got ${n}`);
  return BigInt(n);
};

// componentize-js 0.23 cannot pass a negative s64 to an import: its glue
// accepts only BigInts in 0..2^63 and aborts the instance (a trap) on
// anything else ("Internal bindgen error in coreabi_from_bigint64
// validation"). Results are fine. So negative list indexes are resolved here
// (see listRange/listTrim), and a negative `incr` is refused with an error
// instead of a trap.
const I64_MAX = (1n << 63n) - 1n;
const nonNegative = (n, what) => {
  const v = big(n, what);
  if (v < 0n || v > I64_MAX) {
    throw new PluginError(
      'unsupported',
      `${what} must be in 0..2^63 in JS plugins (componentize-js 0.23 cannot pass other 64-bit values), got ${v}`,
    );
  }
  return v;
};

// Redis LRANGE index rules over a list of length `len`: the inclusive
// positive range, or null when empty.
function resolveRange(len, start, stop) {
  let s = start < 0n ? len + start : start;
  let e = stop < 0n ? len + stop : stop;
  if (s < 0n) s = 0n;
  if (e >= len) e = len - 1n;
  return s > e ? null : [s, e];
}

// listRange with Redis semantics for negative indexes: non-negative ones go
// to the host as they are; otherwise the whole list is read and sliced here
// (one host call, so still a consistent snapshot, but it transfers the whole
// list: keep such lists capped, as `listPush(.., maxLen)` does).
function rangeRaw(key, start, stop) {
  const s = big(start, 'start');
  const e = big(stop, 'stop');
  if (s >= 0n && e >= 0n) return host(() => rawKv.listRange(key, s, e));
  const all = host(() => rawKv.listRange(key, 0n, I64_MAX));
  const r = resolveRange(BigInt(all.length), s, e);
  return r ? all.slice(Number(r[0]), Number(r[1]) + 1) : [];
}

// listTrim with negative indexes: reads the list's length first, so unlike
// LTRIM it is two host calls and not atomic against concurrent pushes.
function trimRaw(key, start, stop) {
  const s = big(start, 'start');
  const e = big(stop, 'stop');
  if (s >= 0n && e >= 0n) return host(() => rawKv.listTrim(key, s, e));
  const len = BigInt(host(() => rawKv.listRange(key, 0n, I64_MAX)).length);
  const r = resolveRange(len, s, e);
  // An empty range empties the list, as LTRIM does.
  if (!r) return host(() => rawKv.listTrim(key, 1n, 0n));
  return host(() => rawKv.listTrim(key, r[0], r[1]));
}

/** Sending events to sockets and rooms of the plugin's tenant (payloads: any JSON value). */
export const emit = {
  toSocket(socket, event, payload) {
    host(() => rawEmit.toSocket(socket, event, encode(payload, 'payload')));
  },
  toRoom(room, event, payload) {
    host(() => rawEmit.toRoom(room, event, encode(payload, 'payload')));
  },
  toRoomExcept(room, except, event, payload) {
    host(() => rawEmit.toRoomExcept(room, except, event, encode(payload, 'payload')));
  },
  broadcast(event, payload) {
    host(() => rawEmit.broadcast(event, encode(payload, 'payload')));
  },
};

/** Socket.IO room membership within the plugin's tenant. */
export const rooms = {
  join: (socket, room) => host(() => rawRooms.join(socket, room)),
  leave: (socket, room) => host(() => rawRooms.leave(socket, room)),
  members: (room) => host(() => rawRooms.members(room)),
  has: (socket, room) => host(() => rawRooms.has(socket, room)),
};

/**
 * The plugin's private key-value store, values as JSON (`kv.raw` for strings
 * that are not JSON). Keys are prefixed by the host with tenant and plugin name.
 */
export const kv = {
  get(key) {
    const json = host(() => rawKv.get(key));
    return json === undefined ? undefined : decode(json, `kv value at ${JSON.stringify(key)}`);
  },
  set(key, value, ttlMs) {
    const ttl = ttlMs === undefined || ttlMs === null ? undefined : nonNegative(ttlMs, 'ttlMs');
    host(() => rawKv.set(key, encode(value, 'value'), ttl));
  },
  del: (key) => host(() => rawKv.del(key)),
  /** Atomic add; `by` must be >= 0 in JS plugins (see the note on s64 above). */
  incr: (key, by = 1) => num(host(() => rawKv.incr(key, nonNegative(by, 'by')))),
  listPush(key, value, maxLen) {
    return num(host(() => rawKv.listPush(key, encode(value, 'value'), maxLen ?? undefined)));
  },
  /** Items start..=stop, decoded; negative indexes count from the end (Redis LRANGE). */
  listRange(key, start, stop) {
    return rangeRaw(key, start, stop).map((json) => decode(json, `kv value at ${JSON.stringify(key)}`));
  },
  listTrim: (key, start, stop) => trimRaw(key, start, stop),
  hashGet(key, field) {
    const json = host(() => rawKv.hashGet(key, field));
    return json === undefined ? undefined : decode(json, `kv value at ${JSON.stringify(key)}`);
  },
  hashSet: (key, field, value) => host(() => rawKv.hashSet(key, field, encode(value, 'value'))),
  hashGetAll(key) {
    return host(() => rawKv.hashGetAll(key)).map(([field, json]) => [
      field,
      decode(json, `kv value at ${JSON.stringify(key)}`),
    ]);
  },
  /** The string-valued functions, exactly as in WIT but with numbers for integers. */
  raw: {
    get: (key) => host(() => rawKv.get(key)),
    set: (key, value, ttlMs) =>
      host(() => rawKv.set(key, value, ttlMs === undefined || ttlMs === null ? undefined : nonNegative(ttlMs, 'ttlMs'))),
    listPush: (key, value, maxLen) => num(host(() => rawKv.listPush(key, value, maxLen ?? undefined))),
    listRange: (key, start, stop) => rangeRaw(key, start, stop),
    hashGet: (key, field) => host(() => rawKv.hashGet(key, field)),
    hashSet: (key, field, value) => host(() => rawKv.hashSet(key, field, value)),
    hashGetAll: (key) => host(() => rawKv.hashGetAll(key)),
  },
};

/** Read access to native presence. */
export const presence = {
  snapshot(room) {
    return host(() => rawPresence.snapshot(room)).map((m) => ({
      connId: m.connId,
      userId: m.userId,
      state: decode(m.stateJson, 'presence state'),
      epoch: num(m.epoch),
      lastSeen: num(m.lastSeen),
    }));
  },
};

/** Logging into the host's tracing output (console.log/error land there too). */
export const log = {
  log: (level, message) => rawLog.log(level, String(message)),
  trace: (message) => rawLog.log('trace', String(message)),
  debug: (message) => rawLog.log('debug', String(message)),
  info: (message) => rawLog.log('info', String(message)),
  warn: (message) => rawLog.log('warn', String(message)),
  error: (message) => rawLog.log('error', String(message)),
};

/** The host's wall clock. */
export const clock = {
  nowMs: () => num(rawClock.nowMs()),
};

// ---- payload validation -------------------------------------------------

const U32_MAX = 4294967295;

const CHECKS = {
  any: () => true,
  string: (v) => typeof v === 'string',
  boolean: (v) => typeof v === 'boolean',
  number: (v) => typeof v === 'number',
  integer: (v) => Number.isSafeInteger(v),
  u32: (v) => Number.isInteger(v) && v >= 0 && v <= U32_MAX,
  object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  array: (v) => Array.isArray(v),
  'string[]': (v) => Array.isArray(v) && v.every((x) => typeof x === 'string'),
};

/**
 * Checks `value` (a decoded payload) against `shape`, an object mapping field
 * names to a type: `any`, `string`, `boolean`, `number`, `integer`, `u32`,
 * `object`, `array`, `string[]`; a trailing `?` makes the field optional
 * (absent or `null` both read as `undefined`). Extra fields are ignored.
 * Returns an object with exactly the fields of `shape`.
 *
 * The rules follow what serde's derived `Deserialize` accepts in the Rust SDK
 * (`ctx.payload::<T>()`), so a JS port of a Rust plugin answers the same
 * payloads the same way; that includes serde's positional form: a JSON array
 * with exactly one element per field, in `shape`'s order. (One difference
 * remains: JSON.parse cannot tell `2.0` or `2e0` from `2`, which serde
 * refuses for integer fields.) Throws `invalid_payload` naming `event` and
 * the first bad field.
 */
export function validate(value, shape, event = 'payload') {
  const fields = Object.entries(shape);
  if (Array.isArray(value)) {
    if (value.length !== fields.length) {
      throw invalidPayload(`${event}: invalid length ${value.length}, expected ${fields.length} elements`);
    }
    value = Object.fromEntries(fields.map(([field], i) => [field, value[i]]));
  }
  if (!CHECKS.object(value)) {
    throw invalidPayload(`${event}: expected an object, got ${describe(value)}`);
  }
  const out = {};
  for (const [field, spec] of fields) {
    const optional = spec.endsWith('?');
    const type = optional ? spec.slice(0, -1) : spec;
    const check = CHECKS[type];
    if (!check) throw internal(`unknown payload type ${JSON.stringify(spec)} for ${field}`);
    const v = Object.hasOwn(value, field) ? value[field] : undefined;
    if (v === undefined || v === null) {
      if (optional) {
        out[field] = undefined;
        continue;
      }
      if (v === undefined) throw invalidPayload(`${event}: missing field \`${field}\``);
      if (type !== 'any') throw invalidPayload(`${event}: field \`${field}\` must be ${type}, got null`);
    }
    if (!check(v)) {
      throw invalidPayload(`${event}: field \`${field}\` must be ${type}, got ${describe(v)}`);
    }
    out[field] = v;
  }
  return out;
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

// ---- the handler export -------------------------------------------------

class Ctx {
  constructor(raw) {
    /** Id of the sending socket. */
    this.socket = raw.socket;
    /** The sender's user id, when it joined presence or authenticated. */
    this.user = raw.user ?? undefined;
    /** The event name as the client sent it. */
    this.event = raw.event;
    /** The payload as serialized JSON (`null` when the client sent none). */
    this.payloadJson = raw.payload;
  }

  /** The payload decoded, and checked against `shape` when given (see `validate`). */
  payload(shape) {
    let value;
    try {
      value = JSON.parse(this.payloadJson);
    } catch (e) {
      throw invalidPayload(`${this.event}: ${e.message}`);
    }
    return shape ? validate(value, shape, this.event) : value;
  }

  /** The sender's user id, or throws `err` (a PluginError) when it has none. */
  userOr(err) {
    if (this.user === undefined) throw err;
    return this.user;
  }
}

function patternMatches(pattern, event) {
  return pattern.endsWith('*') ? event.startsWith(pattern.slice(0, -1)) : pattern === event;
}

/**
 * Builds the object to export as `handler`:
 *
 *   export const handler = definePlugin({ name, version, events?, on?, onEvent?,
 *                                         onConnect?, onDisconnect?, onPresence? });
 *
 * - `on` maps event names or `prefix:*` patterns to functions `(ctx) => data`;
 *   exact names win over patterns, then the longest pattern. Events not
 *   matched fall back to `onEvent(ctx)` if given, else `unknown_event`.
 * - `events` defaults to the keys of `on`.
 * - A handler returning `undefined` acks `{ ok: true }`; anything else is
 *   serialized as the ack's `data`. Throwing a PluginError (or letting a
 *   host call's error through) acks `{ ok: false, error: { code, message } }`.
 *   Any other exception is logged with its stack and acked as `internal`.
 * - The hooks the host calls are the ones given (`onConnect`, `onDisconnect`,
 *   `onPresence` with the decoded presence event).
 */
export function definePlugin(def) {
  const on = def.on ?? {};
  const events = def.events ?? Object.keys(on);
  const exact = new Map();
  const patterns = [];
  for (const [name, fn] of Object.entries(on)) {
    if (typeof fn !== 'function') throw new TypeError(`on[${JSON.stringify(name)}] is not a function`);
    if (name.endsWith('*')) patterns.push([name, fn]);
    else exact.set(name, fn);
  }
  patterns.sort((a, b) => b[0].length - a[0].length);
  const route = (event) =>
    exact.get(event) ?? patterns.find(([p]) => patternMatches(p, event))?.[1] ?? def.onEvent;

  const hooks = {
    connect: typeof def.onConnect === 'function',
    disconnect: typeof def.onDisconnect === 'function',
    presence: typeof def.onPresence === 'function',
  };

  const guardHook = (name, fn) => {
    try {
      fn();
    } catch (e) {
      rawLog.log('error', `${def.name}: ${name} threw: ${e && e.stack ? e.stack : e}`);
    }
  };

  return {
    manifest() {
      return { name: def.name, version: def.version, events: [...events], hooks };
    },

    onEvent(raw) {
      const ctx = new Ctx(raw);
      try {
        const fn = route(ctx.event);
        if (!fn) throw new PluginError('unknown_event', `${def.name} does not handle ${ctx.event}`);
        const data = fn(ctx);
        if (data === undefined) return undefined;
        return encode(data, 'reply');
      } catch (e) {
        if (e instanceof PluginError) throw e;
        // A host error that escaped without the wrapper (raw bindings used directly).
        const p = e && e.payload;
        if (p && typeof p.code === 'string') throw new PluginError(p.code, String(p.message ?? ''));
        rawLog.log('error', `${def.name}: ${ctx.event} threw: ${e && e.stack ? e.stack : e}`);
        throw internal(`${ctx.event} failed: ${e && e.message ? e.message : String(e)}`);
      }
    },

    onConnect(socket) {
      if (hooks.connect) guardHook('onConnect', () => def.onConnect(socket));
    },

    onDisconnect(socket, user) {
      if (hooks.disconnect) guardHook('onDisconnect', () => def.onDisconnect(socket, user ?? undefined));
    },

    onPresence(json) {
      if (hooks.presence) guardHook('onPresence', () => def.onPresence(JSON.parse(json)));
    },
  };
}

/** The raw WIT bindings, for what the wrappers above do not cover. */
export const raw = {
  emit: rawEmit,
  rooms: rawRooms,
  kv: rawKv,
  presence: rawPresence,
  log: rawLog,
  clock: rawClock,
};

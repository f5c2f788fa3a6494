// An in-process stand-in for the rtm host, for testing plugin components
// (any guest language) under Node without building or running rtm-host.
//
// `loadPlugin(wasmPath)` transpiles the component with jco (cached by content
// hash), instantiates it with WASI from @bytecodealliance/preview2-shim and
// the `rtm:plugin@0.1.0` imports implemented by a `MockHost`: Socket.IO rooms,
// kv (strings, integers, lists, hashes), emitted events, a settable clock.
// It then offers `manifest()` and `event(socket, user, event, payload)`, which
// answers like the host's ack: `{ ok: true, data? }` or `{ ok: false, error }`.
//
// What it does not model: limits (fuel, memory, time), quarantine, tenants,
// the emit allow-list check against the manifest (recorded, not enforced).

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';

import * as shim from '@bytecodealliance/preview2-shim';

// componentize-py emits extended-const expressions (wasmtime has them on by
// default; Node 20's V8 only behind this flag, Node >= 22 by default).
v8.setFlagsFromString('--experimental-wasm-extended-const');

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const jcoBin = join(sdkDir, 'node_modules/@bytecodealliance/jco/dist/jco.js');
const cacheRoot = join(tmpdir(), 'rtm-mock-host-cache');

const camel = (s) => s.replace(/-(\w)/g, (_, c) => c.toUpperCase());

/** A WIT `error` thrown from an import: the bindings turn `payload` into `err`. */
export function hostError(code, message) {
  const e = new Error(`${code}: ${message}`);
  e.payload = { code, message };
  return e;
}

export class MockHost {
  constructor() {
    /** room -> Set<socket> */
    this.rooms = new Map();
    /** key -> { kind: 'str'|'list'|'hash', value } */
    this.kv = new Map();
    /** every emit: { kind, target, except?, event, payload (decoded) } */
    this.emitted = [];
    this.logs = [];
    this.nowMs = 1_732_900_000_000n;
    /** set to a { code, message } to make every kv call fail with it */
    this.kvFailure = null;
  }

  join(socket, room) {
    if (!this.rooms.has(room)) this.rooms.set(room, new Set());
    this.rooms.get(room).add(socket);
  }

  leave(socket, room) {
    this.rooms.get(room)?.delete(socket);
  }

  takeEmitted() {
    const out = this.emitted;
    this.emitted = [];
    return out;
  }

  #json(payload) {
    try {
      return JSON.parse(payload);
    } catch {
      throw hostError('invalid_json', 'payload is not JSON');
    }
  }

  #entry(key, kind) {
    if (this.kvFailure) throw hostError(this.kvFailure.code, this.kvFailure.message);
    const e = this.kv.get(key);
    if (e && e.kind !== kind) throw hostError('wrong_type', `${key} holds a ${e.kind}`);
    return e;
  }

  imports() {
    const host = this;
    const range = (list, start, stop) => {
      const n = BigInt(list.length);
      let s = start < 0n ? n + start : start;
      let e = stop < 0n ? n + stop : stop;
      if (s < 0n) s = 0n;
      if (e >= n) e = n - 1n;
      return s > e ? [] : list.slice(Number(s), Number(e) + 1);
    };
    return {
      'rtm:plugin/types': {},
      'rtm:plugin/emit': {
        toSocket(socket, event, payload) {
          host.emitted.push({ kind: 'socket', target: socket, event, payload: host.#json(payload) });
        },
        toRoom(room, event, payload) {
          host.emitted.push({ kind: 'room', target: room, event, payload: host.#json(payload) });
        },
        toRoomExcept(room, except, event, payload) {
          host.emitted.push({ kind: 'room', target: room, except, event, payload: host.#json(payload) });
        },
        broadcast(event, payload) {
          host.emitted.push({ kind: 'all', event, payload: host.#json(payload) });
        },
      },
      'rtm:plugin/rooms': {
        join: (socket, room) => host.join(socket, room),
        leave: (socket, room) => host.leave(socket, room),
        members: (room) => [...(host.rooms.get(room) ?? [])],
        has: (socket, room) => host.rooms.get(room)?.has(socket) ?? false,
      },
      'rtm:plugin/kv': {
        get(key) {
          return host.#entry(key, 'str')?.value;
        },
        set(key, value) {
          if (host.kvFailure) throw hostError(host.kvFailure.code, host.kvFailure.message);
          host.kv.set(key, { kind: 'str', value });
        },
        del(key) {
          if (host.kvFailure) throw hostError(host.kvFailure.code, host.kvFailure.message);
          return host.kv.delete(key);
        },
        incr(key, by) {
          const e = host.#entry(key, 'str');
          const cur = e ? BigInt(e.value) : 0n;
          const next = cur + by;
          host.kv.set(key, { kind: 'str', value: String(next) });
          return next;
        },
        listPush(key, value, maxLen) {
          const e = host.#entry(key, 'list') ?? { kind: 'list', value: [] };
          e.value.push(value);
          if (maxLen !== undefined && e.value.length > maxLen) e.value.splice(0, e.value.length - maxLen);
          host.kv.set(key, e);
          return BigInt(e.value.length);
        },
        listRange(key, start, stop) {
          return range(host.#entry(key, 'list')?.value ?? [], start, stop);
        },
        listTrim(key, start, stop) {
          const e = host.#entry(key, 'list');
          if (e) e.value = range(e.value, start, stop);
        },
        hashGet(key, field) {
          return host.#entry(key, 'hash')?.value.get(field);
        },
        hashSet(key, field, value) {
          const e = host.#entry(key, 'hash') ?? { kind: 'hash', value: new Map() };
          e.value.set(field, value);
          host.kv.set(key, e);
        },
        hashGetAll(key) {
          return [...(host.#entry(key, 'hash')?.value ?? new Map())];
        },
      },
      'rtm:plugin/presence': {
        snapshot: () => [],
      },
      'rtm:plugin/log': {
        log: (level, message) => host.logs.push({ level, message }),
      },
      'rtm:plugin/clock': {
        nowMs: () => host.nowMs,
      },
    };
  }
}

function transpiled(wasmPath) {
  const bytes = readFileSync(wasmPath);
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const dir = join(cacheRoot, hash);
  if (!existsSync(join(dir, 'component.js'))) {
    mkdirSync(cacheRoot, { recursive: true });
    const tmp = `${dir}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    execFileSync(process.execPath, [jcoBin, 'transpile', wasmPath, '--name', 'component', '--instantiation', 'async', '-q', '-o', tmp], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      renameSync(tmp, dir);
    } catch (e) {
      if (!existsSync(join(dir, 'component.js'))) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return dir;
}

/**
 * Loads a plugin component under a MockHost.
 * @returns {Promise<{ host: MockHost, manifest(): object, event(socket, user, event, payload): object, raw: object }>}
 */
export async function loadPlugin(wasmPath, host = new MockHost()) {
  const dir = transpiled(resolve(wasmPath));
  const { instantiate } = await import(pathToFileURL(join(dir, 'component.js')).href);
  const rtm = host.imports();
  const imports = new Proxy(
    {},
    {
      get(_, key) {
        if (typeof key !== 'string') return undefined;
        const unversioned = key.replace(/@[^@]*$/, '');
        if (rtm[unversioned]) return rtm[unversioned];
        const m = /^wasi:([\w-]+)\/([\w-]+)$/.exec(unversioned);
        if (m) return shim[m[1]]?.[camel(m[2])];
        return undefined;
      },
      has: () => true,
    },
  );
  const instance = await instantiate((name) => readFile(join(dir, name)).then((b) => WebAssembly.compile(b)), imports);
  const handler = instance.handler ?? instance['rtm:plugin/handler@0.1.0'];
  return {
    host,
    raw: handler,
    manifest: () => handler.manifest(),
    /** Runs on-event and answers like the host's ack. */
    event(socket, user, event, payload) {
      const json = payload === undefined ? 'null' : JSON.stringify(payload);
      try {
        const data = handler.onEvent({ socket, user: user ?? undefined, event, payload: json });
        return data === undefined ? { ok: true } : { ok: true, data: JSON.parse(data), dataJson: data };
      } catch (e) {
        if (e && e.payload && typeof e.payload.code === 'string') {
          return { ok: false, error: { code: e.payload.code, message: e.payload.message } };
        }
        return { ok: false, error: { code: 'plugin_failed', message: String(e && e.message) }, trap: e };
      }
    },
  };
}

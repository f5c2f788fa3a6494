// Types of @rtm/guest (src/index.js). Hand-written for the helper layer; the
// raw WIT imports it wraps are typed by ../types/wit/ (generated from wit/ by
// `npm run types:wit`, i.e. jco's guest type generator).

/// <reference path="../types/wit/plugin.d.ts" />

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The WIT `error` record: what a client sees as `{ ok: false, error }`. */
export interface ErrorRecord {
  code: string;
  message: string;
}

/**
 * An expected failure, acked as `{ ok: false, error: { code, message } }`.
 * Host calls that fail throw it too, with the host's code (`unavailable`,
 * `forbidden`, `invalid_json`, `wrong_type`, `too_large`, ...).
 */
export class PluginError extends Error {
  constructor(code: string, message: string);
  readonly code: string;
  /** The WIT `err` value componentize-js sends to the host. */
  readonly payload: ErrorRecord;
}

/** `invalid_payload`: the client sent something this plugin cannot accept. */
export function invalidPayload(message: string): PluginError;
/** `internal`: the plugin itself got something wrong. */
export function internal(message: string): PluginError;

/** Field types understood by `validate` / `ctx.payload(shape)`; `?` = optional. */
export type FieldType =
  | 'any'
  | 'string'
  | 'boolean'
  | 'number'
  | 'integer'
  | 'u32'
  | 'object'
  | 'array'
  | 'string[]';
export type FieldSpec = FieldType | `${FieldType}?`;
export type Shape = Record<string, FieldSpec>;

type Base<T extends string> = T extends 'any'
  ? Json
  : T extends 'string'
    ? string
    : T extends 'boolean'
      ? boolean
      : T extends 'number' | 'integer' | 'u32'
        ? number
        : T extends 'object'
          ? { [key: string]: Json }
          : T extends 'array'
            ? Json[]
            : T extends 'string[]'
              ? string[]
              : never;

/** The object `validate(value, shape)` returns for `shape`. */
export type Validated<S extends Shape> = {
  [K in keyof S]: S[K] extends `${infer T}?` ? Base<T> | undefined : Base<S[K] & string>;
};

/**
 * Checks a decoded payload against `shape` (serde-like rules: extra fields
 * ignored, `null`/absent optional fields read as `undefined`, a JSON array
 * with one element per field accepted positionally). Throws
 * `invalid_payload` on the first bad field.
 */
export function validate<S extends Shape>(value: unknown, shape: S, event?: string): Validated<S>;

/** One client event routed to the plugin. */
export interface Ctx {
  /** Id of the sending socket (for `rooms` and `emit`). */
  readonly socket: string;
  /** The sender's user id, when it joined presence or authenticated. */
  readonly user: string | undefined;
  /** The event name as the client sent it (useful with `prefix:*` patterns). */
  readonly event: string;
  /** The payload, serialized JSON (`null` when the client sent none). */
  readonly payloadJson: string;
  /** The payload decoded (`invalid_payload` when it is not JSON). */
  payload(): Json;
  /** The payload decoded and checked against `shape`. */
  payload<S extends Shape>(shape: S): Validated<S>;
  /** The sender's user id, or throws `err` when it has none. */
  userOr(err: PluginError): string;
}

/** What a handler may return: `undefined` acks `{ ok: true }`, anything else becomes `data`. */
export type Reply = Json | object | undefined | void;

export type EventHandler = (ctx: Ctx) => Reply;

export interface PluginDefinition {
  /** 1..64 chars of `[A-Za-z0-9_.-]`; unique per tenant; names the kv namespace. */
  name: string;
  /** Free-form, shown in /admin/plugins (semver recommended). */
  version: string;
  /** Handlers by exact event name or `prefix:*` pattern. */
  on?: Record<string, EventHandler>;
  /** Events declared in the manifest; defaults to the keys of `on`. */
  events?: string[];
  /** Fallback for declared events that `on` does not match. */
  onEvent?: EventHandler;
  /** Declares and implements the `connect` hook. */
  onConnect?: (socket: string) => void;
  /** Declares and implements the `disconnect` hook. */
  onDisconnect?: (socket: string, user: string | undefined) => void;
  /** Declares and implements the `presence` hook (the decoded `presence:event`). */
  onPresence?: (event: Json) => void;
}

/** The `rtm:plugin/handler@0.1.0` export object componentize-js expects as `export const handler`. */
export interface HandlerExport {
  manifest(): import('rtm:plugin/handler@0.1.0').PluginManifest;
  onEvent(ctx: import('rtm:plugin/handler@0.1.0').EventCtx): string | undefined;
  onConnect(socket: string): void;
  onDisconnect(socket: string, user: string | undefined): void;
  onPresence(event: string): void;
}

/** Builds the handler export: `export const handler = definePlugin({...})`. */
export function definePlugin(def: PluginDefinition): HandlerExport;

/** Sending events to the plugin's tenant (payloads serialized with JSON.stringify). */
export const emit: {
  toSocket(socket: string, event: string, payload: unknown): void;
  toRoom(room: string, event: string, payload: unknown): void;
  toRoomExcept(room: string, except: string, event: string, payload: unknown): void;
  broadcast(event: string, payload: unknown): void;
};

/** Socket.IO room membership within the plugin's tenant. */
export const rooms: {
  join(socket: string, room: string): void;
  leave(socket: string, room: string): void;
  members(room: string): string[];
  has(socket: string, room: string): boolean;
};

/**
 * The plugin's private kv store with JSON values. Integers are plain numbers.
 * componentize-js 0.23 cannot pass negative 64-bit integers to the host:
 * `listRange`/`listTrim` resolve negative indexes themselves (reading the
 * whole list), `incr` with a negative `by` throws `unsupported`.
 */
export const kv: {
  get<T = Json>(key: string): T | undefined;
  set(key: string, value: unknown, ttlMs?: number): void;
  del(key: string): boolean;
  incr(key: string, by?: number): number;
  listPush(key: string, value: unknown, maxLen?: number): number;
  listRange<T = Json>(key: string, start: number, stop: number): T[];
  listTrim(key: string, start: number, stop: number): void;
  hashGet<T = Json>(key: string, field: string): T | undefined;
  hashSet(key: string, field: string, value: unknown): void;
  hashGetAll<T = Json>(key: string): Array<[string, T]>;
  /** String-valued variants, for values that are not JSON. */
  raw: {
    get(key: string): string | undefined;
    set(key: string, value: string, ttlMs?: number): void;
    listPush(key: string, value: string, maxLen?: number): number;
    listRange(key: string, start: number, stop: number): string[];
    hashGet(key: string, field: string): string | undefined;
    hashSet(key: string, field: string, value: string): void;
    hashGetAll(key: string): Array<[string, string]>;
  };
};

export interface Member {
  connId: string;
  userId: string;
  state: { [key: string]: Json };
  epoch: number;
  lastSeen: number;
}

/** Read access to native presence. */
export const presence: {
  snapshot(room: string): Member[];
};

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/** Logging into the host's tracing output. */
export const log: {
  log(level: Level, message: string): void;
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
};

/** The host's wall clock. */
export const clock: {
  nowMs(): number;
};

/** The raw generated bindings (BigInt for 64-bit integers, strings for JSON). */
export const raw: {
  emit: typeof import('rtm:plugin/emit@0.1.0');
  rooms: typeof import('rtm:plugin/rooms@0.1.0');
  kv: typeof import('rtm:plugin/kv@0.1.0');
  presence: typeof import('rtm:plugin/presence@0.1.0');
  log: typeof import('rtm:plugin/log@0.1.0');
  clock: typeof import('rtm:plugin/clock@0.1.0');
};

/**
 * Wire types for PROTOCOL.md and the validators that turn untrusted acks and
 * broadcasts into them. Everything the server sends goes through a parser
 * here, so the rest of the SDK can rely on the shapes instead of re-checking
 * fields, and a host that drifts from the contract fails loudly with
 * `protocol_error` rather than corrupting the roster.
 */
import { RtmError, isProtocolErrorCode } from './errors.js';

/** A JSON value, as carried in presence state and custom payloads. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** Presence state: the protocol requires a JSON object (at most 4 KiB by default). */
export type PresenceState = { [key: string]: JsonValue };

/** One live registration in a room, as in a join/snapshot ack. */
export interface PresenceMember {
  readonly connId: string;
  readonly userId: string;
  readonly state: PresenceState;
  readonly epoch: number;
  /** Server time (ms since epoch) of the last join, update or heartbeat seen. */
  readonly lastSeen: number;
  /** The `info` claim of the member's token, on hosts with auth on (when it had one). */
  readonly info?: PresenceState;
}

/** The caller's own registration, from the join ack. */
export interface SelfRegistration {
  readonly connId: string;
  readonly epoch: number;
}

/** `presence:event` types. `expire` is a registration the reaper removed. */
export type PresenceEventType = 'join' | 'update' | 'leave' | 'expire';

/** A `presence:event` broadcast. */
export interface PresenceEvent {
  readonly type: PresenceEventType;
  readonly roomId: string;
  readonly userId: string;
  readonly connId: string;
  readonly state?: PresenceState;
  readonly ts: number;
  readonly epoch?: number;
  /** The `info` claim of the member's token, on hosts with auth on (when it had one). */
  readonly info?: PresenceState;
}

/** `presence:join` payload. */
export interface JoinRequest {
  readonly roomId: string;
  readonly userId: string;
  readonly state?: PresenceState;
  readonly resume?: { readonly connId: string; readonly epoch: number };
}

/** Parsed `presence:join` ack. */
export interface JoinAck {
  readonly self: SelfRegistration;
  readonly snapshot: PresenceMember[];
}

/** Parsed `presence:heartbeat` ack, for one room or for all of them. */
export type HeartbeatAck =
  | { readonly kind: 'room'; readonly epoch: number }
  | { readonly kind: 'all'; readonly epochs: ReadonlyMap<string, number> };

/** The protocol's event names, in one place so a typo cannot hide. */
export const EVENTS = {
  join: 'presence:join',
  heartbeat: 'presence:heartbeat',
  leave: 'presence:leave',
  snapshot: 'presence:snapshot',
  event: 'presence:event',
  refresh: 'auth:refresh',
  gap: 'rtm:gap',
} as const;

type Obj = Record<string, unknown>;

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function bad(event: string, what: string): RtmError {
  return new RtmError('protocol_error', `${event}: ${what}`, { event });
}

/**
 * Checks the `{ ok }` envelope every ack shares. Returns the ack object when
 * `ok` is true and throws the {@link RtmError} the server described otherwise,
 * keeping `epoch` for `stale_epoch` so callers can adopt it.
 */
export function unwrapAck(event: string, ack: unknown, roomId?: string): Obj {
  if (!isObject(ack) || typeof ack['ok'] !== 'boolean') {
    throw bad(event, 'ack is not an { ok } object');
  }
  if (ack['ok']) return ack;
  const error = ack['error'];
  const rawCode = isObject(error) ? error['code'] : undefined;
  const message =
    isObject(error) && typeof error['message'] === 'string' ? error['message'] : String(rawCode);
  const epoch = isFiniteNumber(ack['epoch']) ? ack['epoch'] : undefined;
  const details = {
    event,
    ...(roomId === undefined ? {} : { roomId }),
    ...(epoch === undefined ? {} : { epoch }),
  };
  if (isProtocolErrorCode(rawCode)) throw new RtmError(rawCode, message, details);
  throw new RtmError('protocol_error', `${event}: unknown error code ${String(rawCode)}: ${message}`, {
    ...details,
    serverCode: String(rawCode),
  });
}

export function parseState(event: string, value: unknown): PresenceState {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw bad(event, 'state is not a JSON object');
  return value as PresenceState;
}

export function parseMember(event: string, value: unknown): PresenceMember {
  if (!isObject(value)) throw bad(event, 'snapshot entry is not an object');
  const { connId, userId, epoch, lastSeen } = value;
  if (typeof connId !== 'string' || typeof userId !== 'string' || !isFiniteNumber(epoch)) {
    throw bad(event, 'snapshot entry lacks connId/userId/epoch');
  }
  const info = value['info'];
  return {
    connId,
    userId,
    state: parseState(event, value['state']),
    epoch,
    lastSeen: isFiniteNumber(lastSeen) ? lastSeen : 0,
    ...(isObject(info) ? { info: info as PresenceState } : {}),
  };
}

function parseSnapshot(event: string, value: unknown): PresenceMember[] {
  if (!Array.isArray(value)) throw bad(event, 'snapshot is not an array');
  return value.map((entry) => parseMember(event, entry));
}

export function parseJoinAck(ack: unknown, roomId: string): JoinAck {
  const body = unwrapAck(EVENTS.join, ack, roomId);
  const self = body['self'];
  if (!isObject(self) || typeof self['connId'] !== 'string' || !isFiniteNumber(self['epoch'])) {
    throw bad(EVENTS.join, 'ack lacks self.connId/self.epoch');
  }
  return {
    self: { connId: self['connId'], epoch: self['epoch'] },
    snapshot: parseSnapshot(EVENTS.join, body['snapshot']),
  };
}

export function parseSnapshotAck(ack: unknown, roomId: string): PresenceMember[] {
  return parseSnapshot(EVENTS.snapshot, unwrapAck(EVENTS.snapshot, ack, roomId)['snapshot']);
}

export function parseHeartbeatAck(ack: unknown, roomId?: string): HeartbeatAck {
  const body = unwrapAck(EVENTS.heartbeat, ack, roomId);
  if (roomId !== undefined) {
    if (!isFiniteNumber(body['epoch'])) throw bad(EVENTS.heartbeat, 'ack lacks epoch');
    return { kind: 'room', epoch: body['epoch'] };
  }
  const raw = body['epochs'];
  if (!isObject(raw)) throw bad(EVENTS.heartbeat, 'ack lacks epochs');
  const epochs = new Map<string, number>();
  for (const [room, epoch] of Object.entries(raw)) {
    if (!isFiniteNumber(epoch)) throw bad(EVENTS.heartbeat, `epochs.${room} is not a number`);
    epochs.set(room, epoch);
  }
  return { kind: 'all', epochs };
}

/** Parses an `auth:refresh` ack: the new token's `exp` (seconds since the epoch). */
export function parseRefreshAck(ack: unknown): number {
  const exp = unwrapAck(EVENTS.refresh, ack)['exp'];
  if (!isFiniteNumber(exp)) throw bad(EVENTS.refresh, 'ack lacks exp');
  return exp;
}

const EVENT_TYPES: ReadonlySet<string> = new Set<PresenceEventType>(['join', 'update', 'leave', 'expire']);

/**
 * Parses a `presence:event` broadcast. Returns `undefined` for a malformed
 * one: a broadcast has no ack to fail, and one bad frame must not take the
 * client down, so the caller reports it and moves on.
 */
export function parsePresenceEvent(value: unknown): PresenceEvent | undefined {
  if (!isObject(value)) return undefined;
  const { type, roomId, userId, connId, state, ts, epoch, info } = value;
  if (
    typeof type !== 'string' ||
    !EVENT_TYPES.has(type) ||
    typeof roomId !== 'string' ||
    typeof userId !== 'string' ||
    typeof connId !== 'string'
  ) {
    return undefined;
  }
  if (state !== undefined && state !== null && !isObject(state)) return undefined;
  return {
    type: type as PresenceEventType,
    roomId,
    userId,
    connId,
    ...(isObject(state) ? { state: state as PresenceState } : {}),
    ts: isFiniteNumber(ts) ? ts : Date.now(),
    ...(isFiniteNumber(epoch) ? { epoch } : {}),
    ...(isObject(info) ? { info: info as PresenceState } : {}),
  };
}

/**
 * Reads the `ts` of an `rtm:gap` notice. A notice without a usable `ts` is
 * still a gap (the stream may have a hole either way), dated now.
 */
export function parseGapTs(value: unknown): number {
  const ts = isObject(value) ? value['ts'] : undefined;
  return isFiniteNumber(ts) ? ts : Date.now();
}

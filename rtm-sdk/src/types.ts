import type { RtmError } from './errors.js';
import type { PresenceEvent, PresenceMember, PresenceState, SelfRegistration } from './protocol.js';

/**
 * Describes one client→server custom event: what you send and what the
 * plugin's `data` in the `{ ok: true, data }` ack looks like.
 */
export interface EmitSpec {
  readonly payload: unknown;
  readonly ack: unknown;
}

/**
 * A user-supplied map of client→server custom events, e.g.
 * `{ 'chat:message': { payload: { roomId: string; text: string }; ack: { id: string } } }`.
 * Written as a mapped constraint (not `Record<string, EmitSpec>`) so that
 * interfaces, which have no implicit index signature, are accepted too.
 */
export type EmitMap<E> = { [K in keyof E]: EmitSpec };

/** The untyped default: any event, any payload, `unknown` ack data. */
export type LooseEmits = Record<string, { payload: unknown; ack: unknown }>;

/** The untyped default for server→client custom events. */
export type LooseListens = Record<string, unknown>;

/** Where the client is in its connection lifecycle. */
export type ConnectionState =
  /** `connect()` not called yet. */
  | 'idle'
  /** First connection attempt(s) under way. */
  | 'connecting'
  /** Connected; rooms are (being re)joined. */
  | 'connected'
  /** The transport dropped; back-off retries are running and rooms will be resumed. */
  | 'reconnecting'
  /** `close()` was called, the server refused us, or retries ran out. Terminal. */
  | 'closed';

/** Reported after the SDK rejoined a room on its own (reconnect or lost registration). */
export interface RejoinInfo {
  readonly roomId: string;
  readonly connId: string;
  readonly epoch: number;
  /**
   * True when the server handed the old registration over (`resume` matched,
   * same connId): other members saw no leave/join. False when it had to
   * register afresh.
   */
  readonly resumed: boolean;
}

/** Reported after the server accepted a refreshed token. */
export interface TokenRefreshInfo {
  /** The new token's `exp`, in seconds since the epoch. */
  readonly exp: number;
}

/** Reported when the host signals `rtm:gap`. */
export interface GapInfo {
  /**
   * Server time (ms since the epoch) the host's pub/sub link was back: emits
   * from other nodes published before it (presence events, chat messages)
   * may never have reached this client.
   */
  readonly ts: number;
}

/**
 * Reported after a joined room's roster was replaced by a fresh
 * `presence:snapshot` following an `rtm:gap`: how the roster changed
 * compared with what the SDK held before (empty lists: nothing was missed).
 */
export interface ResyncInfo {
  readonly roomId: string;
  /** Members in the fresh roster the SDK did not hold. */
  readonly joined: readonly PresenceMember[];
  /** Members the SDK held that are gone (as it held them). */
  readonly left: readonly PresenceMember[];
  /** Members held before whose userId, state, epoch or info changed (as they are now). */
  readonly updated: readonly PresenceMember[];
}

/** What `join` resolves to. */
export interface RoomSnapshot {
  readonly roomId: string;
  readonly self: SelfRegistration;
  /** Every live registration in the room, the caller's own included. */
  readonly members: readonly PresenceMember[];
}

/** What a successful `patchState` resolves to. */
export interface PatchResult {
  /** The registration's epoch after the write. */
  readonly epoch: number;
  /** The SDK's view of this client's state in the room after the merge. */
  readonly state: PresenceState;
}

/** The SDK's own events, subscribed to with `on(name, handler)`. */
export interface ClientEvents {
  /** The connection state changed. */
  connection: (state: ConnectionState) => void;
  /** A raw `presence:event` for a room this client is in. */
  presence: (event: PresenceEvent) => void;
  /** A room's member list changed (snapshot applied, or an event applied). */
  roster: (roomId: string, members: ReadonlyMap<string, PresenceMember>) => void;
  /** A room was rejoined automatically. */
  rejoined: (info: RejoinInfo) => void;
  /**
   * The server accepted a refreshed token (`auth:refresh`, by the SDK's timer
   * or `refreshAuth()`); `exp` is the new token's
   * expiry in seconds since the epoch.
   */
  tokenRefreshed: (info: TokenRefreshInfo) => void;
  /**
   * The host's node lost its pub/sub link and has it back (`rtm:gap`):
   * broadcasts from before `ts` may be missing. The SDK refetches every
   * joined room's roster by itself (see `resynced`); refetch anything else
   * you keep from broadcasts, e.g. `chat:history`.
   */
  gap: (info: GapInfo) => void;
  /** A joined room's roster was replaced by a fresh snapshot after a gap. */
  resynced: (info: ResyncInfo) => void;
  /**
   * A failure with no promise to reject: a background heartbeat, rejoin or
   * post-gap resync, a malformed broadcast, or the terminal loss of the
   * connection.
   */
  error: (error: RtmError) => void;
}

/** Names reserved for {@link ClientEvents}; custom server events cannot use them. */
export type ClientEventName = keyof ClientEvents;

/** Returned by `on`; call it to unsubscribe. */
export type Unsubscribe = () => void;

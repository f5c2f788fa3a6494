import { refreshDelayMs, tokenExpiry, type TokenProvider } from './auth.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { RtmError, isProtocolErrorCode, isRtmError, type RtmErrorCode } from './errors.js';
import {
  EVENTS,
  isObject,
  parseHeartbeatAck,
  parseGapTs,
  parseJoinAck,
  parsePresenceEvent,
  parseRefreshAck,
  parseSnapshotAck,
  unwrapAck,
  type JoinRequest,
  type PresenceEvent,
  type PresenceMember,
  type PresenceState,
  type SelfRegistration,
} from './protocol.js';
import { Roster, diffRosters } from './roster.js';
import {
  defaultSocketFactory,
  namespaceUrl,
  type SocketFactory,
  type SocketIoOptions,
  type SocketLike,
  type SocketListener,
} from './socket.js';
import type {
  ClientEventName,
  ClientEvents,
  ConnectionState,
  EmitMap,
  LooseEmits,
  LooseListens,
  PatchResult,
  RoomSnapshot,
  Unsubscribe,
} from './types.js';

/** Options for {@link RealtimeMessageClient.connect}. */
export interface ConnectOptions {
  /**
   * The server's presence TTL (`PRESENCE_TTL_MS`), default 30 000 ms. Only
   * used to derive the default heartbeat interval.
   */
  readonly presenceTtlMs?: number;
  /**
   * How often to refresh this client's registrations. Default: a third of
   * {@link ConnectOptions.presenceTtlMs} (10 s for the server default), so
   * that two heartbeats can be lost before the reaper expires us.
   */
  readonly heartbeatIntervalMs?: number;
  /** Ack timeout for presence requests and the default for `emit`. Default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /**
   * How long the first `connect()` may take, retries included, before it
   * rejects with `timeout`. Default 20 000 ms.
   */
  readonly connectTimeoutMs?: number;
  /** Reconnection back-off, or `false` to stay closed after the first drop. */
  readonly reconnect?: BackoffOptions | false;
  /**
   * A JWT for a host (tenant) with auth on, sent in the handshake as
   * `auth: { token }`. A static token cannot be refreshed: when it expires the
   * server drops the socket and the reconnect is refused with `unauthorized`.
   * Use {@link ConnectOptions.getToken} for long-lived clients.
   */
  readonly token?: string;
  /**
   * Where tokens come from: called before the first handshake, before every
   * reconnect (so a reconnect never reuses an expired token) and to refresh
   * the token some margin before its `exp` (`auth:refresh`). May return a
   * promise. A throwing/rejecting `getToken` closes the client with
   * `unauthorized` (the thrown value is the `cause`). Not with `token`.
   */
  readonly getToken?: TokenProvider;
  /**
   * Tenant id: connects to namespace `/<tenant>` of `url`. The same as
   * putting the namespace in the URL (`https://host/acme`), which also works.
   */
  readonly tenant?: string;
  /** Passed through to socket.io-client (auth, path, extraHeaders, transports...). */
  readonly socketOptions?: SocketIoOptions;
  /** Replaces socket.io-client, for tests. */
  readonly socketFactory?: SocketFactory;
  /** Random source for back-off jitter, for tests. */
  readonly random?: () => number;
}

/** Options for {@link RealtimeMessageClient.emit}. */
export interface EmitOptions {
  /** Ack timeout in ms; defaults to the client's `requestTimeoutMs`. */
  readonly timeout?: number;
}

/** Bookkeeping for one room this client has joined (or is joining). */
interface RoomRecord {
  readonly roomId: string;
  userId: string;
  /** Our own state in the room, mirrored so a rejoin does not change it. */
  state: PresenceState;
  /** Set once the first join ack arrived. */
  connId: string | undefined;
  /** The newest epoch we know for our registration: sent with every patch. */
  epoch: number;
  status: 'joining' | 'joined' | 'rejoining';
  /** Bumped on every (re)join so late heartbeat acks can tell they are stale. */
  generation: number;
  readonly roster: Roster;
  /** Broadcasts held back while a join or resync is in flight; replayed over its snapshot. */
  buffer: PresenceEvent[] | undefined;
  rejoinPending: boolean;
  /**
   * The client's gap count when the snapshot now held was requested (join or
   * resync). Below the current count, broadcasts may have been lost since.
   */
  snapshotGap: number;
  /** A post-gap resync is queued and has not sent its request yet. */
  resyncQueued: boolean;
}

interface PendingRequest {
  readonly reject: (error: RtmError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly details: { readonly event: string; readonly roomId?: string };
}

interface ResolvedOptions {
  readonly heartbeatIntervalMs: number;
  readonly requestTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/** Codes after which retrying the same rejoin later can succeed. */
const TRANSIENT_CODES: ReadonlySet<RtmErrorCode> = new Set<RtmErrorCode>([
  'timeout',
  'disconnected',
  'rate_limited',
  'unavailable',
]);

const BUILTIN_EVENTS: ReadonlySet<string> = new Set<ClientEventName>([
  'connection',
  'presence',
  'roster',
  'rejoined',
  'tokenRefreshed',
  'gap',
  'resynced',
  'error',
]);

/** The longest delay setTimeout honours (2^31 - 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/** Refresh failures worth another try while the current token is still valid. */
const REFRESH_RETRY_CODES: ReadonlySet<RtmErrorCode> = new Set<RtmErrorCode>([
  'timeout',
  'rate_limited',
  'unavailable',
]);

function checkToken(token: unknown, source: string): string {
  if (typeof token !== 'string' || token === '') {
    throw new TypeError(`${source} must be a non-empty string, got ${typeof token}`);
  }
  return token;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Calls a token provider, turning a throw into a rejection. */
function callProvider(getToken: TokenProvider): Promise<string> {
  try {
    return Promise.resolve(getToken()).then((token) => checkToken(token, 'getToken() result'));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * The code of a refused handshake: the protocol code in `data.code` or in
 * the message (PROTOCOL.md: the message is the code), socket.io's own
 * "Invalid namespace" (no such tenant), or `protocol_error` for anything else.
 */
function refusalCode(error: unknown, message: string): { code: RtmErrorCode; serverCode?: string } {
  const data = isObject(error) ? error['data'] : undefined;
  const fromData = isObject(data) ? data['code'] : undefined;
  if (isProtocolErrorCode(fromData)) return { code: fromData };
  if (isProtocolErrorCode(message)) return { code: message };
  if (message === 'Invalid namespace') return { code: 'invalid_namespace' };
  return { code: 'protocol_error', serverCode: message };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds, got ${value}`);
  }
  return value;
}

function roomOf(payload: unknown): string | undefined {
  return isObject(payload) && typeof payload['roomId'] === 'string' ? payload['roomId'] : undefined;
}

/** Listener errors must not break the SDK's bookkeeping; rethrow them out of band. */
function invokeSafely(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * A client for the rtm host that does the presence bookkeeping for you:
 * heartbeats, epochs (fencing), live rosters and resuming rooms after a
 * reconnect.
 *
 * `Emits` and `Listens` type the plugin events: `Emits` maps each
 * client→server event to its payload and ack data, `Listens` maps each
 * server→client event to its payload.
 *
 * @example
 * const client = await RealtimeMessageClient.connect<ChatEmits, ChatListens>('http://localhost:3000');
 * const room = await client.join('lobby', 'alice', { status: 'online' });
 * client.on('roster', (roomId, members) => render(members));
 * await client.emit('chat:message', { roomId: 'lobby', text: 'hi' });
 */
export class RealtimeMessageClient<
  Emits extends EmitMap<Emits> = LooseEmits,
  Listens extends object = LooseListens,
> {
  private socket: SocketLike | undefined;
  private options: ResolvedOptions | undefined;
  private backoff: Backoff | undefined;
  private connState: ConnectionState = 'idle';
  private closing = false;

  private readonly rooms = new Map<string, RoomRecord>();
  /** Per-room tail of serialized join/leave/rejoin/resync operations. */
  private readonly roomOps = new Map<string, Promise<void>>();
  private readonly pending = new Set<PendingRequest>();
  /** How many `rtm:gap` notices arrived; rooms compare it with their `snapshotGap`. */
  private gaps = 0;

  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private heartbeatInFlight = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;

  /** Set with the `getToken` option: tokens can then be refreshed. */
  private getToken: TokenProvider | undefined;
  /** The token sent in the latest handshake (getToken only). */
  private handshakeToken: string | undefined;
  /** Numbers handshakes, so a slow getToken of an abandoned attempt is dropped. */
  private handshakeSeq = 0;
  /** Whether the one retry after an `unauthorized` refusal was used since the last connect. */
  private authRetried = false;
  /** Bumped on every connect and disconnect: a refresh of an older session is void. */
  private session = 0;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshing: Promise<number> | undefined;
  private pendingConnect:
    | { readonly resolve: () => void; readonly reject: (error: RtmError) => void }
    | undefined;

  private readonly builtinListeners = new Map<ClientEventName, Set<(...args: never[]) => void>>();
  private readonly customHandlers = new Map<string, Set<(payload: unknown) => void>>();
  private readonly dispatchers = new Map<string, SocketListener>();

  /** Creates a client and connects it; resolves once the socket is connected. */
  static async connect<E extends EmitMap<E> = LooseEmits, L extends object = LooseListens>(
    url: string,
    options: ConnectOptions = {},
  ): Promise<RealtimeMessageClient<E, L>> {
    const client = new RealtimeMessageClient<E, L>();
    await client.connect(url, options);
    return client;
  }

  /** The current connection state. */
  get state(): ConnectionState {
    return this.connState;
  }

  /** Whether the underlying socket is connected right now. */
  get connected(): boolean {
    return this.socket?.connected ?? false;
  }

  /**
   * The underlying socket (a socket.io-client `Socket` unless a factory was
   * injected). An escape hatch for diagnostics and tests; writing presence
   * events through it bypasses the SDK's bookkeeping.
   */
  get rawSocket(): SocketLike | undefined {
    return this.socket;
  }

  /**
   * Opens the connection. Resolves on the first successful connect; rejects
   * with the server's code (e.g. `unauthorized`) if the server refuses us, or
   * with `timeout` after `connectTimeoutMs`. Can be called once per client.
   */
  connect(url: string, options: ConnectOptions = {}): Promise<void> {
    if (this.connState !== 'idle') {
      return Promise.reject(new Error(`RealtimeMessageClient.connect: already ${this.connState}`));
    }
    try {
      return this.start(url, options);
    } catch (error) {
      // Bad options or a throwing factory: report through the promise, like every other failure.
      this.socket = undefined;
      this.options = undefined;
      return Promise.reject(error);
    }
  }

  private start(url: string, options: ConnectOptions): Promise<void> {
    const presenceTtlMs = positive('presenceTtlMs', options.presenceTtlMs ?? 30_000);
    this.options = {
      heartbeatIntervalMs: positive(
        'heartbeatIntervalMs',
        options.heartbeatIntervalMs ?? Math.floor(presenceTtlMs / 3),
      ),
      requestTimeoutMs: positive('requestTimeoutMs', options.requestTimeoutMs ?? 5_000),
      connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs ?? 20_000),
    };
    this.backoff =
      options.reconnect === false
        ? undefined
        : new Backoff(options.reconnect ?? {}, options.random ?? Math.random);

    const socketOptions = this.withAuth(options);
    const socket = (options.socketFactory ?? defaultSocketFactory)(
      namespaceUrl(url, options.tenant),
      socketOptions,
    );
    this.socket = socket;
    socket.on('connect', () => this.onConnect());
    socket.on('disconnect', (reason: unknown) => this.onDisconnect(String(reason)));
    socket.on('connect_error', (error: unknown) => this.onConnectError(error));
    socket.on(EVENTS.event, (payload: unknown) => this.onPresenceEvent(payload));
    socket.on(EVENTS.gap, (payload: unknown) => this.onGap(payload));
    for (const event of this.customHandlers.keys()) this.attachDispatcher(event);

    const connected = new Promise<void>((resolve, reject) => {
      this.pendingConnect = { resolve, reject };
    });
    this.connectTimer = setTimeout(() => {
      this.connectTimer = undefined;
      this.fail(
        new RtmError('timeout', `connect: not connected within ${this.opts().connectTimeoutMs} ms`),
      );
    }, this.opts().connectTimeoutMs);
    this.setState('connecting');
    socket.connect();
    return connected;
  }

  /**
   * Adds the handshake's `auth: { token }`. A static token is a plain object;
   * with `getToken` it is socket.io's callback form, which socket.io-client
   * calls before every handshake, so every (re)connect sends a fresh token.
   */
  private withAuth(options: ConnectOptions): SocketIoOptions {
    const base = options.socketOptions ?? {};
    const { token, getToken } = options;
    if (token === undefined && getToken === undefined) return base;
    if (token !== undefined && getToken !== undefined) {
      throw new TypeError('connect: pass either token or getToken, not both');
    }
    const extra = base.auth;
    if (typeof extra === 'function') {
      throw new TypeError('connect: socketOptions.auth as a function cannot be combined with token/getToken');
    }
    if (getToken === undefined) {
      return { ...base, auth: { ...extra, token: checkToken(token, 'token') } };
    }
    if (typeof getToken !== 'function') throw new TypeError('connect: getToken must be a function');
    this.getToken = getToken;
    return { ...base, auth: (cb: (data: object) => void) => this.handshakeAuth(getToken, extra ?? {}, cb) };
  }

  private handshakeAuth(getToken: TokenProvider, extra: object, cb: (data: object) => void): void {
    const seq = ++this.handshakeSeq;
    callProvider(getToken).then(
      (token) => {
        if (seq !== this.handshakeSeq || this.connState === 'closed' || this.closing) return;
        this.handshakeToken = token;
        cb({ ...extra, token });
      },
      (error: unknown) => {
        if (seq !== this.handshakeSeq) return;
        this.fail(
          new RtmError('unauthorized', `getToken failed: ${messageOf(error)}`, { event: 'connect', cause: error }),
        );
      },
    );
  }

  /**
   * Joins `roomId` as `userId` and resolves to the room's snapshot. From then
   * on the SDK heartbeats the registration, keeps its roster current and
   * rejoins it after reconnects. Joining a room again updates the state.
   */
  join(roomId: string, userId: string, state?: PresenceState): Promise<RoomSnapshot> {
    return this.serial(roomId, async () => {
      const existing = this.rooms.get(roomId);
      const record: RoomRecord = existing ?? {
        roomId,
        userId,
        state: state ?? {},
        connId: undefined,
        epoch: 0,
        status: 'joining',
        generation: 0,
        roster: new Roster(),
        buffer: undefined,
        rejoinPending: false,
        snapshotGap: this.gaps,
        resyncQueued: false,
      };
      if (!existing) this.rooms.set(roomId, record);
      try {
        return await this.performJoin(record, {
          roomId,
          userId,
          ...(state === undefined ? {} : { state }),
        });
      } catch (error) {
        // A first join that failed leaves nothing to heartbeat or resume.
        if (!existing && record.status === 'joining' && this.rooms.get(roomId) === record) {
          this.rooms.delete(roomId);
          this.stopHeartbeatIfIdle();
        }
        throw error;
      }
    });
  }

  /**
   * Leaves `roomId`: stops heartbeating it and tells the server. Leaving a
   * room the client is not in is a no-op. While disconnected it only forgets
   * the room locally (the server drops registrations of dead sockets itself).
   */
  leave(roomId: string): Promise<void> {
    return this.serial(roomId, async () => {
      const record = this.rooms.get(roomId);
      if (!record) return;
      this.rooms.delete(roomId);
      record.roster.clear();
      this.stopHeartbeatIfIdle();
      this.emitRoster(record);
      if (!this.connected) return;
      try {
        unwrapAck(EVENTS.leave, await this.request(EVENTS.leave, { roomId }), roomId);
      } catch (error) {
        // Already gone on the server (expired, or a resume fenced it): the goal is met.
        if (!isRtmError(error, 'not_joined')) throw error;
      }
    });
  }

  /**
   * Shallow-merges `patch` into this client's state in `roomId`, guarded by
   * the registration's epoch. If the server reports `stale_epoch` (another
   * write bumped the epoch first), the SDK adopts the server's epoch and
   * retries once; a second refusal is thrown.
   */
  async patchState(roomId: string, patch: PresenceState): Promise<PatchResult> {
    await this.settled(roomId);
    const record = this.rooms.get(roomId);
    if (!record || record.connId === undefined) {
      throw new RtmError('not_joined', `patchState: not joined to ${roomId}`, {
        event: EVENTS.heartbeat,
        roomId,
      });
    }
    for (let attempt = 0; ; attempt += 1) {
      try {
        const ack = parseHeartbeatAck(
          await this.request(EVENTS.heartbeat, { roomId, patchState: patch, epoch: record.epoch }),
          roomId,
        );
        if (ack.kind === 'room') record.epoch = Math.max(record.epoch, ack.epoch);
        record.state = { ...record.state, ...patch };
        return { epoch: record.epoch, state: record.state };
      } catch (error) {
        if (attempt === 0 && isRtmError(error, 'stale_epoch') && error.epoch !== undefined) {
          record.epoch = error.epoch;
          continue;
        }
        throw error;
      }
    }
  }

  /** Reads a room's members without joining it (`presence:snapshot`). */
  async snapshot(roomId: string): Promise<PresenceMember[]> {
    return parseSnapshotAck(await this.request(EVENTS.snapshot, { roomId }), roomId);
  }

  /**
   * Sends a custom (plugin) event and resolves to the `data` of its
   * `{ ok: true, data }` ack. Rejects with an {@link RtmError}: the plugin's
   * or server's code (`unknown_event`, `plugin_error`...), or `timeout` /
   * `disconnected`.
   */
  async emit<K extends keyof Emits & string>(
    event: K,
    payload: Emits[K]['payload'],
    options: EmitOptions = {},
  ): Promise<Emits[K]['ack']> {
    const timeout = options.timeout ?? this.opts().requestTimeoutMs;
    const body = unwrapAck(event, await this.request(event, payload, timeout), roomOf(payload));
    return body['data'] as Emits[K]['ack'];
  }

  /** Subscribes to one of the SDK's own events. */
  on<K extends ClientEventName>(event: K, handler: ClientEvents[K]): Unsubscribe;
  /** Subscribes to a custom server→client event (its first argument). */
  on<K extends Exclude<keyof Listens, ClientEventName> & string>(
    event: K,
    handler: (payload: Listens[K]) => void,
  ): Unsubscribe;
  on(event: string, handler: (...args: never[]) => void): Unsubscribe {
    if (BUILTIN_EVENTS.has(event)) {
      const name = event as ClientEventName;
      let set = this.builtinListeners.get(name);
      if (!set) this.builtinListeners.set(name, (set = new Set()));
      set.add(handler);
      return () => this.removeHandler(event, handler);
    }
    let set = this.customHandlers.get(event);
    if (!set) this.customHandlers.set(event, (set = new Set()));
    set.add(handler as (payload: unknown) => void);
    this.attachDispatcher(event);
    return () => this.removeHandler(event, handler);
  }

  /** Removes a handler added with {@link RealtimeMessageClient.on}. */
  off<K extends ClientEventName>(event: K, handler: ClientEvents[K]): void;
  off<K extends Exclude<keyof Listens, ClientEventName> & string>(
    event: K,
    handler: (payload: Listens[K]) => void,
  ): void;
  off(event: string, handler: (...args: never[]) => void): void {
    this.removeHandler(event, handler);
  }

  private removeHandler(event: string, handler: (...args: never[]) => void): void {
    if (BUILTIN_EVENTS.has(event)) {
      this.builtinListeners.get(event as ClientEventName)?.delete(handler);
      return;
    }
    const set = this.customHandlers.get(event);
    if (!set) return;
    set.delete(handler as (payload: unknown) => void);
    if (set.size === 0) {
      this.customHandlers.delete(event);
      const dispatcher = this.dispatchers.get(event);
      if (dispatcher) this.socket?.off(event, dispatcher);
      this.dispatchers.delete(event);
    }
  }

  /** The rooms this client is in (or joining). */
  roomIds(): string[] {
    return [...this.rooms.keys()];
  }

  /** A copy of a room's roster, keyed by connId; empty if not in the room. */
  roster(roomId: string): ReadonlyMap<string, PresenceMember> {
    return this.rooms.get(roomId)?.roster.snapshot() ?? new Map();
  }

  /** This client's registration in a room, once joined. */
  self(roomId: string): SelfRegistration | undefined {
    const record = this.rooms.get(roomId);
    return record?.connId === undefined ? undefined : { connId: record.connId, epoch: record.epoch };
  }

  /**
   * Refreshes the connection's token now: calls `getToken` and sends
   * `auth:refresh { token }`. Resolves to the new token's `exp` (seconds since
   * the epoch) and schedules the next refresh from it. The SDK does this by
   * itself before each token expires; call it when the token's claims changed
   * (new `rooms`, say). Rejects with an {@link RtmError}: `unauthorized` (bad
   * token, or getToken failed), `forbidden` (a token for another `sub`),
   * `timeout` or `disconnected`. Needs the `getToken` option.
   */
  refreshAuth(): Promise<number> {
    const getToken = this.getToken;
    if (!getToken) {
      return Promise.reject(new Error('RealtimeMessageClient.refreshAuth: needs the getToken option'));
    }
    this.refreshing ??= this.performRefresh(getToken).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /**
   * Leaves every room (best effort, briefly waiting for the ack so other
   * members see a `leave` at once even if the server keeps registrations of
   * dropped sockets for a grace period), stops heartbeats and disconnects.
   * Pending requests reject with `disconnected`. Idempotent.
   */
  async close(): Promise<void> {
    if (this.connState === 'closed' || this.closing) return;
    this.closing = true;
    this.stopHeartbeat();
    this.clearReconnectTimer();
    this.clearRefreshTimer();
    if (this.connected && this.rooms.size > 0) {
      try {
        await this.request(EVENTS.leave, {}, Math.min(1_000, this.opts().requestTimeoutMs));
      } catch {
        // Best effort: the server removes a closed socket's registrations anyway.
      }
    }
    this.shutdown(new RtmError('disconnected', 'client closed'));
  }

  // ---------------------------------------------------------------------------
  // Connection lifecycle

  private onConnect(): void {
    if (this.connState === 'closed' || this.closing) return;
    this.backoff?.reset();
    this.clearReconnectTimer();
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.authRetried = false;
    this.session += 1;
    this.scheduleRefresh(this.handshakeToken === undefined ? undefined : tokenExpiry(this.handshakeToken));
    this.setState('connected');
    const pending = this.pendingConnect;
    this.pendingConnect = undefined;
    pending?.resolve();
    // Take every room back, with `resume` so other members see no flap.
    for (const record of this.rooms.values()) this.rejoin(record);
    this.ensureHeartbeat();
  }

  private onDisconnect(reason: string): void {
    if (this.connState === 'closed') return;
    // The next handshake sends a fresh token; a refresh now would be for a dead socket.
    this.session += 1;
    this.clearRefreshTimer();
    // Acks of a dropped socket never arrive; fail their requests now.
    this.failPending(new RtmError('disconnected', `disconnected: ${reason}`));
    if (this.closing) return;
    this.stopHeartbeat();
    for (const record of this.rooms.values()) {
      if (record.status === 'joined') record.status = 'rejoining';
    }
    if (!this.backoff) {
      this.fail(new RtmError('disconnected', `disconnected (${reason}) and reconnect is off`));
      return;
    }
    this.setState('reconnecting');
    this.scheduleReconnect();
  }

  private onConnectError(error: unknown): void {
    if (this.connState === 'closed' || this.closing) return;
    const message = messageOf(error);
    if (this.socket?.active === false) {
      // The server refused the handshake (auth, quota, unknown namespace): retrying
      // with the same credentials cannot help, so it is terminal and reported.
      const { code, serverCode } = refusalCode(error, message);
      if (code === 'unauthorized' && this.getToken && !this.authRetried) {
        // The token may have expired between getToken and the handshake: one
        // more attempt, for which the auth callback asks getToken again.
        this.authRetried = true;
        this.clearReconnectTimer();
        this.reconnectTimer = setTimeout(() => {
          this.reconnectTimer = undefined;
          if (this.connState !== 'closed' && !this.closing && !this.connected) this.socket?.connect();
        }, 0);
        return;
      }
      this.fail(
        new RtmError(code, `connection refused: ${message}`, {
          event: 'connect',
          cause: error,
          ...(serverCode === undefined ? {} : { serverCode }),
        }),
      );
      return;
    }
    if (!this.backoff) {
      this.fail(new RtmError('disconnected', `connect failed: ${message}`, { cause: error }));
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const backoff = this.backoff;
    if (!backoff || this.reconnectTimer !== undefined) return;
    if (backoff.exhausted) {
      this.fail(
        new RtmError('disconnected', `gave up reconnecting after ${backoff.attempts} attempts`),
      );
      return;
    }
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.connState !== 'closed' && !this.closing && !this.connected) this.socket?.connect();
    }, backoff.next());
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  /** Terminal failure: report it, then shut down. */
  private fail(error: RtmError): void {
    if (this.connState === 'closed') return;
    const hadConnectPending = this.pendingConnect !== undefined;
    this.shutdown(error);
    // A rejected connect() already tells the caller; `error` is for failures nobody awaits.
    if (!hadConnectPending) this.emitLocal('error', error);
  }

  private shutdown(error: RtmError): void {
    this.stopHeartbeat();
    this.clearReconnectTimer();
    this.clearRefreshTimer();
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.rooms.clear();
    this.connState = 'closed';
    this.socket?.disconnect();
    this.failPending(error);
    const pending = this.pendingConnect;
    this.pendingConnect = undefined;
    pending?.reject(error);
    this.closing = false;
    this.emitLocal('connection', 'closed');
  }

  private setState(state: ConnectionState): void {
    if (this.connState === state) return;
    this.connState = state;
    this.emitLocal('connection', state);
  }

  // ---------------------------------------------------------------------------
  // Token refresh

  private async performRefresh(getToken: TokenProvider): Promise<number> {
    const details = { event: EVENTS.refresh };
    const session = this.session;
    if (!this.connected || this.connState === 'closed') {
      throw new RtmError('disconnected', `${EVENTS.refresh}: not connected`, details);
    }
    let token: string;
    try {
      token = await callProvider(getToken);
    } catch (error) {
      throw new RtmError('unauthorized', `getToken failed: ${messageOf(error)}`, { ...details, cause: error });
    }
    // A reconnect meanwhile sent a token of its own in its handshake.
    const stale = (): RtmError =>
      new RtmError('disconnected', `${EVENTS.refresh}: the connection changed meanwhile`, details);
    if (session !== this.session) throw stale();
    const exp = parseRefreshAck(await this.request(EVENTS.refresh, { token }));
    if (session !== this.session) throw stale();
    this.scheduleRefresh(exp);
    this.emitLocal('tokenRefreshed', { exp });
    return exp;
  }

  /** Arms the refresh timer for a token expiring at `exp` (seconds); getToken only. */
  private scheduleRefresh(exp: number | undefined): void {
    this.clearRefreshTimer();
    if (!this.getToken || exp === undefined || this.connState === 'closed' || this.closing) return;
    const delay = refreshDelayMs(exp, Date.now());
    if (delay > MAX_TIMER_MS) {
      // setTimeout fires at once beyond ~24.8 days; wait in steps instead.
      const session = this.session;
      this.refreshTimer = setTimeout(() => {
        this.refreshTimer = undefined;
        if (session === this.session) this.scheduleRefresh(exp);
      }, MAX_TIMER_MS);
      return;
    }
    this.armRefresh(delay, exp);
  }

  private armRefresh(delayMs: number, exp: number): void {
    const session = this.session;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (session === this.session) void this.backgroundRefresh(exp);
    }, delayMs);
  }

  /**
   * The timer's refresh. Failures are reported on `error`; a transient one
   * (timeout, rate_limited, unavailable) is retried while the current token
   * still has more than a second to live. A dropped connection is not an
   * error here: the reconnect's handshake carries a fresh token anyway.
   */
  private async backgroundRefresh(exp: number): Promise<void> {
    const session = this.session;
    try {
      await this.refreshAuth();
    } catch (error) {
      const rtm = isRtmError(error)
        ? error
        : new RtmError('protocol_error', String(error), { event: EVENTS.refresh, cause: error });
      if (rtm.code === 'disconnected' || session !== this.session) return;
      this.emitLocal('error', rtm);
      const remaining = exp * 1_000 - Date.now();
      if (REFRESH_RETRY_CODES.has(rtm.code) && remaining > 1_000 && this.refreshTimer === undefined) {
        this.armRefresh(Math.min(5_000, Math.floor(remaining / 2)), exp);
      }
    }
  }

  private clearRefreshTimer(): void {
    if (this.refreshTimer !== undefined) clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  // ---------------------------------------------------------------------------
  // Rooms

  /**
   * Sends `presence:join` and installs its snapshot. Broadcasts arriving
   * meanwhile are buffered and replayed over the snapshot, because the
   * snapshot may be older or newer than any of them.
   */
  private async performJoin(record: RoomRecord, request: JoinRequest): Promise<RoomSnapshot> {
    const generation = ++record.generation;
    record.buffer ??= [];
    // Sent after every gap seen so far: this snapshot covers them.
    record.snapshotGap = this.gaps;
    let ack;
    try {
      ack = parseJoinAck(await this.request(EVENTS.join, request), record.roomId);
    } catch (error) {
      if (record.generation === generation) this.flushBuffer(record);
      throw error;
    }
    record.connId = ack.self.connId;
    record.epoch = ack.self.epoch;
    record.userId = request.userId;
    const own = ack.snapshot.find((member) => member.connId === ack.self.connId);
    record.state = own?.state ?? request.state ?? record.state;
    record.status = 'joined';
    record.roster.reset(ack.snapshot);
    this.flushBuffer(record);
    this.emitRoster(record);
    this.ensureHeartbeat();
    return {
      roomId: record.roomId,
      self: { connId: record.connId, epoch: record.epoch },
      members: [...record.roster.snapshot().values()],
    };
  }

  /** Replays the held-back broadcasts (without notifying); returns whether the roster changed. */
  private flushBuffer(record: RoomRecord): boolean {
    const buffered = record.buffer ?? [];
    record.buffer = undefined;
    let changed = false;
    for (const event of buffered) changed = this.applyEvent(record, event, false) || changed;
    return changed;
  }

  // ---------------------------------------------------------------------------
  // Gaps

  /**
   * `rtm:gap`: the node we are connected to lost its pub/sub link and has it
   * back, so broadcasts from other nodes may be missing. Report it, then
   * refetch every room's roster.
   */
  private onGap(payload: unknown): void {
    if (this.connState === 'closed') return;
    const ts = parseGapTs(payload);
    this.gaps += 1;
    this.emitLocal('gap', { ts });
    for (const record of this.rooms.values()) this.resync(record);
  }

  /**
   * Queues a roster refetch after the room's other operations. A join or
   * rejoin sent after the gap brings a fresh snapshot itself, so the resync
   * then does nothing; one queued resync covers any number of gaps.
   */
  private resync(record: RoomRecord): void {
    if (record.resyncQueued) return;
    record.resyncQueued = true;
    void this.serial(record.roomId, async () => {
      record.resyncQueued = false;
      if (this.rooms.get(record.roomId) !== record || record.status !== 'joined' || !this.connected) return;
      if (record.snapshotGap >= this.gaps) return;
      await this.performResync(record);
    });
  }

  /**
   * Replaces the roster with a `presence:snapshot`. Broadcasts arriving
   * meanwhile are buffered and replayed over it, as for a join, so an event
   * newer than the snapshot (by epoch per connId) still applies and an older
   * one cannot roll it back. Listeners get one `roster` (if anything changed)
   * and a `resynced` with the difference from what was held. A failed
   * request leaves the roster as it was (plus the buffered events), is
   * reported on `error`, and is retried with the next heartbeat when the
   * failure is transient.
   */
  private async performResync(record: RoomRecord): Promise<void> {
    const { roomId } = record;
    const previousGap = record.snapshotGap;
    record.snapshotGap = this.gaps;
    record.buffer ??= [];
    let members: PresenceMember[];
    try {
      members = parseSnapshotAck(await this.request(EVENTS.snapshot, { roomId }), roomId);
    } catch (error) {
      if (this.rooms.get(roomId) !== record) return;
      if (this.flushBuffer(record)) this.emitRoster(record);
      const rtm = isRtmError(error)
        ? error
        : new RtmError('protocol_error', String(error), { event: EVENTS.snapshot, roomId, cause: error });
      // Still stale: a transient failure is retried by the heartbeat, a drop by the rejoin.
      if (TRANSIENT_CODES.has(rtm.code)) record.snapshotGap = previousGap;
      if (rtm.code !== 'disconnected') this.emitLocal('error', rtm);
      return;
    }
    if (this.rooms.get(roomId) !== record) return;
    const before = record.roster.snapshot();
    record.roster.reset(members);
    this.flushBuffer(record);
    const after = record.roster.snapshot();
    const diff = diffRosters(before, after);
    const own = record.connId === undefined ? undefined : after.get(record.connId);
    if (own) record.epoch = Math.max(record.epoch, own.epoch);
    if (diff.joined.length + diff.left.length + diff.updated.length > 0) this.emitRoster(record);
    this.emitLocal('resynced', { roomId, ...diff });
    // Our own leave/expire may have been among the lost broadcasts.
    if (!own && record.status === 'joined') this.rejoin(record);
  }

  /**
   * Rejoins a room the SDK still holds (after a reconnect, or when the server
   * no longer knows our registration), resuming the old registration when it
   * still exists. Non-transient refusals drop the room and are reported.
   */
  private rejoin(record: RoomRecord): void {
    if (record.rejoinPending) return;
    record.rejoinPending = true;
    if (record.status === 'joined') record.status = 'rejoining';
    const previousConnId = record.connId;
    void this.serial(record.roomId, async () => {
      if (this.rooms.get(record.roomId) !== record || !this.connected) return;
      const resume =
        record.connId === undefined ? {} : { resume: { connId: record.connId, epoch: record.epoch } };
      try {
        const snapshot = await this.performJoin(record, {
          roomId: record.roomId,
          userId: record.userId,
          state: record.state,
          ...resume,
        });
        this.emitLocal('rejoined', {
          roomId: record.roomId,
          connId: snapshot.self.connId,
          epoch: snapshot.self.epoch,
          resumed: snapshot.self.connId === previousConnId,
        });
      } catch (error) {
        const rtm = isRtmError(error)
          ? error
          : new RtmError('protocol_error', String(error), { roomId: record.roomId, cause: error });
        if (!TRANSIENT_CODES.has(rtm.code) && this.rooms.get(record.roomId) === record) {
          this.rooms.delete(record.roomId);
          record.roster.clear();
          this.emitRoster(record);
          this.stopHeartbeatIfIdle();
        }
        // A drop mid-rejoin is already being handled by the reconnect loop.
        if (rtm.code !== 'disconnected') this.emitLocal('error', rtm);
      } finally {
        record.rejoinPending = false;
      }
    });
  }

  private onPresenceEvent(payload: unknown): void {
    const event = parsePresenceEvent(payload);
    if (!event) {
      this.emitLocal(
        'error',
        new RtmError('protocol_error', 'malformed presence:event ignored', { event: EVENTS.event }),
      );
      return;
    }
    this.emitLocal('presence', event);
    const record = this.rooms.get(event.roomId);
    if (!record) return;
    if (record.buffer) {
      record.buffer.push(event);
      return;
    }
    this.applyEvent(record, event, true);
  }

  private applyEvent(record: RoomRecord, event: PresenceEvent, notify: boolean): boolean {
    if (event.connId === record.connId) this.applyOwnEvent(record, event);
    const changed = record.roster.apply(event);
    if (changed && notify) this.emitRoster(record);
    return changed;
  }

  /** Keeps our epoch/state mirror in step, and notices our registration vanishing. */
  private applyOwnEvent(record: RoomRecord, event: PresenceEvent): void {
    const older = event.epoch !== undefined && event.epoch < record.epoch;
    if (older) return;
    if (event.type === 'join' || event.type === 'update') {
      if (event.epoch !== undefined) record.epoch = event.epoch;
      if (event.state) record.state = event.state;
    } else if (record.status === 'joined') {
      // The server dropped us (reaped after a stall, say) while we still want the room.
      this.rejoin(record);
    }
  }

  /** Runs `op` after every earlier join/leave/rejoin of the same room. */
  private serial<T>(roomId: string, op: () => Promise<T>): Promise<T> {
    const previous = this.roomOps.get(roomId) ?? Promise.resolve();
    const result = previous.then(op);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.roomOps.set(roomId, tail);
    void tail.then(() => {
      if (this.roomOps.get(roomId) === tail) this.roomOps.delete(roomId);
    });
    return result;
  }

  /** Waits for the room's queued operations, ignoring their outcome. */
  private async settled(roomId: string): Promise<void> {
    await this.roomOps.get(roomId);
  }

  // ---------------------------------------------------------------------------
  // Heartbeats

  private ensureHeartbeat(): void {
    if (this.heartbeatTimer !== undefined || !this.connected || this.rooms.size === 0) return;
    this.heartbeatTimer = setInterval(() => void this.beat(), this.opts().heartbeatIntervalMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private stopHeartbeatIfIdle(): void {
    if (this.rooms.size === 0) this.stopHeartbeat();
  }

  /**
   * One heartbeat for all rooms (no `roomId`), so the cost stays one message
   * per interval however many rooms are joined. Rooms missing from the ack's
   * `epochs` lost their registration and are rejoined; rooms whose earlier
   * rejoin failed transiently are retried here.
   */
  private async beat(): Promise<void> {
    if (this.heartbeatInFlight || !this.connected) return;
    for (const record of this.rooms.values()) {
      if (record.status === 'rejoining' && !record.rejoinPending) this.rejoin(record);
      // A resync that failed transiently, or a join sent before the latest gap.
      else if (record.status === 'joined' && record.snapshotGap < this.gaps) this.resync(record);
    }
    const sent = [...this.rooms.values()]
      .filter((record) => record.status === 'joined')
      .map((record) => ({ record, generation: record.generation }));
    if (sent.length === 0) return;
    this.heartbeatInFlight = true;
    try {
      const ack = parseHeartbeatAck(await this.request(EVENTS.heartbeat, {}));
      const epochs = ack.kind === 'all' ? ack.epochs : new Map<string, number>();
      for (const { record, generation } of sent) {
        if (!this.isCurrent(record, generation)) continue;
        const epoch = epochs.get(record.roomId);
        if (epoch === undefined) this.rejoin(record);
        else record.epoch = Math.max(record.epoch, epoch);
      }
    } catch (error) {
      if (isRtmError(error, 'not_joined')) {
        for (const { record, generation } of sent) {
          if (this.isCurrent(record, generation)) this.rejoin(record);
        }
      } else if (!isRtmError(error, 'disconnected')) {
        this.emitLocal(
          'error',
          isRtmError(error) ? error : new RtmError('protocol_error', String(error), { cause: error }),
        );
      }
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  private isCurrent(record: RoomRecord, generation: number): boolean {
    return (
      this.rooms.get(record.roomId) === record &&
      record.generation === generation &&
      record.status === 'joined'
    );
  }

  // ---------------------------------------------------------------------------
  // Requests and events

  /**
   * Emits with an ack and a timeout of our own. Refuses at once when not
   * connected: socket.io would buffer the packet and send it after the next
   * connect, where a presence write would land before the room is rejoined.
   */
  private request(event: string, payload: unknown, timeoutMs?: number): Promise<unknown> {
    const socket = this.socket;
    const roomId = roomOf(payload);
    const details = { event, ...(roomId === undefined ? {} : { roomId }) };
    if (!socket?.connected || this.connState === 'closed') {
      return Promise.reject(new RtmError('disconnected', `${event}: not connected`, details));
    }
    const ms = timeoutMs ?? this.opts().requestTimeoutMs;
    return new Promise<unknown>((resolve, reject) => {
      const entry: PendingRequest = {
        reject,
        details,
        timer: setTimeout(() => {
          if (this.pending.delete(entry)) {
            reject(new RtmError('timeout', `${event}: no ack within ${ms} ms`, details));
          }
        }, ms),
      };
      this.pending.add(entry);
      socket.emit(event, payload, (ack: unknown) => {
        if (!this.pending.delete(entry)) return;
        clearTimeout(entry.timer);
        resolve(ack);
      });
    });
  }

  /** Rejects every request still waiting for an ack; each error names its own event. */
  private failPending(cause: RtmError): void {
    const entries = [...this.pending];
    this.pending.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(
        new RtmError(cause.code, `${entry.details.event}: ${cause.message}`, {
          ...entry.details,
          cause,
        }),
      );
    }
  }

  private attachDispatcher(event: string): void {
    if (!this.socket || this.dispatchers.has(event)) return;
    const dispatcher: SocketListener = (payload: unknown) => {
      for (const handler of [...(this.customHandlers.get(event) ?? [])]) {
        invokeSafely(() => handler(payload));
      }
    };
    this.dispatchers.set(event, dispatcher);
    this.socket.on(event, dispatcher);
  }

  private emitLocal<K extends ClientEventName>(event: K, ...args: Parameters<ClientEvents[K]>): void {
    const set = this.builtinListeners.get(event);
    if (!set) return;
    for (const handler of [...set]) {
      invokeSafely(() => (handler as unknown as (...a: Parameters<ClientEvents[K]>) => void)(...args));
    }
  }

  private emitRoster(record: RoomRecord): void {
    this.emitLocal('roster', record.roomId, record.roster.snapshot());
  }

  private opts(): ResolvedOptions {
    if (!this.options) throw new Error('RealtimeMessageClient: connect() has not been called');
    return this.options;
  }
}

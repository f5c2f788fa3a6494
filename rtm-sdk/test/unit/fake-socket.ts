import type { SocketFactory, SocketIoOptions, SocketLike, SocketListener } from '../../src/socket.js';

/** One packet the client emitted. */
export interface SentPacket {
  readonly event: string;
  readonly payload: unknown;
  readonly ack: ((response: unknown) => void) | undefined;
  answered: boolean;
}

/** Computes an ack for a request; `undefined` leaves it for the test to answer. */
export type AutoResponder = (payload: unknown) => unknown;

/**
 * A scripted stand-in for a socket.io-client Socket, for unit tests only.
 * It records what the client emits, lets the test answer acks (by hand or
 * through per-event auto-responders) and plays the server's side of
 * connects, drops and broadcasts. Acks are delivered in a microtask, as a
 * real socket would deliver them asynchronously.
 */
export class FakeSocket implements SocketLike {
  connected = false;
  active = true;
  connectCalls = 0;
  disconnectCalls = 0;
  readonly sent: SentPacket[] = [];
  /** What each handshake sent as socket.io `auth` (resolved when it is a callback), oldest first. */
  readonly handshakes: unknown[] = [];
  /** The URL and options the client built the socket with, when created through {@link FakeSocket.factory}. */
  url: string | undefined;
  options: SocketIoOptions | undefined;
  private readonly listeners = new Map<string, Set<SocketListener>>();
  private readonly responders = new Map<string, AutoResponder>();

  /** When true, `connect()` succeeds as soon as the handshake's auth is ready. */
  constructor(private readonly autoAccept = true) {}

  /** A socket factory that hands out this socket and records the URL and options. */
  readonly factory: SocketFactory = (url, options) => {
    this.url = url;
    this.options = options;
    return this;
  };

  on(event: string, listener: SocketListener): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  off(event: string, listener?: SocketListener): this {
    if (listener) this.listeners.get(event)?.delete(listener);
    else this.listeners.delete(event);
    return this;
  }

  emit(event: string, ...args: unknown[]): this {
    const last = args[args.length - 1];
    const ack = typeof last === 'function' ? (last as (response: unknown) => void) : undefined;
    const packet: SentPacket = { event, payload: args[0], ack, answered: false };
    this.sent.push(packet);
    const responder = this.responders.get(event);
    if (responder && ack) {
      const response = responder(packet.payload);
      if (response !== undefined) {
        packet.answered = true;
        queueMicrotask(() => ack(response));
      }
    }
    return this;
  }

  /**
   * Like socket.io-client, resolves `auth` for every handshake: an object is
   * sent as is, a callback is called and its data sent once it answers.
   */
  connect(): this {
    this.connectCalls += 1;
    const send = (data: unknown): void => {
      this.handshakes.push(data);
      if (this.autoAccept) this.accept();
    };
    const auth = this.options?.auth;
    if (typeof auth === 'function') auth(send);
    else send(auth);
    return this;
  }

  disconnect(): this {
    this.disconnectCalls += 1;
    this.active = false;
    if (this.connected) {
      this.connected = false;
      this.fire('disconnect', 'io client disconnect');
    }
    return this;
  }

  // --- the server's side -----------------------------------------------------

  /** Auto-answer every `event` request with `responder(payload)`. */
  respond(event: string, responder: AutoResponder): void {
    this.responders.set(event, responder);
  }

  /** The handshake succeeds. */
  accept(): void {
    this.connected = true;
    this.active = true;
    this.fire('connect');
  }

  /** The transport drops (network loss, server restart...). */
  drop(reason = 'transport close'): void {
    this.connected = false;
    this.fire('disconnect', reason);
  }

  /** A connection attempt fails at the transport level (retryable). */
  failAttempt(message = 'xhr poll error'): void {
    this.fire('connect_error', new Error(message));
  }

  /** The server refuses the handshake (middleware error: not retryable). */
  refuse(message: string, data?: unknown): void {
    this.active = false;
    this.fire('connect_error', Object.assign(new Error(message), { data }));
  }

  /** A server→client event. */
  serverEmit(event: string, ...args: unknown[]): void {
    this.fire(event, ...args);
  }

  /** Every emitted packet named `event`, oldest first. */
  packets(event: string): SentPacket[] {
    return this.sent.filter((packet) => packet.event === event);
  }

  /** The oldest unanswered request named `event`; throws if none. */
  pendingRequest(event: string): SentPacket {
    const packet = this.sent.find((p) => p.event === event && p.ack && !p.answered);
    if (!packet) {
      throw new Error(`no pending ${event} request; sent: ${this.sent.map((p) => p.event).join(', ')}`);
    }
    return packet;
  }

  /** Answers the oldest unanswered `event` request. */
  reply(event: string, response: unknown): SentPacket {
    const packet = this.pendingRequest(event);
    packet.answered = true;
    packet.ack?.(response);
    return packet;
  }

  listenerCount(event: string): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  private fire(event: string, ...args: unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) listener(...args);
  }
}

/** Lets queued promise continuations (and microtask acks) run. */
export async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await Promise.resolve();
}

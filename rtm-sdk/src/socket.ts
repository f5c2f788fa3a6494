import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';

/** A listener as socket.io-client calls it: any number of arguments. */
// `any[]` rather than `unknown[]`: socket.io-client's own listener type uses
// it, and with `unknown[]` its Socket would not satisfy this interface.
export type SocketListener = (...args: any[]) => void;

/**
 * The slice of a socket.io-client `Socket` that the SDK uses.
 *
 * Keeping it this small is what makes the client testable without a server:
 * unit tests hand in a scripted fake, while production code gets the real
 * `Socket` (which satisfies this interface structurally; see
 * {@link defaultSocketFactory}). Acks are passed as the last `emit` argument
 * and timed by the SDK itself, so no `timeout()` support is needed.
 */
export interface SocketLike {
  /** Whether the socket is currently connected to the namespace. */
  readonly connected: boolean;
  /**
   * socket.io-client's `active`: false once the server refused the connection
   * (a middleware error such as `unauthorized`), in which case retrying is
   * pointless. Optional so that minimal fakes may omit it.
   */
  readonly active?: boolean;
  on(event: string, listener: SocketListener): unknown;
  off(event: string, listener?: SocketListener): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  connect(): unknown;
  disconnect(): unknown;
}

/** Socket.IO options the SDK lets applications pass through (auth, headers, path...). */
export type SocketIoOptions = Partial<ManagerOptions & SocketOptions>;

/** Creates the socket for a URL; swapped out in tests. */
export type SocketFactory = (url: string, options: SocketIoOptions) => SocketLike;

/**
 * Builds a real socket.io-client socket.
 *
 * socket.io's own reconnection is turned off because the SDK runs its own
 * back-off loop: it has to pause heartbeats, fail pending requests and
 * rejoin rooms with `resume` around every reconnect, and it also reconnects
 * after an `io server disconnect`, which socket.io's manager never does.
 * WebSocket is tried first so that cross-origin pages (like the demo on
 * another port) work without CORS; long-polling remains the fallback.
 */
export const defaultSocketFactory: SocketFactory = (url, options) => {
  const socket: Socket = io(url, {
    transports: ['websocket', 'polling'],
    tryAllTransports: true,
    ...options,
    autoConnect: false,
    reconnection: false,
    forceNew: true,
  });
  return socket;
};

/** Tenant ids as PROTOCOL.md "Tenants" defines them. */
const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * The URL handed to socket.io-client, whose path is the Socket.IO namespace:
 * tenant `acme` is namespace `/acme`, so `https://host/acme` must reach
 * `io()` with its path intact (socket.io's own `path` option is the engine
 * endpoint, `/socket.io`, and is unrelated). Trailing slashes are dropped
 * (`/acme/` would be a different, unknown namespace). With `tenant`, the URL
 * must name no namespace or that same one; query and fragment are kept.
 */
export function namespaceUrl(url: string, tenant?: string): string {
  if (tenant !== undefined && !TENANT_ID.test(tenant)) {
    throw new RangeError(`tenant must match [a-z0-9][a-z0-9-]{0,31}, got ${JSON.stringify(tenant)}`);
  }
  const [, base = '', rest = ''] = /^([^?#]*)(.*)$/s.exec(url) ?? [];
  // `scheme://authority`, `//authority`, or `host:port` as socket.io also accepts; '' for '/path'.
  const authority = /^(?:[a-z][a-z0-9+.-]*:)?\/\/[^/]*/i.exec(base)?.[0] ?? /^[^/]*/.exec(base)?.[0] ?? '';
  const path = base.slice(authority.length).replace(/\/+$/, '');
  if (tenant === undefined || path === `/${tenant}`) return authority + path + rest;
  if (path !== '') {
    throw new RangeError(`url ${url} already names namespace ${path}; cannot also use tenant ${tenant}`);
  }
  return `${authority}/${tenant}${rest}`;
}

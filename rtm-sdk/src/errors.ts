/**
 * Error codes the host sends in `{ ok: false, error: { code, message } }`
 * (PROTOCOL.md, "Error shape"). They are stable, so applications may switch
 * on them; keep this list in step with the protocol table.
 */
export const PROTOCOL_ERROR_CODES = [
  'invalid_payload',
  'payload_too_large',
  'not_joined',
  'stale_epoch',
  'unknown_event',
  'rate_limited',
  'unauthorized',
  'forbidden',
  'plugin_error',
  'plugin_failed',
  'quota_exceeded',
  'unavailable',
] as const;

/** A code defined by the wire protocol. */
export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/**
 * Codes the SDK raises itself, for failures that never reach the server or
 * whose answer never came back:
 * - `timeout`: no ack within the request's timeout.
 * - `disconnected`: the socket was not connected, or dropped before the ack.
 * - `protocol_error`: the server answered something that does not match
 *   PROTOCOL.md (a malformed ack, or an error code the SDK does not know;
 *   the raw code is then in {@link RtmError.serverCode}).
 * - `invalid_namespace`: the host refused the handshake because it serves no
 *   such namespace, i.e. no such tenant (socket.io's "Invalid namespace").
 */
export type ClientErrorCode = 'timeout' | 'disconnected' | 'protocol_error' | 'invalid_namespace';

/** Every code an {@link RtmError} can carry. */
export type RtmErrorCode = ProtocolErrorCode | ClientErrorCode;

const KNOWN_CODES: ReadonlySet<string> = new Set<string>(PROTOCOL_ERROR_CODES);

/** Whether `code` is one of the protocol's error codes. */
export function isProtocolErrorCode(code: unknown): code is ProtocolErrorCode {
  return typeof code === 'string' && KNOWN_CODES.has(code);
}

/** Extra context attached to an {@link RtmError}. */
export interface RtmErrorDetails {
  /**
   * The event whose request failed, e.g. `presence:join`, `chat:message` or
   * `auth:refresh`; `connect` for a refused handshake.
   */
  readonly event?: string;
  /** The room the request was about, when there was one. */
  readonly roomId?: string;
  /** For `stale_epoch`: the server's current epoch, carried by the ack. */
  readonly epoch?: number;
  /** For `protocol_error` caused by an unknown server code: that code. */
  readonly serverCode?: string;
  /** The underlying cause, e.g. a socket.io connect error. */
  readonly cause?: unknown;
}

/**
 * The one exception type the SDK rejects with. Applications branch on
 * {@link RtmError.code} rather than on message text, which is free-form and
 * may come from a plugin.
 */
export class RtmError extends Error {
  override readonly name = 'RtmError';
  readonly code: RtmErrorCode;
  readonly event: string | undefined;
  readonly roomId: string | undefined;
  readonly epoch: number | undefined;
  readonly serverCode: string | undefined;

  constructor(code: RtmErrorCode, message: string, details: RtmErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.event = details.event;
    this.roomId = details.roomId;
    this.epoch = details.epoch;
    this.serverCode = details.serverCode;
  }
}

/** Type guard that also narrows on the code, for concise `catch` blocks. */
export function isRtmError<C extends RtmErrorCode>(
  value: unknown,
  code?: C,
): value is RtmError & { readonly code: C } {
  return value instanceof RtmError && (code === undefined || value.code === code);
}

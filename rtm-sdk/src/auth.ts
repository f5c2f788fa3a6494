/**
 * Token helpers for hosts with auth on (PROTOCOL.md "Authentication"). The
 * client never verifies a token (it has no key, and the server checks it on
 * every handshake and refresh); it only reads `exp` to know when to refresh.
 */

/** A token source: called before every handshake and every `auth:refresh`. */
export type TokenProvider = () => string | Promise<string>;

/**
 * The payload of a JWT (`header.payload.signature`), decoded but NOT
 * verified, or `undefined` if `token` is not a JWT with a JSON object payload.
 */
export function decodeTokenPayload(token: string): Record<string, unknown> | undefined {
  const part = token.split('.')[1];
  if (part === undefined || !/^[A-Za-z0-9_-]*={0,2}$/.test(part)) return undefined;
  try {
    const base64 = part.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const payload: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof payload === 'object' && payload !== null && !Array.isArray(payload)
      ? (payload as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A JWT's `exp` claim (seconds since the epoch), or `undefined` if it has none. */
export function tokenExpiry(token: string): number | undefined {
  const exp = decodeTokenPayload(token)?.['exp'];
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
}

/** Refresh this long before `exp`: 10 % of the remaining lifetime, within [1 s, 60 s]. */
export function refreshMarginMs(remainingMs: number): number {
  return Math.min(60_000, Math.max(1_000, remainingMs * 0.1));
}

/**
 * How long to wait before refreshing a token that expires at `expSeconds`,
 * measured from `nowMs`. Zero when the margin has already been reached.
 */
export function refreshDelayMs(expSeconds: number, nowMs: number): number {
  const remaining = expSeconds * 1_000 - nowMs;
  return Math.max(0, Math.floor(remaining - refreshMarginMs(remaining)));
}

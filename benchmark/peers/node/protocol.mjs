// What every handler shares: the PROTOCOL.md error shape, input checks and the
// wrapper that turns a handler's result (or error) into the one ack.

/** A refusal with a stable PROTOCOL.md code; `extra` is merged into the ack. */
export class RtmError extends Error {
  constructor(code, message, extra) {
    super(message);
    this.code = code;
    this.extra = extra;
  }
}

export const invalid = (message) => new RtmError('invalid_payload', message);

/** The ack of an error: `{ ok: false, error: { code, message }, ...extra }`. */
export function errorAck(err) {
  if (err instanceof RtmError) {
    return { ok: false, error: { code: err.code, message: err.message }, ...err.extra };
  }
  return { ok: false, error: { code: 'unavailable', message: 'backend unavailable; nothing was written' } };
}

const ID = /^[A-Za-z0-9_.:@-]+$/;

export const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The payload as an object; absent/null is `{}` when `optional`. */
export function payloadObject(p, optional) {
  if (isPlainObject(p)) return p;
  if (optional && (p === undefined || p === null)) return {};
  throw invalid('payload must be a JSON object');
}

/** An id field (`roomId`, `userId`, ...): undefined when absent, else 1..max of the id charset. */
export function optionalId(obj, field, maxLen) {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLen || !ID.test(v)) {
    throw invalid(`${field} must be 1..${maxLen} characters of [A-Za-z0-9_.:@-]`);
  }
  return v;
}

export function requiredId(obj, field, maxLen) {
  const v = optionalId(obj, field, maxLen);
  if (v === undefined) throw invalid(`${field} is required`);
  return v;
}

/** A non-negative integer field, or undefined. */
export function optionalEpoch(obj, field) {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`${field} must be a non-negative integer`);
  return v;
}

/**
 * Registers `handler(payload, socket)` for `event`. The handler resolves to the ack, or
 * to `{ ack, after }` where `after()` runs once the ack is sent (broadcasts go out after
 * the ack, so its latency does not include them). A request without an ack callback is
 * still processed; its errors are only logged.
 */
export function on(socket, event, handler, log) {
  socket.on(event, (payload, ack) => {
    if (typeof payload === 'function' && ack === undefined) {
      ack = payload;
      payload = undefined;
    }
    const reply = typeof ack === 'function' ? ack : null;
    handler(payload, socket).then(
      (res) => {
        if (res && typeof res.after === 'function') {
          reply?.(res.ack);
          res.after();
        } else {
          reply?.(res);
        }
      },
      (err) => {
        if (!(err instanceof RtmError)) {
          log.error(`${event} failed: ${err?.message ?? err}`);
        } else if (!reply) {
          log.debug(`${event} refused (${err.code}): ${err.message}`);
        }
        reply?.(errorAck(err));
      },
    );
  });
}

/** Events nobody handles answer `unknown_event` (and are otherwise dropped). */
export function refuseUnknownEvents(socket) {
  socket.use((packet, next) => {
    const [event] = packet;
    if (socket.listenerCount(event) > 0) return next();
    const ack = packet[packet.length - 1];
    if (typeof ack === 'function') {
      ack(errorAck(new RtmError('unknown_event', `no handler for event ${JSON.stringify(event)}`)));
    }
  });
}

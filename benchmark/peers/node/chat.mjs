// The example chat contract (PROTOCOL.md "The example chat plugin"), written directly on
// socket.io: chat:message (capped history in Redis, broadcast to the room on every node),
// chat:history and chat:typing. The sender must have joined the room via presence.
import { randomUUID } from 'node:crypto';

import { RtmError, invalid, on, payloadObject, requiredId } from './protocol.mjs';

/** Messages kept per room. */
const HISTORY_CAP = 100;
/** Longest message, in characters (code points). */
const MAX_TEXT_CHARS = 2000;

/** True when `s` has more than MAX_TEXT_CHARS code points (counted only when in doubt). */
function tooLong(s) {
  if (s.length <= MAX_TEXT_CHARS) return false;
  if (s.length > 2 * MAX_TEXT_CHARS) return true;
  let n = 0;
  for (const _ of s) if (++n > MAX_TEXT_CHARS) return true;
  return false;
}

export class Chat {
  constructor({ io, redis, presence, config, log }) {
    this.io = io;
    this.redis = redis;
    this.presence = presence;
    this.prefix = config.chatPrefix;
    this.maxId = config.maxIdLen;
    this.log = log;
  }

  bind(socket) {
    on(socket, 'chat:message', (p, s) => this.message(p, s), this.log);
    on(socket, 'chat:history', (p) => this.history(p), this.log);
    on(socket, 'chat:typing', (p, s) => this.typing(p, s), this.log);
  }

  #historyKey(roomId) {
    return `${this.prefix}history:${roomId}`;
  }

  #sender(socket, roomId) {
    const userId = this.presence.userIn(socket, roomId);
    if (userId === undefined) throw new RtmError('not_joined', `join room ${roomId} first`);
    return userId;
  }

  async message(p, socket) {
    const o = payloadObject(p, false);
    const roomId = requiredId(o, 'roomId', this.maxId);
    const { text } = o;
    if (typeof text !== 'string') throw invalid('text must be a string');
    if (text.length === 0 || tooLong(text)) throw invalid(`text must be 1..${MAX_TEXT_CHARS} characters`);
    const userId = this.#sender(socket, roomId);
    const msg = { id: randomUUID(), roomId, userId, text, ts: Date.now() };
    const key = this.#historyKey(roomId);
    // Append and trim in one MULTI: one round trip, and never a history above the cap.
    const results = await this.redis
      .multi()
      .rpush(key, JSON.stringify(msg))
      .ltrim(key, -HISTORY_CAP, -1)
      .exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('chat history append aborted');
    this.io.to(roomId).emit('chat:message', msg);
    return { ok: true, data: { id: msg.id } };
  }

  async history(p) {
    const o = payloadObject(p, false);
    const roomId = requiredId(o, 'roomId', this.maxId);
    let limit = HISTORY_CAP;
    if (o.limit !== undefined && o.limit !== null) {
      if (!Number.isSafeInteger(o.limit) || o.limit < 0) throw invalid('limit must be a non-negative integer');
      limit = Math.min(o.limit, HISTORY_CAP);
    }
    if (limit === 0) return { ok: true, data: { messages: [] } };
    const raw = await this.redis.lrange(this.#historyKey(roomId), -limit, -1);
    return { ok: true, data: { messages: raw.map((m) => JSON.parse(m)) } };
  }

  async typing(p, socket) {
    const o = payloadObject(p, false);
    const roomId = requiredId(o, 'roomId', this.maxId);
    if (typeof o.typing !== 'boolean') throw invalid('typing must be a boolean');
    const userId = this.#sender(socket, roomId);
    // socket.to(): the room on every node, except the sender.
    socket.to(roomId).emit('chat:typing', { roomId, userId, typing: o.typing });
    return { ok: true, data: null };
  }
}

// @ts-check
// The example chat plugin (PROTOCOL.md, "The example chat plugin"), in
// JavaScript. It behaves exactly like the Rust one in plugins/chat and uses
// the same manifest name ("chat", hence the same kv namespace) and the same kv
// layout, so either build can replace the other and read its history:
//
//   seq:<roomId>      integer, per-room message counter (ids "<roomId>-<n>")
//   history:<roomId>  list of JSON messages {id, roomId, userId, text, ts, v},
//                     oldest first, capped at HISTORY_CAP in the push itself
//
// - `chat:message {roomId, text}`: the sender must be in the room; the message
//   is appended to the history and broadcast to the room as `chat:message
//   {id, roomId, userId, text, ts, v}`; ack `{id, v}`.
// - `chat:history {roomId, limit?}`: ack `{messages}`, oldest first.
// - `chat:typing {roomId, typing}`: broadcast `chat:typing {roomId, userId,
//   typing}` to the room except the sender.
//
// `v` is a build-time marker: esbuild inlines RTM_CHAT_MARK (`--define
// RTM_CHAT_MARK=v2`, set by plugins/build-polyglot.sh from the environment
// variable of the same name); default "v1".

import { PluginError, clock, definePlugin, emit, invalidPayload, kv, rooms } from '@rtm/guest';

/** @type {string} */
const MARK = typeof RTM_CHAT_MARK === 'string' ? RTM_CHAT_MARK : 'v1';

/** Messages kept per room. */
const HISTORY_CAP = 100;
/** Longest message, in characters (Unicode code points, like Rust's `chars()`). */
const MAX_TEXT_CHARS = 2000;
/** Default and maximum `limit` of `chat:history`. */
const MAX_HISTORY_LIMIT = HISTORY_CAP;

/** @param {string} roomId */
const historyKey = (roomId) => `history:${roomId}`;

/**
 * The sender's user id, provided it is in `roomId`.
 * @param {import('@rtm/guest').Ctx} ctx
 * @param {string} roomId
 */
function joinedUser(ctx, roomId) {
  const notJoined = new PluginError('not_joined', `join room ${JSON.stringify(roomId)} first`);
  if (roomId === '' || !rooms.has(ctx.socket, roomId)) throw notJoined;
  return ctx.userOr(notJoined);
}

/** @param {import('@rtm/guest').Ctx} ctx */
function message(ctx) {
  const req = ctx.payload({ roomId: 'string', text: 'string' });
  const chars = [...req.text].length;
  if (chars === 0 || chars > MAX_TEXT_CHARS) {
    throw invalidPayload(`text must be 1..${MAX_TEXT_CHARS} characters, got ${chars}`);
  }
  const userId = joinedUser(ctx, req.roomId);
  // A per-room counter gives ids that are unique across nodes and ordered.
  const seq = kv.incr(`seq:${req.roomId}`, 1);
  // Field order matches the Rust plugin's serialization.
  const msg = {
    id: `${req.roomId}-${seq}`,
    roomId: req.roomId,
    userId,
    text: req.text,
    ts: clock.nowMs(),
    v: MARK,
  };
  kv.listPush(historyKey(req.roomId), msg, HISTORY_CAP);
  emit.toRoom(msg.roomId, 'chat:message', msg);
  return { id: msg.id, v: MARK };
}

/** @param {Record<string, unknown>} obj */
const sortKeys = (obj) => Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** @param {import('@rtm/guest').Ctx} ctx */
function history(ctx) {
  const req = ctx.payload({ roomId: 'string', limit: 'u32?' });
  if (req.roomId === '') throw invalidPayload('roomId must not be empty');
  const limit = Math.min(req.limit ?? MAX_HISTORY_LIMIT, MAX_HISTORY_LIMIT);
  /** @type {Record<string, unknown>[]} */
  const messages = limit === 0 ? [] : kv.listRange(historyKey(req.roomId), -limit, -1);
  // The Rust plugin builds this reply through serde_json::Value, whose maps
  // sort their keys; sort them too so both answer byte for byte the same.
  return { messages: messages.map(sortKeys) };
}

/** @param {import('@rtm/guest').Ctx} ctx */
function typing(ctx) {
  const req = ctx.payload({ roomId: 'string', typing: 'boolean' });
  const userId = joinedUser(ctx, req.roomId);
  emit.toRoomExcept(req.roomId, ctx.socket, 'chat:typing', {
    roomId: req.roomId,
    userId,
    typing: req.typing,
  });
  return undefined;
}

export const handler = definePlugin({
  name: 'chat',
  version: '0.1.0',
  on: {
    'chat:message': message,
    'chat:history': history,
    'chat:typing': typing,
  },
});

// @ts-check
// A starting point for an rtm plugin in JavaScript (see guest-sdk/js/README.md).
//
//   counter:hit  {roomId}   -> ack {hits}, broadcast counter:hits {roomId, hits} to the room
//   counter:get  {roomId}   -> ack {hits}
//
// Rename the plugin (`name` names its kv namespace and must be unique per
// tenant), change the events, build, drop the .wasm into PLUGINS_DIR.

import { PluginError, definePlugin, emit, kv, rooms } from '@rtm/guest';

export const handler = definePlugin({
  name: 'counter',
  version: '0.1.0',
  on: {
    'counter:hit': (ctx) => {
      const { roomId } = ctx.payload({ roomId: 'string' });
      if (!rooms.has(ctx.socket, roomId)) {
        throw new PluginError('not_joined', `join room ${JSON.stringify(roomId)} first`);
      }
      const hits = kv.incr(`hits:${roomId}`, 1);
      emit.toRoom(roomId, 'counter:hits', { roomId, hits });
      return { hits };
    },
    'counter:get': (ctx) => {
      const { roomId } = ctx.payload({ roomId: 'string' });
      return { hits: Number(kv.raw.get(`hits:${roomId}`) ?? 0) };
    },
  },
});

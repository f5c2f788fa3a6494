"""A starting point for an rtm plugin in Python (see guest-sdk/python/README.md).

    counter:hit  {roomId}   -> ack {hits}, broadcast counter:hits {roomId, hits} to the room
    counter:get  {roomId}   -> ack {hits}

Rename the plugin (its name names its kv namespace and must be unique per
tenant), change the events, build, drop the .wasm into PLUGINS_DIR.
"""

from rtm_guest import Ctx, Plugin, PluginError, emit, kv, rooms

plugin = Plugin("counter", "0.1.0")


@plugin.on("counter:hit")
def hit(ctx: Ctx):
    room_id = ctx.payload({"roomId": "string"})["roomId"]
    if not rooms.has(ctx.socket, room_id):
        raise PluginError("not_joined", f"join room {room_id!r} first")
    hits = kv.incr(f"hits:{room_id}", 1)
    emit.to_room(room_id, "counter:hits", {"roomId": room_id, "hits": hits})
    return {"hits": hits}


@plugin.on("counter:get")
def get(ctx: Ctx):
    room_id = ctx.payload({"roomId": "string"})["roomId"]
    return {"hits": int(kv.raw.get(f"hits:{room_id}") or 0)}


# componentize-py exports this class as the `handler` interface.
Handler = plugin.handler()

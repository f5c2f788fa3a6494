"""Test guest for the Python SDK itself (guest-sdk/js/test/components.test.mjs):
each ``probe:*`` event exercises one helper and returns what it saw.
Built on demand into plugins/dist/sdk-probe/ (not a default output).
"""

from rtm_guest import Ctx, Plugin, PluginError, clock, emit, kv, log, presence, rooms

plugin = Plugin("sdk-probe-py", "0.1.0")


@plugin.on("probe:kv")
def probe_kv(ctx: Ctx):
    for x in ["a", "b", "c", "d"]:
        kv.list_push("l", x, 3)
    out = {
        "incr": kv.incr("n", 2),
        "range": kv.list_range("l", -2, -1),
        "rangePos": kv.list_range("l", 0, 1),
        "rangeMixed": kv.list_range("l", 1, -1),
        "rangeEmpty": kv.list_range("l", -1, -2),
        "missing": kv.get("nope"),
    }
    kv.set("j", {"a": [1, 2]})
    out["json"] = kv.get("j")
    kv.list_trim("l", -2, -1)
    out["trimmed"] = kv.list_range("l", 0, 10)
    kv.hash_set("h", "f", {"x": 1})
    out["hash"] = [list(p) for p in kv.hash_get_all("h")]
    out["del"] = kv.delete("j")
    return out


@plugin.on("probe:incr-negative")
def incr_negative(ctx: Ctx):
    return kv.incr("n", -1)


@plugin.on("probe:host-error")
def host_error(ctx: Ctx):
    return kv.get("boom")


@plugin.on("probe:bug")
def bug(ctx: Ctx):
    return {}["y"]


@plugin.on("probe:throw")
def throw(ctx: Ctx):
    raise PluginError("custom_code", "custom message")


@plugin.on("probe:misc")
def misc(ctx: Ctx):
    log.info("probe log")
    emit.to_socket(ctx.socket, "probe:to-socket", {"n": 1})
    emit.broadcast("probe:all", [1, "two"])
    return {
        "now": clock.now_ms(),
        "has": rooms.has(ctx.socket, "r"),
        "members": rooms.members("r"),
        "snapshot": presence.snapshot("r"),
        "user": ctx.user,
        "payload": ctx.payload({"a": "string", "b": "u32?", "c": "any"}),
    }


@plugin.on("probe:none")
def none(ctx: Ctx):
    return None


@plugin.on("probe:*")
def fallback(ctx: Ctx):
    return {"fallback": ctx.event}


@plugin.on_presence
def on_presence(ev):
    log.info(f"presence {ev}")


Handler = plugin.handler()

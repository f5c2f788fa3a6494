"""Test guest: every ``bomb:*`` event allocates (and touches) memory without
bound, so only the host's memory cap can end it (Python twin of
plugins/test-guests/membomb). Manifest name ``membomb-py``.

When the host's limit refuses ``memory.grow`` the instance traps (the host
sets ``trap_on_grow_failure``); were it to fail softly instead, CPython
raises ``MemoryError``, which rtm_guest deliberately does not turn into an
error ack, so the call still ends as a trap.
"""

from rtm_guest import Ctx, Plugin

CHUNK = 1 << 20

plugin = Plugin("membomb-py", "0.1.0")


@plugin.on("bomb:*")
def bomb(ctx: Ctx):
    hoard = []
    while True:
        chunk = bytearray(CHUNK)
        # Touch every page so no allocator can hand out untouched memory lazily.
        for i in range(0, CHUNK, 4096):
            chunk[i] = 0xA5
        hoard.append(chunk)


Handler = plugin.handler()

"""The moderation example plugin, in Python (see README.md).

A per-room list of blocked words in kv, and a check that masks them:

- ``mod:add-words {roomId, words}`` / ``mod:remove-words {roomId, words}``:
  the sender must be in the room; ack ``{words, added|removed}`` and broadcast
  ``mod:words {roomId, words}`` to the room when the list changed.
- ``mod:list {roomId}``: ack ``{words}``.
- ``mod:check {roomId, text}``: ack ``{allowed, masked}``, every blocked word
  in ``text`` replaced by as many ``*`` as it has characters.

kv layout (keys are prefixed by the host with tenant and plugin name):
``words:<roomId>`` holds the room's list as a JSON array of words, sorted.
"""

from __future__ import annotations

import re
from typing import List

from rtm_guest import Ctx, Plugin, PluginError, emit, invalid_payload, kv, rooms

#: Longest word, in characters.
MAX_WORD_CHARS = 64
#: Most words per room.
MAX_WORDS = 1000
#: Most words per add/remove request.
MAX_WORDS_PER_REQUEST = 100
#: Longest text `mod:check` accepts, in characters.
MAX_TEXT_CHARS = 10_000

#: A word: letters, digits or `_` of any script (Python's Unicode `\w`).
WORD = re.compile(r"\w+")

plugin = Plugin("moderation", "0.1.0", events=["mod:*"])


def words_key(room_id: str) -> str:
    return f"words:{room_id}"


def room_of(ctx: Ctx, payload: dict) -> str:
    room_id = payload["roomId"]
    if room_id == "":
        raise invalid_payload("roomId must not be empty")
    return room_id


def require_joined(ctx: Ctx, room_id: str) -> None:
    if not rooms.has(ctx.socket, room_id):
        raise PluginError("not_joined", f"join room {room_id!r} first")


def normalize(words: List[str]) -> List[str]:
    """Casefolds and checks each requested word (a single ``\\w+`` token)."""
    if len(words) > MAX_WORDS_PER_REQUEST:
        raise invalid_payload(f"at most {MAX_WORDS_PER_REQUEST} words per request, got {len(words)}")
    out = []
    for word in words:
        w = word.strip().casefold()
        if not w or len(w) > MAX_WORD_CHARS or WORD.fullmatch(w) is None:
            raise invalid_payload(
                f"each word must be 1..{MAX_WORD_CHARS} letters, digits or _, got {word!r}"
            )
        out.append(w)
    return out


def load(room_id: str) -> List[str]:
    words = kv.get(words_key(room_id))
    return list(words) if isinstance(words, list) else []


def store(room_id: str, words: List[str]) -> None:
    if words:
        kv.set(words_key(room_id), words)
    else:
        kv.delete(words_key(room_id))
    emit.to_room(room_id, "mod:words", {"roomId": room_id, "words": words})


@plugin.on("mod:add-words")
def add_words(ctx: Ctx):
    req = ctx.payload({"roomId": "string", "words": "string[]"})
    room_id = room_of(ctx, req)
    wanted = normalize(req["words"])
    require_joined(ctx, room_id)
    current = load(room_id)
    merged = sorted(set(current) | set(wanted))
    if len(merged) > MAX_WORDS:
        raise invalid_payload(f"a room holds at most {MAX_WORDS} words")
    added = len(merged) - len(current)
    if added:
        store(room_id, merged)
    return {"words": merged, "added": added}


@plugin.on("mod:remove-words")
def remove_words(ctx: Ctx):
    req = ctx.payload({"roomId": "string", "words": "string[]"})
    room_id = room_of(ctx, req)
    unwanted = set(normalize(req["words"]))
    require_joined(ctx, room_id)
    current = load(room_id)
    kept = [w for w in current if w not in unwanted]
    removed = len(current) - len(kept)
    if removed:
        store(room_id, kept)
    return {"words": kept, "removed": removed}


@plugin.on("mod:list")
def list_words(ctx: Ctx):
    req = ctx.payload({"roomId": "string"})
    return {"words": load(room_of(ctx, req))}


@plugin.on("mod:check")
def check(ctx: Ctx):
    req = ctx.payload({"roomId": "string", "text": "string"})
    room_id = room_of(ctx, req)
    text = req["text"]
    if len(text) > MAX_TEXT_CHARS:
        raise invalid_payload(f"text must be at most {MAX_TEXT_CHARS} characters, got {len(text)}")
    blocked = set(load(room_id))
    hits = 0

    def mask(m: re.Match) -> str:
        nonlocal hits
        token = m.group(0)
        if token.casefold() in blocked:
            hits += 1
            return "*" * len(token)
        return token

    masked = WORD.sub(mask, text) if blocked else text
    return {"allowed": hits == 0, "masked": masked}


Handler = plugin.handler()

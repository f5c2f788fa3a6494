"""rtm_guest: write rtm plugins in Python.

A thin layer over the WIT imports of ``rtm:plugin@0.1.0`` (world ``plugin``,
see ``wit/`` at the repository root), for components built with
componentize-py: JSON in and out, one error type, and :class:`Plugin`, which
builds the exported ``Handler`` class (manifest, ``on_event`` routed by event
name, the three hooks)::

    from rtm_guest import Plugin, Ctx

    plugin = Plugin("echo", "0.1.0")

    @plugin.on("echo:say")
    def say(ctx: Ctx):
        return ctx.payload({"text": "string"})

    Handler = plugin.handler()   # componentize-py exports this class

The generated bindings (package ``wit_world``) exist only while
componentize-py builds the component, so this module imports them lazily
through :mod:`rtm_guest._wit`; it can still be imported (and its pure parts,
such as :func:`validate`, tested) under plain CPython.
"""

from __future__ import annotations

import json
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from . import _wit

__all__ = [
    "Ctx",
    "Plugin",
    "PluginError",
    "clock",
    "emit",
    "internal",
    "invalid_payload",
    "kv",
    "log",
    "presence",
    "rooms",
    "validate",
]


class PluginError(Exception):
    """An expected failure, sent to the client as ``{ok: false, error: {code, message}}``.

    Host calls that fail raise it too (with the host's code, e.g.
    ``unavailable``), so an uncaught host failure reaches the client unchanged.
    """

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def invalid_payload(message: str) -> PluginError:
    """``invalid_payload``: the client sent something this plugin cannot accept."""
    return PluginError("invalid_payload", message)


def internal(message: str) -> PluginError:
    """``internal``: the plugin itself got something wrong."""
    return PluginError("internal", message)


def _host(call: Callable[..., Any], *args: Any) -> Any:
    """Runs a raw host call, turning its ``Err(error)`` into a PluginError."""
    try:
        return call(*args)
    except _wit.Err() as e:  # type: ignore[misc]
        value = e.value
        raise PluginError(str(value.code), str(value.message)) from None


def _encode(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise internal(f"{what} does not serialize: {e}") from None


def _decode(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise internal(f"{what} does not decode: {e}") from None


class _Emit:
    """Sending events to sockets and rooms of the plugin's tenant (payloads: any JSON value)."""

    def to_socket(self, socket: str, event: str, payload: Any) -> None:
        _host(_wit.emit().to_socket, socket, event, _encode(payload, "payload"))

    def to_room(self, room: str, event: str, payload: Any) -> None:
        _host(_wit.emit().to_room, room, event, _encode(payload, "payload"))

    def to_room_except(self, room: str, except_: str, event: str, payload: Any) -> None:
        _host(_wit.emit().to_room_except, room, except_, event, _encode(payload, "payload"))

    def broadcast(self, event: str, payload: Any) -> None:
        _host(_wit.emit().broadcast, event, _encode(payload, "payload"))


class _Rooms:
    """Socket.IO room membership within the plugin's tenant."""

    def join(self, socket: str, room: str) -> None:
        _host(_wit.rooms().join, socket, room)

    def leave(self, socket: str, room: str) -> None:
        _host(_wit.rooms().leave, socket, room)

    def members(self, room: str) -> List[str]:
        return list(_host(_wit.rooms().members, room))

    def has(self, socket: str, room: str) -> bool:
        return bool(_host(_wit.rooms().has, socket, room))


class _RawKv:
    """The string-valued kv functions, exactly as in WIT."""

    def get(self, key: str) -> Optional[str]:
        return _host(_wit.kv().get, key)

    def set(self, key: str, value: str, ttl_ms: Optional[int] = None) -> None:
        _host(_wit.kv().set, key, value, ttl_ms)

    def list_push(self, key: str, value: str, max_len: Optional[int] = None) -> int:
        return int(_host(_wit.kv().list_push, key, value, max_len))

    def list_range(self, key: str, start: int, stop: int) -> List[str]:
        return list(_host(_wit.kv().list_range, key, start, stop))

    def hash_get(self, key: str, field: str) -> Optional[str]:
        return _host(_wit.kv().hash_get, key, field)

    def hash_set(self, key: str, field: str, value: str) -> None:
        _host(_wit.kv().hash_set, key, field, value)

    def hash_get_all(self, key: str) -> List[Tuple[str, str]]:
        return [(f, v) for f, v in _host(_wit.kv().hash_get_all, key)]


class _Kv:
    """The plugin's private key-value store, values as JSON (``kv.raw`` for plain strings).

    Keys are prefixed by the host with the tenant and the plugin's name.
    """

    raw = _RawKv()

    def get(self, key: str) -> Any:
        text = _host(_wit.kv().get, key)
        return None if text is None else _decode(text, f"kv value at {key!r}")

    def set(self, key: str, value: Any, ttl_ms: Optional[int] = None) -> None:
        _host(_wit.kv().set, key, _encode(value, "value"), ttl_ms)

    def delete(self, key: str) -> bool:
        return bool(_host(_wit.kv().del_, key))

    def incr(self, key: str, by: int = 1) -> int:
        return int(_host(_wit.kv().incr, key, by))

    def list_push(self, key: str, value: Any, max_len: Optional[int] = None) -> int:
        return int(_host(_wit.kv().list_push, key, _encode(value, "value"), max_len))

    def list_range(self, key: str, start: int, stop: int) -> List[Any]:
        return [_decode(t, f"kv value at {key!r}") for t in _host(_wit.kv().list_range, key, start, stop)]

    def list_trim(self, key: str, start: int, stop: int) -> None:
        _host(_wit.kv().list_trim, key, start, stop)

    def hash_get(self, key: str, field: str) -> Any:
        text = _host(_wit.kv().hash_get, key, field)
        return None if text is None else _decode(text, f"kv value at {key!r}")

    def hash_set(self, key: str, field: str, value: Any) -> None:
        _host(_wit.kv().hash_set, key, field, _encode(value, "value"))

    def hash_get_all(self, key: str) -> List[Tuple[str, Any]]:
        return [(f, _decode(v, f"kv value at {key!r}")) for f, v in _host(_wit.kv().hash_get_all, key)]


class _Presence:
    """Read access to native presence."""

    def snapshot(self, room: str) -> List[Dict[str, Any]]:
        return [
            {
                "connId": m.conn_id,
                "userId": m.user_id,
                "state": _decode(m.state_json, "presence state"),
                "epoch": int(m.epoch),
                "lastSeen": int(m.last_seen),
            }
            for m in _host(_wit.presence().snapshot, room)
        ]


class _Log:
    """Logging into the host's tracing output (print() lands there too)."""

    def log(self, level: str, message: str) -> None:
        mod = _wit.log()
        mod.log(getattr(mod.Level, level.upper()), str(message))

    def trace(self, message: str) -> None:
        self.log("trace", message)

    def debug(self, message: str) -> None:
        self.log("debug", message)

    def info(self, message: str) -> None:
        self.log("info", message)

    def warn(self, message: str) -> None:
        self.log("warn", message)

    def error(self, message: str) -> None:
        self.log("error", message)


class _Clock:
    """The host's wall clock."""

    def now_ms(self) -> int:
        return int(_wit.clock().now_ms())


emit = _Emit()
rooms = _Rooms()
kv = _Kv()
presence = _Presence()
log = _Log()
clock = _Clock()


# ---- payload validation ---------------------------------------------------

_U32_MAX = 4294967295


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_CHECKS: Dict[str, Callable[[Any], bool]] = {
    "any": lambda v: True,
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)),
    "integer": _is_int,
    "u32": lambda v: _is_int(v) and 0 <= v <= _U32_MAX,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string[]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {'true' if v else 'false'}"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, str):
        shown = v if len(v) <= 32 else v[:32] + "…"
        return f"string {json.dumps(shown, ensure_ascii=False)}"
    return f"number {v}"


def validate(value: Any, shape: Dict[str, str], event: str = "payload") -> Dict[str, Any]:
    """Checks a decoded payload against ``shape`` and returns the checked fields.

    ``shape`` maps field names to a type: ``any``, ``string``, ``boolean``,
    ``number``, ``integer``, ``u32``, ``object``, ``array``, ``string[]``; a
    trailing ``?`` makes the field optional (absent or ``null`` both read as
    ``None``). Extra fields are ignored. As with serde's derived
    ``Deserialize`` in the Rust SDK, a JSON array with exactly one element per
    field is accepted positionally, in ``shape``'s order. Raises
    ``invalid_payload`` naming ``event`` and the first bad field. (Same rules
    as the JS SDK's ``validate``.)
    """
    fields = list(shape.items())
    if isinstance(value, list):
        if len(value) != len(fields):
            raise invalid_payload(f"{event}: invalid length {len(value)}, expected {len(fields)} elements")
        value = {name: v for (name, _), v in zip(fields, value)}
    if not isinstance(value, dict):
        raise invalid_payload(f"{event}: expected an object, got {_describe(value)}")
    out: Dict[str, Any] = {}
    for field, spec in fields:
        optional = spec.endswith("?")
        kind = spec[:-1] if optional else spec
        check = _CHECKS.get(kind)
        if check is None:
            raise internal(f"unknown payload type {spec!r} for {field}")
        present = field in value
        v = value.get(field)
        if v is None:
            if optional:
                out[field] = None
                continue
            if not present:
                raise invalid_payload(f"{event}: missing field `{field}`")
            if kind != "any":
                raise invalid_payload(f"{event}: field `{field}` must be {kind}, got null")
        if not check(v):
            raise invalid_payload(f"{event}: field `{field}` must be {kind}, got {_describe(v)}")
        out[field] = v
    return out


# ---- the handler export ---------------------------------------------------


class Ctx:
    """One client event routed to the plugin."""

    __slots__ = ("socket", "user", "event", "payload_json")

    def __init__(self, socket: str, user: Optional[str], event: str, payload_json: str):
        #: Id of the sending socket.
        self.socket = socket
        #: The sender's user id, when it joined presence or authenticated.
        self.user = user
        #: The event name as the client sent it.
        self.event = event
        #: The payload as serialized JSON (``null`` when the client sent none).
        self.payload_json = payload_json

    def payload(self, shape: Optional[Dict[str, str]] = None) -> Any:
        """The payload decoded, and checked against ``shape`` when given (see :func:`validate`)."""
        try:
            value = json.loads(self.payload_json)
        except ValueError as e:
            raise invalid_payload(f"{self.event}: {e}") from None
        return validate(value, shape, self.event) if shape is not None else value

    def user_or(self, err: PluginError) -> str:
        """The sender's user id, or raises ``err`` when it has none."""
        if self.user is None:
            raise err
        return self.user


EventFn = Callable[[Ctx], Any]


class Plugin:
    """A plugin definition; :meth:`handler` turns it into the exported class.

    - :meth:`on` registers a function for an event name or a ``prefix:*``
      pattern; exact names win over patterns, then the longest pattern.
      Events nothing matches get ``unknown_event``.
    - ``events`` (the manifest's list) defaults to every registered name.
    - A handler returning ``None`` acks ``{ok: true}``; anything else is
      serialized as the ack's ``data``. Raising :class:`PluginError` (or
      letting a host call's error through) acks ``{ok: false, error}``. Any
      other exception is logged with its traceback and acked as ``internal``,
      except ``MemoryError`` and ``RecursionError``, which are left to trap
      the instance (the host then answers ``plugin_failed`` and replaces it).
    - Hooks: :meth:`on_connect`, :meth:`on_disconnect`, :meth:`on_presence`
      decorators; the manifest asks the host only for the ones registered.
    """

    def __init__(self, name: str, version: str, events: Optional[Iterable[str]] = None):
        self.name = name
        self.version = version
        self._events = list(events) if events is not None else None
        self._exact: Dict[str, EventFn] = {}
        self._patterns: List[Tuple[str, EventFn]] = []
        self._on_connect: Optional[Callable[[str], None]] = None
        self._on_disconnect: Optional[Callable[[str, Optional[str]], None]] = None
        self._on_presence: Optional[Callable[[Any], None]] = None

    # -- registration --

    def on(self, *events: str) -> Callable[[EventFn], EventFn]:
        """Decorator: handle the given event names or ``prefix:*`` patterns."""

        def register(fn: EventFn) -> EventFn:
            for event in events:
                if event.endswith("*"):
                    self._patterns.append((event, fn))
                    self._patterns.sort(key=lambda p: -len(p[0]))
                else:
                    self._exact[event] = fn
            return fn

        return register

    def on_connect(self, fn: Callable[[str], None]) -> Callable[[str], None]:
        self._on_connect = fn
        return fn

    def on_disconnect(self, fn: Callable[[str, Optional[str]], None]) -> Callable[[str, Optional[str]], None]:
        self._on_disconnect = fn
        return fn

    def on_presence(self, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        self._on_presence = fn
        return fn

    # -- what the host calls --

    def events(self) -> List[str]:
        if self._events is not None:
            return list(self._events)
        return list(self._exact) + [p for p, _ in self._patterns]

    def route(self, event: str) -> Optional[EventFn]:
        fn = self._exact.get(event)
        if fn is not None:
            return fn
        for pattern, fn in self._patterns:
            if event.startswith(pattern[:-1]):
                return fn
        return None

    def dispatch(self, ctx: Ctx) -> Optional[str]:
        """Runs the handler for ``ctx`` and returns the ack's ``data`` as JSON (or None).

        Raises PluginError for error acks.
        """
        try:
            fn = self.route(ctx.event)
            if fn is None:
                raise PluginError("unknown_event", f"{self.name} does not handle {ctx.event}")
            data = fn(ctx)
            return None if data is None else _encode(data, "reply")
        except PluginError:
            raise
        except (MemoryError, RecursionError):
            raise
        except Exception as e:  # noqa: BLE001 - a plugin bug becomes an `internal` ack
            if _wit.is_err(e):
                value = e.value  # type: ignore[attr-defined]
                raise PluginError(str(value.code), str(value.message)) from None
            _safe_log_error(f"{self.name}: {ctx.event} raised:\n{traceback.format_exc()}")
            raise internal(f"{ctx.event} failed: {type(e).__name__}: {e}") from None

    def handler(self) -> type:
        """The class to export as ``Handler`` from the componentize-py app module."""
        plugin = self
        base = _wit.handler_protocol()

        class Handler(base):  # type: ignore[misc, valid-type]
            def manifest(self):  # noqa: D401 - WIT export
                h = _wit.handler_types()
                hooks = h.Hooks(0)
                if plugin._on_connect is not None:
                    hooks |= h.Hooks.CONNECT
                if plugin._on_disconnect is not None:
                    hooks |= h.Hooks.DISCONNECT
                if plugin._on_presence is not None:
                    hooks |= h.Hooks.PRESENCE
                return h.PluginManifest(
                    name=plugin.name, version=plugin.version, events=plugin.events(), hooks=hooks
                )

            def on_event(self, ctx):
                try:
                    return plugin.dispatch(Ctx(ctx.socket, ctx.user, ctx.event, ctx.payload))
                except PluginError as e:
                    raise _wit.err(e.code, e.message) from None

            def on_connect(self, socket):
                if plugin._on_connect is not None:
                    _guard_hook(plugin, "on_connect", plugin._on_connect, socket)

            def on_disconnect(self, socket, user):
                if plugin._on_disconnect is not None:
                    _guard_hook(plugin, "on_disconnect", plugin._on_disconnect, socket, user)

            def on_presence(self, event):
                if plugin._on_presence is not None:
                    _guard_hook(plugin, "on_presence", lambda: plugin._on_presence(json.loads(event)))

        return Handler


def _safe_log_error(message: str) -> None:
    try:
        log.error(message)
    except Exception:  # noqa: BLE001 - logging must never turn into a second failure
        print(message)


def _guard_hook(plugin: Plugin, name: str, fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except (MemoryError, RecursionError):
        raise
    except Exception:  # noqa: BLE001
        _safe_log_error(f"{plugin.name}: {name} raised:\n{traceback.format_exc()}")

"""Access to the bindings componentize-py generates for ``wit/``.

componentize-py generates the package ``wit_world`` (imports, exports,
types) and ``componentize_py_types`` (``Ok``/``Err``/``Some``) while it builds
a component. They must be imported at build time, while componentize-py
pre-initializes the app (only modules imported then end up in the
component's snapshot), so they are imported here, at module import. Under
plain CPython they do not exist; then the import is skipped, so ``rtm_guest``
stays importable anywhere (e.g. for testing its pure parts), and only the
host-calling functions fail.
"""

from __future__ import annotations

import importlib
from typing import Any


_NAMES = [
    "componentize_py_types",
    "wit_world.exports",
    "wit_world.exports.handler",
    "wit_world.imports.types",
    "wit_world.imports.emit",
    "wit_world.imports.rooms",
    "wit_world.imports.kv",
    "wit_world.imports.presence",
    "wit_world.imports.log",
    "wit_world.imports.clock",
]

_MODULES: dict = {}
for _name in _NAMES:
    try:
        _MODULES[_name] = importlib.import_module(_name)
    except ImportError:
        pass


def _mod(name: str) -> Any:
    mod = _MODULES.get(name)
    if mod is None:
        raise ImportError(f"{name} is only available inside a componentize-py build")
    return mod


def emit() -> Any:
    return _mod("wit_world.imports.emit")


def rooms() -> Any:
    return _mod("wit_world.imports.rooms")


def kv() -> Any:
    return _mod("wit_world.imports.kv")


def presence() -> Any:
    return _mod("wit_world.imports.presence")


def log() -> Any:
    return _mod("wit_world.imports.log")


def clock() -> Any:
    return _mod("wit_world.imports.clock")


def handler_types() -> Any:
    """``wit_world.exports.handler``: PluginManifest, Hooks, EventCtx."""
    return _mod("wit_world.exports.handler")


def handler_protocol() -> Any:
    """``wit_world.exports.Handler``, the protocol the exported class implements."""
    return _mod("wit_world.exports").Handler


def Err() -> Any:  # noqa: N802 - mirrors the class name
    """The ``Err`` exception class that carries a WIT ``result``'s error."""
    try:
        return _mod("componentize_py_types").Err
    except ImportError:
        return _NoErr


def is_err(e: BaseException) -> bool:
    err = Err()
    return err is not _NoErr and isinstance(e, err)


def err(code: str, message: str) -> BaseException:
    """An ``Err(Error(code, message))`` to raise from an export."""
    types = _mod("wit_world.imports.types")
    return Err()(types.Error(code=code, message=message))


class _NoErr(Exception):
    """Stands in for ``Err`` outside a component build (never raised)."""

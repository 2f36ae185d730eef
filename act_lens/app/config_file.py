"""Read ``--config FILE``: a JSON object of ``RunConfig`` fields, each value type-checked.

A run's own ``config.json`` replays it: ``act-lens run --config runs/x/config.json --out
runs/y`` computes run x again into runs/y. The file's ``command`` and ``out`` never decide
anything: the subcommand typed runs, and results go to ``--out`` (or the default folder), never
into the folder the file came from. Every other value is checked against the field's type, so
``"limit": "abc"`` or ``"tasks": "sst2"`` is one line naming the key, not a traceback.
"""

import json
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from act_lens.app.config import RETIRED_FIELDS
from act_lens.errors import ConfigError

# Keys a config file may hold that the command line decides instead.
NOT_FROM_FILE = ("command", "out")


def _kind(hint: Any) -> str:
    """The type ``hint`` in words, for messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _kind(a) for a in args)
    if origin is tuple:
        return f"a list of {_kind(args[0])}s" if args else "a list"
    if origin is dict or hint is dict:
        return "an object"
    return {int: "integer", float: "number", bool: "true/false", str: "string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _convert(value: Any, hint: Any) -> Any:
    """``value`` as ``hint`` (lists become tuples); raises TypeError when it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg)
            except TypeError:
                continue
        raise TypeError
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TypeError
        item = args[0] if args else Any
        return tuple(_convert(v, item) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise TypeError
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    if isinstance(hint, type) and is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise TypeError
        try:
            return hint(**value)
        except (TypeError, ValueError) as err:
            raise TypeError from err
    return value  # a type this check does not know: left to the config's own validation


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_values(values: dict[str, Any], config_type: type, source: str) -> dict[str, Any]:
    """``values`` converted to ``config_type``'s field types (lists to tuples).

    Raises:
        ConfigError: an unknown key, or a value of the wrong type (key, value and the type
            expected named).
    """
    hints = typing.get_type_hints(config_type)
    known = {f.name for f in fields(config_type)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}; known: {sorted(known)}")
    out = {}
    for key, value in values.items():
        try:
            out[key] = _convert(value, hints[key])
        except TypeError:
            hint = hints[key]
            extra = ""
            if isinstance(value, str) and typing.get_origin(hint) is tuple:
                extra = f" (write [{_shown(value)}])"
            raise ConfigError(
                f"{source}: {key!r} must be {_kind(hint)}, got {_shown(value)}{extra}"
            ) from None
    return out


def read_config_file(path: str, config_type: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checked values of a ``--config`` file, and the keys it held that are not used.

    Returns:
        ``(values, ignored)``: ``ignored`` holds ``command`` and ``out`` when present.

    Raises:
        ConfigError: a file that cannot be read, is not JSON, is not an object, or holds an
            unknown key or a value of the wrong type.
    """
    source = f"--config {path}"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else err
        raise ConfigError(f"cannot read --config {path}: {reason}") from err
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a JSON object of options (like a run's config.json), "
            f"got a {type(data).__name__}"
        )
    ignored = {k: data.pop(k) for k in NOT_FROM_FILE if k in data}
    for key in RETIRED_FIELDS:  # written by earlier releases, never used
        data.pop(key, None)
    return check_values(data, config_type, source), ignored

"""The ``act-lens`` flags, built from the RunConfig fields (one declaration per option).

A field's type decides the flag's kind (a number, a choice of its ``Literal`` values, a
repeatable flag for a tuple, ``--x``/``--no-x`` for a boolean), its help text and default come
from :func:`act_lens.app.config.option`. Every flag's argparse default is None, so that only the
flags typed override ``--config`` and the defaults; the ranges are checked by ``RunConfig``.
"""

import argparse
from typing import Any

from act_lens.app.config import RunConfig, choices_of, flag_of, option_fields, type_of


def add_option(parser: argparse.ArgumentParser, f: Any) -> None:
    """Add the flag of the RunConfig field ``f`` to ``parser``."""
    flag, kind = flag_of(f), type_of(f)
    text = _help(f)
    if kind is bool:
        action = "store_false" if f.default is True else "store_true"
        parser.add_argument(flag, dest=f.name, action=action, default=None, help=text)
        return
    kw: dict[str, Any] = {"dest": f.name, "default": None, "help": text}
    if f.metadata["parse"] is not None:
        kw["metavar"] = f.name.upper()  # parsed into the value by the resolver
    elif choices_of(f):
        kw["choices"] = choices_of(f)
    else:
        kw["type"] = kind
    if isinstance(f.default, tuple):
        kw["action"] = "append"
        kw["metavar"] = flag.removeprefix("--").upper()
    parser.add_argument(flag, **kw)


def _help(f: Any) -> str:
    text = f.metadata["help"]
    shown = f.metadata["shown"]
    if shown is None and f.default is not None and not isinstance(f.default, bool):
        default = f.default
        shown = ", ".join(map(str, default)) if isinstance(default, tuple) else str(default)
    if shown:
        text += f" (default: {shown})"
    return text.replace("%", "%%")  # argparse formats help with %


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Every RunConfig option, in declaration order."""
    for f in option_fields():
        add_option(parser, f)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The RunConfig values the flags typed (parsed; repeated flags as tuples)."""
    values: dict[str, Any] = {}
    for f in option_fields():
        value = getattr(args, f.name, None)
        if value is None:
            continue
        parse = f.metadata["parse"]
        if parse is not None:
            value = parse(value)
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return values


def field_named(name: str) -> Any:
    """The RunConfig field ``name``."""
    return RunConfig.__dataclass_fields__[name]

"""One exception family for act_lens, and the deprecation of old spellings.

Every error names what was wrong, what was expected and how to fix it. All are
``ValueError`` subclasses so that callers catching bad input keep working.
"""

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


class ActLensError(ValueError):
    """Base class of every error act_lens raises on purpose."""


class ModelLoadError(ActLensError):
    """A model spec could not be resolved or loaded (missing package, offline hub...)."""


class PatternNotEditableError(ActLensError):
    """Editing ``hook_pattern`` does not change the logits of this model.

    Calibration or ablation through the pattern hook would silently do nothing, so every
    entry point that edits patterns refuses such a model.
    """


class ShapeError(ActLensError):
    """A tensor has the wrong shape, dtype or values for the operation."""


class HeadSetError(ActLensError):
    """A head set is malformed or does not fit the model it is applied to."""


class DataError(ActLensError):
    """A data file or data directory is missing or malformed."""


class ConfigError(ActLensError):
    """A configuration value is out of range or inconsistent."""


class ActLensWarning(UserWarning):
    """Input that works but is probably not what was meant (a request larger than its pool,
    a capped value); the command line prints these as ``act-lens: warning: ...``."""


def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Say that ``old`` (a spelling of an earlier release) is now ``new``.

    The old spelling keeps working for one release; the warning names what to write instead.
    ``stacklevel`` 3 points at the caller of the function that calls this one.
    """
    import warnings

    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def old_keywords(where: str, given: dict, known: tuple[str, ...]) -> dict:
    """The keywords of earlier releases that a call gave (None values dropped).

    Raises:
        ConfigError: a keyword that is neither a parameter nor one of ``known``.
    """
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}() got unexpected keyword arguments {unknown}; see help({where}) for its "
            "parameters"
        )
    return {k: v for k, v in given.items() if v is not None}


def renamed_keyword(
    where: str, new: str, value: object, old: dict, old_name: str, *, stacklevel: int = 4
) -> object:
    """``value`` of the parameter ``new``, or what the call gave under its old name
    ``old_name`` (popped from ``old``, with a DeprecationWarning naming ``new``).

    Raises:
        ConfigError: both names given.
    """
    if old_name not in old:
        return value
    given = old.pop(old_name)
    warn_deprecated(f"{where}({old_name}=...)", f"{where}({new}=...)", stacklevel=stacklevel)
    if value is not None:
        raise ConfigError(f"{where}: {old_name}= is the old name of {new}=; pass {new}= only")
    return given


def object_from(
    where: str,
    name: str,
    obj: T | None,
    given: dict,
    make: Callable[..., T],
    *,
    shown_as: str | None = None,
    stacklevel: int = 4,
) -> T:
    """The options object a public function runs with: ``obj``, or for the loose keywords of
    earlier releases in ``given`` (None values dropped), ``make(**given)`` with a
    DeprecationWarning naming ``name=...(...)``; ``make()`` when neither is given.

    Raises:
        ConfigError: loose keywords given beside ``obj`` (one of them would be ignored).
    """
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return make() if obj is None else obj
    shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
    kind = shown_as or getattr(make, "__name__", name)
    warn_deprecated(f"{where}({shown})", f"{name}={kind}({shown})", stacklevel=stacklevel)
    if obj is not None:
        raise ConfigError(
            f"{where}: {', '.join(given)} given beside {name}=; set "
            f"{'it' if len(given) == 1 else 'them'} inside {name}= (dataclasses.replace)"
        )
    return make(**given)


_C = TypeVar("_C")


def config_from(
    config_type: type[_C],
    config: _C | None,
    options: Mapping[str, Any],
    *,
    where: str,
    deprecated: tuple[str, ...] = (),
) -> tuple[_C, dict[str, Any]]:
    """The config a call runs with, and the keywords of earlier releases it gave.

    Public functions with many options take ``config=`` (a small frozen dataclass) and
    ``**options`` named as its fields: ``evaluate(model, "sst2", shots=4)`` and
    ``evaluate(model, "sst2", config=EvalConfig(shots=4))`` are the same call. An option given
    beside ``config=`` is refused (it would override part of it), an unknown name is refused
    with the valid ones listed.

    Args:
        config_type: the dataclass (``EvalConfig``...).
        config: the object the call passed (None: built from ``options``).
        options: the call's other keywords: fields of ``config_type`` or ``deprecated`` names.
        where: the function's name, for the messages.
        deprecated: old keyword names the function still takes (returned, None values
            dropped, for the function to warn about and apply).

    Raises:
        ConfigError: an unknown keyword (the valid ones listed), ``config`` of another type,
            or a field given both in ``config`` and as a keyword.

    Example:
        >>> from act_lens.core.settings import SinkSettings
        >>> config_from(SinkSettings, None, {"beta": 0.2}, where="f")[0].beta
        0.2
    """
    names = [f.name for f in fields(config_type)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(names) - set(deprecated))
    kind = config_type.__name__
    if unknown:
        raise ConfigError(
            f"{where}() got unexpected keyword arguments {unknown}; its options are "
            f"{', '.join(names)} (as keywords or in config={kind}(...)); see help({where})"
        )
    if config is not None and not isinstance(config, config_type):
        raise ConfigError(f"{where}: config must be a {kind}, got {type(config).__name__}")
    given = {k: v for k, v in options.items() if k in names}
    if config is not None and given:
        raise ConfigError(
            f"{where}: {', '.join(sorted(given))} given beside config=; set "
            f"{'it' if len(given) == 1 else 'them'} inside the {kind} "
            f"(dataclasses.replace(config, {sorted(given)[0]}=...))"
        )
    old = {k: v for k, v in options.items() if k in deprecated and v is not None}
    return (config if config is not None else config_type(**given)), old

"""One exception family for act_lens, and the deprecation of old spellings.

Every error names what was wrong, what was expected and how to fix it. All are
``ValueError`` subclasses so that callers catching bad input keep working.
"""

from collections.abc import Callable
from typing import TypeVar

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

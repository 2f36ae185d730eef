"""One config object per call, with its fields also accepted as keywords for a one-liner.

Public functions that have many options take ``config=`` (a small frozen dataclass) and
``**options`` whose names are that dataclass's fields: ``evaluate(model, "sst2", shots=4)`` and
``evaluate(model, "sst2", config=EvalConfig(shots=4))`` are the same call. An option given
beside ``config=`` would override part of it, so it is refused; an unknown name is refused with
the valid ones listed. Pure data: no torch.
"""

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from act_lens.errors import ConfigError

C = TypeVar("C")


def config_from(
    config_type: type[C],
    config: C | None,
    options: Mapping[str, Any],
    *,
    where: str,
    deprecated: tuple[str, ...] = (),
) -> tuple[C, dict[str, Any]]:
    """The config a call runs with, and the keywords of earlier releases it gave.

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

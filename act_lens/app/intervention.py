"""What ``eval`` applies for a head set: its own method and stored settings, unless told otherwise.

A head set found by ``search`` records the sink settings it was searched with (``beta``,
``threshold``, ``rule``, ``redistribute`` in its provenance). ``eval`` applies those, so the
set is evaluated as it was chosen; a ``--beta``/``--threshold``/``--rule`` given on the command
line (or in ``--config``) overrides the stored value and says so. A ZeroTuning set has no sink
settings: the ACT flags are refused with it. The head set becomes its intervention through
``act_lens.hooks.interventions.intervention_for``, as in the Python API. No torch at import
(preflight uses this module).
"""

from collections.abc import Mapping
from typing import Any

from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError, HeadSetError
from act_lens.hooks.headset import STORED_SETTINGS, HeadSet, stored_settings

ACT_FLAGS = {"beta": "--beta", "threshold": "--threshold", "rule": "--rule"}
LABELS = {"act": "ACT", "zerotuning": "ZeroTuning"}


def method_label(head_set: HeadSet) -> str:
    """The name results show for what a head set applies: ``"ACT"`` or ``"ZeroTuning"``."""
    return LABELS.get(head_set.method, head_set.method)


def given_flags(cfg: Any) -> dict[str, Any]:
    """The ACT settings given on the command line or in ``--config`` (None: not given)."""
    return {k: getattr(cfg, k) for k in ACT_FLAGS if getattr(cfg, k) is not None}


def settings_for(cfg: Any, head_set: HeadSet) -> SinkSettings:
    """The head set's stored settings with the given flags on top (defaults for the rest).

    Raises:
        HeadSetError: a stored value that is not a valid setting.
    """
    values = {**stored_settings(head_set), **given_flags(cfg)}
    try:
        return SinkSettings(**values)
    except (TypeError, ValueError) as err:
        raise HeadSetError(
            f"the head set's stored sink settings {stored_settings(head_set)} are not valid "
            f"({err}); pass --beta, --threshold and --rule to replace them"
        ) from err


def check_flags(cfg: Any, sets: Mapping[str | None, HeadSet], source: str) -> list[str]:
    """Refuse flags that cannot apply to the head sets; return the override notes.

    Raises:
        ConfigError: ACT flags with a ZeroTuning set, or ``--method`` naming another method.
        HeadSetError: stored settings that are not valid.
    """
    given = given_flags(cfg)
    notes: list[str] = []
    for task, hs in sets.items():
        where = source if task is None else f"{source} [{task}]"
        if hs.method == "zerotuning" and given:
            flags = "/".join(ACT_FLAGS[k] for k in given)
            raise ConfigError(
                f"{flags} are ACT settings, but {where} is a ZeroTuning head set "
                f"({dict(hs.params)}); drop {flags}"
            )
        if cfg.method == "zerotuning" and hs.method != "zerotuning":
            raise ConfigError(
                f"--method zerotuning, but {where} is an {method_label(hs)} head set; eval "
                "applies a head set's own method: drop --method"
            )
        if hs.method != "act":
            continue
        stored = stored_settings(hs)
        settings_for(cfg, hs)  # stored values checked here, before a model loads
        for key, value in given.items():
            if key in stored and stored[key] != value:
                notes.append(
                    f"{ACT_FLAGS[key]} {value} overrides the {key} {stored[key]} that "
                    f"{where} was searched with"
                )
    return notes


def intervention(cfg: Any, head_set: HeadSet, heads: HeadSet | None = None) -> Any:
    """What eval applies for ``head_set`` (or for ``heads``, e.g. a random control, with
    ``head_set``'s method and settings): ``intervention_for`` with the settings of
    :func:`settings_for`."""
    from act_lens.hooks.interventions import intervention_for  # imports torch

    target = head_set if heads is None else heads
    if head_set.method != "act":
        return intervention_for(target)
    return intervention_for(target, settings_for(cfg, head_set))


def describe(cfg: Any, head_set: HeadSet) -> dict[str, Any]:
    """What was applied, for ``results.json``: method label and settings, and where they came from."""
    if head_set.method != "act":
        return {"method": method_label(head_set), "params": dict(head_set.params)}
    settings = settings_for(cfg, head_set)
    given, stored = given_flags(cfg), stored_settings(head_set)
    origin = {
        k: "command line" if k in given else "head set" if k in stored else "default"
        for k in STORED_SETTINGS
    }
    return {
        "method": "ACT",
        **{k: v for k, v in settings.to_dict().items() if k != "windows"},
        "from": origin,
    }

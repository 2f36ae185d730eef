"""How sinks are found and calibrated: one small frozen object passed through every layer.

The engine, the search, the census, validation, generation and the CLI take a
:class:`SinkSettings` instead of four or five loose keyword arguments. Public functions take
``settings=`` and at most a ``beta=`` convenience (:func:`settings_from`: giving both is a
``ConfigError``, never a silent override). Pure data: no torch, no model; the hooks layer fills
in a model's sliding windows (``act_lens.hooks.arch.model_settings``).
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from act_lens.errors import ConfigError, warn_deprecated

# The sink rule of ``detect_sinks`` and where ``calibrate_pattern`` puts the freed mass.
SinkRule = Literal["mean", "alpha"]
Redistribute = Literal["all", "non_initial"]


@dataclass(frozen=True)
class SinkSettings:
    """Sink detection and ACT calibration settings (the defaults of the paper's official code).

    Attributes:
        beta: sink columns are scaled by beta (1: identity, 0: sinks removed).
        threshold: sink score threshold (``rule="mean"``: tau = 0.1; ``"alpha"``: alpha).
        rule: ``"mean"`` (mean attention received > tau) or ``"alpha"`` (> alpha / N).
        redistribute: where the freed mass goes: ``"all"`` other keys (official) or
            ``"non_initial"`` (not to the first token).
        windows: ``{layer: sliding-window size}`` of local-attention layers (None: filled in
            from the model by ``act_lens.hooks.arch.fill_windows``; ``{}``: every layer global).

    Example:
        >>> SinkSettings(beta=0.3).beta
        0.3
    """

    beta: float = 0.4
    threshold: float = 0.1
    rule: SinkRule = "mean"
    redistribute: Redistribute = "all"
    windows: Mapping[int, int] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta <= 1.0:
            raise ConfigError(f"beta must be in [0, 1], got {self.beta}")
        if self.rule not in ("mean", "alpha"):
            raise ConfigError(f"rule must be 'mean' or 'alpha', got {self.rule!r}")
        if not self.threshold > 0:
            raise ConfigError(f"threshold must be > 0, got {self.threshold}")
        if self.rule == "mean" and self.threshold >= 1:
            raise ConfigError(
                f"threshold {self.threshold} with rule 'mean' finds no sink (a key's mean "
                "attention is at most 1); use a value below 1 (default 0.1), or rule='alpha'"
            )
        if self.redistribute not in ("all", "non_initial"):
            raise ConfigError(
                f"redistribute must be 'all' or 'non_initial', got {self.redistribute!r}"
            )
        if self.windows is not None and any(int(w) < 1 for w in self.windows.values()):
            raise ConfigError(
                f"windows must map layers to window sizes >= 1, got {dict(self.windows)}"
            )

    def window(self, layer: int) -> int | None:
        """The sliding-window size of ``layer`` (None: global attention)."""
        return (self.windows or {}).get(layer)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = (
            None if self.windows is None else {str(k): v for k, v in self.windows.items()}
        )
        return d


class SettingsView:
    """The fields of a ``settings: SinkSettings`` attribute under their own names (read-only),
    for objects that carry one (``ActConfig``, the ablation engine's ``AblationContext``)."""

    settings: SinkSettings

    @property
    def beta(self) -> float:
        return self.settings.beta

    @property
    def threshold(self) -> float:
        return self.settings.threshold

    @property
    def rule(self) -> SinkRule:
        return self.settings.rule

    @property
    def redistribute(self) -> Redistribute:
        return self.settings.redistribute


def resolve_settings(
    settings: SinkSettings | None = None,
    *,
    beta: float | None = None,
    threshold: float | None = None,
    rule: SinkRule | None = None,
    redistribute: Redistribute | None = None,
    windows: Mapping[int, int] | None = None,
) -> SinkSettings:
    """``settings`` (default: ``SinkSettings()``) with the keywords that are not None applied
    on top (and validated). Internal building block: public functions use
    :func:`settings_from`, which refuses a keyword given beside ``settings``.

    Example:
        >>> resolve_settings(beta=0.2).beta
        0.2
    """
    out = settings if settings is not None else SinkSettings()
    given = {"beta": beta, "threshold": threshold, "rule": rule, "redistribute": redistribute}
    overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if windows is not None:
        overrides["windows"] = windows
    return replace(out, **overrides) if overrides else out


# Keywords of earlier releases that now live only inside SinkSettings.
LOOSE_KEYWORDS = ("threshold", "rule", "redistribute", "windows")


def settings_from(
    settings: SinkSettings | None,
    *,
    beta: float | None = None,
    loose: Mapping[str, Any] | None = None,
    where: str,
) -> SinkSettings:
    """The one ``SinkSettings`` a public function runs with.

    Args:
        settings: the settings object (None: ``SinkSettings()``).
        beta: the one keyword convenience, for a one-liner (``ActConfig(hs, beta=0.2)``).
        loose: keywords of earlier releases that the call gave (``threshold``, ``rule``,
            ``redistribute``, ``windows``); they still apply, with a DeprecationWarning
            naming ``settings=SinkSettings(...)``.
        where: the function's name, for the messages.

    Raises:
        ConfigError: ``settings`` that is not a SinkSettings, or ``beta`` or a loose keyword
            given beside ``settings`` (one of them would be ignored).

    Example:
        >>> settings_from(None, beta=0.2, where="ActConfig").beta
        0.2
    """
    given = {k: v for k, v in (loose or {}).items() if v is not None}
    if given:
        shown = ", ".join(f"{k}={v!r}" for k, v in given.items())
        warn_deprecated(f"{where}({shown})", f"settings=SinkSettings({shown})", stacklevel=4)
    if settings is not None and not isinstance(settings, SinkSettings):
        raise ConfigError(
            f"{where}: settings must be a SinkSettings, got {settings!r}; "
            "write settings=SinkSettings(beta=..., threshold=...)"
        )
    beside = (["beta"] if beta is not None else []) + list(given)
    if settings is not None and beside:
        raise ConfigError(
            f"{where}: {', '.join(beside)} given beside settings=; set "
            f"{'it' if len(beside) == 1 else 'them'} inside the SinkSettings "
            f"(dataclasses.replace(settings, {beside[0]}=...))"
        )
    return resolve_settings(settings, **{"beta": beta, **given})

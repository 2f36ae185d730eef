"""How sinks are found and calibrated: one small frozen object passed through every layer.

The engine, the search, the census, validation, generation and the CLI take a
:class:`SinkSettings` instead of four or five loose keyword arguments; only the top-level
functions users call keep keyword conveniences (``beta=...``) that build one.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from act_lens.core.calibrate import Redistribute
from act_lens.core.sinks import SinkRule
from act_lens.errors import ConfigError


@dataclass(frozen=True)
class SinkSettings:
    """Sink detection and ACT calibration settings (method.md defaults).

    Attributes:
        beta: sink columns are scaled by beta (1: identity, 0: sinks removed).
        threshold: sink score threshold (``rule="mean"``: tau = 0.1; ``"alpha"``: alpha).
        rule: ``"mean"`` (mean attention received > tau) or ``"alpha"`` (> alpha / N).
        redistribute: where the freed mass goes: ``"all"`` other keys (official) or
            ``"non_initial"`` (not to the first token).
        windows: ``{layer: sliding-window size}`` of local-attention layers (None: fill in
            from the model with :meth:`for_model`; ``{}``: every layer global).

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
        if self.redistribute not in ("all", "non_initial"):
            raise ConfigError(
                f"redistribute must be 'all' or 'non_initial', got {self.redistribute!r}"
            )
        if self.windows is not None and any(int(w) < 1 for w in self.windows.values()):
            raise ConfigError(
                f"windows must map layers to window sizes >= 1, got {dict(self.windows)}"
            )

    def for_model(self, model: Any) -> "SinkSettings":
        """With the model's sliding windows filled in when not given."""
        if self.windows is not None:
            return self
        from act_lens.arch import layer_windows

        return replace(self, windows=layer_windows(model))

    def window(self, layer: int) -> int | None:
        return (self.windows or {}).get(layer)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["windows"] = (
            None if self.windows is None else {str(k): v for k, v in self.windows.items()}
        )
        return d


def resolve_settings(
    settings: SinkSettings | None = None,
    *,
    beta: float | None = None,
    threshold: float | None = None,
) -> SinkSettings:
    """``settings`` (default: method.md's) with the keyword conveniences applied on top.

    Example:
        >>> resolve_settings(beta=0.2).beta
        0.2
    """
    out = settings if settings is not None else SinkSettings()
    overrides = {k: v for k, v in (("beta", beta), ("threshold", threshold)) if v is not None}
    return replace(out, **overrides) if overrides else out

"""Successive halving over heads and prompts: the exact engine's time goes to the heads that are
still in the race.

Round 1 evaluates every candidate head on the first ``first`` calibration prompts. After each
round the heads are ranked by the mean search metric over every prompt they have seen (all
surviving heads have seen the same prefix of the calibration set, so the comparison is fair);
the best ``keep`` fraction survives, and a head outside it survives too unless it is clearly
behind: ``mean + z * stderr`` below the mean of the last head inside the fraction. Never fewer
than ``min_heads`` survive. The survivors are evaluated on the next ``growth`` times as many new
prompts, until the prompts are used up or the set is decided (at most ``min_heads`` left and
each one's interval clear of ``margin``).

Every round is recorded (``provenance["rounds"]``), the per-example values of every evaluated
(head, prompt) pair are kept (NaN where a head was not evaluated), and a checkpoint after each
round lets an interrupted search resume to the identical result.
"""

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from act_lens.analysis.ablation import head_effects
from act_lens.analysis.effects import METRICS, HeadEffects
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError, DataError
from act_lens.evaluation.tasks import Prompt
from act_lens.io import atomic_write_bytes

Head = tuple[int, int]


@dataclass(frozen=True)
class Halving:
    """The successive-halving schedule (see the module docstring).

    Example:
        >>> Halving(first=8, growth=2.0).first
        8
    """

    first: int = 16
    growth: float = 3.0
    keep: float = 1 / 3
    z: float = 2.0
    min_heads: int = 32

    def __post_init__(self) -> None:
        if self.first < 2:
            raise ConfigError(
                f"halving needs first >= 2 prompts (for a standard error), got {self.first}"
            )
        if self.growth < 1.0:
            raise ConfigError(f"halving growth must be >= 1, got {self.growth}")
        if not 0.0 < self.keep <= 1.0:
            raise ConfigError(f"halving keep must be in (0, 1], got {self.keep}")
        if self.z < 0 or self.min_heads < 1:
            raise ConfigError("halving needs z >= 0 and min_heads >= 1")

    def describe(self) -> str:
        return (
            f"successive halving: round 1 on {self.first} prompts, x{self.growth:g} new prompts "
            f"per round; keep the best {self.keep:.2g} by mean, and any head whose mean + "
            f"{self.z:g} x stderr reaches the cutoff; at least {self.min_heads} heads"
        )


def eliminate(
    mean: dict[Head, float], stderr: dict[Head, float], schedule: Halving
) -> tuple[list[Head], float | None]:
    """The heads that survive a round, best first, and the cutoff used (None: no elimination).

    Example:
        >>> m = {(0, h): float(h) for h in range(6)}
        >>> eliminate(m, {k: 0.0 for k in m}, Halving(keep=0.5, min_heads=2))
        ([(0, 5), (0, 4), (0, 3)], 3.0)
    """
    ranked = sorted(mean, key=lambda h: (-mean[h], h))
    if len(ranked) <= schedule.min_heads:
        return ranked, None
    n_keep = max(schedule.min_heads, math.ceil(schedule.keep * len(ranked)))
    cutoff = mean[ranked[n_keep - 1]]
    survivors = ranked[:n_keep] + [
        h for h in ranked[n_keep:] if mean[h] + schedule.z * stderr[h] >= cutoff
    ]
    return survivors, cutoff


def halving_effects(
    model: Any,
    prompts: Sequence[Prompt],
    *,
    candidates: Sequence[Head],
    settings: SinkSettings,
    metric: str,
    schedule: Halving,
    margin: float = 0.0,
    checkpoint: "str | Path | None" = None,
    key: str = "",
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[HeadEffects, list[dict[str, Any]]]:
    """Single-head ACT effects under successive halving.

    Returns:
        HeadEffects over all ``prompts`` (NaN where a head was not evaluated; each head's
        effect is its last estimate) and one record per round.
    """
    if len(prompts) < schedule.first:
        raise ConfigError(
            f"halving's first round needs {schedule.first} prompts, the calibration set has "
            f"{len(prompts)}; use more prompts or Halving(first=...)"
        )
    layers = sorted({la for la, _ in candidates})
    heads = sorted({h for _, h in candidates})
    n = len(prompts)
    per_example = {m: torch.full((len(layers), len(heads), n), float("nan")) for m in METRICS}
    baseline = {m: torch.full((n,), float("nan")) for m in METRICS}
    state = _load(checkpoint, key)
    rounds: list[dict[str, Any]] = state["rounds"] if state else []
    alive: list[Head] = [tuple(h) for h in state["alive"]] if state else list(candidates)  # type: ignore[misc]
    used = int(state["used"]) if state else 0
    if state:
        per_example, baseline = state["per_example"], state["baseline"]
    while used < n and not (rounds and rounds[-1]["decided"]):
        size = (
            schedule.first if not rounds else math.ceil(rounds[-1]["new_prompts"] * schedule.growth)
        )
        batch = list(range(used, min(n, used + size)))
        by_layer: dict[int, list[int]] = {}
        for la, h in alive:
            by_layer.setdefault(la, []).append(h)
        eff = head_effects(
            model,
            [prompts[i] for i in batch],
            strategy="act",
            settings=settings,
            heads_by_layer=by_layer,
            batch_size=batch_size,
            progress=progress,
        )
        for m in METRICS:
            baseline[m][batch] = eff.baseline[m]
            for la, h in alive:
                li, hi = layers.index(la), heads.index(h)
                per_example[m][li, hi, batch] = eff.per_example[m][
                    eff.layers.index(la), eff.heads.index(h)
                ]
        used = batch[-1] + 1
        mean, err = _estimates(per_example[metric], baseline[metric], alive, layers, heads, used)
        survivors, cutoff = eliminate(mean, err, schedule)
        decided = len(survivors) <= schedule.min_heads and all(
            abs(mean[h] - margin) > schedule.z * err[h] for h in survivors
        )
        rounds.append(
            {
                "round": len(rounds) + 1,
                "new_prompts": len(batch),
                "prompts_seen": used,
                "heads_in": len(alive),
                "heads_kept": len(survivors),
                "evaluations": len(alive) * len(batch),
                "cutoff": cutoff,
                "decided": decided,
            }
        )
        alive = survivors
        _save(checkpoint, key, rounds, alive, used, per_example, baseline)
    effects = HeadEffects.from_per_example(
        strategy="act",
        layers=tuple(layers),
        heads=tuple(heads),
        uids=tuple(p.uid for p in prompts),
        baseline={m: torch.nan_to_num(v) for m, v in baseline.items()},
        per_example=per_example,
        settings={"schedule": asdict(schedule)},
    )
    return effects, rounds


def _estimates(
    values: Tensor,
    baseline: Tensor,
    alive: Sequence[Head],
    layers: list[int],
    heads: list[int],
    used: int,
) -> tuple[dict[Head, float], dict[Head, float]]:
    mean, err = {}, {}
    for la, h in alive:
        delta = values[layers.index(la), heads.index(h), :used] - baseline[:used]
        mean[(la, h)] = float(delta.mean())
        err[(la, h)] = float(delta.std(correction=1) / used**0.5) if used > 1 else 0.0
    return mean, err


def _save(
    path: "str | Path | None",
    key: str,
    rounds: list[dict[str, Any]],
    alive: list[Head],
    used: int,
    per_example: dict[str, Tensor],
    baseline: dict[str, Tensor],
) -> None:
    if path is None:
        return
    buf = io.BytesIO()
    torch.save(
        {"key": key, "rounds": rounds, "alive": [list(h) for h in alive], "used": used,
         "per_example": per_example, "baseline": baseline},
        buf,
    )  # fmt: skip
    atomic_write_bytes(path, buf.getvalue())


def _load(path: "str | Path | None", key: str) -> dict[str, Any] | None:
    if path is None or not Path(path).exists():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged checkpoint is reported, not used
        raise DataError(
            f"checkpoint {path} cannot be read ({err}); delete it to start over"
        ) from err
    if state.get("key") != key or "rounds" not in state:
        raise ConfigError(
            f"checkpoint {path} belongs to a search with other settings, model or calibration "
            "prompts; delete it or choose another checkpoint path"
        )
    return state

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

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from act_lens.analysis.ablation import head_effects
from act_lens.analysis.effects import METRICS, HeadEffects
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.evaluation.tasks import Prompt
from act_lens.runtime.checkpoint import Checkpoint
from act_lens.runtime.options import RunOptions

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
    run: RunOptions | None = None,
) -> tuple[HeadEffects, list[dict[str, Any]]]:
    """Single-head ACT effects under successive halving.

    Args:
        candidates: the ``(layer, head)`` pairs in the race.
        metric: the metric heads are ranked by. margin: as ``Selection.margin`` (a round
            decides the set when every survivor's interval is clear of it).
        run: batches, progress bars, workers and precision; each round's evaluations run as
            work units (on ``run.workers`` when it is a pool or an int > 1, merged in a fixed
            order, so the rounds equal the in-process ones); ``run.checkpoint`` keeps each
            finished unit of a round and the state after each round (an interrupted search
            resumes to the identical result).

    Returns:
        HeadEffects over all ``prompts`` (NaN where a head was not evaluated; each head's
        effect is its last estimate) and one record per round.
    """
    run = run or RunOptions()
    if len(prompts) < schedule.first:
        raise ConfigError(
            f"halving's first round needs {schedule.first} prompts, the calibration set has "
            f"{len(prompts)}; use more prompts or Halving(first=...)"
        )
    race = _Race.start(candidates, len(prompts), run.checkpoint)
    while race.used < len(prompts) and not (race.rounds and race.rounds[-1]["decided"]):
        # the round's finished units are kept under its own names until the round is recorded
        scope = f"{CHECKPOINT_UNIT}{len(race.rounds) + 1}:"
        unit_run = RunOptions(
            batch_size=run.batch_size, progress=run.progress, workers=run.workers,
            precision=run.precision,
            checkpoint=None if run.checkpoint is None else run.checkpoint.scoped(scope),
        )  # fmt: skip
        size = schedule.first
        if race.rounds:
            size = math.ceil(race.rounds[-1]["new_prompts"] * schedule.growth)
        batch = list(range(race.used, min(len(prompts), race.used + size)))
        by_layer: dict[int, list[int]] = {}
        for la, h in race.alive:
            by_layer.setdefault(la, []).append(h)
        eff = head_effects(
            model, [prompts[i] for i in batch], strategy="act", settings=settings,
            heads=by_layer, run=unit_run,
        )  # fmt: skip
        race.record(eff, batch)
        mean, err = race.estimates(metric)
        survivors, cutoff = eliminate(mean, err, schedule)
        decided = len(survivors) <= schedule.min_heads and all(
            abs(mean[h] - margin) > schedule.z * err[h] for h in survivors
        )
        race.finish_round(survivors, cutoff, decided, len(batch))
        if run.checkpoint is not None:
            run.checkpoint.discard(scope)
            run.checkpoint.put(CHECKPOINT_UNIT, race.state())
    effects = HeadEffects.from_per_example(
        strategy="act",
        layers=tuple(race.layers),
        heads=tuple(race.heads),
        uids=tuple(p.uid for p in prompts),
        baseline={m: torch.nan_to_num(v) for m, v in race.baseline.items()},
        per_example=race.per_example,
        settings={"schedule": asdict(schedule)},
    )
    return effects, race.rounds


# The checkpoint entry holding the race's state after the last finished round.
CHECKPOINT_UNIT = "halving"


@dataclass
class _Race:
    """The state of successive halving between rounds (what the checkpoint keeps)."""

    layers: list[int]
    heads: list[int]
    rounds: list[dict[str, Any]]
    alive: list[Head]
    used: int
    per_example: dict[str, Tensor]
    baseline: dict[str, Tensor]

    @classmethod
    def start(cls, candidates: Sequence[Head], n: int, checkpoint: Checkpoint | None) -> "_Race":
        layers = sorted({la for la, _ in candidates})
        heads = sorted({h for _, h in candidates})
        if checkpoint is not None and CHECKPOINT_UNIT in checkpoint:
            st = checkpoint.get(CHECKPOINT_UNIT)
            alive = [(int(la), int(h)) for la, h in st["alive"]]
            return cls(layers, heads, st["rounds"], alive, int(st["used"]), st["per_example"],
                       st["baseline"])  # fmt: skip
        per_example = {m: torch.full((len(layers), len(heads), n), float("nan")) for m in METRICS}
        baseline = {m: torch.full((n,), float("nan")) for m in METRICS}
        return cls(layers, heads, [], list(candidates), 0, per_example, baseline)

    def record(self, eff: HeadEffects, batch: list[int]) -> None:
        """Keep one round's values of the heads still in the race."""
        for m in METRICS:
            self.baseline[m][batch] = eff.baseline[m]
            for la, h in self.alive:
                li, hi = self.layers.index(la), self.heads.index(h)
                self.per_example[m][li, hi, batch] = eff.per_example[m][
                    eff.layers.index(la), eff.heads.index(h)
                ]
        self.used = batch[-1] + 1

    def estimates(self, metric: str) -> tuple[dict[Head, float], dict[Head, float]]:
        """Each live head's mean gain and its standard error over the prompts seen."""
        values, base, used = self.per_example[metric], self.baseline[metric], self.used
        mean, err = {}, {}
        for la, h in self.alive:
            delta = values[self.layers.index(la), self.heads.index(h), :used] - base[:used]
            mean[(la, h)] = float(delta.mean())
            err[(la, h)] = float(delta.std(correction=1) / used**0.5) if used > 1 else 0.0
        return mean, err

    def finish_round(
        self, survivors: list[Head], cutoff: float | None, decided: bool, new: int
    ) -> None:
        self.rounds.append(
            {
                "round": len(self.rounds) + 1,
                "new_prompts": new,
                "prompts_seen": self.used,
                "heads_in": len(self.alive),
                "heads_kept": len(survivors),
                "evaluations": len(self.alive) * new,
                "cutoff": cutoff,
                "decided": decided,
            }
        )
        self.alive = survivors

    def state(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "alive": [list(h) for h in self.alive], "used": self.used,
                "per_example": self.per_example, "baseline": self.baseline}  # fmt: skip

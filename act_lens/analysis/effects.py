"""Metrics of a scored prompt and the typed result of a per-head ablation sweep."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from act_lens.analysis.metrics import DEFAULT_METRIC, METRIC_HELP, METRICS, RENAMED, check_metric
from act_lens.errors import ConfigError, DataError
from act_lens.io import atomic_write_bytes

__all__ = [
    "DEFAULT_METRIC",
    "METRICS",
    "METRIC_HELP",
    "RENAMED",
    "HeadEffects",
    "check_metric",
    "choice_logprob",
    "metric_values",
]


def choice_logprob(
    scores: Float[Tensor, "n choice"], labels: Int[Tensor, " n"], valid: Tensor | None = None
) -> Float[Tensor, " n"]:
    """The gold choice's log-probability after a log-softmax over the choices only.

    ``scores`` are any per-choice log-scores (first-token log-probs of the label words or
    option letters, or the continuations' summed log-likelihoods with ``scoring="full"``);
    ``valid`` masks padded choice slots.

    Example:
        >>> s = torch.log(torch.tensor([[0.02, 0.06]]))   # two label words, 8% of the mass
        >>> choice_logprob(s, torch.tensor([1])).exp()    # 0.06 / (0.02 + 0.06)
        tensor([0.7500])
    """
    if valid is not None:
        scores = torch.where(
            valid.to(scores.device), scores, torch.full_like(scores, -float("inf"))
        )
    lp = torch.log_softmax(scores.float(), dim=-1)
    return lp[torch.arange(len(labels)), labels.to(lp.device)]


def metric_values(
    logprobs: Tensor, choice_ids: Tensor, valid: Tensor, labels: Tensor
) -> dict[str, Tensor]:
    """Per example, every metric of :data:`METRICS` (see :data:`METRIC_HELP`).

    Args:
        logprobs: ``[n, d_vocab]`` next-token log-probabilities.
        choice_ids: ``[n, C]`` first-token id of each choice (padded); valid: ``[n, C]`` mask.
        labels: ``[n]`` gold choice index.
    """
    scores = logprobs.gather(-1, choice_ids.to(logprobs.device))
    scores = torch.where(valid.to(scores.device), scores, torch.full_like(scores, -float("inf")))
    rows = torch.arange(len(labels))
    gold = scores[rows, labels]
    others = scores.clone()
    others[rows, labels] = -float("inf")
    over_choices = torch.log_softmax(scores.float(), dim=-1)
    plogp = torch.where(valid.to(scores.device), over_choices.exp() * over_choices, 0.0)
    return {
        "choice_logprob": choice_logprob(scores, labels),
        "vocab_logprob": gold,
        "margin": gold - others.max(-1).values,
        "accuracy": (scores.argmax(-1) == labels.to(scores.device)).float(),
        "neg_entropy": plogp.sum(-1),
    }


@dataclass(frozen=True)
class HeadEffects:
    """Change of each metric when one head is ablated, ``[layer, head]``, with per-example values.

    Attributes:
        effects: metric -> ``[layer, head]`` mean change (ablated minus clean).
        stderr: metric -> ``[layer, head]`` standard error of that mean over examples.
        per_example: metric -> ``[layer, head, example]`` ablated values.
        baseline: metric -> ``[example]`` clean values.
    """

    strategy: str
    layers: tuple[int, ...]
    heads: tuple[int, ...]
    uids: tuple[str, ...]
    effects: dict[str, Tensor]
    stderr: dict[str, Tensor]
    per_example: dict[str, Tensor]
    baseline: dict[str, Tensor]
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_per_example(
        cls,
        *,
        strategy: str,
        layers: tuple[int, ...],
        heads: tuple[int, ...],
        uids: tuple[str, ...],
        baseline: dict[str, Tensor],
        per_example: dict[str, Tensor],
        settings: dict[str, Any],
    ) -> "HeadEffects":
        # NaN marks a (head, prompt) pair that was not evaluated (screened out, or eliminated
        # by successive halving): each head's mean and standard error use its own prompts.
        effects, stderr = {}, {}
        for m, values in per_example.items():
            delta = values - baseline[m].to(values.dtype)[None, None, :]
            count = (~delta.isnan()).sum(-1)
            mean = delta.nanmean(-1)
            var = ((delta - mean[..., None]) ** 2).nansum(-1) / (count - 1).clamp(min=1)
            effects[m] = mean
            stderr[m] = torch.where(
                count > 1, (var / count.clamp(min=1)).sqrt(), torch.zeros_like(mean)
            )
        return cls(strategy, layers, heads, uids, effects, stderr, per_example, baseline, settings)

    def counts(self, metric: str = DEFAULT_METRIC) -> Tensor:
        """``[layer, head]`` number of prompts each head was evaluated on."""
        return (~self.per_example[metric].isnan()).sum(-1)

    def effect(self, layer: int, head: int, metric: str = DEFAULT_METRIC) -> float:
        return float(self.effects[metric][self.layers.index(layer), self.heads.index(head)])

    def top(
        self, k: int = 10, metric: str = DEFAULT_METRIC, *, largest: bool = True
    ) -> list[dict[str, Any]]:
        """The ``k`` heads whose ablation raises (``largest``) or lowers the metric most."""
        if metric not in self.effects:
            raise ConfigError(f"unknown metric {metric!r}; known: {sorted(self.effects)}")
        eff = self.effects[metric]
        order = torch.argsort(eff.flatten(), descending=largest)[:k]
        n_h = len(self.heads)
        return [
            {
                "layer": self.layers[int(i) // n_h],
                "head": self.heads[int(i) % n_h],
                "effect": float(eff.flatten()[i]),
                "stderr": float(self.stderr[metric].flatten()[i]),
            }
            for i in order
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "act_lens.HeadEffects/1",
            "strategy": self.strategy,
            "layers": list(self.layers),
            "heads": list(self.heads),
            "uids": list(self.uids),
            "settings": dict(self.settings),
            "effects": {m: t.tolist() for m, t in self.effects.items()},
            "stderr": {m: t.tolist() for m, t in self.stderr.items()},
            "baseline": {m: t.tolist() for m, t in self.baseline.items()},
        }

    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Save everything (per-example values included) with ``torch.save``, atomically."""
        import io

        buf = io.BytesIO()
        torch.save({**self.to_dict(), "per_example": self.per_example}, buf)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "HeadEffects":
        try:
            d = torch.load(path, weights_only=True)
            for key in (
                "effects",
                "stderr",
                "baseline",
                "per_example",
            ):  # files of earlier versions
                d[key] = {RENAMED.get(m, m): v for m, v in d[key].items()}
            return cls(
                d["strategy"],
                tuple(d["layers"]),
                tuple(d["heads"]),
                tuple(d["uids"]),
                {m: torch.tensor(v) for m, v in d["effects"].items()},
                {m: torch.tensor(v) for m, v in d["stderr"].items()},
                dict(d["per_example"]),
                {m: torch.tensor(v) for m, v in d["baseline"].items()},
                d.get("settings", {}),
            )
        except (OSError, KeyError, RuntimeError) as err:
            raise DataError(f"cannot read head effects {path}: {err}") from err

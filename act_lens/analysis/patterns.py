"""One prompt's attention patterns in chosen heads, with their sinks, before and after an
intervention: the data behind the attention views (``act_lens.app.views``)."""

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError, DataError, HeadSetError
from act_lens.evaluation.batching import encode
from act_lens.hooks.arch import model_settings
from act_lens.hooks.interventions import as_intervention
from act_lens.hooks.recorder import SinkRecorder
from act_lens.hooks.spec import Hooks
from act_lens.io import atomic_write_text

FORMAT = "act_lens.AttentionPatterns/1"


@dataclass(frozen=True)
class AttentionPatterns:
    """Patterns of one prompt in ``heads`` (``(layer, head)`` pairs, in order).

    ``sinks`` and ``scores_before`` come from the pattern without the intervention (the sink
    score of a key is the mean attention it receives over the queries that see it);
    ``after``/``scores_after`` are None when no intervention was given.
    """

    model: str
    prompt: str
    tokens: tuple[str, ...]
    heads: tuple[tuple[int, int], ...]
    before: Float[Tensor, "head_index query_pos key_pos"]
    sinks: Bool[Tensor, "head_index key_pos"]
    scores_before: Float[Tensor, "head_index key_pos"]
    after: Float[Tensor, "head_index query_pos key_pos"] | None = None
    scores_after: Float[Tensor, "head_index key_pos"] | None = None
    threshold: float = 0.1
    rule: str = "mean"
    intervention: str | None = None

    def to_dict(self) -> dict[str, Any]:
        def rounded(t: Tensor | None) -> Any:
            # five decimals: 0.00001 of attention is below anything a view can show
            return None if t is None else torch.round(t.double(), decimals=5).tolist()

        return {
            "format": FORMAT,
            "model": self.model,
            "prompt": self.prompt,
            "tokens": list(self.tokens),
            "heads": [list(h) for h in self.heads],
            "before": rounded(self.before),
            "sinks": self.sinks.int().tolist(),
            "scores_before": rounded(self.scores_before),
            "after": rounded(self.after),
            "scores_after": rounded(self.scores_after),
            "threshold": self.threshold,
            "rule": self.rule,
            "intervention": self.intervention,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "AttentionPatterns":
        def tensor(x: Any) -> Tensor | None:
            return None if x is None else torch.tensor(x, dtype=torch.float32)

        try:
            return cls(
                model=str(d["model"]),
                prompt=str(d["prompt"]),
                tokens=tuple(str(t) for t in d["tokens"]),
                heads=tuple((int(layer), int(head)) for layer, head in d["heads"]),
                before=torch.tensor(d["before"], dtype=torch.float32),
                sinks=torch.tensor(d["sinks"], dtype=torch.bool),
                scores_before=torch.tensor(d["scores_before"], dtype=torch.float32),
                after=tensor(d.get("after")),
                scores_after=tensor(d.get("scores_after")),
                threshold=float(d.get("threshold", 0.1)),
                rule=str(d.get("rule", "mean")),
                intervention=d.get("intervention"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(
                f"not an AttentionPatterns dictionary ({type(err).__name__}: {err})"
            ) from err

    def save(self, path: "str | os.PathLike[str]") -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "AttentionPatterns":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read attention patterns {path}: {err}") from err


def describe_intervention(intervention: Any) -> str:
    """A one-line name for an intervention (``ACT beta=0.4 on 3 heads in 2 layers: ...``)."""
    head_set = getattr(intervention, "head_set", None)
    if head_set is not None and hasattr(intervention, "beta"):
        return f"ACT beta={intervention.beta} on {head_set.summary()}"
    if head_set is not None:
        return f"{type(intervention).__name__} on {head_set.summary()}"
    if isinstance(intervention, Hooks):
        return f"{len(intervention)} hooks"
    return type(intervention).__name__


def record_attention(
    model: Any,
    prompt: str,
    heads: Iterable[tuple[int, int]],
    *,
    intervention: Any = None,
    settings: SinkSettings | None = None,
) -> AttentionPatterns:
    """Run ``prompt`` once plainly (and once with ``intervention``) and keep the patterns of
    ``heads``, with sinks detected by ``settings`` on the plain pattern.

    Args:
        model: a TransformerBridge.
        prompt: the text (tokenized as the evaluation does, BOS included).
        heads: ``(layer, head)`` pairs, e.g. a ``HeadSet`` or ``[(3, 0), (3, 1)]``.
        intervention: anything ``as_intervention`` takes (``ActConfig(head_set)``,
            ``Compose(...)``, a hook list); its hooks run before the recording ones, so
            ``after`` is the pattern the model used.
        settings: the sink rule (default: ``SinkSettings()``); the model's sliding windows
            are filled in.

    Returns:
        AttentionPatterns.

    Raises:
        ConfigError: an empty prompt or no heads. HeadSetError: a head the model lacks.

    Example:
        >>> p = record_attention(model, "Review: fine.", [(2, 0)], intervention=ActConfig(HeadSet({2: [0]})))  # doctest: +SKIP
        >>> p.before.shape, p.after.shape                                                                         # doctest: +SKIP
    """
    pairs = _checked_pairs(model, prompt, heads)
    settings = model_settings(model, settings)
    ids = encode(model.tokenizer, [prompt])[0]
    tokens = torch.tensor([ids], dtype=torch.long, device=model.cfg.device)
    layers = sorted({layer for layer, _ in pairs})

    def run(extra: Sequence[Any]) -> SinkRecorder:
        rec = SinkRecorder(layers, settings, keep_patterns={layer: None for layer in layers})
        with torch.inference_mode():
            # the recorder goes last: it sees what the intervention left
            model.run_with_hooks(tokens, fwd_hooks=[*extra, *rec.hooks()])
        return rec

    def pick(rec: SinkRecorder) -> tuple[Tensor, Tensor, Tensor]:
        recs = [rec.records[layer][0] for layer, _ in pairs]
        pattern = torch.stack([r.pattern[0, h] for r, (_, h) in zip(recs, pairs, strict=True)])  # type: ignore[index]
        sinks = torch.stack([r.sinks[0, h] for r, (_, h) in zip(recs, pairs, strict=True)])
        scores = torch.stack([r.scores[0, h] for r, (_, h) in zip(recs, pairs, strict=True)])
        return pattern.float(), sinks.bool(), scores.float()

    before, sinks, scores_before = pick(run([]))
    after = scores_after = None
    described = None
    if intervention is not None:
        applied = as_intervention(intervention).for_model(model)
        # one unpadded prompt: no attention mask
        after, _, scores_after = pick(run(applied.hooks(None)))
        described = describe_intervention(applied)
    return AttentionPatterns(
        model=str(getattr(model.cfg, "model_name", "model")),
        prompt=prompt,
        tokens=tuple(model.tokenizer.decode([t]) for t in ids),
        heads=pairs,
        before=before,
        sinks=sinks,
        scores_before=scores_before,
        after=after,
        scores_after=scores_after,
        threshold=settings.threshold,
        rule=settings.rule,
        intervention=described,
    )


def _checked_pairs(
    model: Any, prompt: str, heads: Iterable[tuple[int, int]]
) -> tuple[tuple[int, int], ...]:
    """``heads`` as ``(layer, head)`` int pairs, refused when empty or not in the model."""
    pairs = tuple((int(layer), int(head)) for layer, head in heads)
    if not pairs:
        raise ConfigError("record_attention needs at least one (layer, head) pair")
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    bad = [(la, h) for la, h in pairs if not (0 <= la < n_layers and 0 <= h < n_heads)]
    if bad:
        raise HeadSetError(
            f"heads {bad} are not in this model ({n_layers} layers x {n_heads} heads)"
        )
    if not prompt:
        raise ConfigError("record_attention needs a non-empty prompt")
    return pairs

"""Result objects as the JSON the views' JavaScript draws (``act_lens/app/assets/views.js``).

Pure functions of saved results: no model runs here. Attention weights travel as base64
little-endian uint16 (65535 = weight 1, a step of 1.5e-5), each head's causal pattern as its
lower triangle row by row, which keeps a 270-head view of a 60-token prompt near 1.3 MB.
"""

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from act_lens.analysis.census import SinkCensus
from act_lens.analysis.patterns import AttentionPatterns
from act_lens.errors import ConfigError, DataError, ShapeError
from act_lens.evaluation.evaluate import EvalResult
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.headset import HeadSet

MAX_VIEW_BYTES = 64 * 2**20  # a page past this would stall a browser tab
TEXT_TAIL = (
    320  # characters of a flipped example's prompt shown in the table (the end: the question)
)


def _pack(patterns: Tensor) -> str:
    n = patterns.shape[-1]
    rows, cols = torch.tril_indices(n, n)
    weights = patterns[:, rows, cols].detach().double().clamp(0.0, 1.0)
    q = (weights * 65535.0).round().to(torch.int64).numpy().astype("<u2")
    return base64.b64encode(q.tobytes()).decode("ascii")


def attention_payload(patterns: AttentionPatterns, *, title: str | None = None) -> dict[str, Any]:
    """The attention view's data: tokens, heads, packed patterns, sink columns and their mass.

    Raises:
        ConfigError: the page would exceed ``MAX_VIEW_BYTES`` (too many heads x tokens).
    """
    n_heads, n = len(patterns.heads), len(patterns.tokens)
    size = (2 if patterns.after is not None else 1) * n_heads * n * (n + 1) * 4 // 3
    if size > MAX_VIEW_BYTES:
        raise ConfigError(
            f"an attention view of {n_heads} heads x {n} tokens would take {size / 2**20:.0f} MB; "
            f"pass fewer layers/heads or a shorter prompt (limit {MAX_VIEW_BYTES // 2**20} MB)"
        )
    sinks = [patterns.sinks[i].nonzero().flatten().tolist() for i in range(n_heads)]

    def mass(scores: Tensor | None) -> list[list[float]] | None:
        if scores is None:
            return None
        return [[round(float(scores[i, k]), 5) for k in cols] for i, cols in enumerate(sinks)]

    if patterns.after is not None:
        # open on the head the intervention changed most
        focus = int((patterns.after - patterns.before).abs().flatten(1).amax(1).argmax())
    else:
        hidden = patterns.scores_before * patterns.sinks
        hidden[:, 0] = 0.0
        focus = int(hidden.sum(1).argmax())
    return {
        "title": title,
        "model": patterns.model,
        "prompt": patterns.prompt,
        "tokens": list(patterns.tokens),
        "heads": [list(h) for h in patterns.heads],
        "before": _pack(patterns.before),
        "after": None if patterns.after is None else _pack(patterns.after),
        "sinks": sinks,
        "mass_before": mass(patterns.scores_before),
        "mass_after": mass(patterns.scores_after),
        "threshold": patterns.threshold,
        "rule": patterns.rule,
        "intervention": patterns.intervention,
        "focus": focus,
    }


def census_payload(census: SinkCensus) -> dict[str, Any]:
    """The census view's data: layer x head frequency and masses, and each head's sink tokens."""
    counts = census.class_counts
    classes = []
    for li in range(counts.shape[0]):
        row = []
        for h in range(counts.shape[1]):
            pairs = [
                (c, int(n))
                for c, n in zip(census.classes, counts[li, h].tolist(), strict=True)
                if c != "first" and n > 0
            ]
            row.append([list(cn) for cn in sorted(pairs, key=lambda cn: -cn[1])[:4]])
        classes.append(row)
    head_tokens = census.head_top_tokens or None
    return {
        "model": census.model,
        "n_prompts": census.n_prompts,
        "layers": list(census.layers),
        "threshold": census.threshold,
        "rule": census.rule,
        "freq": _rounded(census.hidden_sink_freq),
        "hidden_mass": _rounded(census.hidden_mass),
        "first_mass": _rounded(census.first_mass),
        "head_tokens": [[[list(tc) for tc in head] for head in row] for row in head_tokens]
        if head_tokens
        else None,
        "head_classes": classes,
        "top_tokens": [list(tc) for tc in census.top_tokens[:20]],
    }


def curve_payload(head_set: HeadSet, *, title: str | None = None) -> dict[str, Any]:
    """The selection curve's data from a joint-selection head set's provenance.

    Raises:
        DataError: the head set has no curve (not found with ``select="joint"``).
    """
    prov = head_set.provenance
    curve, metric = prov.get("curve"), str(prov.get("metric", "choice_logprob"))
    if not curve:
        raise DataError(
            "this head set has no validation curve (it was not found with select='joint')"
        )
    return {
        "title": title,
        "metric": metric,
        "points": [
            {
                "size": int(r["size"]),
                "value": float(r[metric]),
                "stderr": float(r.get("stderr", 0.0)),
                "accuracy": r.get("accuracy"),
            }
            for r in curve
        ],
        "chosen": prov.get("selected_size"),
        "n_validation": (prov.get("validation_set") or {}).get("n", "?"),
    }


def flips_payload(
    base: EvalResult,
    treated: EvalResult,
    prompts: Sequence[Prompt] | Mapping[str, Prompt] | None = None,
    *,
    base_name: str = "baseline",
    treated_name: str = "ACT",
) -> dict[str, Any]:
    """The flips table's data: every example whose prediction changed, with its text (when
    ``prompts`` has it), gold, both predictions and their probabilities among the choices.

    Raises:
        ShapeError: the two runs are not on the same examples in the same order.
    """
    if base.uids != treated.uids or base.labels != treated.labels:
        raise ShapeError(
            f"cannot pair {base.task} ({base.n} examples) with {treated.task} ({treated.n}): "
            "the example ids differ; evaluate both on the same split/limit"
        )
    by_uid = dict(prompts) if isinstance(prompts, Mapping) else {p.uid: p for p in prompts or ()}
    rows, fixed, broken = [], 0, 0
    for i, uid in enumerate(base.uids):
        pb, pt, gold = base.predictions[i], treated.predictions[i], base.labels[i]
        if pb == pt:
            continue
        change = "fixed" if pt == gold else "broken" if pb == gold else "other"
        fixed += change == "fixed"
        broken += change == "broken"
        prompt = by_uid.get(uid)
        names = prompt.choices if prompt is not None else ()
        text = prompt.text if prompt is not None else ""

        def name(c: int, names: Sequence[str] = names) -> str:
            return names[c].strip() if c < len(names) else f"choice {c}"

        rows.append(
            {
                "uid": uid,
                "text": text if len(text) <= TEXT_TAIL else "\u2026" + text[-TEXT_TAIL:],
                "full": text[-4000:],
                "gold": name(gold),
                "base": name(pb),
                "base_p": _probability(base.scores[i], pb),
                "treated": name(pt),
                "treated_p": _probability(treated.scores[i], pt),
                "change": change,
            }
        )
    return {
        "task": base.task,
        "n": base.n,
        "fixed": fixed,
        "broken": broken,
        "rows": rows,
        "base_name": base_name,
        "treated_name": treated_name,
    }


def _probability(scores: Sequence[float], choice: int) -> float:
    """Softmax of the choices' log-probabilities, at ``choice``."""
    s = np.asarray(scores, dtype=np.float64)
    p = np.exp(s - s.max())
    value = float(p[choice] / p.sum())
    return round(value, 4) if math.isfinite(value) else 0.0


def _rounded(t: Tensor) -> list[list[float]]:
    return torch.round(t.double(), decimals=4).tolist()

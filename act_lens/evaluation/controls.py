"""Controls that every claimed gain is measured against.

* a random head set of the same size, drawn from the search's candidate layers (does *which*
  heads matter, or would any edit of that many heads do?);
* contextual calibration (``act_lens.evaluation.baselines``; does ACT do more than correct the output
  bias?), alone and on top of the intervention.
"""

import random
from collections.abc import Sequence
from typing import Any

from act_lens.hooks.headset import HeadSet


def random_head_set(
    like: HeadSet,
    n_layers: int,
    n_heads: int,
    *,
    seed: int = 0,
    layers: Sequence[int] | None = None,
) -> HeadSet:
    """A head set with as many heads as ``like``, drawn uniformly from the candidate layers.

    Args:
        like: the searched set (its size, method, params and candidate layers are copied).
        n_layers: the model's number of layers.
        n_heads: its heads per layer.
        seed: the draw's seed.
        layers: candidate layers (default: ``like``'s recorded ones, else all but the first
            two and the last).

    Example:
        >>> hs = random_head_set(HeadSet({5: [1, 2]}), 30, 9, seed=0)
        >>> len(hs), hs.provenance["method"]
        (2, 'random control')
    """
    if layers is None:
        layers = like.provenance.get("candidate_layers") or list(range(2, max(n_layers - 1, 2)))
    pairs = [(layer, h) for layer in layers for h in range(n_heads)]
    chosen = random.Random(seed).sample(pairs, min(len(like), len(pairs)))
    prov: dict[str, Any] = {
        "method": "random control",
        "seed": seed,
        "candidate_layers": list(layers),
    }
    return HeadSet(chosen, prov, method=like.method, params=like.params)

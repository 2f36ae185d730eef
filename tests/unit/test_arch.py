"""layer_windows reads the HF config; sliding-window statistics count only visible pairs."""

from types import SimpleNamespace

import torch

from act_lens.core.sinks import head_statistics, sink_scores
from act_lens.hooks.arch import layer_windows


class _Config(SimpleNamespace):
    def to_dict(self):
        return dict(vars(self))


def _model(**config):
    return SimpleNamespace(
        cfg=SimpleNamespace(n_layers=6), original_model=SimpleNamespace(config=_Config(**config))
    )


def test_layer_windows_from_layer_types():
    types = ["sliding_attention"] * 5 + ["full_attention"]
    assert layer_windows(_model(sliding_window=512, layer_types=types)) == dict.fromkeys(
        range(5), 512
    )


def test_layer_windows_none_when_disabled_or_absent():
    assert layer_windows(_model(sliding_window=None, layer_types=["full_attention"] * 6)) == {}
    assert layer_windows(_model(sliding_window=4096, use_sliding_window=False)) == {}
    assert layer_windows(_model(sliding_window=4096)) == dict.fromkeys(range(6), 4096)
    assert layer_windows(_model(sliding_window=4096, layer_types=["full_attention"] * 6)) == {}


def _windowed_pattern(n: int, window: int) -> torch.Tensor:
    q = torch.arange(n)[:, None]
    k = torch.arange(n)[None, :]
    allowed = (k <= q) & (q - k < window)
    scores = torch.where(allowed, torch.zeros(n, n), torch.full((n, n), float("-inf")))
    return torch.softmax(scores, -1)[None, None]  # uniform over the window


def test_first_token_score_counts_only_queries_in_the_window():
    p = _windowed_pattern(6, 2)
    # Key 0 is seen by queries 0 (weight 1) and 1 (weight 1/2): mean 0.75, not 1.5 / 6.
    assert torch.isclose(sink_scores(p, window=2)[0, 0, 0], torch.tensor(0.75))
    assert torch.isclose(sink_scores(p)[0, 0, 0], torch.tensor(1.5 / 6))


def test_first_mass_averages_over_rows_that_see_the_first_token():
    p = _windowed_pattern(6, 2)
    none = torch.zeros(1, 1, 6, dtype=torch.bool)
    first_windowed, hidden, _ = head_statistics(p, none, window=2)
    first_global, _, _ = head_statistics(p, none)
    assert torch.isclose(first_windowed[0, 0], torch.tensor(0.75))
    assert torch.isclose(first_global[0, 0], torch.tensor(1.5 / 6))
    assert hidden.abs().max() == 0
    # No window larger than the prompt changes anything.
    assert torch.equal(head_statistics(p, none, window=100)[0], first_global)

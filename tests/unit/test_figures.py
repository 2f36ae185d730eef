"""Figures are built from hand-made result objects: no model, no transformer_lens."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from act_lens.analysis.census import SinkCensus
from act_lens.analysis.effects import HeadEffects
from act_lens.app import figures, result_figures
from act_lens.core.token_classes import TOKEN_CLASSES
from act_lens.errors import ConfigError, DataError

TOKENS = ["<s>", "Sentence", ":", " fine", ".", "\n", "Sent", "iment", ":"]
LAYERS = (0, 1, 2, 3, 4, 5)
N_HEADS = 4


def make_census(example: bool = True, seed: int = 0) -> SinkCensus:
    g = torch.Generator().manual_seed(seed)
    shape = (len(LAYERS), N_HEADS)
    n = len(TOKENS)
    patterns, sinks, scores = [], [], []
    for li in range(len(LAYERS)):
        raw = torch.rand(n, n, generator=g).tril()
        raw[:, 0] += 3.0  # a first-token sink
        raw[5:, 5] += 1.5 * (li % 2)  # a hidden sink on "\n" in odd layers
        patterns.append((raw / raw.sum(-1, keepdim=True)).tolist())
        mask = torch.zeros(N_HEADS, n, dtype=torch.int)
        mask[:, 0] = 1
        if li % 2:
            mask[li % N_HEADS, 5] = 1
        if li == 3:
            mask[0, 2] = 1
        sinks.append(mask.tolist())
        scores.append(torch.rand(N_HEADS, n, generator=g).tolist())
    return SinkCensus(
        model="synthetic",
        n_prompts=10,
        layers=LAYERS,
        threshold=0.1,
        rule="mean",
        hidden_sink_freq=torch.rand(shape, generator=g),
        first_mass=torch.rand(shape, generator=g),
        hidden_mass=0.2 * torch.rand(shape, generator=g),
        entropy=torch.rand(shape, generator=g),
        class_counts=torch.randint(0, 20, (*shape, len(TOKEN_CLASSES)), generator=g),
        top_tokens=(("\n", 40), (":", 25), (".", 12), (" the", 3)),
        example={
            "prompt_index": 0,
            "tokens": TOKENS,
            "head_mean_patterns": patterns,
            "sinks": sinks,
            "scores": scores,
        }
        if example
        else {},
    )


def make_effects() -> HeadEffects:
    g = torch.Generator().manual_seed(1)
    n = 5
    base = {"choice_logprob": -torch.rand(n, generator=g), "accuracy": torch.ones(n)}
    per = {
        "choice_logprob": -torch.rand(3, N_HEADS, n, generator=g),
        "accuracy": (torch.rand(3, N_HEADS, n, generator=g) > 0.3).float(),
    }
    return HeadEffects.from_per_example(
        strategy="mean",
        layers=(0, 2, 4),
        heads=tuple(range(N_HEADS)),
        uids=tuple(f"u{i}" for i in range(n)),
        baseline=base,
        per_example=per,
        settings={},
    )


ROWS = [
    {"task": "sst2", "baseline": 0.80, "treated": 0.84, "interval": (0.01, 0.07), "p_value": 0.02},
    {
        "task": "agnews",
        "baseline": 0.60,
        "treated": 0.58,
        "interval": (-0.05, 0.01),
        "p_value": 0.4,
    },
]


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def marked_columns(ax) -> tuple[list[int], list[int]]:
    by_gid = {c.get_gid(): sorted(int(x) for x in c.get_offsets()[:, 0]) for c in ax.collections}
    return by_gid["first_sinks"], by_gid["hidden_sinks"]


def test_attention_map_marks_the_example_sinks(tmp_path):
    census = make_census()
    for layer in (2, 3):
        fig = figures.plot_attention_map(census, layer, path=tmp_path / f"map{layer}.png")
        assert_png(tmp_path / f"map{layer}.png")
        ax = fig.axes[0]
        any_head = np.asarray(census.example["sinks"][LAYERS.index(layer)]).any(0)
        first, hidden = marked_columns(ax)
        assert first == [0]
        assert hidden == [int(i) for i in np.flatnonzero(any_head) if i > 0]
        assert [t.get_text() for t in ax.get_xticklabels()][5] == "\\n"
        np.testing.assert_allclose(
            np.tril(ax.images[0].get_array().filled(0.0)),
            np.tril(census.example["head_mean_patterns"][LAYERS.index(layer)]),
        )
    assert marked_columns(figures.plot_attention_map(census, 3).axes[0])[1] == [2, 5]
    assert marked_columns(figures.plot_attention_map(census, 2).axes[0])[1] == []


def test_attention_grid_default_and_explicit_layers(tmp_path):
    census = make_census()
    fig = figures.plot_attention_grid(census, path=tmp_path / "grid.png")
    assert_png(tmp_path / "grid.png")
    maps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in maps] == [f"layer {lay}" for lay in LAYERS]
    assert all(not ax.get_xticks().size for ax in maps)
    fig = figures.plot_attention_grid(census, layers=[1, 3])
    assert [ax.get_title() for ax in fig.axes] == ["layer 1", "layer 3"]
    assert marked_columns(fig.axes[1]) == ([0], [2, 5])


def test_heatmaps_hold_the_input_tensors(tmp_path):
    census = make_census()
    fig = figures.plot_sink_frequency(census, path=tmp_path / "freq.png")
    assert_png(tmp_path / "freq.png")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), census.hidden_sink_freq.numpy())
    effects = make_effects()
    for metric in ("choice_logprob", "accuracy"):
        fig = result_figures.plot_head_effects(
            effects, metric=metric, path=tmp_path / f"{metric}.png"
        )
        assert_png(tmp_path / f"{metric}.png")
        im = fig.axes[0].images[0]
        np.testing.assert_allclose(im.get_array(), effects.effects[metric].numpy())
        assert im.norm.vmin == pytest.approx(-im.norm.vmax)  # centred at 0
    with pytest.raises(ConfigError, match="unknown metric"):
        result_figures.plot_head_effects(effects, metric="margin")


def test_token_classes_and_mass_by_layer(tmp_path):
    census = make_census()
    fig = figures.plot_token_classes(census, path=tmp_path / "classes.png")
    assert_png(tmp_path / "classes.png")
    totals = census.class_totals(hidden_only=True)
    assert "first" not in totals
    assert [p.get_height() for p in fig.axes[0].patches] == list(totals.values())
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["\\n", ":", ".", " the"]
    assert [p.get_width() for p in fig.axes[1].patches] == [40, 25, 12, 3]
    fig = figures.plot_mass_by_layer(census, path=tmp_path / "mass.png")
    assert_png(tmp_path / "mass.png")
    first, hidden = fig.axes[0].lines
    np.testing.assert_allclose(first.get_ydata(), census.first_mass.mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(hidden.get_ydata(), census.hidden_mass.mean(1).numpy(), rtol=1e-6)


def test_eval_comparison(tmp_path):
    fig = result_figures.plot_eval_comparison(ROWS, path=tmp_path / "eval.png")
    assert_png(tmp_path / "eval.png")
    acc, delta = fig.axes
    assert [round(p.get_height(), 6) for p in acc.patches] == [80.0, 60.0, 84.0, 58.0]
    assert [round(p.get_height(), 6) for p in delta.patches] == [4.0, -2.0]
    with pytest.raises(DataError, match="lacks"):
        result_figures.plot_eval_comparison([{"task": "x", "baseline": 0.5}])
    with pytest.raises(ConfigError):
        result_figures.plot_eval_comparison([])


def test_save_census_figures(tmp_path):
    paths = figures.save_census_figures(make_census(), tmp_path / "out", prefix="m_")
    names = ["attention_map", "attention_grid", "sink_frequency", "token_classes", "mass_by_layer"]
    assert paths == [tmp_path / "out" / f"m_{n}.png" for n in names]
    for p in paths:
        assert_png(p)
    paths = figures.save_census_figures(make_census(example=False), tmp_path / "bare")
    assert [p.name for p in paths] == [f"{n}.png" for n in names[2:]]


def test_attention_maps_need_an_example_and_a_recorded_layer():
    with pytest.raises(DataError, match="example_index"):
        figures.plot_attention_map(make_census(example=False), 0)
    with pytest.raises(ConfigError, match="recorded layers"):
        figures.plot_attention_map(make_census(), 17)


@pytest.mark.parametrize("module", [figures, result_figures], ids=lambda m: m.__name__)
def test_figures_never_touch_a_model(module):
    source = Path(module.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    roots = {m.split(".")[0] for m in imported}
    assert not roots & {"transformer_lens", "transformers"}
    assert "matplotlib.pyplot" not in imported and "run_with_hooks" not in source
    code = (
        f"import sys, {module.__name__}\n"
        "bad = [m for m in ('transformer_lens', 'transformers', 'matplotlib.pyplot') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_selection_curve_and_halving_rounds_draw_their_provenance(tmp_path):
    import numpy as np

    from act_lens.app.result_figures import plot_halving_rounds, plot_selection_curve
    from act_lens.hooks.headset import HeadSet

    curve = [{"size": k, "choice_logprob": v, "stderr": 0.01, "accuracy": 0.5}
             for k, v in [(0, -0.6), (1, -0.5), (2, -0.4), (4, -0.45)]]  # fmt: skip
    rounds = [{"heads_in": 12, "prompts_seen": 4, "evaluations": 48},
              {"heads_in": 6, "prompts_seen": 12, "evaluations": 48}]  # fmt: skip
    hs = HeadSet({2: [0, 1]}, {"curve": curve, "selected_size": 2, "metric": "choice_logprob",
                               "rounds": rounds, "exhaustive_evaluations": 144})  # fmt: skip
    fig = plot_selection_curve(hs, path=tmp_path / "c.png")
    x, y = fig.axes[0].lines[0].get_data()
    assert list(x) == [0, 1, 2, 4] and np.allclose(y, [-0.6, -0.5, -0.4, -0.45])
    assert (tmp_path / "c.png").stat().st_size > 0
    fig2 = plot_halving_rounds(hs)
    assert [p.get_height() for p in fig2.axes[0].patches] == [12, 6]
    assert "1.5x fewer" in fig2.axes[0].get_title()
    with pytest.raises(DataError, match="no validation curve"):
        plot_selection_curve(HeadSet({2: [0]}))

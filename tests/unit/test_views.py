"""The views' data and pages without a browser: packing, escaping, offline pages, flips."""

import base64
import json
import re

import numpy as np
import pytest
import torch

from act_lens.analysis.census import SinkCensus
from act_lens.analysis.patterns import AttentionPatterns
from act_lens.app import html, view_payloads, views
from act_lens.core.token_classes import TOKEN_CLASSES
from act_lens.errors import ConfigError, DataError, ShapeError
from act_lens.evaluation.evaluate import EvalResult
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.headset import HeadSet
from tests.helpers import planted_sink_pattern


def make_patterns(
    n=9, heads=((1, 0), (1, 2), (3, 1)), tokens=None, after=True
) -> AttentionPatterns:
    before = planted_sink_pattern(1, len(heads), n, seed=0)[0].float()
    sinks = torch.zeros(len(heads), n, dtype=torch.bool)
    sinks[:, [0, n // 2]] = True
    scores = before.mean(1)
    changed = before.clone()
    changed[0, :, n // 2] *= 0.4
    changed[0] /= changed[0].sum(-1, keepdim=True)
    return AttentionPatterns(
        model="m",
        prompt="p",
        tokens=tuple(tokens or [f"t{i}" for i in range(n)]),
        heads=tuple(heads),
        before=before,
        sinks=sinks,
        scores_before=scores,
        after=changed if after else None,
        scores_after=changed.mean(1) if after else None,
        intervention="ACT" if after else None,
    )


def unpack(b64: str, n_heads: int, n: int) -> np.ndarray:
    flat = np.frombuffer(base64.b64decode(b64), dtype="<u2") / 65535.0
    out = np.zeros((n_heads, n, n))
    rows, cols = np.tril_indices(n)
    out[:, rows, cols] = flat.reshape(n_heads, -1)
    return out


def test_packed_patterns_decode_to_the_weights():
    p = make_patterns()
    payload = view_payloads.attention_payload(p)
    for key, tensor in (("before", p.before), ("after", p.after)):
        decoded = unpack(payload[key], 3, 9)
        assert np.abs(decoded - tensor.double().numpy()).max() <= 0.5 / 65535 + 1e-9
    assert payload["sinks"] == [[0, 4]] * 3
    assert payload["mass_before"][0] == pytest.approx(p.scores_before[0, [0, 4]].tolist(), abs=1e-5)
    assert payload["focus"] == 0  # the only head the intervention changed


def test_a_view_too_large_for_a_browser_is_refused(monkeypatch):
    monkeypatch.setattr(view_payloads, "MAX_VIEW_BYTES", 1000)
    with pytest.raises(ConfigError, match="fewer layers/heads"):
        view_payloads.attention_payload(make_patterns(n=20))


def test_tokens_cannot_break_out_of_the_data_block(tmp_path):
    evil = "</script><script>window.hacked=1</script><!--"
    page = views.attention_view(make_patterns(tokens=[evil] + [f"t{i}" for i in range(8)])).html()
    assert "window.hacked" in page  # the token is there...
    assert evil not in page  # ...but never as markup
    data = re.search(r'<script type="application/json">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)["tokens"][0] == evil


def test_saved_page_is_self_contained(tmp_path):
    path = views.attention_view(make_patterns()).save(tmp_path / "a" / "view.html")
    page = path.read_text()
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "cdn" not in page.lower()
    assert html.asset("views.js") in page


def test_notebook_fragment_mounts_its_own_views():
    frag = views.attention_view(make_patterns())._repr_html_()
    root = re.search(r'<div id="(al-[0-9a-f]+)">', frag).group(1)
    assert f'mountAll(document.getElementById("{root}"))' in frag
    assert 'data-act-lens="attention"' in frag


def result(preds, labels=(0, 1, 0, 1), scores=None, uids=("a", "b", "c", "d")):
    scores = scores or [[0.0, -1.0] if p == 0 else [-1.0, 0.0] for p in preds]
    return EvalResult(
        task="t", split="eval", model="m", shots=0, seed=0, scoring="first_token",
        uids=tuple(uids), labels=tuple(labels), predictions=tuple(preds),
        scores=tuple(tuple(float(x) for x in s) for s in scores), interval=(0.0, 1.0),
    )  # fmt: skip


def test_flips_lists_only_changed_predictions_with_their_kind():
    base = result([0, 0, 1, 1])
    treated = result([0, 1, 0, 0], scores=[[0, -1], [-2.0, 0.0], [0, -1], [0, -1]])
    prompts = [Prompt("b", "text of b", (" neg", " pos"), 1, "text of b", (" neg", " pos"), {})]
    payload = views.flips(base, treated, prompts=prompts).payload
    rows = {r["uid"]: r for r in payload["rows"]}
    assert set(rows) == {"b", "c", "d"}  # "a" did not change
    assert rows["b"]["change"] == "fixed" and rows["c"]["change"] == "fixed"
    assert rows["d"]["change"] == "broken"
    assert (payload["fixed"], payload["broken"]) == (2, 1)
    assert rows["b"]["text"] == "text of b" and rows["b"]["gold"] == "pos"
    assert rows["b"]["treated_p"] == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-4)
    assert rows["c"]["gold"] == "choice 0"  # no prompt given: the choice index


def test_flips_of_runs_on_other_examples_is_an_error():
    with pytest.raises(ShapeError, match="example ids differ"):
        views.flips(result([0, 0, 0, 0]), result([0, 0, 0, 0], uids=("a", "b", "c", "x")))


def test_curve_needs_a_joint_selection():
    with pytest.raises(DataError, match="no validation curve"):
        views.selection_curve(HeadSet({1: [0]}))
    hs = HeadSet(
        {1: [0]},
        {"curve": [{"size": 0, "choice_logprob": -0.7, "accuracy": 0.5},
                   {"size": 1, "choice_logprob": -0.6, "stderr": 0.01, "accuracy": 0.6}],
         "selected_size": 1, "validation_set": {"n": 8}},
    )  # fmt: skip
    payload = views.selection_curve(hs).payload
    assert [p["value"] for p in payload["points"]] == [-0.7, -0.6]
    assert payload["chosen"] == 1 and payload["n_validation"] == 8


def census(head_top_tokens=()) -> SinkCensus:
    z = torch.zeros(2, 3)
    counts = torch.zeros(2, 3, len(TOKEN_CLASSES), dtype=torch.long)
    counts[1, 2, 3] = 5
    return SinkCensus(
        model="m", n_prompts=4, layers=(0, 1), threshold=0.1, rule="mean",
        hidden_sink_freq=z + 0.5, first_mass=z, hidden_mass=z, entropy=z, class_counts=counts,
        head_top_tokens=head_top_tokens,
    )  # fmt: skip


def test_census_keeps_each_heads_sink_tokens_through_a_save(tmp_path):
    tokens = tuple(
        tuple(((".", 3), (",", 1)) if h == 2 else () for h in range(3)) for _ in range(2)
    )
    c = census(tokens)
    c.save(tmp_path / "c.json")
    loaded = SinkCensus.load(tmp_path / "c.json")
    assert loaded.head_top_tokens == tokens
    payload = views.census_view(loaded).payload
    assert payload["head_tokens"][1][2] == [[".", 3], [",", 1]]
    assert payload["head_classes"][1][2] == [[c.classes[3], 5]]
    # a census saved before per-head tokens were recorded still loads and draws
    old = c.to_dict()
    del old["head_top_tokens"]
    assert views.census_view(SinkCensus.from_dict(old)).payload["head_tokens"] is None


class FakeCfg:
    n_layers, n_heads = 4, 3


class FakeModel:
    cfg = FakeCfg()


def test_which_heads_an_attention_view_shows():
    pairs = views._pairs
    assert pairs(FakeModel(), [1], [0, 2], None) == [(1, 0), (1, 2)]
    assert pairs(FakeModel(), [2], None, None) == [(2, 0), (2, 1), (2, 2)]
    assert len(pairs(FakeModel(), None, None, None)) == 12
    assert pairs(FakeModel(), None, HeadSet({3: [1], 0: [2]}), None) == [(0, 2), (3, 1)]

    class Intervention:
        head_set = HeadSet({2: [1]})

    assert pairs(FakeModel(), None, None, Intervention()) == [(2, 1)]
    assert pairs(FakeModel(), [0], [0], Intervention()) == [(0, 0)]
    with pytest.raises(ConfigError, match="not both"):
        pairs(FakeModel(), [1], [(1, 0)], None)
    with pytest.raises(ConfigError, match="no heads"):
        pairs(FakeModel(), [1], [], None)

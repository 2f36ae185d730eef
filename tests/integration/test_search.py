"""ACT head search on a tiny random Llama: screening, checkpoints and a planted harmful sink."""

import dataclasses
import os
import random

import pytest
import torch

import act_lens.analysis.search
import act_lens.analysis.units
import act_lens.hooks.strategies
from act_lens.analysis.ablation import ScoredPrompts
from act_lens.analysis.effects import HeadEffects, metric_values
from act_lens.analysis.search import (
    SearchConfig,
    SearchResult,
    Selection,
    calibration_mix,
    screen_heads,
    search_heads,
)
from act_lens.core.calibrate import calibrate_pattern
from act_lens.core.settings import SinkSettings
from act_lens.core.sinks import detect_sinks
from act_lens.errors import ConfigError, DataError
from act_lens.evaluation.scoring import last_token_logprobs
from act_lens.hooks.act import act_hooks
from act_lens.hooks.headset import HeadSet
from act_lens.hooks.names import pattern_hook, z_hook
from act_lens.hooks.strategies import Strategy, act_strategy
from act_lens.runtime.options import RunOptions
from tests.helpers import byte_prompts, n_hooks

TEXTS = [
    "The cat sat on the mat. It was:",
    "Dogs bark:",
    "A quick brown fox jumps over:",
    "Hi, friend:",
]
BETA, THRESHOLD = 0.4, 0.05
# fp32 in-process: these tests compare the search's numbers with direct fp32 computations.
CONFIG = SearchConfig(batch_size=3, progress=False, precision="fp32", workers=1)
SEARCH = {
    # these tests are about the engine and checkpoints: all prompts search
    "selection": Selection("threshold"),
    "layers": [0, 1, 2],
    "settings": SinkSettings(beta=BETA, threshold=THRESHOLD),
    "config": CONFIG,
}


def _resumable(ckpt, **over):
    """SEARCH with a checkpoint file (and ``over`` on top)."""
    return {**SEARCH, "config": dataclasses.replace(CONFIG, checkpoint=ckpt), **over}


@pytest.fixture(scope="module")
def prompts():
    return byte_prompts(TEXTS)


# --- screening ---------------------------------------------------------------------------------


def _move_towards_act(layer: int, head: int, eps: float):
    """Hooks for ``p + eps * (ACT(p) - p)`` in one head: the line the screen differentiates along."""

    def factory(mask):
        def fn(pattern, hook):
            one = pattern[:, head : head + 1]
            sinks = detect_sinks(one, threshold=THRESHOLD, attention_mask=mask)
            delta = calibrate_pattern(one, sinks, beta=BETA, attention_mask=mask) - one
            out = pattern.clone()
            out[:, head : head + 1] = one + eps * delta
            return out

        return [(pattern_hook(layer), fn)]

    return factory


def test_screening_matches_central_finite_differences(tiny, prompts):
    """The first-order estimate is the derivative of the metric along the ACT edit of one head:
    compare it with ``(metric(p + eps d) - metric(p - eps d)) / 2 eps`` (error O(eps^2)) for
    every head, for choice_logprob, vocab_logprob and margin. The screen batches 3 + 1 prompts, the finite
    differences all 4 at once, so padding differs between the two."""
    layers = SEARCH["layers"]
    est = {
        m: screen_heads(
            tiny,
            prompts,
            layers=layers,
            settings=SinkSettings(beta=BETA, threshold=THRESHOLD),
            metric=m,
            run=RunOptions(batch_size=3),
        )
        for m in ("choice_logprob", "vocab_logprob", "margin", "accuracy")
    }
    # accuracy is not differentiable: it is screened by choice_logprob.
    torch.testing.assert_close(est.pop("accuracy"), est["choice_logprob"])
    assert n_hooks(tiny) == 0
    data = ScoredPrompts.from_prompts(tiny, prompts)
    choice = data.choice_tensor(range(len(prompts)))

    def mean_metrics(hooks):
        lp = last_token_logprobs(tiny, data.tokens, hooks=hooks, batch_size=len(prompts))
        return {m: v.mean() for m, v in metric_values(lp, *choice).items()}

    eps = 1e-2
    fd = {m: torch.zeros(len(layers), 4) for m in est}
    for li, layer in enumerate(layers):
        for head in range(4):
            up = mean_metrics(_move_towards_act(layer, head, eps))
            down = mean_metrics(_move_towards_act(layer, head, -eps))
            for m in est:
                fd[m][li, head] = (up[m] - down[m]) / (2 * eps)
    for m in est:
        assert est[m].abs().max() > 1e-2  # not a vacuous agreement of zeros
        torch.testing.assert_close(est[m], fd[m], atol=2e-4, rtol=2e-2)


# --- checkpoints and resume --------------------------------------------------------------------


def _count_act_calls(monkeypatch) -> list[int]:
    """Swap the registered "act" strategy for one that records the layer of every call."""
    calls: list[int] = []

    def counted(x, heads, ctx):
        calls.append(ctx.layer)
        return act_strategy(x, heads, ctx)

    monkeypatch.setitem(
        act_lens.hooks.strategies.STRATEGIES, "act", Strategy("act", "pattern", counted)
    )
    return calls


@pytest.fixture(autouse=True)
def _one_layer_per_unit(monkeypatch):
    """The tiny model has 3 layers: one work unit per layer, so an interrupt can fall between."""
    monkeypatch.setattr(act_lens.analysis.units, "LAYERS_PER_UNIT", 1)


def _interrupt_after(monkeypatch, n_units: int) -> None:
    """Make the search raise KeyboardInterrupt once ``n_units`` work units are checkpointed."""
    real = act_lens.analysis.units.map_units

    def interrupted(*args, on_result, **kwargs):
        done = []

        def callback(i, value):
            on_result(i, value)  # the search writes its checkpoint here
            done.append(i)
            if len(done) == n_units:
                raise KeyboardInterrupt

        return real(*args, on_result=callback, **kwargs)

    monkeypatch.setattr(act_lens.analysis.units, "map_units", interrupted)


def _units(path) -> list[str]:
    return sorted(torch.load(path, weights_only=True)["units"])


def _scores(head_set: HeadSet) -> dict[str, float]:
    return {k: v["effect"] for k, v in head_set.provenance["per_head"].items()}


def test_resume_after_interrupt_equals_uninterrupted_run(tiny, prompts, tmp_path, monkeypatch):
    calls = _count_act_calls(monkeypatch)
    full = search_heads(tiny, prompts, **SEARCH).head_set
    assert calls == [0, 0, 1, 1, 2, 2]  # one call per layer per batch (3 + 1 prompts)
    assert 0 < len(full) < 12

    ckpt = tmp_path / "search.ckpt"
    calls.clear()
    with monkeypatch.context() as mp:
        _interrupt_after(mp, 2)
        with pytest.raises(KeyboardInterrupt):
            search_heads(tiny, prompts, **_resumable(ckpt))
    assert n_hooks(tiny) == 0
    assert _units(ckpt) == ["L0:P0-4", "L1:P0-4"]
    assert list(tmp_path.iterdir()) == [ckpt]  # no temporary file left behind

    calls.clear()
    resumed = search_heads(tiny, prompts, **_resumable(ckpt)).head_set
    assert calls == [2, 2]  # the units of layers 0 and 1 came from the checkpoint
    assert resumed.heads == full.heads
    assert _scores(resumed) == pytest.approx(_scores(full), abs=1e-6)
    assert not ckpt.exists()  # removed once the search finished


def test_checkpoint_of_other_settings_or_prompts_is_refused(tiny, prompts, tmp_path, monkeypatch):
    ckpt = tmp_path / "search.ckpt"
    with monkeypatch.context() as mp:
        _interrupt_after(mp, 1)
        with pytest.raises(KeyboardInterrupt):
            search_heads(tiny, prompts, **_resumable(ckpt))
    with pytest.raises(ConfigError, match="other settings"):
        search_heads(
            tiny, prompts, **_resumable(ckpt, settings=SinkSettings(beta=0.3, threshold=THRESHOLD))
        )
    with pytest.raises(ConfigError, match="other settings"):
        search_heads(tiny, prompts[:3], **_resumable(ckpt))
    assert ckpt.exists()  # a refused checkpoint is kept for the search it belongs to
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot be read"):
        search_heads(tiny, prompts, **_resumable(ckpt))


def test_crash_while_writing_the_checkpoint_never_leaves_a_half_file(
    tiny, prompts, tmp_path, monkeypatch
):
    """The second checkpoint write dies after its data reached the temporary file, before the
    rename: the checkpoint still holds the first unit, intact, and the search resumes from it."""
    ckpt = tmp_path / "search.ckpt"
    real_fsync, writes = os.fsync, []

    def dying_fsync(fd):
        writes.append(fd)
        if len(writes) == 2:
            raise KeyboardInterrupt
        return real_fsync(fd)

    with monkeypatch.context() as mp:
        mp.setattr(os, "fsync", dying_fsync)
        with pytest.raises(KeyboardInterrupt):
            search_heads(tiny, prompts, **_resumable(ckpt))
    assert list(tmp_path.iterdir()) == [ckpt]
    assert _units(ckpt) == ["L0:P0-4"]
    calls = _count_act_calls(monkeypatch)
    resumed = search_heads(tiny, prompts, **_resumable(ckpt)).head_set
    assert sorted(set(calls)) == [1, 2]
    assert set(_scores(resumed)) == {f"{la}.{h}" for la in range(3) for h in range(4)}


# --- a planted harmful sink --------------------------------------------------------------------

LAYER, HEAD, SINK_MASS, GAIN = 2, 1, 0.9, 8.0
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _plant(pattern, hook):
    """Head (2, 1): every query after ``<bos>`` puts 0.9 on key 1 (a hidden sink) and 0.1 on
    ``<bos>``. Every prompt has the same length (no padding), so key 1 is the same token '#'."""
    out = pattern.clone()
    row = torch.zeros(pattern.shape[-1], dtype=pattern.dtype, device=pattern.device)
    row[0], row[1] = 1 - SINK_MASS, SINK_MASS
    out[:, HEAD, 1:, :] = row
    return out


def _amplify(z, hook):
    """Scale head (2, 1)'s output so that its value vectors matter next to the other heads."""
    out = z.clone()
    out[:, :, HEAD] *= GAIN
    return out


def _only_key(key: int):
    def fn(pattern, hook):
        out = pattern.clone()
        out[:, HEAD] = 0.0
        out[:, HEAD, :, key] = 1.0
        return out

    return fn


def test_search_finds_a_planted_harmful_sink_and_ranks_it_first(tiny):
    """Construction. Prompts are ``'#' + 7 random letters + ':'`` (equal lengths, no padding).
    User hooks plant a hidden sink in head (2, 1) of the last layer: its pattern becomes
    ``0.9 * e_1 + 0.1 * e_0`` in every query row (key 1 is '#'), and its output is amplified x8.
    Its sink score on key 1 is 0.9 > threshold and 0 on every other non-first key, so ACT on
    that head finds exactly key 1 and, with beta = 0.4, moves the last row to
    ``0.36 * e_1 + 0.64 * e_0``: a point on the segment between "attend to the sink" and "attend
    to <bos>". The gold answer is the letter that moving the head's attention from the sink to
    <bos> raises most (and the other choice the letter it lowers most), measured by switching
    the head's attention entirely to either key, without ACT; calibrating the head moves
    along that same segment, so it raises the gold log-prob (checked on every prompt).
    Every prompt's last-layer input is different, but the head's output is the same mixture of
    the values of '<bos>' and '#', whose prefixes are shared: the harm is the same everywhere.
    """
    rng = random.Random(0)
    texts = ["#" + "".join(rng.choice(LETTERS[:16]) for _ in range(7)) + ":" for _ in range(6)]
    tokens = [tiny.tokenizer(t).input_ids for t in texts]
    name = pattern_hook(LAYER)
    planted = [(name, _plant), (z_hook(LAYER), _amplify)]

    def logprobs(*extra):
        return last_token_logprobs(
            tiny, tokens, hooks=[(name, _plant), *extra, (z_hook(LAYER), _amplify)]
        )

    letter_ids = [tiny.tokenizer(c, add_special_tokens=False).input_ids[0] for c in LETTERS]
    gain = (logprobs((name, _only_key(0))) - logprobs((name, _only_key(1))))[:, letter_ids].mean(0)
    choices = (LETTERS[int(gain.argmax())], LETTERS[int(gain.argmin())])
    prompts = byte_prompts(texts, choices, labels=[0] * len(texts), prefix="planted")
    pair = [letter_ids[int(gain.argmax())], letter_ids[int(gain.argmin())]]

    def gold_over_choices(lp):  # the search metric: log-softmax over the two choices
        return torch.log_softmax(lp[:, pair], dim=-1)[:, 0]

    # The premise: ACT on head (2, 1) alone raises the gold log-prob of every prompt.
    act = act_hooks(HeadSet({LAYER: [HEAD]}), SinkSettings(beta=BETA, threshold=0.1))
    premise = gold_over_choices(logprobs(*act)) - gold_over_choices(logprobs())
    assert (premise > 0.05).all(), premise

    settings = {**SEARCH, "settings": SinkSettings(beta=BETA, threshold=0.1)}
    with tiny.hooks(fwd_hooks=planted):
        found = search_heads(tiny, prompts, validation=prompts, **settings).head_set
        screened = search_heads(
            tiny, prompts, **{**settings, "config": dataclasses.replace(CONFIG, screen=3)}
        ).head_set
    assert n_hooks(tiny) == 0
    ranked = sorted(_scores(found).items(), key=lambda kv: -kv[1])
    assert (LAYER, HEAD) in found
    assert ranked[0][0] == f"{LAYER}.{HEAD}" and ranked[0][1] > 0.05
    assert ranked[0][1] == pytest.approx(float(premise.mean()), abs=1e-4)
    val = found.provenance["validation"]
    assert val["calibrated"]["choice_logprob"] > val["baseline"]["choice_logprob"]
    # Screening ranks the planted head first as well, and the exact pass keeps it.
    assert next(iter(screened.provenance["screening"])) == f"{LAYER}.{HEAD}"
    assert (LAYER, HEAD) in screened

    # Without the planted sink (same amplification) the head's calibration helps far less.
    with tiny.hooks(fwd_hooks=[(z_hook(LAYER), _amplify)]):
        unplanted = search_heads(tiny, prompts, **{**settings, "layers": [LAYER]}).head_set
    assert _scores(unplanted)[f"{LAYER}.{HEAD}"] < 0.6 * ranked[0][1]


# --- inputs ------------------------------------------------------------------------------------


def test_calibration_mix_is_seeded_zero_shot_and_validated():
    a = calibration_mix({"reviews": 1.0}, 12, seed=3)
    assert [p.uid for p in a] == [p.uid for p in calibration_mix(["reviews"], 12, seed=3)]
    assert len(a) == 12 and len({p.uid for p in a}) == 12
    assert all(p.uid.startswith("reviews:train:") and p.text.count("Sentiment:") == 1 for p in a)
    assert [p.uid for p in a] != [p.uid for p in calibration_mix(["reviews"], 12, seed=4)]
    one_shot = calibration_mix(["reviews"], 3, seed=3, shots=1)
    assert all(p.text.count("Sentiment:") == 2 for p in one_shot)
    with pytest.raises(ConfigError):
        calibration_mix(["reviews"], 0)
    with pytest.raises(ConfigError):
        calibration_mix({"reviews": 0.0}, 4)


def test_search_refuses_an_unknown_metric(tiny, prompts):
    with pytest.raises(ConfigError, match="metric must be one of"):
        search_heads(tiny, prompts, metric="loss", layers=[0, 1, 2])
    with pytest.raises(ConfigError, match="renamed 'vocab_logprob'"):
        SearchConfig(metric="gold_logprob")


# --- the result and the spellings of earlier releases ------------------------------------------


def test_the_result_is_typed_and_the_head_set_spelling_still_works_with_a_warning(tiny, prompts):
    result = search_heads(tiny, prompts, **SEARCH)
    assert isinstance(result, SearchResult) and isinstance(result.effects, HeadEffects)
    assert set(result.timings) == {"screen", "effects", "curve", "total"}
    assert all(t >= 0 for t in result.timings.values())
    assert result.timings["total"] >= result.timings["effects"]
    assert result.curve == result.head_set.provenance.get("curve", [])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.head_set = HeadSet({})  # type: ignore[misc]
    # the result as the HeadSet it used to be: works, and says to write .head_set
    for spelling in (lambda r: r.heads, lambda r: r.provenance, lambda r: r.summary(), len, list):
        with pytest.warns(DeprecationWarning, match=r"\.head_set"):
            old = spelling(result)
        assert old == spelling(result.head_set)
    with pytest.raises(AttributeError):
        result.no_such_thing  # noqa: B018


def test_effects_out_and_loose_keywords_still_work_with_a_warning(tiny, prompts):
    new = search_heads(tiny, prompts, **SEARCH)
    effects: list = []
    with pytest.warns(DeprecationWarning, match=r"\.effects"):
        old = search_heads(
            tiny, prompts, layers=[0, 1, 2], config=CONFIG, effects_out=effects,
            selection=Selection("threshold"), settings=SinkSettings(beta=BETA, threshold=THRESHOLD),
        )  # fmt: skip
    assert len(effects) == 1
    torch.testing.assert_close(effects[0].effects, new.effects.effects, equal_nan=True)
    assert old.head_set.heads == new.head_set.heads
    with pytest.warns(DeprecationWarning, match=r"settings=SinkSettings\(beta=0.4"):
        loose = search_heads(tiny, prompts, layers=[0, 1, 2], config=CONFIG, select="threshold",
                             beta=BETA, threshold=THRESHOLD)  # fmt: skip
    assert loose.head_set.heads == new.head_set.heads
    # an object and a loose keyword for the same thing: an error, never one silently ignored
    with pytest.raises(ConfigError, match="beside settings"):
        search_heads(tiny, prompts, **{**SEARCH, "beta": 0.3})
    with pytest.raises(ConfigError, match="inside selection="):
        search_heads(tiny, prompts, **{**SEARCH, "top_k": 2})
    with pytest.raises(ConfigError, match="inside config="):
        search_heads(tiny, prompts, **{**SEARCH, "checkpoint": "x.ckpt"})

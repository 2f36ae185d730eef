"""The search's no-harm rule, its Ray workers and its precision, on a tiny random Llama."""

import contextlib
from dataclasses import replace

import pytest
import torch

import act_lens.analysis.search as search_mod
import act_lens.analysis.selection as selection_mod
import act_lens.analysis.units
from act_lens import load_model
from act_lens.analysis.search import search_heads
from act_lens.analysis.search_config import SearchConfig
from act_lens.core.settings import SinkSettings
from act_lens.errors import ConfigError
from act_lens.hooks.names import pattern_hook
from act_lens.runtime import pool as pool_mod
from act_lens.runtime.pool import WorkerPool
from act_lens.runtime.precision import precision_context
from tests.helpers import byte_prompts, n_hooks

TEXTS = [f"{w} is here:" for w in ("cat", "dog", "owl", "ant", "bee", "elk", "fox", "gnu")]
KW = dict(layers=[0, 1, 2], settings=SinkSettings(threshold=0.05))


@pytest.fixture(scope="module")
def model():
    return load_model("tiny-random")  # records how it was loaded: workers load their own copy


@pytest.fixture(scope="module")
def prompts():
    return byte_prompts(TEXTS, labels=[i % 2 for i in range(len(TEXTS))])


def _effects(hs):
    return {k: v["effect"] for k, v in hs.provenance["per_head"].items()}


# --- the no-harm rule ------------------------------------------------------------------------


def test_a_rising_log_prob_without_an_accuracy_gain_gives_no_heads(model, prompts, monkeypatch):
    """Planted: every added head raises the validation choice log-prob, while accuracy stays
    exactly where it was (the SST-5 failure of a log-prob criterion): the search returns the
    empty set and records why."""
    real = selection_mod.curve_values

    def planted(model, order, sizes, prompts, **kw):
        out = real(model, order, sizes, prompts, **kw)
        base_acc = real(model, order, [0], prompts, **kw)[0]["accuracy"]
        for k, values in zip(sizes, out, strict=True):
            values["choice_logprob"] = values["choice_logprob"] * 0 - 1.0 + 0.05 * k
            values["accuracy"] = base_acc.clone()
        return out

    monkeypatch.setattr(selection_mod, "curve_values", planted)
    hs = search_heads(model, prompts, config=SearchConfig(workers=1, progress=False), **KW).head_set
    prov = hs.provenance
    curve = prov["curve"]
    assert len(curve) > 2 and curve[-1]["choice_logprob"] > curve[0]["choice_logprob"]
    assert len(hs) == 0 and prov["selected_size"] == 0
    assert "no heads" in prov["decision"]["reason"] and not any(r["eligible"] for r in curve)
    assert "decision: no heads" in hs.summary()


def test_a_real_accuracy_gain_is_kept_with_its_evidence(model, prompts, monkeypatch):
    """Planted the other way: the largest size fixes every validation prompt the baseline got
    wrong and breaks none: that size is chosen, with its gain and lower bound recorded."""
    real = selection_mod.curve_values

    def planted(model, order, sizes, prompts, **kw):
        out = real(model, order, sizes, prompts, **kw)
        n = len(prompts)
        for k, values in zip(sizes, out, strict=True):
            values["accuracy"] = torch.tensor([1.0 if (k and i < n) else float(i % 4 == 0)
                                               for i in range(n)])  # fmt: skip
        return out

    monkeypatch.setattr(selection_mod, "curve_values", planted)
    hs = search_heads(model, prompts * 4, config=SearchConfig(workers=1, progress=False),
                      validation=prompts * 4, **KW).head_set  # fmt: skip
    d = hs.provenance["decision"]
    assert hs.provenance["candidate_order"]  # the tiny model has heads with a positive gain
    assert d["selected_size"] > 0 and d["lower"] > 0 and d["gain"] > 0
    assert len(hs) == d["selected_size"] and "validation accuracy" in d["reason"]


# --- configuration -------------------------------------------------------------------------------


def test_search_options_are_one_object_and_never_silently_ignored(model, prompts):
    with pytest.raises(ConfigError, match="inside config="):
        search_heads(model, prompts, config=SearchConfig(), screen=3, **KW)
    with pytest.raises(ConfigError, match="inside it"):
        search_heads(model, prompts, select=selection_mod.Selection(), top_k=2, **KW)
    with pytest.raises(ConfigError, match="unknown keywords"):
        search_heads(model, prompts, workers=2, **KW)
    with pytest.raises(ConfigError, match="labelled prompts"):
        search_heads(model, ["plain text", "another"], **KW)
    with pytest.raises(Exception, match="precision"):  # ConfigError (beartype in the tests)
        SearchConfig(precision="fp8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="workers"):
        SearchConfig(workers=0)


def test_workers_without_ray_are_refused_with_the_extra(model, prompts, monkeypatch):
    monkeypatch.setattr(pool_mod, "ray_available", lambda: False)
    with pytest.raises(ConfigError, match=r"act-lens\[ray\]"):
        search_heads(model, prompts, config=SearchConfig(workers=2, progress=False), **KW)
    # "auto" falls back to in-process where Ray is missing
    assert SearchConfig().n_workers(10**6, True) == 1


def test_a_model_built_in_memory_runs_in_process_or_is_refused(tiny, prompts):
    assert SearchConfig().n_workers(10**6, hasattr(tiny, "act_lens_load")) == 1
    with pytest.raises(ConfigError, match="built in memory"):
        WorkerPool(tiny, 2)


# --- precision -----------------------------------------------------------------------------------


def test_bf16_runs_only_when_asked_and_stays_finite_under_padding(model, prompts, monkeypatch):
    seen: list[bool] = []

    def spy(pattern, hook):
        seen.append(torch.is_autocast_enabled("cpu"))
        return pattern

    real_run = pool_mod._run

    def spied(model, fn, unit, precision):
        with model.hooks(fwd_hooks=[(pattern_hook(0), spy)]):
            return real_run(model, fn, unit, precision)

    monkeypatch.setattr(pool_mod, "_run", spied)
    for precision in ("fp32", "bf16"):
        seen.clear()
        hs = search_heads(model, prompts, config=SearchConfig(workers=1, progress=False,
                          precision=precision), **KW).head_set  # fmt: skip
        assert seen and set(seen) == {precision == "bf16"}
        assert all(v["effect"] == v["effect"] for v in hs.provenance["per_head"].values())
        assert hs.provenance["search"]["precision"] == precision
    assert n_hooks(model) == 0
    # left padding: bf16 log-probs stay finite, and close to fp32
    from act_lens.evaluation.scoring import last_token_logprobs

    tokens = [[1, 5, 6, 7, 8, 9], [1, 5, 6]]
    fp32 = last_token_logprobs(model, tokens)
    with precision_context("bf16", model):
        bf16 = last_token_logprobs(model, tokens)
    assert torch.isfinite(bf16).all() and (bf16 - fp32).abs().max() < 0.1
    assert n_hooks(model) == 0


# --- Ray workers (one local Ray instance for the module) -----------------------------------------


@pytest.fixture(scope="module")
def pool(model):
    pytest.importorskip("ray")
    with WorkerPool(model, 2) as p:
        yield p


def _search_on(pool, model, prompts, monkeypatch):
    import contextlib

    @contextlib.contextmanager
    def given(*args, **kwargs):
        yield pool

    monkeypatch.setattr(search_mod, "use_pool", given)
    return search_heads(
        model, prompts, config=SearchConfig(workers=2, progress=False), **KW
    ).head_set


def test_two_ray_workers_find_the_serial_head_set(model, prompts, pool, monkeypatch):
    monkeypatch.setattr(act_lens.analysis.units, "LAYERS_PER_UNIT", 1)  # 3 units to share
    serial = search_heads(
        model, prompts, config=SearchConfig(workers=1, progress=False), **KW
    ).head_set
    parallel = _search_on(pool, model, prompts, monkeypatch)
    assert parallel.heads == serial.heads
    assert _effects(parallel) == pytest.approx(_effects(serial), abs=1e-5)
    for a, b in zip(parallel.provenance["curve"], serial.provenance["curve"], strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def test_halving_on_two_ray_workers_runs_the_serial_rounds(model, prompts, pool, monkeypatch):
    from act_lens.analysis.halving import Halving

    monkeypatch.setattr(act_lens.analysis.units, "LAYERS_PER_UNIT", 1)
    sched = Halving(first=4, growth=2.0, keep=0.5, z=0.5, min_heads=2)
    config = SearchConfig(progress=False, schedule="halving", halving=sched)
    kw = dict(validation=prompts, **KW)
    serial = search_heads(model, prompts * 2, config=replace(config, workers=1), **kw).head_set
    calls = []
    real_map = WorkerPool.map

    def counted(self, fn, units, **k):
        if fn.endswith(":head_effects"):  # the rounds (the validation curve runs there too)
            calls.append(len(units))
        return real_map(self, fn, units, **k)

    monkeypatch.setattr(WorkerPool, "map", counted)
    monkeypatch.setattr(
        search_mod, "use_pool", contextlib.contextmanager(lambda *a, **k: (yield pool))
    )
    parallel = search_heads(model, prompts * 2, config=replace(config, workers=2), **kw).head_set
    rounds = parallel.provenance["rounds"]
    assert len(rounds) >= 2 and len(calls) == len(rounds)  # every round ran on the actors
    assert parallel.provenance["workers"] == 2
    assert [{k: v for k, v in r.items() if k != "cutoff"} for r in rounds] == [
        {k: v for k, v in r.items() if k != "cutoff"} for r in serial.provenance["rounds"]
    ]
    assert [r["cutoff"] for r in rounds] == pytest.approx(
        [r["cutoff"] for r in serial.provenance["rounds"]], abs=1e-5
    )
    assert parallel.heads == serial.heads
    assert _effects(parallel) == pytest.approx(_effects(serial), abs=1e-5)
    # the actors' start is timed apart from the screen, and only where there are actors
    assert set(parallel.provenance["timings"]) == {
        "workers_s", "screen_s", "effects_s", "curve_s", "total_s"}  # fmt: skip
    assert "workers_s" not in serial.provenance["timings"]


def test_a_killed_worker_loses_nothing(model, prompts, pool, monkeypatch):
    import ray

    monkeypatch.setattr(act_lens.analysis.units, "LAYERS_PER_UNIT", 1)
    serial = search_heads(
        model, prompts, config=SearchConfig(workers=1, progress=False), **KW
    ).head_set
    real_map, killed = WorkerPool.map, []

    def map_and_kill(self, fn, units, **kw):
        on_result = kw.pop("on_result", None)

        def callback(i, value):
            if not killed and fn.endswith(":head_effects"):
                ray.kill(self.actors[0])  # after its first unit: the next one it gets dies
                killed.append(i)
            if on_result is not None:
                on_result(i, value)

        return real_map(self, fn, units, on_result=callback, **kw)

    monkeypatch.setattr(WorkerPool, "map", map_and_kill)
    before = pool.replaced
    parallel = _search_on(pool, model, prompts, monkeypatch)
    assert killed and pool.replaced > before
    assert parallel.heads == serial.heads
    assert _effects(parallel) == pytest.approx(_effects(serial), abs=1e-5)


# --- evaluation on the workers -------------------------------------------------------------------


def test_an_evaluation_on_workers_is_the_serial_one(model, pool, monkeypatch):
    """Same examples, same batches (units of whole serial batches), merged in order: the same
    predictions and scores, with and without an intervention, first-token and full scoring."""
    import act_lens.evaluation.units as eval_units
    from act_lens import evaluate
    from act_lens.hooks.act import ActConfig
    from act_lens.hooks.headset import HeadSet
    from act_lens.runtime.pool import open_pool, pool_scope, use_pool
    from act_lens.runtime.precision import kernels

    monkeypatch.setattr(eval_units, "BATCHES_PER_UNIT", 2)  # several units from 40 examples
    act = ActConfig(HeadSet({1: [0, 1], 2: [3]}), SinkSettings(threshold=0.05))
    for scoring, intervention in (("first_token", None), ("first_token", act), ("full", act)):
        kw = dict(limit=40, batch_size=4, progress=False, scoring=scoring)
        serial = evaluate(model, "reviews", intervention, **kw)
        parallel = evaluate(model, "reviews", intervention, workers=pool, **kw)
        assert parallel.uids == serial.uids and parallel.predictions == serial.predictions
        flat = [x for row in serial.scores for x in row]
        assert [x for row in parallel.scores for x in row] == pytest.approx(flat, abs=1e-4)
    # the kernels recorded are the actors' own: here this machine's; elsewhere theirs
    assert parallel.info["numerics"]["kernels"] == pool.kernels() == kernels("cpu")
    monkeypatch.setattr(pool, "_kernels", "torch 9.9, a worker machine")
    remote = evaluate(model, "reviews", limit=8, progress=False, workers=pool)
    assert remote.info["numerics"]["kernels"] == "torch 9.9, a worker machine"

    # a shared pool is reused by every job on its model asking for as many workers
    def no_new_pool(*args, **kwargs):
        raise AssertionError("a new pool was started")

    monkeypatch.setattr(WorkerPool, "__init__", no_new_pool)
    assert open_pool(model) is None
    with pool_scope(model, pool):
        with use_pool(model, 2) as got:
            assert got is pool and open_pool(model) is pool
        auto = evaluate(model, "reviews", limit=8, progress=False, workers="auto")
        assert auto.predictions == evaluate(model, "reviews", limit=8, progress=False).predictions
    assert pool_mod._SCOPES == [] and pool.actors  # left open: its owner closes it
    with pytest.raises(ConfigError, match="workers"):
        evaluate(model, "reviews", limit=8, workers=0)


def test_a_pool_scope_keeps_the_first_jobs_workers_for_the_next_ones(model, monkeypatch):
    """Without Ray: stand-in pools record their starts and closes."""
    from act_lens.runtime.pool import open_pool, pool_scope, use_pool

    events: list[str] = []

    def start(self, model, n, *, ray_address=None):
        self.n, self.actors = n, ["a"] * n
        events.append(f"start {n}")

    def close(self):
        self.actors = []
        events.append(f"close {self.n}")

    monkeypatch.setattr(WorkerPool, "__init__", start)
    monkeypatch.setattr(WorkerPool, "close", close)
    with use_pool(model, 2):  # no scope: a job's pool is closed after it
        pass
    assert events == ["start 2", "close 2"]
    events.clear()
    with pool_scope(model) as none_yet:
        assert none_yet is None and open_pool(model) is None
        with use_pool(model, 2) as first:  # the search starts it ...
            pass
        with use_pool(model, 2) as second, use_pool(model, 1) as serial:
            assert second is first and serial is None  # ... the next jobs reuse it
        assert open_pool(model) is first and open_pool(object()) is None
        assert events == ["start 2"]
    assert events == ["start 2", "close 2"] and open_pool(model) is None

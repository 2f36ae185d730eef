"""act_lens on CUDA gives the CPU's results (tiny random Llama); every test skips without CUDA.

Each test makes one call on the CPU tiny model (the ``tiny`` fixture) and on the same model on
CUDA (``tiny_model`` draws its weights on the CPU, then moves them) and compares: floats within
float32 tolerance, discrete outcomes (sink sets, predictions, generated tokens, chosen heads)
exactly, and every result must come back on the CPU, so that saving and JSON work. Inputs and
thresholds are chosen so that, on the CPU, no sink score lies within 8e-5 of its threshold, no
two choice scores within 8e-4 and no greedy step's two best logits within 3e-3; float32
rounding moves these sink scores by about 1e-7 (measured against float64 on the CPU), so a
device's different rounding cannot flip a discrete outcome.

Run them with ``pytest -m gpu`` on a machine with a CUDA device.
"""

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from act_lens.analysis.ablation import head_effects, head_effects_naive
from act_lens.analysis.census import SinkCensus, sink_census
from act_lens.analysis.effects import HeadEffects
from act_lens.analysis.screening import screen_heads, screen_zerotuning
from act_lens.app.cli import main
from act_lens.core.settings import SinkSettings
from act_lens.errors import ModelLoadError
from act_lens.evaluation.evaluate import EvalResult, evaluate
from act_lens.evaluation.generate import generate
from act_lens.evaluation.scoring import continuation_scores, last_token_logprobs
from act_lens.hooks.act import ActConfig
from act_lens.hooks.check import check_pattern_editable
from act_lens.hooks.headset import HeadSet, model_fingerprint
from act_lens.hooks.interventions import Compose, calibrated
from act_lens.hooks.recorder import SinkRecorder
from act_lens.hooks.zerotuning import ZeroTuningConfig, zerotuning_strategy
from act_lens.models.loading import load_model
from act_lens.models.tiny import tiny_model
from act_lens.runtime.options import RunOptions
from tests.helpers import byte_prompts, n_hooks

DEVICE = "cuda"
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device (torch.cuda.is_available() is False)",
    ),
]

TOL = {"atol": 1e-4, "rtol": 1e-4}
HS = HeadSet({1: [0, 2], 2: [1]})
# Different lengths, so batches of 3 are left-padded; 4 prompts make a last batch of 1.
TEXTS = [
    "The cat sat on the mat. It was:",
    "Dogs bark:",
    "A quick brown fox jumps over:",
    "Hi, friend:",
]
CENSUS_TEXTS = [
    "The cat sat on the mat. It was warm,\nand quiet.",
    "Dogs bark: loudly!",
    "A quick brown fox; jumps (over) the dog.",
    "Hi, friend: how are you?",
]
PROMPT = "The cat sat on the mat. It was"
TINY = ["--model", "tiny-random", "--task", "reviews", "--batch-size", "4"]


@pytest.fixture(scope="module")
def gpu():
    """The ``tiny`` fixture's model on CUDA."""
    return tiny_model(device=DEVICE)


@pytest.fixture(scope="module")
def prompts():
    return byte_prompts(TEXTS)


def _on_cpu(t: torch.Tensor) -> torch.Tensor:
    assert t.device.type == "cpu", "results come back on the CPU"
    return t


def _same_tensors(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(_on_cpu(got[key]), want[key], equal_nan=True, **TOL)


def _same_effects(got: HeadEffects, want: HeadEffects) -> None:
    for name in ("strategy", "layers", "heads", "uids"):
        assert getattr(got, name) == getattr(want, name), name
    for field in ("effects", "stderr", "per_example", "baseline"):
        _same_tensors(getattr(got, field), getattr(want, field))
    # accuracy is discrete: equal (NaN where a head was not evaluated), not close
    acc_got, acc_want = got.per_example["accuracy"], want.per_example["accuracy"]
    assert torch.equal(acc_got.isnan(), acc_want.isnan())
    assert torch.equal(acc_got.nan_to_num(), acc_want.nan_to_num())


def test_load_model_puts_the_tiny_model_on_cuda_with_the_cpu_weights(tiny):
    model = load_model("tiny-random", device=DEVICE)
    assert model.cfg.device == DEVICE
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    cpu = dict(tiny.named_parameters())
    for name, param in model.named_parameters():
        assert torch.equal(param.cpu(), cpu[name]), name
    # a head set made on the CPU fits the CUDA model (and the other way round)
    assert model_fingerprint(model) == model_fingerprint(tiny)
    # TransformerLens records a torch.device by its type; act_lens keeps the index
    assert tiny_model(device=torch.device("cuda", 0)).cfg.device == "cuda:0"
    with pytest.raises(ModelLoadError, match="CUDA device"):
        load_model("tiny-random", device=f"cuda:{torch.cuda.device_count()}")


def test_logits_and_the_pattern_check_match(tiny, gpu):
    toks = torch.tensor([tiny.tokenizer(TEXTS[0]).input_ids])
    with torch.inference_mode():
        want = tiny(toks)
        got = gpu(toks.to(DEVICE))
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, **TOL)
    assert check_pattern_editable(gpu).ok


def _intervention(name: str) -> Any:
    act = ActConfig(HS, SinkSettings(threshold=0.05))
    zt = ZeroTuningConfig(HS, gamma=0.3)
    return {"none": (), "act": act, "zerotuning": zt, "compose": Compose(act, zt)}[name]


@pytest.mark.parametrize("scoring", ["first_token", "full"])
@pytest.mark.parametrize("name", ["none", "act", "zerotuning", "compose"])
def test_evaluate_matches(tiny, gpu, tmp_path, scoring, name):
    kw: dict[str, Any] = {"limit": 8, "batch_size": 3, "scoring": scoring, "progress": False}
    want = evaluate(tiny, "reviews", intervention=_intervention(name), **kw)
    got = evaluate(gpu, "reviews", intervention=_intervention(name), **kw)
    assert got.uids == want.uids and got.predictions == want.predictions
    assert got.accuracy_norm == want.accuracy_norm
    torch.testing.assert_close(torch.tensor(got.scores), torch.tensor(want.scores), **TOL)
    if name != "none":  # the intervention changes the scores, so the comparison means something
        assert want.scores != evaluate(tiny, "reviews", **kw).scores
    assert EvalResult.load(got.save(tmp_path / "result.json")).scores == got.scores
    assert n_hooks(gpu) == 0


def test_scoring_functions_return_cpu_tensors(tiny, gpu):
    ids = [tiny.tokenizer(t).input_ids for t in TEXTS]
    conts = [tiny.tokenizer(" ok", add_special_tokens=False).input_ids] * len(ids)
    wants = []
    for hooks in (None, ActConfig(HS, SinkSettings(threshold=0.2))):
        got = last_token_logprobs(gpu, ids, hooks=hooks, batch_size=3)
        want = last_token_logprobs(tiny, ids, hooks=hooks, batch_size=3)
        torch.testing.assert_close(_on_cpu(got), want, **TOL)
        got_c = continuation_scores(gpu, ids, conts, hooks=hooks, batch_size=3)
        want_c = continuation_scores(tiny, ids, conts, hooks=hooks, batch_size=3)
        torch.testing.assert_close(_on_cpu(got_c.logprobs), want_c.logprobs, **TOL)
        assert torch.equal(_on_cpu(got_c.greedy), want_c.greedy)
        wants.append(want)
    assert (wants[1] - wants[0]).abs().max() > 1e-4  # ACT changes the scores


def test_calibrated_block_and_recorder_match(tiny, gpu):
    toks = torch.tensor([tiny.tokenizer(CENSUS_TEXTS[0]).input_ids])
    out = {}
    for model in (tiny, gpu):
        rec = SinkRecorder([0, 1, 2], keep_patterns={1: None})
        with torch.inference_mode(), calibrated(model, HS):
            logits = model.run_with_hooks(toks.to(model.cfg.device), fwd_hooks=rec.hooks())
        out[model.cfg.device] = (logits.cpu(), rec.records)
        assert n_hooks(model) == 0
    (want, want_rec), (got, got_rec) = out["cpu"], out[DEVICE]
    torch.testing.assert_close(got, want, **TOL)
    for layer in (0, 1, 2):
        g, w = got_rec[layer][0], want_rec[layer][0]
        assert torch.equal(_on_cpu(g.sinks), w.sinks)
        for name in ("scores", "first_mass", "hidden_mass", "entropy"):
            torch.testing.assert_close(_on_cpu(getattr(g, name)), getattr(w, name), **TOL)
    torch.testing.assert_close(_on_cpu(got_rec[1][0].pattern), want_rec[1][0].pattern, **TOL)


STRATEGIES = ["act", "zero_sinks", "head_off", "mean_head", zerotuning_strategy(2.0)]


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: getattr(s, "name", s))
def test_head_effects_match(tiny, gpu, prompts, tmp_path, strategy):
    kw: dict[str, Any] = {"strategy": strategy, "run": RunOptions(batch_size=3, progress=False)}
    want = head_effects(tiny, prompts, **kw)
    got = head_effects(gpu, prompts, **kw)
    _same_effects(got, want)
    assert want.effects["choice_logprob"].abs().max() > 1e-3  # the ablations act
    _same_effects(HeadEffects.load(got.save(tmp_path / "effects.pt")), want)
    assert n_hooks(gpu) == 0


def test_head_effects_of_chosen_heads_match(tiny, gpu, prompts):
    kw: dict[str, Any] = {"heads": {1: [0, 3], 2: [2]}, "run": RunOptions(3, progress=False)}
    _same_effects(head_effects(gpu, prompts, **kw), head_effects(tiny, prompts, **kw))


@pytest.mark.parametrize("strategy", ["act", "mean_head"])
def test_naive_loop_matches(tiny, gpu, prompts, strategy):
    # mean_head: the naive loop keeps the mean z on the CPU and indexes it by CUDA heads
    kw: dict[str, Any] = {"strategy": strategy, "layers": [1, 2], "progress": False}
    got = head_effects_naive(gpu, prompts, **kw)
    _same_effects(got, head_effects_naive(tiny, prompts, **kw))
    engine = head_effects(gpu, prompts, strategy=strategy, layers=[1, 2],
                          run=RunOptions(batch_size=3, progress=False))  # fmt: skip
    _same_tensors(got.per_example, engine.per_example)


def test_screening_matches(tiny, gpu, prompts):
    batches = {
        screen_heads: {"run": RunOptions(batch_size=3)},
        screen_zerotuning: {"batch_size": 3},
    }
    for screen, batch in batches.items():
        want = screen(tiny, prompts, layers=[0, 1, 2], **batch)
        got = screen(gpu, prompts, layers=[0, 1, 2], **batch)
        assert want.abs().max() > 1e-4
        torch.testing.assert_close(_on_cpu(got), want, atol=1e-5, rtol=1e-3)
    assert n_hooks(gpu) == 0


def test_sink_census_matches(tiny, gpu, tmp_path):
    want = sink_census(tiny, CENSUS_TEXTS, batch_size=3, progress=False)
    got = sink_census(gpu, CENSUS_TEXTS, batch_size=3, progress=False)
    assert sum(want.class_totals().values()) > 0  # there are hidden sinks to count
    assert torch.equal(_on_cpu(got.class_counts), want.class_counts)
    assert got.top_tokens == want.top_tokens
    for name in ("hidden_sink_freq", "first_mass", "hidden_mass", "entropy"):
        torch.testing.assert_close(_on_cpu(getattr(got, name)), getattr(want, name), **TOL)
    assert got.example["sinks"] == want.example["sinks"]
    for name in ("head_mean_patterns", "scores"):
        torch.testing.assert_close(
            torch.tensor(got.example[name]), torch.tensor(want.example[name]), **TOL
        )
    loaded = SinkCensus.load(got.save(tmp_path / "census.json"))
    assert torch.equal(loaded.class_counts, want.class_counts)


@pytest.mark.parametrize("policy", ["prompt", "prompt+new"])
def test_generate_matches(tiny, gpu, policy):
    kw: dict[str, Any] = {"max_new_tokens": 8, "policy": policy, "stop_at_eos": False}
    for head_set in (None, HS, ZeroTuningConfig(HS, gamma=0.3)):
        assert generate(gpu, PROMPT, head_set, **kw) == generate(tiny, PROMPT, head_set, **kw)
    # ACT changes the greedy continuation, so the comparison means something
    assert generate(tiny, PROMPT, HS, **kw).new_tokens != generate(tiny, PROMPT, **kw).new_tokens
    assert n_hooks(gpu) == 0


def test_lm_eval_adapter_loads_on_cuda_and_matches():
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance

    from act_lens.integrations.lm_eval import ActLensLM

    pairs = [("The cat sat on the mat. It was", " warm"), ("Dogs bark:", " loudly")]
    requests = [Instance("loglikelihood", {}, pair, 0) for pair in pairs]
    out = {}
    for device in ("cpu", DEVICE):
        lm = ActLensLM.create_from_arg_string(
            "model=tiny-random", {"device": device, "batch_size": 2, "max_batch_size": None}
        )
        assert str(lm.device) == device
        out[device] = lm.loglikelihood(requests, disable_tqdm=True)
    assert [g for _, g in out[DEVICE]] == [g for _, g in out["cpu"]]
    torch.testing.assert_close(
        torch.tensor([lp for lp, _ in out[DEVICE]]),
        torch.tensor([lp for lp, _ in out["cpu"]]),
        **TOL,
    )


def _same_json(got: Any, want: Any, where: str = "") -> None:
    """Equal JSON values, floats within tolerance."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            _same_json(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same_json(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert got == pytest.approx(want, abs=1e-4, rel=1e-4, nan_ok=True), where
    else:
        assert got == want, where


def _outputs(folder: Path) -> dict[str, Any]:
    """Every JSON file a command wrote (config.json and provenance.json name the device and
    the folder: left out)."""
    out = {}
    for path in sorted(folder.rglob("*.json")):
        if path.name in ("config.json", "provenance.json"):
            continue
        data = json.loads(path.read_text())
        if path.name.startswith("head_set"):
            data["provenance"].pop("created", None)
            # checkpoint paths name the output folder, which differs
            data["provenance"].pop("checkpoint", None)
        out[str(path.relative_to(folder))] = data
    return out


# The byte tokenizer gives both review labels the first token " ", so the search ranks heads
# by that token's log-probability (choice_logprob is the same for every head); at threshold
# 0.045 the two best heads gain 0.0026 and 0.0016, the third 0.0006.
SEARCH = ["--calib-size", "6", "--layers", "0-2", "--threshold", "0.045", "--metric",
          "vocab_logprob", "--select", "top_k", "--top-k", "2"]  # fmt: skip
CLI_ARGS = {
    "sinks": ["--limit", "8"],
    "search": SEARCH,
    "eval": ["--limit", "6"],
    "run": [*SEARCH, "--limit", "6"],
}


@pytest.mark.parametrize("command", ["sinks", "search", "eval", "run"])
def test_cli_device_cuda_matches_cpu(tmp_path, monkeypatch, command):
    import act_lens.models.loading as loading

    loaded_on = []
    load = loading.load_model

    def recording_load(*args: Any, **kwargs: Any) -> Any:
        model = load(*args, **kwargs)
        loaded_on.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(loading, "load_model", recording_load)
    extra = list(CLI_ARGS[command])
    if command == "eval":
        extra += ["--head-set", str(HS.save(tmp_path / "head_set.json"))]
    outputs = {}
    for device in ("cpu", DEVICE):
        out = tmp_path / device
        assert main([command, *TINY, *extra, "--device", device, "--out", str(out)]) == 0
        outputs[device] = _outputs(out)
        assert json.loads((out / "config.json").read_text())["device"] == device
    assert loaded_on == ["cpu", "cuda"]  # the command loaded its model where --device said
    assert outputs["cpu"], f"{command} wrote no JSON results"
    if command in ("search", "run"):  # a set was found, so its comparison means something
        assert outputs["cpu"]["head_set.json"]["heads"]
    _same_json(outputs[DEVICE], outputs["cpu"])

"""Scoring and evaluation: planted logits (exact values), batching, results, comparisons."""

import warnings
from types import SimpleNamespace

import pytest
import torch

from act_lens.errors import ShapeError
from act_lens.evaluation.evaluate import EvalResult, compare, evaluate, subsample
from act_lens.evaluation.scoring import (
    continuation_logprobs,
    continuation_scores,
    first_token_ids,
    last_token_logprobs,
)
from act_lens.evaluation.tasks import get_task
from act_lens.hooks.names import final_norm_in_hook
from act_lens.models.tiny import byte_tokenizer


class PlantedModel:
    """Next-token logits depend only on the current token: ``logits[b, t] = table[tokens[b, t]]``."""

    def __init__(self, seed: int = 0):
        self.tokenizer = byte_tokenizer()
        vocab = len(self.tokenizer)
        self.table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(seed)) * 3
        self.cfg = SimpleNamespace(device="cpu", model_name="planted", d_vocab=vocab)
        self.calls = 0

    def run_with_hooks(self, tokens, attention_mask=None, fwd_hooks=()):
        self.calls += 1
        out = self.table[tokens]
        for name, fn in fwd_hooks:
            if name == final_norm_in_hook():
                out = fn(out, hook=None)
        return out


def _ids(tok, text):
    return tok(text).input_ids


def test_last_token_logprobs_are_the_planted_distribution():
    model = PlantedModel()
    texts = ["ab", "hello world", "x"]
    ids = [_ids(model.tokenizer, t) for t in texts]
    lp = last_token_logprobs(model, ids, batch_size=2)
    for row, seq in enumerate(ids):
        ref = torch.log_softmax(model.table[seq[-1]], -1)
        assert torch.allclose(lp[row], ref, atol=1e-6)


def test_continuation_logprobs_match_manual_sum_and_batching():
    model = PlantedModel(seed=1)
    tok = model.tokenizer
    contexts = [_ids(tok, "Q: what?"), _ids(tok, "A much longer context here:"), _ids(tok, "x")]
    conts = [
        tok(" yes", add_special_tokens=False).input_ids,
        tok(" no", add_special_tokens=False).input_ids,
        tok(" maybe so", add_special_tokens=False).input_ids,
    ]
    manual = []
    for c, k in zip(contexts, conts, strict=True):
        seq = c + k
        total = 0.0
        for pos in range(len(c), len(seq)):
            total += float(torch.log_softmax(model.table[seq[pos - 1]], -1)[seq[pos]])
        manual.append(total)
    for bs in (1, 3):
        got = continuation_logprobs(model, contexts, conts, batch_size=bs)
        assert torch.allclose(got, torch.tensor(manual), atol=1e-4)


def test_continuation_scores_flag_greedy_continuations_exactly():
    model = PlantedModel(seed=2)
    ctx = _ids(model.tokenizer, "Q:")
    greedy, tok = [], ctx[-1]
    for _ in range(3):  # planted logits: the argmax chain from the last context token
        tok = int(model.table[tok].argmax())
        greedy.append(tok)
    other = [*greedy[:2], (greedy[2] + 1) % model.table.shape[0]]
    for bs in (1, 2):
        got = continuation_scores(
            model, [ctx, ctx, ctx], [greedy, other, greedy[:1]], batch_size=bs
        )
        assert got.greedy.tolist() == [True, False, True]
        ref = continuation_logprobs(
            model, [ctx, ctx, ctx], [greedy, other, greedy[:1]], batch_size=bs
        )
        assert torch.equal(got.logprobs, ref)


def test_first_token_ids_warn_on_shared_first_token():
    tok = byte_tokenizer()
    with pytest.warns(UserWarning, match="share a first token"):
        first_token_ids(tok, [" negative", " positive"])  # bytes: both start with " "
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert first_token_ids(tok, ["A", "B"]) == [
            tok("A", add_special_tokens=False).input_ids[0],
            tok("B", add_special_tokens=False).input_ids[0],
        ]


def _result(preds, labels, uids=None, meta=()):
    n = len(preds)
    return EvalResult(
        task="t",
        split="eval",
        model="m",
        shots=0,
        seed=0,
        scoring="first_token",
        uids=tuple(uids or (f"t:eval:{i}" for i in range(n))),
        labels=tuple(labels),
        predictions=tuple(preds),
        scores=tuple((0.0, 1.0) for _ in range(n)),
        interval=(0.0, 1.0),
        meta=tuple(meta),
    )


def test_result_round_trip_csv_and_meta(tmp_path):
    r = _result(
        [0, 1, 1, 0],
        [0, 1, 0, 0],
        meta=[{"subject": "a"}, {"subject": "a"}, {"subject": "b"}, {"subject": "b"}],
    )
    assert r.accuracy == 0.75
    path = r.save(tmp_path / "r.json")
    back = EvalResult.load(path)
    assert back == r
    assert r.by_meta() == {"a": 1.0, "b": 0.5, "macro": 0.75}
    assert r.to_csv().splitlines()[0].startswith("uid,label,prediction,correct")
    assert r.prediction_rate() == [0.5, 0.5]


def test_compare_requires_same_examples():
    a = _result([0, 1, 1, 0], [0, 1, 0, 0])
    b = _result([0, 1, 0, 0], [0, 1, 0, 0])
    cmp = compare(a, b)
    assert cmp.delta == pytest.approx(0.25) and cmp.flips == {"gained": 1, "lost": 0}
    with pytest.raises(ShapeError, match="example ids differ"):
        compare(a, _result([0, 1, 1], [0, 1, 0]))


def test_results_record_their_numerics_and_compare_warns_on_a_mix(tiny):
    import dataclasses

    from act_lens.errors import ActLensWarning
    from act_lens.runtime.precision import kernels, precision_context

    fp32 = evaluate(tiny, "reviews", limit=6, batch_size=3, progress=False)
    assert fp32.info["numerics"] == {"precision": "fp32", "device": "cpu",
                                     "threads": torch.get_num_threads(), "batch_size": 3,
                                     "kernels": kernels("cpu")}  # fmt: skip
    with precision_context("bf16", tiny):
        bf16 = evaluate(tiny, "reviews", limit=6, batch_size=3, progress=False)
    assert bf16.info["numerics"]["precision"] == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compare(fp32, fp32)  # one setting: silent
        compare(fp32, dataclasses.replace(fp32, info={}))  # a result without a record: silent
    with pytest.warns(ActLensWarning, match="different numerics"):
        compare(fp32, bf16)


def test_numerics_name_the_kernels_so_runs_from_other_hardware_are_not_mixed(tiny, monkeypatch):
    # bf16 scores depend on the kernels (on an AMD EPYC, reviews' baseline was 75.5% with the
    # avx512_bf16 kernels and 74.0% with ONEDNN_MAX_CPU_ISA=AVX2): a run from other hardware
    # or another torch must not pass as one of this setting.
    import dataclasses

    from act_lens.errors import ActLensWarning
    from act_lens.evaluation.evaluate import numerics
    from act_lens.runtime.precision import kernels

    here = kernels("cpu")
    assert (
        here.startswith(f"torch {torch.__version__}, ")
        and torch.backends.cpu.get_cpu_capability() in here
    )
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = numerics(tiny, 3)
    assert capped["kernels"] == here + ", ONEDNN_MAX_CPU_ISA=AVX2"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    run = evaluate(tiny, "reviews", limit=6, batch_size=3, progress=False)
    assert run.info["numerics"]["kernels"] == here
    elsewhere = dataclasses.replace(run, info={**run.info, "numerics": capped})
    with pytest.warns(ActLensWarning, match="different numerics"):
        compare(run, elsewhere)

    # forwards on workers record the workers' kernels (on a cluster, their machines'), one thread
    from act_lens.runtime.pool import WorkerPool

    workers = WorkerPool.__new__(WorkerPool)  # no Ray here: the actors' answer, as cached
    workers._kernels = "torch 9.9, another CPU"
    remote = numerics(tiny, 3, pool=workers)
    assert remote["kernels"] == "torch 9.9, another CPU" and remote["threads"] == 1


def test_subsample_is_fixed_and_ordered():
    items = get_task("reviews").load(None, "eval")[:100]
    a, b = subsample(items, 10), subsample(items, 10)
    order = [items.index(x) for x in a]
    assert a == b and order == sorted(order) and len(a) == 10
    assert subsample(items, None) == items


@pytest.mark.real
def test_batched_predictions_equal_batch_one_on_bundled_model(smollm2):
    single = evaluate(smollm2, "reviews", limit=24, batch_size=1, progress=False)
    batched = evaluate(smollm2, "reviews", limit=24, batch_size=8, progress=False)
    assert single.predictions == batched.predictions
    diff = max(
        abs(a - b)
        for s, t in zip(single.scores, batched.scores, strict=True)
        for a, b in zip(s, t, strict=True)
    )
    assert diff < 1e-3


@pytest.mark.real
def test_multiple_choice_scoring_modes_on_bundled_model(smollm2, data_dir):
    letters = evaluate(smollm2, "arc_easy", data=data_dir, limit=8, progress=False)
    full = evaluate(smollm2, "arc_easy", data=data_dir, limit=8, scoring="full", progress=False)
    assert letters.uids == full.uids and full.accuracy_norm is not None
    assert all(
        len(s) == len(get_task("arc_easy").load(data_dir)[0].options) or len(s) >= 3
        for s in full.scores
    )

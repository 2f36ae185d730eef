"""The lm-eval adapter on a tiny random Llama: requests, batching, ACT, generation, registration,
and lm-eval's own command line (subprocess, offline, a task written into tmp_path)."""

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402

from act_lens.core.settings import SinkSettings  # noqa: E402
from act_lens.errors import ConfigError  # noqa: E402
from act_lens.evaluation.generate import generate  # noqa: E402
from act_lens.evaluation.scoring import continuation_logprobs  # noqa: E402
from act_lens.hooks.act import ActConfig  # noqa: E402
from act_lens.hooks.headset import HeadSet  # noqa: E402
from act_lens.hooks.names import pattern_hook  # noqa: E402
from act_lens.integrations.lm_eval import ActLensLM  # noqa: E402
from act_lens.integrations.lm_eval_requests import cut_at_stop  # noqa: E402
from act_lens.integrations.lm_eval_tasks import write_task  # noqa: E402
from tests.helpers import byte_prompts, n_hooks  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
HEADS = HeadSet({1: [0, 1, 2, 3], 2: [1]})
PAIRS = [
    ("The cat sat on the mat. It was warm,\nand quiet. Answer:", " yes"),
    ("Dogs bark:", " loudly, all night"),
    ("Q: 2+2?\nA:", " 4"),
    ("A longer context, with commas, colons: and more words here.", " no"),
    ("Short", " x"),
]


def _req(kind, *args):
    return Instance(kind, {}, tuple(args), 0)


def _lls(lm, pairs):
    return lm.loglikelihood([_req("loglikelihood", c, k) for c, k in pairs], disable_tqdm=True)


def _env():
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }


def test_loglikelihood_is_act_lens_scoring_at_any_batch_size(tiny):
    tok = tiny.tokenizer
    ref = continuation_logprobs(
        tiny,
        [tok(c).input_ids for c, _ in PAIRS],
        [tok(k, add_special_tokens=False).input_ids for _, k in PAIRS],
        batch_size=1,
    )
    for bs in (1, 3):
        got = torch.tensor([lp for lp, _ in _lls(ActLensLM(tiny, batch_size=bs), PAIRS)])
        assert torch.allclose(got, ref, atol=1e-5)
    lm = ActLensLM(tiny)
    # lm-eval conventions: a context's trailing space moves to the continuation; an empty
    # context is the BOS token alone.
    (moved, _), (plain, _) = _lls(lm, [("Answer: ", "yes"), ("Answer:", " yes")])
    assert moved == pytest.approx(plain, abs=1e-6)
    ((empty, _),) = _lls(lm, [("", "hello")])
    hello = tok("hello", add_special_tokens=False).input_ids
    assert empty == pytest.approx(float(continuation_logprobs(tiny, [[tok.bos_token_id]], [hello])))


def test_is_greedy_is_true_exactly_for_the_argmax_continuation(tiny):
    tok = tiny.tokenizer
    for context in ("The cat sat", "Dogs bark:", "Hello, world", "Q: why?", "abc", "x"):
        with torch.inference_mode():
            next_id = int(tiny(torch.tensor([tok(context).input_ids]))[0, -1].argmax())
        text = tok.decode([next_id])
        if tok(text, add_special_tokens=False).input_ids == [next_id]:  # an ASCII byte
            break
    else:
        raise AssertionError("no context with an ASCII greedy byte; extend the list")
    other = "q" if text != "q" else "r"
    flags = [greedy for _, greedy in _lls(ActLensLM(tiny), [(context, text), (context, other)])]
    assert flags == [True, False]


def test_act_config_changes_loglikelihoods_and_batches_like_batch_one(tiny):
    cfg = ActConfig(HEADS, SinkSettings(beta=0.0, threshold=0.05))
    base = torch.tensor([lp for lp, _ in _lls(ActLensLM(tiny, batch_size=4), PAIRS)])
    act1 = torch.tensor([lp for lp, _ in _lls(ActLensLM(tiny, cfg, batch_size=1), PAIRS)])
    act4 = torch.tensor([lp for lp, _ in _lls(ActLensLM(tiny, cfg, batch_size=4), PAIRS)])
    assert (act1 - base).abs().max() > 1e-2
    # Padding-aware: the batch's mask reaches ACT, so batching does not change the scores.
    assert torch.allclose(act1, act4, atol=1e-4)


def test_rolling_loglikelihood_scores_each_token_once_within_the_window(tiny):
    tok = tiny.tokenizer
    text = "The quick brown fox jumps over the lazy dog. " * 2
    ids = tok(text, add_special_tokens=False).input_ids
    whole = float(continuation_logprobs(tiny, [[tok.bos_token_id]], [ids]))
    lm = ActLensLM(tiny, batch_size=2)
    rolled = lm.loglikelihood_rolling([_req("loglikelihood_rolling", text)], disable_tqdm=True)
    assert rolled[0] == pytest.approx(whole, abs=1e-3)

    widths = []

    def record(pattern, hook):
        widths.append(pattern.shape[-1])
        return pattern

    small = ActLensLM(tiny, [(pattern_hook(0), record)], batch_size=2, max_length=16)
    texts = [text, "short one", ""]
    both = small.loglikelihood_rolling(
        [_req("loglikelihood_rolling", t) for t in texts], disable_tqdm=True
    )
    assert max(widths) <= 16 and len(ids) > 16
    assert both[2] == 0.0
    assert both[0] < 0 and abs(both[0] - whole) > 1e-3  # windows lose context
    alone = small.loglikelihood_rolling(
        [_req("loglikelihood_rolling", texts[1])], disable_tqdm=True
    )
    assert both[1] == pytest.approx(alone[0], abs=1e-4)


@pytest.mark.parametrize("policy", ["prompt", "prompt+new"])
def test_generate_until_is_act_lens_generate_cut_at_the_stop_string(tiny, policy):
    context = "Dogs bark: loudly!"
    ref = generate(tiny, context, max_new_tokens=8)
    stop = next(ch for ch in ref.text[2:] if ch != "\ufffd")
    lm = ActLensLM(tiny)
    gen = {"until": [stop], "max_gen_toks": 8, "do_sample": False, "temperature": 0.0}
    out = lm.generate_until([_req("generate_until", context, gen)], disable_tqdm=True)
    assert out == [cut_at_stop(ref.text, [stop])] and stop not in out[0]

    cfg = ActConfig(HEADS, SinkSettings(beta=0.0, threshold=0.05))
    act_lm = ActLensLM(tiny, cfg, decode_policy=policy)
    got = act_lm.generate_until(
        [_req("generate_until", context, {"max_gen_toks": 6})], disable_tqdm=True
    )
    act_ref = generate(tiny, context, cfg, policy=policy, max_new_tokens=6)
    assert got == [act_ref.text]
    assert act_ref.new_tokens != generate(tiny, context, max_new_tokens=6).new_tokens


@pytest.mark.parametrize(
    ("gen", "match"),
    [
        ({"do_sample": True, "temperature": 0.7}, "do_sample=True"),
        ({"temperature": 0.7}, "temperature=0.7"),
        ({"top_p": 0.9}, "unsupported generation arguments"),
        ({"until": 3}, "until must be"),
    ],
)
def test_generate_until_refuses_sampling_arguments(tiny, gen, match):
    with pytest.raises(ConfigError, match=match):
        ActLensLM(tiny).generate_until([_req("generate_until", "Hi", gen)], disable_tqdm=True)


def test_no_hook_is_left_on_the_model_after_runs_and_errors(tiny):
    lm = ActLensLM(tiny, ActConfig(HEADS, SinkSettings(threshold=0.05)))
    _lls(lm, PAIRS[:2])
    lm.loglikelihood_rolling([_req("loglikelihood_rolling", "some text")], disable_tqdm=True)
    lm.generate_until([_req("generate_until", "Hi", {"max_gen_toks": 2})], disable_tqdm=True)
    assert n_hooks(tiny) == 0

    def bad(pattern, hook):
        raise RuntimeError("user hook failed")

    failing = ActLensLM(tiny, [(pattern_hook(1), bad)])
    with pytest.raises(RuntimeError, match="user hook failed"):
        _lls(failing, PAIRS[:2])
    with pytest.raises(RuntimeError, match="user hook failed"):
        failing.generate_until([_req("generate_until", "Hi", {"max_gen_toks": 2})])
    assert n_hooks(tiny) == 0


def test_built_from_lm_eval_model_args(tiny, tmp_path):
    path = HeadSet({1: [0, 2]}).save(tmp_path / "head_set.json")
    lm = ActLensLM.create_from_arg_string(
        f"model=tiny-random,intervention={path},beta=0.3",
        {"batch_size": 2, "device": "cuda:0", "max_batch_size": None},  # lm-eval CLI defaults
    )
    assert isinstance(lm.intervention, ActConfig) and lm.intervention.beta == 0.3
    assert lm.intervention.head_set == HeadSet({1: [0, 2]}) and lm.batch_size == 2
    # lm-eval's default device is used where it exists and falls back to the CPU elsewhere
    assert str(lm.device) == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert lm.max_length == tiny.cfg.n_ctx
    assert lm.get_model_info()["act_lens_intervention"]["beta"] == 0.3
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(ConfigError, match="pass intervention= only"),
    ):
        ActLensLM(tiny, ActConfig(HEADS), head_set=str(path))
    with pytest.raises(ConfigError, match="without a head set"):
        ActLensLM(tiny, beta=0.2)
    with pytest.raises(ConfigError, match="carries its own settings"):
        ActLensLM(tiny, ActConfig(HEADS), beta=0.2)
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        ActLensLM(tiny, batch_size="auto")
    with pytest.raises(ConfigError, match="decode_policy"):
        ActLensLM(tiny, decode_policy="always")


def _installed_site(tmp_path: Path) -> Path:
    """A site-packages folder holding what the wheel's force-include table installs."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    site = tmp_path / "site"
    site.mkdir()
    table = tomllib.loads((REPO / "pyproject.toml").read_text())
    for src, dst in table["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"].items():
        (site / dst).write_bytes((REPO / src).read_bytes())
    assert {p.suffix for p in site.iterdir()} == {".pth", ".py"}
    return site


def test_installing_registers_act_lens_lazily_in_lm_evals_registry(tmp_path):
    site_dir = _installed_site(tmp_path)
    # `python -S` plus the environment's site-packages as a plain path entry: lm-eval imports,
    # but no .pth file of the environment runs, so "bare" is bare even where act_lens is
    # installed (CI's fresh editable install has our .pth in site-packages).
    purelib = sysconfig.get_paths()["purelib"]
    probe = (
        "import site, sys\n"
        "if sys.argv[1] != 'env': sys.path.append(sys.argv[3])\n"
        "if sys.argv[1] == 'installed': site.addsitedir(sys.argv[2])\n"
        "from lm_eval.api import registry\n"
        "print('act_lens' in registry.model_registry, 'hf' in registry.model_registry,"
        " 'torch' in sys.modules, 'act_lens' in sys.modules)\n"
        "if sys.argv[1] != 'bare':\n"
        "    print(registry.get_model('act_lens').__module__)\n"
    )
    isolated = [sys.executable, "-S", "-c", probe]
    bare = subprocess.run(
        [*isolated, "bare", "", purelib], env=_env(), capture_output=True, text=True
    )
    assert bare.stdout.split() == ["False", "False", "False", "False"], bare.stderr
    out = subprocess.run(
        [*isolated, "installed", str(site_dir), purelib], env=_env(), capture_output=True, text=True
    )
    lines = out.stdout.split("\n")
    # Registered next to lm-eval's built-in names, before act_lens (or torch) is imported.
    assert lines[0].split() == ["True", "True", "False", "False"], out.stderr
    assert lines[1] == "act_lens.integrations.lm_eval", out.stderr
    if (Path(purelib) / "act_lens_lm_eval.pth").is_file():
        # This environment has act_lens installed: the real install behaves the same way.
        env = subprocess.run(
            [sys.executable, "-c", probe, "env", "", purelib],
            env=_env(),
            capture_output=True,
            text=True,
        )
        lines = env.stdout.split("\n")
        assert lines[0].split() == ["True", "True", "False", "False"], env.stderr
        assert lines[1] == "act_lens.integrations.lm_eval", env.stderr


def test_lm_eval_command_line_runs_act_lens(tiny, tmp_path):
    prompts = byte_prompts(
        ["The cat sat.", "Dogs bark: loudly!", "Q: 2+2?", "It rains."], choices=(" a", " bb", " c")
    )
    write_task(prompts, tmp_path / "tasks", "al_tiny")
    site = _installed_site(tmp_path)
    argv = [
        "lm_eval", "--model", "act_lens", "--model_args", "model=tiny-random",
        "--tasks", "al_tiny", "--include_path", str(tmp_path / "tasks"),
        "--batch_size", "2", "--output_path", str(tmp_path / "out"), "--log_samples",
    ]  # fmt: skip
    script = (
        f"import site, sys; site.addsitedir({str(site)!r}); sys.argv = {argv!r}\n"
        "from lm_eval.__main__ import cli_evaluate; cli_evaluate()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (samples,) = (tmp_path / "out").rglob("samples_al_tiny_*.jsonl")
    docs = {s["doc_id"]: s for s in map(json.loads, samples.read_text().splitlines())}
    assert sorted(docs) == list(range(len(prompts)))
    correct = []
    for i, prompt in enumerate(prompts):  # the docs are the prompts; the scores act_lens's
        ref = continuation_logprobs(
            tiny,
            [tiny.tokenizer(prompt.context).input_ids] * len(prompt.continuations),
            [tiny.tokenizer(c, add_special_tokens=False).input_ids for c in prompt.continuations],
        )
        got = torch.tensor([float(r[0][0]) for r in docs[i]["resps"]])
        assert torch.allclose(got, ref, atol=1e-4)
        correct.append(int(ref.argmax()) == prompt.label)
        assert docs[i]["acc"] == float(correct[-1])
    (results,) = (tmp_path / "out").rglob("results_*.json")
    metrics = json.loads(results.read_text())["results"]["al_tiny"]
    assert metrics["acc,none"] == pytest.approx(sum(correct) / len(correct))


def test_docs_lm_eval_example_runs(tmp_path, monkeypatch):
    text = (REPO / "docs" / "lm-eval.md").read_text()
    block = re.search(
        r"```python\n(import act_lens as al\nfrom act_lens.integrations.*?)```", text, re.S
    )
    assert block, "docs/lm-eval.md lost its Python example"
    code = block.group(1)
    small = [
        ('"smollm2-135m"', '"tiny-random"'),
        ("[:100]", "[:3]"),
        ('include_path="lm_tasks")', 'include_path="lm_tasks", include_defaults=False)'),
    ]
    for old, new in small:
        assert old in code, f"lm-eval example changed: {old!r} not found; update this test"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    HeadSet({1: [0, 2]}).save("head_set.json")
    namespace: dict = {}
    exec(compile(code, "docs/lm-eval.md", "exec"), namespace)
    assert 0.0 <= namespace["out"]["results"]["al_reviews"]["acc,none"] <= 1.0
    assert isinstance(namespace["lm"].intervention, ActConfig)

"""A table of bad command lines: each refused in one line, exit status 2, nothing written.

Every case runs through ``act_lens.app.cli.main(argv)`` in one fresh interpreter, which must
not have imported torch at the end: every refusal happens before a model could load. The
whole temporary folder (output folders, data files, head sets, another run's results, a
folder held by a running command) is compared before and after: not a byte written.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

RUNNER = """
import contextlib, fcntl, io, json, sys, time
from act_lens.app.cli import main
out = []
for case in json.loads(sys.argv[1]):
    held = None
    if case["lock"]:  # a command running in that folder holds its lock
        held = open(case["lock"])
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(case["argv"])
    out.append({"rc": rc, "err": err.getvalue(), "s": time.perf_counter() - t0})
    if held is not None:
        held.close()
print(json.dumps({"results": out, "torch": "torch" in sys.modules}))
"""


def _write(path: Path, text: str | bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def _fixtures(tmp: Path) -> dict[str, str]:
    f: dict[str, str] = {}
    j = json.dumps
    lines = "".join(
        f"{i % 2} review number {i} was {'good' if i % 2 else 'bad'}\n" for i in range(30)
    )
    f["good"] = _write(tmp / "good.txt", lines)
    f["empty"] = _write(tmp / "empty.txt", "")
    f["latin"] = _write(tmp / "latin.txt", b"1 caf\xe9 au lait\n")
    f["badlabel"] = _write(tmp / "badlabel.txt", "7 a sentence\n")
    f["nolabel"] = _write(tmp / "nolabel.txt", "just a sentence\n")
    f["onerow"] = _write(tmp / "onerow.txt", "1 the only row\n")
    f["keys"] = _write(
        tmp / "keys.jsonl", j({"split": "eval", "label": "positive", "text": "x"}) + "\n"
    )
    f["rlabel"] = _write(tmp / "rlabel.jsonl", j({"split": "eval", "label": "great"}) + "\n")
    (tmp / "emptydir").mkdir()
    f["emptydir"] = str(tmp / "emptydir")
    f["a_file"] = _write(tmp / "a_file", "")
    hs = tmp / "hs"
    f["hs_json"] = _write(hs / "bad.json", "{not json")
    f["hs_shape"] = _write(hs / "shape.json", j({"heads": {"2": "x"}}))
    f["hs_layer"] = _write(hs / "layer.json", j({"heads": {"40": [0]}}))
    f["hs_head"] = _write(hs / "head.json", j({"heads": {"1": [9]}}))
    made = {"model": {"model_name": "SmolLM2", "n_layers": 30, "n_heads": 9}}
    f["hs_other"] = _write(hs / "other.json", j({"heads": {"1": [0]}, "provenance": made}))
    zt = {"method": "zerotuning", "params": {"gamma": 1.5}, "heads": {"1": [0]}}
    f["hs_zt"] = _write(hs / "zt.json", j(zt))
    f["hs_act"] = _write(hs / "act.json", j({"heads": {"1": [0]}}))
    f["hs_stored"] = _write(
        hs / "stored.json", j({"heads": {"1": [0]}, "provenance": {"beta": "x"}})
    )
    bundle = {"format": "act_lens.HeadSets/1", "per_task": {"sst2": {"heads": {"1": [0]}}}}
    f["hs_bundle"] = _write(hs / "bundle.json", j(bundle))
    cfg = tmp / "cfg"
    for name, value in {
        "list": [1, 2],
        "tasks": {"tasks": "sst2"},
        "limit": {"limit": "abc"},
        "balance": {"balance": "yes"},
        "calib": {"calib_size": 8.5},
        "unknown": {"foo": 1},
        "layers": {"layers": "0-2"},
        "seeds": {"seeds": 3},
        "beta": {"beta": 2},
        "null_tasks": {"tasks": None},
    }.items():
        f[f"cfg_{name}"] = _write(cfg / f"{name}.json", j(value))
    f["cfg_json"] = _write(cfg / "bad.json", "{not json")
    f["cfg_bytes"] = _write(cfg / "bytes.json", b'{"limit": "\xff"}')
    # a folder with another run's results, one with results but no config, one in use
    other = tmp / "other_run"
    _write(other / "config.json", j({"command": "sinks", "model": "tiny-random", "limit": 9}))
    _write(other / "census.json", "{}")
    f["other_run"] = str(other)
    _write(tmp / "no_config" / "results.json", "{}")
    f["no_config"] = str(tmp / "no_config")
    f["lock"] = _write(tmp / "busy" / ".act_lens.lock", "pid 1 on elsewhere, started then\n")
    f["busy"] = str(tmp / "busy")
    return f


def _cases(tmp: Path) -> list[tuple[list[str], str]]:
    f = _fixtures(tmp)
    t = ["--model", "tiny-random"]
    r = [*t, "--task", "reviews"]
    rs = [*r, "--layers", "1-2"]  # the tiny model has no default candidate layers
    s2 = [*t, "--task", "sst2"]
    good = [*s2, "--data-file", f["good"]]
    return [
        # command line
        (["eval", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["eval", *r, "--limit", "abc"], "argument --limit: invalid int value"),
        (["eval", *r, "--rule", "median"], "argument --rule: invalid choice"),
        ([], "the following arguments are required"),
        (["eval", *r, "--limit", "0"], "--limit must be >= 1"),
        (["search", *rs, "--calib-size", "0"], "--calib-size must be >= 1"),
        (["eval", *r, "--batch-size", "0"], "--batch-size must be >= 1"),
        (["eval", *r, "--shots", "-1"], "--shots must be >= 0"),
        (["eval", *r, "--beta", "1.5"], "--beta must be in [0, 1]"),
        (["eval", *r, "--beta", "-0.1"], "--beta must be in [0, 1]"),
        (["eval", *r, "--threshold", "0"], "--threshold must be > 0"),
        (["eval", *r, "--threshold", "5"], "finds no sink"),
        (["sinks", *r, "--threshold", "1"], "finds no sink"),
        (["eval", *r, "--seed", "-1"], "--seed values must be >= 0"),
        (["search", *rs, "--layers", "2-1"], "runs backwards"),
        (["search", *rs, "--layers", "a-b"], "expected numbers and ranges"),
        (["search", *rs, "--layers", "1-2-3"], "expected numbers and ranges"),
        (["search", *rs, "--layers", "0-5"], "has 3 layers"),
        (["search", *rs, "--per-task"], "--per-task needs at least two"),
        (["search", *rs, "--select", "top_k"], "--select top_k needs --top-k"),
        (["search", *rs, "--unsupervised"], "--unsupervised is for --method zerotuning"),
        (["search", *rs, "--method", "zerotuning", "--beta", "0.3"], "--beta is an ACT setting"),
        (["search", *rs, "--val-fraction", "1.5"], "--val-fraction must be in (0, 1)"),
        (["search", *rs, "--calib-size", "2"], "the minimum per task is 4"),
        (["run", *rs, "--calib-size", "3"], "the minimum per task is 4"),
        (["search", *rs, "--min-z", "-1"], "--min-z must be >= 0"),
        (["search", *rs, "--confidence", "0.3"], "--confidence must be in (0.5, 1)"),
        (["search", *rs, "--confidence", "1"], "--confidence must be in (0.5, 1)"),
        (["search", *rs, "--workers", "0"], "--workers must be auto or a number >= 1"),
        (["search", *rs, "--workers", "many"], "--workers must be auto or a number >= 1"),
        (["search", *rs, "--precision", "fp8"], "argument --precision: invalid choice"),
        (["search", *rs, "--max-heads", "0"], "--max-heads must be >= 1"),
        (["search", *rs, "--screen", "-1"], "--screen must be >= 0"),
        (["search", *rs, "--metric", "gold_logprob"], "choice_logprob"),
        (["search", *rs, "--metric", "nope"], "choice_logprob"),
        # tasks and data
        (["eval", *t, "--task", "nope"], "unknown task 'nope'"),
        (["eval", *r, "--task", "reviews"], "--task reviews is given 2 times"),
        (["eval", *t, "--data-file", f["good"]], "--data-file needs --task"),
        (["eval", *good, "--task", "reviews"], "exactly one --task"),
        (["eval", *s2], "needs its raw files"),
        (["eval", *s2, "--data-dir", str(tmp / "no_such")], "does not exist"),
        (["eval", *s2, "--data-dir", f["emptydir"]], "no 'sst2' folder"),
        (["eval", *s2, "--data-file", str(tmp / "no.txt")], "does not exist"),
        (["eval", *s2, "--data-file", f["empty"]], "empty.txt: the file holds no examples"),
        (["eval", *s2, "--data-file", f["latin"]], "latin.txt:1: not valid utf-8"),
        (["eval", *s2, "--data-file", f["badlabel"]], "badlabel.txt:1: expected '<label 0..1>"),
        (["sinks", *s2, "--data-file", f["nolabel"]], "nolabel.txt:1: expected '<label 0..1>"),
        (
            ["run", *s2, "--layers", "1-2", "--data-file", f["onerow"]],
            "none of its 1 examples falls in the",
        ),
        (["eval", *r, "--data-file", f["keys"]], "keys.jsonl:1: expected a string field 'review'"),
        (["eval", *r, "--data-file", f["rlabel"]], "rlabel.jsonl:1: expected label in"),
        (["eval", *r, "--shots", "400"], "--shots 400: task 'reviews' has only 300"),
        (["eval", *good, "--shots", "40"], "--shots 40: task 'sst2' has only"),
        # models
        (["eval", "--model", "smollm2-13m"], "did you mean 'smollm2-135m'"),
        (["eval", "--model", "gemma-3-270m"], "did you mean 'gemma3-270m'"),
        (["eval", "--model", "tiny-randm"], "did you mean 'tiny-random'"),
        (["eval", "--model", "gpt2"], "HF_HUB_OFFLINE is set"),
        (["eval", "--model", "someone/some-model"], "HF_HUB_OFFLINE is set"),
        (["eval", "--model", ""], "empty model spec"),
        (["eval", "--model", str(tmp / "no.gguf")], "does not exist"),
        (["eval", "--model", f["emptydir"]], "has no config.json"),
        (["eval", "--model", "./no/such/model"], "looks like a path"),
        # head sets
        (["eval", *r, "--head-set", str(tmp / "none.json")], "does not exist"),
        (["eval", *r, "--head-set", f["emptydir"]], "is a folder"),
        (["eval", *r, "--head-set", f["hs_json"]], "not valid JSON"),
        (["eval", *r, "--head-set", f["hs_shape"]], "lists of head numbers"),
        (["eval", *r, "--head-set", f["hs_layer"]], "(40, 0) is out of range for tiny-random"),
        (["eval", *r, "--head-set", f["hs_head"]], "(1, 9) is out of range for tiny-random"),
        (["eval", *r, "--head-set", f["hs_other"]], "was not made for tiny-random"),
        (["eval", *r, "--head-set", f["hs_zt"], "--beta", "0.3"], "--beta are ACT settings"),
        (["eval", *r, "--head-set", f["hs_zt"], "--rule", "alpha"], "--rule are ACT settings"),
        (["eval", *r, "--head-set", f["hs_act"], "--method", "zerotuning"], "is an ACT head set"),
        (["eval", *r, "--head-set", f["hs_stored"]], "stored sink settings"),
        (["eval", *r, "--head-set", f["hs_bundle"]], "has no set for task 'reviews'"),
        # config files
        (["eval", *r, "--config", f["cfg_list"]], "expected a JSON object of options"),
        (["eval", *r, "--config", f["cfg_tasks"]], "'tasks' must be a list of strings"),
        (["eval", *t, "--config", f["cfg_null_tasks"]], "'tasks' must be a list of strings"),
        (["eval", *r, "--config", f["cfg_limit"]], "'limit' must be integer or null"),
        (["eval", *r, "--config", f["cfg_balance"]], "'balance' must be true/false"),
        (["eval", *r, "--config", f["cfg_calib"]], "'calib_size' must be integer"),
        (["eval", *r, "--config", f["cfg_unknown"]], "unknown keys ['foo']"),
        (["eval", *r, "--config", f["cfg_layers"]], "'layers' must be a list of integers"),
        (["eval", *r, "--config", f["cfg_seeds"]], "'seeds' must be a list of integers"),
        (["eval", *r, "--config", f["cfg_beta"]], "--beta must be in [0, 1]"),
        (["eval", *r, "--config", f["cfg_json"]], "cannot read --config"),
        (["eval", *r, "--config", f["cfg_bytes"]], "cannot read --config"),
        (["eval", *r, "--config", str(tmp / "none.json")], "cannot read --config"),
        # output folders
        (["run", *rs, "--out", "/proc/act_lens_x"], "cannot be written"),
        (["run", *rs, "--out", str(Path(f["a_file"]) / "sub")], "is a file"),
        (["sinks", *r, "--out", f["other_run"]], "holds the results of a run with another"),
        (["eval", *r, "--resume", "--out", f["other_run"]], "--resume: --out"),
        (["eval", *r, "--out", f["no_config"]], "no readable config.json"),
        (["sinks", *r, "--out", f["busy"]], "is in use by another act-lens command"),
        (["eval", *r, "--resume", "--out", str(tmp / "nothing_here")], "no act-lens run to resume"),
        (["eval", *r, "--resume", "--overwrite"], "contradict each other"),
        (["figures", str(tmp / "no_such_folder")], "not a results folder"),
    ]


def _tree(folder: Path) -> dict[str, tuple[int, int] | None]:
    """Every path, with size and mtime for files (a folder's mtime moves with the probe file
    preflight creates and removes to check that it is writable)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        if p.is_file()
        else None
        for p in sorted(folder.rglob("*"))
    }


def test_bad_command_lines_are_refused_before_anything_loads(tmp_path):
    cases = _cases(tmp_path)
    assert len(cases) >= 50
    runs = []
    for i, (argv, _) in enumerate(cases):
        if argv and argv[0] != "figures" and "--out" not in argv:
            argv = [*argv, "--out", str(tmp_path / f"out{i}")]  # must never be created
        lock = str(tmp_path / "busy" / ".act_lens.lock") if "busy" in " ".join(argv) else None
        runs.append({"argv": argv, "lock": lock})
    before = _tree(tmp_path)
    # offline, with an empty hub cache: a hub name can only be refused
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "no_cache")}
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(runs)],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, message), res in zip(cases, report["results"], strict=True):
        lines = res["err"].strip().splitlines()
        assert res["rc"] == 2, (argv, res)
        assert len(lines) == 1 and lines[0].startswith("act-lens: error: "), (argv, res["err"])
        assert message in lines[0], (argv, lines[0])
    assert _tree(tmp_path) == before, "a refused command wrote something"
    assert not report["torch"], "a check imported torch: it ran after slow work had started"
    times = sorted(r["s"] for r in report["results"])
    print(f"{len(times)} refusals: median {times[len(times) // 2]:.3f} s, max {times[-1]:.3f} s")

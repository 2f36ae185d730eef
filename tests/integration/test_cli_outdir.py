"""Nothing lost: configs replay, output folders are never clobbered, Ctrl-C resumes.

On the tiny random model and the built-in task, so each command takes seconds.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from act_lens.app.cli import main
from act_lens.app.outdir import LOCK_NAME, OutLock
from act_lens.evaluation.task_result import load_results
from tests.conftest import REPO

TINY = ["--model", "tiny-random", "--task", "reviews", "--batch-size", "8"]
RUN = [*TINY, "--limit", "12", "--calib-size", "8", "--layers", "0-2", "--no-controls"]
RUN += ["--metric", "vocab_logprob", "--select", "top_k", "--top-k", "2", "--margin", "-100"]
# vocab_logprob moves with every head on the tiny model (its byte tokenizer gives both label
# words the same first token, so choice metrics do not), and top_k with a very low margin
# keeps the 2 best heads: a search whose result is a real, non-empty head set.


def _snapshot(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _eval_files(folder: Path) -> dict[str, object]:
    keep = ("uids", "predictions", "scores", "labels")
    out = {}
    for path in sorted((folder / "eval").glob("*.json")):
        data = json.loads(path.read_text())
        out[path.name] = {k: data[k] for k in keep}
    return out


def test_replaying_a_runs_config_gives_the_same_results(tmp_path, capsys):
    first, again = tmp_path / "x", tmp_path / "y"
    assert main(["run", *RUN, "--out", str(first)]) == 0
    before = _snapshot(first)
    saved = json.loads((first / "config.json").read_text())
    assert saved["command"] == "run" and saved["out"] == str(first)
    capsys.readouterr()
    assert main(["run", "--config", str(first / "config.json"), "--out", str(again)]) == 0
    assert _snapshot(first) == before  # the old folder is not touched
    one = load_results(first)["reviews"]
    two = load_results(again)["reviews"]
    assert one.heads == 2
    assert one == two  # every field: accuracies, comparison, controls, config_id
    assert _eval_files(first) == _eval_files(again)
    hs = [json.loads((d / "head_set.json").read_text())["heads"] for d in (first, again)]
    assert hs[0] == hs[1]


def test_config_never_changes_the_command_or_the_folder(tmp_path, capsys):
    sinks = tmp_path / "sinks"
    assert main(["sinks", *TINY, "--limit", "4", "--out", str(sinks)]) == 0
    before = _snapshot(sinks)
    capsys.readouterr()
    target = tmp_path / "eval"
    argv = ["eval", "--config", str(sinks / "config.json"), "--limit", "4", "--out", str(target)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "written by 'sinks'; running 'eval' as typed" in err
    assert _snapshot(sinks) == before  # the sinks folder was neither rerun nor rewritten
    assert (target / "results.json").exists() and not (target / "census.json").exists()
    assert json.loads((target / "config.json").read_text())["command"] == "eval"


def test_another_runs_results_are_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sinks", *TINY, "--limit", "4", "--out", str(out)]) == 0
    before = _snapshot(out)
    capsys.readouterr()
    # another command, and the same command with another setting: refused, nothing written
    for argv in (
        ["eval", *TINY, "--limit", "4", "--out", str(out)],
        ["sinks", *TINY, "--limit", "5", "--out", str(out)],
        ["sinks", *TINY, "--limit", "5", "--resume", "--out", str(out)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "holds the results of a run with another config" in err[0]
        assert "--overwrite" in err[0]
        assert _snapshot(out) == before
    # the same command again resumes (the same config): allowed, with or without --resume
    assert main(["sinks", *TINY, "--limit", "4", "--resume", "--out", str(out)]) == 0
    # --overwrite replaces the other run's files: nothing of the sinks run is left
    assert main(["eval", *TINY, "--limit", "4", "--overwrite", "--out", str(out)]) == 0
    assert not (out / "census.json").exists() and not (out / "figures").exists()
    assert json.loads((out / "config.json").read_text())["command"] == "eval"
    record = json.loads((out / "provenance.json").read_text())
    assert load_results(out)["reviews"].config_id == record["config_id"]
    # --resume where there is nothing to resume, and both flags at once: refused
    assert main(["eval", *TINY, "--resume", "--out", str(tmp_path / "new")]) == 2
    assert main(["eval", *TINY, "--resume", "--overwrite", "--out", str(out)]) == 2
    assert not (tmp_path / "new").exists()


def test_a_folder_in_use_is_refused(tmp_path, capsys):
    out = tmp_path / "busy"
    with OutLock(out):
        before = _snapshot(out)
        assert main(["sinks", *TINY, "--limit", "4", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is in use by another act-lens command (pid" in err[0]
        assert _snapshot(out) == before
    assert (out / LOCK_NAME).exists()
    assert main(["sinks", *TINY, "--limit", "4", "--out", str(out)]) == 0  # released


# Enough prompts for several checkpointed parts, so that the interrupt lands mid-search.
SEARCH = [*TINY, "--calib-size", "96", "--layers", "0-2", "--metric", "vocab_logprob"]
SEARCH += ["--select", "top_k", "--top-k", "3", "--margin", "-100"]


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-c", "from act_lens.app.cli import entry; entry()", *argv]


# The interrupted command: SIGINT handled as in a terminal, and a pause after each saved unit,
# so that the SIGINT sent after the first checkpoint arrives while work remains however fast (or
# loaded) the machine is.
SLOW_CLI = """
import signal, time
# a shell's background job inherits SIGINT ignored, and Python then never raises
# KeyboardInterrupt: restore the interactive default, as a terminal's Ctrl-C has it
signal.signal(signal.SIGINT, signal.default_int_handler)
from act_lens.runtime.checkpoint import Checkpoint
put = Checkpoint.put
def slow_put(self, unit, value):
    put(self, unit, value)
    time.sleep(3)
Checkpoint.put = slow_put
from act_lens.app.cli import entry
entry()
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a subprocess")
def test_ctrl_c_saves_progress_and_the_same_command_resumes(tmp_path, capsys):
    reference, out = tmp_path / "reference", tmp_path / "interrupted"
    assert main(["search", *SEARCH, "--out", str(reference)]) == 0
    expected = json.loads((reference / "head_set.json").read_text())["heads"]
    assert sum(len(h) for h in expected.values()) == 3

    argv = ["search", *SEARCH, "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("search*.ckpt")):  # the first finished part of the search
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.05)
        # while it runs, a second command on the same folder is refused
        capsys.readouterr()
        assert main(argv) == 2
        assert "is in use by another act-lens command" in capsys.readouterr().err
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last == (
        f"act-lens: interrupted; progress saved in {out}; run the same command to resume"
    )
    assert "Traceback" not in err
    assert list(out.glob("search*.ckpt")), "the checkpoint is the progress"
    assert not (out / "head_set.json").exists()

    done = subprocess.run(_cli(*argv), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "head_set.json").read_text())["heads"] == expected
    assert not list(out.glob("search*.ckpt"))  # finished: the checkpoint is gone

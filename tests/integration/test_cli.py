"""act-lens command line on the tiny random model, in a temporary folder."""

import json

import pytest
import torch

from act_lens.app.cli import main
from act_lens.evaluation.task_result import SCHEMA, load_results

TINY = ["--model", "tiny-random", "--task", "reviews", "--batch-size", "4"]


def test_run_writes_report_with_all_sections(tmp_path):
    out = tmp_path / "run"
    rc = main(
        [
            "run",
            *TINY,
            "--limit",
            "8",
            "--calib-size",
            "6",
            "--layers",
            "0-2",
            "--threshold",
            "0.05",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    report = (out / "report.md").read_text()
    for section in (
        "## Accuracy with and without ACT",
        "## Hidden sinks",
        "## Head set",
        "## Config",
    ):
        assert section in report
    assert json.loads((out / "results.json").read_text())["schema"] == SCHEMA
    row = load_results(out)["reviews"]  # typed: TaskResult
    assert row.treated is not None and row.comparison is not None and row.heads is not None
    assert set(row.controls) == {"random", "cc", "cc_act", "act_vs_cc"}
    assert row.comparison.treated_accuracy == row.treated.accuracy
    for name in (
        "attention_map",
        "attention_grid",
        "sink_frequency",
        "token_classes",
        "mass_by_layer",
        "head_effects",
        "eval_comparison",
    ):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
    json.loads((out / "head_set.json").read_text())

    # figures re-draws from saved results without loading a model
    for png in (out / "figures").iterdir():
        png.unlink()
    import act_lens.models.loading as loading

    def no_model(*a, **k):
        raise AssertionError("figures must not load a model")

    orig = loading.load_model
    loading.load_model = no_model
    try:
        assert main(["figures", str(out)]) == 0
    finally:
        loading.load_model = orig
    assert (out / "figures" / "sink_frequency.png").exists()


def test_sinks_search_eval_subcommands(tmp_path):
    assert main(["sinks", *TINY, "--limit", "4", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "census.json").exists()
    assert (
        main(
            ["search", *TINY, "--calib-size", "4", "--layers", "1,2", "--out", str(tmp_path / "h")]
        )
        == 0
    )
    hs = tmp_path / "h" / "head_set.json"
    assert hs.exists()
    assert (
        main(["eval", *TINY, "--limit", "6", "--head-set", str(hs), "--out", str(tmp_path / "e")])
        == 0
    )
    assert load_results(tmp_path / "e")["reviews"].treated is not None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", *TINY, "--beta", "1.5"], "beta"),
        (["eval", "--model", "tiny-random", "--task", "nope"], "nope"),
        (["eval", *TINY, "--layers", "a-b"], "--layers"),
        (["eval", *TINY, "--head-set", "/no/such.json"], "does not exist"),
        (["figures", "/no/such/folder"], "not a results folder"),
    ],
)
def test_bad_input_gives_one_line_error(tmp_path, capsys, argv, message):
    rc = main([*argv] + (["--out", str(tmp_path / "x")] if argv[0] != "figures" else []))
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("act-lens: error:")


@pytest.mark.parametrize("command", ["sinks", "search", "eval", "run"])
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is absent")
def test_device_cuda_without_cuda_is_a_one_line_error(tmp_path, capsys, command):
    # Every command loads its model on --device: none may fall back to the CPU silently.
    assert main([command, *TINY, "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("act-lens: error:") and "no CUDA device" in err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_bad_flag_and_bad_config_file(tmp_path, capsys):
    assert main(["eval", "--no-such-flag"]) == 2
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    assert main(["eval", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read --config" in capsys.readouterr().err

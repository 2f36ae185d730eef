"""The ``act-lens`` command: sinks, search, eval, run (the main job), figures; models and
tasks list what act_lens knows.

Every run writes its resolved config, results and figures into one output folder.
"""

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from act_lens import __version__
from act_lens.app.config import DEFAULT_TASK, RunConfig
from act_lens.errors import ActLensError, ActLensWarning, ConfigError
from act_lens.io import atomic_write_text

__all__ = ["DEFAULT_TASK", "RunConfig", "entry", "main", "resolve_config"]
CATALOG = ("models", "tasks")  # subcommands that list what act_lens knows


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error as one ``act-lens: error:`` line like every other error."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="act-lens", description=__doc__)
    parser.add_argument("--version", action="version", version=f"act-lens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _OneLineParser(add_help=False)
    common.add_argument("--config", help="JSON file with any of the options below (flags win)")
    common.add_argument(
        "--model", default=None, help="smollm2-135m (default), a .gguf, a folder or a HF name"
    )
    common.add_argument("--device", default=None)
    common.add_argument("--task", action="append", dest="tasks", help="task name (repeatable)")
    common.add_argument("--data-dir", default=None, help="folder laid out like shared/data")
    common.add_argument("--data-file", default=None, help="one file of the task's raw format")
    common.add_argument(
        "--prompts",
        choices=("plain", "paper"),
        default=None,
        help="prompt set: act_lens's own (plain, default) or the official ACT prompts (paper)",
    )
    common.add_argument(
        "--limit", type=int, default=None, help="examples per task (fixed subsample)"
    )
    common.add_argument(
        "--calib-size",
        type=int,
        default=None,
        help="calibration prompts per search (joint selection: half of them validate)",
    )
    common.add_argument(
        "--no-balance",
        dest="balance",
        action="store_false",
        default=None,
        help="draw the calibration set at random instead of equal counts per label",
    )
    common.add_argument("--shots", type=int, default=None)
    common.add_argument("--seed", type=int, action="append", dest="seeds")
    common.add_argument(
        "--head-set", default=None, help="a HeadSet JSON (or a per-task head_sets.json)"
    )
    common.add_argument(
        "--method",
        choices=("act", "zerotuning"),
        default=None,
        help="search: ACT (default) or ZeroTuning (initial-token scaling; heads and gamma)",
    )
    common.add_argument(
        "--unsupervised",
        action="store_true",
        default=None,
        help="--method zerotuning: choose heads and gamma by the entropy over the choices, no labels",
    )
    common.add_argument("--beta", type=float, default=None)
    common.add_argument("--threshold", type=float, default=None)
    common.add_argument("--rule", choices=("mean", "alpha"), default=None)
    common.add_argument("--layers", default=None, help="candidate layers, e.g. 2-27 or 3,5,7")
    common.add_argument(
        "--metric",
        default=None,
        help="search metric: choice_logprob (default), vocab_logprob, margin or accuracy",
    )
    common.add_argument(
        "--select",
        choices=("joint", "threshold", "top_k"),
        default=None,
        help="keep-rule: joint (default; set size chosen on validation prompts), threshold, top_k",
    )
    common.add_argument("--top-k", type=int, default=None, help="set size for --select top_k")
    common.add_argument(
        "--val-fraction",
        type=float,
        default=None,
        help="share of the calibration set that validates the joint selection (default 0.5)",
    )
    common.add_argument(
        "--per-task",
        action="store_true",
        default=None,
        help="with several --task: one head set per task instead of one mixed set",
    )
    common.add_argument(
        "--no-controls",
        dest="controls",
        action="store_false",
        default=None,
        help="skip the random-set and contextual-calibration controls in eval/run",
    )
    common.add_argument("--margin", type=float, default=None)
    common.add_argument(
        "--min-z", type=float, default=None, help="keep heads whose gain > MIN_Z stderr"
    )
    common.add_argument("--max-heads", type=int, default=None, help="keep at most this many heads")
    common.add_argument(
        "--screen",
        type=int,
        default=None,
        help="exact-evaluate only the N heads the first-order screen ranks best (default 48; "
        "0: every candidate head)",
    )
    common.add_argument(
        "--schedule",
        choices=("exhaustive", "halving"),
        default=None,
        help="single-head search: every head on every prompt (default) or successive halving",
    )
    common.add_argument(
        "--confidence",
        type=float,
        default=None,
        help="joint selection: a set size counts only if the one-sided lower bound of its "
        "validation accuracy gain at this confidence is above 0 (default 0.9)",
    )
    common.add_argument(
        "--workers",
        default=None,
        help="search workers: auto (default: one Ray worker per core where Ray is installed "
        "and the job is big enough), 1 (in-process) or N Ray workers",
    )
    common.add_argument(
        "--ray-address",
        default=None,
        help="join a running Ray cluster (auto, or ray://host:10001) instead of a local one",
    )
    common.add_argument(
        "--precision",
        choices=("fp32", "bf16", "auto"),
        default=None,
        help="search and evaluation precision: auto (default: bf16 autocast where the hardware "
        "has it natively, else fp32), fp32 or bf16",
    )
    common.add_argument("--batch-size", type=int, default=None)
    common.add_argument("--out", default=None, help="output folder")
    common.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (refused unless it has this config)",
    )
    common.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of another run in --out (only act-lens's own files)",
    )
    for name, text in (
        ("sinks", "sink census with figures"),
        ("search", "ACT head search -> head_set.json"),
        ("eval", "evaluate with and without a head set"),
        ("run", "census -> search -> eval -> report"),
    ):
        sub.add_parser(name, parents=[common], help=text)
    fig = sub.add_parser("figures", help="re-draw all figures of a results folder")
    fig.add_argument("folder")
    sub.add_parser("models", help="the known models and whether they are installed")
    tasks = sub.add_parser("tasks", help="the tasks and where their data must be")
    tasks.add_argument("--data-dir", default=None, help="check this data folder for each task")
    return parser


def _parse_layers(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    out: list[int] = []
    for part in text.split(","):
        try:
            bounds = [int(x) for x in part.split("-")] if part.strip() else []
        except ValueError as err:
            raise ActLensError(
                f"--layers {text!r}: expected numbers and ranges like 2-27 or 3,5,7"
            ) from err
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise ActLensError(f"--layers {text!r}: the range {part} runs backwards")
        if len(bounds) > 2:
            raise ActLensError(f"--layers {text!r}: expected numbers and ranges like 2-27 or 3,5,7")
        out.extend(range(bounds[0], bounds[-1] + 1) if bounds else [])
    return tuple(out)


def resolve_config(argv: Sequence[str]) -> RunConfig:
    """The RunConfig of a command line (flags over ``--config`` over defaults)."""
    return _resolve(argv)[0]


def _resolve(argv: Sequence[str]) -> tuple[RunConfig, list[str], dict[str, bool]]:
    """The RunConfig, notes on what ``--config`` held but does not decide, and the
    ``--resume``/``--overwrite`` options (how to treat --out; not part of the config)."""
    args = _parser().parse_args(list(argv))
    values: dict[str, Any] = {"command": args.command}
    if args.command in CATALOG:
        return RunConfig(command=args.command, data_dir=getattr(args, "data_dir", None)), [], {}
    if args.command == "figures":
        return RunConfig(command="figures", out=args.folder), [], {}
    notes: list[str] = []
    if args.config:
        from act_lens.app.config_file import read_config_file

        from_file, ignored = read_config_file(args.config, RunConfig)
        values.update(from_file)
        if ignored.get("command", args.command) != args.command:
            notes.append(
                f"--config {args.config} was written by '{ignored['command']}'; running "
                f"'{args.command}' as typed"
            )
        if "out" in ignored and args.out is None:
            notes.append(
                f"--config's out {ignored['out']!r} is not used (results never go into another "
                f"run's folder); writing to runs/{args.command}, or pass --out"
            )
    for key in (
        "model",
        "device",
        "data_dir",
        "data_file",
        "prompts",
        "limit",
        "calib_size",
        "balance",
        "shots",
        "head_set",
        "method",
        "unsupervised",
        "beta",
        "threshold",
        "rule",
        "metric",
        "select",
        "top_k",
        "val_fraction",
        "margin",
        "min_z",
        "max_heads",
        "screen",
        "schedule",
        "confidence",
        "workers",
        "ray_address",
        "precision",
        "per_task",
        "controls",
        "batch_size",
        "out",
    ):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.tasks:
        values["tasks"] = tuple(args.tasks)
    if args.seeds:
        values["seeds"] = tuple(args.seeds)
    if args.layers is not None:
        values["layers"] = _parse_layers(args.layers)
    for key in ("tasks", "seeds", "layers"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    values.setdefault("out", f"runs/{args.command}")
    known = set(RunConfig.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ActLensError(f"unknown config keys {sorted(unknown)}; known: {sorted(known)}")
    if values.get("data_file") and "tasks" not in values:
        raise ConfigError(
            "--data-file needs --task naming the file's format (e.g. --task sst2 --data-file "
            "my_sst2.txt); it is never guessed"
        )
    cfg = RunConfig(**values)
    if cfg.data_file and len(cfg.tasks) != 1:
        raise ActLensError("--data-file needs exactly one --task (the file's format)")
    return cfg, notes, {"resume": args.resume, "overwrite": args.overwrite}


def _run_in_folder(
    cfg: RunConfig,
    pipeline: Any,
    checked: Any,
    notes: list[str],
    opts: dict[str, bool],
    argv: Sequence[str],
) -> tuple[Path, str]:
    """Run the command in ``cfg.out``: refuse another run's results, take the folder's lock,
    write config.json and provenance.json, run. Returns the folder and the summary."""
    from act_lens.app import outdir

    out = Path(cfg.out)
    for note in notes:
        print(f"act-lens: note: {note}", file=sys.stderr)
    for notice in checked.notices:
        print(f"act-lens: {notice.kind}: {notice.text}", file=sys.stderr)
    with outdir.OutLock(out):
        if outdir.check_out(cfg, **opts) == "overwrite":  # checked again under the lock
            outdir.clear_outputs(out)
        _RUNNING.append(out)  # from here on, an interrupt leaves progress behind
        atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))
        record = checked.record(cfg, ["act-lens", *argv], notes)
        atomic_write_text(out / "provenance.json", json.dumps(record, indent=2))
        with warnings.catch_warnings():
            # preflight printed these already, with the flags to change
            warnings.simplefilter("ignore", ActLensWarning)
            return out, getattr(pipeline, f"cmd_{cfg.command}")(cfg)


_RUNNING: list[Path] = []  # output folders written by the command running in this process


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    argv = sys.argv[1:] if argv is None else argv
    _RUNNING.clear()
    try:
        cfg, notes, opts = _resolve(argv)
        if cfg.command in CATALOG:  # registries and files only: no checks, no folder, no torch
            from act_lens.app import catalog

            print(
                catalog.models_text()
                if cfg.command == "models"
                else catalog.tasks_text(cfg.data_dir)
            )
            return 0
        from act_lens.app.preflight import preflight

        checked = preflight(cfg)  # bad input ends here, before a model loads or a file is written
        if cfg.command != "figures":
            from act_lens.app import outdir

            outdir.check_out(cfg, **opts)  # another run's results: refused, nothing written
            outdir.check_unlocked(Path(cfg.out))  # a command running there: refused
        from act_lens.app import pipeline

        if cfg.device is not None and cfg.command != "figures":
            from act_lens.models.loading import check_device

            check_device(cfg.device)  # needs torch, so after preflight; still nothing written
        t0 = time.perf_counter()
        out = Path(cfg.out)
        if cfg.command == "figures":
            summary = pipeline.cmd_figures(cfg)
        else:
            out, summary = _run_in_folder(cfg, pipeline, checked, notes, opts, argv)
        print(summary)
        print(f"[act-lens {cfg.command}: {time.perf_counter() - t0:.0f} s, results in {out}]")
        return 0
    except ActLensError as err:
        print(f"act-lens: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as err:  # argparse
        return int(err.code or 0)
    except KeyboardInterrupt:
        where = (
            f"progress saved in {_RUNNING[-1]}; run the same command to resume"
            if _RUNNING
            else "nothing was written"
        )
        print(f"\nact-lens: interrupted; {where}", file=sys.stderr)
        return 130


def entry() -> None:
    raise SystemExit(main())

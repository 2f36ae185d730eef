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
from act_lens.app.flags import add_option, add_run_options, field_named, given
from act_lens.errors import ActLensError, ActLensWarning, ConfigError
from act_lens.io import atomic_write_text

__all__ = ["DEFAULT_TASK", "RunConfig", "entry", "main", "resolve_config"]
CATALOG = ("models", "tasks")  # subcommands that list what act_lens knows


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage error as one ``act-lens: error:`` line like every other error."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


# The subcommands that run on a RunConfig, with their one-line help.
COMMANDS = (
    ("sinks", "sink census with figures"),
    ("search", "ACT head search -> head_set.json"),
    ("eval", "evaluate with and without a head set"),
    ("run", "census -> search -> eval -> report"),
)


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="act-lens", description=__doc__)
    parser.add_argument("--version", action="version", version=f"act-lens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _OneLineParser(add_help=False)
    common.add_argument("--config", help="JSON file with any of the options below (flags win)")
    add_run_options(common)
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
    for name, text in COMMANDS:
        sub.add_parser(name, parents=[common], help=text)
    fig = sub.add_parser("figures", help="re-draw all figures of a results folder")
    fig.add_argument("folder")
    sub.add_parser("models", help="the known models and whether they are installed")
    tasks = sub.add_parser("tasks", help="the tasks and where their data must be")
    add_option(tasks, field_named("data_dir"))
    return parser


def resolve_config(argv: Sequence[str]) -> RunConfig:
    """The RunConfig of a command line (flags over ``--config`` over defaults)."""
    return _resolve(argv)[0]


def _resolve(argv: Sequence[str]) -> tuple[RunConfig, list[str], dict[str, bool]]:
    """The RunConfig, notes on what ``--config`` held but does not decide, and the
    ``--resume``/``--overwrite`` options (how to treat --out; not part of the config).

    Raises:
        ConfigError: a bad flag or value (``RunConfig`` checks every value), or
            ``--data-file`` without ``--task``.
    """
    args = _parser().parse_args(list(argv))
    if args.command in CATALOG:
        return RunConfig(command=args.command, data_dir=getattr(args, "data_dir", None)), [], {}
    if args.command == "figures":
        return RunConfig(command="figures", out=args.folder), [], {}
    values, notes = _from_config_file(args) if args.config else ({}, [])
    values.update(given(args))
    values.setdefault("out", f"runs/{args.command}")
    if values.get("data_file") and "tasks" not in values:
        raise ConfigError(
            "--data-file needs --task naming the file's format (e.g. --task sst2 --data-file "
            "my_sst2.txt); it is never guessed"
        )
    cfg = RunConfig(command=args.command, **values)
    return cfg, notes, {"resume": args.resume, "overwrite": args.overwrite}


def _from_config_file(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The values of ``--config``, and notes on its ``command`` and ``out``, which the command
    line decides."""
    from act_lens.app.config_file import read_config_file

    values, ignored = read_config_file(args.config, RunConfig)
    notes = []
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
    return values, notes


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

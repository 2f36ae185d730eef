"""``report.html``: the interactive, offline report of a results folder, built from its files
alone (no model): the summary table, the census, the selection curves, the attention of a few
prompts before and after ACT, the flips and the run's configuration."""

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

from act_lens.analysis.census import SinkCensus
from act_lens.analysis.patterns import AttentionPatterns
from act_lens.app import views
from act_lens.app.html import document
from act_lens.app.report import results_table
from act_lens.app.report_data import EXAMPLES_FILE, FLIPS_FILE
from act_lens.errors import ConfigError
from act_lens.evaluation.evaluate import EvalResult
from act_lens.evaluation.task_result import load_results
from act_lens.evaluation.tasks import Prompt
from act_lens.hooks.headset import HeadSet, load_head_sets
from act_lens.io import atomic_write_text

REPORT_CSS = """
nav a { margin-right: 14px; }
section { border-top: 1px solid #dde2e8; margin-top: 22px; padding-top: 4px; }
pre { background: #f4f6f9; padding: 10px; overflow-x: auto; font-size: 12px; }
img.al-figure { max-width: 640px; width: 100%; }
"""


def write_report_html(out: "str | os.PathLike[str]") -> Path:
    """Build ``report.html`` in the results folder ``out`` from the files there.

    Sections whose files are absent are left out (the attention examples need
    ``attention_examples.json``, which ``act-lens run`` writes with the model loaded).

    Returns:
        The path of ``report.html``.

    Raises:
        ConfigError: ``out`` is not a folder or holds none of the files a report is made of.

    Example:
        >>> write_report_html("runs/demo")   # doctest: +SKIP
        PosixPath('runs/demo/report.html')
    """
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"{out} is not a results folder")
    config = _json(out / "config.json") or {}
    found = [_summary(out), _census(out), _head_sets(out, config), _attention(out), _flips(out)]
    sections = [s for s in found if s is not None]
    if not sections:
        raise ConfigError(
            f"{out} holds no results.json, census.json, head_set.json or eval/ files to report"
        )
    if config:
        sections.append(
            (
                "config",
                "Run configuration",
                f"<pre>{html.escape(json.dumps(config, indent=2))}</pre>",
            )
        )
    model = config.get("model", "")
    tasks = ", ".join(config.get("tasks", []))
    nav = " ".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _ in sections)
    body = [
        f"<h1>act-lens report{': ' + html.escape(model) if model else ''}</h1>",
        f'<p class="al-note">Tasks: {html.escape(tasks or "-")}. Built from the files in this '
        "folder; works offline (open it from disk in any browser).</p>",
        f"<nav>{nav}</nav>",
        *(f'<section id="{sid}"><h2>{html.escape(title)}</h2>{part}</section>' for sid, title, part in sections),
    ]  # fmt: skip
    path = out / "report.html"
    atomic_write_text(
        path, document(f"act-lens report {model}".strip(), "\n".join(body), extra_css=REPORT_CSS)
    )
    return path


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _md_table(markdown: str) -> str:
    """A Markdown pipe table (``results_table``) as an HTML table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]

    def cells(line: str) -> list[str]:
        return [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]

    head = "".join(f"<th>{c}</th>" for c in cells(lines[0]))
    rows = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in cells(line)) + "</tr>" for line in lines[2:]
    )
    return f'<table class="al-table"><tr>{head}</tr>{rows}</table>'


def _png(path: Path, alt: str) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="al-figure" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _summary(out: Path) -> tuple[str, str, str] | None:
    if not (out / "results.json").exists():
        return None
    results = load_results(out / "results.json")
    if not results:
        return None
    note = (
        '<p class="al-note">Accuracy in % [95% bootstrap interval]; delta: ACT minus baseline in '
        "points with a paired bootstrap interval; p: exact McNemar test; flips: examples ACT "
        "fixed / broke. Controls: a random head set of the same size, contextual calibration "
        "(CC), CC on top of ACT, and ACT paired with CC.</p>"
    )
    figure = _png(out / "figures" / "eval_comparison.png", "accuracy with and without ACT")
    return (
        "summary",
        "Accuracy with and without ACT",
        _md_table(results_table(results)) + note + figure,
    )


def _census(out: Path) -> tuple[str, str, str] | None:
    if not (out / "census.json").exists():
        return None
    return "census", "Hidden sinks", views.census_view(SinkCensus.load(out / "census.json")).body()


def _head_sets(out: Path, config: dict[str, Any]) -> tuple[str, str, str] | None:
    found: list[tuple[str, HeadSet]] = []
    for path in sorted(out.glob("head_set*.json")):
        if path.name == "head_sets.json":  # the per-task bundle of the files listed here
            continue
        found.append((path.stem.removeprefix("head_set").lstrip("_"), HeadSet.load(path)))
    given = Path(config.get("head_set") or "")
    if not found and config.get("head_set") and given.is_file():  # run with --head-set
        found = [(task or "", hs) for task, hs in load_head_sets(given).items()]
    parts = []
    for tag, hs in found:
        parts.append(
            f"<h3>{html.escape(tag or 'all tasks')}</h3><p>{html.escape(hs.summary())}</p>"
        )
        if hs.provenance.get("curve"):
            parts.append(
                views.selection_curve(hs, title=f"Joint selection ({tag or 'all tasks'})").body()
            )
    return ("heads", "Head sets", "".join(parts)) if parts else None


def _attention(out: Path) -> tuple[str, str, str] | None:
    saved = _json(out / EXAMPLES_FILE)
    if not saved or not saved.get("examples"):
        return None
    parts = [
        f'<p class="al-note">{len(saved["examples"])} prompts of {html.escape(saved["task"])}, '
        f"in the head set ({html.escape(saved['heads'])})"
        + (f"; {html.escape(saved['note'])}" if saved.get("note") else "")
        + ". Before: the plain model; after: with the intervention.</p>"
    ]
    for ex in saved["examples"]:
        patterns = AttentionPatterns.from_dict(ex["patterns"])
        title = f"{ex['uid']} (gold {ex['gold']!r}; prediction {ex['change']})"
        parts.append(views.attention_view(patterns, title=title).body())
    return "attention", "Attention before and after", "".join(parts)


def _flips(out: Path) -> tuple[str, str, str] | None:
    texts = _json(out / FLIPS_FILE) or {}
    parts = []
    for act in sorted((out / "eval").glob("*_act.json")):
        stem = act.name.removesuffix("_act.json")
        base_path = act.with_name(f"{stem}_baseline.json")
        if not base_path.exists():
            continue
        base, treated = EvalResult.load(base_path), EvalResult.load(act)
        key = next((k for k in texts if k.replace("/", "_") == stem), stem)
        prompts = {
            uid: Prompt(uid, t["text"], tuple(t["choices"]), 0, t["text"], tuple(t["choices"]), {})
            for uid, t in texts.get(key, {}).items()
        }
        parts.append(views.flips(base, treated, prompts=prompts).body())
    return ("flips", "Predictions that changed", "".join(parts)) if parts else None

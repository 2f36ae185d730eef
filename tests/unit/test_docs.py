"""The documentation site builds with ``mkdocs build --strict`` (no broken link, reference or
docstring section), and every page the package's docstrings point to exists."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Markdown files the package names that are not documentation pages: data folders' notes and
# what a run writes.
NOT_PAGES = {"README.md", "SOURCE.md", "report.md"}
TOOLING = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter")


def test_the_site_builds_strictly(tmp_path):
    missing = [m for m in TOOLING if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"docs tooling not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ("index.html", "concepts/index.html", "results-schema/index.html"):
        assert (site / page).is_file(), page
    assert "act_lens walkthrough" in (site / "walkthrough" / "index.html").read_text()
    api = (site / "api" / "index.html").read_text()
    for name in ("ActConfig", "intervention_for", "TaskResult", "search_heads", "ActLensLM"):
        assert 'id="act_lens.' in api and name in api, name
    assert (site / "figures" / "smollm2-135m_attention_map.png").is_file()


def test_docstrings_point_to_pages_that_exist():
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    for path in (REPO / "act_lens").rglob("*.py"):
        for name in re.findall(r"\b([\w-]+\.md)\b", path.read_text()):
            if name in NOT_PAGES:
                continue
            assert name in pages, f"{path.relative_to(REPO)} points to {name}, not in docs/"

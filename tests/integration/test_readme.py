"""The README's quick start runs (on the tiny random model, at small sizes), and the
documentation's getting-started page shows the same code."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
GETTING_STARTED = README.parent / "docs" / "getting-started.md"
QUICK_START = r"```python\n(import torch\nimport act_lens as al.*?)```"

SMALL = [
    ('"smollm2-135m"', '"tiny-random"'),
    ("[:32]", "[:4]"),
    ('calibration_mix(["reviews"], 48)', 'calibration_mix(["reviews"], 6)'),
    ("screen=40", "screen=6"),
    ("max_heads=10", "max_heads=3"),
    ("model, calib, selection", "model, calib, layers=[1, 2], selection"),
    ("blocks.10.", "blocks.1."),
    ("limit=200", "limit=8"),
]


def test_readme_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(QUICK_START, text, re.S)
    assert block, "README lost its notebook example"
    code = block.group(1)
    for old, new in SMALL:
        assert old in code, f"README example changed: {old!r} not found; update this test"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "head_set.json").exists()
    assert namespace["logits"].shape[0] == 1


def test_the_docs_quick_start_is_the_readmes():
    readme = re.search(QUICK_START, README.read_text(), re.S)
    docs = re.search(QUICK_START, GETTING_STARTED.read_text(), re.S)
    assert readme and docs and docs.group(1) == readme.group(1)

"""The README's notebook example runs (on the tiny random model, at small sizes)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

SMALL = [
    ('"smollm2-135m"', '"tiny-random"'),
    ("[:32]", "[:4]"),
    ('calibration_mix(["reviews"], 48)', 'calibration_mix(["reviews"], 6)'),
    ("screen=40, max_heads=10", "screen=6, max_heads=3, layers=[1, 2]"),
    ("blocks.10.", "blocks.1."),
    ("limit=200", "limit=8"),
]


def test_readme_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"```python\n(import torch\nimport act_lens as al.*?)```", text, re.S)
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

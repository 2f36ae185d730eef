"""The pure core never imports transformer_lens (style.md: pure core, thin adapters)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import act_lens.core

CORE_MODULES = ["act_lens.core.sinks", "act_lens.core.calibrate", "act_lens.core.token_classes"]
FORBIDDEN = ("transformer_lens",)
# The core sources must not even name Hugging Face transformers (act_lens's own __init__ may
# load other parts of the package, so the sys.modules check is about transformer_lens only).
FORBIDDEN_IN_SOURCE = ("transformer_lens", "transformers")

_SCRIPT = """
import json, sys
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_import(*names: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_importing_the_core_does_not_import_transformer_lens() -> None:
    loaded = _modules_after_import(*CORE_MODULES)
    assert set(CORE_MODULES) <= set(loaded)  # the check looked at a real import
    offenders = [m for m in loaded if any(_is_under(m, pkg) for pkg in FORBIDDEN)]
    assert offenders == []


@pytest.mark.parametrize(
    "path", sorted(Path(act_lens.core.__file__).parent.glob("*.py")), ids=lambda p: p.name
)
def test_core_sources_do_not_import_transformer_lens(path: Path) -> None:
    # Also lazily: an import inside a function would escape the sys.modules check above.
    tree = ast.parse(path.read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert not [m for m in imported if any(_is_under(m, pkg) for pkg in FORBIDDEN_IN_SOURCE)]
    assert not [
        m
        for m in imported
        if _is_under(m, "act_lens")
        and not (_is_under(m, "act_lens.core") or m == "act_lens.errors")
    ], "the core depends only on itself and act_lens.errors"

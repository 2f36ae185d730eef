"""``report.html`` and a saved attention view, opened in headless Chromium (marker ``browser``):
no console error, no network request, the plots drawn, the prompt's tokens on the page.

The run is ``act-lens run`` on the tiny random model with a given head set (seconds). The
browser is Debian's ``chromium``; the tests skip where it is not installed.
"""

import io
import json

import pytest

from act_lens.app import views
from act_lens.app.cli import main
from act_lens.core.settings import SinkSettings
from act_lens.hooks.act import ActConfig
from act_lens.hooks.headset import HeadSet
from tests.chromium import Chromium, find_chromium

PROMPT = "Review: a fine, sturdy case.\nSentiment:"
HEADS = {1: [0, 2], 2: [1]}
needs_chromium = pytest.mark.skipif(
    find_chromium() is None,
    reason="chromium not installed (apt-get install chromium): the browser tests open the pages in it",
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    HeadSet(HEADS).save(root / "head_set.json")
    out = root / "run"
    argv = ["run", "--model", "tiny-random", "--task", "reviews", "--batch-size", "4",
            "--limit", "8", "--layers", "0-2", "--threshold", "0.05", "--no-controls",
            "--head-set", str(root / "head_set.json"), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def display(token: str) -> str:
    """A token as the page shows it (views.js ``tokenText``)."""
    if token == "":
        return "\u2205"
    return token.replace(" ", "\u2423").replace("\n", "\u21b5").replace("\t", "\u21e5")


def test_run_writes_report_html_and_figures_rebuilds_it_without_a_model(run_dir, monkeypatch):
    page = (run_dir / "report.html").read_text()
    for section in ("summary", "census", "heads", "attention", "flips", "config"):
        assert f'<section id="{section}">' in page
    saved = json.loads((run_dir / "attention_examples.json").read_text())
    assert len(saved["examples"]) == 3
    assert all(ex["patterns"]["after"] is not None for ex in saved["examples"])
    assert [tuple(h) for h in saved["examples"][0]["patterns"]["heads"]] == [(1, 0), (1, 2), (2, 1)]

    import act_lens.models.loading as loading

    def no_model(*a, **k):
        raise AssertionError("figures must not load a model")

    monkeypatch.setattr(loading, "load_model", no_model)
    (run_dir / "report.html").unlink()
    assert main(["figures", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_text() == page  # the same page, from files alone


def blank_plots(png: bytes, boxes: list[dict]) -> list[dict]:
    """Plot boxes that the screenshot shows as (nearly) one colour."""
    from PIL import Image

    shot = Image.open(io.BytesIO(png)).convert("RGB")
    blank = []
    for b in boxes:
        crop = shot.crop(
            (int(b["x"]), int(b["y"]), int(b["x"] + b["width"]), int(b["y"] + b["height"]))
        )
        colours = crop.getcolors(maxcolors=1 << 16)
        if colours is not None and len(colours) < 4:
            blank.append(b)
    return blank


def offline_problems(page) -> list[str]:
    outside = [u for u in page.requests if not u.startswith(("file:", "data:"))]
    return page.errors + [f"network request: {u}" for u in outside]


def shown_tokens(page) -> list[list[str]]:
    return page.evaluate(
        "Array.from(document.querySelectorAll('.al-view[data-act-lens=attention]'))"
        ".map(v => Array.from(v.querySelectorAll('.al-tok')).map(s => s.textContent))"
    )


@pytest.mark.browser
@needs_chromium
def test_report_opens_offline_in_chromium(run_dir, tmp_path):
    examples = json.loads((run_dir / "attention_examples.json").read_text())["examples"]
    with Chromium(width=1280, height=900) as browser:
        page = browser.open((run_dir / "report.html").as_uri())
        assert offline_problems(page) == []
        assert shown_tokens(page) == [
            [display(t) for t in ex["patterns"]["tokens"]] for ex in examples
        ]
        text = page.text()
        assert "Accuracy with and without ACT" in text and "Sink census" in text
        boxes = page.plot_boxes()
        # census: 2 maps; each example: 3 thumbnails + before and after
        assert len(boxes) == 2 + 3 * (3 + 2)
        png = page.screenshot(tmp_path / "report.png")
        assert blank_plots(png, boxes) == []
    assert browser.proc.poll() is not None  # the browser is stopped


@pytest.mark.browser
@needs_chromium
def test_saved_attention_view_opens_offline_and_responds(tiny, tmp_path):
    act = ActConfig(HeadSet(HEADS), SinkSettings(threshold=0.05))
    view = views.attention(tiny, PROMPT, layers=[1, 2], intervention=act)
    path = view.save(tmp_path / "attention.html")
    tokens = [tiny.tokenizer.decode([t]) for t in tiny.tokenizer(PROMPT).input_ids]
    with Chromium(width=1100, height=900) as browser:
        page = browser.open(path.as_uri())
        assert shown_tokens(page) == [[display(t) for t in tokens]]
        boxes = page.plot_boxes()
        assert len(boxes) == 8 + 2  # 2 layers x 4 heads, then the chosen head before/after
        assert blank_plots(page.screenshot(), boxes) == []
        # switch the grid to "after - before", open another head, hover a weight
        page.evaluate(
            "document.querySelectorAll('.al-buttons button')[2].click();"
            "document.querySelectorAll('.al-thumb')[5].click();"
            "const c = document.querySelector('.al-detail canvas'), r = c.getBoundingClientRect();"
            "c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + 0.3 * r.width, clientY: r.top + 0.7 * r.height}));"
        )
        assert "L2 H1" in page.evaluate("document.querySelector('.al-tip').textContent")
        assert offline_problems(page) == []
        assert blank_plots(page.screenshot(), page.plot_boxes()) == []


@pytest.mark.browser
@needs_chromium
def test_the_checks_catch_errors_requests_and_blank_plots(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><div class="al-view"><canvas width="80" height="80"></canvas></div>'
        '<img src="http://127.0.0.1:9/x.png"><script>throw new Error("boom")</script></body></html>'
    )
    with Chromium() as browser:
        page = browser.open(bad.as_uri())
        problems = offline_problems(page)
        assert any("boom" in p for p in problems)
        assert any(p.startswith("network request: http://127.0.0.1:9/") for p in problems)
        boxes = page.plot_boxes()
        assert len(boxes) == 1 and blank_plots(page.screenshot(), boxes) == boxes

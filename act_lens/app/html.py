"""HTML pages and notebook fragments for the views: the JavaScript and CSS of
``act_lens/app/assets`` are inlined, the data is embedded as JSON, nothing is fetched.

A page carries a Content-Security-Policy that allows only inline scripts and styles and
``data:`` images, so a view that tried to load anything from a network would be blocked (and
say so in the browser console) rather than work online only.
"""

import html
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parent / "assets"
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"


@cache
def asset(name: str) -> str:
    """The text of ``act_lens/app/assets/<name>``."""
    return (ASSETS / name).read_text(encoding="utf-8")


def json_script(payload: Any) -> str:
    """``payload`` as a JSON ``<script>`` block that no string inside it can end early."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    # "</script>" or "<!--" inside a token would otherwise close or confuse the block
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f'<script type="application/json">{text}</script>'


def view_div(kind: str, payload: Any) -> str:
    """One view's element: the script mounts it by ``kind`` from the embedded JSON."""
    return f'<div class="al-view" data-act-lens="{html.escape(kind)}">{json_script(payload)}</div>'


def document(title: str, body: str, *, extra_css: str = "") -> str:
    """A standalone page: ``body`` with the views' CSS and JavaScript inlined."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
<style>
body {{ margin: 24px auto; max-width: 1240px; padding: 0 20px; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2430; }}
{asset("views.css")}{extra_css}
</style>
</head>
<body>
{body}
<script>
{asset("views.js")}
</script>
</body>
</html>
"""


def fragment(body: str) -> str:
    """``body`` for a notebook cell (``_repr_html_``): CSS and JavaScript inlined, the views
    mounted as soon as the cell's output is shown."""
    root = f"al-{uuid.uuid4().hex[:12]}"
    return (
        f'<div id="{root}"><style>{asset("views.css")}</style>{body}</div>'
        f"<script>{asset('views.js')}\n"
        f'window.ActLensViews.mountAll(document.getElementById("{root}"));</script>'
    )

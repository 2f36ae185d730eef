"""Headless Chromium for tests and benchmarks, driven over the Chrome DevTools protocol through
a pipe (``--remote-debugging-pipe``: no port is opened and no websocket library is needed).

    with Chromium() as browser:
        page = browser.open(Path("report.html").as_uri())
        page.errors, page.requests, page.text(), page.screenshot(path)

Every page records its console errors, uncaught exceptions, log errors (a blocked load, a
Content-Security-Policy violation) and every request it made. ``Chromium`` always stops the
browser on exit.
"""

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# Flags that keep a headless browser from reaching the network on its own (updates, sync,
# field trials...), so that any request seen comes from the page.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--hide-scrollbars",
    "--mute-audio",
]


def find_chromium() -> str | None:
    """The Chromium executable (Debian's ``chromium`` first), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"):
        path = shutil.which(name)
        if path:
            return path
    return None


class ProtocolError(RuntimeError):
    pass


class Chromium:
    def __init__(self, executable: str | None = None, *, width: int = 1280, height: int = 900):
        exe = executable or find_chromium()
        if exe is None:
            raise FileNotFoundError("no chromium executable found (apt-get install chromium)")
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="act-lens-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def child_fds() -> None:
            # The protocol pipe is fd 3 (commands in) and fd 4 (replies and events out).
            a = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log = open(Path(self.profile) / "stderr.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                exe,
                *FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            preexec_fn=child_fds,
            pass_fds=(3, 4),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for m in messages:
                self._inbox.put(json.loads(m))

    def _pump(self, timeout: float) -> bool:
        try:
            msg = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return False
        if msg is None:
            raise ProtocolError(f"chromium closed the protocol pipe (log: {self.log.name})")
        if "id" in msg:
            self._replies[msg["id"]] = msg
        else:
            self.events.append(msg)
        return True

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while self._next_id not in self._replies:
            if time.monotonic() > deadline:
                raise ProtocolError(f"{method}: no reply in {timeout} s")
            self._pump(0.1)
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise ProtocolError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, predicate: Any, timeout: float) -> dict[str, Any]:
        """The first event (already received or arriving) for which ``predicate`` is true."""
        deadline, seen = time.monotonic() + timeout, 0
        while True:
            for ev in self.events[seen:]:
                if predicate(ev):
                    return ev
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise ProtocolError(f"no matching event in {timeout} s")
            self._pump(0.1)

    def open(self, url: str, *, timeout: float = 30.0) -> "Page":
        """A new tab at ``url``, loaded and with its act_lens views drawn."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        page.navigate(url, timeout=timeout)
        return page

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5.0)
            except (ProtocolError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Page:
    def __init__(self, browser: Chromium, session: str):
        self.browser, self.session = browser, session
        self.load_seconds = float("nan")

    def _mine(self) -> list[dict[str, Any]]:
        return [e for e in self.browser.events if e.get("sessionId") == self.session]

    def navigate(self, url: str, *, timeout: float = 30.0) -> None:
        """Load ``url`` and wait until the act_lens views say they are drawn (or, for a page
        without views, until the load event)."""
        start = time.perf_counter()
        before = len(self.browser.events)
        self.browser.send("Page.navigate", {"url": url}, self.session)
        self.browser.wait_for(
            lambda e: (
                e.get("sessionId") == self.session
                and e["method"] == "Page.loadEventFired"
                and self.browser.events.index(e) >= before
            ),
            timeout,
        )
        deadline = time.monotonic() + timeout
        while self.evaluate(
            "document.querySelector('.al-view[data-act-lens]') !== null"
        ) and not self.evaluate("document.documentElement.getAttribute('data-act-lens-ready')"):
            if time.monotonic() > deadline:
                raise ProtocolError(f"{url}: views not drawn in {timeout} s")
            time.sleep(0.02)
        self.load_seconds = time.perf_counter() - start

    def evaluate(self, expression: str) -> Any:
        result = self.browser.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session
        )
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries of this page."""
        out = []
        for e in self._mine():
            p = e.get("params", {})
            if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif e["method"] == "Runtime.exceptionThrown":
                details = p["exceptionDetails"]
                out.append(str(details.get("exception", {}).get("description", details)))
            elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
                out.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}")
        return out

    @property
    def requests(self) -> list[str]:
        """URLs of every request the page made (its own document included)."""
        return [
            e["params"]["request"]["url"]
            for e in self._mine()
            if e["method"] == "Network.requestWillBeSent"
        ]

    def text(self) -> str:
        return self.evaluate("document.body.innerText")

    def plot_boxes(self) -> list[dict[str, float]]:
        """Page coordinates of every drawn plot (canvas and svg inside a view)."""
        return self.evaluate(
            "Array.from(document.querySelectorAll('.al-view canvas, .al-view svg')).map(e => {"
            " const r = e.getBoundingClientRect();"
            " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })"
        )

    def screenshot(
        self, path: "str | os.PathLike[str] | None" = None, *, top: float = 0, height: float = 0
    ) -> bytes:
        """A PNG of the whole page (beyond the viewport), or of ``height`` pixels from ``top``;
        written to ``path`` when given."""
        size = self.browser.send("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
        height = min(height or size["height"], size["height"] - top)
        clip = {"x": 0, "y": top, "width": size["width"], "height": height, "scale": 1}
        shot = self.browser.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            self.session,
        )
        png = base64.b64decode(shot["data"])
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(png)
        return png


if (
    __name__ == "__main__"
):  # a screenshot: python tests/chromium.py PAGE PNG [--from CSS] [--height PX]
    import argparse

    args = argparse.ArgumentParser()
    args.add_argument("page")
    args.add_argument("png")
    args.add_argument("--width", type=int, default=1280)
    args.add_argument("--from", dest="start", help="CSS selector of the element to start at")
    args.add_argument("--height", type=float, default=0, help="pixels (default: to the end)")
    a = args.parse_args()
    with Chromium(width=a.width) as browser:
        page = browser.open(Path(a.page).resolve().as_uri())
        print(f"drawn in {page.load_seconds:.2f} s; errors: {page.errors}")
        top = 0.0
        if a.start:
            top = page.evaluate(
                f"document.querySelector({json.dumps(a.start)}).getBoundingClientRect().top + scrollY"
            )
        page.screenshot(a.png, top=top, height=a.height)

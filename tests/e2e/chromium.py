"""Headless Chromium driven over the DevTools protocol, for the browser e2e tests.

Chromium is the Debian package (``/usr/bin/chromium``, installed by ``make test`` when missing);
the protocol is spoken with ``websockets`` (already in the lock, via uvicorn), so no browser
automation framework is needed. Each :class:`Chromium` gets a fresh profile folder.

    with Chromium(profile_dir) as browser:
        browser.set_cookie("_token", jwt, "http://127.0.0.1:8080")
        browser.open("http://127.0.0.1:8080/dags/my_dag")
        text = browser.wait_for_text(["my_dag"], timeout=60)
        browser.screenshot(path)
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = os.environ.get("LAKEHOUSE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--mute-audio", "--window-size=1440,1000", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1"]  # fmt: skip

# innerText of the page plus the text of every same-origin iframe in it (the plugin views embed one).
PAGE_TEXT_JS = """
(() => {
  const texts = [document.body ? document.body.innerText : ""];
  for (const frame of document.querySelectorAll("iframe")) {
    try { if (frame.contentDocument && frame.contentDocument.body) texts.push(frame.contentDocument.body.innerText); }
    catch (e) { texts.push("[cross-origin iframe]"); }
  }
  return texts.join("\\n");
})()
"""


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools command failed."""


class Chromium:
    """One headless Chromium process with one page, controlled through the DevTools protocol."""

    def __init__(self, profile_dir: Path, *, start_timeout: float = 30.0) -> None:
        self.profile_dir = profile_dir
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: ClientConnection | None = None
        self.session: str | None = None
        self._ids = itertools.count(1)
        self.console: list[str] = []

    def __enter__(self) -> Chromium:
        if not Path(CHROMIUM).exists():
            raise BrowserError(f"{CHROMIUM} not found: `make test` installs it (apt-get install chromium)")
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.profile_dir.parent / f"{self.profile_dir.name}.log", "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile_dir}", "about:blank"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        port_file = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BrowserError(f"Chromium did not open its DevTools port (see {log.name})")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        # No keepalive pings: a test may leave the page idle for minutes while a run goes on.
        self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=10, ping_interval=None)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=1440, height=1000, deviceScaleFactor=1,
                  mobile=False)  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop this Chromium (its own process group) and close the socket."""
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def call(self, method: str, *, session: bool = False, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events arriving meanwhile are skipped)."""
        assert self.ws is not None
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"DevTools {method} timed out")
            reply = json.loads(self.ws.recv(timeout=remaining))
            if reply.get("method") == "Runtime.consoleAPICalled":
                args = reply["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})

    def set_cookie(self, name: str, value: str, url: str) -> None:
        """Set a cookie for ``url`` (httpOnly, as Airflow sets its ``_token``)."""
        result = self.call("Network.setCookie", session=True, name=name, value=value, url=url, httpOnly=True)
        if not result.get("success", True):
            raise BrowserError(f"could not set cookie {name} for {url}")

    def open(self, url: str) -> None:
        """Navigate the page to ``url``."""
        result = self.call("Page.navigate", session=True, url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def fill(self, selector: str, value: str) -> None:
        """Set the value of the input ``selector`` names as typing would (React sees an input and a change event)."""
        ok = self.evaluate(
            f"""(() => {{ const el = document.querySelector({json.dumps(selector)}); if (!el) return false;
            el.focus();
            Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(el, {json.dumps(value)});
            el.dispatchEvent(new Event('input', {{bubbles: true}}));
            el.dispatchEvent(new Event('change', {{bubbles: true}}));
            return true; }})()"""
        )
        if not ok:
            raise BrowserError(f"no {selector} on {self.location()}")

    def click_text(self, text: str, selector: str = "button, a, [role=menuitem]") -> None:
        """Click the last element matching ``selector`` whose visible text is exactly ``text``."""
        ok = self.evaluate(
            f"""(() => {{ const els = [...document.querySelectorAll({json.dumps(selector)})]
              .filter(e => e.innerText && e.innerText.trim() === {json.dumps(text)});
            if (!els.length) return false; els[els.length - 1].click(); return true; }})()"""
        )
        if not ok:
            raise BrowserError(f"nothing to click named {text!r} on {self.location()}")

    def location(self) -> str:
        return str(self.evaluate("location.href"))

    def text(self) -> str:
        """The visible text of the page and of its same-origin iframes."""
        return str(self.evaluate(PAGE_TEXT_JS) or "")

    def wait_for_text(self, needles: list[str], *, timeout: float = 60.0) -> str:
        """Wait until every needle appears in :meth:`text`; return that text (raise with what was seen)."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(n in text for n in needles):
                return text
            time.sleep(0.5)
        missing = [n for n in needles if n not in text]
        raise BrowserError(f"{missing} never appeared on {self.location()}; page text was:\n{text[:3000]}")

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the page's viewport to ``path``."""
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

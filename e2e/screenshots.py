"""A real headless Chromium, driven over the DevTools protocol: the ui scenario's browser."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from e2e.deployment import free_port, wait_for

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


class Browser:
    """One Chromium page: navigate, run a script, type and click as a user does, take a PNG."""

    def __init__(self) -> None:
        chromium = shutil.which("chromium")
        if chromium is None:
            raise RuntimeError("Chromium is not installed (Debian: apt-get install chromium)")
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="trackly-chromium-")
        self.process = subprocess.Popen(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--remote-debugging-port={self.port}",
                f"--user-data-dir={self.profile}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        devtools = f"http://127.0.0.1:{self.port}"
        wait_for("Chromium's DevTools endpoint", lambda: self._reachable(devtools), timeout=30, every=0.2)
        page = httpx.put(f"{devtools}/json/new?about:blank", timeout=10).json()
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.ids = itertools.count(1)

    @staticmethod
    def _reachable(url: str) -> bool:
        try:
            return httpx.get(f"{url}/json/version", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            answer = json.loads(self.socket.recv())
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer.get("result", {}))

    def evaluate(self, script: str) -> Any:
        result = self.send("Runtime.evaluate", expression=script, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for_text(self, text: str, timeout: float = 30) -> None:
        script = f"document.body && document.body.innerText.includes({json.dumps(text)})"
        wait_for(f"the page to show {text!r}", lambda: self.evaluate(script), timeout=timeout, every=0.5)

    def click(self, text: str, selector: str = "button") -> None:
        """Click the last element matching ``selector`` whose text or aria-label contains ``text``."""
        script = f"""(() => {{
            const all = [...document.querySelectorAll({json.dumps(selector)})].filter(e =>
                (e.innerText || '').includes({json.dumps(text)}) ||
                (e.getAttribute('aria-label') || '').includes({json.dumps(text)}));
            if (!all.length) return false;
            all[all.length - 1].click();
            return true;
        }})()"""
        wait_for(f"a {selector} showing {text!r}", lambda: self.evaluate(script), timeout=30, every=0.5)

    def type(self, selector: str, text: str) -> None:
        """Focus the element matching ``selector``, select what it holds, and type ``text`` over it."""
        script = f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return false;
            e.focus();
            if (e.select) e.select();
            return true;
        }})()"""
        wait_for(f"an element {selector}", lambda: self.evaluate(script), timeout=30, every=0.5)
        self.send("Input.insertText", text=text)

    def fill(self, selector: str, value: str) -> None:
        """
        Set the input matching ``selector`` to ``value`` as its picker does (the value, then its
        ``input`` and ``change`` events): a date input takes ``YYYY-MM-DD`` whatever the locale.
        """
        script = f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return false;
            const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
            setter.call(e, {json.dumps(value)});
            e.dispatchEvent(new Event('input', {{bubbles: true}}));
            e.dispatchEvent(new Event('change', {{bubbles: true}}));
            return e.value === {json.dumps(value)};
        }})()"""
        wait_for(f"{selector} to hold {value!r}", lambda: self.evaluate(script), timeout=30, every=0.5)

    def press_in_row(self, row_text: str, label: str) -> None:
        """Click the button labelled ``label`` in the table row that shows ``row_text``."""
        script = f"""(() => {{
            const rows = [...document.querySelectorAll('tr')];
            const row = rows.find(r => r.innerText.includes({json.dumps(row_text)}));
            const button = row && row.querySelector('button[aria-label={json.dumps(label)}]');
            if (!button) return false;
            button.click();
            return true;
        }})()"""
        wait_for(
            f"{label!r} in the row of {row_text!r}", lambda: self.evaluate(script), timeout=30, every=0.5
        )

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''"))

    def open(self, url: str) -> None:
        self.send("Page.enable")
        self.send("Page.navigate", url=url)

    def screenshot(self, path: Path) -> None:
        time.sleep(1.5)  # let transitions settle
        png = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(png))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

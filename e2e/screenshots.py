"""Screenshots of the Airflow UI by a real headless Chromium, driven over the DevTools protocol."""

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
    """One Chromium page: navigate, run a script, take a PNG."""

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


def take_screenshots(base_url: str, token: str, dag_id: str, connection_id: str, out: Path) -> None:
    """The Trackly connection's edit form, and the DAG's manual trigger form with its date params."""
    browser = Browser()
    try:
        browser.send("Network.enable")
        browser.send("Network.setCookie", name="_token", value=token, url=base_url, path="/")
        browser.open(f"{base_url}/connections")
        browser.wait_for_text(connection_id)
        browser.click("Edit")
        browser.wait_for_text("API key")
        browser.screenshot(out / "connection-form.png")
        browser.open(f"{base_url}/dags/{dag_id}")
        browser.click("Trigger")
        browser.wait_for_text("start_date")
        browser.screenshot(out / "trigger-form.png")
    finally:
        browser.close()

"""Run the sandbox as a subprocess on a free loopback port: for demos, tests and users' own tests."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trackly_provider.sandbox import SANDBOX_API_KEY


def start_sandbox(
    workdir: Path, api_key: str = SANDBOX_API_KEY, timeout: float = 30.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m trackly_provider.sandbox --port 0``; return the process and its base URL."""
    port_file = workdir / "sandbox.port"
    port_file.unlink(missing_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trackly_provider.sandbox",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--api-key",
            api_key,
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_sandbox(process)
            raise RuntimeError(f"the Trackly sandbox did not start within {timeout:.0f} s")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text().strip()}"


def stop_sandbox(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_sandbox(workdir: Path | None = None, api_key: str = SANDBOX_API_KEY) -> Iterator[str]:
    """Yield a running sandbox's base URL; the sandbox is stopped however the block ends."""
    with tempfile.TemporaryDirectory() as scratch:
        process, url = start_sandbox(workdir or Path(scratch), api_key)
        try:
            yield url
        finally:
            stop_sandbox(process)

"""
``max_response_bytes``: an answer is read up to its limit and no further, whatever the server sends.

Real HTTP over loopback against tests/hostile_servers.py: 1 GiB bodies (with Content-Length, chunked,
ended by closing) and a 1 MiB gzip body inflating to 1 GiB. Peak memory is measured in a fresh
Python process (``ru_maxrss`` is a process's peak, so the test process's own history would hide it),
against the same process making one normal request to the real sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers import CLICK_RECORD, HOOK_KEY, REPO, set_trackly_connection
from tests.hostile_servers import GIB, brotli, gzip_bomb, gzip_bomb_body, huge, running
from trackly_provider.exceptions import (
    TracklyResponseError,
    TracklyRetriesExhaustedError,
)
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.sandbox import SANDBOX_API_KEY

KEY, RECORD = HOOK_KEY, CLICK_RECORD
HUGE_200 = {
    "Content-Length": huge("length"),
    "chunked": huge("chunked"),
    "ended by closing": huge("close"),
    "gzip bomb": gzip_bomb,
}
MEMORY_SLACK_MIB = 8

PROBE_PREFIX = "bounded-answer-probe: "
# A fresh Python: one TracklyHook call against AIRFLOW_CONN_TRACKLY_DEFAULT, then its peak RSS.
PROBE = f"""
import json, resource, sys
from trackly_provider.hooks.trackly import TracklyHook

call, kwargs = sys.argv[1], json.loads(sys.argv[2])
hook = TracklyHook(**kwargs)
record = {RECORD!r}
try:
    if call == "lists":
        hook.check_access()
    else:
        getattr(hook, "import_" + call)([record])
    outcome = {{"error": None}}
except Exception as exc:
    outcome = {{"error": type(exc).__name__, "message": str(exc)}}
outcome["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print({PROBE_PREFIX!r} + json.dumps(outcome))
"""


def probe(url: str, api_key: str, call: str = "clicks", **kwargs: object) -> dict:
    """Run PROBE in a fresh Python against ``url``: its outcome and peak RSS in MiB."""
    conn = {"conn_type": "trackly", "host": url, "password": api_key}
    env = {**os.environ, "AIRFLOW_CONN_TRACKLY_DEFAULT": json.dumps(conn), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, call, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith(PROBE_PREFIX)]
    return json.loads(line[len(PROBE_PREFIX) :])


@pytest.fixture(scope="module")
def normal_peak_mib(sandbox_server) -> float:
    """The probe's peak RSS for one click imported into the real sandbox (the highest of two runs)."""
    peaks = []
    for _ in range(2):
        outcome = probe(sandbox_server.url, SANDBOX_API_KEY)
        assert outcome["error"] is None, outcome
        peaks.append(outcome["peak_mib"])
    return max(peaks)


@pytest.fixture(params=list(HUGE_200))
def huge_200(request):
    gzip_bomb_body()  # made once, before the client waits for it
    with running(HUGE_200[request.param]) as server:
        yield server


def hook_for(server, monkeypatch, **kwargs) -> TracklyHook:
    set_trackly_connection(monkeypatch, server.url, KEY)
    return TracklyHook(backoff_base=0, **kwargs)


def test_the_gzip_bomb_is_about_1_mib_and_inflates_to_1_gib():
    import zlib

    body = gzip_bomb_body()
    assert len(body) < 1.1 * 1024 * 1024
    inflater = zlib.decompressobj(31)
    inflated = 0
    for start in range(0, len(body), 64 * 1024):
        inflated += len(inflater.decompress(body[start : start + 64 * 1024]))
    assert inflated == GIB


def test_a_200_larger_than_max_response_bytes_fails_once_naming_the_limit(huge_200, monkeypatch):
    hook = hook_for(huge_200, monkeypatch)
    start = time.monotonic()
    with pytest.raises(TracklyResponseError, match="max_response_bytes") as raised:
        hook.import_clicks([RECORD])
    assert "1,048,576" in str(raised.value) or "1048576" in str(raised.value)
    assert time.monotonic() - start < 30
    assert huge_200.paths == ["/api/v2/history/clicks"]  # not retried


def test_the_limit_is_the_connections_max_response_bytes(monkeypatch):
    """A 300 KiB answer passes the default limit's length check but not a limit of 100,000 bytes."""
    with running(huge("length", size=300 * 1024)) as server:
        hook = hook_for(server, monkeypatch, max_response_bytes=100_000)
        with pytest.raises(TracklyResponseError, match="max_response_bytes"):
            hook.import_clicks([RECORD])
        assert server.paths == ["/api/v2/history/clicks"]


def test_reading_a_huge_200_keeps_memory_flat(huge_200, normal_peak_mib):
    outcome = probe(huge_200.url, KEY)
    assert outcome["error"] == "TracklyResponseError", outcome
    assert "max_response_bytes" in outcome["message"]
    assert outcome["peak_mib"] <= normal_peak_mib + MEMORY_SLACK_MIB, (outcome, normal_peak_mib)


def test_the_connection_check_reads_a_huge_200_with_flat_memory(normal_peak_mib):
    with running(huge("chunked")) as server:
        outcome = probe(server.url, KEY, "lists")
    assert outcome["error"] == "TracklyResponseError", outcome
    assert "max_response_bytes" in outcome["message"]
    assert outcome["peak_mib"] <= normal_peak_mib + MEMORY_SLACK_MIB, (outcome, normal_peak_mib)


def test_a_5xx_with_a_1_gib_body_is_retried_by_its_status_with_flat_memory(normal_peak_mib):
    with running(huge("length", status="503 Service Unavailable")) as server:
        outcome = probe(server.url, KEY, max_attempts=2, backoff_base=0)
        assert server.paths == ["/api/v2/history/clicks"] * 2
    assert outcome["error"] == "TracklyRetriesExhaustedError", outcome
    assert "HTTP 503" in outcome["message"]
    assert outcome["peak_mib"] <= normal_peak_mib + MEMORY_SLACK_MIB, (outcome, normal_peak_mib)


def test_a_5xx_with_a_1_gib_body_in_process(monkeypatch):
    with running(huge("chunked", status="502 Bad Gateway")) as server:
        hook = hook_for(server, monkeypatch, max_attempts=2)
        with pytest.raises(TracklyRetriesExhaustedError, match="HTTP 502"):
            hook.import_clicks([RECORD])
        assert server.paths == ["/api/v2/history/clicks"] * 2


def test_a_4xx_with_a_1_gib_body_is_judged_by_its_status_with_flat_memory(normal_peak_mib):
    with running(huge("length", status="400 Bad Request")) as server:
        outcome = probe(server.url, KEY)
        assert server.paths == ["/api/v2/history/clicks"]
    assert outcome["error"] == "TracklyApiError", outcome
    assert "HTTP 400" in outcome["message"]
    assert len(outcome["message"]) < 1000
    assert outcome["peak_mib"] <= normal_peak_mib + MEMORY_SLACK_MIB, (outcome, normal_peak_mib)


def test_an_encoding_the_hook_cannot_read_is_a_response_error_naming_it(monkeypatch):
    with running(brotli) as server:
        hook = hook_for(server, monkeypatch)
        with pytest.raises(TracklyResponseError, match=r"\bbr\b"):
            hook.import_clicks([RECORD])
        assert server.paths == ["/api/v2/history/clicks"]
        (request,) = server.requests
    assert request.headers["accept-encoding"] == "gzip, deflate"

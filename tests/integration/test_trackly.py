"""TracklyHook over real HTTP (the sandbox); its pure behaviour is in tests/unit/test_trackly.py."""

from __future__ import annotations

from tests.unit.test_trackly import RECORD
from trackly_provider.hooks.trackly import TracklyHook


def test_one_pooled_connection_serves_every_request(sandbox):
    """Over real HTTP: five imports in a row reach the sandbox on one kept-alive TCP connection."""
    hook = TracklyHook()
    try:
        for n in range(5):
            hook.import_clicks([{**RECORD, "message_id": f"msg-{n}"}])
    finally:
        hook.close()
    assert sandbox.state()["requests_seen"] == 5
    assert sandbox.state()["import_connections"] == 1

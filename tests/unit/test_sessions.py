"""How long a source session must outlive the longest request (database/sessions.py)."""

from __future__ import annotations

from trackly_provider.database.sessions import stall_timeout_seconds
from trackly_provider.hooks.retry import RetryPolicy
from trackly_provider.hooks.settings import TracklySettings


def test_the_longest_request_and_the_session_timeouts_it_gives():
    settings = TracklySettings("http://127.0.0.1", "trk_" + "a" * 32)
    assert settings.longest_request_seconds == 5 * 120 + 4 * 300 == 1800
    quick = TracklySettings(
        "http://127.0.0.1",
        "trk_" + "a" * 32,
        connect_timeout=1,
        read_timeout=2,
        request_timeout=3,
        retry=RetryPolicy(max_attempts=1, backoff_max=100, retry_after_max=5),
    )
    assert quick.longest_request_seconds == 3
    assert [stall_timeout_seconds(s) for s in (None, 0, 1550, 100.2, float("nan"), 1e12, -5)] == [
        3660,
        60,
        1610,
        161,
        3660,
        31_536_000,
        60,
    ]

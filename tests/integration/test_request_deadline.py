"""
``request_timeout``: one attempt ends at its deadline even when every read is quick (issue 22).

A server that trickles a valid answer one byte a second never trips ``read_timeout`` (2 s here):
without a deadline for the whole attempt, an import would wait for it for minutes. Real HTTP over
loopback against tests/hostile_servers.py; nothing is mocked.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers import CLICK_RECORD, HOOK_KEY, clicks, set_trackly_connection
from tests.hostile_servers import running, trickle
from trackly_provider.exceptions import TracklyOutcomeUnknownError, TracklyRetriesExhaustedError
from trackly_provider.hooks.trackly import TracklyHook

KEY, RECORD = HOOK_KEY, CLICK_RECORD
DEADLINE = 3.0
SLACK = 1.5  # scheduling noise, closing the connection
EARLY = 0.1  # the deadline may not fire before request_timeout (nor at read_timeout, 2 s)
TRICKLES = ["head", "body"]  # from the status line's first byte; after whole headers


@pytest.fixture(params=TRICKLES)
def trickling(request):
    with running(trickle(request.param)) as server:
        yield server


def hook_for(server, monkeypatch, extra=None, **kwargs) -> TracklyHook:
    set_trackly_connection(monkeypatch, server.url, KEY, extra)
    return TracklyHook(**kwargs)


def timed(call) -> tuple[BaseException, float]:
    """The exception ``call()`` raised and how long it took, in seconds."""
    start = time.monotonic()
    with pytest.raises(Exception) as raised:
        call()
    return raised.value, time.monotonic() - start


def test_one_attempt_ends_at_request_timeout_though_each_byte_arrives_within_read_timeout(
    trickling, monkeypatch
):
    extra = {"request_timeout": DEADLINE, "read_timeout": 2, "max_attempts": 1}
    hook = hook_for(trickling, monkeypatch, extra)
    error, elapsed = timed(lambda: hook.import_clicks([RECORD]))
    assert isinstance(error, TracklyRetriesExhaustedError)
    assert "request_timeout" in str(error)
    assert DEADLINE - EARLY <= elapsed <= DEADLINE + SLACK
    assert trickling.paths == ["/api/v2/history/clicks"]


@pytest.mark.parametrize("entity", ["clicks", "sends"])
def test_an_attempt_past_its_deadline_is_retried_then_gives_up_naming_request_timeout(
    trickling, monkeypatch, entity
):
    hook = hook_for(
        trickling, monkeypatch, request_timeout=DEADLINE, read_timeout=2, max_attempts=2, backoff_base=0
    )
    error, elapsed = timed(lambda: getattr(hook, f"import_{entity}")([RECORD]))
    assert isinstance(error, TracklyRetriesExhaustedError)
    assert "request_timeout" in str(error)
    assert 2 * (DEADLINE - EARLY) <= elapsed <= 2 * DEADLINE + SLACK
    assert trickling.paths == [f"/api/v2/history/{entity}"] * 2


def test_a_read_waiting_past_the_deadline_is_cut_at_the_deadline(monkeypatch):
    """A byte every 6 s with read_timeout 10: the read in progress ends at 3 s, not when a byte comes."""
    with running(trickle("body", interval=6)) as server:
        hook = hook_for(server, monkeypatch, request_timeout=DEADLINE, read_timeout=10, max_attempts=1)
        error, elapsed = timed(lambda: hook.import_clicks([RECORD]))
    assert isinstance(error, TracklyRetriesExhaustedError)
    assert "request_timeout" in str(error)
    assert DEADLINE - EARLY <= elapsed <= DEADLINE + SLACK


def test_revenue_past_its_deadline_is_outcome_unknown_after_one_request(trickling, monkeypatch):
    hook = hook_for(
        trickling, monkeypatch, request_timeout=DEADLINE, read_timeout=2, max_attempts=5, backoff_base=0
    )
    error, elapsed = timed(lambda: hook.import_revenue([{**RECORD, "amount": "1.00"}]))
    assert isinstance(error, TracklyOutcomeUnknownError)
    assert DEADLINE - EARLY <= elapsed <= DEADLINE + SLACK
    assert trickling.paths == ["/api/v2/history/revenue"]


def test_the_connection_test_ends_at_request_timeout(trickling, monkeypatch):
    hook = hook_for(trickling, monkeypatch, request_timeout=DEADLINE, read_timeout=2, max_attempts=1)
    start = time.monotonic()
    ok, message = hook.test_connection()
    elapsed = time.monotonic() - start
    assert not ok
    assert "request_timeout" in message
    assert DEADLINE - EARLY <= elapsed <= DEADLINE + SLACK
    assert trickling.paths == ["/api/v2/lists"]


@pytest.mark.reads_failed_task_log
def test_an_import_task_against_a_trickling_server_fails_after_its_attempts(
    airflow, sqlite_source, monkeypatch, task_output
):
    """Through real Airflow: two attempts of 3 s, then the task fails saying request_timeout."""
    sqlite_source.insert_clicks(clicks(3))
    extra = {"request_timeout": DEADLINE, "read_timeout": 2, "max_attempts": 2, "backoff_base": 0}
    with running(trickle("body")) as server:
        set_trackly_connection(monkeypatch, server.url, KEY, extra)
        start = time.monotonic()
        result = airflow.run_operator()
        elapsed = time.monotonic() - start
    assert result.state == "failed"
    assert server.paths == ["/api/v2/history/clicks"] * 2
    assert "request_timeout" in task_output()
    assert elapsed < 2 * DEADLINE + 30  # Airflow's own start and finish take a few seconds

"""
A base URL that answers 200 but is not Trackly (a sign-on page, another JSON API) fails loudly.

Real HTTP over loopback against tests/hostile_servers.py, and the real sandbox for the passing case.
"""

from __future__ import annotations

import pytest

from tests.helpers import CLICK_RECORD, HOOK_KEY, clicks, set_trackly_connection
from tests.hostile_servers import json_answer, login_page, not_found_page, running
from trackly_provider.exceptions import TracklyResponseError
from trackly_provider.hooks.trackly import TracklyHook

KEY, RECORD = HOOK_KEY, CLICK_RECORD


@pytest.fixture
def sign_on_page(monkeypatch):
    """A login page for every path; ``trackly_default`` points at it."""
    with running(login_page) as server:
        set_trackly_connection(monkeypatch, server.url, KEY)
        yield server


def test_the_connection_test_says_a_login_page_is_not_trackly(sign_on_page):
    ok, message = TracklyHook(max_attempts=1).test_connection()
    assert not ok
    assert "200" in message
    assert "text/html" in message
    assert "not Trackly's" in message
    assert sign_on_page.paths == ["/api/v2/lists"]


def test_check_access_raises_on_a_login_page(sign_on_page):
    with pytest.raises(TracklyResponseError, match="text/html") as raised:
        TracklyHook().check_access()
    assert "not Trackly's" in str(raised.value)


def test_an_import_answered_by_a_login_page_is_a_response_error_naming_text_html(sign_on_page):
    with pytest.raises(TracklyResponseError, match="text/html"):
        TracklyHook().import_clicks([RECORD])
    assert sign_on_page.paths == ["/api/v2/history/clicks"]


@pytest.mark.reads_failed_task_log
def test_a_dry_run_against_a_login_page_fails_saying_so(
    airflow, sqlite_source, sign_on_page, monkeypatch, task_output
):
    set_trackly_connection(monkeypatch, sign_on_page.url, KEY)  # the airflow fixture set the sandbox's
    sqlite_source.insert_clicks(clicks(5))
    result = airflow.run_operator(dry_run=True)
    assert result.state == "failed"
    output = task_output()
    assert "text/html" in output
    assert "not Trackly's" in output
    assert sign_on_page.paths == ["/api/v2/lists"]


@pytest.mark.parametrize(
    "body",
    [{"status": "ok"}, {"lists": {"id": 1}}, {"lists": "none"}, [], "lists"],
    ids=["no lists", "lists an object", "lists a string", "an array", "a string"],
)
def test_a_json_200_without_a_lists_array_fails_the_connection_test(monkeypatch, body):
    with running(json_answer(body)) as server:
        set_trackly_connection(monkeypatch, server.url, KEY)
        ok, message = TracklyHook(max_attempts=1).test_connection()
    assert not ok
    assert "application/json" in message
    assert "not Trackly's" in message


def test_a_lists_array_in_another_content_type_fails_the_connection_test(monkeypatch):
    with running(json_answer({"lists": []}, content_type="text/plain")) as server:
        set_trackly_connection(monkeypatch, server.url, KEY)
        ok, message = TracklyHook(max_attempts=1).test_connection()
    assert not ok
    assert "text/plain" in message
    assert "not Trackly's" in message


def test_a_404_page_on_the_lists_check_suggests_the_gateway_path_in_the_base_url(monkeypatch):
    with running(not_found_page) as server:
        set_trackly_connection(monkeypatch, server.url, KEY)
        ok, message = TracklyHook(max_attempts=1).test_connection()
    assert not ok
    assert "HTTP 404" in message
    assert "/api/v2/lists" in message
    assert "put that path in the Base URL" in message


def test_the_real_sandbox_passes_the_connection_test(sandbox):
    assert TracklyHook().test_connection() == (
        True,
        f"Connected to Trackly at {sandbox.url}: the API key works.",
    )

"""
What a server says is filtered before it reaches an exception, the log, XCom or the rejects table.

Error codes outside ^[a-z][a-z_]{0,63}$ become "unexpected_code"; error texts lose phone numbers and
API keys to "[redacted]" and are cut to 300 characters. Real HTTP over loopback against
tests/hostile_servers.py's ``server_words`` and ``bad_request_*``; the import runs in real Airflow.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import CLICK_RECORD, HOOK_KEY, REJECTS_TABLE, clicks, set_trackly_connection
from tests.hostile_servers import (
    FOREIGN_KEY,
    PHONE,
    bad_request_page,
    bad_request_words,
    running,
    server_words,
)
from trackly_provider.exceptions import TracklyApiError
from trackly_provider.hooks.trackly import TracklyHook

KEY, RECORD = HOOK_KEY, CLICK_RECORD
# The servers' phone number's digits 2025550123, whatever separates them.
PHONE_DIGITS = re.compile(r"\D{0,3}".join("2025550123"))
CODE = re.compile(r"^[a-z][a-z_]{0,63}$")
MAX_TEXT = 300


def leaks(text: str) -> list[str]:
    """What of the servers' phone number or foreign API key ``text`` still holds."""
    found = PHONE_DIGITS.findall(text)
    return found + ([FOREIGN_KEY] if FOREIGN_KEY in text else [])


def hook_at(server, monkeypatch) -> TracklyHook:
    set_trackly_connection(monkeypatch, server.url, KEY)
    return TracklyHook(max_attempts=1)


def test_record_errors_keep_only_plain_codes_and_redacted_cut_texts(monkeypatch):
    with running(server_words) as server:
        result = hook_at(server, monkeypatch).import_clicks(
            [{**RECORD, "message_id": f"m{n}"} for n in range(5)]
        )
    assert (result.success_count, result.error_count) == (1, 4)
    assert [(error.index, error.code) for error in result.errors] == [
        (0, "unexpected_code"),
        (1, "unexpected_code"),
        (2, "message_not_found"),
        (3, "offer_not_found"),
    ]
    texts = [error.error for error in result.errors]
    assert texts[0] == "contact [redacted] not found"
    assert "[redacted]" in texts[1]
    assert texts[2].startswith("contact [redacted] not found; details details")
    assert len(texts[2]) <= MAX_TEXT + 1 and texts[2].endswith("…")
    assert texts[3].startswith("key [redacted] may not read offers of ")
    assert [leaks(text) for text in texts] == [[], [], [], []]
    assert PHONE not in repr(result)


def test_a_400_keeps_no_phone_number_from_its_body_code_or_reason(monkeypatch):
    with running(bad_request_words) as server, pytest.raises(TracklyApiError) as raised:
        hook_at(server, monkeypatch).import_clicks([RECORD])
    error = raised.value
    assert (error.status, error.code) == (400, "unexpected_code")
    assert "contact [redacted] not found" in str(error)
    assert leaks(str(error)) == []
    assert leaks(error.error) == []


def test_a_400_page_keeps_no_phone_number_from_its_reason_phrase_or_content_type(monkeypatch):
    with running(bad_request_page) as server, pytest.raises(TracklyApiError) as raised:
        hook_at(server, monkeypatch).import_clicks([RECORD])
    assert raised.value.status == 400
    assert "[redacted]" in str(raised.value)  # the reason phrase is shown, redacted
    assert leaks(str(raised.value)) == []


def test_the_connection_test_shows_no_phone_number_from_a_400(monkeypatch):
    with running(bad_request_page) as server:
        ok, message = hook_at(server, monkeypatch).test_connection()
    assert not ok
    assert leaks(message) == []


def test_an_import_task_writes_no_phone_number_or_raw_code_to_xcom_log_or_rejects(
    airflow, sqlite_source, monkeypatch, task_output
):
    sqlite_source.insert_clicks(clicks(5))
    with running(server_words) as server:
        set_trackly_connection(monkeypatch, server.url, KEY)
        result = airflow.run_operator(max_error_rate=1.0, rejects_table=REJECTS_TABLE)
        assert server.paths == ["/api/v2/history/clicks"]
    assert result.state == "success"
    xcom = result.xcom
    assert xcom["errors_by_code"] == {"message_not_found": 1, "offer_not_found": 1, "unexpected_code": 2}
    assert [error["code"] for error in xcom["errors"]] == [
        "unexpected_code",
        "unexpected_code",
        "message_not_found",
        "offer_not_found",
    ]
    assert all(len(error["error"]) <= MAX_TEXT + 1 for error in xcom["errors"])
    assert leaks(json.dumps(xcom, ensure_ascii=False)) == []
    assert "Message Not Found" not in json.dumps(xcom)
    log = task_output()
    assert leaks(log) == []
    assert "Message Not Found" not in log
    rejects = sqlite_source.query(f"SELECT row_index, code, error FROM {REJECTS_TABLE} ORDER BY row_index")
    assert [(index, code) for index, code, _ in rejects] == [
        (0, "unexpected_code"),
        (1, "unexpected_code"),
        (2, "message_not_found"),
        (3, "offer_not_found"),
    ]
    assert all(CODE.match(code) for _, code, _ in rejects)
    assert rejects[0][2] == "contact [redacted] not found"
    assert all(len(error) <= MAX_TEXT + 1 for _, _, error in rejects)
    assert leaks(" ".join(error for _, _, error in rejects)) == []

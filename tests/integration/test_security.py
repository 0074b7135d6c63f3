"""No API key and no phone number in anything an import prints, raises, pushes or stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import clicks, set_trackly_connection


def everything_left_behind(printed: str, airflow_home: Path) -> str:
    """What a run printed, plus every byte of the metadata DB (XCom, rendered fields) and log files."""
    texts = [printed]
    for path in airflow_home.rglob("*"):
        if path.is_file() and path.suffix in (".db", ".log", ".json", ""):
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


@pytest.mark.reads_failed_task_log
def test_a_failing_import_leaks_neither_key_nor_phone_numbers(
    airflow, airflow_home, sandbox, sqlite_source, monkeypatch, task_output
):
    # Phone numbers no other test uses: the metadata DB is shared by the whole session.
    valid = [
        (m, o, f"+1312777{i:04d}", sent, clicked) for i, (m, o, _, sent, clicked) in enumerate(clicks(400))
    ]
    bad = [
        ("unknown-1", "offer-1", "+13127779901", None, "2025-11-15 10:00:00"),
        ("m-bad-ts", "offer-1", "+13127779902", None, "15/11/2025 10:00"),
        ("m-no-offer", None, "+13127779903", None, "2025-11-15 10:00:00"),
    ]
    rows = valid[:200] + bad + valid[200:]
    sqlite_source.insert_clicks(rows)
    set_trackly_connection(
        monkeypatch, sandbox.url, sandbox.api_key, {"backoff_base": 0.01, "max_attempts": 8}
    )
    sandbox.set_faults(html_503=0.2, lost_after_commit=0.2, seed=11)

    result = airflow.run_operator(batch_size=50, max_error_rate=0.0)

    assert result.state == "failed"
    assert result.xcom["error_count"] == 3
    left_behind = everything_left_behind(task_output(), airflow_home)
    assert "were rejected, more than max_error_rate=0 allows" in left_behind  # we did read the output
    assert "retrying in" in left_behind
    assert sandbox.api_key not in left_behind
    phones = {row[2] for row in rows}
    assert len(phones) == 403
    leaked = [p for p in phones if p in left_behind or p.lstrip("+") in left_behind]
    assert leaked == []


@pytest.mark.reads_failed_task_log
def test_a_request_that_fails_does_not_print_the_key(
    airflow, airflow_home, sandbox, sqlite_source, monkeypatch, task_output
):
    set_trackly_connection(
        monkeypatch, sandbox.url, sandbox.api_key, {"max_attempts": 2, "backoff_base": 0.01}
    )
    sqlite_source.insert_clicks(clicks(5))
    sandbox.set_faults(reset=1.0)
    assert airflow.run_operator().state == "failed"
    left_behind = everything_left_behind(task_output(), airflow_home)
    assert "failed 2 times, the last with" in left_behind
    assert sandbox.api_key not in left_behind

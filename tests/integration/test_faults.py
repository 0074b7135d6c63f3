"""Faults from a real HTTP server (the sandbox's fault injection) through real Airflow: nothing lost,
nothing counted twice, and the right failures for faults retrying cannot fix."""

from __future__ import annotations

import re

import pytest

from tests.helpers import clicks, set_trackly_connection

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 10}


@pytest.fixture
def fast_retries(sandbox, monkeypatch):
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, FAST_RETRIES)


def test_thousands_of_rows_through_many_faults_are_stored_once_and_counted_exactly(
    airflow, sandbox, sqlite_source, fast_retries, task_output
):
    valid = clicks(5000)
    unknown = [(f"unknown-{i}", "offer-1", "+12025550000", None, "2025-11-15 10:00:00") for i in range(40)]
    no_phone = [(f"no-phone-{i}", "offer-1", None, None, "2025-11-15 10:00:00") for i in range(30)]
    repeated = valid[:60]  # clicked again later in the same run: duplicates
    rows = valid[:2500] + unknown + repeated + no_phone + valid[2500:]
    sqlite_source.insert_clicks(rows)
    sandbox.set_faults(
        reset=0.06,
        html_503=0.06,
        rate_limited=0.06,
        retry_after="0",
        lost_after_commit=0.06,
        html_502_after_commit=0.06,
        save_error=0.02,  # of the records: each fails to save once, then is stored on a later try
        latency_ms=2,
        seed=7,
    )

    result = airflow.run_operator(batch_size=100, max_error_rate=0.05)

    injected = sandbox.state()["faults_injected"]
    configured = (
        "reset",
        "html_503",
        "rate_limited",
        "lost_after_commit",
        "html_502_after_commit",
        "save_error",
    )
    assert all(injected[kind] > 0 for kind in configured), injected
    xcom = result.xcom
    assert result.state == "success"
    assert xcom["rows_read"] == len(rows) == 5130
    assert xcom["success_count"] + xcom["error_count"] + xcom["duplicates_skipped"] == 5130
    assert xcom["error_count"] == 70
    # Every valid row stored exactly once; rows whose first answer was lost come back as duplicates.
    assert sorted(sandbox.stored()) == sorted(row[0] for row in valid)
    assert xcom["success_count"] + xcom["duplicates_skipped"] == 5060
    lost = injected["lost_after_commit"] + injected["html_502_after_commit"]
    assert 60 < xcom["duplicates_skipped"] <= 60 + 100 * lost
    assert {e["code"] for e in xcom["errors"]} == {"message_not_found", "missing_phone_number"}
    output = task_output()
    assert "retrying in" in output
    # Some save_error answers are lost with their response; the batch's retry then stores those records.
    resent = re.search(
        r"failed to save (\d+) records \(save_error\); sent them again: (\d+) recovered, 0 ", output
    )
    assert resent and 0 < int(resent[1]) == int(resent[2]) <= injected["save_error"], resent


@pytest.mark.reads_failed_task_log
def test_a_timed_out_request_that_landed_is_counted_once_on_rerun(
    airflow, sandbox, sqlite_source, monkeypatch, task_output
):
    rows = clicks(250)
    sqlite_source.insert_clicks(rows)
    set_trackly_connection(
        monkeypatch,
        sandbox.url,
        sandbox.api_key,
        {"read_timeout": 0.2, "max_attempts": 2, "backoff_base": 0.01},
    )
    sandbox.set_faults(latency_ms=400)  # the server still stores each batch after the client gave up

    failed = airflow.run_operator(batch_size=100, max_in_flight=1)

    assert failed.state == "failed"
    assert (
        "POST /api/v2/history/clicks failed 2 times, the last with ReadTimeout (timed out); giving up. "
        "0 of 100 rows read were confirmed before the failure. Rerunning the task is safe"
    ) in task_output()
    sandbox.set_faults()  # the API recovers
    rerun = airflow.run_operator(batch_size=100, max_in_flight=1)
    xcom = rerun.xcom
    assert rerun.state == "success"
    assert (xcom["rows_read"], xcom["error_count"]) == (250, 0)
    assert xcom["success_count"] + xcom["duplicates_skipped"] == 250
    assert xcom["duplicates_skipped"] == 100  # the first batch landed during the failed run
    assert sorted(sandbox.stored()) == [row[0] for row in rows]


def test_retry_after_from_the_server_is_waited_for(
    airflow, sandbox, sqlite_source, fast_retries, task_output
):
    sqlite_source.insert_clicks(clicks(10))
    sandbox.set_faults(rate_limited=0.5, retry_after="1", seed=3)
    result = airflow.run_operator(batch_size=5)
    assert result.xcom["success_count"] == 10
    assert "failed with HTTP 429 (attempt 1 of 10); retrying in 1.00 s" in task_output()


def test_payload_too_large_splits_batches_and_loses_nothing(airflow, sandbox, sqlite_source, task_output):
    rows = clicks(1000)
    sqlite_source.insert_clicks(rows)
    sandbox.set_faults(max_body_bytes=40_000)  # ~250 records per request fit
    result = airflow.run_operator()
    assert (result.xcom["rows_read"], result.xcom["success_count"], result.xcom["batches"]) == (1000, 1000, 1)
    sizes = [len(request) for request in sandbox.requests() if len(request) * 160 < 40_000]
    assert sum(sizes) == 1000
    assert sorted(sandbox.stored()) == [row[0] for row in rows]
    assert "Trackly answered 413 for 1000 records; splitting into halves." in task_output()


@pytest.mark.reads_failed_task_log
def test_a_suspended_account_fails_at_once_without_any_retry(airflow, sandbox, sqlite_source, task_output):
    sqlite_source.insert_clicks(clicks(10))
    sandbox.set_faults(suspended=True)
    result = airflow.run_operator()
    assert result.state == "failed"
    assert sandbox.state()["requests_seen"] == 1  # no retry by the hook (Airflow's: test_retry.py)
    log = task_output()
    assert (
        f"Trackly at {sandbox.url} refused connection 'trackly_default' (403: the account may be suspended"
        in log
    )
    assert "HTTP 403: Account suspended" in log


def test_a_rejected_key_is_not_retried(airflow, sandbox, sqlite_source, monkeypatch):
    set_trackly_connection(monkeypatch, sandbox.url, "trk_" + "Q" * 32)
    sqlite_source.insert_clicks(clicks(3))
    assert airflow.run_operator().state == "failed"
    assert sandbox.state()["requests_seen"] == 1

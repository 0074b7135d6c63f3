"""ClickHistoryImportOperator through real Airflow (dag.test) from SQLite into the sandbox over HTTP."""

from __future__ import annotations

import socket

import pytest

from tests.helpers import SELECT_ALL, clicks, set_trackly_connection, utc
from trackly_provider.operators._engine import import_run
from trackly_provider.operators.click_history import ClickHistoryImportOperator
from trackly_provider.trackly_api.request_bodies import BodyBuffers

EXPECTED_KEYS = {
    "rows_read",
    "success_count",
    "error_count",
    "duplicates_skipped",
    "batches",
    "errors_by_code",
    "errors",
    "dry_run",
}


def counts(xcom: dict) -> tuple[int, int, int, int, int]:
    assert set(xcom) == EXPECTED_KEYS
    assert xcom["success_count"] + xcom["error_count"] + xcom["duplicates_skipped"] == xcom["rows_read"]
    assert sum(xcom["errors_by_code"].values()) == xcom["error_count"]
    return (
        xcom["rows_read"],
        xcom["success_count"],
        xcom["error_count"],
        xcom["duplicates_skipped"],
        xcom["batches"],
    )


def expected_record(click) -> dict:
    message_id, offer_id, phone_number, sent_at, clicked_at = click
    return {
        "message_id": message_id,
        "offer_id": offer_id,
        "phone_number": phone_number,
        "send_timestamp": sent_at.isoformat(),
        "timestamp": clicked_at.isoformat(),
    }


def test_valid_rows_arrive_record_by_record(airflow, sandbox, sqlite_source):
    rows = clicks(5)
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator()
    assert result.state == "success"
    assert counts(result.xcom) == (5, 5, 0, 0, 1)
    assert result.xcom["errors"] == []
    assert sandbox.received() == [expected_record(row) for row in rows]


def test_mixed_good_and_bad_rows_are_counted_exactly_with_query_indexes(
    airflow, sandbox, sqlite_source, task_output
):
    good = clicks(6)
    rows = [
        good[0],
        (None, "offer-1", "+12025550101", None, "2025-11-15 10:00:00"),  # 1: missing message id
        good[1],
        ("m-3", "offer-1", "", None, "2025-11-15 10:00:00"),  # 3: empty phone
        ("m-4", "offer-1", "+12025550104", None, "15/11/2025 10:00"),  # 4: not ISO 8601
        good[2],
        ("unknown-6", "offer-1", "+12025550106", None, "2025-11-15 10:00:00"),  # 6: sandbox: not found
        good[3],
        ("m-8", "unknown-offer", "+12025550108", None, "2025-11-15 10:00:00"),  # 8: offer not found
        good[4],
        ("m-10", None, "+12025550110", None, "2025-11-15 10:00:00"),  # 10: missing offer id
        good[5],
    ]
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator(batch_size=3, max_error_rate=0.5)
    assert result.state == "success"
    assert counts(result.xcom) == (12, 6, 6, 0, 3)
    assert [(e["index"], e["message_id"], e["code"]) for e in result.xcom["errors"]] == [
        (1, None, "missing_message_id"),
        (3, "m-3", "missing_phone_number"),
        (4, "m-4", "invalid_timestamp"),
        (6, "unknown-6", "message_not_found"),
        (8, "m-8", "offer_not_found"),
        (10, "m-10", "missing_offer_id"),
    ]
    # Only the rows that can be valid were sent, in query order within each batch of at most 3.
    assert sorted([r["message_id"] for r in request] for request in sandbox.requests()) == [
        ["msg-0000000", "msg-0000001", "msg-0000002"],
        ["msg-0000004", "msg-0000005"],
        ["unknown-6", "msg-0000003", "m-8"],
    ]
    assert sorted(sandbox.stored()) == [f"msg-000000{i}" for i in range(6)]
    log = task_output()
    assert "Rejected row 4 (message_id m-4): invalid_timestamp" in log


def test_duplicate_message_ids_in_one_run_count_as_duplicates(airflow, sandbox, sqlite_source):
    rows = clicks(3)
    sqlite_source.insert_clicks([rows[0], rows[1], rows[0], rows[2], rows[1]])
    result = airflow.run_operator(batch_size=2)
    assert counts(result.xcom) == (5, 3, 0, 2, 3)
    assert len(sandbox.stored()) == 3


def test_rerun_of_the_same_rows_is_all_duplicates(airflow, sandbox, sqlite_source):
    sqlite_source.insert_clicks(clicks(40))
    first = airflow.run_operator()
    second = airflow.run_operator()
    assert counts(first.xcom) == (40, 40, 0, 0, 1)
    assert second.state == "success"
    assert counts(second.xcom) == (40, 0, 0, 40, 1)
    assert len(sandbox.stored()) == 40


def test_more_than_1000_rows_go_in_several_batches_none_over_1000(airflow, sandbox, sqlite_source):
    rows = clicks(2503)
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator()
    assert counts(result.xcom) == (2503, 2503, 0, 0, 3)
    requests = sorted(sandbox.requests(), key=lambda request: request[0]["message_id"])
    assert [len(request) for request in requests] == [1000, 1000, 503]
    assert [r["message_id"] for request in requests for r in request] == [row[0] for row in rows]


def test_zero_rows_send_nothing_and_succeed_with_zeros(airflow, sandbox, sqlite_source):
    result = airflow.run_operator()
    assert result.state == "success"
    assert counts(result.xcom) == (0, 0, 0, 0, 0)
    assert sandbox.state()["requests_seen"] == 0


def test_missing_columns_fail_before_any_request_and_show_how_to_alias(
    airflow, sandbox, sqlite_source, task_output
):
    sqlite_source.insert_clicks(clicks(3))
    result = airflow.run_operator(sql="SELECT message_id, offer_id, phone_number, clicked_at FROM sms_clicks")
    assert result.state == "failed"
    assert sandbox.state()["requests_seen"] == 0
    log = task_output()
    assert "missing the required column(s) timestamp" in log
    assert "e.g. SELECT <your column> AS timestamp" in log


def test_extra_columns_are_ignored_with_one_warning(airflow, sandbox, sqlite_source, task_output):
    sqlite_source.insert_clicks(clicks(2))
    sql = SELECT_ALL.replace("SELECT ", "SELECT id, 'x' AS campaign, ")
    result = airflow.run_operator(sql=sql)
    assert counts(result.xcom) == (2, 2, 0, 0, 1)
    assert set(sandbox.received()[0]) == {
        "message_id",
        "offer_id",
        "phone_number",
        "send_timestamp",
        "timestamp",
    }
    assert task_output().count("Ignoring column(s) Trackly does not use: id, campaign") == 1


def test_numbers_as_ids_and_naive_text_timestamps_are_converted(airflow, sandbox, sqlite_source):
    sql = (
        "SELECT 42 AS message_id, 7 AS offer_id, '+12025550042' AS phone_number, "
        "'2025-11-15 23:59:59.999999' AS timestamp"
    )
    result = airflow.run_operator(sql=sql)
    assert counts(result.xcom) == (1, 1, 0, 0, 1)
    assert sandbox.received() == [
        {
            "message_id": "42",
            "offer_id": "7",
            "phone_number": "+12025550042",
            "timestamp": "2025-11-15T23:59:59.999999+00:00",
        }
    ]


def test_sql_and_parameters_are_templated_and_bound(airflow, sandbox, sqlite_source):
    sqlite_source.insert_clicks(clicks(10))
    sql = SELECT_ALL.replace("ORDER BY", "WHERE clicked_at >= {{ task.sql_placeholder }} ORDER BY")
    result = airflow.run_operator(sql=sql, parameters=["{{ '2025-11-15 00:00:07' }}"])
    assert counts(result.xcom) == (3, 3, 0, 0, 1)
    assert [r["message_id"] for r in sandbox.received()] == ["msg-0000007", "msg-0000008", "msg-0000009"]


def test_sql_can_be_a_sql_file(airflow, sandbox, sqlite_source):
    sqlite_source.insert_clicks(clicks(2))
    (airflow.dags_dir / "clicks_query.sql").write_text(SELECT_ALL)
    result = airflow.run_operator(sql="clicks_query.sql")
    assert counts(result.xcom) == (2, 2, 0, 0, 1)


@pytest.mark.reads_failed_task_log
def test_error_rate_over_the_limit_fails_after_processing_everything_and_pushes_counts(
    airflow, sandbox, sqlite_source, task_output
):
    sqlite_source.insert_clicks([*clicks(3), ("unknown-1", "o", "+12025550001", None, "2025-11-15 10:00:00")])
    result = airflow.run_operator(max_error_rate=0.2)
    assert result.state == "failed"
    assert counts(result.xcom) == (4, 3, 1, 0, 1)
    assert len(sandbox.stored()) == 3
    assert (
        "1 of 4 rows (25.00%) was rejected, more than max_error_rate=0.2 allows. Imported 3, "
        "duplicates 0. Errors by code: message_not_found 1. First errors: row 3 (message_id unknown-1): "
        "message_not_found"
    ) in task_output()


@pytest.mark.reads_failed_task_log
def test_malformed_key_fails_the_task_without_a_request(
    airflow, sandbox, sqlite_source, monkeypatch, task_output
):
    bad_key = "trk_not-a-valid-key"
    set_trackly_connection(monkeypatch, sandbox.url, bad_key)
    sqlite_source.insert_clicks(clicks(2))
    result = airflow.run_operator()
    assert result.state == "failed"
    assert sandbox.state()["requests_seen"] == 0
    log = task_output()
    assert "Connection 'trackly_default' has a malformed API key" in log
    assert bad_key not in log


@pytest.mark.reads_failed_task_log
def test_401_from_the_sandbox_fails_naming_the_connection(
    airflow, sandbox, sqlite_source, monkeypatch, task_output
):
    wrong_key = "trk_" + "Z" * 32
    set_trackly_connection(monkeypatch, sandbox.url, wrong_key)
    sqlite_source.insert_clicks(clicks(2))
    result = airflow.run_operator()
    assert result.state == "failed"
    assert sandbox.stored() == {}
    log = task_output()
    assert "Trackly rejected the API key of connection 'trackly_default'" in log
    assert "HTTP 401 invalid_api_key: Invalid API key" in log
    assert wrong_key not in log


@pytest.mark.parametrize("batch_size", [0, 1001, 2.5])
def test_batch_size_outside_1_to_1000_fails_when_the_dag_is_parsed(batch_size):
    with pytest.raises(ValueError, match="batch_size must be"):
        ClickHistoryImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="x", batch_size=batch_size)


def test_operator_makes_no_connection_at_construction(monkeypatch):
    """Built as a DAG file builds it: no connection looked up, no socket opened, until it runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("the operator connected while being constructed")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("trackly_provider.version_compat.BaseHook.get_connection", refuse)
    operator = ClickHistoryImportOperator(
        task_id="t", sql="SELECT 1", sql_conn_id="does_not_exist", rejects_table="trackly_rejects"
    )
    assert (operator.sql_conn_id, operator.rejects_conn_id) == ("does_not_exist", "does_not_exist")


def test_a_utc_day_is_sent_as_utc_whatever_the_offset(airflow, sandbox, sqlite_source):
    sqlite_source.insert_clicks([("m1", "o1", "+12025550001", None, "2025-11-15T01:00:00+02:00")])
    airflow.run_operator()
    assert sandbox.received()[0]["timestamp"] == utc(2025, 11, 14, 23).isoformat()


def test_parallel_batches_give_exactly_the_serial_outcome(airflow, sandbox, sqlite_source):
    rows = clicks(1200)
    for position in (5, 333, 777, 1100):
        rows[position] = (f"unknown-{position}", "offer-1", "+12025550001", None, "2025-11-15 10:00:00")
    rows[900] = rows[10]  # a duplicate inside the run
    sqlite_source.insert_clicks(rows)
    sandbox.set_faults(latency_ms=200)  # long enough that all 6 are open at once, even on a busy machine
    parallel = airflow.run_operator(batch_size=100, max_in_flight=6)
    assert sandbox.state()["most_open_imports"] == 6
    sandbox.reset()
    serial = airflow.run_operator(batch_size=100, max_in_flight=1)
    assert sandbox.state()["most_open_imports"] == 1
    assert parallel.xcom == serial.xcom
    assert counts(parallel.xcom) == (1200, 1195, 4, 1, 12)
    assert [e["index"] for e in parallel.xcom["errors"]] == [5, 333, 777, 1100]


@pytest.mark.parametrize("max_in_flight", [0, 33, 1.5])
def test_max_in_flight_outside_1_to_32_fails_when_the_dag_is_parsed(max_in_flight):
    with pytest.raises(ValueError, match="max_in_flight must be"):
        ClickHistoryImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="x", max_in_flight=max_in_flight)


def test_freed_memory_is_released_every_20_batches(airflow, sandbox, sqlite_source, monkeypatch):
    # A spy, not the real trim: whether memory goes back to the OS is test_native_memory's job.
    trims = []
    monkeypatch.setattr(import_run, "release_freed_memory", lambda: trims.append(len(sandbox.requests())))
    sqlite_source.insert_clicks(clicks(4500))
    result = airflow.run_operator(batch_size=100, max_in_flight=1)
    assert counts(result.xcom) == (4500, 4500, 0, 0, 45)
    assert trims == [20, 40]


def test_request_bodies_reuse_one_buffer_per_place_in_flight_and_one_more(
    airflow, sandbox, sqlite_source, monkeypatch
):
    """A spy on the pool, not a mock: which buffers held the bodies (the memory saved: make bench)."""
    held: list[bytearray] = []

    class SpyBuffers(BodyBuffers):
        def hold(self, body: bytes) -> tuple[memoryview, bytearray]:
            view, buffer = super().hold(body)
            held.append(buffer)
            return view, buffer

    monkeypatch.setattr(import_run, "BodyBuffers", SpyBuffers)
    sqlite_source.insert_clicks(clicks(3000))
    sandbox.set_faults(latency_ms=20)
    result = airflow.run_operator(batch_size=100, max_in_flight=4)
    assert counts(result.xcom) == (3000, 3000, 0, 0, 30)
    assert len(held) == 30
    assert 2 <= len({id(buffer) for buffer in held}) <= 4 + 1
    received = sorted(sandbox.received(), key=lambda record: record["message_id"])
    assert received == [expected_record(click) for click in clicks(3000)]  # no body overwritten in flight


def test_every_error_of_a_batch_is_attributed_though_the_api_lists_only_100(airflow, sandbox, sqlite_source):
    rows = clicks(1000)
    for n in range(0, 1000, 10):  # 300 rejected by the API: 200 unknown messages, 100 unknown offers
        rows[n] = (f"unknown-m{n}", *rows[n][1:])
        rows[n + 3] = (f"unknown-m{n + 3}", *rows[n + 3][1:])
        rows[n + 6] = (rows[n + 6][0], f"unknown-o{n}", *rows[n + 6][2:])
    rows.append(("late", "offer-1", "+12025550001", None, None))  # rejected before sending
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator(batch_size=1000)
    assert counts(result.xcom) == (1001, 700, 301, 0, 1)
    assert result.xcom["errors_by_code"] == {
        "message_not_found": 200,
        "missing_timestamp": 1,
        "offer_not_found": 100,
    }
    rejected = {n + k for n in range(0, 1000, 10) for k in (0, 3, 6)}
    assert set(sandbox.stored()) == {row[0] for i, row in enumerate(rows[:1000]) if i not in rejected}
    assert [len(request) for request in sandbox.requests()] == [1000] + [100] * 9
    assert [e["index"] for e in result.xcom["errors"]] == sorted(rejected)[:100]


def test_a_dry_run_validates_every_row_checks_the_key_and_sends_nothing(
    airflow, sandbox, sqlite_source, task_output
):
    rows = clicks(2500)
    rows[7] = (rows[7][0], None, *rows[7][2:])
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator(batch_size=1000, dry_run=True)
    assert result.xcom["dry_run"] is True
    assert (result.xcom["rows_read"], result.xcom["records_to_send"], result.xcom["success_count"]) == (
        2500,
        2499,
        0,
    )
    assert result.xcom["errors_by_code"] == {"missing_offer_id": 1}
    assert sandbox.requests() == []
    output = task_output()
    assert (
        "Dry run: read 2,500 rows of clicks in " in output
        and "; 2,499 records would be sent, 1 row is rejected. Nothing was sent; the key works. Errors by "
        "code: missing_offer_id 1."
        in output
    )
    assert "Imported 2,500 rows" not in output


@pytest.mark.reads_failed_task_log
def test_a_dry_run_with_a_bad_key_fails_like_an_import_would(
    airflow, sandbox, sqlite_source, monkeypatch, task_output
):
    set_trackly_connection(monkeypatch, sandbox.url, "trk_" + "Z" * 32)
    sqlite_source.insert_clicks(clicks(10))
    result = airflow.run_operator(dry_run="True")
    assert result.state == "failed"
    assert "Trackly rejected the API key of connection 'trackly_default'" in task_output()
    assert sandbox.requests() == []


def test_a_bad_key_costs_one_request_whatever_max_in_flight(airflow, sandbox, sqlite_source, monkeypatch):
    set_trackly_connection(monkeypatch, sandbox.url, "trk_" + "Z" * 32)
    sqlite_source.insert_clicks(clicks(20_000))
    result = airflow.run_operator(max_in_flight=8)
    assert result.state == "failed"
    assert sandbox.state()["requests_seen"] == 1


@pytest.mark.reads_failed_task_log
@pytest.mark.parametrize("flag", ["yes", 1])
def test_dry_run_must_be_true_or_false(airflow, sandbox, sqlite_source, task_output, flag):
    sqlite_source.insert_clicks(clicks(1))
    result = airflow.run_operator(dry_run=flag)
    assert result.state == "failed"
    assert f"dry_run must be True or False, got {flag!r}" in task_output()


def test_records_the_server_failed_to_save_are_sent_again_and_recovered(
    airflow, sandbox, sqlite_source, monkeypatch, task_output
):
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, {"backoff_base": 0})
    sandbox.set_faults(save_error=0.2, save_error_times=2, seed=5)
    sqlite_source.insert_clicks(clicks(3000))
    result = airflow.run_operator()
    failed_once = sandbox.state()["faults_injected"]["save_error"] // 2
    assert 450 < failed_once < 750
    assert counts(result.xcom)[:4] == (3000, 3000, 0, 0)
    assert len(sandbox.stored()) == 3000
    assert (
        f"Trackly failed to save {failed_once} records (save_error); sent them again: {failed_once} "
        "recovered, 0 still failing after 3 attempts." in task_output()
    )


def test_records_that_keep_failing_to_save_count_once_as_save_error(
    airflow, sandbox, sqlite_source, monkeypatch, task_output
):
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, {"backoff_base": 0, "max_attempts": 3})
    sandbox.set_faults(save_error=0.01, save_error_times=99, seed=5)
    sqlite_source.insert_clicks(clicks(3000))
    result = airflow.run_operator(max_error_rate=1.0)
    failing = sandbox.state()["faults_injected"]["save_error"] // 3
    assert failing > 10
    assert counts(result.xcom)[:4] == (3000, 3000 - failing, failing, 0)
    assert result.xcom["errors_by_code"] == {"save_error": failing}
    assert len(sandbox.stored()) == 3000 - failing
    assert f"0 recovered, {failing} still failing after 3 attempts." in task_output()


def test_with_a_single_attempt_save_errors_count_at_once(airflow, sandbox, sqlite_source, monkeypatch):
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, {"max_attempts": 1})
    sandbox.set_faults(save_error=0.05, save_error_times=99, seed=5)
    sqlite_source.insert_clicks(clicks(2000))
    result = airflow.run_operator(max_error_rate=1.0)
    failing = sandbox.state()["faults_injected"]["save_error"]
    assert counts(result.xcom)[:4] == (2000, 2000 - failing, failing, 0)

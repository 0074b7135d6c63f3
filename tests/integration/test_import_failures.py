"""
How an import fails, through real Airflow, real databases and the sandbox over HTTP: the counts
reached and the rejects known survive whatever ends it early; a base class built directly fails at
parse time; one record too large for the API is an error of its own, never the end of the day.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.helpers import LEDGER_CONN_ID, PostgresSource, clicks, set_trackly_connection, wait_for
from tests.integration.test_sends_and_revenue import (
    REVENUE_COLUMNS,
    REVENUE_SQL,
    SEND_COLUMNS,
    SENDS_SQL,
    revenue_row,
    send_row,
)
from trackly_provider.operators._engine import import_run
from trackly_provider.trackly_api.limits import MAX_BODY_BYTES

REJECTS = "trackly_rejects_failures"  # this file's own rejects table
FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.02, "max_attempts": 3}
SIX_MIB = 6 * 1024 * 1024


def day_with_two_bad_rows(count: int = 100) -> list:
    """``count`` clicks: row 3 lacks its offer (rejected before sending), Trackly knows no row 5's message."""
    rows = clicks(count)
    rows[3] = (rows[3][0], None, *rows[3][2:])
    rows[5] = ("unknown-5", *rows[5][1:])
    return rows


def rejects_of(source) -> list[tuple]:
    return source.query(f"SELECT row_index, message_id, code FROM {REJECTS} ORDER BY row_index")


TWO_REJECTS = [(3, "msg-0000003", "missing_offer_id"), (5, "unknown-5", "message_not_found")]


def stopped_early(xcom: dict, failed: str | set[str]) -> tuple[int, int, int, int, int]:
    """The counts of an import that stopped early, checked to hold only what was answered."""
    assert xcom.pop("failed") in ({failed} if isinstance(failed, str) else failed)
    assert xcom["success_count"] + xcom["error_count"] + xcom["duplicates_skipped"] <= xcom["rows_read"]
    assert sum(xcom["errors_by_code"].values()) == xcom["error_count"]
    assert "+1202555" not in str(xcom)
    return (
        xcom["rows_read"],
        xcom["success_count"],
        xcom["duplicates_skipped"],
        xcom["error_count"],
        xcom["batches"],
    )


# --- Counts survive any failure ---------------------------------------------------------------


@pytest.mark.reads_failed_task_log
def test_the_api_down_after_two_batches_leaves_the_counts_and_the_rejects_so_far(
    airflow, sandbox, sqlite_source, monkeypatch, task_output
):
    sqlite_source.insert_clicks(day_with_two_bad_rows())
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, FAST_RETRIES)
    sandbox.set_faults(down_after_requests=2)

    result = airflow.run_operator(batch_size=10, max_in_flight=1, max_error_rate=1.0, rejects_table=REJECTS)

    assert result.state == "failed"
    # Batch 1 (rows 0-10 but 3) went at row 10, batch 2 at row 20; batch 3, due at row 30, met the outage.
    assert stopped_early(result.xcom, "TracklyRetriesExhaustedError") == (40, 19, 0, 2, 2)
    assert [(e["index"], e["code"]) for e in result.xcom["errors"]] == [
        (3, "missing_offer_id"),
        (5, "message_not_found"),
    ]
    assert rejects_of(sqlite_source) == TWO_REJECTS
    assert len(sandbox.stored()) == 19
    log = task_output()
    assert (
        "POST /api/v2/history/clicks failed 3 times, the last with HTTP 503; giving up. 21 of 40 rows "
        "read were confirmed before the failure. Rerunning the task is safe"
    ) in log
    assert (
        "The import stopped early (TracklyRetriesExhaustedError) after reading 40 rows: 19 imported, "
        "0 duplicates, 2 errors, 2 batches answered. The counts are in XCom 'return_value'."
    ) in log
    assert "+1202555" not in log


def terminate_import_backend_when(condition, killed: list[int]) -> threading.Thread:
    """Once ``condition()`` holds, end the PostgreSQL session streaming the import's query."""

    def run() -> None:
        wait_for(condition, timeout=60)
        time.sleep(0.15)  # the reader is now blocked, waiting for a place in the window
        with PostgresSource.connect() as conn:
            rows = conn.execute(
                "SELECT pid, pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE query LIKE '%trackly_import_%' AND pid <> pg_backend_pid()"
            ).fetchall()
        killed.extend(pid for pid, done in rows if done)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_source_lost_mid_stream_leaves_every_answered_batch_counted_and_the_rejects_so_far(
    airflow, sandbox, postgres_source
):
    postgres_source.insert_clicks(day_with_two_bad_rows())
    postgres_source.tables.append(REJECTS)
    sandbox.set_faults(latency_ms=500)  # each answer takes 0.5 s
    killed: list[int] = []
    # Batch 1 goes alone (at row 10), batches 2 and 3 fill the window (rows 20 and 30); batch 4 (row 40,
    # 50 rows read) waits for a place, and the import's session is ended meanwhile. Batch 4 goes once
    # batch 2 answers, then the next fetch fails: every answer of the four batches sent is counted.
    killer = terminate_import_backend_when(lambda: sandbox.state()["requests_seen"] >= 3, killed)

    result = airflow.run_operator(batch_size=10, max_in_flight=2, max_error_rate=1.0, rejects_table=REJECTS)

    killer.join(timeout=10)
    assert len(killed) == 1
    assert result.state == "failed"
    # The driver's error, or the provider's error that wraps it (sql_source.py).
    lost = {"OperationalError", "TracklyError", "TracklySourceError"}
    assert stopped_early(result.xcom, lost) == (50, 39, 0, 2, 4)
    assert rejects_of(postgres_source) == TWO_REJECTS
    assert sandbox.state()["requests_seen"] == 4
    assert len(sandbox.stored()) == 39


def test_a_rejected_key_leaves_the_rows_read_and_rejected_before_it(airflow, sandbox, sqlite_source):
    sqlite_source.insert_clicks(day_with_two_bad_rows())
    sandbox.set_faults(suspended=True)
    result = airflow.run_operator(batch_size=10, max_error_rate=1.0, rejects_table=REJECTS)
    assert result.state == "failed"
    # The first batch (rows 0-10 but 3) was refused with the key: only row 3 is known to be bad.
    assert stopped_early(result.xcom, "TracklyAuthError") == (20, 0, 0, 1, 0)
    assert rejects_of(sqlite_source) == [TWO_REJECTS[0]]


def test_a_bug_raising_in_the_loop_still_leaves_the_counts(airflow, sandbox, sqlite_source, monkeypatch):
    """
    Mocked: a bug cannot be real on purpose; a row builder that raises on row 25 stands for one.
    Rows are built a chunk (``batch_size`` rows) at a time, then cut into batches: rows 20 to 29
    never finish, so the one batch sent is rows 0 to 10 (9 stored, row 3 rejected, row 5 unknown
    to Trackly), and the 9 records of rows 11 to 19 wait unsent.
    """
    make_builder = import_run.make_record_builder

    def buggy(*args, **kwargs):
        build = make_builder(*args, **kwargs)

        def build_or_fail(row):
            if row[0] == "msg-0000025":
                raise ZeroDivisionError("a bug")
            return build(row)

        return build_or_fail

    monkeypatch.setattr(import_run, "make_record_builder", buggy)
    sqlite_source.insert_clicks(day_with_two_bad_rows())
    result = airflow.run_operator(batch_size=10, max_in_flight=1, max_error_rate=1.0, rejects_table=REJECTS)
    assert result.state == "failed"
    assert stopped_early(result.xcom, "ZeroDivisionError") == (30, 9, 0, 2, 1)
    assert rejects_of(sqlite_source) == TWO_REJECTS


def test_a_finished_import_has_no_failed_key(airflow, sandbox, sqlite_source):
    sqlite_source.insert_clicks(clicks(3))
    result = airflow.run_operator()
    assert result.state == "success"
    assert "failed" not in result.xcom


# --- Configuration errors -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["BaseHistoryImportOperator", "HistoryImportOperator"])
def test_the_base_class_built_directly_is_a_type_error_naming_the_three_operators(airflow, name):
    """``HistoryImportOperator`` is the base class's earlier name: the same class, the same error."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    path, _ = airflow.write_dag(name, "import_history", {"sql": "SELECT 1", "sql_conn_id": "x"})
    try:
        bag = DagBag(dag_folder=str(path))
    finally:
        path.unlink()
    (error,) = bag.import_errors.values()
    assert (
        "TypeError: BaseHistoryImportOperator cannot be built directly: it is the engine the import "
        "operators share and names no Trackly endpoint. Use ClickHistoryImportOperator, "
        "SendHistoryImportOperator or RevenueHistoryImportOperator (trackly_provider.operators); or "
        "subclass it and set the class attribute entity to the endpoint's Entity (CLICKS, SENDS or "
        "REVENUE from trackly_provider.trackly_api.entities)."
    ) in error


# --- One record too large for the API -------------------------------------------------------------


def test_a_send_over_the_apis_5_mb_body_limit_is_rejected_and_the_rest_of_the_day_imported(
    airflow, sandbox, sqlite_source
):
    rows = [send_row(n) for n in range(1, 11)]
    rows[6] = send_row(7, message="x" * SIX_MIB)
    sqlite_source.load("sends", SEND_COLUMNS, rows)
    result = airflow.run_operator(
        "SendHistoryImportOperator", "import_sends", sql=SENDS_SQL, max_error_rate=0.5, rejects_table=REJECTS
    )
    assert result.state == "success"
    xcom = result.xcom
    assert (xcom["rows_read"], xcom["success_count"], xcom["error_count"]) == (10, 9, 1)
    assert [(e["index"], e["message_id"], e["code"]) for e in xcom["errors"]] == [
        (6, "msg-0000007", "record_too_large")
    ]
    assert sorted(sandbox.state()["sends"]) == [f"msg-{n:07d}" for n in range(1, 11) if n != 7]
    assert rejects_of(sqlite_source) == [(6, "msg-0000007", "record_too_large")]


def test_a_record_the_server_refuses_alone_gets_record_too_large_saying_how_to_trim_it(
    airflow, sandbox, sqlite_source, task_output
):
    """The server's limit lowered to 20 kB: a 30 kB message passes any local check, and Trackly refuses it."""
    rows = [send_row(n) for n in range(1, 9)]
    rows[2] = send_row(3, message="y" * 30_000)
    sqlite_source.load("sends", SEND_COLUMNS, rows)
    sandbox.set_faults(max_body_bytes=20_000)
    result = airflow.run_operator(
        "SendHistoryImportOperator", "import_sends", sql=SENDS_SQL, max_error_rate=0.5
    )
    assert result.state == "success"
    assert (result.xcom["rows_read"], result.xcom["success_count"], result.xcom["error_count"]) == (8, 7, 1)
    assert result.xcom["errors"] == [
        {
            "index": 2,
            "message_id": "msg-0000003",
            "code": "record_too_large",
            "error": "Trackly refused the record alone as too large (HTTP 413: Payload Too Large; its "
            "limit is 5,000,000 bytes per request body); its largest field, message, is 30,002 bytes as "
            "JSON. Shorten that column in the query: LEFT(message, 10000) or SUBSTRING(message, 1, 10000).",
        }
    ]
    assert len(sandbox.state()["sends"]) == 7
    output = task_output()
    assert "Trackly answered 413 for 8 records; splitting into halves." in output
    assert "Trackly answered 413 for a single sends record; it is rejected." in output


def test_revenue_refused_as_too_large_is_not_confirmed_and_a_rerun_stores_nothing_twice(
    airflow, sandbox, sqlite_source, ledger_db
):
    rows = [revenue_row(n) for n in range(1, 7)]
    rows[3] = revenue_row(4, attribution_type="z" * 30_000)
    sqlite_source.load("revenue", REVENUE_COLUMNS, rows)
    sandbox.set_faults(max_body_bytes=20_000)
    kwargs = {"sql": REVENUE_SQL, "ledger_conn_id": LEDGER_CONN_ID, "max_error_rate": 0.5}

    first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    rerun = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)

    assert (first.state, rerun.state) == ("success", "success")
    for xcom in (first.xcom, rerun.xcom):
        assert [(e["index"], e["code"]) for e in xcom["errors"]] == [(3, "record_too_large")]
    assert (first.xcom["success_count"], first.xcom["ledger"]["skipped_confirmed"]) == (5, 0)
    # The rerun leaves out the five confirmed records and sends only the refused one, again.
    assert (rerun.xcom["success_count"], rerun.xcom["duplicates_skipped"]) == (0, 5)
    assert rerun.xcom["ledger"]["confirmed_before"] == 5
    stored = sandbox.state()["revenue"]
    assert sorted(record["message_id"] for record in stored) == [f"msg-{n:07d}" for n in (1, 2, 3, 5, 6)]


@pytest.mark.parametrize(("size", "status"), [(MAX_BODY_BYTES, 200), (MAX_BODY_BYTES + 1, 413)])
def test_the_sandbox_refuses_bodies_over_the_apis_5_mb_by_default(sandbox, size, status):
    import httpx

    send = {"id": "m1", "to_number": "+12025550001", "timestamp": "2025-11-15T10:00:00Z", "message": ""}
    body = json.dumps({"records": [send]}).encode()
    body = body.replace(b'"message": ""', b'"message": "' + b"x" * (size - len(body)) + b'"')
    assert len(body) == size
    response = httpx.post(
        f"{sandbox.url}/api/v2/history/sends",
        content=body,
        headers={"X-Api-Key": sandbox.api_key, "Content-Type": "application/json"},
    )
    assert response.status_code == status
    if status == 413:
        assert response.json() == {"error": "Payload Too Large"}

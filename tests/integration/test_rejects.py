"""The rejects table on real SQLite, PostgreSQL and MariaDB: every rejected row, no personal data."""

from __future__ import annotations

import json
import sqlite3
import threading
import tracemalloc
from contextlib import closing
from datetime import datetime, timedelta, timezone

from airflow.providers.sqlite.hooks.sqlite import SqliteHook

from tests.helpers import REJECTS_TABLE, clicks, set_trackly_connection, utc
from trackly_provider.database.rejects import RejectsTable, TaskInstanceId
from trackly_provider.database.source import sql_hook

SELECT_REJECTS = (
    "SELECT dag_id, run_id, task_id, map_index, try_number, row_index, message_id, code, error "
    f"FROM {REJECTS_TABLE} ORDER BY row_index"
)


def mixed_rows() -> list:
    """Eight rows: four imported, two rejected before sending, two rejected by the API."""
    rows = clicks(6)
    rows[1] = ("m-no-phone", "offer-1", None, None, utc(2025, 11, 15, 10))
    rows[3] = (rows[3][0], None, *rows[3][2:])
    rows[4] = ("unknown-4", *rows[4][1:])
    return [*rows, ("unknown-6", "offer-1", "+12025550006", None, utc(2025, 11, 15, 11)), clicks(8)[7]]


def test_each_rejected_row_is_written_with_its_task_instance_and_no_phone_number(
    airflow, sandbox, any_source
):
    any_source.insert_clicks(mixed_rows())
    result = airflow.run_operator(batch_size=3, max_error_rate=1.0, rejects_table=REJECTS_TABLE)
    assert (result.xcom["success_count"], result.xcom["error_count"]) == (4, 4)
    ti = (result.dag_id, result.run_id, "import_clicks", -1, 1)
    assert any_source.query(SELECT_REJECTS) == [
        (*ti, 1, "m-no-phone", "missing_phone_number", "column phone_number is NULL or empty"),
        (*ti, 3, "msg-0000003", "missing_offer_id", "column offer_id is NULL or empty"),
        (*ti, 4, "unknown-4", "message_not_found", "No message exists with the given message_id."),
        (*ti, 6, "unknown-6", "message_not_found", "No message exists with the given message_id."),
    ]
    every_value = " ".join(
        str(value) for row in any_source.query(f"SELECT * FROM {REJECTS_TABLE}") for value in row
    )
    assert "+1202555" not in every_value
    (rejected_at,) = any_source.query(f"SELECT MAX(rejected_at) FROM {REJECTS_TABLE}")[0]
    if isinstance(rejected_at, str):  # SQLite: UTC text in its own form
        rejected_at = datetime.fromisoformat(rejected_at).replace(tzinfo=timezone.utc)
    elif rejected_at.tzinfo is None:  # MariaDB: DATETIME holding UTC
        rejected_at = rejected_at.replace(tzinfo=timezone.utc)
    assert datetime.now(timezone.utc) - rejected_at < timedelta(minutes=5)


def test_every_attributed_api_error_is_written_though_the_api_lists_only_100(airflow, sandbox, sqlite_source):
    rows = clicks(1000)
    for n in range(0, 1000, 5):  # 200 unknown messages, 200 unknown offers in one batch
        rows[n] = (f"unknown-m{n}", *rows[n][1:])
        rows[n + 1] = (rows[n + 1][0], f"unknown-o{n}", *rows[n + 1][2:])
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator(max_error_rate=1.0, rejects_table=REJECTS_TABLE)
    assert result.xcom["errors_by_code"] == {"message_not_found": 200, "offer_not_found": 200}
    written = sqlite_source.query(f"SELECT row_index, code FROM {REJECTS_TABLE} ORDER BY row_index")
    assert written == [
        (n + offset, code)
        for n in range(0, 1000, 5)
        for offset, code in ((0, "message_not_found"), (1, "offer_not_found"))
    ]


def test_rejects_can_go_to_another_database_and_a_dry_run_writes_its_rejections_too(
    airflow, sandbox, postgres_source, tmp_path, monkeypatch
):
    rejects_db = tmp_path / "rejects.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRACKLY_REJECTS_DB", json.dumps({"conn_type": "sqlite", "host": str(rejects_db)})
    )
    postgres_source.insert_clicks(mixed_rows())
    result = airflow.run_operator(
        max_error_rate=1.0, dry_run=True, rejects_table=REJECTS_TABLE, rejects_conn_id="trackly_rejects_db"
    )
    assert (result.xcom["records_to_send"], result.xcom["error_count"]) == (6, 2)
    assert sandbox.requests() == []
    with closing(sqlite3.connect(rejects_db)) as connection:
        written = connection.execute(
            f"SELECT row_index, code FROM {REJECTS_TABLE} ORDER BY row_index"
        ).fetchall()
    assert written == [(1, "missing_phone_number"), (3, "missing_offer_id")]
    assert postgres_source.query(f"SELECT to_regclass('{REJECTS_TABLE}') IS NULL") == [(True,)]


def test_a_retry_of_the_same_task_instance_replaces_its_rows_and_keeps_the_others(any_source):
    hook = sql_hook("trackly_source")
    first_try = TaskInstanceId("dag", "run-1", "import_clicks", 3, 1)
    with RejectsTable(hook, REJECTS_TABLE, first_try) as rejects:
        for index in range(3):
            rejects.add(index, f"m{index}", "message_not_found", "No message")
    other_day = TaskInstanceId("dag", "run-1", "import_clicks", 4, 1)
    with RejectsTable(hook, REJECTS_TABLE, other_day) as rejects:
        rejects.add(9, "m9", "offer_not_found", "No offer")
    second_try = TaskInstanceId("dag", "run-1", "import_clicks", 3, 2)
    with RejectsTable(hook, REJECTS_TABLE, second_try) as rejects:
        rejects.add(1, "m1", "message_not_found", "No message")
    assert any_source.query(
        f"SELECT map_index, try_number, row_index, code FROM {REJECTS_TABLE} ORDER BY map_index"
    ) == [(3, 2, 1, "message_not_found"), (4, 1, 9, "offer_not_found")]


def test_100000_rejects_are_written_in_batches_with_flat_memory(sqlite_source):
    hook = SqliteHook(sqlite_conn_id="trackly_source")
    tracemalloc.start()
    try:
        with RejectsTable(hook, REJECTS_TABLE, TaskInstanceId("dag", "run", "task", -1, 1)) as rejects:
            for index in range(100_000):
                rejects.add(index, f"message-{index}", "message_not_found", "No message with this message_id")
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rejects.rows_written == 100_000
    assert sqlite_source.query(f"SELECT COUNT(*), MAX(row_index) FROM {REJECTS_TABLE}") == [(100_000, 99_999)]
    assert peak < 2 * 1024 * 1024  # 1,000 pending rows; all 100,000 held would be about 40 MiB


def test_rows_rejected_before_an_import_fails_are_still_written(airflow, sandbox, sqlite_source, monkeypatch):
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, {"max_attempts": 1})
    sandbox.set_faults(html_503=1.0)  # every request fails, and one attempt is allowed
    sqlite_source.insert_clicks([("m-no-phone", "offer-1", None, None, utc(2025, 11, 15, 10)), *clicks(3)])
    result = airflow.run_operator(rejects_table=REJECTS_TABLE)
    assert result.state == "failed"
    assert sqlite_source.query(f"SELECT row_index, code FROM {REJECTS_TABLE}") == [
        (0, "missing_phone_number")
    ]


def test_days_imported_in_parallel_all_create_the_missing_table_without_failing(any_source):
    """Eight task instances at once, as mapped days do; PostgreSQL fails racing CREATEs without a retry."""
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def import_day(map_index: int) -> None:
        hook = sql_hook("trackly_source")
        barrier.wait()
        try:
            with RejectsTable(
                hook, REJECTS_TABLE, TaskInstanceId("dag", "run", "task", map_index, 1)
            ) as rejects:
                rejects.add(0, f"m{map_index}", "message_not_found", "No message")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=import_day, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert any_source.query(f"SELECT COUNT(*) FROM {REJECTS_TABLE}") == [(8,)]

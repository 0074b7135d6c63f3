"""Real PostgreSQL and MariaDB sources: same records as SQLite, server-side cursors, bounded memory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.providers.mysql.hooks.mysql import MySqlHook
from airflow.providers.postgres.hooks.postgres import PostgresHook

from tests.helpers import REPO, SELECT_ALL, PostgresSource, clicks, utc
from tests.memory_probe import RESULT_PREFIX
from trackly_provider.database.source import open_streaming_cursor

ROWS = [
    *clicks(4),
    ("m-null-phone", "offer-1", None, None, utc(2025, 11, 15, 10)),
    ("unknown-9", "offer-1", "+12025550009", None, utc(2025, 11, 15, 11)),
]


def test_each_source_sends_the_same_records(airflow, sandbox, any_source):
    any_source.insert_clicks(ROWS)
    result = airflow.run_operator(batch_size=2, max_error_rate=0.5)
    xcom = result.xcom
    assert (xcom["rows_read"], xcom["success_count"], xcom["error_count"], xcom["batches"]) == (6, 4, 2, 3)
    assert [(e["index"], e["code"]) for e in xcom["errors"]] == [
        (4, "missing_phone_number"),
        (5, "message_not_found"),
    ]
    received = sorted(sandbox.received(), key=lambda record: record["message_id"])
    assert received[:4] == [
        {
            "message_id": m,
            "offer_id": o,
            "phone_number": p,
            "send_timestamp": s.isoformat(),
            "timestamp": c.isoformat(),
        }
        for m, o, p, s, c in ROWS[:4]
    ]
    assert received[4] == {
        "message_id": "unknown-9",
        "offer_id": "offer-1",
        "phone_number": "+12025550009",
        "timestamp": "2025-11-15T11:00:00+00:00",
    }


def test_postgres_reads_through_a_server_side_cursor(postgres_source):
    connection = PostgresHook(postgres_conn_id="trackly_source").get_conn()
    try:
        cursor = open_streaming_cursor(connection)
        if type(connection).__module__.startswith("psycopg2"):  # older postgres providers
            assert cursor.name is not None  # psycopg2: a named cursor is a server-side cursor
        else:
            assert type(cursor).__name__ == "ServerCursor"
        assert cursor.name.startswith("trackly_import_")
    finally:
        connection.close()


def test_mariadb_reads_through_an_unbuffered_cursor(mariadb_source):
    import MySQLdb.cursors

    connection = MySqlHook(mysql_conn_id="trackly_source").get_conn()
    try:
        assert isinstance(open_streaming_cursor(connection), MySQLdb.cursors.SSCursor)
    finally:
        connection.close()


def _import_in_fresh_process(airflow, airflow_home: Path, rows: int) -> dict:
    """
    One import in a new process, on its own copy of the metadata database: two processes writing
    one SQLite file while this one holds connections to it corrupted it on Airflow 3.1 and 3.2.
    """
    home = airflow_home.parent / f"{airflow_home.name}-probe-{rows}"
    home.mkdir(exist_ok=True)
    shutil.copy(airflow_home / "airflow.db", home / "airflow.db")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(airflow.dags_dir)}
    sql = (
        SELECT_ALL.replace("FROM sms_clicks", "FROM sms_clicks")
        .replace("SELECT ", "SELECT repeat('x', 1000) AS padding, ")
        .replace("ORDER BY id", f"WHERE id <= {rows} ORDER BY id")
    )
    output = subprocess.run(
        [sys.executable, "-m", "tests.memory_probe", str(airflow.dags_dir), sql],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (result,) = [line for line in output.splitlines() if line.startswith(RESULT_PREFIX)]
    return json.loads(result.removeprefix(RESULT_PREFIX))


@pytest.mark.slow
def test_memory_does_not_grow_with_the_result_size(airflow, airflow_home, sandbox, postgres_source):
    """
    200,000 rows with a 1 KB padding column is ~200 MB if any layer buffered the result; a streamed
    import must peak within 40 MB of a 20,000-row import in the same conditions.
    """
    with PostgresSource.connect() as conn:
        conn.execute(
            "INSERT INTO sms_clicks (message_id, offer_id, phone_number, sent_at, clicked_at) "
            "SELECT 'msg-' || g, 'offer-' || (g % 7), '+1202' || lpad(g::text, 7, '0'), "
            "timestamptz '2025-11-15' + g * interval '1 ms', timestamptz '2025-11-15' + g * interval '2 ms' "
            "FROM generate_series(1, 200000) AS g"
        )
    small = _import_in_fresh_process(airflow, airflow_home, 20_000)
    large = _import_in_fresh_process(airflow, airflow_home, 200_000)
    assert small["xcom"]["success_count"] == 20_000
    assert large["xcom"]["success_count"] == 180_000  # the first 20,000 are duplicates by now
    assert large["xcom"]["duplicates_skipped"] == 20_000
    growth = large["peak_mib"] - small["peak_mib"]
    print(f"peak RSS: 20k rows {small['peak_mib']:.0f} MiB, 200k rows {large['peak_mib']:.0f} MiB")
    assert growth < 40, f"peak memory grew by {growth:.0f} MiB from 20k to 200k rows"


def test_a_postgres_connection_with_dict_rows_still_imports(airflow, sandbox, monkeypatch):
    source = PostgresSource.create(monkeypatch, extra={"cursor": "dictcursor"})
    try:
        source.insert_clicks(ROWS[:4])
        result = airflow.run_operator()
        assert (result.state, result.xcom["success_count"]) == ("success", 4)
        assert sorted(sandbox.stored()) == [row[0] for row in ROWS[:4]]
    finally:
        source.drop()

"""
The import's source session on PostgreSQL and SQLite, and what the source's drivers raise.

PostgreSQL: a session whose time zone is not UTC (set through the connection, never on the shared
server) imports the same records; dates and timestamps arrive as text, ``infinity`` included, for
psycopg 3 and psycopg2; a stall outlives a set ``idle_in_transaction_session_timeout``. SQLite:
text that is not UTF-8 arrives as bytes for its row alone. Everywhere: a statement that writes
fails without a retry, and a driver's error never carries a phone number out.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import OPENLINEAGE_EVENTS
from tests.dag_runs import run_with_tries
from tests.databases import postgres_dsn
from tests.helpers import PostgresSource, phone, utc
from trackly_provider.database import sessions as source_sessions
from trackly_provider.database import source as sql_source
from trackly_provider.database.source import stream_query
from trackly_provider.exceptions import TracklySourceError

PG_TABLE = "pg_tz_clicks"
KOLKATA = "-c TimeZone=Asia/Kolkata"
DAY = [utc(2025, 11, 15), utc(2025, 11, 16)]
DAY_SQL = (
    "SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp "
    f"FROM {PG_TABLE} WHERE clicked_at >= %s AND clicked_at < %s ORDER BY id"
)
# (message id, clicked_at: a `timestamp` column holding UTC, sent_at: `timestamptz`). A Kolkata
# session would compare the aware bounds as [05:30, next 05:30) and write 9999-12-31 23:59:59+00
# as year 10000.
PG_ROWS = [
    ("before", "2025-11-14 23:59:59", "2025-11-14 23:59:00+00"),
    ("start", "2025-11-15 00:00:00", "2025-11-14 23:59:00+00"),
    ("early", "2025-11-15 05:29:59", "2025-11-15 05:29:00+00"),
    ("mid", "2025-11-15 05:30:00", "2025-11-15 05:29:00+00"),
    ("late", "2025-11-15 23:59:59.5", "9999-12-31 23:59:59+00"),
    ("next", "2025-11-16 00:00:00", "2025-11-15 23:59:00+00"),
    ("next-early", "2025-11-16 05:29:59", "2025-11-16 05:29:00+00"),
]
PG_SENT = [  # (message id, send_timestamp, timestamp) as sent
    ("start", "2025-11-14T23:59:00+00:00", "2025-11-15T00:00:00+00:00"),
    ("early", "2025-11-15T05:29:00+00:00", "2025-11-15T05:29:59+00:00"),
    ("mid", "2025-11-15T05:29:00+00:00", "2025-11-15T05:30:00+00:00"),
    ("late", "9999-12-31T23:59:59+00:00", "2025-11-15T23:59:59.500000+00:00"),
]
EDGE_VALUES = (
    "SELECT date 'infinity', date '-infinity', timestamptz 'infinity', timestamptz '-infinity', "
    "timestamp 'infinity', date '2025-11-15', timestamptz '9999-12-31 23:59:59+00', "
    "timestamp '2025-11-15 10:00:00', timestamptz '2025-11-15 10:00:00.25+05:30'"
)
EDGE_TEXTS = (
    "infinity",
    "-infinity",
    "infinity",
    "-infinity",
    "infinity",
    "2025-11-15",
    "9999-12-31 23:59:59+00",
    "2025-11-15 10:00:00",
    "2025-11-15 04:30:00.25+00",
)


class DriverHook:
    """Stands in for a DbApiHook whose ``get_conn`` opens a driver's connection (all ``stream_query``
    calls); psycopg2 is not the postgres provider's driver here, and this reaches it alike."""

    def __init__(self, connect: Any) -> None:
        self.connect = connect
        self.connection: Any = None

    def get_conn(self) -> Any:
        self.connection = self.connect()
        return self.connection


def postgres(driver: str, options: str | None = None) -> DriverHook:
    dsn = postgres_dsn()
    if driver == "psycopg2":
        import psycopg2

        return DriverHook(lambda: psycopg2.connect(dsn, options=options))
    import psycopg

    return DriverHook(lambda: psycopg.connect(dsn, options=options or ""))


def read_all(hook: Any, sql: str, parameters: Any = None, chunk_size: int = 100, **kwargs: Any) -> list[Any]:
    with stream_query(hook, sql, parameters, chunk_size, **kwargs) as (_, chunks):
        return [tuple(row) for chunk in chunks for row in chunk]


@pytest.fixture
def pg_clicks(monkeypatch):
    source = PostgresSource.create(monkeypatch)  # the source connection; its own table is unused
    source.tables.append(PG_TABLE)
    with PostgresSource.connect() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {PG_TABLE}")
        conn.execute(
            f"CREATE TABLE {PG_TABLE} (id BIGSERIAL PRIMARY KEY, message_id TEXT, offer_id TEXT, "
            "phone_number TEXT, sent_at TIMESTAMPTZ, clicked_at TIMESTAMP)"
        )
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {PG_TABLE} (message_id, offer_id, phone_number, sent_at, clicked_at) "
                "VALUES (%s, 'offer-1', %s, %s::timestamptz, %s::timestamp)",
                [(m, phone(n), sent, clicked) for n, (m, clicked, sent) in enumerate(PG_ROWS)],
            )
    yield monkeypatch
    source.drop()


@pytest.mark.parametrize("options", [None, KOLKATA], ids=["server-zone", "kolkata-session"])
def test_a_postgres_session_in_another_time_zone_imports_the_same_utc_day(
    airflow, sandbox, pg_clicks, options
):
    if options:
        PostgresSource.create(pg_clicks, extra={"options": options})
    result, _ = run_with_tries(airflow, sql=DAY_SQL, parameters=DAY)
    assert (result.state, result.xcom["rows_read"], result.xcom["success_count"]) == ("success", 4, 4)
    number = {m: n for n, (m, _, _) in enumerate(PG_ROWS)}
    assert sandbox.received() == [
        {
            "message_id": m,
            "offer_id": "offer-1",
            "phone_number": phone(number[m]),
            "send_timestamp": s,
            "timestamp": t,
        }
        for m, s, t in PG_SENT
    ]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("options", [None, KOLKATA], ids=["server-zone", "kolkata-session"])
def test_postgres_dates_and_timestamps_arrive_as_utc_text_infinity_included(pg_clicks, driver, options):
    hook = postgres(driver, options)
    assert read_all(hook, EDGE_VALUES) == [EDGE_TEXTS]
    named = DAY_SQL.replace("%s", "%(start)s", 1).replace("%s", "%(end)s")
    day = read_all(hook, named, {"start": DAY[0], "end": DAY[1]})
    assert [(m, sent, clicked) for m, _, _, sent, clicked in day] == [
        ("start", "2025-11-14 23:59:00+00", "2025-11-15 00:00:00"),
        ("early", "2025-11-15 05:29:00+00", "2025-11-15 05:29:59"),
        ("mid", "2025-11-15 05:29:00+00", "2025-11-15 05:30:00"),
        ("late", "9999-12-31 23:59:59+00", "2025-11-15 23:59:59.5"),
    ]


def test_a_date_infinity_is_one_rejected_row_not_a_dead_day(airflow, sandbox, monkeypatch):
    """psycopg 3 cannot load ``date 'infinity'`` (a DataError for the whole fetch); as text, one row fails."""
    source = PostgresSource.create(monkeypatch)
    days = ["2025-11-15", "2025-11-16", "infinity", "2025-11-17", "-infinity", "2025-11-18"]
    columns = {"message_id": "text", "offer_id": "text", "phone_number": "text", "clicked_on": "text"}
    source.load(
        "pg_date_clicks", columns, [(f"day-{n}", "offer-1", phone(n), day) for n, day in enumerate(days)]
    )
    with PostgresSource.connect() as conn:
        conn.execute("ALTER TABLE pg_date_clicks ALTER clicked_on TYPE date USING clicked_on::date")
    try:
        result, _ = run_with_tries(
            airflow,
            sql="SELECT message_id, offer_id, phone_number, clicked_on AS timestamp FROM pg_date_clicks",
            max_error_rate=0.5,
        )
    finally:
        source.drop()
    xcom = result.xcom
    assert (result.state, xcom["rows_read"], xcom["success_count"], xcom["error_count"]) == (
        "success",
        6,
        4,
        2,
    )
    assert [(e["index"], e["message_id"], e["code"]) for e in xcom["errors"]] == [
        (2, "day-2", "invalid_timestamp"),
        (4, "day-4", "invalid_timestamp"),
    ]
    assert [r["timestamp"] for r in sandbox.received()] == [
        f"2025-11-{d}T00:00:00+00:00" for d in (15, 16, 17, 18)
    ]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_postgres_read_outlives_a_stall_past_a_set_idle_in_transaction_timeout(driver):
    """
    Between two fetches a server-side cursor's session is idle in its transaction; a 2 s
    ``idle_in_transaction_session_timeout`` (the connection's, standing for a DBA's) would end it.
    """
    session = "-c idle_in_transaction_session_timeout=2s"
    sql = (
        "SELECT g, current_setting('idle_in_transaction_session_timeout') FROM generate_series(1, 3000) AS g"
    )
    read, settings = 0, set()
    with stream_query(postgres(driver, session), sql, None, 1000, max_stall_seconds=100) as (_, chunks):
        for chunk in chunks:
            if read == 0:
                time.sleep(3)
            read += len(chunk)
            settings |= {setting for _, setting in chunk}
    assert (read, settings) == (3000, {"160s"})
    setting = "SELECT current_setting('idle_in_transaction_session_timeout')"
    assert read_all(postgres(driver, "-c idle_in_transaction_session_timeout=2h"), setting) == [("2h",)]
    assert read_all(postgres(driver), setting) == [("0",)]  # no limit stays none


def test_without_the_session_setting_the_stalled_postgres_read_is_ended():
    """The control: the same stall on a session left as it was loses the cursor."""
    import psycopg

    with psycopg.connect(postgres_dsn()) as conn:
        conn.execute("SET idle_in_transaction_session_timeout = '2s'")
        cursor = conn.cursor(name="trackly_control")
        cursor.execute("SELECT g FROM generate_series(1, 3000) AS g")
        cursor.fetchmany(1000)
        time.sleep(3)
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
            cursor.fetchmany(1000)


# SQLite: one row of 301 holds text that is not UTF-8 in a chunk's first, middle and last rows.
BAD_ROWS = (0, 99, 100, 250)
BAD_BYTES = b"+14155550123\x80"


@pytest.fixture
def sqlite_bytes(sqlite_source):
    sqlite_source.insert_clicks(
        [(f"msg-{i:03d}", "offer-1", phone(i), None, "2025-11-15 10:00:00") for i in range(301)]
    )
    sqlite_source.execute(
        "UPDATE sms_clicks SET phone_number = CAST(? AS TEXT) WHERE id - 1 IN (0, 99, 100, 250)",
        [(BAD_BYTES,)],
    )
    return sqlite_source


def sqlite_hook(source: Any) -> DriverHook:
    return DriverHook(lambda: sqlite3.connect(source.path))


def chunks_of(hook: Any, sql: str) -> Iterator[list[Any]]:
    with stream_query(hook, sql, None, 100) as (_, chunks):
        yield from ([tuple(row) for row in chunk] for chunk in chunks)


def expected_phones() -> list[Any]:
    return [BAD_BYTES if i in BAD_ROWS else phone(i) for i in range(301)]


ROW_REREAD = pytest.param(
    True,
    id="row-reread",
    marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="Python 3.10's cursor drops the failing row"),
)


@pytest.mark.parametrize("python_3_11", [ROW_REREAD, pytest.param(False, id="text-factory")])
def test_sqlite_text_that_is_not_utf8_arrives_as_bytes_for_its_row_alone(
    sqlite_bytes, monkeypatch, python_3_11
):
    """From Python 3.11 the failing row is read again as bytes; before, a text factory does (forced here)."""
    monkeypatch.setattr(source_sessions, "SQLITE_REREADS_UNDECODABLE_ROWS", python_3_11)
    monkeypatch.setattr(sql_source, "SQLITE_REREADS_UNDECODABLE_ROWS", python_3_11)
    chunks = list(
        chunks_of(sqlite_hook(sqlite_bytes), "SELECT message_id, phone_number FROM sms_clicks ORDER BY id")
    )
    assert [len(chunk) for chunk in chunks] == [100, 100, 100, 1]
    rows = [row for chunk in chunks for row in chunk]
    assert rows == [(f"msg-{i:03d}", value) for i, value in enumerate(expected_phones())]


def test_a_driver_error_while_fetching_carries_no_phone_number(sqlite_bytes, monkeypatch):
    """Neither the row re-read nor the text factory: SQLite raises, with the phone number in its text."""
    monkeypatch.setattr(source_sessions, "SQLITE_REREADS_UNDECODABLE_ROWS", True)  # no text factory
    monkeypatch.setattr(sql_source, "SQLITE_REREADS_UNDECODABLE_ROWS", False)  # and no re-read
    with pytest.raises(TracklySourceError) as raised:
        list(chunks_of(sqlite_hook(sqlite_bytes), "SELECT phone_number FROM sms_clicks ORDER BY id"))
    # Python 3.10's sqlite3 reads the first row while executing, later versions when fetching.
    doing = "running the query" if sys.version_info < (3, 11) else "reading the rows after row 0"
    assert str(raised.value) == (
        f"The source database failed {doing}: sqlite3.OperationalError: Could not "
        "decode to UTF-8 column 'phone_number' with text '[redacted]\N{REPLACEMENT CHARACTER}'"
    )
    assert (raised.value.__cause__, raised.value.__context__) == (None, None)


@pytest.mark.reads_failed_task_log
def test_a_sqlite_phone_that_is_not_utf8_is_a_rejected_row_and_never_shown(
    airflow, sandbox, sqlite_bytes, task_output
):
    result, _ = run_with_tries(airflow, max_error_rate=0.1)
    xcom = result.xcom
    assert (result.state, xcom["rows_read"], xcom["success_count"], xcom["error_count"]) == (
        "success",
        301,
        297,
        4,
    )
    assert [(e["index"], e["code"]) for e in xcom["errors"]] == [
        (i, "invalid_phone_number") for i in BAD_ROWS
    ]
    assert len(sandbox.stored()) == 297
    events = OPENLINEAGE_EVENTS.read_text() if OPENLINEAGE_EVENTS.exists() else ""
    shown = task_output() + json.dumps(xcom) + events
    assert "4155550123" not in shown


@pytest.mark.reads_failed_task_log
def test_a_statement_that_writes_fails_without_a_retry(airflow, sandbox, sqlite_source, task_output):
    sqlite_source.insert_clicks([("msg-1", "offer-1", phone(1), None, "2025-11-15 10:00:00")])
    result, tries = run_with_tries(
        airflow, sql="UPDATE sms_clicks SET offer_id = 'x'", retries=2, retry_delay=0
    )
    assert (result.state, tries) == ("failed", 1)
    assert (
        "TracklySourceError: The query returned no result set; it must be a SELECT. An INSERT, UPDATE, "
        "DELETE or DDL statement returns no rows: write the SELECT (or WITH ... SELECT) that reads the "
        "records."
    ) in task_output()
    assert sqlite_source.query("SELECT offer_id FROM sms_clicks") == [("offer-1",)]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_postgres_statement_that_writes_inside_a_select_is_refused_by_the_server_and_not_retried(
    pg_clicks, driver
):
    sql = f"WITH gone AS (DELETE FROM {PG_TABLE} RETURNING message_id) SELECT * FROM gone"
    with pytest.raises(TracklySourceError) as raised:
        read_all(postgres(driver), sql)
    assert str(raised.value).startswith(f"The source database failed running the query: {driver}.errors.")
    assert "DECLARE CURSOR must not contain data-modifying statements in WITH" in str(raised.value)
    assert PostgresSource().query(f"SELECT COUNT(*) FROM {PG_TABLE}") == [(len(PG_ROWS),)]


def test_a_cleanup_error_after_success_is_raised_redacted(sqlite_source, caplog):
    """
    With nothing else failing, an error closing the source is the import's error (a retry may help).
    A connection that fails to close cannot be made real: a sqlite3 connection subclass raises.
    """

    class Closing(sqlite3.Connection):
        def close(self) -> None:
            raise sqlite3.OperationalError(f"disk I/O error near {phone(7)}")

    hook = DriverHook(lambda: sqlite3.connect(sqlite_source.path, factory=Closing))
    with pytest.raises(Exception) as raised:
        read_all(hook, "SELECT 1")
    assert type(raised.value).__name__ == "TracklyError"
    assert str(raised.value) == (
        "The source database failed closing the connection: sqlite3.OperationalError: disk I/O error "
        "near [redacted]"
    )
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

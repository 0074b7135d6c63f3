"""
MySQL/MariaDB import sessions on a server of the tests' own (``own_mariadb``: default time zone
-05:00, ``net_write_timeout`` and ``net_read_timeout`` 5 s): TIMESTAMP values and the day's bounds
in UTC, a stream that outlives a slow API, cleanup errors that never replace the import's own.
Through mysqlclient and mysql-connector-python (the MySQL provider's two clients), and PyMySQL.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.dag_runs import run_with_tries
from tests.helpers import SOURCE_CONN_ID, phone, set_trackly_connection, utc
from trackly_provider.database.source import stream_query
from trackly_provider.exceptions import TracklyAuthError, TracklyError, TracklySourceError

CLIENTS = ["mysqlclient", "mysql-connector-python"]
TS_TABLE = "own_ts_clicks"
STALL_TABLE = "own_stall_clicks"
STALL_ROWS = 3000
PADDING = 32_768  # bytes a row: 3,000 rows are ~100 MB, far more than loopback's socket buffers hold
DAY_SQL = (
    f"SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp "
    f"FROM {TS_TABLE} WHERE clicked_at >= %s AND clicked_at < %s ORDER BY id"
)
STALL_SQL = (
    f"SELECT message_id, offer_id, phone_number, clicked_at AS timestamp, REPEAT('x', {PADDING}) AS padding "
    f"FROM {STALL_TABLE} ORDER BY id"
)
# Clicks around one UTC day, as UTC instants: (message id, clicked at). A -05:00 "day" would be
# [05:00Z, next 05:00Z): it would drop "start" and "early" and take "next" and "next-early".
BOUNDARY_CLICKS = [
    ("before", utc(2025, 11, 14, 23, 59, 59)),
    ("start", utc(2025, 11, 15)),
    ("early", utc(2025, 11, 15, 4, 59, 59)),
    ("five", utc(2025, 11, 15, 5)),
    ("late", utc(2025, 11, 15, 23, 59, 59, 500_000)),
    ("next", utc(2025, 11, 16)),
    ("next-early", utc(2025, 11, 16, 4, 59, 59)),
]
IN_THE_DAY = BOUNDARY_CLICKS[1:5]


@pytest.fixture(scope="module")
def ts_clicks(own_mariadb):
    """``own_ts_clicks``: the boundary clicks in TIMESTAMP(6) columns, sent a minute before each."""
    own_mariadb.execute(f"DROP TABLE IF EXISTS {TS_TABLE}")
    own_mariadb.execute(
        f"CREATE TABLE {TS_TABLE} (id INT AUTO_INCREMENT PRIMARY KEY, message_id VARCHAR(64), "
        "offer_id VARCHAR(64), phone_number VARCHAR(32), sent_at TIMESTAMP(6) NULL, "
        "clicked_at TIMESTAMP(6) NULL)"
    )
    own_mariadb.execute(  # in a UTC session: the naive values are these UTC instants
        f"INSERT INTO {TS_TABLE} (message_id, offer_id, phone_number, sent_at, clicked_at) "
        "VALUES (%s, %s, %s, %s, %s)",
        [
            (m, "offer-1", phone(n), naive(at.timestamp() - 60), naive(at.timestamp()))
            for n, (m, at) in enumerate(BOUNDARY_CLICKS)
        ],
    )
    return own_mariadb


@pytest.fixture(scope="module")
def stall_clicks(own_mariadb):
    """``own_stall_clicks``: 3,000 valid clicks (read with a 32 KB padding column)."""
    own_mariadb.execute(f"DROP TABLE IF EXISTS {STALL_TABLE}")
    own_mariadb.execute(
        f"CREATE TABLE {STALL_TABLE} (id INT PRIMARY KEY, message_id VARCHAR(64), offer_id VARCHAR(64), "
        "phone_number VARCHAR(32), clicked_at DATETIME(6))"
    )
    own_mariadb.execute(
        f"INSERT INTO {STALL_TABLE} SELECT seq, CONCAT('stall-', LPAD(seq, 5, '0')), 'offer-1', "
        f"CONCAT('+1202555', LPAD(seq, 4, '0')), TIMESTAMP'2025-11-15 10:00:00' + INTERVAL seq SECOND "
        f"FROM seq_1_to_{STALL_ROWS}"
    )
    return own_mariadb


def naive(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def use_source(monkeypatch: pytest.MonkeyPatch, server: Any, client: str) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}", json.dumps(server.airflow_connection(client))
    )


class DriverHook:
    """Stands in for a DbApiHook whose ``get_conn`` opens one driver's connection (``stream_query`` calls
    only that). PyMySQL has no MySQL provider client, so it is reached this way; the others too, to
    read the session through each driver alike."""

    def __init__(self, server: Any, driver: str) -> None:
        self.server, self.driver = server, driver
        self.connection: Any = None

    def get_conn(self) -> Any:
        options = {
            "host": "127.0.0.1",
            "port": self.server.port,
            "user": "root",
            "password": "",
            "database": "test",
        }
        if self.driver == "MySQLdb":
            import MySQLdb

            self.connection = MySQLdb.connect(**options)
        elif self.driver == "pymysql":
            import pymysql

            self.connection = pymysql.connect(**options)
        else:
            import mysql.connector

            self.connection = mysql.connector.connect(**options)
        return self.connection


def read_all(hook: Any, sql: str, parameters: Any = None, **kwargs: Any) -> list[tuple[Any, ...]]:
    with stream_query(hook, sql, parameters, 100, **kwargs) as (_, chunks):
        return [tuple(row) for chunk in chunks for row in chunk]


def test_the_server_really_is_five_hours_behind_utc(ts_clicks):
    """What an import's session would see without its own settings: local values, a -05:00 zone."""
    assert ts_clicks.query(
        f"SELECT @@time_zone, @@net_write_timeout, CAST(clicked_at AS CHAR) FROM {TS_TABLE} "
        "WHERE message_id = 'five'"
    ) == [("-05:00", 5, "2025-11-15 00:00:00.000000")]


@pytest.mark.parametrize("driver", ["MySQLdb", "mysql", "pymysql"])
def test_each_driver_reads_in_a_utc_session_that_outlasts_the_longest_stall(ts_clicks, driver):
    hook = DriverHook(ts_clicks, driver)
    session = "SELECT @@session.time_zone, @@session.net_write_timeout, @@session.net_read_timeout"
    assert read_all(hook, session, max_stall_seconds=100.0) == [("+00:00", 160, 5)]
    assert read_all(hook, session) == [("+00:00", 3660, 5)]  # the default: an hour and the margin
    assert read_all(hook, session, max_stall_seconds=1e12) == [("+00:00", 31_536_000, 5)]  # MySQL's max
    rows = read_all(
        hook, DAY_SQL.replace("sent_at AS send_timestamp, ", ""), [utc(2025, 11, 15), utc(2025, 11, 16)]
    )
    assert [(m, clicked) for m, _, _, clicked in rows] == [
        (m, at.replace(tzinfo=None)) for m, at in IN_THE_DAY
    ]


@pytest.mark.parametrize("client", CLIENTS)
def test_timestamp_clicks_are_sent_at_their_instants_for_the_utc_day(
    airflow, sandbox, ts_clicks, monkeypatch, client
):
    use_source(monkeypatch, ts_clicks, client)
    result, _ = run_with_tries(airflow, sql=DAY_SQL, parameters=[utc(2025, 11, 15), utc(2025, 11, 16)])
    assert (result.state, result.xcom["rows_read"], result.xcom["success_count"]) == ("success", 4, 4)
    n = {m: i for i, (m, _) in enumerate(BOUNDARY_CLICKS)}
    assert sandbox.received() == [
        {
            "message_id": m,
            "offer_id": "offer-1",
            "phone_number": phone(n[m]),
            "send_timestamp": datetime.fromtimestamp(at.timestamp() - 60, timezone.utc).isoformat(),
            "timestamp": at.isoformat(),
        }
        for m, at in IN_THE_DAY
    ]


@pytest.mark.slow
def test_without_the_session_setting_a_stalled_stream_is_lost(stall_clicks):
    """The control: on this server a stream left unread for 8 s dies, so the next tests mean something."""
    import MySQLdb
    import MySQLdb.cursors

    conn = stall_clicks.connect()
    try:
        cursor = conn.cursor(MySQLdb.cursors.SSCursor)
        cursor.execute(STALL_SQL)
        assert len(cursor.fetchmany(1000)) == 1000
        time.sleep(8)
        with pytest.raises(MySQLdb.OperationalError, match="Lost connection"):
            while cursor.fetchmany(1000):
                pass
    finally:
        conn.close()


@pytest.mark.slow
def test_an_import_outlives_an_api_that_answers_after_8_s(airflow, sandbox, stall_clicks, monkeypatch):
    """The server drops a stream it cannot write for 5 s; every answer takes 8 s, 3 requests in a row."""
    use_source(monkeypatch, stall_clicks, "mysqlclient")
    sandbox.set_faults(latency_ms=8000)
    result, tries = run_with_tries(airflow, sql=STALL_SQL, batch_size=1000, max_in_flight=1)
    assert (result.state, tries) == ("success", 1)
    xcom = result.xcom
    assert (xcom["rows_read"], xcom["success_count"], xcom["error_count"], xcom["batches"]) == (
        3000,
        3000,
        0,
        3,
    )
    assert len(sandbox.stored()) == STALL_ROWS


@pytest.mark.slow
def test_a_mysql_connector_stream_outlives_an_8_s_stall(stall_clicks):
    hook = DriverHook(stall_clicks, "mysql")
    read = 0
    with stream_query(hook, STALL_SQL, None, 1000) as (_, chunks):
        for chunk in chunks:
            if read == 0:
                time.sleep(8)
            read += len(chunk)
    assert read == STALL_ROWS


def test_a_connection_lost_mid_stream_is_a_retryable_error_and_its_cleanup_only_logs(stall_clicks, caplog):
    """
    The server ends the session while rows are unread (``KILL``): the read fails with the driver's
    text in the provider's error (a retry may help), unchained; closing the cursor then fails too,
    which is logged, never raised in its place.
    """
    hook = DriverHook(stall_clicks, "MySQLdb")
    read = 0
    with pytest.raises(TracklyError) as raised, stream_query(hook, STALL_SQL, None, 100) as (_, chunks):
        for chunk in chunks:
            if read == 0:
                stall_clicks.execute(f"KILL {hook.connection.thread_id()}")
            read += len(chunk)
    assert type(raised.value) is TracklyError
    assert str(raised.value).startswith(
        f"The source database failed reading the rows after row {read}: MySQLdb.OperationalError: (2013, "
    )
    assert (raised.value.__cause__, raised.value.__context__) == (None, None)
    assert 100 <= read < STALL_ROWS
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(
        w.endswith("after TracklyError; the import's own error follows.") for w in warnings
    )
    assert warnings[0].startswith("The source database failed closing the cursor: MySQLdb.OperationalError:")


def test_an_error_while_an_unread_mysql_connector_stream_is_open_is_the_one_raised(ts_clicks, caplog):
    """mysql-connector refuses to close a cursor with unread rows; the caller's error still wins."""
    hook = DriverHook(ts_clicks, "mysql")
    with (
        pytest.raises(TracklyAuthError),
        stream_query(hook, f"SELECT * FROM {TS_TABLE}", None, 2) as (_, chunks),
    ):
        next(chunks)
        raise TracklyAuthError(401, "invalid_api_key", "Invalid API key")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning == (
        "The source database failed closing the cursor: mysql.connector.errors.InternalError: Unread result "
        "found after TracklyAuthError; the import's own error follows."
    )
    assert not hook.connection.is_connected()


@pytest.mark.reads_failed_task_log
def test_a_wrong_key_through_mysql_connector_fails_once_with_the_auth_error(
    airflow, sandbox, stall_clicks, monkeypatch, task_output
):
    """A 401 stops the import with 2,000 rows unread: no retry (2 allowed), one request, the 401 reported."""
    use_source(monkeypatch, stall_clicks, "mysql-connector-python")
    set_trackly_connection(monkeypatch, sandbox.url, "trk_" + "Z" * 32)
    sql = STALL_SQL.replace(f", REPEAT('x', {PADDING}) AS padding", "")
    result, tries = run_with_tries(airflow, sql=sql, batch_size=1000, retries=2, retry_delay=0)
    assert (result.state, tries, sandbox.state()["requests_seen"]) == ("failed", 1, 1)
    log = task_output()
    assert "Trackly rejected the API key of connection 'trackly_default'" in log
    assert "InternalError: Unread result found after TracklyAuthError; the import's own error follows." in log


@pytest.mark.parametrize("driver", ["MySQLdb", "mysql", "pymysql"])
def test_a_statement_that_writes_is_refused_before_it_runs(ts_clicks, driver):
    hook = DriverHook(ts_clicks, driver)
    with pytest.raises(TracklySourceError) as raised:
        read_all(hook, f"/* clean up */ DELETE FROM {TS_TABLE}")
    assert str(raised.value).startswith("The query returned no result set; it must be a SELECT.")
    assert hook.connection is None  # refused before connecting
    assert ts_clicks.query(f"SELECT COUNT(*) FROM {TS_TABLE}") == [(len(BOUNDARY_CLICKS),)]

"""
Every session an import opens outlives a slow API: the source, the ledger (and its lock) and the
rejects table, on a MariaDB of the tests' own that ends sessions idle 5 s (``wait_timeout`` and
``interactive_timeout``) and stores latin1 by default, and on PostgreSQL with
``idle_session_timeout`` 5 s set through the connection (never on the shared server). The API
answers after 7 s.
"""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Any

import MySQLdb
import psycopg
import pytest

from tests.dag_runs import run_with_tries
from tests.databases import postgres_dsn
from tests.helpers import SOURCE_CONN_ID, PostgresSource
from trackly_provider.database.source import stream_query
from trackly_provider.database.tables import set_up_session

REVENUE_TABLE = "idle_revenue"
LEDGER = "idle_ledger"
REJECTS = "idle_rejects"
REVENUE_SQL = f"SELECT message_id, offer_id, revenue FROM {REVENUE_TABLE} ORDER BY row_id"
# (row, message id, revenue): row 2 has no message id, which the import rejects locally.
REVENUE_ROWS = [
    (0, "idle-0", Decimal("10.25")),
    (1, "idle-1", Decimal("11.25")),
    (2, None, Decimal("12.25")),
    (3, "idle-3", Decimal("13.25")),
    (4, "idle-4", Decimal("14.25")),
]
SHORT_IDLE = "-c idle_session_timeout=5000"


@pytest.fixture(scope="module")
def short_mariadb(tmp_path_factory: pytest.TempPathFactory):
    """A MariaDB of the tests' own: idle sessions ended after 5 s, latin1 the default character set."""
    from tests.mariadb_server import OwnMariaDb

    server = OwnMariaDb.start(
        tmp_path_factory.mktemp("short-mariadb"),
        "--wait-timeout=5",
        "--interactive-timeout=5",
        "--character-set-server=latin1",
        "--collation-server=latin1_swedish_ci",
    )
    yield server
    server.stop()


@pytest.fixture
def mariadb_revenue(short_mariadb, monkeypatch: pytest.MonkeyPatch):
    for table in (REVENUE_TABLE, LEDGER, REJECTS):
        short_mariadb.execute(f"DROP TABLE IF EXISTS {table}")
    short_mariadb.execute(
        f"CREATE TABLE {REVENUE_TABLE} (row_id INT PRIMARY KEY, message_id VARCHAR(64) "
        "CHARACTER SET utf8mb4, offer_id VARCHAR(64), revenue DECIMAL(10, 2))"
    )
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}", json.dumps(short_mariadb.airflow_connection())
    )
    return short_mariadb


@pytest.fixture
def postgres_revenue(monkeypatch: pytest.MonkeyPatch):
    source = PostgresSource.create(monkeypatch, extra={"options": SHORT_IDLE})
    source.tables += [LEDGER, REJECTS]
    source.load(
        REVENUE_TABLE, {"row_id": "int", "message_id": "text", "offer_id": "text", "revenue": "number"}, []
    )
    yield source
    source.drop()


def insert_revenue(execute: Any, rows: list[tuple[Any, ...]]) -> None:
    execute(
        f"INSERT INTO {REVENUE_TABLE} (row_id, message_id, offer_id, revenue) VALUES (%s, %s, %s, %s)",
        [(n, m, "offer-1", revenue) for n, m, revenue in rows],
    )


def run_slow_revenue(sandbox: Any, airflow: Any) -> Any:
    """Revenue in batches of 2, one at a time, each answered after 7 s: every session idles 7 s or more."""
    sandbox.set_faults(latency_ms=7000)
    result, tries = run_with_tries(
        airflow,
        "RevenueHistoryImportOperator",
        "import_revenue",
        sql=REVENUE_SQL,
        ledger_table=LEDGER,
        rejects_table=REJECTS,
        batch_size=2,
        max_in_flight=1,
        max_error_rate=0.5,
    )
    assert (result.state, tries) == ("success", 1)
    xcom = result.xcom
    assert (xcom["rows_read"], xcom["success_count"], xcom["error_count"]) == (5, 4, 1)
    assert sorted(r["message_id"] for r in sandbox.received()) == ["idle-0", "idle-1", "idle-3", "idle-4"]
    return result


def test_the_own_server_ends_a_session_idle_for_5_s(short_mariadb):
    """The control: without the import's settings, a session left idle 6 s is gone."""
    conn = short_mariadb.connect()
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT @@session.wait_timeout, @@character_set_server")
        assert cursor.fetchall() == ((5, "latin1"),)
        time.sleep(6)
        with pytest.raises(MySQLdb.OperationalError, match=r"gone away|Lost connection"):
            cursor.execute("SELECT 1")
    finally:
        conn.close()


@pytest.mark.slow
def test_mariadb_revenue_is_confirmed_in_the_ledger_and_rejects_stored_after_7_s_answers(
    airflow, sandbox, mariadb_revenue
):
    insert_revenue(mariadb_revenue.execute, REVENUE_ROWS)
    run_slow_revenue(sandbox, airflow)
    assert mariadb_revenue.query(f"SELECT state, records FROM {LEDGER} ORDER BY first_row") == [
        ("confirmed", 2),
        ("confirmed", 2),
    ]
    assert mariadb_revenue.query(f"SELECT row_index, message_id FROM {REJECTS}") == [(2, None)]


@pytest.mark.slow
def test_postgres_revenue_is_confirmed_in_the_ledger_and_rejects_stored_after_7_s_answers(
    airflow, sandbox, postgres_revenue
):
    with PostgresSource.connect() as conn, conn.cursor() as cursor:
        insert_revenue(cursor.executemany, REVENUE_ROWS)
    run_slow_revenue(sandbox, airflow)
    assert postgres_revenue.query(f"SELECT state, records FROM {LEDGER} ORDER BY first_row") == [
        ("confirmed", 2),
        ("confirmed", 2),
    ]
    assert postgres_revenue.query(f"SELECT row_index, message_id FROM {REJECTS}") == [(2, None)]


def test_an_emoji_message_id_is_confirmed_in_a_ledger_on_a_latin1_server(airflow, sandbox, mariadb_revenue):
    emoji = "idle-\U0001f600"
    insert_revenue(mariadb_revenue.execute, [(0, emoji, Decimal("10.25")), (1, "idle-1", Decimal("11.25"))])
    result, tries = run_with_tries(
        airflow,
        "RevenueHistoryImportOperator",
        "import_revenue",
        sql=REVENUE_SQL,
        ledger_table=LEDGER,
        retries=2,
    )
    assert (result.state, tries, result.xcom["success_count"]) == ("success", 1, 2)
    assert sorted(r["message_id"] for r in sandbox.received()) == ["idle-1", emoji]
    (create,) = mariadb_revenue.query(f"SHOW CREATE TABLE {LEDGER}")
    assert "DEFAULT CHARSET=utf8mb4" in create[1]
    assert mariadb_revenue.query(f"SELECT state, message_ids FROM {LEDGER}") == [
        ("confirmed", json.dumps([emoji, "idle-1"], ensure_ascii=False, separators=(",", ":")))
    ]


class OneConnection:
    """Stands in for a DbApiHook: ``get_conn`` opens a mysqlclient connection to the own server."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.connection: Any = None

    def get_conn(self) -> Any:
        self.connection = self.server.connect()
        return self.connection


def test_writer_and_source_sessions_raise_the_idle_timeouts_and_never_lower_them(short_mariadb):
    hook = OneConnection(short_mariadb)
    with stream_query(
        hook, "SELECT @@session.wait_timeout, @@session.interactive_timeout", None, 10, max_stall_seconds=100
    ) as (_, chunks):
        assert [tuple(row) for chunk in chunks for row in chunk] == [(160, 160)]
    conn = short_mariadb.connect()
    try:
        set_up_session(conn)  # the default bound: an hour and the margin
        cursor = conn.cursor()
        cursor.execute("SELECT @@session.wait_timeout, @@session.interactive_timeout, @@session.tx_isolation")
        assert cursor.fetchall() == ((3660, 3660, "READ-COMMITTED"),)
        cursor.execute("SET SESSION wait_timeout = 100000")
        set_up_session(conn, 100)
        cursor.execute("SELECT @@session.wait_timeout, @@session.interactive_timeout")
        assert cursor.fetchall() == ((100000, 3660),)
    finally:
        conn.close()


@pytest.mark.parametrize(("options", "shown"), [(SHORT_IDLE, "160s"), ("-c idle_session_timeout=0", "0")])
def test_a_postgres_writer_session_raises_a_short_idle_session_timeout(options, shown):
    with psycopg.connect(postgres_dsn(options=options)) as conn:
        set_up_session(conn, 100)
        assert conn.execute("SHOW idle_session_timeout").fetchall() == [(shown,)]


def test_a_source_session_lost_after_every_row_was_read_is_a_warning(short_mariadb, caplog):
    """The server ends the source's session once every row was read: the import still completes."""
    hook = OneConnection(short_mariadb)
    with stream_query(hook, "SELECT 1 UNION ALL SELECT 2", None, 10) as (_, chunks):
        assert [tuple(row) for chunk in chunks for row in chunk] == [(1,), (2,)]
        short_mariadb.execute(f"KILL {hook.connection.thread_id()}")
        time.sleep(0.2)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(
        "The source database failed ending the read transaction: MySQLdb.OperationalError: "
    )
    assert warning.endswith("; the rows were all read, so the import goes on.")

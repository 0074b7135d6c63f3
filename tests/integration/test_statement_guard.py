"""
Only statements that read rows run, and a mistake in the query or the connection is not retried:
the guard on real SQLite, PostgreSQL and MariaDB (the shared servers, tables of these tests'
own), and each database's configuration errors told from passing ones.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import MySQLdb
import psycopg
import pytest

from tests.databases import mariadb_options, postgres_dsn
from trackly_provider.database.source import stream_query
from trackly_provider.exceptions import TracklyError, TracklyMissingSourceObjectError, TracklySourceError

TABLE = "guard_rows"
MARIADB = mariadb_options()
POSTGRES = postgres_dsn()


class Hook:
    """Stands in for a DbApiHook (``stream_query`` calls only ``get_conn``), counting connections."""

    def __init__(self, connect: Any) -> None:
        self.connect = connect
        self.connections = 0

    def get_conn(self) -> Any:
        self.connections += 1
        return self.connect()


def read_all(hook: Any, sql: str) -> list[tuple[Any, ...]]:
    with stream_query(hook, sql, None, 100) as (_, chunks):
        return [tuple(row) for chunk in chunks for row in chunk]


def test_a_sqlite_with_insert_is_refused_and_the_table_is_unchanged(tmp_path: Path):
    path = tmp_path / "guard.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (n INTEGER)")
        conn.execute(f"INSERT INTO {TABLE} VALUES (1)")
    hook = Hook(lambda: sqlite3.connect(path))
    with pytest.raises(TracklySourceError) as raised:
        read_all(hook, f"WITH a AS (SELECT 2 AS n) INSERT INTO {TABLE} SELECT n FROM a")
    assert str(raised.value).startswith("The query returned no result set; it must be a SELECT.")
    assert hook.connections == 0  # refused before connecting
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT n FROM {TABLE}").fetchall() == [(1,)]


def test_two_statements_are_refused_before_either_runs(tmp_path: Path):
    hook = Hook(lambda: sqlite3.connect(tmp_path / "two.db"))
    with pytest.raises(TracklySourceError) as raised:
        read_all(hook, f"SELECT 1; DROP TABLE {TABLE}")
    assert str(raised.value) == (
        "The query must be one SELECT statement; it holds 2. Run other statements elsewhere "
        "(a SQLExecuteQueryOperator before this task)."
    )
    assert hook.connections == 0


@pytest.fixture
def mariadb_table():
    conn = MySQLdb.connect(**MARIADB)
    cursor = conn.cursor()
    cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
    cursor.execute(f"CREATE TABLE {TABLE} (n INT)")
    cursor.execute(f"INSERT INTO {TABLE} VALUES (1)")
    conn.commit()
    yield lambda sql: (cursor.execute(sql), cursor.fetchall())[1]
    cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.close()


def test_mariadb_runs_set_statement_for_select(mariadb_table):
    """It was refused ("no result set") only because the guard saw SET; the server returns its rows."""
    hook = Hook(lambda: MySQLdb.connect(**MARIADB))
    assert read_all(hook, f"SET STATEMENT max_statement_time=0 FOR SELECT n FROM {TABLE}") == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        f"# clean up\nINSERT INTO {TABLE} VALUES (2)",
        f"/*!INSERT INTO {TABLE} VALUES (2)*/",
        f"WITH a AS (SELECT 2) INSERT INTO {TABLE} SELECT * FROM a",
        f"DO (SELECT COUNT(*) FROM {TABLE})",
    ],
)
def test_mariadb_writes_are_refused_before_they_run(mariadb_table, sql):
    hook = Hook(lambda: MySQLdb.connect(**MARIADB))
    with pytest.raises(TracklySourceError, match=r"^The query returned no result set"):
        read_all(hook, sql)
    assert hook.connections == 0
    assert mariadb_table(f"SELECT n FROM {TABLE}") == ((1,),)


def sqlite_hook(tmp_path: Path) -> Hook:
    path = tmp_path / "errors.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (n INTEGER)")
    return Hook(lambda: sqlite3.connect(path, timeout=0.1))


@pytest.mark.parametrize(
    ("sql", "text", "missing"),
    [
        ("SELECT n FROM missing_table", "no such table: missing_table", ("table", "missing_table")),
        (
            f"SELECT missing_column FROM {TABLE}",
            "no such column: missing_column",
            ("column", "missing_column"),
        ),
        (f"SELECT n FROM {TABLE} WHERE", "incomplete input", None),
        (f"SELECT n FROM {TABLE} ORDER n", 'near "n": syntax error', None),
        (f"SELECT nope(n) FROM {TABLE}", "no such function: nope", None),
    ],
)
def test_sqlite_configuration_errors_are_not_retried(tmp_path, sql, text, missing):
    with pytest.raises(TracklyError) as raised:
        read_all(sqlite_hook(tmp_path), sql)
    if missing is None:
        assert type(raised.value) is TracklySourceError
    else:  # the operator words it with its connection and day (test_config_errors.py)
        assert type(raised.value) is TracklyMissingSourceObjectError
        assert (raised.value.kind, raised.value.name) == missing
    assert str(raised.value) == (
        f"The source database failed running the query: sqlite3.OperationalError: {text}"
    )


def test_a_locked_sqlite_database_stays_a_retried_error(tmp_path):
    hook = sqlite_hook(tmp_path)
    holder = sqlite3.connect(tmp_path / "errors.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(TracklyError) as raised:
            read_all(hook, f"SELECT n FROM {TABLE}")
    finally:
        holder.close()
    assert type(raised.value) is TracklyError
    assert str(raised.value).endswith("sqlite3.OperationalError: database is locked")


@pytest.mark.parametrize(
    ("sql", "code"),
    [
        (f"SELECT missing_column FROM {TABLE}", 1054),
        (f"SELECT n FROM {TABLE} ORDER n", 1064),
        ("SELECT n FROM missing_table", 1146),
    ],
)
def test_mariadb_query_errors_are_not_retried(mariadb_table, sql, code):
    with pytest.raises(TracklyError) as raised:
        read_all(Hook(lambda: MySQLdb.connect(**MARIADB)), sql)
    missing = {1054: TracklyMissingSourceObjectError, 1146: TracklyMissingSourceObjectError}
    assert type(raised.value) is missing.get(code, TracklySourceError)
    assert f"MySQLdb.{'ProgrammingError' if code != 1054 else 'OperationalError'}: ({code}, " in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("options", "code"),
    [({"database": "no_such_database_21"}, 1049), ({"user": "no_such_user_21"}, 1698)],
)
def test_mariadb_connection_errors_of_configuration_are_not_retried(options, code):
    with pytest.raises(TracklyError) as raised:
        read_all(Hook(lambda: MySQLdb.connect(**{**MARIADB, **options})), "SELECT 1")
    assert type(raised.value) is TracklySourceError
    assert str(raised.value).startswith(
        f"The source database failed connecting: MySQLdb.OperationalError: ({code}, "
    )


def test_an_unreachable_mariadb_stays_a_retried_error():
    with pytest.raises(TracklyError) as raised:
        read_all(Hook(lambda: MySQLdb.connect(**{**MARIADB, "port": 1})), "SELECT 1")
    assert type(raised.value) is TracklyError
    assert "MySQLdb.OperationalError: (2002, " in str(raised.value)


@pytest.mark.parametrize(
    ("dsn", "sql", "state", "kind"),
    [
        (POSTGRES, "SELECT n FROM missing_table_21", "UndefinedTable", TracklyMissingSourceObjectError),
        (POSTGRES, "SELECT FROM WHERE", "SyntaxError", TracklySourceError),
        (postgres_dsn("no_such_database_21"), "SELECT 1", "OperationalError", TracklySourceError),
    ],
)
def test_postgres_configuration_errors_are_not_retried(dsn, sql, state, kind):
    with pytest.raises(TracklyError) as raised:
        read_all(Hook(lambda: psycopg.connect(dsn)), sql)
    assert type(raised.value) is kind
    assert f"psycopg.errors.{state}: " in str(raised.value) or f"psycopg.{state}: " in str(raised.value)

"""
The rejects table never fails an import: values its columns cannot hold are stored in a safe form,
any name works, and what still fails is a warning, on real SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.databases import MARIADB_DATABASE, mariadb_connection, postgres_connection
from tests.helpers import MariaDbSource, PostgresSource, clicks, utc
from trackly_provider.database.ledger import ImportLedger
from trackly_provider.database.rejects import (
    ERROR_LIMIT,
    RejectsTable,
    TaskInstanceId,
)
from trackly_provider.database.source import sql_hook
from trackly_provider.exceptions import TracklyConfigError

CONN_ID = "trackly_rejects_db"
TABLE = "trackly_rejects_safe"  # unique to these tests, dropped after each
# Names that were unusable: reserved words (user in PostgreSQL, order everywhere), and the writer's
# former temporary table, which hid the real one.
RESERVED_WORDS = ["user", "order"]
AWKWARD_NAMES = [*RESERVED_WORDS, "trackly_rejects_spool"]
TASK = TaskInstanceId("dag", "run", "task", -1, 1)
# The rejects table's columns, and a constraint no row meets: it is written to only when published.
REFUSING_EVERY_ROW = (
    f"CREATE TABLE {TABLE} (dag_id VARCHAR(250) NOT NULL, run_id VARCHAR(250) NOT NULL, "
    "task_id VARCHAR(250) NOT NULL, map_index INTEGER NOT NULL, try_number INTEGER NOT NULL, "
    "row_index BIGINT NOT NULL CHECK (row_index < 0), message_id VARCHAR(255), "
    "code VARCHAR(64) NOT NULL, error TEXT, rejected_at VARCHAR(40) NOT NULL)"
)
SELECT = "SELECT row_index, message_id, code, error FROM {} ORDER BY row_index"


class RejectsDb:
    """The rejects table's database, through an Airflow connection, and a side door to check it."""

    def __init__(self, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kind = kind
        self.path = tmp_path / "rejects.db"
        conn: dict[str, Any] = {"conn_type": "sqlite", "host": str(self.path)}
        if kind == "postgres":
            conn = postgres_connection()
        elif kind.startswith("mariadb"):
            conn = mariadb_connection()
            if kind == "mariadb-connector":
                conn["extra"] = {"client": "mysql-connector-python"}
            elif kind == "mariadb-utf8mb3":  # a connection that cannot carry characters past U+FFFF
                conn["extra"] = {"charset": "utf8"}
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))

    def execute(self, *statements: str) -> None:
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.path)) as connection:
                for statement in statements:
                    connection.execute(statement)
                connection.commit()
        elif self.kind == "postgres":
            with PostgresSource.connect() as connection:
                for statement in statements:
                    connection.execute(statement)
        else:
            connection = MariaDbSource.connect()
            try:
                for statement in statements:
                    connection.cursor().execute(statement)
                connection.commit()
            finally:
                connection.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.path)) as connection:
                return connection.execute(sql).fetchall()
        if self.kind == "postgres":
            with PostgresSource.connect() as connection:
                return connection.execute(sql).fetchall()
        return MariaDbSource().query(sql)

    def quote(self, name: str) -> str:
        return f"`{name}`" if self.kind.startswith("mariadb") else f'"{name}"'

    def drop(self, *names: str) -> None:
        self.execute(*(f"DROP TABLE IF EXISTS {self.quote(name)}" for name in names))


@pytest.fixture(params=["sqlite", "postgres", "mariadb", "mariadb-connector"])
def rejects_db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each real database the rejects table can live in; MariaDB through both MySQL clients."""
    db = RejectsDb(request.param, tmp_path, monkeypatch)
    db.drop(TABLE, *AWKWARD_NAMES)
    yield db
    db.drop(TABLE, *AWKWARD_NAMES)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def rejects_db_per_server(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each real database server kind once (through the default driver), for the slower DAG runs."""
    db = RejectsDb(request.param, tmp_path, monkeypatch)
    db.drop(TABLE, *AWKWARD_NAMES)
    yield db
    db.drop(TABLE, *AWKWARD_NAMES)


def writer(table: str = TABLE) -> RejectsTable:
    return RejectsTable(sql_hook(CONN_ID), table, TASK)


def test_values_no_column_can_hold_are_stored_in_a_safe_form(rejects_db):
    with writer() as rejects:
        rejects.add(0, "unknown\x00nul", "message_not_found", "No message\x00 here")  # PostgreSQL: NUL
        rejects.add(1, "m" * 300, "message_not_found", "No message")  # MariaDB: VARCHAR(255)
        rejects.add(2, "m2", "c" * 100, "A code the API added")  # PostgreSQL, MariaDB: VARCHAR(64)
        rejects.add(3, "m3", "invalid_message", "e" * 5000)
        rejects.add(4, "bad\ud800surrogate", "message_not_found", "lone \udcff surrogate")  # no encoding
        rejects.add(5, "emoji-\U0001f600-é", "message_not_found", "No message")
        rejects.add(6, None, "missing_message_id", "message_id is NULL or empty")
    assert (rejects.rows_written, rejects.rows_not_written, rejects.failed) == (7, 0, None)
    assert rejects_db.query(SELECT.format(TABLE)) == [
        (0, "unknownnul", "message_not_found", "No message here"),
        (1, "m" * 254 + "…", "message_not_found", "No message"),
        (2, "m2", "c" * 63 + "…", "A code the API added"),
        (3, "m3", "invalid_message", "e" * (ERROR_LIMIT - 1) + "…"),
        (4, "bad\ufffdsurrogate", "message_not_found", "lone \ufffd surrogate"),
        (5, "emoji-\U0001f600-é", "message_not_found", "No message"),
        (6, None, "missing_message_id", "message_id is NULL or empty"),
    ]


def test_an_import_whose_rejected_ids_no_column_can_hold_keeps_its_counts(
    airflow, sandbox, sqlite_source, rejects_db_per_server
):
    """The API rejects these ids; written as they are, they failed the task after the import."""
    rows = clicks(6)
    rows[1] = ("unknown-\x00-nul", *rows[1][1:])
    rows[4] = ("unknown-" + "x" * 300, *rows[4][1:])
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator(max_error_rate=1.0, rejects_table=TABLE, rejects_conn_id=CONN_ID)
    assert result.state == "success"
    assert (result.xcom["rows_read"], result.xcom["success_count"], result.xcom["error_count"]) == (6, 4, 2)
    assert rejects_db_per_server.query(SELECT.format(TABLE)) == [
        (1, "unknown--nul", "message_not_found", "No message exists with the given message_id."),
        (
            4,
            "unknown-" + "x" * 246 + "…",
            "message_not_found",
            "No message exists with the given message_id.",
        ),
    ]


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_a_reserved_word_or_the_writers_former_spool_name_is_a_rejects_table_like_any_other(
    airflow, sandbox, sqlite_source, rejects_db_per_server, name
):
    sqlite_source.insert_clicks([("unknown-1", *clicks(1)[0][1:]), *clicks(3, start=1)])
    result = airflow.run_operator(max_error_rate=1.0, rejects_table=name, rejects_conn_id=CONN_ID)
    assert result.state == "success"
    assert (result.xcom["success_count"], result.xcom["error_count"]) == (3, 1)
    assert rejects_db_per_server.query(SELECT.format(rejects_db_per_server.quote(name))) == [
        (0, "unknown-1", "message_not_found", "No message exists with the given message_id.")
    ]


def test_two_writers_of_the_spool_named_table_each_publish_to_the_real_one(rejects_db):
    """A second writer's temporary table must not shadow the real table the first one published to."""
    for try_number in (1, 2):
        task = TaskInstanceId("dag", "run", "task", try_number, 1)
        with RejectsTable(sql_hook(CONN_ID), "trackly_rejects_spool", task) as rejects:
            rejects.add(try_number, f"m{try_number}", "message_not_found", "No message")
    quoted = rejects_db.quote("trackly_rejects_spool")
    assert rejects_db.query(f"SELECT map_index, row_index FROM {quoted} ORDER BY map_index") == [
        (1, 1),
        (2, 2),
    ]


def test_a_schema_qualified_name_in_capitals_means_what_it_would_unquoted(rejects_db):
    """PostgreSQL folds an unquoted name to lower case, so its quoted name is folded first."""
    schema = {"sqlite": "main", "postgres": "Public"}.get(rejects_db.kind, MARIADB_DATABASE)
    name = f"{schema}.Trackly_Rejects_Safe"  # MariaDB on Linux: another table than trackly_rejects_safe
    try:
        with writer(name) as rejects:
            rejects.add(0, "m0", "message_not_found", "No message")
        assert rejects_db.query(SELECT.format(name)) == [(0, "m0", "message_not_found", "No message")]
    finally:
        rejects_db.execute(f"DROP TABLE IF EXISTS {name}")


def test_a_table_name_of_60_characters_gets_an_index_name_mysql_allows(rejects_db):
    name = TABLE + "_" + "x" * (60 - len(TABLE) - 1)  # its index: 74 characters, 64 at most in MySQL
    try:
        with writer(name) as rejects:
            rejects.add(0, "m0", "message_not_found", "No message")
        assert rejects_db.query(SELECT.format(name)) == [(0, "m0", "message_not_found", "No message")]
    finally:
        rejects_db.drop(name)


def test_a_table_that_fails_when_published_leaves_the_import_green_with_a_warning(
    airflow, sandbox, sqlite_source, rejects_db_per_server, task_output
):
    """Its columns take the spooled rows' shape, but a constraint refuses them: only the write fails."""
    rejects_db_per_server.execute(REFUSING_EVERY_ROW)
    rows = clicks(6)
    rows[1] = ("m-no-phone", "offer-1", None, None, utc(2025, 11, 15, 10))
    rows[3] = ("unknown-3", *rows[3][1:])
    sqlite_source.insert_clicks(rows)
    result = airflow.run_operator(max_error_rate=1.0, rejects_table=TABLE, rejects_conn_id=CONN_ID)
    assert result.state == "success"
    assert (result.xcom["success_count"], result.xcom["error_count"]) == (4, 2)
    assert result.xcom["rejects_not_written"] == 2
    log = task_output()
    assert f"2 of 2 rejected rows could not be written to rejects table {TABLE}" in log
    assert "Wrote 0 rejected rows" not in log
    assert "+1202555" not in log
    assert rejects_db_per_server.query(f"SELECT COUNT(*) FROM {TABLE}") == [(0,)]


def test_the_imports_own_exception_is_raised_when_the_rejects_write_fails_too(rejects_db):
    rejects_db.execute(REFUSING_EVERY_ROW)
    with pytest.raises(RuntimeError, match=r"^the import's own error$"), writer() as rejects:
        rejects.add(0, "m0", "message_not_found", "No message")
        raise RuntimeError("the import's own error")
    assert (rejects.rows_written, rejects.rows_not_written) == (0, 1)
    assert rejects.failed is not None and rejects.failed.startswith("publishing: ")


def test_a_table_of_that_name_with_other_columns_fails_the_task_before_anything_is_sent(
    airflow, sandbox, sqlite_source, rejects_db_per_server
):
    rejects_db_per_server.execute(f"CREATE TABLE {TABLE} (id INTEGER, note VARCHAR(20))")
    sqlite_source.insert_clicks(clicks(3))
    result = airflow.run_operator(rejects_table=TABLE, rejects_conn_id=CONN_ID)
    assert result.state == "failed"
    assert sandbox.requests() == []
    with pytest.raises(TracklyConfigError, match=f"rejects table {TABLE} .*cannot be written"):
        writer().__enter__()


def test_a_row_the_database_refuses_as_it_is_is_stored_in_ascii_and_the_others_as_they_are(
    tmp_path, monkeypatch
):
    """MariaDB through a 3-byte utf8 connection refuses an emoji: that row alone is escaped."""
    db = RejectsDb("mariadb-utf8mb3", tmp_path, monkeypatch)
    db.drop(TABLE)
    try:
        with writer() as rejects:
            rejects.add(0, "caf\u00e9", "message_not_found", "No message")
            rejects.add(1, "emoji-\U0001f600-\u00e9", "message_not_found", "No message \u2026")
            rejects.add(2, "m2", "message_not_found", "No message")
        assert (rejects.rows_written, rejects.rows_not_written, rejects.failed) == (3, 0, None)
        assert db.query(SELECT.format(TABLE)) == [
            (0, "caf\u00e9", "message_not_found", "No message"),
            (1, "emoji-\\U0001f600-\\xe9", "message_not_found", "No message \\u2026"),
            (2, "m2", "message_not_found", "No message"),
        ]
    finally:
        db.drop(TABLE)


def kill_connection_of(rejects: RejectsTable, db: RejectsDb) -> None:
    """End the writer's session from another one, as a database restart or an admin would."""
    cursor = rejects._connection.cursor()  # the writer's own connection: which session to end
    cursor.execute("SELECT pg_backend_pid()" if db.kind == "postgres" else "SELECT CONNECTION_ID()")
    ((session,),) = cursor.fetchall()
    cursor.close()
    db.execute(f"SELECT pg_terminate_backend({session})" if db.kind == "postgres" else f"KILL {session}")


@pytest.mark.parametrize("kind", ["postgres", "mariadb", "mariadb-connector"])
def test_a_database_lost_while_rows_are_spooled_is_a_warning_not_an_error(
    kind, tmp_path, monkeypatch, caplog
):
    db = RejectsDb(kind, tmp_path, monkeypatch)
    db.drop(TABLE)
    try:
        with writer() as rejects:
            rejects.add(0, "m0", "message_not_found", "No message")
            kill_connection_of(rejects, db)
            for index in range(1, 1500):  # the first 1,000 are due to be written while the import goes on
                rejects.add(index, f"m{index}", "message_not_found", "No message")
    finally:
        db.drop(TABLE)
    assert (rejects.rows_written, rejects.rows_not_written) == (0, 1500)
    assert rejects.failed is not None and rejects.failed.startswith("spooling: ")
    assert f"1500 of 1500 rejected rows could not be written to rejects table {TABLE}" in caplog.text


@pytest.mark.parametrize("name", RESERVED_WORDS)
def test_the_ledger_table_may_be_a_reserved_word_too(rejects_db, name):
    with ImportLedger(sql_hook(CONN_ID), name, "partition-1") as ledger:
        assert (ledger.confirmed_before, ledger.unknown_before) == (0, 0)
    assert rejects_db.query(f"SELECT COUNT(*) FROM {rejects_db.quote(name)}") == [(0,)]


ROLE = "trackly_rejects_role"  # a PostgreSQL role of these tests, without the right to create tables


@pytest.fixture
def postgres_role(monkeypatch: pytest.MonkeyPatch):
    """A login role (trust, no password) that may not create tables in schema public."""
    with PostgresSource.connect() as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(f"DROP ROLE IF EXISTS {ROLE}")
        connection.execute(f"CREATE ROLE {ROLE} LOGIN")
        connection.execute(f"REVOKE CREATE ON SCHEMA public FROM {ROLE}")
        assert connection.execute(
            f"SELECT has_schema_privilege('{ROLE}', 'public', 'CREATE')"
        ).fetchall() == [(False,)]
    conn = postgres_connection(login=ROLE)
    conn.pop("password", None)  # trust, as the role has none
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    yield
    with PostgresSource.connect() as connection:
        connection.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.execute(f"DROP ROLE IF EXISTS {ROLE}")


def test_a_table_the_connection_may_write_but_not_create_is_written(postgres_role):
    with PostgresSource.connect() as connection:
        connection.execute(REFUSING_EVERY_ROW.replace(" CHECK (row_index < 0)", ""))
        connection.execute(f"GRANT SELECT, INSERT, DELETE ON {TABLE} TO {ROLE}")
    with writer() as rejects:
        rejects.add(0, "m0", "message_not_found", "No message")
    assert rejects.rows_written == 1


def test_a_table_the_connection_may_not_write_fails_the_task_before_anything_is_sent(
    airflow, sandbox, sqlite_source, postgres_role
):
    with PostgresSource.connect() as connection:
        connection.execute(REFUSING_EVERY_ROW.replace(" CHECK (row_index < 0)", ""))
        connection.execute(f"GRANT SELECT ON {TABLE} TO {ROLE}")
    sqlite_source.insert_clicks(clicks(3))
    result = airflow.run_operator(rejects_table=TABLE, rejects_conn_id=CONN_ID)
    assert result.state == "failed"
    assert sandbox.requests() == []
    with pytest.raises(
        TracklyConfigError,
        match=f"^The rejects table {TABLE} \\(connection '{CONN_ID}'\\) cannot be written "
        f"\\(InsufficientPrivilege: permission denied for table {TABLE}\\) nor created "
        "\\(InsufficientPrivilege: permission denied for schema public .*\\). Nothing was sent. ",
    ):
        writer().__enter__()

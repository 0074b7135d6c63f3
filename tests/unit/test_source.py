"""Which statements read rows, and how parameters reach each driver (database/source.py)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import MySQLdb
import psycopg
import pymysql
import pytest

from tests.helpers import utc
from trackly_provider.database.source import adapt_parameters, missing_object, reads_rows, source_error
from trackly_provider.exceptions import TracklyError, TracklyMissingSourceObjectError, TracklySourceError
from trackly_provider.version_compat import AirflowFailException


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select 1;",
        "(SELECT 1)",
        "((select 1))",
        "TABLE t",
        "VALUES (1)",
        "  -- the day's clicks\n/* v2 */ select 1",
        "# a MariaDB comment\nSELECT 1",
        "\ufeffSELECT 1",
        "WITH a AS (SELECT 1) SELECT * FROM a",
        "with recursive a(n) as (select 1 union all select n + 1 from a where n < 3) select * from a",
        "WITH a(x) AS MATERIALIZED (SELECT 1) SELECT x FROM a",
        "WITH a AS (SELECT 1) (SELECT * FROM a)",
        "WITH a AS (SELECT 1) VALUES (1)",
        "SET STATEMENT max_statement_time=0 FOR SELECT 1",
        "SET STATEMENT max_statement_time=0, sql_mode='' FOR /* x */ (SELECT 1)",
    ],
)
def test_statements_that_read_rows_are_allowed(sql):
    assert reads_rows(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
        "with recursive a as (select 1) delete from t",
        "WITH a AS (SELECT 1) UPDATE t SET x = 1",
        "# a MariaDB comment\nINSERT INTO t VALUES (1)",
        "/*!INSERT INTO t VALUES (1)*/",
        "/*M!100000 INSERT INTO t VALUES (1)*/",
        "/* a */ -- b\n delete from t",
        "DO SLEEP(1)",
        "CALL refresh()",
        "SET @a = 1",
        "SET STATEMENT max_statement_time=0 FOR DELETE FROM t",
        "(DELETE FROM t)",
        "-- nothing",
        "",
    ],
)
def test_statements_that_do_not_read_rows_are_refused(sql):
    assert not reads_rows(sql)


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SELECT 1", True),
        ("  -- the day's clicks\n/* v2 */ ( (select 1))", True),
        ("with a as (select 1) select * from a", True),
        ("/* tidy */\n\tdelete from t", False),
        ("-- nothing", False),
    ],
)
def test_a_statement_is_read_past_comments_and_parentheses(sql, reads):
    assert reads_rows(sql) is reads


def test_datetime_parameters_are_adapted_per_driver():
    moment = utc(2025, 11, 1)
    assert adapt_parameters("sqlite3", [moment]) == ["2025-11-01 00:00:00"]
    assert adapt_parameters("MySQLdb", {"start": moment}) == {"start": moment.replace(tzinfo=None)}
    assert adapt_parameters("psycopg", [moment, 5]) == [moment, 5]


def test_datetime_parameters_in_another_zone_are_compared_as_utc():
    """Midnight UTC given as 05:30 in Kolkata: SQLite and MySQL must see midnight, not 05:30."""
    kolkata = datetime(2025, 11, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert adapt_parameters("sqlite3", [kolkata]) == ["2025-11-01 00:00:00"]
    assert adapt_parameters("MySQLdb", [kolkata]) == [datetime(2025, 11, 1)]
    assert adapt_parameters("pymysql", {"start": kolkata}) == {"start": datetime(2025, 11, 1)}


class Psycopg2Error(Exception):
    """As psycopg2 raises them: the SQLSTATE in ``pgcode`` (set by its C code, not by the constructor)."""

    def __init__(self, text: str, pgcode: str) -> None:
        super().__init__(text)
        self.pgcode = pgcode


class ConnectorError(Exception):
    """As mysql-connector-python raises them: the number in ``errno``, the server's text in ``msg``."""

    def __init__(self, errno: int, msg: str) -> None:
        super().__init__(f"{errno} (42S02): {msg}")
        self.errno, self.msg = errno, msg


@pytest.mark.parametrize(
    ("exc", "missing"),
    [
        (
            psycopg.errors.UndefinedTable('relation "sms_clickz" does not exist\nLINE 1: ...'),
            ("table", "sms_clickz"),
        ),
        (
            psycopg.errors.UndefinedTable('relation "sales.sms_clickz" does not exist'),
            ("table", "sales.sms_clickz"),
        ),
        (psycopg.errors.UndefinedColumn("column c.offer does not exist"), ("column", "c.offer")),
        (psycopg.errors.UndefinedColumn("no text the pattern knows"), ("column", None)),
        (psycopg.errors.SyntaxError('syntax error at or near "WHERE"'), None),
        (psycopg.OperationalError("connection refused"), None),
        (Psycopg2Error('column "offer" does not exist', "42703"), ("column", "offer")),
        (Psycopg2Error('relation "t" does not exist', "42P01"), ("table", "t")),
        (
            MySQLdb.ProgrammingError(1146, "Table 'test.sms_clickz' doesn't exist"),
            ("table", "test.sms_clickz"),
        ),
        (MySQLdb.OperationalError(1054, "Unknown column 'offer' in 'field list'"), ("column", "offer")),
        (pymysql.err.OperationalError(1054, "Unknown column 't.offer' in 'SELECT'"), ("column", "t.offer")),
        (ConnectorError(1146, "Table 'test.t' doesn't exist"), ("table", "test.t")),
        (MySQLdb.OperationalError(2013, "Lost connection to server during query"), None),
        (MySQLdb.ProgrammingError(1064, "You have an error in your SQL syntax"), None),
        (sqlite3.OperationalError("no such table: sms_clickz"), ("table", "sms_clickz")),
        (sqlite3.OperationalError("no such column: offer"), ("column", "offer")),
        (sqlite3.OperationalError("database is locked"), None),
        (sqlite3.OperationalError("no such function: nope"), None),
        (sqlite3.OperationalError("no such table: t_4155550100"), ("table", "t_[redacted]")),
    ],
)
def test_a_missing_table_or_column_is_found_by_the_drivers_code(exc, missing):
    assert missing_object(exc) == missing


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (psycopg.errors.UndefinedTable('relation "t" does not exist'), TracklyMissingSourceObjectError),
        (MySQLdb.ProgrammingError(1146, "Table 'test.t' doesn't exist"), TracklyMissingSourceObjectError),
        (sqlite3.OperationalError("no such column: offer"), TracklyMissingSourceObjectError),
        (sqlite3.OperationalError("database is locked"), TracklyError),  # a retry may pass
        (MySQLdb.OperationalError(2013, "Lost connection to server during query"), TracklyError),
        (MySQLdb.ProgrammingError(1064, "You have an error in your SQL syntax"), TracklySourceError),
    ],
)
def test_a_missing_table_or_column_fails_without_retries_and_transient_errors_stay_retried(exc, kind):
    error = source_error(exc, "running the query")
    assert type(error) is kind
    assert isinstance(error, AirflowFailException) == (kind is not TracklyError)

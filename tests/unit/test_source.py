"""Which statements read rows, and how parameters reach each driver (database/source.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import utc
from trackly_provider.database.source import adapt_parameters, reads_rows


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

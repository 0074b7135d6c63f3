"""
Configuration errors through real Airflow and real databases: each fails the task at once (one
try of three allowed), names what to fix, and sends nothing to Trackly.
"""

from __future__ import annotations

import json

import pytest

from tests.dag_runs import run_with_tries
from tests.helpers import clicks, set_trackly_connection, utc
from trackly_provider.sandbox import SANDBOX_API_KEY

DAY = [utc(2025, 11, 15), utc(2025, 11, 16)]
SCOPE = "the day 2025-11-15 ([2025-11-15T00:00:00+00:00, 2025-11-16T00:00:00+00:00])"
BETWEEN = "clicked_at >= {{ task.sql_placeholder }} AND clicked_at < {{ task.sql_placeholder }}"
MISSING_TABLE = (
    f"SELECT message_id, offer_id, phone_number, clicked_at AS timestamp FROM sms_clickz WHERE {BETWEEN}"
)
MISSING_COLUMN = (
    "SELECT message_id, offer AS offer_id, phone_number, clicked_at AS timestamp FROM sms_clicks "
    f"WHERE {BETWEEN}"
)
TABLE_FIX = (
    "check that the table exists in the database (and schema) connection 'trackly_source' points to, "
    "and that the query spells its name as the database does."
)
COLUMN_FIX = (
    "check the query's column names against the table on that connection (a column renamed or "
    "dropped, a missing table alias)."
)
NOT_RETRIED = " A retry cannot fix this, so the task fails without retries. "
# What each driver said, after "The source database failed running the query: ".
DRIVER_TEXT = {
    ("sqlite", "table"): "sqlite3.OperationalError: no such table: sms_clickz",
    ("sqlite", "column"): "sqlite3.OperationalError: no such column: offer",
    ("postgres", "table"): 'psycopg.errors.UndefinedTable: relation "sms_clickz" does not exist',
    ("postgres", "column"): 'psycopg.errors.UndefinedColumn: column "offer" does not exist',
    ("mariadb", "table"): "MySQLdb.ProgrammingError: (1146, \"Table 'test.sms_clickz' doesn't exist\")",
    ("mariadb", "column"): "MySQLdb.OperationalError: (1054, \"Unknown column 'offer' in 'SELECT'\")",
}
NAMES = {
    ("sqlite", "table"): "sms_clickz",
    ("postgres", "table"): "sms_clickz",
    ("mariadb", "table"): "test.sms_clickz",
}


def failure_line(output: str) -> str:
    """The task's failure message: the line naming the missing table or column."""
    (line,) = {
        line[line.index("The query reading") :] for line in output.splitlines() if "The query reading" in line
    }
    return line


@pytest.mark.reads_failed_task_log
@pytest.mark.parametrize("kind", ["table", "column"])
@pytest.mark.parametrize("source", ["sqlite", "postgres", "mariadb"])
def test_a_missing_table_or_column_fails_at_once_naming_the_connection_the_day_and_the_fix(
    request, airflow, sandbox, task_output, source, kind
):
    request.getfixturevalue(f"{source}_source").insert_clicks(clicks(3, day=DAY[0]))
    sql = MISSING_TABLE if kind == "table" else MISSING_COLUMN
    result, tries = run_with_tries(airflow, sql=sql, parameters=DAY, retries=2, retry_delay=0)
    assert (result.state, tries) == ("failed", 1)
    what = f"table '{NAMES[source, kind]}'" if kind == "table" else "column 'offer'"
    fix = TABLE_FIX if kind == "table" else COLUMN_FIX
    assert failure_line(task_output()).startswith(
        f"The query reading {SCOPE} names {what}, which SQL connection 'trackly_source' (sql_conn_id) "
        f"does not have: {fix}{NOT_RETRIED}The source database failed running the query: "
        f"{DRIVER_TEXT[source, kind]}"
    )
    assert result.xcom["failed"] == "TracklyMissingSourceObjectError"
    assert sandbox.state()["requests_seen"] == 0


@pytest.mark.reads_failed_task_log
def test_a_table_name_that_looks_like_a_phone_number_is_redacted(
    airflow, sandbox, sqlite_source, task_output
):
    sql = "SELECT message_id, offer_id, phone_number, clicked_at AS timestamp FROM clicks_4155550143"
    result, tries = run_with_tries(airflow, sql=sql, retries=2, retry_delay=0)
    assert (result.state, tries) == ("failed", 1)
    output = task_output()
    assert failure_line(output).startswith(
        "The query reading no parameters names table 'clicks_[redacted]', which SQL connection "
        "'trackly_source' (sql_conn_id) does not have:"
    )
    assert "4155550143" not in output
    assert sandbox.state()["requests_seen"] == 0


def test_an_unreachable_source_is_still_retried_by_airflow(airflow, sandbox, monkeypatch):
    conn = {"conn_type": "mysql", "host": "127.0.0.1", "port": 1, "login": "root", "schema": "test"}
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_SOURCE", json.dumps(conn))
    result, tries = run_with_tries(airflow, retries=2, retry_delay=0)
    assert result.state == "failed"
    assert tries == 3  # dag.test() runs Airflow's retries on 3.3
    assert sandbox.state()["requests_seen"] == 0


@pytest.mark.reads_failed_task_log
def test_a_typo_in_trackly_conn_id_says_how_to_define_it_without_retries(
    airflow, sandbox, sqlite_source, task_output
):
    sqlite_source.insert_clicks(clicks(3))
    result, tries = run_with_tries(airflow, trackly_conn_id="trackly_defualt", retries=2, retry_delay=0)
    assert (result.state, tries) == ("failed", 1)
    assert (
        "Trackly connection 'trackly_defualt' (trackly_conn_id) is not defined: create it in the UI "
        "(Admin > Connections, type 'Trackly SMS') or set AIRFLOW_CONN_TRACKLY_DEFUALT." in task_output()
    )
    assert (result.xcom["failed"], result.xcom["rows_read"]) == ("TracklyConfigError", 0)
    assert sandbox.state()["requests_seen"] == 0


@pytest.mark.reads_failed_task_log
def test_a_typo_in_sql_conn_id_says_which_argument_named_it(airflow, sandbox, task_output):
    result, tries = run_with_tries(airflow, sql_conn_id="trackly_sorce", retries=2, retry_delay=0)
    assert (result.state, tries) == ("failed", 1)
    assert (
        "SQL connection 'trackly_sorce' (sql_conn_id) is not defined: create it in the UI "
        "(Admin > Connections) or set AIRFLOW_CONN_TRACKLY_SORCE." in task_output()
    )
    assert sandbox.state()["requests_seen"] == 0


@pytest.mark.reads_failed_task_log
def test_a_missing_ledger_connection_fails_before_anything_is_sent(
    airflow, sandbox, sqlite_source, task_output
):
    sqlite_source.insert_clicks(clicks(3))
    result, tries = run_with_tries(
        airflow,
        "RevenueHistoryImportOperator",
        "import_revenue",
        sql="SELECT message_id, offer_id, 1.5 AS revenue FROM sms_clicks",
        ledger_conn_id="trackly_ledgr",
        retries=2,
        retry_delay=0,
    )
    assert (result.state, tries) == ("failed", 1)
    assert (
        "SQL connection 'trackly_ledgr' (ledger_conn_id, the database of ledger table "
        "trackly_import_ledger) is not defined: create it in the UI (Admin > Connections) or set "
        "AIRFLOW_CONN_TRACKLY_LEDGR." in task_output()
    )
    assert (result.xcom["failed"], result.xcom["rows_read"]) == ("TracklySourceError", 0)
    assert sandbox.state()["requests_seen"] == 0


@pytest.mark.reads_failed_task_log
def test_a_source_connection_of_a_type_no_provider_serves_says_so_without_retries(
    airflow, sandbox, task_output, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_SRC_HTTP", json.dumps({"conn_type": "http", "host": "example.org"}))
    result, tries = run_with_tries(airflow, sql_conn_id="src_http", retries=2, retry_delay=0)
    assert (result.state, tries) == ("failed", 1)
    assert (
        "SQL connection 'src_http' (sql_conn_id) has type 'http', which no installed Airflow provider "
        "serves: install your database's provider (apache-airflow-providers-postgres, -mysql, -sqlite, "
        "-snowflake...) in every Airflow component, or give the connection the type of a SQL database."
    ) in task_output()
    assert sandbox.state()["requests_seen"] == 0


@pytest.mark.reads_failed_task_log
def test_a_base_url_with_a_path_trackly_does_not_serve_fails_at_once_naming_it(
    airflow, sandbox, sqlite_source, task_output, monkeypatch
):
    sqlite_source.insert_clicks(clicks(3))
    set_trackly_connection(monkeypatch, f"{sandbox.url}/foo", SANDBOX_API_KEY)
    result, tries = run_with_tries(airflow, retries=2, retry_delay=0)
    assert (result.state, tries) == ("failed", 1)
    assert (
        f"Nothing answers POST /foo/api/v2/history/clicks at {sandbox.url}/foo, the Base URL of connection "
        "'trackly_default': set it to Trackly's host alone (https://app.tracklysms.com; the API's /api/v2 "
        "is added), or, if Trackly sits behind a gateway under a path, put that path in the Base URL, e.g. "
        "https://gateway.example/trackly. A retry cannot fix this: HTTP 404 not_found: "
    ) in task_output()
    assert sandbox.state()["requests_seen"] == 0  # its routes saw nothing: /foo/... is none of them

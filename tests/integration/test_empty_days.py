"""
Days that read nothing, on real SQLite, PostgreSQL and MariaDB through real Airflow: an import of 0
rows warns with the bounds it used, and epoch-integer timestamps read with the conversions of
docs/deployment.md ("Days that read nothing").
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import MariaDbSource, load_dag, phone, utc

TABLE = "trackly_epoch_clicks"  # this file's own table
DAY, NEXT_DAY = utc(2025, 11, 15), utc(2025, 11, 16)
# Clicks at and around the day's bounds, as seconds since 1970 (an INTEGER / BIGINT column).
EPOCH_CLICKS = {
    "prev-last": DAY.timestamp() - 1,
    "day-first": DAY.timestamp(),
    "day-noon": DAY.timestamp() + 12 * 3600,
    "day-last": NEXT_DAY.timestamp() - 1,
    "next-first": NEXT_DAY.timestamp(),
}
IN_THE_DAY = ["day-first", "day-noon", "day-last"]
# The conversions of docs/deployment.md ("Days that read nothing"): the column converted for the value
# sent, the day's bounds converted for the comparison (an index on the column still serves).
CONVERTED = {
    "sqlite": "SELECT message_id, offer_id, phone_number, datetime(clicked_at, 'unixepoch') AS timestamp "
    f"FROM {TABLE} WHERE clicked_at >= CAST(strftime('%s', ?) AS INTEGER) "
    "AND clicked_at < CAST(strftime('%s', ?) AS INTEGER) ORDER BY clicked_at",
    "postgres": "SELECT message_id, offer_id, phone_number, to_timestamp(clicked_at) AS timestamp "
    f"FROM {TABLE} WHERE clicked_at >= extract(epoch FROM %s::timestamptz) "
    "AND clicked_at < extract(epoch FROM %s::timestamptz) ORDER BY clicked_at",
    "mysql": "SELECT message_id, offer_id, phone_number, FROM_UNIXTIME(clicked_at) AS timestamp "
    f"FROM {TABLE} WHERE clicked_at >= UNIX_TIMESTAMP(%s) AND clicked_at < UNIX_TIMESTAMP(%s) "
    "ORDER BY clicked_at",
}
ZERO_ROWS = (
    "The query read 0 rows, with [2025-11-15T00:00:00+00:00, 2025-11-16T00:00:00+00:00]. If it should "
    "have read some, check that these bounds can match the column they are compared with: timestamps "
    "stored as epoch integers never match datetime or text bounds; convert the column in the query, "
    "e.g. datetime(col, 'unixepoch') in SQLite, to_timestamp(col) in PostgreSQL, FROM_UNIXTIME(col) in "
    'MySQL (docs/deployment.md: "Days that read nothing").'
)


def load_epoch_clicks(source: Any) -> None:
    columns = {"message_id": "text", "offer_id": "text", "phone_number": "text", "clicked_at": "int"}
    rows = [(name, "offer-1", phone(n), int(at)) for n, (name, at) in enumerate(EPOCH_CLICKS.items())]
    source.load(TABLE, columns, rows)


@pytest.fixture
def epoch_source(any_source):
    load_epoch_clicks(any_source)
    yield any_source
    if isinstance(any_source, MariaDbSource):
        any_source.query(f"DROP TABLE IF EXISTS {TABLE}")


def run_day(airflow, sql: str):
    """The import of DAY, with its bounds as aware datetimes, as plan_days passes them."""
    path, dag_id = airflow.write_dag(
        "ClickHistoryImportOperator", "import_clicks", {"sql": sql, "sql_conn_id": "trackly_source"}
    )
    bounds = ", ".join(f"datetime.datetime.fromisoformat({day.isoformat()!r})" for day in (DAY, NEXT_DAY))
    text = path.read_text().replace("**{", f"parameters=[{bounds}], **{{", 1)
    path.write_text("import datetime\n" + text)
    try:
        run = load_dag(path, dag_id).test()
    finally:
        path.unlink()
    (ti,) = run.get_task_instances()
    return str(ti.state), ti.xcom_pull(task_ids="import_clicks")


def test_epoch_integers_compared_with_the_days_bounds_read_nothing_and_the_import_warns(
    airflow, sandbox, sqlite_source, task_output
):
    load_epoch_clicks(sqlite_source)
    sql = (
        f"SELECT message_id, offer_id, phone_number, clicked_at AS timestamp FROM {TABLE} "
        "WHERE clicked_at >= ? AND clicked_at < ?"
    )
    state, xcom = run_day(airflow, sql)
    assert (state, xcom["rows_read"]) == ("success", 0)  # SQLite: every integer sorts before any text
    output = task_output()
    assert ZERO_ROWS in output
    assert "+1202555" not in output


def test_an_import_that_reads_rows_does_not_warn(airflow, sandbox, sqlite_source, task_output):
    load_epoch_clicks(sqlite_source)
    state, xcom = run_day(airflow, CONVERTED["sqlite"])
    assert (state, xcom["rows_read"]) == ("success", 3)
    assert "The query read 0 rows" not in task_output()


def test_the_readmes_epoch_conversions_import_exactly_the_day(airflow, sandbox, epoch_source):
    state, xcom = run_day(airflow, CONVERTED[epoch_source.dialect])
    assert (state, xcom["rows_read"], xcom["success_count"]) == ("success", 3, 3)
    stored = sandbox.stored()
    assert {name: stored[name]["timestamp"] for name in stored} == {
        "day-first": "2025-11-15T00:00:00+00:00",
        "day-noon": "2025-11-15T12:00:00+00:00",
        "day-last": "2025-11-15T23:59:59+00:00",
    }

"""
Every value a driver returns is imported or rejected row by row, never a dead day (issue 21).

One test per driver, SQLite, PostgreSQL (psycopg 3), MariaDB through mysqlclient and through
mysql-connector-python, for each entity: a real table (tests/source_values.py) of good rows around
one row per unusual value is imported by the real operator, in real Airflow, into the sandbox over
HTTP. Then: Trackly received exactly the records of the good rows, in order; each unusual row is
rejected with its code, its row index and a text naming its column, in XCom and in the rejects
table; every row read is imported, a duplicate or an error; and no phone number of the table is in
the task's log, its XCom, the rejects table or its OpenLineage events. Nothing is mocked.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import OPENLINEAGE_EVENTS
from tests.helpers import LEDGER_CONN_ID, SOURCE_CONN_ID, RunResult
from tests.source_values import (
    LEDGER_TABLE,
    REJECTS_TABLE,
    TABLES,
    Database,
    Row,
    ValueTable,
    accept,
    connection_json,
    reject,
    sqlite_tables,
)

OPERATORS = {
    "clicks": ("ClickHistoryImportOperator", "import_clicks"),
    "sends": ("SendHistoryImportOperator", "import_sends"),
    "revenue": ("RevenueHistoryImportOperator", "import_revenue"),
}
HAS_LINEAGE = importlib.util.find_spec("airflow.providers.openlineage") is not None
ImportValues = Callable[..., None]


def table_names(driver: str) -> list[str]:
    return list(TABLES[driver]())


def lineage_events(dag_id: str, task_id: str) -> list[dict[str, Any]]:
    """The OpenLineage events of one task (the session's file transport: tests/conftest.py)."""
    lines = OPENLINEAGE_EVENTS.read_text().splitlines() if OPENLINEAGE_EVENTS.exists() else []
    events = [json.loads(line) for line in lines if line.strip()]
    return [event for event in events if event["job"]["name"] == f"{dag_id}.{task_id}"]


@pytest.fixture
def import_values(
    airflow, sandbox, ledger_db, task_output, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ImportValues]:
    """
    ``import_values(driver, table, rows=None, **operator_kwargs)``: load the table (its main rows by
    default) into a new source of that driver, import it, and check every outcome.
    """
    opened: list[Database] = []

    def run(driver: str, table: ValueTable, rows: list[Row] | None = None, **kwargs: Any) -> None:
        database = Database(driver, path=tmp_path / "source.db" if driver == "sqlite" else None)
        opened.append(database)
        monkeypatch.setenv(f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}", connection_json(driver, database.path))
        rows = table.rows() if rows is None else rows
        database.drop(REJECTS_TABLE, LEDGER_TABLE)
        database.load(table, rows)
        operator, task_id = OPERATORS[table.entity.name]
        if table.entity.name == "revenue":  # a ledger of its own; SQLite's cannot be the file it streams
            kwargs.update(
                {"ledger_conn_id": LEDGER_CONN_ID} if driver == "sqlite" else {"ledger_table": LEDGER_TABLE}
            )
        result = airflow.run_operator(
            operator, task_id, sql=table.sql, max_error_rate=1.0, rejects_table=REJECTS_TABLE, **kwargs
        )
        check_import(result, table, rows, database, sandbox, task_output(), task_id)

    yield run
    for database in opened:
        if database.driver != "sqlite":
            database.drop(*database.tables, REJECTS_TABLE, LEDGER_TABLE)


def check_import(
    result: RunResult, table: ValueTable, rows: list[Row], database: Database, sandbox, log: str, task_id: str
) -> None:
    records = [row.record for row in rows if row.record is not None]
    errors = [row.error for row in rows if row.error is not None]
    duplicates = 1 if table.entity.deduplicated else 0
    xcom = result.xcom
    rejects = database.query(
        f"SELECT row_index, message_id, code, error FROM {REJECTS_TABLE} ORDER BY row_index"
    )
    events = lineage_events(result.dag_id, task_id) if HAS_LINEAGE else []

    # First, whatever happened: no phone number anywhere the import leaves text (the exception, if
    # any, is in the log and in the OpenLineage FAIL event).
    left_behind = {
        "log": log,
        "XCom": json.dumps(xcom),
        "rejects table": repr(rejects),
        "OpenLineage events": json.dumps(events),
    }
    numbers = table.phone_texts()
    leaked = sorted(
        (where, number) for where, text in left_behind.items() for number in numbers if number in text
    )
    assert leaked == []
    if numbers:  # the check can see them: Trackly received some
        assert any(number in json.dumps(sandbox.received()) for number in numbers)

    assert result.state == "success"
    assert (
        f"Imported {len(rows)} row{'s' * (len(rows) != 1)} of {table.entity.name} in " in log
    )  # the task's own log was read
    assert sandbox.received() == records
    assert (xcom["rows_read"], xcom["success_count"], xcom["duplicates_skipped"], xcom["error_count"]) == (
        len(rows),
        len(records) - duplicates,
        duplicates,
        len(errors),
    )
    assert xcom["rows_read"] == xcom["success_count"] + xcom["duplicates_skipped"] + xcom["error_count"]
    assert xcom["errors_by_code"] == dict(sorted(Counter(error["code"] for error in errors).items()))
    assert xcom["errors"] == errors
    assert [tuple(row) for row in rejects] == [
        (error["index"], error["message_id"], error["code"], error["error"]) for error in errors
    ]
    if HAS_LINEAGE:
        assert [event["eventType"] for event in events] == ["START", "COMPLETE"]
        facet = events[-1]["run"]["facets"]["trackly_import"]
        assert (facet["rows_read"], facet["error_count"]) == (len(rows), len(errors))


@pytest.mark.parametrize("name", table_names("sqlite"))
def test_sqlite_values_are_imported_or_rejected_row_by_row(import_values: ImportValues, name: str) -> None:
    import_values("sqlite", TABLES["sqlite"]()[name])


@pytest.mark.parametrize("name", table_names("psycopg"))
def test_postgres_values_are_imported_or_rejected_row_by_row(import_values: ImportValues, name: str) -> None:
    import_values("psycopg", TABLES["psycopg"]()[name])


@pytest.mark.parametrize("name", table_names("mysqlclient"))
def test_mariadb_values_through_mysqlclient_are_imported_or_rejected_row_by_row(
    import_values: ImportValues, name: str
) -> None:
    import_values("mysqlclient", TABLES["mysqlclient"]()[name])


@pytest.mark.parametrize("name", table_names("mysql-connector-python"))
def test_mariadb_values_through_mysql_connector_are_imported_or_rejected_row_by_row(
    import_values: ImportValues, name: str
) -> None:
    import_values("mysql-connector-python", TABLES["mysql-connector-python"]()[name])


def test_national_numbers_and_digits_are_read_with_default_region(import_values: ImportValues) -> None:
    clicks = sqlite_tables()["clicks"]
    e164 = {"phone_number": "+12025550143"}
    table = replace(
        clicks,
        columns={**clicks.columns, "phone_number": "INTEGER"},  # digits stay numbers, other text stays text
        cases=(
            accept(e164, phone_number="(202) 555-0143"),
            accept(e164, phone_number="202-555-0143"),
            accept(e164, phone_number=2_025_550_143),
            accept(e164, phone_number=12_025_550_143),
            accept({"phone_number": "+442079460958"}, phone_number="+44 20 7946 0958"),
            reject("phone_number", "invalid_phone_number", "text of 8 characters", phone_number="555-0143"),
        ),
    )
    import_values("sqlite", table, default_region="US")

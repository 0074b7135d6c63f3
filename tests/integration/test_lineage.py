"""
OpenLineage from real imports: ``dag.test()``, the OpenLineage provider's own listener, and the file
transport the session configures (tests/conftest.py); each test reads its task's events back.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import OPENLINEAGE_EVENTS
from tests.databases import MARIADB_DATABASE, MARIADB_HOST, MARIADB_PORT, PG_DATABASE, PG_HOST, PG_PORT
from tests.helpers import SELECT_ALL, AirflowRunner, clicks, phone
from tests.integration.test_example_dag import backfill_dag, boundary_rows  # noqa: F401 (the fixture)
from tests.integration.test_sends_and_revenue import REVENUE_COLUMNS, REVENUE_SQL, revenue_row

pytest.importorskip("airflow.providers.openlineage", reason="the [openlineage] extra is not installed")

PG_INPUT = {"namespace": f"postgres://{PG_HOST}:{PG_PORT}", "name": f"{PG_DATABASE}.public.sms_clicks"}
# The example DAG's query as PostgreSQL's driver receives it: the OpenLineage SQL parser cannot read %s.
CLICKS_OF_A_DAY = (
    "SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp "
    "FROM sms_clicks WHERE clicked_at >= {0} AND clicked_at < {0} ORDER BY clicked_at, message_id"
)
DAY = ["2025-11-15 00:00:00", "2025-11-16 00:00:00"]  # as SQLite's text holds UTC; PostgreSQL casts it


def events_of(dag_id: str, task_id: str = "import_clicks") -> list[dict[str, Any]]:
    """The OpenLineage run events of one task, in the order they were emitted."""
    lines = OPENLINEAGE_EVENTS.read_text().splitlines() if OPENLINEAGE_EVENTS.exists() else []
    events = [json.loads(line) for line in lines if line.strip()]
    return [e for e in events if e["job"]["name"] == f"{dag_id}.{task_id}"]


def names(datasets: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"namespace": d["namespace"], "name": d["name"]} for d in datasets]


def endpoint(sandbox: Any, entity: str = "clicks") -> dict[str, str]:
    return {"namespace": f"trackly://{urlsplit(sandbox.url).netloc}", "name": f"history/{entity}"}


def imported_count(event: dict[str, Any]) -> int | None:
    """The output's statistics facet's row count, or None when the event has none."""
    statistics = event["outputs"][0].get("outputFacets", {}).get("outputStatistics")
    return statistics["rowCount"] if statistics else None


def run_counts(event: dict[str, Any]) -> dict[str, Any]:
    facet = dict(event["run"]["facets"]["trackly_import"])
    del facet["_producer"], facet["_schemaURL"]
    return facet


def with_missing_ids(rows: list[Any], *positions: int) -> list[Any]:
    return [(None, *row[1:]) if i in positions else row for i, row in enumerate(rows)]


def test_a_postgres_import_names_its_table_and_the_trackly_endpoint_with_the_counts(
    airflow: AirflowRunner, postgres_source, sandbox
) -> None:
    postgres_source.insert_clicks(with_missing_ids(clicks(30), 4, 9))
    result = airflow.run_operator(sql=CLICKS_OF_A_DAY.format("%s"), parameters=DAY, max_error_rate=0.1)
    assert result.state == "success"

    start, complete = events_of(result.dag_id)
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    for event in (start, complete):
        assert names(event["inputs"]) == [PG_INPUT]
        assert names(event["outputs"]) == [endpoint(sandbox)]
        assert event["job"]["facets"]["sql"]["query"] == CLICKS_OF_A_DAY.format("%s")
    columns = [f["name"] for f in start["inputs"][0]["facets"]["schema"]["fields"]]
    assert columns == ["id", "message_id", "offer_id", "phone_number", "sent_at", "clicked_at"]
    assert imported_count(start) is None
    assert "trackly_import" not in start["run"]["facets"]
    assert imported_count(complete) == 28
    assert run_counts(complete) == {
        "entity": "clicks",
        "rows_read": 30,
        "records_sent": 28,
        "success_count": 28,
        "duplicates_skipped": 0,
        "error_count": 2,
        "errors_by_code": {"missing_message_id": 2},
        "dry_run": False,
    }


def test_a_sqlite_import_names_the_file_and_a_rerun_reports_duplicates(
    airflow: AirflowRunner, sqlite_source, sandbox
) -> None:
    sqlite_source.insert_clicks(clicks(30))
    sql = CLICKS_OF_A_DAY.format("?")
    airflow.run_operator(sql=sql, parameters=DAY)
    rerun = airflow.run_operator(sql=sql, parameters=DAY)

    start, complete = events_of(rerun.dag_id)
    sqlite_input = {"namespace": f"sqlite://{sqlite_source.path}", "name": "main.sms_clicks"}
    assert names(start["inputs"]) == names(complete["inputs"]) == [sqlite_input]
    assert names(complete["outputs"]) == [endpoint(sandbox)]
    assert imported_count(complete) == 0
    assert run_counts(complete)["duplicates_skipped"] == 30
    assert run_counts(complete)["records_sent"] == 30


def test_a_failed_import_emits_fail_with_the_counts_and_the_message(
    airflow: AirflowRunner, postgres_source, sandbox
) -> None:
    postgres_source.insert_clicks(with_missing_ids(clicks(20), 0, 1, 2))
    result = airflow.run_operator(max_error_rate=0.1)
    assert result.state == "failed"

    start, fail = events_of(result.dag_id)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert names(fail["inputs"]) == [PG_INPUT]
    assert imported_count(fail) == 17
    assert run_counts(fail)["error_count"] == 3
    assert run_counts(fail)["errors_by_code"] == {"missing_message_id": 3}
    assert "3 of 20 rows (15.00%) were rejected" in fail["run"]["facets"]["errorMessage"]["message"]


def test_revenue_and_sends_name_their_own_endpoints(airflow: AirflowRunner, postgres_source, sandbox) -> None:
    postgres_source.load("revenue", REVENUE_COLUMNS, [revenue_row(n) for n in range(5)])
    result = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL)
    _, complete = events_of(result.dag_id, "import_revenue")
    assert names(complete["inputs"]) == [{**PG_INPUT, "name": f"{PG_DATABASE}.public.revenue"}]
    assert names(complete["outputs"]) == [endpoint(sandbox, "revenue")]
    assert imported_count(complete) == 5


def test_no_event_holds_a_phone_number_or_the_api_key(airflow: AirflowRunner, sqlite_source, sandbox) -> None:
    sqlite_source.insert_clicks(clicks(5))
    result = airflow.run_operator(sql=SELECT_ALL.replace("ORDER BY id", "WHERE phone_number <> 'x'"))
    text = json.dumps(events_of(result.dag_id))
    assert "history/clicks" in text
    assert phone(1) not in text
    assert sandbox.api_key not in text


def test_a_dry_run_reports_no_records_written(airflow: AirflowRunner, sqlite_source, sandbox) -> None:
    sqlite_source.insert_clicks(clicks(4))
    result = airflow.run_operator(dry_run=True)
    _, complete = events_of(result.dag_id)
    assert imported_count(complete) is None
    assert (run_counts(complete)["dry_run"], run_counts(complete)["records_sent"]) == (True, 0)


def test_a_mariadb_import_names_its_table_in_the_mysql_namespace(
    airflow: AirflowRunner, mariadb_source, sandbox
) -> None:
    mariadb_source.insert_clicks(clicks(3))
    result = airflow.run_operator(sql=CLICKS_OF_A_DAY.format("%s"), parameters=DAY)
    _, complete = events_of(result.dag_id)
    mysql = {"namespace": f"mysql://{MARIADB_HOST}:{MARIADB_PORT}", "name": f"{MARIADB_DATABASE}.sms_clicks"}
    assert names(complete["inputs"]) == [mysql]
    assert imported_count(complete) == 3


def test_each_mapped_day_of_the_example_dag_reports_its_own_counts(backfill_dag, sandbox, sqlite_source):  # noqa: F811
    sqlite_source.insert_clicks([*boundary_rows(), *clicks(20)])
    run = backfill_dag.test(run_conf={"start_date": "2025-11-14", "end_date": "2025-11-15"})
    events = [
        e
        for e in events_of("trackly_click_history_backfill")
        if e["run"]["facets"]["airflow"]["dagRun"]["run_id"] == run.run_id and e["eventType"] == "COMPLETE"
    ]
    by_day = {e["run"]["facets"]["airflow"]["taskInstance"]["map_index"]: imported_count(e) for e in events}
    assert by_day == {0: 2, 1: 23}

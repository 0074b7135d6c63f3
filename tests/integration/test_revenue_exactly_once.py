"""
Revenue exactly once however the import is set up: dates written into the SQL by Jinja, a blank
``ledger_table``, and an answer that contradicts itself (real Airflow, PostgreSQL, the sandbox).
"""

from __future__ import annotations

import re
import socket
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import LEDGER_CONN_ID, LEDGER_TABLE, SELECT_ALL, clicks, load_dag, set_trackly_connection
from tests.integration.test_sends_and_revenue import REVENUE_COLUMNS, REVENUE_SQL, counts, revenue_row
from trackly_provider.database.ledger import has_jinja_beyond_placeholder

JINJA_DAY_SQL = (
    "SELECT message_id, offer_id, revenue FROM revenue "
    "WHERE timestamp >= '{{ data_interval_start }}' AND timestamp < '{{ data_interval_end }}'"
)
DAILY_DAG = """\
import pendulum
from airflow.sdk import DAG
from trackly_provider.operators import RevenueHistoryImportOperator
from trackly_provider.utils.daily_runs import daily_timetable

with DAG(
    dag_id={dag_id!r},
    schedule=daily_timetable(),
    start_date=pendulum.datetime(2025, 10, 1, tz="UTC"),
    catchup=False,
) as dag:
    RevenueHistoryImportOperator(task_id="import_revenue", sql_conn_id="trackly_source", sql={sql!r})
"""


def run_day(dags_dir: Path, day_end: datetime) -> dict:
    """One manual run of a daily DAG whose interval ends at ``day_end``: its import's XCom."""
    dag_id = f"test_{uuid.uuid4().hex[:10]}"
    path = dags_dir / f"{dag_id}.py"
    path.write_text(DAILY_DAG.format(dag_id=dag_id, sql=JINJA_DAY_SQL))
    try:
        run = load_dag(path, dag_id).test(logical_date=day_end)
    finally:
        path.unlink()
    (ti,) = run.get_task_instances()
    assert str(ti.state) == "success"
    return ti.xcom_pull(task_ids="import_revenue")


def test_dates_in_jinja_without_parameters_keep_each_day_in_its_own_partition(
    airflow, sandbox, postgres_source
):
    # The same sale on two days: what is sent (no timestamp selected) is the same record twice.
    sale = {"message_id": "msg-0000001", "offer_id": "offer-1", "revenue": Decimal("10.00")}
    postgres_source.load(
        "revenue",
        REVENUE_COLUMNS,
        [
            revenue_row(1, **sale, timestamp="2025-11-01 10:00:00"),
            revenue_row(2, **sale, timestamp="2025-11-02 10:00:00"),
        ],
    )
    first = run_day(airflow.dags_dir, datetime(2025, 11, 2, tzinfo=timezone.utc))
    second = run_day(airflow.dags_dir, datetime(2025, 11, 3, tzinfo=timezone.utc))
    assert (counts(first), counts(second)) == ((1, 1, 0, 0), (1, 1, 0, 0))
    assert first["ledger"]["partition"].startswith("revenue/trackly_default/sql:")
    assert first["ledger"]["partition"] != second["ledger"]["partition"]
    assert Decimal(sandbox.state()["total_revenue"]) == Decimal("20.00")
    again = run_day(airflow.dags_dir, datetime(2025, 11, 3, tzinfo=timezone.utc))  # the same day's text
    assert counts(again) == (1, 0, 1, 0)
    assert Decimal(sandbox.state()["total_revenue"]) == Decimal("20.00")


@pytest.mark.parametrize(
    "ledger_table",
    ["", "  ", "{{ var.value.get('trackly_ledger_table_unset', '') }}", "{% if false %}x{% endif %}"],
    ids=["empty", "blank", "rendered-empty", "statement-rendered-empty"],
)
def test_a_blank_ledger_table_keeps_revenue_s_ledger(airflow, sandbox, postgres_source, ledger_table):
    postgres_source.load(
        "revenue", REVENUE_COLUMNS, [revenue_row(n, revenue=Decimal("10.00")) for n in range(5)]
    )
    kwargs = {"sql": REVENUE_SQL, "ledger_table": ledger_table}
    first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    again = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert (counts(first.xcom), counts(again.xcom)) == ((5, 5, 0, 0), (5, 0, 5, 0))
    assert again.xcom["ledger"]["table"] == LEDGER_TABLE
    assert len(sandbox.state()["revenue"]) == 5
    assert Decimal(sandbox.state()["total_revenue"]) == Decimal("50.00")


def test_a_blank_ledger_table_gives_clicks_the_default_ledger(airflow, sandbox, postgres_source):
    postgres_source.insert_clicks(clicks(3))
    result = airflow.run_operator(sql=SELECT_ALL, ledger_table=" ")
    assert result.xcom["ledger"]["table"] == LEDGER_TABLE


@pytest.mark.reads_failed_task_log
def test_a_contradicting_answer_leaves_revenue_of_unknown_outcome_never_confirmed(
    airflow, sandbox, postgres_source, task_output
):
    # 3 sales Trackly stores and 2 it rejects; it then lists the first rejected record twice.
    rows = [revenue_row(n, revenue=Decimal("10.00")) for n in range(3)]
    rows += [revenue_row(3, message_id="unknown-3"), revenue_row(4, message_id="nocontact-4")]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    sandbox.set_faults(contradicting_after_commit=1.0)
    first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL)
    assert first.state == "failed"
    assert counts(first.xcom) == (5, 0, 0, 5)
    assert first.xcom["errors_by_code"] == {"outcome_unknown": 5}
    output = task_output()
    assert "listing the record at index 3 twice among its errors" in output
    assert "5 revenue records have an unknown outcome" in output
    assert "Rerunning is safe" not in output  # for revenue it is not: never said
    ledger = postgres_source.query(f"SELECT state, records FROM {LEDGER_TABLE}")
    assert ledger == [("unknown", 5)]  # nothing confirmed: the answer could not be trusted

    sandbox.set_faults()
    requests_before = sandbox.state()["requests_seen"]
    rerun = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL)
    assert rerun.state == "failed"  # still of unknown outcome until the user checks them
    assert sandbox.state()["requests_seen"] == requests_before  # and never sent again
    assert Decimal(sandbox.state()["total_revenue"]) == Decimal("30.00")


@pytest.mark.reads_failed_task_log
def test_a_contradicting_answer_fails_a_click_import_whose_rerun_counts_each_once(
    airflow, sandbox, postgres_source, task_output
):
    postgres_source.insert_clicks(clicks(4))
    sandbox.set_faults(contradicting_after_commit=1.0)
    first = airflow.run_operator(sql=SELECT_ALL)
    assert first.state == "failed"
    output = task_output()
    assert "Trackly's counts do not add up: sent 4 records, got success 5" in output
    assert "Rerunning is safe: Trackly skips clicks it already stored" in output
    sandbox.set_faults()
    rerun = airflow.run_operator(sql=SELECT_ALL)  # what Airflow's retry does: clicks are deduplicated
    assert counts(rerun.xcom) == (4, 0, 4, 0)
    assert len(sandbox.stored()) == 4


@pytest.mark.reads_failed_task_log
def test_dates_in_jinja_beside_parameters_need_a_ledger_partition(
    airflow, sandbox, sqlite_source, ledger_db, task_output
):
    sqlite_source.load("revenue", REVENUE_COLUMNS, [revenue_row(1, timestamp="2025-11-01 10:00:00")])
    sql = (
        "SELECT message_id, offer_id, revenue FROM revenue "
        "WHERE attribution_type = ? AND timestamp < '{{ ds }}'"  # the day in the text, beside a parameter
    )
    kwargs = {"sql": sql, "parameters": ["click"], "ledger_conn_id": LEDGER_CONN_ID}
    refused = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert refused.state == "failed"
    assert "rows the Jinja chooses (a day's dates, say) would share one partition" in task_output()
    assert sandbox.state()["requests_seen"] == 0
    named = {**kwargs, "ledger_partition": "revenue/{{ ds }}"}
    result = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **named)
    assert counts(result.xcom) == (1, 1, 0, 0)
    assert re.fullmatch(r"revenue/\d{4}-\d{2}-\d{2}", result.xcom["ledger"]["partition"])


@pytest.mark.parametrize(
    ("sql", "beyond"),
    [
        ("SELECT 1 WHERE t >= {{ task.sql_placeholder }} AND t < {{task.sql_placeholder}}", False),
        ("SELECT 1 WHERE t >= {{- task.sql_placeholder -}}", False),
        ("SELECT 1 WHERE t >= {{ task.sql_placeholder }} AND d = '{{ ds }}'", True),
        ("SELECT 1 {% if params.late %}WHERE late{% endif %}", True),
        ("SELECT '{' || '{'", False),
    ],
)
def test_jinja_other_than_the_placeholder_is_told_apart(sql, beyond):
    assert has_jinja_beyond_placeholder(sql) is beyond


@pytest.mark.reads_failed_task_log
def test_revenue_whose_requests_never_reached_trackly_is_sent_by_the_rerun_not_held_unknown(
    airflow, sandbox, postgres_source, monkeypatch, task_output
):
    rows = [revenue_row(n, revenue=Decimal("10.00")) for n in range(5)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    with socket.socket() as closed:  # a port nothing listens on: every attempt fails to connect
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    set_trackly_connection(
        monkeypatch, f"http://127.0.0.1:{port}", sandbox.api_key, {"max_attempts": 2, "backoff_base": 0.01}
    )
    first = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, batch_size=2
    )
    assert first.state == "failed"
    assert "failed 2 times, the last with ConnectError" in task_output()
    assert postgres_source.query(f"SELECT state, records FROM {LEDGER_TABLE}") == []  # nothing unknown

    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key)  # Trackly reachable again
    rerun = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, batch_size=2
    )
    assert rerun.state == "success"
    assert counts(rerun.xcom) == (5, 5, 0, 0)
    assert Decimal(sandbox.state()["total_revenue"]) == Decimal("50.00")

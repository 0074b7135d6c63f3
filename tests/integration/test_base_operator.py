"""
BaseHistoryImportOperator through real Airflow (dag.test): a DAG's own subclass, and the hook
parameters reaching the Trackly hook and the source's (SQLite or PostgreSQL, and the sandbox over HTTP).
"""

from __future__ import annotations

import uuid

from tests.helpers import RunResult, clicks, load_dag, set_trackly_connection

SUBCLASS_DAG = """\
import pendulum
from airflow.sdk import DAG
from trackly_provider.operators import HistoryImportOperator
from trackly_provider.trackly_api.entities import CLICKS


class MyClickImport(HistoryImportOperator):
    \"\"\"A DAG's own subclass of the base class, by its earlier name.\"\"\"

    entity = CLICKS


with DAG(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")) as dag:
    MyClickImport(task_id="import_clicks", **{kwargs!r})
"""
SCHEMA = "trackly_hook_params"  # a PostgreSQL schema of this file's own, dropped after its test
LEDGER = "trackly_hook_params_ledger"  # in SCHEMA; dropped from public too, where a bug would put it


def run_subclass(airflow, **kwargs) -> RunResult:
    dag_id = f"test_{uuid.uuid4().hex[:10]}"
    path = airflow.dags_dir / f"{dag_id}.py"
    path.write_text(SUBCLASS_DAG.format(dag_id=dag_id, kwargs={"sql_conn_id": "trackly_source", **kwargs}))
    try:
        run = load_dag(path, dag_id).test()
    finally:
        path.unlink()
    (ti,) = run.get_task_instances()
    return RunResult(str(ti.state), ti.xcom_pull(task_ids="import_clicks"), dag_id, run.run_id)


def test_a_dags_subclass_with_trackly_hook_params_imports_with_those_settings(
    airflow, sandbox, sqlite_source, monkeypatch
):
    """The connection would send save_error records again (3 attempts); the task's params say 1."""
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, {"max_attempts": 3, "backoff_base": 0})
    sandbox.set_faults(save_error=0.05, save_error_times=99, seed=5)
    sqlite_source.insert_clicks(clicks(2000))
    result = run_subclass(
        airflow,
        sql="SELECT message_id, offer_id, phone_number, clicked_at AS timestamp FROM sms_clicks ORDER BY id",
        trackly_hook_params={"max_attempts": 1},
        max_error_rate=1.0,
    )
    failing = sandbox.state()["faults_injected"]["save_error"]
    assert result.state == "success"
    assert (result.xcom["rows_read"], result.xcom["success_count"]) == (2000, 2000 - failing)
    assert result.xcom["errors_by_code"] == {"save_error": failing} and failing > 50
    assert len(sandbox.requests()) == 2  # two batches; nothing sent again


def test_sql_hook_params_reach_the_source_and_the_ledger_on_its_connection(airflow, sandbox, postgres_source):
    """
    PostgreSQL's ``options`` set the session's search_path (rendered first, before
    ``{{ task.sql_placeholder }}`` builds the hook): the query reads the schema's table, and the
    ledger, on the source's connection, is created there too.
    """
    postgres_source.insert_clicks(clicks(5))  # public.sms_clicks: not read
    with postgres_source.connect() as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"DROP TABLE IF EXISTS public.{LEDGER}")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(f"CREATE TABLE {SCHEMA}.sms_clicks (LIKE public.sms_clicks INCLUDING ALL)")
        conn.cursor().executemany(
            f"INSERT INTO {SCHEMA}.sms_clicks (message_id, offer_id, phone_number, sent_at, clicked_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            clicks(3, start=100),
        )
    try:
        result = airflow.run_operator(
            sql="SELECT message_id, offer_id, phone_number, clicked_at AS timestamp FROM sms_clicks "
            "WHERE id > {{ task.sql_placeholder }} ORDER BY id",
            parameters=[0],
            sql_hook_params={"options": "-c search_path={{ 'trackly_hook' ~ '_params' }}"},
            ledger_table=LEDGER,
        )
        assert result.state == "success"
        assert (result.xcom["rows_read"], result.xcom["success_count"]) == (3, 3)
        assert sorted(record["message_id"] for record in sandbox.received()) == [
            "msg-0000100",
            "msg-0000101",
            "msg-0000102",
        ]
        ledgers = postgres_source.query(
            f"SELECT table_schema FROM information_schema.tables WHERE table_name = '{LEDGER}'"
        )
        assert ledgers == [(SCHEMA,)]
    finally:
        with postgres_source.connect() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            conn.execute(f"DROP TABLE IF EXISTS public.{LEDGER}")

"""One-operator DAG runs whose arguments may hold datetimes, reporting the task's tries too."""

from __future__ import annotations

from typing import Any

from tests.helpers import SELECT_ALL, SOURCE_CONN_ID, AirflowRunner, RunResult, load_dag


def run_with_tries(
    airflow: AirflowRunner,
    operator: str = "ClickHistoryImportOperator",
    task_id: str = "import_clicks",
    *,
    outlets: str | None = None,
    **operator_kwargs: Any,
) -> tuple[RunResult, int]:
    """
    As ``AirflowRunner.run_operator``, with ``import datetime`` in the DAG file (so ``parameters``
    may hold aware datetimes, as ``plan_days`` gives them), and the task's last try number:
    ``dag.test()`` runs Airflow's retries from 3.3 on, so a task retried there ends with more than 1.
    ``outlets``: the Python expression of the task's outlets (the DAG file imports
    ``trackly_asset`` and the entities), e.g. ``"[trackly_asset(CONTACTS)]"``.
    """
    operator_kwargs.setdefault("sql_conn_id", SOURCE_CONN_ID)
    operator_kwargs.setdefault("sql", SELECT_ALL)
    path, dag_id = airflow.write_dag(operator, task_id, operator_kwargs)
    text = path.read_text()
    if outlets is not None:
        text = text.replace("**{", f"outlets={outlets}, **{{", 1)
    path.write_text(
        "import datetime\n"
        "from trackly_provider.trackly_api.entities import CLICKS, CONTACTS, REVENUE, SENDS\n"
        "from trackly_provider.utils.assets import trackly_asset\n" + text
    )
    try:
        run = load_dag(path, dag_id).test()
    finally:
        path.unlink()
    (ti,) = run.get_task_instances()
    result = RunResult(
        state=str(ti.state), xcom=ti.xcom_pull(task_ids=task_id), dag_id=dag_id, run_id=run.run_id
    )
    return result, ti.try_number

"""OpenLineage is optional: never loaded to parse a DAG, and imports work without it installed."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.helpers import REPO, AirflowRunner, clicks

OPENLINEAGE_INSTALLED = importlib.util.find_spec("airflow.providers.openlineage") is not None

PARSE_EXAMPLE_DAGS = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 3.0, 3.1
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder={dags!r})
assert bag.import_errors == {{}}, bag.import_errors
print(json.dumps(sorted(sys.modules)))
"""
# Airflow's provider discovery reads every installed provider's info; that is all it may load.
PROVIDER_DISCOVERY = {"airflow.providers.openlineage", "airflow.providers.openlineage.get_provider_info"}


def test_parsing_the_example_dags_loads_no_openlineage() -> None:
    """In a fresh interpreter, as the DAG processor parses: lineage code loads only when asked for."""
    script = PARSE_EXAMPLE_DAGS.format(dags=str(REPO / "dags_examples"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    modules = json.loads(done.stdout.splitlines()[-1])
    assert "trackly_provider.operators" in modules
    loaded = {m for m in modules if "openlineage" in m or m == "trackly_provider.utils.lineage"}
    assert loaded <= PROVIDER_DISCOVERY


@pytest.mark.skipif(OPENLINEAGE_INSTALLED, reason="proven where the [openlineage] extra is not installed")
def test_without_openlineage_an_import_runs_and_gives_no_lineage(airflow: AirflowRunner, sqlite_source):
    from trackly_provider.operators import ClickHistoryImportOperator

    sqlite_source.insert_clicks(clicks(3))
    assert airflow.run_operator().xcom["success_count"] == 3
    operator = ClickHistoryImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="trackly_source")
    assert operator.get_openlineage_facets_on_start() is None

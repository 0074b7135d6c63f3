"""Bad configuration through real Airflow: each gets a clear error and no request is wasted."""

from __future__ import annotations

import pytest

from tests.helpers import clicks, set_trackly_connection


@pytest.mark.reads_failed_task_log
def test_unknown_sql_conn_id_says_how_to_define_it(airflow, sandbox, task_output):
    result = airflow.run_operator(sql_conn_id="no_such_source")
    assert result.state == "failed"
    assert (
        "SQL connection 'no_such_source' (sql_conn_id) is not defined: create it in the UI "
        "(Admin > Connections) or set AIRFLOW_CONN_NO_SUCH_SOURCE."
    ) in task_output()
    assert sandbox.state()["requests_seen"] == 0


@pytest.mark.reads_failed_task_log
def test_a_connection_whose_hook_is_not_sql_is_refused(airflow, sandbox, task_output):
    result = airflow.run_operator(sql_conn_id="trackly_default")
    assert result.state == "failed"
    assert (
        "Connection 'trackly_default' (type 'trackly') gives a TracklyHook, which is not a SQL hook"
        in task_output()
    )
    assert sandbox.state()["requests_seen"] == 0


def test_a_key_with_a_trailing_newline_is_accepted(airflow, sandbox, sqlite_source, monkeypatch):
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key + "\n")
    sqlite_source.insert_clicks(clicks(3))
    result = airflow.run_operator()
    assert (result.state, result.xcom["success_count"]) == ("success", 3)


@pytest.mark.reads_failed_task_log
def test_a_query_that_is_not_a_select_is_a_clear_error(airflow, sandbox, sqlite_source, task_output):
    result = airflow.run_operator(sql="UPDATE sms_clicks SET offer_id = 'x'")
    assert result.state == "failed"
    assert "The query returned no result set; it must be a SELECT." in task_output()


def test_a_rejected_key_is_not_retried_by_airflow_but_a_server_failure_is(
    airflow, sandbox, sqlite_source, monkeypatch
):
    """
    Retries left (2, no delay): a 503 that outlasts the hook's attempts is retried by Airflow, a
    rejected key fails at once (no retry can fix it). Measured by the requests the sandbox saw.
    """
    sqlite_source.insert_clicks(clicks(3))
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, {"max_attempts": 1})
    sandbox.set_faults(html_503=1.0)
    assert airflow.run_operator(retries=2, retry_delay=0).state == "failed"
    server_failure_requests = sandbox.state()["requests_seen"]
    sandbox.reset()
    set_trackly_connection(monkeypatch, sandbox.url, "trk_" + "Z" * 32, {"max_attempts": 1})
    assert airflow.run_operator(retries=2, retry_delay=0).state == "failed"
    assert sandbox.state()["requests_seen"] == 1
    # dag.test() runs Airflow's retries on 3.3 (3 tries); older releases' dag.test() does not retry.
    assert server_failure_requests in (1, 3)


@pytest.mark.reads_failed_task_log
def test_a_ledger_table_that_renders_to_a_bad_name_fails_without_a_request(
    airflow, sandbox, postgres_source, task_output
):
    postgres_source.insert_clicks(clicks(2))
    result = airflow.run_operator(ledger_table="{{ 'my ledger' }}")
    assert result.state == "failed"
    assert "ledger_table must be a table name such as" in task_output()
    assert sandbox.state()["requests_seen"] == 0

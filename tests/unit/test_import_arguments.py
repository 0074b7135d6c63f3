"""The operators' arguments, checked when the DAG is parsed (operators/_engine/import_arguments.py)."""

from __future__ import annotations

import pytest

from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.operators._engine.import_arguments import checked_region
from trackly_provider.operators.click_history import ClickHistoryImportOperator


@pytest.mark.parametrize("region", ["USA", "XX", "", 1, True])
def test_default_region_must_be_a_region_libphonenumber_knows(region):
    with pytest.raises(TracklyConfigError, match="default_region must be a two-letter CLDR region code"):
        checked_region(region)


def test_default_region_is_read_in_any_case():
    assert checked_region(" us ") == "US"
    assert checked_region(None) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ledger_table": 5}, "ledger_table must be a table name or None, got int."),
        ({"ledger_table": "ledger; DROP TABLE x"}, "ledger_table must be a table name such as"),
        ({"ledger_lock_timeout": -1}, "ledger_lock_timeout must not be negative, got -1."),
        ({"ledger_lock_timeout": float("nan")}, "ledger_lock_timeout must be a number of seconds or a"),
        ({"ledger_lock_timeout": "60"}, "ledger_lock_timeout must be a number of seconds or a timedelta"),
        ({"ledger_lock_timeout": float("inf")}, "ledger_lock_timeout must be a number of seconds or a"),
    ],
)
def test_ledger_arguments_are_checked_when_the_dag_is_parsed(kwargs, message):
    from trackly_provider.exceptions import TracklyConfigError
    from trackly_provider.operators import RevenueHistoryImportOperator

    with pytest.raises(TracklyConfigError) as raised:
        RevenueHistoryImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="s", **kwargs)
    assert message in str(raised.value)


def test_a_lock_timeout_past_a_float_s_range_means_forever():
    from trackly_provider.operators import RevenueHistoryImportOperator

    operator = RevenueHistoryImportOperator(
        task_id="t", sql="SELECT 1", sql_conn_id="s", ledger_lock_timeout=10**400
    )
    assert operator.ledger_lock_timeout == 1e9


def test_a_default_region_libphonenumber_does_not_know_fails_when_the_dag_is_parsed():
    from trackly_provider.exceptions import TracklyConfigError
    from trackly_provider.operators import SendHistoryImportOperator

    with pytest.raises(TracklyConfigError, match="default_region must be a two-letter CLDR region code"):
        SendHistoryImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="s", default_region="USA")
    operator = SendHistoryImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="s", default_region="gb")
    assert operator.default_region == "GB"


@pytest.mark.parametrize("name", ["rejects; DROP TABLE sms_clicks", "a.b.c", "1rejects", "rejects "])
def test_a_rejects_table_that_is_not_a_plain_name_is_refused_when_the_dag_is_parsed(name):
    with pytest.raises(
        TracklyConfigError, match="rejects_table must be a table name such as 'trackly_rejects'"
    ):
        ClickHistoryImportOperator(task_id="t", sql="SELECT 1", sql_conn_id="s", rejects_table=name)

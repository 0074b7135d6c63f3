"""
BaseHistoryImportOperator as a DAG author meets it: what building it says, and the hook parameters
it hands to its two hooks (built here from connections in the environment; nothing connects).
"""

from __future__ import annotations

import inspect
import json

import pytest

from tests.helpers import HOOK_KEY, set_trackly_connection
from trackly_provider.exceptions import TracklyConfigError, TracklySourceError
from trackly_provider.hooks.settings import KNOWN_EXTRAS
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.operators import (
    BaseHistoryImportOperator,
    ClickHistoryImportOperator,
    HistoryImportOperator,
    RevenueHistoryImportOperator,
)
from trackly_provider.trackly_api.entities import CLICKS

SOURCE = "unit_sqlite_source"
ARGS = {"task_id": "t", "sql": "SELECT 1", "sql_conn_id": SOURCE}
ACCEPTED = (
    "connect_timeout, read_timeout, request_timeout, max_response_bytes, max_attempts, backoff_base, "
    "backoff_max, retry_after_max, verify, client_cert, client_key, proxy"
)


@pytest.fixture
def connections(monkeypatch, tmp_path):
    """A SQLite source and a Trackly connection whose extras say ``max_attempts=5``."""
    source = {"conn_type": "sqlite", "host": str(tmp_path / "source.db")}
    monkeypatch.setenv(f"AIRFLOW_CONN_{SOURCE.upper()}", json.dumps(source))
    set_trackly_connection(monkeypatch, "api.tracklysms.test", HOOK_KEY, {"max_attempts": 5})


# --- Building it ----------------------------------------------------------------------------------


@pytest.mark.parametrize("base", [BaseHistoryImportOperator, HistoryImportOperator], ids=["base", "alias"])
def test_the_base_class_built_directly_names_the_three_operators_and_how_to_subclass(base):
    with pytest.raises(TypeError) as raised:
        base(**ARGS)
    assert str(raised.value) == (
        "BaseHistoryImportOperator cannot be built directly: it is the engine the import operators "
        "share and names no Trackly endpoint. Use ClickHistoryImportOperator, SendHistoryImportOperator "
        "or RevenueHistoryImportOperator (trackly_provider.operators); or subclass it and set the class "
        "attribute entity to the endpoint's Entity (CLICKS, SENDS or REVENUE from "
        "trackly_provider.trackly_api.entities)."
    )


def test_a_subclass_without_an_entity_is_told_to_set_one():
    class MyImport(BaseHistoryImportOperator):
        pass

    with pytest.raises(TypeError) as raised:
        MyImport(**ARGS)
    assert str(raised.value) == (
        "MyImport names no Trackly endpoint: set the class attribute entity to the endpoint's Entity "
        "(CLICKS, SENDS or REVENUE from trackly_provider.trackly_api.entities), or subclass one of "
        "ClickHistoryImportOperator, SendHistoryImportOperator or RevenueHistoryImportOperator "
        "(trackly_provider.operators)."
    )


@pytest.mark.parametrize("base", [BaseHistoryImportOperator, HistoryImportOperator], ids=["base", "alias"])
def test_a_subclass_that_sets_entity_is_an_import_operator_like_the_others(base):
    class MyClicks(base):  # type: ignore[misc,valid-type]
        entity = CLICKS

    operator = MyClicks(**ARGS)
    assert operator.entity is CLICKS
    assert operator.template_fields == ClickHistoryImportOperator.template_fields
    assert {"sql_hook_params", "trackly_hook_params"} <= set(operator.template_fields)


# --- trackly_hook_params ------------------------------------------------------------------------


def test_trackly_hook_params_reach_the_hook_and_win_over_the_connection(connections):
    operator = ClickHistoryImportOperator(
        **ARGS, trackly_hook_params={"max_attempts": 1, "request_timeout": 42, "verify": False}
    )
    settings = operator.trackly_hook.settings
    assert settings.retry.max_attempts == 1
    assert settings.request_timeout == 42
    assert settings.verify is False
    assert ClickHistoryImportOperator(**ARGS).trackly_hook.settings.retry.max_attempts == 5


def test_a_trackly_hook_param_the_hook_does_not_take_fails_when_the_dag_is_parsed():
    with pytest.raises(TracklyConfigError) as raised:
        RevenueHistoryImportOperator(**ARGS, trackly_hook_params={"max_attempts": 2, "retries": 3})
    assert str(raised.value) == (
        f"trackly_hook_params has 'retries', which TracklyHook does not take. It takes {ACCEPTED} "
        "(the connection is the operator's trackly_conn_id)."
    )


def test_every_connection_extra_is_a_keyword_argument_of_the_hook():
    """trackly_hook_params accepts the extras' names: each must be a keyword-only argument of TracklyHook."""
    parameters = inspect.signature(TracklyHook.__init__).parameters
    assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in KNOWN_EXTRAS)


@pytest.mark.parametrize("seam", ["transport", "sleep"])
def test_the_hooks_test_seams_are_not_trackly_hook_params(seam):
    """A transport would bypass the provider's TLS and proxy set-up, a sleep its backoff."""
    with pytest.raises(TracklyConfigError, match=f"has '{seam}', which TracklyHook does not take"):
        ClickHistoryImportOperator(**ARGS, trackly_hook_params={seam: None})


def test_a_key_that_is_not_a_word_is_not_quoted():
    secret_key = "http://user:S3cretPw@proxy:3128"
    with pytest.raises(TracklyConfigError) as raised:
        ClickHistoryImportOperator(**ARGS, trackly_hook_params={secret_key: 1, "k" * 6_000_000: 1})
    assert str(raised.value).startswith(
        "trackly_hook_params has a key that is not a word, a key that is not a word, which TracklyHook"
    )
    assert "S3cretPw" not in str(raised.value)
    assert len(str(raised.value)) < 500


@pytest.mark.parametrize("value", [[("max_attempts", 1)], "max_attempts=1", {1: 2}])
def test_trackly_hook_params_must_be_a_dict_of_keyword_arguments(value):
    with pytest.raises(TracklyConfigError, match="trackly_hook_params must be a dict of keyword arguments"):
        ClickHistoryImportOperator(**ARGS, trackly_hook_params=value)


def test_a_templated_trackly_hook_params_is_checked_once_rendered(connections):
    operator = ClickHistoryImportOperator(**ARGS, trackly_hook_params="{{ params.trackly }}")
    operator.trackly_hook_params = {"trackly_conn_id": "other"}  # as rendered
    with pytest.raises(TracklyConfigError, match="has 'trackly_conn_id', which TracklyHook does not take"):
        _ = operator.trackly_hook


# --- sql_hook_params ------------------------------------------------------------------------------


def test_sql_hook_params_reach_the_source_hook(connections):
    assert ClickHistoryImportOperator(**ARGS).source_hook.log_sql is True
    operator = ClickHistoryImportOperator(**ARGS, sql_hook_params={"log_sql": False})
    assert operator.source_hook.log_sql is False


def test_a_sql_hook_param_the_hook_refuses_is_a_source_error_naming_it(connections):
    operator = ClickHistoryImportOperator(**ARGS, sql_hook_params={"sqlite_conn_id": "other"})
    with pytest.raises(TracklySourceError) as raised:
        _ = operator.source_hook
    message = str(raised.value)
    assert message.startswith(
        f"The hook of connection '{SOURCE}' (type 'sqlite') does not take the hook parameters "
        "'sqlite_conn_id': "
    )
    assert "multiple values for keyword argument 'sqlite_conn_id'" in message
    assert message.endswith("Check sql_hook_params against that hook's arguments.")


def test_sql_hook_params_must_be_a_dict():
    with pytest.raises(TracklyConfigError, match="sql_hook_params must be a dict of keyword arguments"):
        ClickHistoryImportOperator(**ARGS, sql_hook_params=["log_sql"])

"""The connection check a DAG runs first: every problem at once, each naming its connection and the fix."""

from __future__ import annotations

import json

import pytest

from trackly_provider.utils.connection_check import check_connections, connection_problems
from trackly_provider.version_compat import AirflowFailException

KEY = "trk_" + "a1" * 16
TRACKLY = {"conn_type": "trackly", "host": "https://app.tracklysms.com", "password": KEY}


@pytest.fixture
def connections(monkeypatch, tmp_path):
    """Sets connections as ``AIRFLOW_CONN_*`` variables: ``connections(trackly_source={...})``."""

    def define(**conns: dict) -> None:
        for conn_id, conn in conns.items():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))

    return define


def sqlite(path) -> dict:
    return {"conn_type": "sqlite", "host": str(path)}


def test_usable_connections_have_no_problem(connections, tmp_path):
    connections(
        trackly_source=sqlite(tmp_path / "source.db"),
        trackly_default=TRACKLY,
        trackly_ledger=sqlite(tmp_path / "l.db"),
    )
    assert connection_problems("trackly_source", "trackly_default", "trackly_ledger") == []
    assert check_connections("trackly_source", "trackly_default", "trackly_ledger") is None


def test_every_missing_connection_is_named_with_the_command_that_adds_it(connections):
    with pytest.raises(AirflowFailException) as raised:
        check_connections("check_missing_source", "check_missing_trackly", "check_missing_ledger")
    assert str(raised.value) == (
        "3 connections cannot be used; nothing was read or sent:\n"
        "- Connection 'check_missing_source' (sql_conn_id, the source database) is not defined: add it in "
        "Admin > Connections, or run `airflow connections add check_missing_source --conn-uri "
        "'postgresql://user:password@host:5432/database'`.\n"
        "- Connection 'check_missing_trackly' (trackly_conn_id, the Trackly account) is not defined: add it "
        "in Admin > Connections, or run `airflow connections add check_missing_trackly --conn-type trackly "
        "--conn-host https://app.tracklysms.com --conn-password 'trk_...' (the API key)`.\n"
        "- Connection 'check_missing_ledger' (ledger_conn_id, the revenue ledger) is not defined: add it in "
        "Admin > Connections, or run `airflow connections add check_missing_ledger --conn-json "
        '\'{"conn_type": "sqlite", "host": "/path/to/ledger.db"}\' (a SQLite file of its own), or '
        "--conn-uri 'postgresql://user:password@host:5432/database'`."
    )


def test_one_problem_is_one_connection(connections, tmp_path):
    connections(trackly_source=sqlite(tmp_path / "source.db"), trackly_default=TRACKLY)
    with pytest.raises(
        AirflowFailException, match=r"^1 connection cannot be used; nothing was read or sent:\n- "
    ):
        check_connections("trackly_source", "trackly_default", "check_missing_ledger")


def test_a_trackly_connection_of_another_type_is_refused(connections, tmp_path):
    connections(
        trackly_source=sqlite(tmp_path / "source.db"), trackly_default={**TRACKLY, "conn_type": "http"}
    )
    assert connection_problems("trackly_source", "trackly_default") == [
        "Connection 'trackly_default' (trackly_conn_id) has the type 'http', not 'trackly' (Trackly SMS): "
        "edit it and choose the type Trackly SMS."
    ]


def test_a_trackly_connection_whose_fields_do_not_parse_says_why_without_the_key(connections, tmp_path):
    connections(
        trackly_source=sqlite(tmp_path / "source.db"), trackly_default={**TRACKLY, "password": "trk_short"}
    )
    problems = connection_problems("trackly_source", "trackly_default")
    assert problems == [
        "Connection 'trackly_default' has a malformed API key: expected 'trk_' followed by 32 letters "
        "or digits. Copy the key again from Trackly's settings page."
    ]


def test_a_source_that_is_not_sql_is_refused(connections):
    connections(trackly_source={"conn_type": "trackly", "password": KEY}, trackly_default=TRACKLY)
    assert connection_problems("trackly_source", "trackly_default") == [
        "Connection 'trackly_source' (type 'trackly') gives a TracklyHook, which is not a SQL hook "
        "(common-sql DbApiHook). Use a SQL connection: sqlite, postgres, mysql, snowflake..."
    ]


LOCKED = (
    "(ledger_conn_id, the revenue ledger) is the SQLite file being read (connection 'trackly_source'): "
    "SQLite locks the file while the query streams, so no batch could be recorded. "
)
OWN_FILE = '--conn-json \'{"conn_type": "sqlite", "host": "/path/to/ledger.db"}\''


@pytest.mark.parametrize(
    ("ledger_id", "fix"),
    [
        (
            "trackly_source",
            "Give the ledger a connection of its own (ledger_conn_id, LEDGER_CONN_ID in the example DAG): "
            f"`airflow connections add trackly_ledger {OWN_FILE}`.",
        ),
        (
            "trackly_ledger",
            "Point it at another file: `airflow connections delete trackly_ledger`, then "
            f"`airflow connections add trackly_ledger {OWN_FILE}`.",
        ),
    ],
)
def test_a_ledger_in_the_sqlite_file_being_read_is_refused(connections, tmp_path, ledger_id, fix):
    """The source's own connection, or another one naming the same file by another path."""
    (tmp_path / "sub").mkdir()
    connections(
        trackly_source=sqlite(tmp_path / "source.db"),
        trackly_default=TRACKLY,
        trackly_ledger=sqlite(tmp_path / "sub" / ".." / "source.db"),
    )
    assert connection_problems("trackly_source", "trackly_default", ledger_id) == [
        f"Connection '{ledger_id}' {LOCKED}{fix}"
    ]

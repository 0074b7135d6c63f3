"""
Check, before anything is read or sent, that every connection a DAG needs exists and can be used.

Nothing is opened: a connection is read from Airflow, its hook built (a SQL one) or its settings
parsed (the Trackly one), so a typo or a missing connection fails the run's first task, listing every
problem at once, instead of failing an import after other days or steps were already sent.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import task

from trackly_provider.database.source import sql_hook
from trackly_provider.exceptions import TracklyConfigError, TracklySourceError
from trackly_provider.hooks.settings import CONN_TYPE
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.version_compat import AirflowFailException, AirflowNotFoundException, BaseHook

# How to add each kind of connection from the CLI (the UI's Admin > Connections does the same).
SQL_EXAMPLE = "--conn-uri 'postgresql://user:password@host:5432/database'"
SQLITE_EXAMPLE = '--conn-json \'{"conn_type": "sqlite", "host": "/path/to/ledger.db"}\''
TRACKLY_EXAMPLE = (
    f"--conn-type {CONN_TYPE} --conn-host https://app.tracklysms.com --conn-password 'trk_...' (the API key)"
)


def _missing(conn_id: str, role: str, example: str) -> str:
    return (
        f"Connection '{conn_id}' ({role}) is not defined: add it in Admin > Connections, or run "
        f"`airflow connections add {conn_id} {example}`."
    )


def _sql_problem(conn_id: str, role: str, example: str) -> tuple[str | None, Any]:
    """The problem with a SQL connection (None when there is none), and the connection when it exists."""
    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return _missing(conn_id, role, example), None
    try:
        sql_hook(conn_id, argument=role)
    except TracklySourceError as exc:
        return str(exc), connection
    except Exception as exc:  # e.g. a connection type whose provider is not installed
        return (
            f"Connection '{conn_id}' ({role}, type '{connection.conn_type}') gives no hook: "
            f"{type(exc).__name__}: {exc}. Install the provider of that type, or use a SQL connection "
            "(sqlite, postgres, mysql...)."
        ), connection
    return None, connection


def _trackly_problem(conn_id: str) -> str | None:
    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return _missing(conn_id, "trackly_conn_id, the Trackly account", TRACKLY_EXAMPLE)
    if connection.conn_type != CONN_TYPE:
        return (
            f"Connection '{conn_id}' (trackly_conn_id) has the type '{connection.conn_type}', not "
            f"'{CONN_TYPE}' (Trackly SMS): edit it and choose the type Trackly SMS."
        )
    try:
        TracklyHook(conn_id).settings  # noqa: B018 - parses the connection; opens nothing
    except TracklyConfigError as exc:
        return str(exc)
    return None


def _same_sqlite_file(one: Any, other: Any) -> bool:
    if one is None or other is None or one.conn_type != "sqlite" or other.conn_type != "sqlite":
        return False
    paths = [os.path.realpath(os.path.expanduser(conn.host or "")) for conn in (one, other)]
    return bool(one.host) and paths[0] == paths[1]


def connection_problems(
    sql_conn_id: str, trackly_conn_id: str, ledger_conn_id: str | None = None
) -> list[str]:
    """
    One message per problem with the DAG's connections, each naming the connection, what is wrong
    and how to fix it; ``[]`` when all can be used. Reads the connections; opens none.

    ``sql_conn_id``: the source, a connection whose hook is a common-sql ``DbApiHook``.
    ``trackly_conn_id``: a connection of type ``trackly`` whose fields parse (``TracklyHook.settings``).
    ``ledger_conn_id``: the revenue ledger's SQL connection (None: no ledger), which may not be the
    SQLite file being read.
    """
    problems = []
    source_problem, source = _sql_problem(sql_conn_id, "sql_conn_id, the source database", SQL_EXAMPLE)
    if source_problem:
        problems.append(source_problem)
    if trackly_problem := _trackly_problem(trackly_conn_id):
        problems.append(trackly_problem)
    if ledger_conn_id is not None:
        example = f"{SQLITE_EXAMPLE} (a SQLite file of its own), or {SQL_EXAMPLE}"
        ledger_problem, ledger = _sql_problem(ledger_conn_id, "ledger_conn_id, the revenue ledger", example)
        if ledger_problem:
            problems.append(ledger_problem)
        elif _same_sqlite_file(source, ledger):
            if ledger_conn_id == sql_conn_id:
                fix = (
                    "Give the ledger a connection of its own (ledger_conn_id, LEDGER_CONN_ID in the example "
                    f"DAG): `airflow connections add trackly_ledger {SQLITE_EXAMPLE}`."
                )
            else:
                fix = (
                    f"Point it at another file: `airflow connections delete {ledger_conn_id}`, then "
                    f"`airflow connections add {ledger_conn_id} {SQLITE_EXAMPLE}`."
                )
            problems.append(
                f"Connection '{ledger_conn_id}' (ledger_conn_id, the revenue ledger) is the SQLite file "
                f"being read (connection '{sql_conn_id}'): SQLite locks the file while the query "
                f"streams, so no batch could be recorded. {fix}"
            )
    return problems


def check_connections(sql_conn_id: str, trackly_conn_id: str, ledger_conn_id: str | None = None) -> None:
    """
    Raise ``AirflowFailException`` (no retry can fix a connection) listing every problem that
    ``connection_problems`` finds, one a line; return None when there is none.
    """
    problems = connection_problems(sql_conn_id, trackly_conn_id, ledger_conn_id)
    if problems:
        count = f"{len(problems)} connection{'s' if len(problems) > 1 else ''}"
        raise AirflowFailException(
            f"{count} cannot be used; nothing was read or sent:\n" + "\n".join(f"- {p}" for p in problems)
        )


def check_connections_task(
    *, sql_conn_id: str, trackly_conn_id: str, ledger_conn_id: str | None = None
) -> Any:
    """
    The ``check_connections`` task of a DAG (no retries): call it in the DAG and put every other task
    after it. It fails, listing every problem at once, before any row is read or sent.
    """

    @task(task_id="check_connections", retries=0)
    def check() -> None:
        """Every connection this DAG needs exists and can be used (``check_connections``)."""
        check_connections(sql_conn_id, trackly_conn_id, ledger_conn_id)

    return check

"""Stream rows from any common-sql DbApiHook, with a server-side cursor where the driver has one."""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from itertools import islice
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.exceptions import TracklyError, TracklySourceError
from trackly_provider.postgres_types import load_types_of_psycopg, load_types_of_psycopg2
from trackly_provider.redact import redact_phone_numbers
from trackly_provider.source_sessions import SQLITE_REREADS_UNDECODABLE_ROWS, prepare_session, text_or_bytes
from trackly_provider.version_compat import AirflowNotFoundException, BaseHook

log = logging.getLogger(__name__)

Fetch = Callable[[int], Sequence[Sequence[Any]]]
# A driver error of one of these classes (by name, any driver) may pass on a retry: a lost or
# closed connection, a server shutting down, a timeout. Any other (a value the driver cannot
# convert, a syntax error, a missing privilege) comes back the same on every try.
_TRANSIENT_ERROR_CLASSES = frozenset({"OperationalError", "InterfaceError", "InternalError"})
_SQLITE_UNDECODABLE = "Could not decode to UTF-8"
_NO_RESULT_SET = (
    "The query returned no result set; it must be a SELECT. An INSERT, UPDATE, DELETE or DDL "
    "statement returns no rows: write the SELECT (or WITH ... SELECT) that reads the records."
)
# Statements that return no rows, refused before they run: none of them reads records, and a
# server-side cursor would run them anyway (DDL commits at once on MySQL).
_WRITE_STATEMENTS = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE",
     "GRANT", "REVOKE", "RENAME", "COPY", "LOAD", "SET", "BEGIN", "COMMIT", "ROLLBACK", "VACUUM"}
)  # fmt: skip
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)


def sql_hook(conn_id: str) -> DbApiHook:
    """The common-sql hook of an Airflow connection, or a clear error saying how to fix the connection."""
    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise TracklySourceError(
            f"SQL connection '{conn_id}' is not defined: create it in the UI or set "
            f"AIRFLOW_CONN_{conn_id.upper()}."
        ) from None
    hook = connection.get_hook()
    if not isinstance(hook, DbApiHook):
        raise TracklySourceError(
            f"Connection '{conn_id}' (type '{connection.conn_type}') gives a "
            f"{type(hook).__name__}, which is not a SQL hook (common-sql DbApiHook). Use a SQL "
            "connection: sqlite, postgres, mysql, snowflake..."
        )
    return hook


def driver_name(connection: Any) -> str:
    """The DB-API driver behind a connection object, by its top-level module (``psycopg``, ``MySQLdb``...)."""
    return type(connection).__module__.split(".")[0]


def open_streaming_cursor(connection: Any) -> Any:
    """A cursor that fetches rows as they are read instead of buffering the whole result."""
    driver = driver_name(connection)
    name = f"trackly_import_{uuid.uuid4().hex[:12]}"
    # Plain tuple rows, whatever row or cursor factory the connection's extras chose (dict rows...).
    if driver == "psycopg":
        from psycopg.rows import tuple_row

        return load_types_of_psycopg(connection.cursor(name=name, row_factory=tuple_row))
    if driver == "psycopg2":
        import psycopg2.extensions

        return load_types_of_psycopg2(connection.cursor(name=name, cursor_factory=psycopg2.extensions.cursor))
    if driver == "MySQLdb":
        import MySQLdb.cursors

        return connection.cursor(MySQLdb.cursors.SSCursor)
    if driver == "pymysql":
        import pymysql.cursors

        return connection.cursor(pymysql.cursors.SSCursor)
    if driver == "mysql":  # mysql-connector-python: unbuffered unless asked otherwise
        return connection.cursor(buffered=False)
    return connection.cursor()


def _adapt_value(driver: str, value: Any) -> Any:
    if not isinstance(value, datetime):
        return value
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    if driver == "sqlite3":
        # SQLite stores timestamps as text: compare in its own UTC form, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        return utc.replace(tzinfo=None).isoformat(sep=" ")
    if driver in ("MySQLdb", "pymysql", "mysql"):
        return utc.replace(tzinfo=None)  # the session is UTC (source_sessions): naive UTC
    return value


def adapt_parameters(driver: str, parameters: Any) -> Any:
    """Pass datetimes as values each driver compares correctly against UTC timestamp columns."""
    if isinstance(parameters, dict):
        return {key: _adapt_value(driver, value) for key, value in parameters.items()}
    if isinstance(parameters, (list, tuple)):
        return [_adapt_value(driver, value) for value in parameters]
    return parameters


@contextmanager
def stream_query(
    hook: DbApiHook,
    sql: str,
    parameters: Any,
    chunk_size: int,
    *,
    max_stall_seconds: float | None = None,
) -> Iterator[tuple[list[str], Iterator[Sequence[Sequence[Any]]]]]:
    """
    Run ``sql`` on a connection of its own and yield its column names and an iterator of row chunks
    (at most ``chunk_size`` rows each); closes everything after.

    :param max_stall_seconds: the longest the caller may go without reading (seconds; None: one
        hour): the session is set to survive that long plus a margin (``source_sessions``).
    :raises TracklySourceError: the statement returns no result set, or the driver refused the
        query or a value for good (data or syntax errors); no retry can help.
    :raises TracklyError: the driver failed in a way a retry may fix (a lost connection...).
        Both carry the driver's text with phone numbers redacted, and neither chains the driver's
        exception. An error while closing, after the caller's own error, is logged and the
        caller's error propagates.
    """
    if first_keyword(sql) in _WRITE_STATEMENTS:
        raise TracklySourceError(_NO_RESULT_SET)
    connection = hook.get_conn()
    driver = driver_name(connection)
    cursor: Any = None
    try:
        failure, doing = None, "setting up the session (UTC, timeouts)"
        try:
            prepare_session(connection, driver, max_stall_seconds)
            doing = "running the query"
            cursor = open_streaming_cursor(connection)
            if parameters is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, adapt_parameters(driver, parameters))
            fetch = _fetcher(driver, cursor)
            doing = "reading the first rows"
            first = fetch(chunk_size) if cursor.description is None else None
        except Exception as exc:
            failure = source_error(exc, doing)
        if failure is not None:
            raise failure from None  # outside the handler: the driver's error is not chained
        if cursor.description is None:
            raise TracklySourceError(_NO_RESULT_SET)
        columns = [str(column[0]) for column in cursor.description]
        yield columns, _chunks(fetch, chunk_size, first)
    except BaseException as exc:
        _close_after_failure(connection, cursor, driver, exc)
        raise
    _close(connection, cursor, driver)


def first_keyword(sql: str) -> str:
    """The statement's first word in capitals, past blanks, comments and parentheses ('' if none)."""
    start = _LEADING_NOISE.match(sql).end()  # type: ignore[union-attr]  # matches the empty string
    word = re.match(r"[A-Za-z_]+", sql[start:])
    return word[0].upper() if word else ""


def source_error(exc: Exception, doing: str) -> TracklyError:
    """
    The provider's error for a driver's ``exc`` met while ``doing`` something: its class and text
    with phone numbers redacted; ``TracklySourceError`` (no retry) unless it may be transient.
    """
    kind = type(exc)
    text = f"The source database failed {doing}: {kind.__module__}.{kind.__qualname__}: "
    text += redact_phone_numbers(str(exc))
    transient = {cls.__name__ for cls in kind.__mro__} & _TRANSIENT_ERROR_CLASSES
    if transient and not str(exc).startswith(_SQLITE_UNDECODABLE):
        return TracklyError(text)
    return TracklySourceError(text)


def _fetcher(driver: str, cursor: Any) -> Fetch:
    if driver == "sqlite3" and SQLITE_REREADS_UNDECODABLE_ROWS:
        return lambda size: _sqlite_fetch(cursor, size)
    return cursor.fetchmany


def _sqlite_fetch(cursor: sqlite3.Cursor, size: int) -> list[Any]:
    """
    Up to ``size`` rows, as fast as ``fetchmany``. A row with text that is not UTF-8 is read again
    with its text as ``bytes`` (from Python 3.11 the cursor stays on a row it failed to convert).
    """
    rows: list[Any] = []
    while len(rows) < size:
        wanted, before = size - len(rows), len(rows)
        try:
            rows.extend(islice(cursor, wanted))  # keeps the rows read before an error
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith(_SQLITE_UNDECODABLE):
                raise
            rows.append(_sqlite_row_as_bytes(cursor))
            continue
        if len(rows) - before < wanted:
            break
    return rows


def _sqlite_row_as_bytes(cursor: sqlite3.Cursor) -> Any:
    connection = cursor.connection
    factory = connection.text_factory
    connection.text_factory = text_or_bytes
    try:
        return next(cursor)
    finally:
        connection.text_factory = factory


def _chunks(
    fetch: Fetch, chunk_size: int, first: Sequence[Sequence[Any]] | None
) -> Iterator[Sequence[Sequence[Any]]]:
    rows_read = 0
    if first:
        rows_read += len(first)
        yield first
    while True:
        failure = None
        try:
            rows = fetch(chunk_size)
        except Exception as exc:
            failure = source_error(exc, f"reading the rows after row {rows_read}")
        if failure is not None:
            raise failure from None  # outside the handler: the driver's error is not chained
        if not rows:
            return
        rows_read += len(rows)
        yield rows


def _cleanup_steps(connection: Any, cursor: Any, driver: str) -> list[tuple[str, Callable[[], Any]]]:
    steps = [] if cursor is None else [("closing the cursor", cursor.close)]
    if hasattr(connection, "rollback") and driver != "sqlite3":
        steps.append(("ending the read transaction", connection.rollback))  # a server-side cursor's
    return [*steps, ("closing the connection", connection.close)]


def _close(connection: Any, cursor: Any, driver: str) -> None:
    """Close after a read that went well; the first error, after every step was tried, is raised."""
    first_error = None
    for doing, step in _cleanup_steps(connection, cursor, driver):
        try:
            step()
        except Exception as exc:
            first_error = first_error or source_error(exc, doing)
    if first_error is not None:
        raise first_error from None


def _close_after_failure(connection: Any, cursor: Any, driver: str, cause: BaseException) -> None:
    """Close after ``cause``, logging (never raising) what fails, so that ``cause`` propagates."""
    for doing, step in _cleanup_steps(connection, cursor, driver):
        try:
            step()
        except Exception as exc:
            log.warning(
                "%s after %s; the import's own error follows.",
                source_error(exc, doing),
                type(cause).__name__,
            )

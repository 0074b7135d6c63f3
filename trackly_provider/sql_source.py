"""Stream rows from any common-sql DbApiHook, with a server-side cursor where the driver has one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.exceptions import TracklySourceError
from trackly_provider.version_compat import AirflowNotFoundException, BaseHook


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

        return _psycopg_timestamps_as_text(connection.cursor(name=name, row_factory=tuple_row))
    if driver == "psycopg2":
        import psycopg2.extensions

        return connection.cursor(name=name, cursor_factory=psycopg2.extensions.cursor)
    if driver == "MySQLdb":
        import MySQLdb.cursors

        return connection.cursor(MySQLdb.cursors.SSCursor)
    if driver == "pymysql":
        import pymysql.cursors

        return connection.cursor(pymysql.cursors.SSCursor)
    if driver == "mysql":  # mysql-connector-python: unbuffered unless asked otherwise
        return connection.cursor(buffered=False)
    return connection.cursor()


def _psycopg_timestamps_as_text(cursor: Any) -> Any:
    """
    Load timestamps as their ISO text instead of datetimes: records need that text anyway, and
    building a zone-aware datetime per value then formatting it back costs more than the whole fetch.
    The session's DateStyle is set to ISO on this connection, which the import owns and closes.
    """
    from psycopg.types.string import TextLoader

    cursor.connection.execute("SET DateStyle TO ISO")
    for type_name in ("timestamptz", "timestamp"):
        cursor.adapters.register_loader(type_name, TextLoader)
    return cursor


def _adapt_value(driver: str, value: Any) -> Any:
    if not isinstance(value, datetime):
        return value
    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    if driver == "sqlite3":
        # SQLite stores timestamps as text: compare in its own UTC form, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        return utc.replace(tzinfo=None).isoformat(sep=" ")
    if driver in ("MySQLdb", "pymysql", "mysql"):
        return utc.replace(tzinfo=None)  # DATETIME has no zone: naive UTC
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
    hook: DbApiHook, sql: str, parameters: Any, chunk_size: int
) -> Iterator[tuple[list[str], Iterator[Sequence[Sequence[Any]]]]]:
    """Run ``sql`` and yield its column names and an iterator of row chunks; closes everything after."""
    with closing(hook.get_conn()) as connection:
        driver = driver_name(connection)
        cursor = open_streaming_cursor(connection)
        try:
            if parameters is None:
                cursor.execute(sql)
            else:
                cursor.execute(sql, adapt_parameters(driver, parameters))
            first = cursor.fetchmany(chunk_size) if cursor.description is None else None
            if cursor.description is None:
                raise ValueError("The query returned no result set; it must be a SELECT.")
            columns = [str(column[0]) for column in cursor.description]
            yield columns, _chunks(cursor, chunk_size, first)
        finally:
            cursor.close()
            if hasattr(connection, "rollback") and driver != "sqlite3":
                connection.rollback()  # end the read transaction a server-side cursor needed


def _chunks(cursor: Any, chunk_size: int, first: Sequence[Any] | None) -> Iterator[Sequence[Sequence[Any]]]:
    if first:
        yield first
    while rows := cursor.fetchmany(chunk_size):
        yield rows

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

import sqlparse
from airflow.providers.common.sql.hooks.sql import DbApiHook
from sqlparse import tokens as sql_tokens
from sqlparse.sql import Comment, Parenthesis, Statement, Token, Values

from trackly_provider.database.postgres_types import load_types_of_psycopg, load_types_of_psycopg2
from trackly_provider.database.sessions import SQLITE_REREADS_UNDECODABLE_ROWS, prepare_session, text_or_bytes
from trackly_provider.exceptions import TracklyError, TracklyMissingSourceObjectError, TracklySourceError
from trackly_provider.trackly_api.redact import redact_phone_numbers
from trackly_provider.version_compat import AirflowException, AirflowNotFoundException, BaseHook

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
_NOT_ONE_STATEMENT = (
    "The query must be one SELECT statement; it holds {count}. Run other statements elsewhere "
    "(a SQLExecuteQueryOperator before this task)."
)
# Statements allowed to run: those that read rows. Any other (INSERT, UPDATE, DELETE, DDL, DO,
# CALL, a WITH ... INSERT, a MySQL /*!INSERT ...*/) is refused before it runs: none of them reads
# records, and a server-side cursor would run them anyway (DDL commits at once on MySQL).
_READING_KEYWORDS = frozenset({"SELECT", "VALUES", "TABLE"})
_MYSQL_EXECUTABLE_COMMENT = re.compile(r"/\*M?!\d*")  # /*!50100 ... */: MySQL and MariaDB run its text
_SET_STATEMENT_FOR = re.compile(r"SET\s+STATEMENT\b.*?\bFOR\b", re.IGNORECASE | re.DOTALL)  # MariaDB
# MySQL errors (args[0] or errno) no retry can fix: unknown column, syntax, unknown table or
# database, access denied (database, user, table, column), unknown function.
_MYSQL_CONFIGURATION_ERRORS = frozenset({1044, 1045, 1049, 1054, 1064, 1142, 1143, 1146, 1305, 1698})
# SQLite OperationalError texts that name a mistake in the query or the database, not a passing state.
_SQLITE_CONFIGURATION_ERRORS = re.compile(
    r"no such (table|column|function)|syntax error|has no column named|incomplete input"
)
# A table or column the query names and the database does not have, by the driver's code.
_POSTGRES_MISSING = {"42P01": "table", "42703": "column"}  # undefined_table, undefined_column
_MYSQL_MISSING = {1146: "table", 1054: "column"}  # ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR
_SQLITE_MISSING = re.compile(r"no such (table|column): (\S+)")
_POSTGRES_MISSING_NAME = re.compile(r'^(?:relation|column) "?(.+?)"? does not exist')
_MYSQL_MISSING_NAME = re.compile(r"^(?:Table|Unknown column) '(.+?)'")
# PostgreSQL SQLSTATE classes no retry can fix: syntax or access rule, authorization, unknown
# database or schema.
_POSTGRES_CONFIGURATION_CLASSES = frozenset({"42", "28", "3D", "3F"})
# The same refused at connection time, where psycopg gives the server's text and no SQLSTATE.
_POSTGRES_CONNECT_CONFIGURATION = re.compile(
    r'FATAL:\s+(?:(?:database|role) "[^"]*" does not exist|password authentication failed'
    r"|no pg_hba\.conf entry)"
)


def sql_hook(
    conn_id: str, hook_params: dict[str, Any] | None = None, *, argument: str = "sql_conn_id"
) -> DbApiHook:
    """
    The common-sql hook of an Airflow connection, or a clear error saying how to fix the connection.

    ``hook_params``: keyword arguments of the hook's class, as common-sql's ``hook_params``
    (``connection.get_hook(hook_params=...)``); None or ``{}`` for none. ``argument``: the
    operator's argument that named the connection, and what it is for, as the error names it
    (``"sql_conn_id"``, ``"ledger_conn_id, the database of ledger table x"``).

    :raises TracklySourceError: the connection is not defined, its hook refuses ``hook_params``, or
        it is not a common-sql ``DbApiHook``.
    """
    try:
        connection = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise TracklySourceError(
            f"SQL connection '{conn_id}' ({argument}) is not defined: create it in the UI "
            f"(Admin > Connections) or set AIRFLOW_CONN_{conn_id.upper()}."
        ) from None
    try:
        hook = connection.get_hook(hook_params=hook_params) if hook_params else connection.get_hook()
    except TypeError as exc:  # a keyword the hook's class does not take
        raise TracklySourceError(
            f"The hook of connection '{conn_id}' (type '{connection.conn_type}') does not take the "
            f"hook parameters {', '.join(map(repr, hook_params or {}))}: {exc}. Check sql_hook_params "
            "against that hook's arguments."
        ) from None
    except AirflowException as exc:
        if not str(exc).startswith("Unknown hook type"):  # Airflow's words for a type no provider gives
            raise
        raise TracklySourceError(
            f"SQL connection '{conn_id}' ({argument}) has type '{connection.conn_type}', which no installed "
            "Airflow provider serves: install your database's provider (apache-airflow-providers-postgres, "
            "-mysql, -sqlite, -snowflake...) in every Airflow component, or give the connection the type "
            "of a SQL database."
        ) from None
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
    statements = statement_count(sql)
    if statements != 1:
        raise TracklySourceError(_NOT_ONE_STATEMENT.format(count=statements))
    if not reads_rows(sql):
        raise TracklySourceError(_NO_RESULT_SET)
    failure = None
    try:
        connection = hook.get_conn()
    except Exception as exc:
        failure = source_error(exc, "connecting")
    if failure is not None:
        raise failure from None  # outside the handler: the driver's error is not chained
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


def count_rows(hook: DbApiHook, sql: str, parameters: Any, *, max_stall_seconds: float | None = None) -> int:
    """
    How many rows ``sql`` returns now (``count_query``), with the same parameters: for an
    announcement before the import (the rows may change meanwhile).

    :raises TracklySourceError, TracklyError: as ``stream_query``.
    """
    with stream_query(hook, count_query(sql), parameters, 1, max_stall_seconds=max_stall_seconds) as (
        _,
        chunks,
    ):
        return int(next(iter(chunks))[0][0])


def count_query(sql: str) -> str:
    """
    ``SELECT COUNT(*) FROM (<sql>) AS trackly_rows``, ``sql`` cut after its last token that counts
    (no trailing ``;`` or comment); ``sql`` itself when it is not one statement that reads rows
    (``stream_query`` then says why).
    """
    if statement_count(sql) != 1 or not reads_rows(sql):
        return sql
    if _MYSQL_EXECUTABLE_COMMENT.search(sql):  # parsed with its openers blanked: keep it as written
        inner = sql.strip().rstrip(";")
    else:
        tokens = _statements(sql)[0].tokens
        significant = [token for token in _significant(tokens) if token.value != ";"]
        inner = "".join(str(token) for token in tokens[: tokens.index(significant[-1]) + 1])
    return f"SELECT COUNT(*) FROM (\n{inner}\n) AS trackly_rows"  # newlines: a closing -- comment ends


def _significant(tokens: Any) -> list[Token]:
    return [
        token
        for token in tokens
        if not (token.is_whitespace or token.ttype in sql_tokens.Comment or isinstance(token, Comment))
    ]


def _statements(sql: str) -> list[Statement]:
    """``sql``'s statements, MySQL executable comments opened (their text runs), empty ones left out."""
    text = _MYSQL_EXECUTABLE_COMMENT.sub(" ", sql.lstrip("\ufeff"))
    return [statement for statement in sqlparse.parse(text) if _significant(statement.tokens)]


def statement_count(sql: str) -> int:
    """How many statements ``sql`` holds, past comments and blanks (``SELECT 1;`` is one)."""
    return len(_statements(sql))


def reads_rows(sql: str) -> bool:
    """
    Whether ``sql``'s first statement reads rows: ``SELECT``, ``VALUES``, ``TABLE``, ``WITH ...``
    one of these, any of them in parentheses, or MariaDB's ``SET STATEMENT ... FOR`` one of these;
    past comments of every style (``--``, ``#``, ``/* */``), a BOM, any case. False for anything
    else, a ``WITH ... INSERT`` or a MySQL ``/*!INSERT ...*/`` included.
    """
    statements = _statements(sql)
    return bool(statements) and _reads(_significant(statements[0].tokens))


def _reads(tokens: list[Token]) -> bool:
    if not tokens:
        return False
    first = tokens[0]
    if isinstance(first, Parenthesis):
        return _reads(_significant(first.tokens[1:-1]))
    if isinstance(first, Values):
        return True
    word = first.normalized.upper() if first.ttype in sql_tokens.Keyword else ""
    if word in _READING_KEYWORDS:
        return True
    if word == "WITH":
        return _cte_main_reads(tokens[1:])
    if word == "SET":
        text = " ".join(str(token) for token in tokens)
        found = _SET_STATEMENT_FOR.match(text)
        return found is not None and reads_rows(text[found.end() :])
    return False


def _cte_main_reads(tokens: list[Token]) -> bool:
    """Past a WITH's common table expressions, whether the main statement reads rows."""
    previous = ""
    for token in tokens:
        if isinstance(token, Parenthesis) and previous.endswith(")"):
            return _reads([token])  # WITH a AS (...) (SELECT ...)
        if isinstance(token, Values):
            return True
        if token.ttype in sql_tokens.Keyword.DML or token.normalized.upper() in ("VALUES", "TABLE"):
            return _reads([token])
        previous = str(token).rstrip()
    return False


def source_error(exc: Exception, doing: str) -> TracklyError:
    """
    The provider's error for a driver's ``exc`` met while ``doing`` something: its class and text
    with phone numbers redacted; ``TracklySourceError`` (no retry) unless it may be transient and
    is not a configuration error (``is_configuration_error``).
    """
    kind = type(exc)
    text = f"The source database failed {doing}: {kind.__module__}.{kind.__qualname__}: "
    text += redact_phone_numbers(str(exc))
    missing = missing_object(exc)
    if missing is not None:
        return TracklyMissingSourceObjectError(text, *missing)
    transient = {cls.__name__ for cls in kind.__mro__} & _TRANSIENT_ERROR_CLASSES
    if transient and not str(exc).startswith(_SQLITE_UNDECODABLE) and not is_configuration_error(exc):
        return TracklyError(text)
    return TracklySourceError(text)


def missing_object(exc: Exception) -> tuple[str, str | None] | None:
    """
    ``("table", name)`` or ``("column", name)`` when a driver's error says the query names a table
    or column the database does not have, else None. Found by the driver's own code where it gives
    one: PostgreSQL's SQLSTATE (42P01 undefined table, 42703 undefined column; psycopg 3 and
    psycopg2), MySQL/MariaDB's error number (1146, 1054; mysqlclient, PyMySQL,
    mysql-connector-python); SQLite gives none (its code is the generic ``SQLITE_ERROR``), so its
    text (``no such table: x``). ``name``: as the driver reported it, phone numbers redacted; None
    when its text names none.
    """
    text = str(exc)
    if isinstance(exc, sqlite3.Error):
        found = _SQLITE_MISSING.search(text)
        return (found[1], redact_phone_numbers(found[2])) if found else None
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)  # psycopg 3, psycopg2
    if isinstance(sqlstate, str):
        kind = _POSTGRES_MISSING.get(sqlstate)
        if kind is None:
            return None
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) or text
        found = _POSTGRES_MISSING_NAME.search(primary)
        return kind, redact_phone_numbers(found[1]) if found else None
    number = getattr(exc, "errno", None)  # mysql-connector-python
    if not isinstance(number, int) and exc.args:
        number = exc.args[0]  # mysqlclient, PyMySQL
    kind = _MYSQL_MISSING.get(number) if isinstance(number, int) else None
    if kind is None:
        return None
    message = getattr(exc, "msg", None) or (exc.args[1] if len(exc.args) > 1 else text)  # connector: msg
    found = _MYSQL_MISSING_NAME.search(str(message))
    return kind, redact_phone_numbers(found[1]) if found else None


def is_configuration_error(exc: Exception) -> bool:
    """
    Whether a driver's error names a mistake in the query, the database's name or the credentials,
    which every retry meets again: SQLite by its text (``no such table``, ``syntax error``... but
    not ``database is locked``), MySQL/MariaDB by its number (``_MYSQL_CONFIGURATION_ERRORS``),
    PostgreSQL by its SQLSTATE class (``_POSTGRES_CONFIGURATION_CLASSES``) or, refused at connection
    time, by the server's text (an unknown database or role, a refused password).
    """
    if isinstance(exc, sqlite3.Error):
        return _SQLITE_CONFIGURATION_ERRORS.search(str(exc)) is not None
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)  # psycopg 3, psycopg2
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return sqlstate[:2] in _POSTGRES_CONFIGURATION_CLASSES
    if _POSTGRES_CONNECT_CONFIGURATION.search(str(exc)):
        return True
    number = getattr(exc, "errno", None)  # mysql-connector-python
    if not isinstance(number, int) and exc.args:
        number = exc.args[0]  # mysqlclient, PyMySQL
    return isinstance(number, int) and number in _MYSQL_CONFIGURATION_ERRORS


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
    """
    Close after a read that went well; the first error, after every step was tried, is raised, but
    for ending the read transaction: the rows are read, and a session the server ended while the
    import drained its last batches loses nothing, so that is a warning.
    """
    first_error = None
    for doing, step in _cleanup_steps(connection, cursor, driver):
        try:
            step()
        except Exception as exc:
            if doing == "ending the read transaction":
                log.warning("%s; the rows were all read, so the import goes on.", source_error(exc, doing))
                continue
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

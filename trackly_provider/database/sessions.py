"""
The import's own source session, set up before the query runs: UTC, and waits it survives.

``stream_query`` opens the connection, prepares it here and closes it, so nothing set here reaches
another user of the database.

- MySQL and MariaDB (mysqlclient, mysql-connector-python, PyMySQL): ``time_zone = '+00:00'``, so
  ``TIMESTAMP`` values come back in UTC and the day's bounds (naive UTC datetimes) compare in UTC;
  ``net_write_timeout`` above the longest stall: the server drops a streamed result it could not
  write for that long (``Lost connection to server during query``); ``wait_timeout`` and
  ``interactive_timeout`` raised to the same bound (never lowered), since the server ends a session
  idle that long (``Server has gone away``) and the source is idle while the last batches drain.
  ``net_read_timeout`` bounds the server reading a command from the client, never a stream's rows,
  and is left alone.
- PostgreSQL (psycopg 3 and psycopg2): ``TimeZone = 'UTC'`` and ``DateStyle = ISO``, so
  timestamps read as text are UTC and a ``timestamp`` column compares with aware bounds in UTC; an
  ``idle_in_transaction_session_timeout`` below the longest stall is raised to it (a server-side
  cursor's session is idle in its transaction between two fetches, and that timeout ends it), and
  so is a lower ``idle_session_timeout`` (PostgreSQL 14+; older servers have none to raise).
  ``statement_timeout`` bounds each fetch, not the time between them, and is left alone, as is
  PostgreSQL 17's ``transaction_timeout``, a bound on the whole read the DBA chose.
- The ledger's and the rejects table's own sessions (``sql_tables.set_up_session``) raise the same
  idle timeouts (``mysql_idle_sql``, ``postgres_idle_sql``): they wait on the API too.
- SQLite: text that is not valid UTF-8 comes back as ``bytes`` for the row builder to reject
  (``sql_source`` re-reads that one row on Python 3.11+; before 3.11 a text factory does it).
"""

from __future__ import annotations

import math
import sys
from contextlib import closing
from typing import Any

MYSQL_DRIVERS = frozenset({"MySQLdb", "pymysql", "mysql"})  # mysql: mysql-connector-python
DEFAULT_MAX_STALL_SECONDS = 3600.0
STALL_MARGIN_SECONDS = 60.0  # a batch built and encoded, a ledger or rejects write between two reads
MYSQL_MAX_TIMEOUT_SECONDS = 31_536_000  # net_write_timeout's largest value (MySQL and MariaDB)
POSTGRES_MAX_TIMEOUT_MS = 2_147_483_647  # the largest value of PostgreSQL's idle timeouts
# PostgreSQL settings that end a session idle (in a transaction or not) longer than they say.
POSTGRES_IDLE_TIMEOUTS = ("idle_in_transaction_session_timeout", "idle_session_timeout")
SQLITE_REREADS_UNDECODABLE_ROWS = sys.version_info >= (3, 11)  # 3.10's cursor drops the row at once


def stall_timeout_seconds(max_stall_seconds: float | None) -> int:
    """
    Whole seconds a source session must tolerate the import not reading: ``max_stall_seconds``
    (None or NaN: ``DEFAULT_MAX_STALL_SECONDS``; negative: 0) plus ``STALL_MARGIN_SECONDS``, at
    most ``MYSQL_MAX_TIMEOUT_SECONDS``.
    """
    if max_stall_seconds is None or math.isnan(max_stall_seconds):
        max_stall_seconds = DEFAULT_MAX_STALL_SECONDS
    stall = max(0.0, max_stall_seconds)
    return min(MYSQL_MAX_TIMEOUT_SECONDS, math.ceil(stall + STALL_MARGIN_SECONDS))


def mysql_idle_sql(max_stall_seconds: float | None) -> str:
    """
    The assignments (for one ``SET``) that raise a MySQL/MariaDB session's ``wait_timeout`` and
    ``interactive_timeout`` to ``stall_timeout_seconds`` (seconds), never lowering them.
    """
    timeout = stall_timeout_seconds(max_stall_seconds)
    return ", ".join(
        f"SESSION {name} = GREATEST(@@SESSION.{name}, {timeout})"
        for name in ("wait_timeout", "interactive_timeout")
    )


def mysql_session_sql(max_stall_seconds: float | None) -> str:
    """The statement that sets a MySQL/MariaDB import session to UTC and to outlast the stall."""
    timeout = stall_timeout_seconds(max_stall_seconds)
    return f"SET SESSION time_zone = '+00:00', SESSION net_write_timeout = {timeout}, " + mysql_idle_sql(
        max_stall_seconds
    )


def postgres_idle_sql(max_stall_seconds: float | None) -> str:
    """
    One statement raising each of ``POSTGRES_IDLE_TIMEOUTS`` the server has (``idle_session_timeout``
    exists from PostgreSQL 14) that is set below ``stall_timeout_seconds`` to it (in ms); 0, no
    limit, stays 0.
    """
    timeout_ms = min(POSTGRES_MAX_TIMEOUT_MS, stall_timeout_seconds(max_stall_seconds) * 1000)
    names = ", ".join(f"'{name}'" for name in POSTGRES_IDLE_TIMEOUTS)
    return (
        f"SELECT set_config(name, '{timeout_ms}', false) FROM pg_settings "
        f"WHERE name IN ({names}) AND setting::bigint BETWEEN 1 AND {timeout_ms - 1}"
    )


def postgres_session_sql(max_stall_seconds: float | None) -> str:
    """
    Statements setting a PostgreSQL import session to UTC and ISO dates, and raising its idle
    timeouts below the stall (``postgres_idle_sql``).
    """
    return "SET TimeZone TO 'UTC'; SET DateStyle TO ISO; " + postgres_idle_sql(max_stall_seconds)


def prepare_session(connection: Any, driver: str, max_stall_seconds: float | None) -> None:
    """
    Set up the import's own connection for ``driver`` (``sql_source.driver_name``); other drivers
    are left as they are. Raises the driver's error when the server refuses a setting.
    """
    if driver in MYSQL_DRIVERS:
        with closing(connection.cursor()) as cursor:
            cursor.execute(mysql_session_sql(max_stall_seconds))
    elif driver == "psycopg":
        connection.execute(postgres_session_sql(max_stall_seconds))
    elif driver == "psycopg2":
        with closing(connection.cursor()) as cursor:
            cursor.execute(postgres_session_sql(max_stall_seconds))
    elif driver == "sqlite3" and not SQLITE_REREADS_UNDECODABLE_ROWS:
        connection.text_factory = text_or_bytes


def text_or_bytes(raw: bytes) -> str | bytes:
    """A SQLite text factory: the text, or its bytes when they are not UTF-8."""
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw

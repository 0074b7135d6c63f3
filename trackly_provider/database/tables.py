"""Tables the provider keeps in a user's SQL database (rejects, ledger): names, dialects, DDL runs."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from trackly_provider.database.sessions import mysql_idle_sql, postgres_idle_sql
from trackly_provider.database.source import driver_name
from trackly_provider.exceptions import TracklyConfigError

CREATE_ATTEMPTS = 3  # a table and its index may each lose a race with another task creating them
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
DIALECT_OF_DRIVER = {
    "sqlite3": "sqlite",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "MySQLdb": "mysql",
    "pymysql": "mysql",
    "mysql": "mysql",
}


def checked_table_name(name: str, argument: str = "rejects_table") -> str:
    """``name`` if it is a plain or schema-qualified table name, which is safe to put in SQL."""
    if not TABLE_NAME.fullmatch(name):
        example = "trackly_import_ledger" if argument == "ledger_table" else "trackly_rejects"
        raise TracklyConfigError(
            f"{argument} must be a table name such as '{example}' or 'analytics.{example}' "
            f"(letters, digits and underscores), got {name!r}."
        )
    return name


def quoted_identifier(name: str, dialect: str) -> str:
    """
    ``name``, a plain or schema-qualified name that ``checked_table_name`` accepts, quoted for
    ``dialect`` so that reserved words (``user``, ``order``) work and the name means what it would
    unquoted: PostgreSQL folds it to lower case first; SQLite (double quotes) and MySQL/MariaDB
    (backticks) compare names as they would unquoted. Each part of ``schema.table`` is quoted.
    ``other`` dialects, whose quoting and case rules are unknown, get the name as written.
    """
    parts = name.split(".")
    if dialect == "postgresql":
        return ".".join(f'"{part.lower()}"' for part in parts)
    if dialect == "sqlite":
        return ".".join(f'"{part}"' for part in parts)
    if dialect == "mysql":
        return ".".join(f"`{part}`" for part in parts)
    return name


def derived_name(table: str, suffix: str) -> str:
    """
    A name made from ``table``'s last part and ``suffix`` (an index's), within the 63 characters
    PostgreSQL keeps and MySQL allows: a longer one is cut and ends with a hash of the whole.
    """
    name = f"{table.rpartition('.')[2]}_{suffix}"
    if len(name) <= 63:
        return name
    return f"{name[:50]}_{hashlib.sha1(name.encode()).hexdigest()[:12]}"


def dialect_of(connection: Any) -> str:
    """``sqlite``, ``postgresql``, ``mysql`` or ``other``, from the connection's DB-API driver."""
    return DIALECT_OF_DRIVER.get(driver_name(connection), "other")


def execute_and_commit(connection: Any, statements: list[str]) -> None:
    """Run ``statements`` on one cursor, then commit."""
    cursor = connection.cursor()
    for statement in statements:
        cursor.execute(statement)
    cursor.close()
    connection.commit()


def session_setup(dialect: str, max_stall_seconds: float | None = None) -> list[str]:
    """
    The statements that set a writer's session up for ``dialect``. MySQL/MariaDB: ``READ
    COMMITTED`` (InnoDB's default REPEATABLE READ locks the gaps a DELETE scans, so tasks writing
    their rows at once deadlock; READ COMMITTED locks only the rows deleted). MySQL/MariaDB and
    PostgreSQL: the idle timeouts raised to outlast ``max_stall_seconds`` (seconds; None: the
    source's default bound, ``source_sessions.stall_timeout_seconds``), since a writer is idle while
    the import waits on the API (``Server has gone away`` otherwise).
    """
    if dialect == "mysql":
        return [
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET " + mysql_idle_sql(max_stall_seconds),
        ]
    if dialect == "postgresql":
        return [postgres_idle_sql(max_stall_seconds)]
    return []


def set_up_session(connection: Any, max_stall_seconds: float | None = None) -> None:
    """Set a writer's session up for its dialect (``session_setup``); commits."""
    execute_and_commit(connection, session_setup(dialect_of(connection), max_stall_seconds))


def create_tables(connection: Any, create_statements: list[str]) -> None:
    """
    Run ``IF NOT EXISTS`` DDL, once more if it fails: tasks running in parallel create the table at
    the same moment, and PostgreSQL then fails all but one with a unique violation in its catalog;
    once the winner commits, the DDL finds the table. Raises the driver's error of the last attempt.
    """
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            execute_and_commit(connection, create_statements)
            return
        except Exception:
            connection.rollback()
            if attempt == CREATE_ATTEMPTS:
                raise


def open_writer(
    connection: Any, create_statements: list[str], max_stall_seconds: float | None = None
) -> None:
    """Set up a writer's session (``set_up_session``), then run its DDL (``create_tables``)."""
    set_up_session(connection, max_stall_seconds)
    create_tables(connection, create_statements)

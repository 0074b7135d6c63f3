"""
A SQL table of an import's rejected rows: which row, why, and which task instance rejected it.

Writing it never fails the import. Values are stored in a form every supported column and driver
takes (``safe_text``); a table that cannot be created or written at all fails the task before
anything is sent (``TracklyConfigError``); and what still fails once rows flow (the database lost,
a constraint of the user's table) is a warning and ``RejectsTable.failed``, never an exception.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.database.source import adapt_parameters, driver_name
from trackly_provider.database.tables import (
    checked_table_name,
    create_tables,
    derived_name,
    dialect_of,
    execute_and_commit,
    quoted_identifier,
    set_up_session,
)
from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.trackly_api.redact import redact_phone_numbers

log = logging.getLogger(__name__)

WRITE_EVERY_ROWS = 1000
# The writer's temporary table, private to its session and gone when it closes. A random suffix
# per writer: a fixed name could be the user's rejects_table, which the temporary table would hide.
SPOOL_PREFIX = "trackly_rejects_spool_"
# Bounds of the stored texts, in characters (in UTF-8 bytes on an ``other`` database, whose
# VARCHARs may count bytes); a longer text is cut and ends with TRUNCATED, within the bound.
KEY_LIMIT = 250  # dag_id, run_id, task_id: VARCHAR(250), as Airflow bounds them
MESSAGE_ID_LIMIT = 255  # VARCHAR(255) on MySQL and other databases; the same bound everywhere
CODE_LIMIT = 64  # VARCHAR(64)
ERROR_LIMIT = 2000  # the API's texts are short; ours name a column, a row and a fix
TRUNCATED = "\u2026"  # an ellipsis, one character
DRIVER_TEXT_LIMIT = 300  # of a driver's error text in a warning or an exception
_SURROGATES = re.compile("[\ud800-\udfff]")  # lone surrogates: no driver can encode them
COLUMNS = (
    "dag_id",
    "run_id",
    "task_id",
    "map_index",
    "try_number",
    "row_index",
    "message_id",
    "code",
    "error",
    "rejected_at",
)
TEXT_COLUMNS = {0: KEY_LIMIT, 1: KEY_LIMIT, 2: KEY_LIMIT, 6: MESSAGE_ID_LIMIT, 7: CODE_LIMIT, 8: ERROR_LIMIT}
# Column types per dialect: identifiers, the id and text columns, and the UTC timestamp.
DIALECT_TYPES = {
    "sqlite": {"key": "TEXT", "id": "TEXT", "text": "TEXT", "time": "TEXT"},
    "postgresql": {"key": "VARCHAR(250)", "id": "TEXT", "text": "TEXT", "time": "TIMESTAMPTZ"},
    "mysql": {"key": "VARCHAR(250)", "id": "VARCHAR(255)", "text": "TEXT", "time": "DATETIME(6)"},
    "other": {"key": "VARCHAR(250)", "id": "VARCHAR(255)", "text": "VARCHAR(4000)", "time": "TIMESTAMP"},
}
# MySQL tables take the database's character set, which may be latin1 or 3-byte utf8: say utf8mb4.
TABLE_OPTIONS = {"mysql": " DEFAULT CHARSET=utf8mb4"}


def safe_text(value: Any, limit: int, *, count_bytes: bool = False, truncated: str = TRUNCATED) -> str | None:
    """
    ``value`` (None stays None; anything else as ``str``) as text every supported database stores:
    NUL characters removed (PostgreSQL refuses them), lone surrogates replaced by U+FFFD (no driver
    encodes them), and cut to ``limit`` characters (UTF-8 bytes with ``count_bytes``), ending with
    ``truncated`` when cut.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = _SURROGATES.sub("\ufffd", text)
    if count_bytes:
        encoded = text.encode()
        if len(encoded) > limit:
            text = encoded[: limit - len(truncated.encode())].decode(errors="ignore") + truncated
    elif len(text) > limit:
        text = text[: limit - len(truncated)] + truncated
    return text


def ascii_text(value: str | None, limit: int, *, count_bytes: bool = False) -> str | None:
    """
    The last resort for a text a database refused: ASCII, other characters escaped as ``\\xe9``,
    ``\\u2026``, ``\\U0001f600``, cut to ``limit`` ending with ``...`` (``count_bytes`` changes
    nothing: in ASCII a character is a byte).
    """
    if value is None:
        return None
    return safe_text(value.encode("ascii", "backslashreplace").decode("ascii"), limit, truncated="...")


def describe_failure(exc: BaseException) -> str:
    """A driver's error as type and text, on one line, bounded, any phone number redacted."""
    text = " ".join(redact_phone_numbers(str(exc)).split())
    if len(text) > DRIVER_TEXT_LIMIT:
        text = text[: DRIVER_TEXT_LIMIT - 1] + TRUNCATED
    return f"{type(exc).__name__}: {text}"


@dataclass(frozen=True)
class TaskInstanceId:
    """The task instance an import runs as; its rows in the rejects table are replaced on a retry."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int


def table_ddl(table: str, dialect: str, temporary: bool = False) -> list[str]:
    """
    The statements that create ``table`` (a name ``checked_table_name`` accepts, quoted here) and
    its task-instance index if they do not exist; with ``temporary``, a temporary table alone.
    """
    types = DIALECT_TYPES.get(dialect, DIALECT_TYPES["other"])
    options = TABLE_OPTIONS.get(dialect, "")
    columns = (
        f"dag_id {types['key']} NOT NULL, run_id {types['key']} NOT NULL, task_id {types['key']} NOT NULL, "
        "map_index INTEGER NOT NULL, try_number INTEGER NOT NULL, row_index BIGINT NOT NULL, "
        f"message_id {types['id']}, code VARCHAR(64) NOT NULL, error {types['text']}, "
        f"rejected_at {types['time']} NOT NULL"
    )
    quoted = quoted_identifier(table, dialect)
    if temporary:
        return [f"CREATE TEMPORARY TABLE {quoted} ({columns}){options}"]
    key = "dag_id, run_id, task_id, map_index"
    schema, _, base = table.rpartition(".")
    index = quoted_identifier(derived_name(table, "task_instance"), dialect)
    if dialect == "mysql":  # no CREATE INDEX IF NOT EXISTS in MySQL: declare it with the table
        return [f"CREATE TABLE IF NOT EXISTS {quoted} ({columns}, INDEX {index} ({key})){options}"]
    statements = [f"CREATE TABLE IF NOT EXISTS {quoted} ({columns})"]
    if dialect == "sqlite":  # SQLite puts the schema on the index's name, and a bare table name after ON
        on_schema = f"{quoted_identifier(schema, dialect)}." if schema else ""
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {on_schema}{index} ON {quoted_identifier(base, dialect)} ({key})"
        )
    elif dialect == "postgresql":  # the index goes to the table's schema
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {quoted} ({key})")
    return statements


class RejectsTable:
    """
    Writes rejected rows to ``table`` in the connection's database, creating it if missing.

    Rows go in batches to a temporary table on the writer's own connection while the import
    streams, so memory stays flat however many rows are rejected and the source's read is never
    blocked (a streaming SQLite read holds a lock no other connection can write past). On exit, in
    one transaction, the task instance's earlier rows (from an earlier try) are deleted and these
    are copied in: a retry replaces its rows, and readers never see half of them.

    Never fails the import once entered: texts are stored in a safe form (``safe_text``), a batch
    a database refuses is written row by row, a row it refuses in ASCII form too (``ascii_text``);
    and if that fails too, or the final copy fails, the writer stops, logs a warning and sets
    ``failed``. After exit, ``rows_written`` is the number of rows in the table for this task
    instance and ``rows_not_written`` those rejected but not there (all of them when it failed).

    :raises TracklyConfigError: on enter, when the table cannot be created, or exists but cannot be
        written (other columns, no rights), before the import sends anything. A connection that
        fails raises the driver's error, which a retry may fix.
    """

    def __init__(
        self,
        hook: DbApiHook,
        table: str,
        task_instance: TaskInstanceId,
        *,
        max_stall_seconds: float | None = None,
    ) -> None:
        """
        ``max_stall_seconds``: the longest the import may leave the writer's session idle (waiting on
        the API); the session's idle timeouts are raised to outlast it (``sql_tables.session_setup``).
        """
        self._hook = hook
        self._max_stall_seconds = max_stall_seconds
        self._table = checked_table_name(table)
        self._task_instance = task_instance
        self._pending: list[tuple[Any, ...]] = []
        self._connection: Any = None
        self._driver = ""
        self._count_bytes = False
        self._sql_table = ""
        self._spool = ""
        self._key_values: tuple[Any, ...] = ()  # the first five columns of every row, in safe form
        self._spooled = 0
        self.rows_rejected = 0  # every row added
        self.rows_written = 0  # rows in the table once published
        self.rows_not_written = 0  # rows_rejected - rows_written, once exited
        self.failed: str | None = None  # what failed (the step, the driver's error), or None

    def __enter__(self) -> RejectsTable:
        self._connection = self._hook.get_conn()
        try:
            problem = self._open()
        except BaseException:
            self._close()
            raise
        if problem is not None:
            self._close()
            raise TracklyConfigError(
                f"The rejects table {self._table} (connection '{self._conn_id}') {problem}. Nothing "
                "was sent. Point rejects_table at a table this connection may create, or at one with "
                f"the columns {', '.join(COLUMNS)} that it may delete from and insert into (it also "
                "creates a temporary table); or leave rejects_table unset."
            )
        return self

    def _open(self) -> str | None:
        """Set up the session, the spool and the table: what makes the table unusable, or None."""
        self._driver = driver_name(self._connection)
        dialect = dialect_of(self._connection)
        self._count_bytes = dialect == "other"
        self._sql_table = quoted_identifier(self._table, dialect)
        spool = f"{SPOOL_PREFIX}{uuid.uuid4().hex[:12]}"
        self._spool = quoted_identifier(spool, dialect)
        self._key_values = tuple(self._safe_row(astuple(self._task_instance)))
        try:
            set_up_session(self._connection, self._max_stall_seconds)
            execute_and_commit(self._connection, table_ddl(spool, dialect, temporary=True))
        except Exception as exc:
            return f"cannot be written: {describe_failure(exc)}"
        try:  # an existing table needs no right to create one
            self._check_writable()
            return None
        except Exception as exc:
            not_writable = describe_failure(exc)
        try:
            create_tables(self._connection, table_ddl(self._table, dialect))
        except Exception as exc:
            return f"cannot be written ({not_writable}) nor created ({describe_failure(exc)})"
        try:
            self._check_writable()
            return None
        except Exception as exc:
            return f"cannot be written: {describe_failure(exc)}"

    @property
    def _conn_id(self) -> str:
        return str(getattr(self._hook, self._hook.conn_name_attr, ""))

    def _check_writable(self) -> None:
        """Run the publishing statements on no row, then roll back: the driver raises what fails."""
        cursor = self._connection.cursor()
        try:
            cursor.execute(f"DELETE FROM {self._sql_table} WHERE 1 = 0")
            columns = ", ".join(COLUMNS)
            cursor.execute(
                f"INSERT INTO {self._sql_table} ({columns}) SELECT {columns} FROM {self._spool} WHERE 1 = 0"
            )
        finally:
            cursor.close()
            self._connection.rollback()

    def _safe_row(self, row: tuple[Any, ...], text: Any = safe_text) -> list[Any]:
        values = list(row)
        for column, limit in TEXT_COLUMNS.items():
            if column < len(values):
                values[column] = text(values[column], limit, count_bytes=self._count_bytes)
        return values

    def add(self, row_index: int, message_id: str | None, code: str, error: str) -> None:
        """Record one rejected row (``error`` must already be free of personal data). Never raises."""
        self.rows_rejected += 1
        if self.failed is not None:
            return
        rejected_at = datetime.now(timezone.utc)
        values = (
            row_index,
            safe_text(message_id, MESSAGE_ID_LIMIT, count_bytes=self._count_bytes),
            safe_text(code, CODE_LIMIT, count_bytes=self._count_bytes),
            safe_text(error, ERROR_LIMIT, count_bytes=self._count_bytes),
            rejected_at,
        )
        self._pending.append((*self._key_values, *values))
        if len(self._pending) >= WRITE_EVERY_ROWS:
            self._write_pending()

    def _write_pending(self) -> None:
        """Spool the pending rows; a batch refused is retried row by row, then as ASCII, then given up."""
        rows, self._pending = self._pending, []
        if not rows or self.failed is not None:
            return
        try:
            self._spool_rows(rows)
            return
        except Exception:
            self._rollback()
        for row in rows:
            try:
                self._spool_rows([row])
                continue
            except Exception:
                self._rollback()
            try:
                self._spool_rows([tuple(self._safe_row(row, ascii_text))])
            except Exception as exc:  # not a value then: the table or the connection is broken
                self._rollback()
                self._give_up("spooling", exc)
                log.warning(
                    "Stopped writing rejected rows to rejects table %s: %s. The import goes on; the "
                    "rows it rejects are counted in XCom but not written to the table.",
                    self._table,
                    self.failed,
                )
                return

    def _spool_rows(self, rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join([self._hook.placeholder] * len(COLUMNS))
        cursor = self._connection.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO {self._spool} ({', '.join(COLUMNS)}) VALUES ({marks})",
                [adapt_parameters(self._driver, row) for row in rows],
            )
        finally:
            cursor.close()
        self._connection.commit()
        self._spooled += len(rows)

    def _publish(self) -> None:
        """Replace the task instance's rows in the table with the spooled ones, in one transaction."""
        mark = self._hook.placeholder
        ti = self._task_instance
        cursor = self._connection.cursor()
        try:
            cursor.execute(
                f"DELETE FROM {self._sql_table} WHERE dag_id = {mark} AND run_id = {mark} "
                f"AND task_id = {mark} AND map_index = {mark}",
                (*self._key_values[:3], ti.map_index),
            )
            columns = ", ".join(COLUMNS)
            cursor.execute(f"INSERT INTO {self._sql_table} ({columns}) SELECT {columns} FROM {self._spool}")
        finally:
            cursor.close()
        self._connection.commit()
        self.rows_written = self._spooled

    def _give_up(self, step: str, exc: BaseException) -> None:
        if self.failed is None:
            self.failed = f"{step}: {describe_failure(exc)}"
        self._pending.clear()

    def _rollback(self) -> None:
        try:
            self._connection.rollback()
        except Exception:  # a lost connection: the next statement says so
            log.debug("Rollback on the rejects table's connection failed", exc_info=True)

    def _close(self) -> None:
        try:
            self._connection.close()
        except Exception:  # a connection the server ended may fail to close; nothing is lost
            log.debug("Closing the rejects table's connection failed", exc_info=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """
        Publish what was rejected, also when the import failed part-way: those rows were read.
        Raises nothing (but a ``BaseException`` such as a task timeout met while publishing): the
        import's own exception, if any, goes on, and a successful import stays successful.
        """
        try:
            self._write_pending()
            if self.failed is None:  # after a spooling failure, the table keeps its rows: never half
                try:
                    self._publish()
                except Exception as publish_error:
                    self._rollback()
                    self._give_up("publishing", publish_error)
        finally:
            self._close()
            self.rows_not_written = self.rows_rejected - self.rows_written
        if self.failed is not None:
            log.warning(
                "%d of %d rejected rows could not be written to rejects table %s (connection '%s'): "
                "%s. The import itself is not affected; its counts and first 100 errors are in XCom "
                "'return_value'.",
                self.rows_not_written,
                self.rows_rejected,
                self._table,
                self._conn_id,
                self.failed,
            )

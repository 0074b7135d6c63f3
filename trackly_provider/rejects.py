"""A SQL table of an import's rejected rows: which row, why, and which task instance rejected it."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.sql_source import adapt_parameters, driver_name
from trackly_provider.sql_tables import checked_table_name, dialect_of, execute_and_commit, open_writer

WRITE_EVERY_ROWS = 1000
SPOOL = "trackly_rejects_spool"  # a temporary table: private to the writer's session, gone when it closes
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
# Column types per dialect: identifiers, the id and text columns, and the UTC timestamp.
DIALECT_TYPES = {
    "sqlite": {"key": "TEXT", "id": "TEXT", "text": "TEXT", "time": "TEXT"},
    "postgresql": {"key": "VARCHAR(250)", "id": "TEXT", "text": "TEXT", "time": "TIMESTAMPTZ"},
    "mysql": {"key": "VARCHAR(250)", "id": "VARCHAR(255)", "text": "TEXT", "time": "DATETIME(6)"},
    "other": {"key": "VARCHAR(250)", "id": "VARCHAR(255)", "text": "VARCHAR(4000)", "time": "TIMESTAMP"},
}


@dataclass(frozen=True)
class TaskInstanceId:
    """The task instance an import runs as; its rows in the rejects table are replaced on a retry."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int


def table_ddl(table: str, dialect: str, temporary: bool = False) -> list[str]:
    """The statements that create ``table`` (and its task-instance index) if it does not exist."""
    types = DIALECT_TYPES.get(dialect, DIALECT_TYPES["other"])
    columns = (
        f"dag_id {types['key']} NOT NULL, run_id {types['key']} NOT NULL, task_id {types['key']} NOT NULL, "
        "map_index INTEGER NOT NULL, try_number INTEGER NOT NULL, row_index BIGINT NOT NULL, "
        f"message_id {types['id']}, code VARCHAR(64) NOT NULL, error {types['text']}, "
        f"rejected_at {types['time']} NOT NULL"
    )
    if temporary:
        return [f"CREATE TEMPORARY TABLE {table} ({columns})"]
    key = "dag_id, run_id, task_id, map_index"
    base = table.rpartition(".")[2]
    index = f"{base}_task_instance"
    if dialect == "mysql":  # no CREATE INDEX IF NOT EXISTS in MySQL: declare it with the table
        return [f"CREATE TABLE IF NOT EXISTS {table} ({columns}, INDEX {index} ({key}))"]
    statements = [f"CREATE TABLE IF NOT EXISTS {table} ({columns})"]
    if dialect == "sqlite":  # SQLite puts the schema on the index's name, and a bare table name after ON
        statements.append(f"CREATE INDEX IF NOT EXISTS {table[: -len(base)]}{index} ON {base} ({key})")
    elif dialect == "postgresql":
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({key})")
    return statements


class RejectsTable:
    """
    Writes rejected rows to ``table`` in the connection's database, creating it if missing.

    Rows go in batches to a temporary table on the writer's own connection while the import
    streams, so memory stays flat however many rows are rejected and the source's read is never
    blocked (a streaming SQLite read holds a lock no other connection can write past). On exit, in
    one transaction, the task instance's earlier rows (from an earlier try) are deleted and these
    are copied in: a retry replaces its rows, and readers never see half of them.
    """

    def __init__(self, hook: DbApiHook, table: str, task_instance: TaskInstanceId) -> None:
        self._hook = hook
        self._table = checked_table_name(table)
        self._task_instance = task_instance
        self._task_instance_values = astuple(task_instance)  # the first five columns of every row
        self._pending: list[tuple[Any, ...]] = []
        self._connection: Any = None
        self._driver = ""
        self.rows_written = 0

    def __enter__(self) -> RejectsTable:
        self._connection = self._hook.get_conn()
        self._driver = driver_name(self._connection)
        dialect = dialect_of(self._connection)
        try:
            open_writer(self._connection, table_ddl(self._table, dialect))
            execute_and_commit(self._connection, table_ddl(SPOOL, dialect, temporary=True))
        except BaseException:
            self._connection.close()
            raise
        return self

    def add(self, row_index: int, message_id: str | None, code: str, error: str) -> None:
        """Record one rejected row (``error`` must already be free of personal data)."""
        rejected_at = datetime.now(timezone.utc)
        self._pending.append((*self._task_instance_values, row_index, message_id, code, error, rejected_at))
        if len(self._pending) >= WRITE_EVERY_ROWS:
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        marks = ", ".join([self._hook.placeholder] * len(COLUMNS))
        cursor = self._connection.cursor()
        cursor.executemany(
            f"INSERT INTO {SPOOL} ({', '.join(COLUMNS)}) VALUES ({marks})",
            [adapt_parameters(self._driver, row) for row in self._pending],
        )
        cursor.close()
        self._connection.commit()
        self.rows_written += len(self._pending)
        self._pending.clear()

    def _publish(self) -> None:
        """Replace the task instance's rows in the table with the spooled ones, in one transaction."""
        mark = self._hook.placeholder
        ti = self._task_instance
        cursor = self._connection.cursor()
        cursor.execute(
            f"DELETE FROM {self._table} WHERE dag_id = {mark} AND run_id = {mark} AND task_id = {mark} "
            f"AND map_index = {mark}",
            (ti.dag_id, ti.run_id, ti.task_id, ti.map_index),
        )
        columns = ", ".join(COLUMNS)
        cursor.execute(f"INSERT INTO {self._table} ({columns}) SELECT {columns} FROM {SPOOL}")
        cursor.close()
        self._connection.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Publish what was rejected, also when the import failed part-way: those rows were read."""
        try:
            self._write_pending()
            self._publish()
        finally:
            self._connection.close()

"""The tables an import keeps beside the source: its rejects table and its ledger, for one task instance."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.database.ledger import ImportLedger
from trackly_provider.database.rejects import RejectsTable, TaskInstanceId
from trackly_provider.exceptions import TracklyConfigError


def _map_index(ti: Any) -> int:
    return -1 if ti.map_index is None else ti.map_index  # -1: not mapped, as Airflow stores it


def rejects_table(ti: Any, hook: DbApiHook, table: str, max_stall_seconds: float) -> RejectsTable:
    """The rejects table's writer for the task instance ``ti`` (opened by ``with``)."""
    task_instance = TaskInstanceId(ti.dag_id, ti.run_id, ti.task_id, _map_index(ti), ti.try_number)
    return RejectsTable(hook, table, task_instance, max_stall_seconds=max_stall_seconds)


def ledger(
    ti: Any,
    hook: DbApiHook,
    table: str,
    partition: str,
    *,
    lock_timeout: float | None,
    max_stall_seconds: float,
) -> ImportLedger:
    """
    The ledger of ``partition`` (opened by ``with``), locked for ``lock_timeout`` seconds at most (None:
    no lock, for a dry run); it names the task instance ``ti`` to an import that waits for it.
    """
    holder = (  # PostgreSQL shows its first 63 bytes as the session's application_name
        f"trackly {ti.run_id} {ti.task_id}[{_map_index(ti)}] try {ti.try_number} of {ti.dag_id}"
    )
    return ImportLedger(
        hook,
        table,
        partition,
        lock_timeout=lock_timeout,
        holder=holder,
        max_stall_seconds=max_stall_seconds,
    )


def refuse_ledger_in_sqlite_source(sql_conn_id: str) -> TracklyConfigError:
    """The error for a ledger on the SQLite connection being read, saying what to do instead."""
    return TracklyConfigError(
        f"The ledger cannot live in the SQLite database being read (connection "
        f"'{sql_conn_id}'): SQLite locks the file while the query streams, so no batch "
        "could be recorded. Set ledger_conn_id to another connection (another SQLite file, "
        "PostgreSQL, MySQL...)."
    )

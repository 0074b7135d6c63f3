"""The lines an import writes to the task log (ledger, progress, resends, outcome), and its advice."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from trackly_provider.database.ledger import ImportLedger
from trackly_provider.database.rejects import RejectsTable
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.entities import Entity
from trackly_provider.utils.partitions import describe_bounds


class TaskLog(Protocol):
    """The operator's ``self.log`` (a ``logging.Logger``, or the Task SDK's structured logger)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...
    def log(self, level: int, msg: Any, /, *args: Any) -> Any: ...


def ledger_read(log: TaskLog, ledger: ImportLedger) -> None:
    """What the ledger held when the run began, and how long it waited for another import's lock."""
    if ledger.lock is not None and ledger.lock.waited_for is not None:
        log.info(
            "Waited %.1f s for another import of ledger partition '%s' (%s) to finish.",
            ledger.lock.waited,
            ledger.partition,
            ledger.lock.waited_for,
        )
    log.info(
        "Ledger %s, partition '%s': %d records confirmed and %d with an unknown outcome by earlier runs.",
        ledger.table,
        ledger.partition,
        ledger.confirmed_before,
        ledger.unknown_before,
    )


def progress(log: TaskLog, tally: ImportTally, started: float) -> None:
    """Rows read, batches answered and the rate since ``started`` (``time.monotonic()``)."""
    elapsed = time.monotonic() - started
    log.info(
        "Progress: %d rows read, %d batches answered, %.0f rows/s.",
        tally.rows_read,
        tally.batches,
        tally.rows_read / elapsed if elapsed else 0.0,
    )


def resent(log: TaskLog, unsaved: int, failing: int, attempts: int) -> None:
    """The ``save_error`` records sent again: how many recovered (a warning when some did not)."""
    log.log(
        logging.WARNING if failing else logging.INFO,
        "Trackly failed to save %d records (save_error); sent them again: %d recovered, %d still "
        "failing after %d attempts.",
        unsaved,
        unsaved - failing,
        failing,
        attempts,
    )


def outcome(
    log: TaskLog,
    tally: ImportTally,
    entity_name: str,
    elapsed: float,
    parameters: Any,
    rejects: RejectsTable | None,
    rejects_where: tuple[str | None, str],
) -> None:
    """
    The run's counts (a dry run's: what would be sent), a hint when it read no rows, the rejects
    table written (``rejects_where``: its table and connection id), and each reported error.
    """
    if tally.dry_run:
        log.info(
            "Dry run: read %d rows in %.1f s; %d records would be sent, %d rows are rejected. "
            "Nothing was sent; the key works.",
            tally.rows_read,
            elapsed,
            tally.records_to_send,
            tally.error_count,
        )
    else:
        log.info(
            "Imported %d %s rows in %.1f s (%.0f rows/s): %d imported, %d duplicates, %d errors, %d batches.",
            tally.rows_read,
            entity_name,
            elapsed,
            tally.rows_read / elapsed if elapsed else 0.0,
            tally.success_count,
            tally.duplicates_skipped,
            tally.error_count,
            tally.batches,
        )
    if tally.answer_counts and not tally.dry_run:
        counts = ", ".join(f"{name} {value:,}" for name, value in tally.answer_counts.items())
        log.info("Trackly also counted: %s.", counts)
    if tally.rows_read == 0:
        log.warning(
            "The query read 0 rows, with %s. If it should have read some, check that these bounds "
            "can match the column they are compared with: timestamps stored as epoch integers never "
            "match datetime or text bounds; convert the column in the query, e.g. "
            "datetime(col, 'unixepoch') in SQLite, to_timestamp(col) in PostgreSQL, "
            'FROM_UNIXTIME(col) in MySQL (docs/deployment.md: "Days that read nothing").',
            describe_bounds(parameters),
        )
    if rejects and rejects.failed is None:
        log.info("Wrote %d rejected rows to %s (connection '%s').", rejects.rows_written, *rejects_where)
    for error in tally.errors:
        log.warning(
            "Rejected row %d (%s %s): %s: %s",
            error["index"],
            tally.key_label,
            error[tally.key_label],
            error["code"],
            error["error"],
        )


def stopped_early(log: TaskLog, failed: str, tally: ImportTally) -> None:
    """The counts reached when ``failed`` (an exception's type name) ended the import."""
    log.warning(
        "The import stopped early (%s) after reading %d rows: %d imported, %d duplicates, %d "
        "errors, %d batches answered. The counts are in XCom 'return_value'.",
        failed,
        tally.rows_read,
        tally.success_count,
        tally.duplicates_skipped,
        tally.error_count,
        tally.batches,
    )


def rerun_advice(entity: Entity, ledger_table: str | None) -> str:
    """
    Why rerunning an import that failed is safe: the ledger leaves out what Trackly confirmed, or
    Trackly itself does not store a record twice (``Entity.resend_effect``).
    """
    if ledger_table is not None:
        return (
            f"Rerunning the task is safe: the ledger (table {ledger_table}) leaves out the "
            f"{entity.name} records Trackly confirmed."
        )
    return f"Rerunning the task is safe: {entity.resend_effect}."


def error_rate_exceeded(tally: ImportTally, max_error_rate: float) -> str:
    """The failure message when more rows were rejected than ``max_error_rate`` allows."""
    return (
        f"{tally.error_count} of {tally.rows_read} rows ({tally.error_rate:.2%}) were rejected, "
        f"more than max_error_rate={max_error_rate:g} allows. Imported "
        f"{tally.success_count}, duplicates {tally.duplicates_skipped}. First errors: "
        f"{tally.describe_errors()}. The counts are in XCom 'return_value'."
    )


def fields_missing(log: TaskLog, entity: Entity, tally: ImportTally) -> None:
    """Once per import: how many records lack each field declared ``warn_when_missing``, and why."""
    for field in entity.fields:
        count = tally.fields_missing.get(field.name, 0)
        if field.warn_when_missing and count:
            log.warning(
                "%s %s (of %s rows read) %s no %s: %s.",
                f"{count:,}",
                entity.name,
                f"{tally.rows_read:,}",
                "would have" if tally.dry_run else "had",
                field.name,
                field.warn_when_missing,
            )

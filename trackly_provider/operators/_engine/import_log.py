"""The lines an import writes to the task log (start, ledger, progress, resends, outcome), and its advice."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from datetime import time as dt_time
from typing import Any, Protocol
from urllib.parse import urlsplit

from trackly_provider.database.ledger import ImportLedger
from trackly_provider.database.rejects import RejectsTable
from trackly_provider.exceptions import TracklyMissingSourceObjectError
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.entities import Entity
from trackly_provider.utils.partitions import describe_bounds


class TaskLog(Protocol):
    """The operator's ``self.log`` (a ``logging.Logger``, or the Task SDK's structured logger)."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...
    def warning(self, msg: Any, /, *args: Any) -> Any: ...
    def log(self, level: int, msg: Any, /, *args: Any) -> Any: ...


PROGRESS_EVERY_SECONDS = 30.0


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` with thousands separators and ``noun`` agreeing: ``1 batch``, ``1,500 rows``."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def counted(counts: Mapping[str, int]) -> str:
    """Counts by name, largest first then by name: ``invalid_phone 3, offer_not_found 1``."""
    ranked = sorted(((name, n) for name, n in counts.items() if n), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name} {n:,}" for name, n in ranked)


def describe_scope(parameters: Any) -> str:
    """
    What an import reads, for its first line: ``the day 2025-11-01 ([...])`` when ``parameters``
    are two datetimes a UTC day apart from midnight (the example DAGs' bounds), else ``parameters
    ...`` as ``describe_bounds`` shows them (no value that looks like a phone number).
    """
    values = list(parameters.values()) if isinstance(parameters, dict) else parameters
    if (
        isinstance(values, (list, tuple))
        and len(values) == 2
        and all(isinstance(v, datetime) for v in values)
    ):
        start, end = (value.astimezone(timezone.utc) if value.tzinfo else value for value in values)
        if start.time() == dt_time(0) and end - start == timedelta(days=1):
            return f"the day {start.date().isoformat()} ({describe_bounds(parameters)})"
    return "no parameters" if parameters is None else f"parameters {describe_bounds(parameters)}"


def url_host(base_url: str) -> str:
    """The host (and port, when given) of a base URL, never its user or password: ``api.example:8080``."""
    parts = urlsplit(base_url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"{host}:{parts.port}" if parts.port else host


def started(
    log: TaskLog, entity: Entity, parameters: Any, connections: tuple[str, str, str], dry_run: bool
) -> None:
    """
    The run's first line: the entity, the day or parameters, and the connections it uses
    (``connections``: the SQL connection id, the Trackly connection id, and the host of its base
    URL; never the key).
    """
    sql_conn_id, trackly_conn_id, host = connections
    log.info(
        "%s %s, %s, from SQL connection '%s' (sql_conn_id) to Trackly connection '%s' "
        "(trackly_conn_id, host %s)%s.",
        "Dry run: checking" if dry_run else "Importing",
        entity.name,
        describe_scope(parameters),
        sql_conn_id,
        trackly_conn_id,
        host,
        "; nothing will be sent" if dry_run else "",
    )


def missing_source_object(error: TracklyMissingSourceObjectError, sql_conn_id: str, parameters: Any) -> str:
    """
    The failure message for a query naming a table or column the source does not have: what is
    missing, the connection, the day or parameters, how to fix it, and the driver's own text
    (already redacted by ``source_error``).
    """
    what = f"{error.kind} '{error.name}'" if error.name is not None else f"a {error.kind}"
    fix = (
        f"check that the table exists in the database (and schema) connection '{sql_conn_id}' "
        "points to, and that the query spells its name as the database does"
        if error.kind == "table"
        else "check the query's column names against the table on that connection (a column "
        "renamed or dropped, a missing table alias)"
    )
    return (
        f"The query reading {describe_scope(parameters)} names {what}, which SQL connection "
        f"'{sql_conn_id}' (sql_conn_id) does not have: {fix}. A retry cannot fix this, so the task "
        f"fails without retries. {error}"
    )


class ProgressLog:
    """
    A progress line at most every ``every_seconds`` (default 30 s) while rows are read: rows read,
    seconds elapsed, rows per second and batches answered. Time-based, so that a slow day and a
    fast one both write a readable number of lines: a 1M-row day read at 2,000 rows/s (about 8
    minutes) writes 16, one read in under 30 s writes none but the closing line.

    No total or ETA: a streaming cursor does not know how many rows the query returns until the
    last is read (server-side cursors report ``rowcount`` -1), and counting them first would run
    the day's query twice, which can cost as much as the import's own read.
    """

    def __init__(
        self,
        log: TaskLog,
        started: float,
        every_seconds: float = PROGRESS_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.started, self.every, self.clock = log, started, every_seconds, clock
        self.next_at = started + every_seconds

    def tick(self, tally: ImportTally) -> None:
        """Log a line if ``every_seconds`` passed since the last one (or the start)."""
        now = self.clock()
        if now < self.next_at:
            return
        self.next_at = now + self.every
        elapsed = now - self.started
        log_progress(self.log, tally, elapsed)


def log_progress(log: TaskLog, tally: ImportTally, elapsed: float) -> None:
    """One progress line: ``Progress: 12,000 rows read in 30 s (400 rows/s), 12 batches answered.``"""
    rate = tally.rows_read / elapsed if elapsed > 0 else 0.0
    log.info(
        "Progress: %s read in %.0f s (%s rows/s), %s.",
        plural(tally.rows_read, "row"),
        elapsed,
        f"{rate:,.0f}",
        "nothing sent (dry run)"
        if tally.dry_run
        else plural(tally.batches, "batch", "batches") + " answered",
    )


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
        "Ledger %s, partition '%s': %s confirmed and %s with an unknown outcome by earlier runs.",
        ledger.table,
        ledger.partition,
        plural(ledger.confirmed_before, "record"),
        f"{ledger.unknown_before:,}",
    )


def resent(log: TaskLog, unsaved: int, failing: int, attempts: int) -> None:
    """The ``save_error`` records sent again: how many recovered (a warning when some did not)."""
    log.log(
        logging.WARNING if failing else logging.INFO,
        "Trackly failed to save %s (save_error); sent them again: %s recovered, %s still failing after %s.",
        plural(unsaved, "record"),
        f"{unsaved - failing:,}",
        f"{failing:,}",
        plural(attempts, "attempt"),
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
    by_code = f" Errors by code: {counted(tally.errors_by_code)}." if tally.error_count else ""
    if tally.dry_run:
        log.info(
            "Dry run: read %s of %s in %.1f s; %s would be sent, %s rejected. Nothing was sent; the "
            "key works.%s",
            plural(tally.rows_read, "row"),
            entity_name,
            elapsed,
            plural(tally.records_to_send, "record"),
            "1 row is" if tally.error_count == 1 else f"{tally.error_count:,} rows are",
            by_code,
        )
    else:
        log.info(
            "Imported %s of %s in %.1f s (%s rows/s): %s imported, %s, %s, %s.%s",
            plural(tally.rows_read, "row"),
            entity_name,
            elapsed,
            f"{tally.rows_read / elapsed if elapsed else 0.0:,.0f}",
            f"{tally.success_count:,}",
            plural(tally.duplicates_skipped, "duplicate"),
            plural(tally.error_count, "error"),
            plural(tally.batches, "batch", "batches"),
            by_code,
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
        log.info(
            "Wrote %s to %s (connection '%s').", plural(rejects.rows_written, "rejected row"), *rejects_where
        )
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
        "The import stopped early (%s) after reading %s: %s imported, %s, %s, %s answered. The "
        "counts are in XCom 'return_value'.%s",
        failed,
        plural(tally.rows_read, "row"),
        f"{tally.success_count:,}",
        plural(tally.duplicates_skipped, "duplicate"),
        plural(tally.error_count, "error"),
        plural(tally.batches, "batch", "batches"),
        f" Errors by code: {counted(tally.errors_by_code)}." if tally.error_count else "",
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
        f"{tally.error_count:,} of {plural(tally.rows_read, 'row')} ({tally.error_rate:.2%}) "
        f"{'was' if tally.error_count == 1 else 'were'} rejected, more than "
        f"max_error_rate={max_error_rate:g} allows. Imported {tally.success_count:,}, duplicates "
        f"{tally.duplicates_skipped:,}. Errors by code: {counted(tally.errors_by_code)}. First errors: "
        f"{tally.describe_errors()}. The counts are in XCom 'return_value'."
    )


def fields_missing(log: TaskLog, entity: Entity, tally: ImportTally) -> None:
    """Once per import: how many records lack each field declared ``warn_when_missing``, and why."""
    for field in entity.fields:
        count = tally.fields_missing.get(field.name, 0)
        if field.warn_when_missing and count:
            log.warning(
                "%s (of %s read) %s no %s: %s.",
                plural(count, entity.name.removesuffix("s"), entity.name),
                plural(tally.rows_read, "row"),
                "would have" if tally.dry_run else "had",
                field.name,
                field.warn_when_missing,
            )

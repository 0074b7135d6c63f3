"""The import engine: stream a SQL query's rows into one of Trackly's history endpoints."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseOperator

from trackly_provider.database.ledger import ImportLedger, import_partition
from trackly_provider.database.rejects import RejectsTable, TaskInstanceId
from trackly_provider.database.source import sql_hook, stream_query
from trackly_provider.database.tables import checked_table_name
from trackly_provider.exceptions import (
    TracklyConfigError,
    TracklyErrorRateExceededError,
    TracklyOutcomeUnknownError,
    TracklyResponseError,
    TracklySourceError,
    TracklyTransientError,
    TracklyUnconfirmedRecordsError,
)
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.operators._engine.batch_window import Batch, BatchWindow
from trackly_provider.operators._engine.confirmations import (
    NOT_STORED_ERRORS,
    UNKNOWN_OUTCOME_CHOICES,
    Confirmations,
    unknown_outcome_result,
)
from trackly_provider.operators._engine.import_arguments import (
    as_flag,
    as_seconds,
    check_choice,
    check_limits,
    checked_region,
    ledger_table_of,
)
from trackly_provider.operators._engine.native_memory import release_freed_memory
from trackly_provider.operators._engine.records import (
    MissingColumnsError,
    Record,
    RowRejection,
    make_record_builder,
    plan_columns,
)
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.entities import Entity
from trackly_provider.trackly_api.limits import MAX_RECORDS_PER_REQUEST
from trackly_provider.trackly_api.request_bodies import BodyBuffers
from trackly_provider.trackly_api.results import ImportResult
from trackly_provider.utils.assets import annotate_asset_events, asset_event_extra
from trackly_provider.utils.partitions import describe_bounds

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

PROGRESS_EVERY_BATCHES = 10
RESENT_CODES = frozenset({"save_error"})  # the server failed on that record alone: worth another try
TRIM_MEMORY_EVERY_BATCHES = 20
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_LEDGER_LOCK_TIMEOUT = 3600.0  # seconds

Unsaved = tuple[int, Record, int]  # (row index, record, fingerprint or 0) of a save_error answer


class HistoryImportOperator(BaseOperator):
    """
    Import history records from a SQL query into Trackly; each subclass names its ``entity``.

    The query's column names are the record fields (alias columns to match, ``SELECT sent_at AS
    timestamp``); other columns are ignored. Datetimes are sent as ISO 8601 in UTC; naive datetimes
    and offset-less text are taken as UTC. Rows are streamed (server-side cursor where the driver
    has one), so memory does not grow with the result.

    Rows with a NULL or empty required value or an invalid one are not sent and count as errors with
    the API's own code. Every row read ends up imported, duplicate or error.

    :param sql: the SELECT to run, or a path to a ``.sql`` file. (templated)
    :param sql_conn_id: any Airflow connection whose hook is a common-sql ``DbApiHook``.
    :param parameters: bind parameters passed to the driver with ``sql``. Datetimes are adapted to
        compare correctly with UTC timestamp columns (SQLite text, MySQL DATETIME). (templated)
    :param trackly_conn_id: the Trackly connection.
    :param batch_size: records per request, 1 to 1,000.
    :param max_error_rate: the task fails when ``error_count / rows_read`` exceeds this, after every
        row was processed and the counts were pushed to XCom (0.0: any error fails the task).
    :param max_in_flight: requests open at once while the next rows are read (1: strictly serial).
        The first request is sent alone, so a bad key costs one request. Memory stays about
        ``max_in_flight + 1`` batches whatever the row count.
    :param dry_run: read and validate every row and check the key (``GET /api/v2/lists``), but send
        nothing; the summary says how many records a real run would send. ``True``/``False``, or
        a template rendering to ``"True"``/``"False"`` such as ``"{{ params.dry_run }}"``. (templated)
    :param rejects_table: a table to write each rejected row to (task instance, row index, message
        id, code, error text; never a record's other values), created if missing. A retry of the
        same task instance replaces that instance's rows. Off when not set.
    :param rejects_conn_id: the SQL connection of ``rejects_table``; the source's by default.
    :param ledger_table: a table recording, per partition, the fingerprint of every record Trackly
        confirmed, so that a rerun leaves them out (see the README's "The ledger"). None (the
        default): ``trackly_import_ledger`` for an entity Trackly does not deduplicate (revenue,
        which always keeps one), no ledger for the others (clicks, sends), where one saves a rerun
        from sending what was confirmed. An empty or blank value, as given or as rendered, means
        ``trackly_import_ledger``, never "no ledger". (templated)
    :param ledger_conn_id: the SQL connection of ``ledger_table``; the source's by default. It cannot
        be a SQLite source (the streaming read locks the file).
    :param ledger_partition: the ledger's name for the records of this import; by default the
        entity, the Trackly connection and the ``parameters`` (a day's bounds), so that every rerun
        of that day finds them, even after the SQL was edited; a query without parameters is
        named by its rendered text instead (``ledger.default_partition``). Set it when the
        parameters do not say which rows the query reads. (templated)
    :param ledger_lock_timeout: how long an import waits while another import of the same ledger
        partition runs (seconds, or a ``timedelta``; default one hour). The ledger's database holds
        the lock, which dies with its holder (README: "One import of a partition at a time"). When
        the bound runs out the task fails at once, without retries
        (``TracklyPartitionLockedError``), having sent nothing.
    :param default_region: the CLDR region (``"US"``, ``"GB"``...) of phone numbers written without a
        country code (``4155550100``, ``(415) 555-0100``, a ``BIGINT`` column); None (the default):
        such numbers are rejected. Every phone field is sent in E.164 (README: "Phone numbers").
    :param on_unknown_outcome: what to do with records an earlier run sent without getting an
        answer: ``fail`` (default: leave them out, and fail after the rest is imported),
        ``assume_imported`` (you checked in Trackly: they were stored) or ``resend`` (you checked:
        they were not). (templated)
    :return: ``rows_read``, ``success_count``, ``error_count``, ``duplicates_skipped``, ``batches``,
        ``errors_by_code`` (every error counted by code, summing to ``error_count``), up to 100
        ``errors`` (``index`` in the query result, ``message_id``, ``code``, ``error``) and
        ``dry_run``; a dry run adds ``records_to_send``; an import with a ledger adds ``ledger``.
        Also pushed when the task fails: on ``max_error_rate`` or records of unknown outcome (the
        import finished), and on any error that ended the import early (the source lost, the API
        down, a rejected key, a bug), where it holds the counts reached and adds ``failed``, the
        exception's type name (``"TracklyRetriesExhaustedError"``...); rows read but not sent or
        unanswered are then not counted, so the three counts may sum to less than ``rows_read``.
    :raises TypeError: when built directly: use one of the three import operators.
    """

    entity: ClassVar[Entity]
    template_fields: Sequence[str] = (
        "sql",
        "parameters",
        "dry_run_import",
        "ledger_table",
        "ledger_partition",
        "on_unknown_outcome",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql", "parameters": "json"}  # noqa: RUF012 (Airflow API)
    ui_color = "#fde8c8"

    def __init__(
        self,
        *,
        sql: str,
        sql_conn_id: str,
        parameters: Any = None,
        trackly_conn_id: str = TracklyHook.default_conn_name,
        batch_size: int = MAX_RECORDS_PER_REQUEST,
        max_error_rate: float = 0.0,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        dry_run: bool | str = False,
        rejects_table: str | None = None,
        rejects_conn_id: str | None = None,
        ledger_table: str | None = None,
        ledger_conn_id: str | None = None,
        ledger_partition: str | None = None,
        ledger_lock_timeout: float | timedelta = DEFAULT_LEDGER_LOCK_TIMEOUT,
        on_unknown_outcome: str = "fail",
        default_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(getattr(type(self), "entity", None), Entity):
            raise TypeError(
                f"{type(self).__name__} cannot be built directly: it is the engine the import operators "
                "share and names no Trackly endpoint. Use ClickHistoryImportOperator, "
                "SendHistoryImportOperator or RevenueHistoryImportOperator (trackly_provider.operators)."
            )
        super().__init__(**kwargs)
        check_limits(batch_size, max_error_rate, max_in_flight)
        self.sql = sql
        self._sql_template = sql  # as written, for the ledger partition's check (``sql`` is rendered)
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.trackly_conn_id = trackly_conn_id
        self.batch_size = batch_size
        self.max_error_rate = max_error_rate
        self.max_in_flight = max_in_flight
        self.dry_run_import = dry_run  # not ``dry_run``: BaseOperator.dry_run() is a method Airflow calls
        self.rejects_table = checked_table_name(rejects_table) if rejects_table else None
        self.rejects_conn_id = rejects_conn_id or sql_conn_id
        self.ledger_table = ledger_table
        if not isinstance(ledger_table, str) or not ("{{" in ledger_table or "{%" in ledger_table):
            ledger_table_of(self.entity, ledger_table)  # a template is checked once rendered
        self.ledger_conn_id = ledger_conn_id or sql_conn_id
        self.ledger_partition = ledger_partition
        self.ledger_lock_timeout = as_seconds("ledger_lock_timeout", ledger_lock_timeout)
        self.on_unknown_outcome = on_unknown_outcome
        self.default_region = checked_region(default_region)
        self._tally: ImportTally | None = None  # the last run's counts, for its lineage

    @cached_property
    def source_hook(self) -> DbApiHook:
        """The SQL source's hook, resolved at run time, never at DAG parse time."""
        return sql_hook(self.sql_conn_id)

    @property
    def sql_placeholder(self) -> str:
        """The source driver's bind placeholder (``?`` or ``%s``), for portable SQL templates."""
        return self.source_hook.placeholder

    @cached_property
    def trackly_hook(self) -> TracklyHook:
        return TracklyHook(self.trackly_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        tally = self._tally = ImportTally(dry_run=as_flag("dry_run", self.dry_run_import))
        check_choice("on_unknown_outcome", self.on_unknown_outcome, UNKNOWN_OUTCOME_CHOICES)
        ledger_table = ledger_table_of(self.entity, self.ledger_table)  # as rendered
        started = time.monotonic()
        book: Confirmations | None = None
        rejects: RejectsTable | None = None
        unknown_message = None
        try:
            with (
                self._open_rejects_table(context) as rejects,
                self._open_ledger(ledger_table, context, tally.dry_run) as ledger,
            ):
                tally.error_sink = rejects.add if rejects else None
                if ledger is not None:
                    book = Confirmations(ledger, self.entity, self.on_unknown_outcome, tally)
                if tally.dry_run:
                    self.trackly_hook.check_access()
                self._import_rows(tally, started, book)
                if book is not None:
                    book.finish()
                    unknown_message = book.unknown_message(self.entity.name) if book.unknown_count else None
        except BaseException as exc:  # a task timeout or kill too: what was counted is pushed first
            self._push_stopped_early(context, tally, book, rejects, exc)
            if isinstance(exc, TracklyTransientError):
                raise type(exc)(
                    f"{exc} {tally.confirmed} of {tally.rows_read} rows read were confirmed before the "
                    f"failure. {self._rerun_advice(ledger_table)}"
                ) from None
            raise
        finally:
            self.trackly_hook.close()
        summary = self._summary(tally, book, rejects)
        self._log_outcome(tally, time.monotonic() - started, rejects)
        if unknown_message:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise TracklyUnconfirmedRecordsError(unknown_message)
        if tally.error_rate > self.max_error_rate:
            context["ti"].xcom_push(key="return_value", value=summary)
            raise TracklyErrorRateExceededError(
                f"{tally.error_count} of {tally.rows_read} rows ({tally.error_rate:.2%}) were rejected, "
                f"more than max_error_rate={self.max_error_rate:g} allows. Imported "
                f"{tally.success_count}, duplicates {tally.duplicates_skipped}. First errors: "
                f"{tally.describe_errors()}. The counts are in XCom 'return_value'."
            )
        annotate_asset_events(context, self.outlets, asset_event_extra(self.entity, self.parameters, tally))
        return summary

    @staticmethod
    def _summary(
        tally: ImportTally, book: Confirmations | None, rejects: RejectsTable | None
    ) -> dict[str, Any]:
        """
        The XCom ``return_value``: the tally's summary, the ledger's part when there is one, and
        ``rejects_not_written`` when the rejects table could not take every rejected row.
        """
        summary = tally.as_xcom()
        if book is not None:
            summary["ledger"] = book.summary()
        if rejects is not None and rejects.rows_not_written:
            summary["rejects_not_written"] = rejects.rows_not_written
        return summary

    def _push_stopped_early(
        self,
        context: Context,
        tally: ImportTally,
        book: Confirmations | None,
        rejects: RejectsTable | None,
        exc: BaseException,
    ) -> None:
        """
        Push the counts reached before ``exc`` ended the import, with ``failed``: the exception's
        type name alone (its text may quote a source value). Never raises: ``exc`` must propagate.
        """
        try:
            summary = self._summary(tally, book, rejects)
            summary["failed"] = type(exc).__name__
            self.log.warning(
                "The import stopped early (%s) after reading %d rows: %d imported, %d duplicates, %d "
                "errors, %d batches answered. The counts are in XCom 'return_value'.",
                summary["failed"],
                tally.rows_read,
                tally.success_count,
                tally.duplicates_skipped,
                tally.error_count,
                tally.batches,
            )
            context["ti"].xcom_push(key="return_value", value=summary)
        except Exception as push_error:
            self.log.warning("Could not push the counts to XCom: %s", type(push_error).__name__)

    def get_openlineage_facets_on_start(self) -> OperatorLineage | None:
        """OpenLineage: the tables the query reads and the Trackly endpoint it writes."""
        return self._lineage(None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """OpenLineage: as on start, with the records imported and the run's counts."""
        return self._lineage(self._tally)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        """OpenLineage: as on complete, with the counts reached before the failure."""
        return self._lineage(self._tally)

    def _lineage(self, tally: ImportTally | None) -> OperatorLineage | None:
        try:
            from trackly_provider.utils.lineage import import_lineage
        except ImportError:  # the optional OpenLineage provider is not installed
            return None
        namespace = self.trackly_hook.settings.lineage_namespace
        return import_lineage(self.source_hook, self.sql, namespace, self.entity.name, tally)

    def _rerun_advice(self, ledger_table: str | None) -> str:
        if ledger_table is not None:
            return (
                f"Rerunning the task is safe: the ledger (table {ledger_table}) leaves out the "
                f"{self.entity.name} records Trackly confirmed."
            )
        return (
            f"Rerunning the task is safe: Trackly skips {self.entity.name} it already stored and counts "
            "them as duplicates."
        )

    def _open_rejects_table(self, context: Context) -> AbstractContextManager[RejectsTable | None]:
        """The rejects table's writer, or nothing when ``rejects_table`` is not set."""
        if self.rejects_table is None:
            return nullcontext()
        ti = context["ti"]
        map_index = -1 if ti.map_index is None else ti.map_index  # -1: not mapped, as Airflow stores it
        task_instance = TaskInstanceId(ti.dag_id, ti.run_id, ti.task_id, map_index, ti.try_number)
        return RejectsTable(
            sql_hook(self.rejects_conn_id),
            self.rejects_table,
            task_instance,
            max_stall_seconds=self.trackly_hook.settings.longest_request_seconds,
        )

    def _open_ledger(
        self, ledger_table: str | None, context: Context, dry_run: bool
    ) -> AbstractContextManager[ImportLedger | None]:
        """
        The ledger of this import's partition, locked against other imports of it (a dry run, which
        writes nothing, reads it without the lock), or nothing when the import keeps none.
        """
        if ledger_table is None:
            return nullcontext()
        if self.ledger_conn_id == self.sql_conn_id and self.source_hook.conn_type == "sqlite":
            raise TracklyConfigError(
                f"The ledger cannot live in the SQLite database being read (connection "
                f"'{self.sql_conn_id}'): SQLite locks the file while the query streams, so no batch "
                "could be recorded. Set ledger_conn_id to another connection (another SQLite file, "
                "PostgreSQL, MySQL...)."
            )
        ti = context["ti"]
        holder = (  # PostgreSQL shows its first 63 bytes as the session's application_name
            f"trackly {ti.run_id} {ti.task_id}[{-1 if ti.map_index is None else ti.map_index}] "
            f"try {ti.try_number} of {ti.dag_id}"
        )
        return ImportLedger(
            sql_hook(self.ledger_conn_id),
            ledger_table,
            import_partition(
                self.entity.name,
                self.trackly_conn_id,
                self.parameters,
                self.sql,
                self._sql_template,
                self.ledger_partition,
            ),
            lock_timeout=None if dry_run else self.ledger_lock_timeout,
            holder=holder,
            max_stall_seconds=self.trackly_hook.settings.longest_request_seconds,
        )

    def _import_rows(self, tally: ImportTally, started: float, book: Confirmations | None) -> None:
        entity, hook = self.entity, self.trackly_hook
        stall = hook.settings.longest_request_seconds  # the read may wait this long for a place
        with stream_query(
            self.source_hook, self.sql, self.parameters, self.batch_size, max_stall_seconds=stall
        ) as (columns, chunks):
            try:
                layout = plan_columns(columns, entity)
            except MissingColumnsError as exc:
                raise TracklySourceError(str(exc)) from None
            if layout.ignored:
                self.log.warning("Ignoring column(s) Trackly does not use: %s", ", ".join(layout.ignored))
            build = make_record_builder(layout, entity, self.default_region)
            if book is not None:
                self._log_ledger(book.ledger)
            screen = book.screen if book is not None else None
            unsaved: list[Unsaved] = []
            resent_codes = RESENT_CODES if hook.settings.retry.max_attempts > 1 else ()
            buffers = BodyBuffers()

            def send(batch: Batch) -> ImportResult:
                try:
                    return hook.import_encoded(entity, batch.body, len(batch))
                except TracklyOutcomeUnknownError as exc:
                    return unknown_outcome_result(len(batch), str(exc))
                except NOT_STORED_ERRORS:
                    if book is not None and not entity.deduplicated:
                        book.note_not_sent(batch)  # left out of the ledger once every thread is done
                    raise
                except TracklyResponseError as exc:
                    if entity.deduplicated:  # sending again is safe: a rerun (or Airflow's retry) does
                        raise TracklyResponseError(
                            f"{exc} Rerunning is safe: Trackly skips {entity.name} it already stored "
                            "and counts them as duplicates."
                        ) from None
                    self.log.warning(
                        "Trackly's answer to %d %s records from row %d cannot be trusted; their outcome "
                        "is unknown: %s",
                        len(batch),
                        entity.name,
                        batch.row_indexes[0],
                        exc,
                    )
                    return unknown_outcome_result(len(batch), f"an answer that cannot be trusted: {exc}")

            def count(batch: Batch, result: ImportResult) -> None:
                held = self._settle(tally, book, batch, result, resent_codes)
                if held:
                    records = orjson.loads(batch.body)["records"]
                    prints = batch.fingerprints
                    unsaved.extend(
                        (batch.row_indexes[i], records[i], prints[i] if prints else 0) for i in held
                    )
                give_back(batch)
                if tally.batches % PROGRESS_EVERY_BATCHES == 0:
                    self._log_progress(tally, started)
                if tally.batches % TRIM_MEMORY_EVERY_BATCHES == 0:
                    release_freed_memory()

            def count_unsent(batch: Batch) -> None:
                tally.add_unsent(len(batch))
                give_back(batch)

            def give_back(batch: Batch) -> None:
                if batch.buffer is not None:  # its body is read no more
                    buffers.give_back(batch.buffer)

            def batch_of(records: list[Record], row_indexes: list[int]) -> Batch:
                prints = book.take_fingerprints() if book is not None else None
                return Batch.encoded(records, row_indexes, entity.key_field, prints, buffers)

            batch_size = self.batch_size
            before_send = book.record_sending if book is not None else None
            with (
                book.forgetting_not_sent() if book is not None else nullcontext(),
                BatchWindow(send, count, self.max_in_flight, before_send) as window,
            ):
                submit = count_unsent if tally.dry_run else window.submit
                records: list[Record] = []
                row_indexes: list[int] = []
                try:
                    for chunk in chunks:
                        first_index = tally.rows_read
                        tally.rows_read += len(chunk)
                        for index, record in enumerate(map(build, chunk), first_index):
                            if type(record) is RowRejection:
                                tally.reject_row(index, record)
                                continue
                            if screen is not None and not screen(index, record):  # type: ignore[arg-type]
                                continue
                            records.append(record)  # type: ignore[arg-type]
                            row_indexes.append(index)
                            if len(records) == batch_size:
                                submit(batch_of(records, row_indexes))
                                records, row_indexes = [], []
                    if records:
                        submit(batch_of(records, row_indexes))
                except BaseException:
                    self._count_in_flight(window)
                    raise
                window.drain()
            self._resend_unsaved(tally, book, unsaved, send)

    def _count_in_flight(self, window: BatchWindow) -> None:
        """
        After reading or sending failed: count the batches still in flight as they answer, so that
        the counts (and the ledger) hold every answer received. Their own failures are only logged:
        the first error is the one raised.
        """
        try:
            window.drain()
        except Exception as exc:
            self.log.warning("A batch in flight failed too (%s) once the import stopped.", type(exc).__name__)

    def _log_ledger(self, ledger: ImportLedger) -> None:
        if ledger.lock is not None and ledger.lock.waited_for is not None:
            self.log.info(
                "Waited %.1f s for another import of ledger partition '%s' (%s) to finish.",
                ledger.lock.waited,
                ledger.partition,
                ledger.lock.waited_for,
            )
        self.log.info(
            "Ledger %s, partition '%s': %d records confirmed and %d with an unknown outcome by earlier runs.",
            ledger.table,
            ledger.partition,
            ledger.confirmed_before,
            ledger.unknown_before,
        )

    def _settle(
        self,
        tally: ImportTally,
        book: Confirmations | None,
        batch: Batch,
        result: ImportResult,
        hold_codes: Collection[str],
    ) -> list[int]:
        """Count an answered batch and record what Trackly confirmed; return the positions held back."""
        held = tally.add_batch(result, batch.row_indexes, batch.message_ids, hold_codes)
        if book is not None:
            book.record_answer(batch, result)
        return held

    def _resend_unsaved(
        self,
        tally: ImportTally,
        book: Confirmations | None,
        unsaved: list[Unsaved],
        send: Callable[[Batch], ImportResult],
    ) -> None:
        """
        Send again, after the rest, the records Trackly failed to save (``save_error``).

        Up to the connection's ``max_attempts`` in all, with its backoff: the answer said these
        records were not stored, so this is safe for every entity. Only records that fail every
        time count as errors.
        """
        if not unsaved:
            return
        hook, failed_before = self.trackly_hook, tally.errors_by_code["save_error"]
        attempts = hook.settings.retry.max_attempts
        pending, attempt = unsaved, 1
        while pending and attempt < attempts:
            attempt += 1
            hook.wait_before_retry(attempt - 1)
            hold = RESENT_CODES if attempt < attempts else frozenset()
            still_unsaved = []
            for start in range(0, len(pending), self.batch_size):
                part = pending[start : start + self.batch_size]
                prints = [fingerprint for _, _, fingerprint in part] if book else None
                records = [record for _, record, _ in part]
                batch = Batch.encoded(records, [index for index, _, _ in part], self.entity.key_field, prints)
                if book is not None:
                    book.record_sending(batch)
                held = self._settle(tally, book, batch, send(batch), hold)
                still_unsaved += [part[i] for i in held]
            pending = still_unsaved
        failing = tally.errors_by_code["save_error"] - failed_before
        self.log.log(
            logging.WARNING if failing else logging.INFO,
            "Trackly failed to save %d records (save_error); sent them again: %d recovered, %d still "
            "failing after %d attempts.",
            len(unsaved),
            len(unsaved) - failing,
            failing,
            attempt,
        )

    def _log_outcome(self, tally: ImportTally, elapsed: float, rejects: RejectsTable | None) -> None:
        if tally.dry_run:
            self.log.info(
                "Dry run: read %d rows in %.1f s; %d records would be sent, %d rows are rejected. "
                "Nothing was sent; the key works.",
                tally.rows_read,
                elapsed,
                tally.records_to_send,
                tally.error_count,
            )
        else:
            self.log.info(
                "Imported %d %s rows in %.1f s (%.0f rows/s): %d imported, %d duplicates, %d errors, "
                "%d batches.",
                tally.rows_read,
                self.entity.name,
                elapsed,
                tally.rows_read / elapsed if elapsed else 0.0,
                tally.success_count,
                tally.duplicates_skipped,
                tally.error_count,
                tally.batches,
            )
        if tally.rows_read == 0:
            self.log.warning(
                "The query read 0 rows, with %s. If it should have read some, check that these bounds "
                "can match the column they are compared with: timestamps stored as epoch integers never "
                "match datetime or text bounds; convert the column in the query, e.g. "
                "datetime(col, 'unixepoch') in SQLite, to_timestamp(col) in PostgreSQL, "
                'FROM_UNIXTIME(col) in MySQL (README: "Days that read nothing").',
                describe_bounds(self.parameters),
            )
        if rejects and rejects.failed is None:
            self.log.info(
                "Wrote %d rejected rows to %s (connection '%s').",
                rejects.rows_written,
                self.rejects_table,
                self.rejects_conn_id,
            )
        for error in tally.errors:
            self.log.warning(
                "Rejected row %d (message_id %s): %s: %s",
                error["index"],
                error["message_id"],
                error["code"],
                error["error"],
            )

    def _log_progress(self, tally: ImportTally, started: float) -> None:
        elapsed = time.monotonic() - started
        self.log.info(
            "Progress: %d rows read, %d batches answered, %.0f rows/s.",
            tally.rows_read,
            tally.batches,
            tally.rows_read / elapsed if elapsed else 0.0,
        )

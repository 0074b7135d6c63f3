"""One import run: the query's rows to Trackly's answers, step by step, and the state the steps share."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson
from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.database.ledger import ImportLedger
from trackly_provider.database.rejects import RejectsTable
from trackly_provider.database.source import count_rows, stream_query
from trackly_provider.exceptions import (
    TracklyError,
    TracklyMissingSourceObjectError,
    TracklyOutcomeUnknownError,
    TracklyResponseError,
    TracklySourceError,
    TracklyUnrequestedEffectError,
)
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.operators._engine import import_log, opt_ins
from trackly_provider.operators._engine.batch_window import Batch, BatchWindow
from trackly_provider.operators._engine.confirmations import (
    NOT_STORED_ERRORS,
    Confirmations,
    unknown_outcome_result,
)
from trackly_provider.operators._engine.fingerprints import Fingerprint
from trackly_provider.operators._engine.import_log import TaskLog
from trackly_provider.operators._engine.native_memory import release_freed_memory
from trackly_provider.operators._engine.records import (
    MissingColumnsError,
    Record,
    RowRejection,
    make_record_builder,
)
from trackly_provider.operators._engine.records import plan_columns as column_layout
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.entities import Entity
from trackly_provider.trackly_api.references import record_key
from trackly_provider.trackly_api.request_bodies import BodyBuffers
from trackly_provider.trackly_api.results import ImportResult

RESENT_CODES = frozenset({"save_error"})  # the server failed on that record alone: worth another try
TRIM_MEMORY_EVERY_BATCHES = 20

Unsaved = tuple[int, Record, "Fingerprint"]  # (row index, record, fingerprint or b"") of a save_error answer
RecordBuilder = Callable[[Sequence[Any]], "Record | RowRejection"]


@dataclass(frozen=True)
class RunArguments:
    """The operator's arguments a run reads, as rendered and checked (see the operator's docstring)."""

    sql: str
    parameters: Any
    batch_size: int
    max_in_flight: int
    dry_run: bool = False
    on_unknown_outcome: str = "fail"
    default_region: str | None = None
    rejects_table: str | None = None  # for the outcome's log line; the operator opens the table
    rejects_conn_id: str = ""
    sql_conn_id: str = ""  # for the first log line and the failure messages
    trackly_conn_id: str = ""
    opt_ins: Mapping[str, bool] = field(default_factory=dict)  # Entity.opt_ins turned on, by field


class ImportRun:
    """
    One import of a query's rows into one Trackly history endpoint, and the state its steps share.

    The operator creates it, opens the rejects table and the ledger, and calls, in order:

    1. ``start``: hand over the source's ``DbApiHook``, the ``TracklyHook``, the rejects table and
       the ledger (either may be None).
    2. ``import_rows``: stream the query; ``plan_columns`` maps its columns to record fields and
       gives the row builder; ``batches`` builds each row's record (a row the API would reject is
       counted as *rejected* and never sent), skips those the ledger holds as *confirmed* (counted
       as *duplicates*) or of *unknown outcome* (``Confirmations.screen``), and cuts
       ``batch_size`` records into a ``batch`` (encoded on the reading thread); ``send`` sends
       each (up to ``max_in_flight`` requests open, the first alone) and ``settle_answer`` counts
       each answer and records it in the ledger; then ``resend_save_errors`` sends again what
       Trackly failed to save. A dry run counts its batches (``count_unsent``) instead.
    3. ``finish``: settle the ledger; the failure message when records have an unknown outcome.

    ``summary()`` is the XCom ``return_value``, also when a step raised (with the counts reached).
    The state: ``tally`` (every count and the first errors), ``confirmations`` (the ledger's view,
    None without a ledger), ``rejects``, ``resend_codes`` and ``unsaved`` (the ``save_error``
    records waiting to be sent again).
    """

    source: DbApiHook
    trackly: TracklyHook

    def __init__(self, entity: Entity, arguments: RunArguments, log: TaskLog) -> None:
        self.entity = entity
        self.arguments = arguments
        self.log = log
        self.started = time.monotonic()  # the run's elapsed time includes opening the ledger
        self.tally = ImportTally(dry_run=arguments.dry_run, key_label=entity.key_label)
        self.tally.answer_counts = dict.fromkeys(entity.answer_counts, 0)
        self.tally.fields_missing.update({f.name: 0 for f in entity.fields if f.warn_when_missing})
        self.record_fields = opt_ins.record_fields(entity, arguments.opt_ins)
        self.must_be_zero = opt_ins.counts_that_must_be_zero(entity, arguments.opt_ins)
        self._warnings_logged: set[str] = set()
        self._missing_warned = False
        self.key_of = record_key(entity, None)  # keyed with the API key once start() has the hook
        self.rejects: RejectsTable | None = None
        self.confirmations: Confirmations | None = None
        self.unsaved: list[Unsaved] = []
        self.resend_codes: Collection[str] = ()  # set by import_rows: save_error when it can be resent
        self._buffers = BodyBuffers()
        self.progress = import_log.ProgressLog(log, self.started)  # a line every 30 s while reading

    def start(
        self,
        source: DbApiHook,
        trackly: TracklyHook,
        rejects: RejectsTable | None = None,
        ledger: ImportLedger | None = None,
    ) -> None:
        """Hand over the hooks, and the rejects table and the ledger once opened (None: not kept)."""
        self.source, self.trackly, self.rejects = source, trackly, rejects
        self.key_of = record_key(self.entity, trackly.settings.api_key)
        self.tally.error_sink = rejects.add if rejects is not None else None
        if ledger is not None:
            self.confirmations = Confirmations(
                ledger,
                self.entity,
                self.arguments.on_unknown_outcome,
                self.tally,
                self.key_of,
                trackly.settings.api_key,
            )

    def import_rows(self) -> None:
        """
        Read every row, send every record to send, and settle every answer (a dry run checks the key
        first and sends nothing). On a failure, the batches in flight are counted before it is raised.

        :raises TracklyMissingSourceObjectError: the query names a table or column the source does
            not have; its message names the SQL connection, the day or parameters and how to fix it.
        """
        arguments = self.arguments
        if self.tally.dry_run:
            self.trackly.check_access()
        stall = self.trackly.settings.longest_request_seconds  # the read may wait this long for a place
        self.announce_opt_ins(stall)
        try:
            self.stream_rows(stall)
        except TracklyMissingSourceObjectError as exc:  # only the source's driver errors are these
            message = import_log.missing_source_object(exc, arguments.sql_conn_id, arguments.parameters)
            raise TracklyMissingSourceObjectError(message, exc.kind, exc.name) from None
        self.warn_fields_missing()

    def stream_rows(self, stall: float) -> None:
        """``import_rows``' read, send and settle (``stall``: the longest wait for a place, seconds)."""
        arguments, confirmations = self.arguments, self.confirmations
        with stream_query(
            self.source, arguments.sql, arguments.parameters, arguments.batch_size, max_stall_seconds=stall
        ) as (columns, chunks):
            build = self.plan_columns(columns)
            if confirmations is not None:
                import_log.ledger_read(self.log, confirmations.ledger)
            self.resend_codes = RESENT_CODES if self.trackly.settings.retry.max_attempts > 1 else ()
            before_send = confirmations.record_sending if confirmations is not None else None
            with (
                confirmations.forgetting_not_sent() if confirmations is not None else nullcontext(),
                BatchWindow(self.send, self.settle_answer, arguments.max_in_flight, before_send) as window,
            ):
                submit = self.count_unsent if self.tally.dry_run else window.submit
                try:
                    for batch in self.batches(chunks, build):
                        submit(batch)
                except BaseException:
                    self.count_in_flight(window)
                    raise
                window.drain()
                # Inside the ledger's scope: a resend that certainly stored nothing leaves it too.
                self.resend_save_errors()

    def warn_fields_missing(self) -> None:
        """Once per run, also one that stopped early: the records sent without ``signup_date``..."""
        if not self._missing_warned:
            self._missing_warned = True
            import_log.fields_missing(self.log, self.entity, self.tally)

    def plan_columns(self, columns: Sequence[str]) -> RecordBuilder:
        """
        Map the query's columns to the entity's fields (columns it does not use are logged); return
        the function that turns a row into a record, or into the reason it is rejected.

        :raises TracklySourceError: a required column is missing, saying how to alias it.
        """
        try:
            layout = column_layout(columns, self.entity)
        except MissingColumnsError as exc:
            raise TracklySourceError(str(exc)) from None
        if layout.ignored:
            self.log.warning("Ignoring column(s) Trackly does not use: %s", ", ".join(layout.ignored))
        return make_record_builder(
            layout,
            self.entity,
            self.arguments.default_region,
            key_of=self.key_of,
            constants=self.record_fields,
            missing=self.tally.fields_missing,
        )

    def announce_opt_ins(self, stall: float) -> None:
        """
        Warn of each opt-in turned on (``opt_ins``), with the number of rows the query returns now
        (a ``COUNT(*)`` of it; not counted when that fails) and the cost where it has a price.
        """
        chosen = opt_ins.turned_on(self.entity, self.arguments.opt_ins)
        if not chosen:
            return
        arguments = self.arguments
        try:
            rows: int | None = count_rows(
                self.source, arguments.sql, arguments.parameters, max_stall_seconds=stall
            )
        except TracklyError as exc:
            self.log.warning(
                "Could not count the query's rows first (%s); announcing without a count.", type(exc).__name__
            )
            rows = None
        for opt_in in chosen:
            self.log.warning(opt_ins.announcement(self.entity, opt_in, rows, self.tally.dry_run))

    def batches(self, chunks: Iterable[Sequence[Sequence[Any]]], build: RecordBuilder) -> Iterator[Batch]:
        """
        The rows read, chunk by chunk, as batches of ``batch_size`` records to send (the last may be
        shorter), in query order; each batch is made as soon as it is full.

        Every row read is counted, then built into a record (``build``, from ``plan_columns``). A
        row the API would reject is counted as an error (``RowRejection``), and a record the ledger
        leaves out (``Confirmations.screen``, a chunk at a time) as a duplicate or an unknown
        outcome; neither is sent.
        """
        tally, size = self.tally, self.arguments.batch_size
        screen = self.confirmations.screen if self.confirmations is not None else None
        records: list[Record] = []
        row_indexes: list[int] = []
        prints: list[Fingerprint] = []
        progress = self.progress
        for chunk in chunks:
            progress.tick(tally)
            first_index = tally.rows_read
            tally.rows_read += len(chunk)
            read: list[Record] = []
            read_indexes: list[int] = []
            for index, record in enumerate(map(build, chunk), first_index):
                if type(record) is RowRejection:
                    tally.reject_row(index, record)
                else:
                    read.append(record)  # type: ignore[arg-type]
                    read_indexes.append(index)
            if screen is not None and read:
                read_indexes, read, read_prints = screen(read_indexes, read)
                prints += read_prints
            records += read
            row_indexes += read_indexes
            while len(records) >= size:  # each full batch at once: its records are freed, it holds their body
                yield self.encoded(records[:size], row_indexes[:size], prints[:size] or None, self._buffers)
                del records[:size], row_indexes[:size], prints[:size]
        if records:
            yield self.encoded(records, row_indexes, prints or None, self._buffers)

    def encoded(
        self,
        records: Sequence[Record],
        row_indexes: list[int],
        prints: list[Fingerprint] | None,
        buffers: BodyBuffers | None = None,
    ) -> Batch:
        """``records`` as a batch of this entity: its body key, and each record named by ``key_of``."""
        return Batch.encoded(
            records,
            row_indexes,
            fingerprints=prints,
            buffers=buffers,
            key_of=self.key_of,
            body_key=self.entity.body_key,
        )

    def send(self, batch: Batch) -> ImportResult:
        """
        One request (on a worker thread, the first on the reading thread): Trackly's answer.

        A request without an answer, or with one that cannot be trusted, of an entity Trackly does
        not deduplicate is a result whose records all have an unknown outcome. A request that
        certainly stored nothing (``NOT_STORED_ERRORS``) leaves the ledger if the import fails.

        :raises TracklyResponseError: an answer that cannot be trusted, for an entity Trackly
            deduplicates (a rerun is safe), saying so.
        """
        entity = self.entity
        try:
            return self.trackly.import_encoded(entity, batch.body, len(batch), self.must_be_zero)
        except TracklyUnrequestedEffectError as exc:  # from the answer: the opt-in's own words
            result = exc.result  # the answer to the whole batch (not to a part the hook resent)
            if isinstance(result, ImportResult) and result.total == len(batch):
                return result  # settle counts it, then stops the import
            raise TracklyUnrequestedEffectError(
                opt_ins.unrequested_text(entity, exc.count_name, exc.shown), exc.count_name, exc.shown
            ) from None
        except TracklyOutcomeUnknownError as exc:
            return unknown_outcome_result(len(batch), str(exc))
        except NOT_STORED_ERRORS:
            if self.confirmations is not None and not entity.deduplicated:
                self.confirmations.note_not_sent(batch)  # left out of the ledger once every thread is done
            raise
        except TracklyResponseError as exc:
            if entity.deduplicated:  # sending again is safe: a rerun (or Airflow's retry) does
                raise TracklyResponseError(f"{exc} Rerunning is safe: {entity.resend_effect}.") from None
            self.log.warning(
                "Trackly's answer to %s of %s from row %d cannot be trusted; their outcome is unknown: %s",
                import_log.plural(len(batch), "record"),
                entity.name,
                batch.row_indexes[0],
                exc,
            )
            return unknown_outcome_result(len(batch), f"an answer that cannot be trusted: {exc}")

    def settle_answer(self, batch: Batch, result: ImportResult) -> None:
        """
        An answered batch, on the reading thread: settle it, keep its ``save_error`` records to send
        again at the end, give its body's buffer back; log progress and trim memory now and then.
        """
        try:
            to_resend = self.settle(batch, result, self.resend_codes)
        except TracklyUnrequestedEffectError:
            self.give_back(batch)
            raise
        if to_resend:
            records = orjson.loads(batch.body)[self.entity.body_key]
            prints = batch.fingerprints
            self.unsaved.extend(
                (batch.row_indexes[i], records[i], prints[i] if prints else b"") for i in to_resend
            )
        self.give_back(batch)
        if self.tally.batches % TRIM_MEMORY_EVERY_BATCHES == 0:
            release_freed_memory()

    def settle(self, batch: Batch, result: ImportResult, resend_codes: Collection[str] = ()) -> list[int]:
        """
        Count an answered batch and record in the ledger what Trackly confirmed; return the
        positions in the batch of the errors with a code in ``resend_codes``, left uncounted.
        """
        to_resend = self.tally.add_batch(result, batch.row_indexes, batch.message_ids, resend_codes)
        if self.confirmations is not None:
            self.confirmations.record_answer(batch, result)
        for warning in result.warnings:
            if warning not in self._warnings_logged:
                self._warnings_logged.add(warning)
                self.log.warning("Trackly warned: %s", warning)
        unrequested = opt_ins.unrequested(self.entity, self.arguments.opt_ins, result)
        if unrequested is not None:  # counted first: every answer received is in the summary
            raise TracklyUnrequestedEffectError(unrequested)
        return to_resend

    def count_unsent(self, batch: Batch) -> None:
        """A dry run's batch: counted as records a real run would send, and not sent."""
        self.tally.add_unsent(len(batch))
        self.give_back(batch)

    def give_back(self, batch: Batch) -> None:
        """Return the batch's pooled buffer once its body is read no more."""
        if batch.buffer is not None:
            self._buffers.give_back(batch.buffer)

    def count_in_flight(self, window: BatchWindow) -> None:
        """
        After reading or sending failed: count the batches still in flight as they answer, so that
        the counts (and the ledger) hold every answer received. Their own failures are only logged:
        the first error is the one raised.
        """
        try:
            window.drain()
        except Exception as exc:
            self.log.warning("A batch in flight failed too (%s) once the import stopped.", type(exc).__name__)

    def resend_save_errors(self) -> None:
        """
        Send again, after the rest, the records Trackly failed to save (``save_error``).

        Up to the connection's ``max_attempts`` in all, with its backoff: the answer said these
        records were not stored, so this is safe for every entity. Only records that fail every
        time count as errors.
        """
        unsaved = self.unsaved
        if not unsaved:
            return
        trackly, tally, confirmations = self.trackly, self.tally, self.confirmations
        failed_before, size = tally.errors_by_code["save_error"], self.arguments.batch_size
        attempts = trackly.settings.retry.max_attempts
        pending, attempt = unsaved, 1
        while pending and attempt < attempts:
            attempt += 1
            trackly.wait_before_retry(attempt - 1)
            resend_codes = RESENT_CODES if attempt < attempts else frozenset()
            still_unsaved = []
            for start in range(0, len(pending), size):
                part = pending[start : start + size]
                prints = [fingerprint for _, _, fingerprint in part] if confirmations else None
                records = [record for _, record, _ in part]
                batch = self.encoded(records, [index for index, _, _ in part], prints)
                if confirmations is not None:
                    confirmations.record_sending(batch)
                still_unsaved += [part[i] for i in self.settle(batch, self.send(batch), resend_codes)]
            pending = still_unsaved
        failing = tally.errors_by_code["save_error"] - failed_before
        import_log.resent(self.log, len(unsaved), failing, attempt)

    def finish(self) -> str | None:
        """
        Once every batch is answered: settle in the ledger what this run resolved of earlier runs';
        return the failure message when records have an unknown outcome, else None.
        """
        confirmations = self.confirmations
        if confirmations is None:
            return None
        confirmations.finish()
        return confirmations.unknown_message(self.entity.name) if confirmations.unknown_count else None

    def summary(self) -> dict[str, Any]:
        """
        The XCom ``return_value``: the tally's summary, the ledger's part when there is one, and
        ``rejects_not_written`` when the rejects table could not take every rejected row.
        """
        summary = self.tally.as_xcom()
        entity, tally = self.entity, self.tally
        if entity.updated_count is not None:
            name, created = entity.updated_count
            summary[name] = tally.success_count - tally.answer_counts.get(created, 0)
        records = tally.records_to_send if tally.dry_run else tally.records_sent
        summary.update(opt_ins.summary(entity, self.arguments.opt_ins, records))
        if self.confirmations is not None:
            summary["ledger"] = self.confirmations.summary()
        if self.rejects is not None and self.rejects.rows_not_written:
            summary["rejects_not_written"] = self.rejects.rows_not_written
        return summary

    def stopped_early_summary(self, exc: BaseException) -> dict[str, Any]:
        """
        The summary of a run that ``exc`` ended early, with ``failed``: the exception's type name
        alone (its text may quote a source value); the counts reached are logged as a warning.
        """
        summary = self.summary()
        summary["failed"] = type(exc).__name__
        import_log.stopped_early(self.log, summary["failed"], self.tally)
        self.warn_fields_missing()
        return summary

    def log_outcome(self) -> None:
        """The run's counts, elapsed time, rejects table and first errors, in the task log."""
        arguments = self.arguments
        import_log.outcome(
            self.log,
            self.tally,
            self.entity.name,
            time.monotonic() - self.started,
            arguments.parameters,
            self.rejects,
            (arguments.rejects_table, arguments.rejects_conn_id),
        )

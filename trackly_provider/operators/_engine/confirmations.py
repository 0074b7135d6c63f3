"""What the ledger knows of each record of one import, and what the import's answers add to it."""

from __future__ import annotations

import bisect
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from trackly_provider.database.ledger import UNKNOWN, ImportLedger, Sent
from trackly_provider.exceptions import TracklyApiError, TracklyConfigError, TracklyTransientError
from trackly_provider.operators._engine.batch_window import Batch
from trackly_provider.operators._engine.fingerprints import Fingerprint, fingerprint_text, fingerprints_for
from trackly_provider.operators._engine.records import Record, RowRejection
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.entities import Entity
from trackly_provider.trackly_api.results import ImportResult, RecordError

OUTCOME_UNKNOWN = "outcome_unknown"  # sent, no answer: Trackly may or may not have stored the record
UNKNOWN_OUTCOME_CHOICES = ("fail", "resend", "assume_imported")
REPORTED_FINGERPRINTS = 20
SHOWN_REQUESTS = 10
# What the hook raises for a request of an entity Trackly does not deduplicate only when that request
# stored nothing: every attempt failed before it reached Trackly (TracklyRetriesExhaustedError, a
# 429's Retry-After too long), a configuration no request got past (a refused certificate, a proxy's
# 407), or a whole-request error answer (4xx). Any fault after which it may have stored records is
# TracklyOutcomeUnknownError instead (hooks/trackly.py, _send).
log = logging.getLogger(__name__)
NOT_STORED_ERRORS = (TracklyTransientError, TracklyConfigError, TracklyApiError)
EARLIER_UNKNOWN = "an earlier run got no answer for this record; not sent again (see on_unknown_outcome)"


def unknown_outcome_result(record_count: int, reason: str) -> ImportResult:
    """A batch whose request got no trustworthy answer: every record's outcome is unknown."""
    error = f"no trustworthy answer from Trackly ({reason}); it may or may not have stored this record"
    return ImportResult(
        0, record_count, 0, [RecordError(i, OUTCOME_UNKNOWN, error) for i in range(record_count)]
    )


class Confirmations:
    """
    Checks each valid record against the ledger before it is sent, and records each batch in it.

    A record the ledger holds as confirmed is left out and counted as a duplicate. One an earlier
    run sent without an answer (an unknown outcome) is sent again when Trackly deduplicates the
    entity; otherwise it is left out and counted as an ``outcome_unknown`` error, unless the user
    chose ``resend`` or ``assume_imported``. A dry run reads the ledger and writes nothing.
    """

    def __init__(
        self,
        ledger: ImportLedger,
        entity: Entity,
        on_unknown: str,
        tally: ImportTally,
        key_of: Callable[[Mapping[str, Any]], str | None] | None = None,
        secret: str | None = None,
    ) -> None:
        self.ledger = ledger
        self._key_of = key_of or (lambda record: record[entity.key_field])  # references.record_key
        self._deduplicated = entity.deduplicated
        self._on_unknown = "resend" if entity.deduplicated else on_unknown
        self._tally = tally
        self._write = not tally.dry_run
        # Records holding a phone number are fingerprinted with a keyed hash (the API key): never reversible.
        key = secret if entity.key_is_personal else None
        self._fingerprints = fingerprints_for(ledger.fingerprint_width, key, ledger.confirmed_set)
        # id() of a batch in flight -> its ledger row's batch_id and the records it holds
        self._ledger_rows: dict[int, tuple[str, list[Sent]]] = {}
        self._not_sent: list[Batch] = []  # batches whose request certainly stored nothing (any thread)
        self.skipped_confirmed = 0
        self.unknown_examples: list[tuple[int, Fingerprint]] = []  # (row index, fingerprint), the lowest rows
        self.unknown_count = 0  # records of this run whose outcome is unknown

    def screen(
        self, indexes: list[int], records: list[Record]
    ) -> tuple[list[int], list[Record], list[Fingerprint]]:
        """
        The records (rows ``indexes``) to send, with their rows and fingerprints: those the ledger
        does not leave out of this run. It leaves out a record confirmed by an earlier run (counted
        as a duplicate), and one of unknown outcome not to be sent again (counted as an
        ``outcome_unknown`` error). Fingerprinted and looked up a batch at a time.
        """
        prints, confirmed = self._fingerprints.of_batch(records)
        if not self.ledger.has_unknown:
            if not confirmed.any():  # a first import
                return indexes, records, prints
            if confirmed.all():  # a rerun of a finished day
                self.skipped_confirmed += len(records)
                self._tally.duplicates_skipped += len(records)
                return [], [], []
        kept: tuple[list[int], list[Record], list[Fingerprint]] = ([], [], [])
        for index, record, fingerprint, done in zip(
            indexes, records, prints, confirmed.tolist(), strict=True
        ):
            if not self._leaves_out(index, record, fingerprint, self.ledger.state_of(fingerprint, done)):
                kept[0].append(index)
                kept[1].append(record)
                kept[2].append(fingerprint)
        return kept

    def _leaves_out(self, index: int, record: Record, fingerprint: Fingerprint, state: str | None) -> bool:
        """True when the ledger's ``state`` of the record leaves it out of this run (it is counted)."""
        if state is None or (state == UNKNOWN and self._on_unknown == "resend"):
            return False
        message_id = self._key_of(record)
        if state == UNKNOWN and self._on_unknown == "fail":
            self._note_unknown(index, fingerprint)
            self._tally.reject_row(index, RowRejection(OUTCOME_UNKNOWN, EARLIER_UNKNOWN, message_id))
            return True
        if state == UNKNOWN and self._write:  # assume_imported: the user checked that Trackly has it
            self.ledger.assume_imported((fingerprint, index, message_id))
        self.skipped_confirmed += 1
        self._tally.duplicates_skipped += 1
        return True

    def record_sending(self, batch: Batch) -> None:
        """Before a batch is sent: its records are ``unknown`` until Trackly answers."""
        if self._write and batch.fingerprints:
            sent: list[Sent] = list(
                zip(batch.fingerprints, batch.row_indexes, batch.message_ids, strict=True)
            )
            self._ledger_rows[id(batch)] = (self.ledger.record_sending(sent), sent)

    def record_answer(self, batch: Batch, result: ImportResult) -> None:
        """After the answer: stored or duplicate is confirmed, rejected forgotten, no answer stays unknown."""
        unknown = {error.index for error in result.errors if error.code == OUTCOME_UNKNOWN}
        rejected = {error.index for error in result.errors} - unknown
        if result.unlisted_errors:  # which of the records not listed failed is not known: all stay unknown
            unknown.update(position for position in range(len(batch)) if position not in rejected)
        if not self._deduplicated:  # a record Trackly deduplicates is simply sent again by a rerun
            prints = batch.fingerprints or [b""] * len(batch)
            for position in sorted(unknown):
                self._note_unknown(batch.row_indexes[position], prints[position])
        row = self._ledger_rows.pop(id(batch), None)
        if row is not None:
            batch_id, sent = row
            if unknown or rejected:
                answers: list[bool | None] = [
                    None if p in unknown else p not in rejected for p in range(len(batch))
                ]
            else:
                answers = [True] * len(batch)  # every record stored: the common answer, built at once
            self.ledger.settle(batch_id, sent, answers)

    def note_not_sent(self, batch: Batch) -> None:
        """A batch whose request certainly stored nothing (``NOT_STORED_ERRORS``); from any thread."""
        self._not_sent.append(batch)

    @contextlib.contextmanager
    def forgetting_not_sent(self) -> Iterator[None]:
        """
        Around the sending: when it fails, the batches noted as not sent leave the ledger (as if
        rejected), so that a rerun sends them; never ``unknown``, since nothing of them was stored.
        Entered before the batch window, so it runs once every sending thread has stopped.
        """
        try:
            yield
        except BaseException:
            for batch in self._not_sent:
                row = self._ledger_rows.pop(id(batch), None)
                if row is None:
                    continue
                batch_id, sent = row
                try:
                    self.ledger.settle(batch_id, sent, [False] * len(sent), after_failure=True)
                except Exception as exc:  # the failure that got here is the one to report
                    log.warning(
                        "Could not take %d records Trackly never received out of ledger row %s (%s); "
                        "they stay of unknown outcome.",
                        len(sent),
                        batch_id,
                        type(exc).__name__,
                    )
            self._not_sent.clear()
            raise

    def finish(self) -> None:
        """Once every batch is answered: settle in the ledger what this run resolved of earlier runs'."""
        if self._write:
            self.ledger.finish()

    def _note_unknown(self, row_index: int, fingerprint: Fingerprint) -> None:
        """Count a record of unknown outcome; keep the lowest-indexed ones for the failure message."""
        self.unknown_count += 1
        bisect.insort(self.unknown_examples, (row_index, fingerprint))
        del self.unknown_examples[REPORTED_FINGERPRINTS:]

    def summary(self) -> dict[str, object]:
        """The ledger's part of the XCom summary."""
        return {
            "table": self.ledger.table,
            "partition": self.ledger.partition,
            "confirmed_before": self.ledger.confirmed_before,
            "unknown_before": self.ledger.unknown_before,
            "skipped_confirmed": self.skipped_confirmed,
            "lock_waited_seconds": round(self.ledger.lock.waited, 1) if self.ledger.lock else 0.0,
        }

    def unknown_message(self, entity_name: str) -> str:
        """The failure message when records have an unknown outcome: what happened and what to do."""
        requests = self.ledger.unknown_requests()
        in_ledger = sum(count for _, _, count in requests)
        listed = "; ".join(
            f"{batch_id} (from row {row}, {count} records)"
            for batch_id, row, count in requests[:SHOWN_REQUESTS]
        )
        prints = ", ".join(fingerprint_text(fingerprint) for _, fingerprint in self.unknown_examples)
        rows = ", ".join(str(row) for row, _ in self.unknown_examples)
        return (
            f"{self.unknown_count} {entity_name} records have an unknown outcome: their request got no "
            "answer (connection lost, timeout after sending, or a 5xx), or an answer that did not say "
            "which of them failed or contradicted itself, so Trackly may or may not have stored them. "
            f"They were not sent again: Trackly does not skip {entity_name} it already has, so "
            f"sending them twice could count them twice. First rows: {rows}; fingerprints: "
            f"{prints}. Ledger table {self.ledger.table}, partition_key '{self.ledger.partition}', "
            f"state '{UNKNOWN}': {in_ledger} records in {len(requests)} request(s), the first by "
            f"batch_id: {listed}. Check in Trackly whether they were stored (their message ids are "
            "in the rows' message_ids), then rerun with on_unknown_outcome='assume_imported' if they "
            "were, or on_unknown_outcome='resend' if they were not; or settle one request at a time "
            "by setting its row's state to 'confirmed' (stored) or deleting its row (not stored). "
            "Every other record was imported and is counted in XCom 'return_value'."
        )

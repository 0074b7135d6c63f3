"""Running totals of an import, kept so that every row read is imported, a duplicate, or an error."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from trackly_provider.operators._engine.records import RowRejection
from trackly_provider.trackly_api.redact import redact_phone_numbers
from trackly_provider.trackly_api.results import ImportResult

MAX_REPORTED_ERRORS = 100
MAX_REPORTED_ID_CHARS = 255  # a message id in XCom and the log, as in the rejects table
UNATTRIBUTED = "unattributed"  # errors the API counted without saying which record failed

ErrorSink = Callable[[int, "str | None", str, str], None]  # (row index, message id, code, error text)


@dataclass
class ImportTally:
    """Counts and the first errors in query order, with indexes as positions in the query result."""

    rows_read: int = 0
    success_count: int = 0
    error_count: int = 0
    duplicates_skipped: int = 0
    batches: int = 0
    records_sent: int = 0  # records in requests sent, answered or not (a record sent again counts again)
    dry_run: bool = False
    records_to_send: int = 0  # a dry run's valid records, which a real run would send
    errors_by_code: Counter[str] = field(default_factory=Counter)
    # The entity's other counts (Entity.answer_counts: contacts_created...), summed over its answers.
    answer_counts: dict[str, int] = field(default_factory=dict)
    # Records sent without a field declared warn_when_missing (signup_date), by field.
    fields_missing: Counter[str] = field(default_factory=Counter)
    key_label: str = "message_id"  # the name of a record's key in errors (Entity.key_label)
    error_sink: ErrorSink | None = None  # sees every attributed error, such as a rejects table's add
    # A max-heap (by negated index) of the lowest-indexed errors seen so far, whatever order they came in.
    _lowest_errors: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def _note_error(self, row_index: int, message_id: str | None, code: str, error: str) -> None:
        if self.error_sink is not None:
            self.error_sink(row_index, message_id, code, error)
        if message_id is not None and len(message_id) > MAX_REPORTED_ID_CHARS:  # a 6 MB id, say
            message_id = message_id[: MAX_REPORTED_ID_CHARS - 1] + "\N{HORIZONTAL ELLIPSIS}"
        entry = (-row_index, {"index": row_index, self.key_label: message_id, "code": code, "error": error})
        if len(self._lowest_errors) < MAX_REPORTED_ERRORS:
            heapq.heappush(self._lowest_errors, entry)
        elif row_index < -self._lowest_errors[0][0]:
            heapq.heapreplace(self._lowest_errors, entry)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The first (at most 100) errors in query-result order."""
        return [entry for _, entry in sorted(self._lowest_errors, key=lambda item: -item[0])]

    def reject_row(self, row_index: int, rejection: RowRejection) -> None:
        """Count a row that was never sent because the API would reject it."""
        self.error_count += 1
        self.errors_by_code[rejection.code] += 1
        self._note_error(row_index, rejection.message_id, rejection.code, rejection.error)

    def add_batch(
        self,
        result: ImportResult,
        row_indexes: Sequence[int],
        message_ids: Sequence[str],
        resend_codes: Collection[str] = (),
    ) -> list[int]:
        """
        Count one answered batch; its error indexes are mapped back to query-result positions.

        Errors with a code in ``resend_codes`` are not counted: their positions in the batch are
        returned, for the caller to send again and count then.
        """
        self.batches += 1
        self.records_sent += len(row_indexes)
        self.success_count += result.success_count
        self.duplicates_skipped += result.duplicates_skipped
        for name, value in result.counts.items():
            self.answer_counts[name] = self.answer_counts.get(name, 0) + value
        to_resend = [error.index for error in result.errors if error.code in resend_codes]
        self.error_count += result.error_count - len(to_resend)
        if result.unlisted_errors:
            self.errors_by_code[UNATTRIBUTED] += result.unlisted_errors
        for error in result.errors:
            if error.code in resend_codes:
                continue
            self.errors_by_code[error.code] += 1
            text = redact_phone_numbers(error.error)
            self._note_error(row_indexes[error.index], message_ids[error.index], error.code, text)
        return to_resend

    def add_unsent(self, records: int) -> None:
        """Count valid records a dry run does not send."""
        self.records_to_send += records

    @property
    def confirmed(self) -> int:
        """Rows whose outcome is known: imported, duplicate, or error."""
        return self.success_count + self.error_count + self.duplicates_skipped

    @property
    def error_rate(self) -> float:
        return self.error_count / self.rows_read if self.rows_read else 0.0

    def as_xcom(self) -> dict[str, Any]:
        """The JSON-serialisable summary pushed to XCom: the counts, the batches and the first errors."""
        summary = {key: value for key, value in self.counts().items() if key != "records_sent"}
        summary.update(self.answer_counts)
        summary.update({f"records_without_{name}": n for name, n in sorted(self.fields_missing.items())})
        summary.update(batches=self.batches, errors=self.errors)
        if self.dry_run:
            summary["records_to_send"] = self.records_to_send
        return summary

    def counts(self) -> dict[str, Any]:
        """The totals alone, never a record's values: for lineage facets and asset events."""
        return {
            "rows_read": self.rows_read,
            "records_sent": self.records_sent,
            "success_count": self.success_count,
            "duplicates_skipped": self.duplicates_skipped,
            "error_count": self.error_count,
            "errors_by_code": dict(sorted(self.errors_by_code.items())),
            "dry_run": self.dry_run,
        }

    def describe_errors(self, limit: int = 5) -> str:
        """The first errors as 'row N (message_id X): code', for logs and failure messages."""
        label = self.key_label
        return "; ".join(f"row {e['index']} ({label} {e[label]}): {e['code']}" for e in self.errors[:limit])

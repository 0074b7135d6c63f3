"""Typed values for what the history endpoints answer, and their strict parsing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from trackly_provider.exceptions import TracklyResponseError, TracklyUnrequestedEffectError
from trackly_provider.trackly_api.iso8601 import utc_iso
from trackly_provider.trackly_api.redact import server_code, server_text


@dataclass(frozen=True)
class RecordError:
    """One rejected record: its position in the request's array, the API's code and text."""

    index: int
    code: str
    error: str


@dataclass(frozen=True)
class ImportResult:
    """
    The counts of one import request (``POST /api/v2/history/<entity>``, ``/contacts/bulk``).

    ``counts``: the entity's other counts (``Entity.answer_counts``: ``contacts_created``...);
    ``warnings``: the answer's warnings, filtered (``redact.server_text``).
    """

    success_count: int
    error_count: int
    duplicates_skipped: int
    errors: list[RecordError] = field(default_factory=list)
    counts: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return self.success_count + self.error_count + self.duplicates_skipped

    @property
    def unlisted_errors(self) -> int:
        """Errors the answer counted but did not list (it lists at most 100)."""
        return self.error_count - len(self.errors)

    def __add__(self, other: ImportResult) -> ImportResult:
        """Combine two results whose error indexes already refer to the same array."""
        return ImportResult(
            self.success_count + other.success_count,
            self.error_count + other.error_count,
            self.duplicates_skipped + other.duplicates_skipped,
            [*self.errors, *other.errors],
            {
                name: self.counts.get(name, 0) + other.counts.get(name, 0)
                for name in {**self.counts, **other.counts}
            },
            self.warnings + tuple(w for w in other.warnings if w not in self.warnings),
        )

    def shifted(self, offset: int) -> ImportResult:
        """The same result with every error index moved by ``offset`` (for a split batch's second half)."""
        errors = [RecordError(e.index + offset, e.code, e.error) for e in self.errors]
        return ImportResult(
            self.success_count, self.error_count, self.duplicates_skipped, errors, self.counts, self.warnings
        )


def encode_records(records: Sequence[Mapping[str, Any]], body_key: str = "records") -> bytes:
    """
    The request body of an import: ``{"<body_key>": [...]}`` (``Entity.body_key``), compact JSON, UTF-8.

    Datetimes are written as ISO 8601 with their offset; naive ones as UTC (``+00:00``).
    """
    return orjson.dumps({body_key: list(records)}, default=encode_value, option=orjson.OPT_NAIVE_UTC)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as it is written in a request body (for its size: ``Entity.max_record_bytes``)."""
    return orjson.dumps(record, default=encode_value, option=orjson.OPT_NAIVE_UTC)


def encode_value(value: Any) -> Any:
    """What orjson does not write itself: datetime subclasses such as ``pendulum.DateTime``."""
    if isinstance(value, datetime):
        return utc_iso(value)
    raise TypeError(f"a record value of type {type(value).__name__} cannot be sent as JSON")


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name, None if name in ("success_count", "error_count") else 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TracklyResponseError(f"Trackly answered 200 without a valid '{name}' count; cannot trust it.")
    return value


def parse_import_result(
    body: Any, records_sent: int, answer_counts: Sequence[str] = (), must_be_zero: Sequence[str] = ()
) -> ImportResult:
    """
    Parse and check a 200 body; an answer that contradicts itself raises ``TracklyResponseError``.

    ``answer_counts`` (``Entity.answer_counts``) are read too, 0 when absent, each at most
    ``success_count``: ``contacts_created`` counts contacts among those stored. An error entry's
    other keys (a contact error's ``phone_number``) are dropped here, unread.

    A count in ``must_be_zero`` (what the request did not ask for: ``journeys_enrolled`` without
    ``use_journeys``) that is present and anything but 0 raises ``TracklyUnrequestedEffectError``
    before any other check, whatever else the answer holds; its ``count_name`` and ``shown`` (the
    value, or "a value that is not a count") say what came back, and its ``result`` is the answer
    parsed when it can be trusted otherwise (so that what Trackly did is counted), else None.

    ``errors`` must be a list (or absent) of objects, each naming a distinct record by an
    ``index`` within the request's array (the API page: indexes refer to that request's
    records); it lists no more entries than ``error_count``, and the three counts add up to
    ``records_sent``. Codes and texts are the server's words, filtered (``redact.server_code``,
    ``redact.server_text``) before anything else sees them.
    """
    if not isinstance(body, dict):
        raise TracklyResponseError("Trackly answered 200 with a body that is not a JSON object.")
    for name in must_be_zero:
        value = body.get(name, 0)
        if isinstance(value, bool) or value != 0:
            readable = isinstance(value, int) and not isinstance(value, bool)
            shown = str(value) if readable else "a value that is not a count"
            try:
                result = _parse(body, records_sent, answer_counts) if readable else None
            except TracklyResponseError:
                result = None
            raise TracklyUnrequestedEffectError(
                f"Trackly answered {name} = {shown} although the request asked for none.", name, shown, result
            )
    return _parse(body, records_sent, answer_counts)


def _parse(body: dict[str, Any], records_sent: int, answer_counts: Sequence[str]) -> ImportResult:
    listed = body.get("errors")
    if listed is None:
        listed = []
    if not isinstance(listed, list):
        raise TracklyResponseError(
            f"Trackly answered 200 with 'errors' as a JSON {type(listed).__name__}, not a list; "
            "cannot tell which records failed."
        )
    errors: list[RecordError] = []
    seen: set[int] = set()
    for item in listed:
        if not isinstance(item, dict):
            raise TracklyResponseError("Trackly answered 200 with an error entry that is not a JSON object.")
        index = item.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < records_sent:
            raise TracklyResponseError(
                f"Trackly answered 200 with an error entry whose index is outside 0..{records_sent - 1}."
            )
        if index in seen:
            raise TracklyResponseError(
                f"Trackly answered 200 listing the record at index {index} twice among its errors; "
                "cannot tell which records failed."
            )
        seen.add(index)
        code = server_code(item["code"]) if item.get("code") else "unknown"
        errors.append(RecordError(index, code, server_text(item.get("error") or "")))
    success_count = _count(body, "success_count")
    counts = {name: _count(body, name) for name in answer_counts}
    for name, value in counts.items():
        if value > success_count:
            raise TracklyResponseError(
                f"Trackly's counts do not add up: '{name}' is {value} but only {success_count} records "
                "were stored. Not trusting this response; the batch is not counted."
            )
    result = ImportResult(
        success_count,
        _count(body, "error_count"),
        _count(body, "duplicates_skipped"),
        errors,
        counts,
        _warnings(body.get("warnings")),
    )
    if result.unlisted_errors < 0:
        raise TracklyResponseError(
            f"Trackly answered 200 listing {len(errors)} errors but counting {result.error_count}."
        )
    if result.total != records_sent:
        raise TracklyResponseError(
            f"Trackly's counts do not add up: sent {records_sent} records, got success "
            f"{result.success_count} + errors {result.error_count} + duplicates "
            f"{result.duplicates_skipped} = {result.total}. Not trusting this response; the batch "
            "is not counted."
        )
    return result


MAX_WARNINGS_KEPT = 10


def _warnings(listed: Any) -> tuple[str, ...]:
    """An answer's ``warnings``, each filtered (``server_text``); anything but a list of texts is ignored."""
    if not isinstance(listed, list):
        return ()
    kept: list[str] = []
    for item in listed[:MAX_WARNINGS_KEPT]:
        text = server_text(item) if isinstance(item, str) else ""
        if text and text not in kept:
            kept.append(text)
    return tuple(kept)

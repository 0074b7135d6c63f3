"""Turn SQL rows into Trackly history records, and reject the ones the API would reject (pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import orjson

from trackly_provider.trackly_api.entities import CLICKS, Entity, Field
from trackly_provider.trackly_api.limits import MAX_BODY_BYTES, RECORD_TOO_LARGE
from trackly_provider.trackly_api.values import CONVERTERS, is_blank, phone_number, why_invalid

Record: TypeAlias = "dict[str, str | datetime | float | int | bool]"
"""A record: ids as text, timestamps as ``datetime`` (``utc_moment``), encoded by ``encode_records``."""


# Phone numbers repeat (a contact receives and clicks many messages): their E.164 form is kept
# for this many texts per field, about 2 MiB at most, and found again in 40 ns instead of 0.4 µs.
PHONE_MEMO_SIZE = 16_384
# Text longer than this may not fit a request body; shorter text always does (6 bytes a character
# at most once encoded, as \u escapes), so only longer values are measured.
LONG_TEXT_CHARS = 100_000
MAX_RECORD_BYTES = MAX_BODY_BYTES - 1_000  # the body's own bytes and the record's other fields


class MissingColumnsError(ValueError):
    """The query does not return every required column."""


@dataclass(frozen=True)
class ColumnLayout:
    """Where each record field sits in a row, and which columns are ignored."""

    positions: dict[str, int]
    ignored: list[str]


@dataclass(frozen=True)
class RowRejection:
    """Why a row is not sent: the API's own error code and a short text (never the row's values)."""

    code: str
    error: str
    message_id: str | None


def plan_columns(column_names: Sequence[str], entity: Entity = CLICKS) -> ColumnLayout:
    """Map the query's columns (case-insensitive) to record fields, or explain how to fix the query."""
    known = {field.name for field in entity.fields}
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for position, name in enumerate(column_names):
        field = name.lower()
        if field in known:
            positions.setdefault(field, position)
        else:
            ignored.append(name)
    missing = [field for field in entity.required if field not in positions]
    if missing:
        raise MissingColumnsError(
            f"The query is missing the required column(s) {', '.join(missing)}; it returned "
            f"{', '.join(column_names) or 'no columns'}. Alias your columns to the {entity.name} record "
            f"fields, e.g. SELECT <your column> AS {missing[0]}, ... "
            f"(required: {', '.join(entity.required)}; optional: {', '.join(entity.optional)})."
        )
    return ColumnLayout(positions, ignored)


def _rejection(field: Field, raw: Any, record: Record, key_field: str) -> RowRejection:
    """Why a field's value cannot be sent: missing (NULL or blank) or present but invalid."""
    key = record.get(key_field)
    message_id = key if isinstance(key, str) else None
    if is_blank(raw):
        return RowRejection(field.missing_code, f"column {field.name} is NULL or empty", message_id)
    return RowRejection(field.rejected_code, why_invalid(field.name, field.kind, raw), message_id)


def _too_large(field: Field, value: str, record: Record, key_field: str) -> RowRejection:
    key = record.get(key_field)
    return RowRejection(
        RECORD_TOO_LARGE,
        f"column {field.name} holds text of {len(value)} characters: the record would not fit in the "
        f"API's {MAX_BODY_BYTES:,}-byte request body. Shorten it in the query: LEFT(col, 10000) or "
        "SUBSTRING(col, 1, 10000).",
        key if isinstance(key, str) else None,
    )


def _remembering_phone_converter(
    default_region: str | None, memo: dict[str, str | None]
) -> Callable[[Any], str | None]:
    """``values.phone_number`` that remembers its answers for text, up to ``PHONE_MEMO_SIZE`` of them."""

    def convert(value: Any) -> str | None:
        number = phone_number(value, default_region)
        if type(value) is str:
            if len(memo) >= PHONE_MEMO_SIZE:
                memo.clear()
            memo[value] = number
        return number

    return convert


def make_record_builder(
    layout: ColumnLayout, entity: Entity = CLICKS, default_region: str | None = None
) -> Callable[[Sequence[Any]], Record | RowRejection]:
    """
    A fast per-row function: a record ready to send, or the reason the row is rejected.

    It never raises, whatever a row holds (``values`` lists every type a driver returns).
    ``default_region`` (``"US"``...) reads phone numbers written without a country code.
    """
    steps = []
    for field in entity.fields:
        if field.name not in layout.positions:
            continue
        convert = CONVERTERS[field.kind]
        memo: dict[str, str | None] | None = None
        if field.kind == "phone":
            memo = {}
            convert = _remembering_phone_converter(default_region, memo)
        is_id, is_text = field.kind == "id", field.kind == "text"
        steps.append((field.name, layout.positions[field.name], convert, is_id, memo, is_text, field))
    key_field = entity.key_field

    def build(row: Sequence[Any]) -> Record | RowRejection:
        record: Record = {}
        for name, position, convert, is_id, memo, is_text, field in steps:
            raw = row[position]
            try:
                # The common cases inline: a text id is stripped, a phone number seen before looked up.
                if is_id and type(raw) is str:
                    value = raw.strip()
                elif memo is not None and type(raw) is str:
                    value = memo.get(raw) or convert(raw)
                else:
                    value = convert(raw)
            except Exception:  # a converter's bug: the row is rejected, never the day
                return _rejection(field, raw, record, key_field)
            if value is None or value == "":
                if not field.required and is_blank(raw):
                    continue  # an optional field left out
                return _rejection(field, raw, record, key_field)
            if is_text and len(value) > LONG_TEXT_CHARS and len(orjson.dumps(value)) > MAX_RECORD_BYTES:
                return _too_large(field, value, record, key_field)
            record[name] = value
        return record

    return build

"""Turn SQL rows into Trackly history records, and reject the ones the API would reject (pure functions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from trackly_provider.trackly_api.custom_fields import (
    INVALID_CUSTOM_FIELDS,
    CustomFieldError,
    custom_fields_object,
    custom_value,
)
from trackly_provider.trackly_api.entities import CLICKS, Entity, Field
from trackly_provider.trackly_api.limits import MAX_BODY_BYTES, RECORD_TOO_LARGE
from trackly_provider.trackly_api.references import record_key
from trackly_provider.trackly_api.results import encode_record
from trackly_provider.trackly_api.values import CONVERTERS, is_blank, phone_number, why_invalid

Record: TypeAlias = "dict[str, Any]"
"""
A record: ids as text, timestamps as ``datetime`` (``utc_moment``), a contact's ``custom_fields``
as a dict of text, numbers and booleans; encoded by ``encode_records``.
"""
KeyOf = Callable[[Mapping[str, Any]], "str | None"]  # references.record_key: what names a record


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
    custom: tuple[tuple[str, int], ...] = ()  # (key, position) of each custom_<key> column


@dataclass(frozen=True)
class RowRejection:
    """
    Why a row is not sent: the API's own error code and a short text (never the row's values), and
    the record's key (``KeyOf``) when it was read before the rejected field.
    """

    code: str
    error: str
    message_id: str | None


def plan_columns(column_names: Sequence[str], entity: Entity = CLICKS) -> ColumnLayout:
    """Map the query's columns (case-insensitive) to record fields, or explain how to fix the query."""
    known = {field.name for field in entity.fields}
    prefix = entity.custom_prefix
    positions: dict[str, int] = {}
    ignored: list[str] = []
    custom: dict[str, int] = {}
    for position, name in enumerate(column_names):
        field = name.lower()
        if field in known:
            positions.setdefault(field, position)
        elif prefix and field.startswith(prefix) and len(field) > len(prefix):
            custom.setdefault(name[len(prefix) :], position)
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
    return ColumnLayout(positions, ignored, tuple(custom.items()))


def _rejection(field: Field, raw: Any, record: Record, key_of: KeyOf) -> RowRejection:
    """Why a field's value cannot be sent: missing (NULL or blank) or present but invalid."""
    if is_blank(raw):
        return RowRejection(field.missing_code, f"column {field.name} is NULL or empty", key_of(record))
    return RowRejection(field.rejected_code, why_invalid(field.name, field.kind, raw), key_of(record))


def _too_large(field: Field, value: str, record: Record, key_of: KeyOf, limit: int | None) -> RowRejection:
    if limit is not None:  # the entity's own limit per record (a contact: 4,000 bytes)
        where, keep = f"{limit:,} bytes the API takes per record", limit // 4
    else:
        where, keep = f"API's {MAX_BODY_BYTES:,}-byte request body", 10000
    return RowRejection(
        RECORD_TOO_LARGE,
        f"column {field.name} holds text of {len(value)} characters: the record would not fit in the "
        f"{where}. Shorten it in the query: LEFT(col, {keep}) or SUBSTRING(col, 1, {keep}).",
        key_of(record),
    )


def _over_record_limit(entity: Entity, record: Record, size: int, key_of: KeyOf) -> RowRejection:
    """A record over ``Entity.max_record_bytes``, naming its largest field and the sizes (never a value)."""
    sizes = {name: len(encode_record({name: value})) - len(name) - 5 for name, value in record.items()}
    largest = max(sizes, key=sizes.__getitem__)
    return RowRejection(
        RECORD_TOO_LARGE,
        f"the {entity.name} record is {size:,} bytes as JSON, over the API's {entity.max_record_bytes:,} "
        f"bytes per record; its largest field, {largest}, is {sizes[largest]:,} bytes. Shorten its "
        "column(s) in the query (custom fields: the custom_fields column and the custom_<key> ones).",
        key_of(record),
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
    layout: ColumnLayout,
    entity: Entity = CLICKS,
    default_region: str | None = None,
    *,
    key_of: KeyOf | None = None,
    constants: Mapping[str, Any] | None = None,
    missing: Counter[str] | None = None,
) -> Callable[[Sequence[Any]], Record | RowRejection]:
    """
    A fast per-row function: a record ready to send, or the reason the row is rejected.

    It never raises, whatever a row holds (``values`` lists every type a driver returns).
    ``default_region`` (``"US"``...) reads phone numbers written without a country code.
    ``key_of`` names a rejected row's record (``references.record_key``; default: its
    ``key_field`` text). ``constants`` are added to every record (the opt-ins' fields:
    ``use_journeys: false``...). ``missing`` counts, per field declared ``warn_when_missing``, the
    records sent without it. A contact's ``custom_fields`` are built from its columns
    (``custom_fields`` module), and a record over ``Entity.max_record_bytes`` is rejected.
    """
    key_of = key_of or record_key(entity, None)
    finish = _finishing_step(layout, entity, key_of, constants or {}, missing)
    steps = []
    for field in entity.fields:
        if field.name not in layout.positions or field.kind == "custom_fields":
            continue
        convert = CONVERTERS[field.kind]
        memo: dict[str, str | None] | None = None
        if field.kind == "phone":
            memo = {}
            convert = _remembering_phone_converter(default_region, memo)
        is_id, is_text = field.kind == "id", field.kind == "text"
        steps.append((field.name, layout.positions[field.name], convert, is_id, memo, is_text, field))

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
                return _rejection(field, raw, record, key_of)
            if value is None or value == "":
                if not field.required and is_blank(raw):
                    continue  # an optional field left out
                return _rejection(field, raw, record, key_of)
            if is_text and len(value) > LONG_TEXT_CHARS and len(orjson.dumps(value)) > MAX_RECORD_BYTES:
                return _too_large(field, value, record, key_of, entity.max_record_bytes)
            record[name] = value
        return record if finish is None else finish(record, row)

    return build


def _finishing_step(
    layout: ColumnLayout,
    entity: Entity,
    key_of: KeyOf,
    constants: Mapping[str, Any],
    missing: Counter[str] | None,
) -> Callable[[Record, Sequence[Any]], Record | RowRejection] | None:
    """
    What a record of ``entity`` needs once its fields are read, or None when nothing (the history
    entities: their builder stays as fast as it was): custom fields, the counts of fields left out,
    the constant fields, the size check.
    """
    object_position = next(
        (
            layout.positions[f.name]
            for f in entity.fields
            if f.kind == "custom_fields" and f.name in layout.positions
        ),
        None,
    )
    custom_name = next((f.name for f in entity.fields if f.kind == "custom_fields"), "custom_fields")
    columns = layout.custom
    warned = [f.name for f in entity.fields if f.warn_when_missing] if missing is not None else []
    limit = entity.max_record_bytes
    if object_position is None and not columns and not warned and not constants and limit is None:
        return None

    def finish(record: Record, row: Sequence[Any]) -> Record | RowRejection:
        if object_position is not None or columns:
            try:
                fields = custom_fields_object(row[object_position]) if object_position is not None else None
                fields = dict(fields or {})
                for key, position in columns:
                    value = custom_value(key, row[position])
                    if value is not None:
                        fields[key] = value
            except CustomFieldError as exc:
                return RowRejection(INVALID_CUSTOM_FIELDS, str(exc), key_of(record))
            except Exception:  # a bug of ours: the row is rejected, never the day
                return RowRejection(
                    INVALID_CUSTOM_FIELDS, "the custom fields could not be read", key_of(record)
                )
            if fields:
                record[custom_name] = fields
        record.update(constants)
        if limit is not None:
            try:
                size = len(encode_record(record))
            except (TypeError, orjson.JSONEncodeError):
                return RowRejection(
                    INVALID_CUSTOM_FIELDS, "a value cannot be written as JSON", key_of(record)
                )
            if size > limit:
                return _over_record_limit(entity, record, size, key_of)
        for name in warned:  # the records to send only
            if name not in record:
                missing[name] += 1  # type: ignore[index]
        return record

    return finish

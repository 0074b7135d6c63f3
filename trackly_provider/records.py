"""Turn SQL rows into Trackly history records, and reject the ones the API would reject (pure functions)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeAlias

from trackly_provider.entities import CLICKS, Entity, Field
from trackly_provider.iso8601 import parse_iso_datetime

Record: TypeAlias = "dict[str, str | datetime | float | int | bool]"
"""A record: ids as text, timestamps as ``datetime`` (``utc_moment``), encoded by ``encode_records``."""


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


def id_text(value: Any) -> str | None:
    """An id as text: numbers become strings (``12.0`` -> ``"12"``); NULL or blank gives None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (float, Decimal)) and value == int(value):
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode().strip() or None
    return str(value)


_ZERO = timedelta(0)


def utc_moment(value: Any) -> datetime | None:
    """
    The instant a timestamp value names, as a plain ``datetime`` in UTC or naive (taken as UTC).

    ``encode_records`` writes either as ISO 8601 with ``+00:00``. Text must be ISO 8601 (offset-less
    text is UTC); dates are midnight UTC. Returns None for a value that is not a valid timestamp.
    """
    if type(value) is str:  # the common case: SQLite, and PostgreSQL through the import's text loader
        try:
            moment = parse_iso_datetime(value.strip())
        except ValueError:
            return None
    elif isinstance(value, datetime):  # subclasses too (pendulum.DateTime): encode_records takes them
        moment = value
    elif isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        return utc_moment(str(value))
    else:
        return None
    zone = moment.tzinfo
    if zone is None or zone is timezone.utc:  # the common cases, without utcoffset()'s 170 ns call
        return moment
    offset = moment.utcoffset()
    if offset is None or offset == _ZERO:
        return moment
    return moment.astimezone(timezone.utc)


E164 = re.compile(r"\+[1-9][0-9]{7,14}")


def e164(value: Any) -> str | None:
    """A phone number in E.164 (``+`` then 8 to 15 digits, spaces ignored), or None."""
    text = id_text(value)
    if text is None:
        return None
    text = text.replace(" ", "")
    return text if E164.fullmatch(text) else None


def amount(value: Any) -> float | None:
    """A money amount >= 0 as a float (exact for up to 15 significant digits), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = Decimal(value.strip() if isinstance(value, str) else value.decode().strip())
        except (ArithmeticError, ValueError):
            return None
    if not isinstance(value, (int, float, Decimal)):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def flag(value: Any) -> bool | None:
    """A boolean column (true/false, 1/0, yes/no, t/f), or None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return {
            "true": True,
            "t": True,
            "yes": True,
            "1": True,
            "false": False,
            "f": False,
            "no": False,
            "0": False,
        }.get(value.strip().lower())
    return None


def count(value: Any) -> int | None:
    """A whole number >= 0, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, float, Decimal)):
        try:
            number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
        except (ArithmeticError, ValueError):
            return None
        if number != number.to_integral_value():
            return None
        value = int(number)
    return value if isinstance(value, int) and value >= 0 else None


def text(value: Any) -> str | None:
    """Free text as given (not stripped); None for NULL or blank."""
    if value is None:
        return None
    value = value.decode() if isinstance(value, bytes) else str(value)
    return value if value.strip() else None


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "id": id_text,
    "text": text,
    "timestamp": utc_moment,
    "e164": e164,
    "amount": amount,
    "flag": flag,
    "count": count,
}


def _rejection(field: Field, raw: Any, record: Record, key_field: str) -> RowRejection:
    """Why a field's value cannot be sent: missing (NULL or blank) or present but invalid."""
    key = record.get(key_field)
    message_id = key if isinstance(key, str) else None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return RowRejection(field.missing_code, f"{field.name} is NULL or empty", message_id)
    return RowRejection(field.rejected_code, field.rejected_text, message_id)


def make_record_builder(
    layout: ColumnLayout, entity: Entity = CLICKS
) -> Callable[[Sequence[Any]], Record | RowRejection]:
    """A fast per-row function: a record ready to send, or the reason the row is rejected."""
    steps = [
        (field.name, layout.positions[field.name], CONVERTERS[field.kind], field.kind == "id", field)
        for field in entity.fields
        if field.name in layout.positions
    ]
    key_field = entity.key_field

    def build(row: Sequence[Any]) -> Record | RowRejection:
        record: Record = {}
        for name, position, convert, is_id, field in steps:
            raw = row[position]
            # Text ids are the common case: strip them inline, hand anything else to the converter.
            value = raw.strip() if is_id and type(raw) is str else convert(raw)
            if value is None or value == "":
                if not field.required and (raw is None or (isinstance(raw, str) and not raw.strip())):
                    continue  # an optional field left out
                return _rejection(field, raw, record, key_field)
            record[name] = value
        return record

    return build

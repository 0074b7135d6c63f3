"""Turn SQL rows into Trackly click records, and reject the ones the API would reject (pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeAlias

from trackly_provider.iso8601 import parse_iso_datetime

REQUIRED_FIELDS = ("message_id", "offer_id", "phone_number", "timestamp")
OPTIONAL_FIELDS = ("send_timestamp",)
ID_FIELDS = ("message_id", "offer_id", "phone_number")
TIMESTAMP_FIELDS = ("timestamp", "send_timestamp")


Record: TypeAlias = "dict[str, str | datetime]"
"""A click record: ids as text, timestamps as ``datetime`` (``utc_moment``), encoded by ``encode_records``."""


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


def plan_columns(column_names: Sequence[str]) -> ColumnLayout:
    """Map the query's columns (case-insensitive) to record fields, or explain how to fix the query."""
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for position, name in enumerate(column_names):
        field = name.lower()
        if field in REQUIRED_FIELDS or field in OPTIONAL_FIELDS:
            positions.setdefault(field, position)
        else:
            ignored.append(name)
    missing = [field for field in REQUIRED_FIELDS if field not in positions]
    if missing:
        raise MissingColumnsError(
            f"The query is missing the required column(s) {', '.join(missing)}; it returned "
            f"{', '.join(column_names) or 'no columns'}. Alias your columns to the record fields, "
            "e.g. SELECT msg_id AS message_id, clicked_at AS timestamp, ... "
            f"(required: {', '.join(REQUIRED_FIELDS)}; optional: {', '.join(OPTIONAL_FIELDS)})."
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
    offset = moment.utcoffset()
    if offset is None or offset == _ZERO:
        return moment
    return moment.astimezone(timezone.utc)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def make_record_builder(layout: ColumnLayout) -> Callable[[Sequence[Any]], Record | RowRejection]:
    """A fast per-row function: a record ready to send, or the reason the row is rejected."""
    message_pos = layout.positions["message_id"]
    offer_pos = layout.positions["offer_id"]
    phone_pos = layout.positions["phone_number"]
    ts_pos = layout.positions["timestamp"]
    send_pos = layout.positions.get("send_timestamp")

    def build(row: Sequence[Any]) -> Record | RowRejection:
        # Text ids are the common case: strip them inline, hand anything else to id_text.
        value = row[message_pos]
        message_id = value.strip() if type(value) is str else id_text(value)
        if not message_id:
            return RowRejection("missing_message_id", "message_id is NULL or empty", None)
        value = row[offer_pos]
        offer_id = value.strip() if type(value) is str else id_text(value)
        if not offer_id:
            return RowRejection("missing_offer_id", "offer_id is NULL or empty", message_id)
        value = row[phone_pos]
        phone = value.strip() if type(value) is str else id_text(value)
        if not phone:
            return RowRejection("missing_phone_number", "phone_number is NULL or empty", message_id)
        raw_ts = row[ts_pos]
        timestamp = utc_moment(raw_ts)
        if timestamp is None:
            if _blank(raw_ts):
                return RowRejection("missing_timestamp", "timestamp is NULL or empty", message_id)
            return RowRejection("invalid_timestamp", "timestamp is not an ISO 8601 datetime", message_id)
        record: Record = {
            "message_id": message_id,
            "offer_id": offer_id,
            "phone_number": phone,
            "timestamp": timestamp,
        }
        raw_send = None if send_pos is None else row[send_pos]
        if raw_send is None:
            return record
        send_ts = utc_moment(raw_send)
        if send_ts is not None:
            record["send_timestamp"] = send_ts
        elif not _blank(raw_send):
            return RowRejection("invalid_timestamp", "send_timestamp is not an ISO 8601 datetime", message_id)
        return record

    return build

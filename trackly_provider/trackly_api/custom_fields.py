"""
A contact's ``custom_fields``, from the query's columns (pure functions).

The rule (docs/operators.md, "Contacts"): a column named ``custom_<key>`` is the field ``<key>``,
and a column named ``custom_fields`` may hold a JSON object of them (PostgreSQL ``json``/``jsonb``
arrive as a dict, MySQL/MariaDB/SQLite JSON as its text). Where both name a key, the
``custom_<key>`` column wins. A NULL column or a JSON ``null`` leaves its key out, so Trackly keeps
the value it has (custom fields are merged). The API takes text, numbers and booleans
(trackly-api.md, Contacts), so:

- ``str`` as given; ``bytes`` when UTF-8; ``bool`` as a boolean (never 0/1);
- ``int`` within +/- 2**53 - 1 (exact in every JSON reader, RFC 8259 section 6); ``float`` when
  finite; ``Decimal`` as a whole number when whole and within that range (refused beyond it, as an
  ``int`` is), else as a double when finite;
- ``datetime`` as ISO 8601 UTC text (naive is UTC), ``date`` as ``YYYY-MM-DD``, ``UUID`` as text;
- anything else (lists, objects, NaN, infinities, durations, non-UTF-8 bytes) is refused: the
  contact is rejected with ``invalid_custom_fields``, naming the key, never the value.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from trackly_provider.trackly_api.iso8601 import utc_iso
from trackly_provider.trackly_api.redact import server_text
from trackly_provider.trackly_api.values import BYTES_TYPES, MAX_WHOLE_NUMBER, describe_type, utc_moment

CustomValue = str | int | float | bool
INVALID_CUSTOM_FIELDS = "invalid_custom_fields"  # ours: the API page lists no code for them
FIX = "A custom field takes text, a number or a boolean: cast it in the query (CAST(col AS CHAR))."


class CustomFieldError(ValueError):
    """A value Trackly cannot take as a custom field; the text names the key, never the value."""


def custom_value(key: str, value: Any) -> CustomValue | None:
    """
    The value to send for custom field ``key``; None for NULL (the key is left out).

    :raises CustomFieldError: a value the API does not take, saying what it was (its type only).
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _refused(key, "text that is not valid Unicode") from None
        return value
    if isinstance(value, int):
        if abs(value) > MAX_WHOLE_NUMBER:
            raise _refused(key, f"a whole number beyond +/-{MAX_WHOLE_NUMBER:,} (send it as text)")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _refused(key, describe_type(value))
        return value
    if isinstance(value, Decimal):
        return _decimal(key, value)
    if isinstance(value, BYTES_TYPES):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise _refused(key, describe_type(value)) from None
    if isinstance(value, datetime):
        moment = utc_moment(value)
        if moment is None:
            raise _refused(key, "a datetime outside years 1 to 9999 in UTC")
        return utc_iso(moment)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise _refused(key, describe_type(value))


def _decimal(key: str, value: Decimal) -> CustomValue:
    if not value.is_finite():
        raise _refused(key, describe_type(value))
    if value == value.to_integral_value():
        if abs(value) > MAX_WHOLE_NUMBER:  # as a double it would be another number
            raise _refused(key, f"a whole number beyond +/-{MAX_WHOLE_NUMBER:,} (send it as text)")
        return int(value)
    number = float(value)
    if not math.isfinite(number):
        raise _refused(key, "a decimal beyond a double's range (send it as text)")
    return number


def custom_fields_object(value: Any) -> dict[str, CustomValue] | None:
    """
    The fields of a ``custom_fields`` column: a dict, or JSON text (or UTF-8 bytes) of an object;
    None for NULL. Nested objects and arrays are refused, as is a key that is not non-empty text.

    :raises CustomFieldError: what was wrong, never a value.
    """
    if value is None:
        return None
    if isinstance(value, (str, *BYTES_TYPES)):
        try:
            value = orjson.loads(bytes(value) if isinstance(value, (bytearray, memoryview)) else value)
        except orjson.JSONDecodeError:
            raise CustomFieldError(
                f"column custom_fields holds {describe_type(value)} that is not JSON; it takes a JSON "
                'object such as {"plan": "gold", "vip": true}.'
            ) from None
        if value is None:  # the JSON text null: no fields, as a NULL column
            return None
    if not isinstance(value, dict):
        raise CustomFieldError(
            f"column custom_fields holds {describe_type(value)}, not a JSON object; it takes one such "
            'as {"plan": "gold", "vip": true}.'
        )
    fields: dict[str, CustomValue] = {}
    for position, (key, item) in enumerate(value.items()):
        if not isinstance(key, str) or not key.strip():
            raise CustomFieldError(
                f"column custom_fields has a key (number {position + 1}) that is not a name."
            )
        converted = custom_value(key, item)
        if converted is not None:
            fields[key] = converted
    return fields


def _refused(key: str, what: str) -> CustomFieldError:
    return CustomFieldError(f"custom field {_key_text(key)} holds {what}. {FIX}")


def _key_text(key: str) -> str:
    """A key as shown in a message: quoted, cut to 64 characters, phone-like digits redacted."""
    shown = server_text(key)
    return repr(shown[:64] + ("…" if len(shown) > 64 else ""))

"""
Every value a SQL driver returns, converted to what a record field holds, or refused (pure functions).

One converter per field kind (``entities.FieldKind``). A converter returns the value to send, or
None when the value cannot be sent; it never raises for any value. ``why_invalid`` then says, for
the rejection, what the value was (its type, never the value itself) and how to fix the query.

The Python types the supported drivers return, and what each kind does with them (docs/operators.md:
"Source column types"):

- ``str``: every kind reads text. ``int``: ids, counts, amounts, flags (0/1), phone numbers
  (digits, with ``default_region``). ``bool``: flags only; elsewhere refused (``True`` is no id).
- ``float``: amounts and counts when finite; refused as an id (``42`` and ``42.0`` would be one id,
  and doubles past 2**53 are not the ids stored). NaN and infinities are refused everywhere.
- ``Decimal`` (NUMERIC, DECIMAL): ids and counts when whole and written without a fraction,
  amounts when finite and within a double's range; NaN, sNaN and infinities are refused.
- ``bytes``, ``bytearray``, ``memoryview`` (BLOB, bytea, VARBINARY, BINARY(16) UUIDs, BIT):
  read as UTF-8 text when they are printable UTF-8; otherwise refused with the function that
  turns them into text (``BIN_TO_UUID``, ``encode(col, 'hex')``). A one-byte ``b'\\x00'`` or
  ``b'\\x01'`` (MySQL ``BIT(1)`` through mysqlclient) is a flag.
- ``uuid.UUID`` (PostgreSQL ``uuid``): an id, in its canonical text.
- ``datetime``, ``date``: timestamps (naive values are UTC; a date is its midnight UTC); refused
  elsewhere, as are ``time`` and ``timedelta`` (MySQL ``TIME``, PostgreSQL ``interval``).
- ``list``, ``dict``, ``set`` (arrays, JSON, MySQL ``SET`` through mysql-connector-python) and any
  other type: refused. mysqlclient and PyMySQL give a ``SET`` as its text (``'a,b'``), and MariaDB
  gives ``JSON`` as text: those are text to every field.
- PostgreSQL ``time``, ``timetz``, ``interval`` and ``money`` arrive as ``OpaqueValue``
  (``postgres_types``): refused everywhere, naming the cast.

Text that no driver returns as such is not looked for: a ``str`` with lone surrogates only comes
from a decoder told to keep them, which no driver's default is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Any
from uuid import UUID

from trackly_provider.trackly_api.iso8601 import parse_iso_datetime
from trackly_provider.trackly_api.phone_numbers import to_e164


class OpaqueValue:
    """
    A value of a source type no field accepts, loaded without its content (``postgres_types``):
    PostgreSQL ``time``, ``interval``, ``money``. ``kind`` names the type in the rejection.
    """

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"OpaqueValue({self.kind!r})"


MAX_WHOLE_NUMBER = 2**53 - 1  # counts: exact in every JSON reader (RFC 8259, section 6)
MAX_ID_DIGITS = 64  # a Decimal id with more digits than this is no id (and 1E+999999999 is not expanded)
BYTES_TYPES = (bytes, bytearray, memoryview)
_IP_TYPES = (IPv4Address, IPv6Address, IPv4Interface, IPv6Interface, IPv4Network, IPv6Network)
_ZERO = timedelta(0)
_TRUE_TEXT = frozenset({"true", "t", "yes", "y", "1"})
_FALSE_TEXT = frozenset({"false", "f", "no", "n", "0"})


def is_blank(value: Any) -> bool:
    """NULL, or text (or bytes) holding only whitespace: a value left out."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, BYTES_TYPES):
        return not bytes(value).strip()
    return False


def _text_of_bytes(value: bytes | bytearray | memoryview) -> str | None:
    """Printable UTF-8 text, stripped; None for bytes that are not (binary ids, other encodings)."""
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.strip()
    return text if text.isprintable() else None


def _whole_decimal(value: Decimal) -> int | None:
    """A Decimal written as a whole number (exponent >= 0), or None (fractions, NaN, infinities)."""
    if not value.is_finite():
        return None
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent < 0 or len(digits) + exponent > MAX_ID_DIGITS:
        return None
    return int(value)


def id_text(value: Any) -> str | None:
    """An id as text: text stripped, whole numbers in decimal, UUIDs canonical; None otherwise."""
    kind = type(value)
    if kind is str:
        return value.strip() or None
    if kind is int:
        return str(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # an int subclass (a driver's own): its plain decimal form
        return str(int(value))
    if isinstance(value, Decimal):
        whole = _whole_decimal(value)
        return None if whole is None else str(whole)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, BYTES_TYPES):
        return _text_of_bytes(value) or None
    if isinstance(value, str):
        return str.strip(value) or None
    return None


def phone_number(value: Any, default_region: str | None = None) -> str | None:
    """A phone number in E.164 (``phone_numbers.to_e164``), from text or digits; None otherwise."""
    if type(value) is str:
        text = value.strip()
    elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        whole = int(value) if isinstance(value, int) else _whole_decimal(value)
        if whole is None or whole <= 0:
            return None
        text = str(whole)
    elif isinstance(value, BYTES_TYPES):
        text = _text_of_bytes(value) or ""
    elif isinstance(value, str):
        text = str.strip(value)
    else:
        return None
    return to_e164(text, default_region) if text else None


def utc_moment(value: Any) -> datetime | None:
    """
    The instant a timestamp value names, as a plain ``datetime`` in UTC or naive (taken as UTC).

    ``encode_records`` writes either as ISO 8601 with ``+00:00``. Text must be ISO 8601 (offset-less
    text is UTC); dates are midnight UTC. Returns None for a value that is not a valid timestamp,
    or whose instant in UTC falls outside years 1 to 9999.
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
        return utc_moment(str.strip(value))
    elif isinstance(value, BYTES_TYPES):
        text = _text_of_bytes(value)
        return utc_moment(text) if text else None
    else:
        return None
    zone = moment.tzinfo
    if zone is None or zone is timezone.utc:  # the common cases, without utcoffset()'s 170 ns call
        return moment
    try:
        offset = moment.utcoffset()
        if offset is None or offset == _ZERO:
            return moment
        return moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # year 1 east of UTC, year 9999 west of it
        return None


def amount(value: Any) -> float | None:
    """A money amount >= 0 as a float (exact for up to 15 significant digits), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, *BYTES_TYPES)):
        text = value.strip() if isinstance(value, str) else _text_of_bytes(value)
        try:
            value = Decimal(text or "")
        except ArithmeticError:
            return None
    if not isinstance(value, (int, float, Decimal)):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None  # float() of a signalling NaN raises
    try:
        number = float(value)
    except OverflowError:  # an int past a double's range
        return None
    return number if math.isfinite(number) and number >= 0 else None


def flag(value: Any) -> bool | None:
    """A boolean column (true/false, 1/0, yes/no, t/f, MySQL ``BIT(1)``), or None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) or (isinstance(value, Decimal) and value.is_finite()):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, BYTES_TYPES):
        raw = bytes(value)
        if raw in (b"\x00", b"\x01"):
            return raw == b"\x01"
        value = _text_of_bytes(raw)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_TEXT:
            return True
        if word in _FALSE_TEXT:
            return False
    return None


def count(value: Any) -> int | None:
    """A whole number from 0 to 2**53 - 1, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, *BYTES_TYPES, float, Decimal)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, BYTES_TYPES):
            value = _text_of_bytes(value) or ""
        try:
            number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
        except ArithmeticError:
            return None
        if not number.is_finite() or number.copy_abs() > MAX_WHOLE_NUMBER:
            return None
        if number != number.to_integral_value():
            return None
        value = int(number)
    if not isinstance(value, int):
        return None
    return int(value) if 0 <= value <= MAX_WHOLE_NUMBER else None


def text(value: Any) -> str | None:
    """
    Free text as given (not stripped); None for NULL, blank, or a value that is not text. An IP
    address (PostgreSQL ``inet``/``cidr`` through psycopg: ``ipaddress`` objects) is its text.
    """
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, BYTES_TYPES):
        try:
            decoded = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
        return decoded if decoded.strip() else None
    if isinstance(value, _IP_TYPES):
        return str(value)
    return None


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "id": id_text,
    "text": text,
    "timestamp": utc_moment,
    "phone": phone_number,
    "amount": amount,
    "flag": flag,
    "count": count,
}

# How to fix the query, per kind: the message of a rejected value ends with it.
FIXES = {
    "id": (
        "Return text or a whole number: CAST(col AS CHAR) or CAST(col AS BIGINT); binary UUIDs with "
        "BIN_TO_UUID(col) (MySQL) or encode(col, 'hex') (PostgreSQL), HEX(col) for other bytes."
    ),
    "text": "Return UTF-8 text: CAST(col AS CHAR) (MySQL), convert_from(col, 'UTF8') (PostgreSQL).",
    "timestamp": (
        "Return a timestamp, a date or ISO 8601 text between years 1 and 9999 in UTC; epoch seconds "
        "convert with datetime(col, 'unixepoch') (SQLite), to_timestamp(col) (PostgreSQL) or "
        "FROM_UNIXTIME(col) (MySQL, in a UTC session)."
    ),
    "phone": (
        "Return the number in E.164 (+ then the country code and number, e.g. +14155550100), or set "
        "the operator's default_region (e.g. 'US') for numbers written without a country code."
    ),
    "amount": "Return a finite number >= 0: a DECIMAL column, or text such as '12.34'.",
    "flag": "Return true/false, 1/0 or BIT(1).",
    "count": f"Return a whole number from 0 to {MAX_WHOLE_NUMBER}.",
}


def describe_type(value: Any) -> str:
    """What a value is, in words, without the value itself (it may be a phone number)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a floating-point number" if math.isfinite(value) else "NaN or an infinity"
    if isinstance(value, Decimal):
        return "a decimal" if value.is_finite() else "a NaN or infinite decimal"
    if isinstance(value, OpaqueValue):
        return f"a {value.kind} (cast it in the query: CAST(col AS text) or CAST(col AS numeric))"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, BYTES_TYPES):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return f"{len(value)} bytes that are not UTF-8 text"
        return f"{len(value)} bytes"
    if isinstance(value, str):
        return f"text of {len(value)} characters"
    names = {
        datetime: "a datetime",
        date: "a date",
        time: "a time of day",
        timedelta: "a duration",
        list: "a list",
        tuple: "a list",
        dict: "a JSON object",
        set: "a set",
    }
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def why_invalid(field_name: str, kind: str, value: Any) -> str:
    """The text of a rejection: the column, what its value was (never the value) and how to fix it."""
    return f"column {field_name} holds {describe_type(value)}, not a valid {field_name}. {FIXES[kind]}"

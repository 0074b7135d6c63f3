"""
Every Python type a supported driver returns, through every field kind: converted or refused, never raised.

The drivers' types (sqlite3, psycopg 3 and 2, mysqlclient, mysql-connector-python, PyMySQL) are
built here as the drivers build them; tests/integration/test_source_values.py reads them from real tables.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from ipaddress import IPv4Address
from typing import Any
from uuid import UUID

import orjson
import pytest

from trackly_provider.operators._engine.records import (
    RECORD_TOO_LARGE,
    RowRejection,
    make_record_builder,
    plan_columns,
)
from trackly_provider.trackly_api.entities import CLICKS, REVENUE, SENDS
from trackly_provider.trackly_api.results import encode_records
from trackly_provider.trackly_api.values import (
    CONVERTERS,
    FIXES,
    OpaqueValue,
    amount,
    count,
    flag,
    id_text,
    phone_number,
    text,
    utc_moment,
    why_invalid,
)

UUID_BYTES = UUID(
    "0e67095b-5b44-47cf-b62e-772b5a32535c"
).bytes  # decodes as UTF-8 by chance: b'\x0eg\t[[DG...'
EAST = timezone(timedelta(hours=5))
WEST = timezone(timedelta(hours=-5))

# One of every type the drivers return, with odd values of each: what no converter may raise on.
EVERY_VALUE: list[Any] = [
    None,
    "",
    " ",
    "text",
    "\x00",
    "x" * 6_000_000,
    0,
    1,
    -1,
    42,
    10**400,
    True,
    False,
    0.0,
    42.0,
    12.5,
    math.nan,
    math.inf,
    -math.inf,
    Decimal("0"),
    Decimal("42"),
    Decimal("42.0"),
    Decimal("12.34"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal("1E+999999999"),
    Decimal(10) ** 400,
    b"",
    b"\x00",
    b"\x01",
    b"m-1",
    b"\xff\xfe",
    UUID_BYTES,
    bytearray(b"m-1"),
    memoryview(b"m-1"),
    UUID(bytes=UUID_BYTES),
    datetime(2025, 11, 15, 10),
    datetime(1, 1, 1, tzinfo=EAST),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=WEST),
    date(2025, 11, 15),
    date.max,
    time(10, 30),
    timedelta(days=1, hours=2),
    [1, 2],
    {"a": 1},
    {"a"},
    ("x",),
    IPv4Address("10.0.0.1"),
    OpaqueValue("PostgreSQL money"),
    object(),
]


@pytest.mark.parametrize("kind", sorted(CONVERTERS))
@pytest.mark.parametrize("value", EVERY_VALUE, ids=lambda value: type(value).__name__)
def test_no_value_of_any_type_raises_and_what_is_kept_can_be_sent(kind, value):
    converted = CONVERTERS[kind](value)
    if converted is not None:
        orjson.loads(encode_records([{"field": converted}]))  # the request body carries it
    assert why_invalid("field", kind, value).startswith("column field holds ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("m-1", "m-1"),
        (" m-1\t", "m-1"),
        (42, "42"),
        (-7, "-7"),
        (Decimal("42"), "42"),
        (Decimal("4.2E+1"), "42"),
        (UUID(bytes=UUID_BYTES), "0e67095b-5b44-47cf-b62e-772b5a32535c"),
        (b"m-1", "m-1"),
        (bytearray(b"m-1"), "m-1"),
        (memoryview(b"m-1"), "m-1"),
        # Refused: each of these was sent as str() before, and some collided with other ids.
        (True, None),
        (False, None),
        (42.0, None),
        (12.5, None),
        (math.nan, None),
        (math.inf, None),
        (Decimal("42.0"), None),
        (Decimal("12.5"), None),
        (Decimal("NaN"), None),
        (Decimal("sNaN"), None),
        (Decimal("Infinity"), None),
        (Decimal("1E+999999999"), None),
        (b"\xff\xfe", None),
        (UUID_BYTES, None),  # a BINARY(16) UUID that happens to be UTF-8: control characters, no id
        ([1, 2], None),
        ({"a": 1}, None),
        (timedelta(days=1, hours=2), None),
        (date(2025, 11, 15), None),
        (IPv4Address("10.0.0.1"), None),
    ],
)
def test_ids_are_text_whole_numbers_or_uuids(value, expected):
    assert id_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-11-15 10:00:00", datetime(2025, 11, 15, 10)),
        (b"2025-11-15 10:00:00", datetime(2025, 11, 15, 10)),
        (date(2025, 11, 15), datetime(2025, 11, 15)),
        (
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
        ),
        (
            datetime(9999, 12, 31, 18, 59, 59, tzinfo=WEST),
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
        ),
        # Outside years 1 to 9999 once in UTC: refused, where converting raised OverflowError before.
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=WEST), None),
        (datetime(1, 1, 1, tzinfo=EAST), None),
        ("9999-12-31T23:00:00-05:00", None),
        ("0001-01-01T00:00:00+05:00", None),
        ("infinity", None),  # PostgreSQL's date and timestamptz 'infinity', loaded as text
        ("-infinity", None),
        (1731628800, None),  # epoch seconds: the message says how to convert them
        (1731628800.5, None),
        (time(10, 30), None),
        (timedelta(hours=1), None),
        (True, None),
        (b"\xff", None),
    ],
)
def test_timestamps_name_one_instant_in_years_1_to_9999(value, expected):
    assert utc_moment(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.34"), 12.34),
        ("12.34", 12.34),
        (b"12.34", 12.34),
        (0, 0.0),
        (12.5, 12.5),
        (Decimal("NaN"), None),
        (Decimal("sNaN"), None),
        (Decimal("Infinity"), None),
        ("Infinity", None),
        ("sNaN", None),
        ("1e400", None),
        (Decimal(10) ** 400, None),
        (10**400, None),
        (math.nan, None),
        (-math.inf, None),
        (-1, None),
        (True, None),
        ("$12.34", None),  # PostgreSQL money as text: cast it to numeric
        (timedelta(1), None),
    ],
)
def test_amounts_are_finite_numbers_not_below_zero(value, expected):
    assert amount(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"\x01", True),  # MySQL BIT(1) through mysqlclient
        (b"\x00", False),
        (1, True),
        (0, False),
        (Decimal("1"), True),
        ("yes", True),
        ("F", False),
        (b"true", True),
        (True, True),
        (2, None),
        (b"\x02", None),
        (Decimal("sNaN"), None),
        (math.nan, None),
        ("maybe", None),
        ([True], None),
    ],
)
def test_flags(value, expected):
    assert flag(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (160, 160),
        ("160", 160),
        (160.0, 160),
        (0.0, 0),
        (Decimal("160"), 160),
        (b"160", 160),
        (2**53 - 1, 2**53 - 1),
        (2**53, None),
        (10**400, None),
        ("1e400", None),
        (Decimal("Infinity"), None),
        (Decimal("sNaN"), None),
        (math.inf, None),
        (math.nan, None),
        (1.5, None),
        (-1, None),
        (True, None),
    ],
)
def test_counts_are_whole_numbers_json_carries_exactly(value, expected):
    assert count(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Hello ", "Hello "),
        (b"Hello", "Hello"),
        ("  ", None),
        (b"\xff", None),
        (42, None),
        (True, None),
        ({"a": 1}, None),
    ],
)
def test_message_text(value, expected):
    assert text(value) == expected


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("+12025550143", None, "+12025550143"),
        ("+1 (202) 555-0143", None, "+12025550143"),
        ("tel:+1-202-555-0143", None, "+12025550143"),
        ("+6834002", None, "+6834002"),  # Niue: seven digits is a whole E.164 number there
        (b"+12025550143", None, "+12025550143"),
        ("12025550143", None, None),  # no country code, no default_region: which country?
        ("12025550143", "US", "+12025550143"),
        ("(202) 555-0143", "US", "+12025550143"),
        (12025550143, "US", "+12025550143"),  # a BIGINT phone column
        (Decimal("2025550143"), "US", "+12025550143"),
        (12025550143, None, None),
        ("+44 7911 123456", "US", "+447911123456"),  # a country code wins over default_region
        ("+1 202 555 0143 ext. 12", None, None),  # an extension is another line: no E.164 for it
        ("abc", None, None),
        ("+1-800-FLOWERS", None, None),  # letters are not read: no vanity numbers
        ("junk+12025550143", None, None),
        ("phone: +1 202 555 0143", None, None),
        ("+12025550143*", None, None),
        ("tel:+1-202-555-0143;ext=1", None, None),
        ("202/555/0143", "US", "+12025550143"),
        ("+1\u2011202\u2011555\u20110143", None, "+12025550143"),  # non-breaking hyphens
        (
            "\uff11\uff12\uff10\uff12\uff15\uff15\uff15\uff10\uff11\uff14\uff13",
            "US",
            "+12025550143",
        ),  # fullwidth
        ("x" * 10_000, None, None),
        ("+12345", None, None),  # too short for +1
        ("+1202555014399", None, None),  # too long for +1
        (12025550143.0, "US", None),
        (True, "US", None),
        (-12025550143, "US", None),
    ],
)
def test_phone_numbers_become_e164_by_one_rule(value, region, expected):
    assert phone_number(value, region) == expected


def test_every_entity_checks_every_phone_field_with_the_apis_code():
    """Clicks' phone_number (ours: the API lists no code), sends' to_number and list_number."""
    click = make_record_builder(plan_columns(["message_id", "offer_id", "phone_number", "timestamp"]))
    send = make_record_builder(
        plan_columns(["id", "to_number", "list_number", "timestamp"], SENDS), SENDS, default_region="US"
    )
    assert click(["m", "o", "abc", "2025-11-15"]) == RowRejection(
        "invalid_phone_number",
        f"column phone_number holds text of 3 characters, not a valid phone_number. {FIXES['phone']}",
        "m",
    )
    assert send(["s", "4155550100", "2025550100", "2025-11-15"]) == {
        "id": "s",
        "to_number": "+14155550100",
        "list_number": "+12025550100",
        "timestamp": datetime(2025, 11, 15),
    }
    assert send(["s", "+1 415 555", "2025550100", "2025-11-15"]).code == "invalid_phone"  # type: ignore[union-attr]
    assert send(["s", "4155550100", "555", "2025-11-15"]).code == "invalid_list_number"  # type: ignore[union-attr]


def test_a_rejection_names_the_column_and_the_fix_never_the_value():
    build = make_record_builder(plan_columns(["message_id", "offer_id", "revenue"], REVENUE), REVENUE)
    rejection = build([UUID_BYTES, "o", Decimal("1.5")])
    assert rejection == RowRejection("invalid_message_id", why_invalid("message_id", "id", UUID_BYTES), None)
    assert rejection.error == (
        "column message_id holds 16 bytes, not a valid message_id. Return text or a whole number: "
        "CAST(col AS CHAR) or CAST(col AS BIGINT); binary UUIDs with BIN_TO_UUID(col) (MySQL) or "
        "encode(col, 'hex') (PostgreSQL), HEX(col) for other bytes."
    )
    secret = "+12025550143"
    click = make_record_builder(plan_columns(["message_id", "offer_id", "phone_number", "timestamp"]))
    assert secret not in repr(click(["m", "o", secret, 1731628800]))
    assert secret not in repr(click(["m", "o", secret + "999", "2025-11-15"]))


def test_a_record_over_the_body_limit_is_rejected_before_it_is_sent():
    build = make_record_builder(plan_columns(["id", "to_number", "message", "timestamp"], SENDS), SENDS)
    big = "é" * (3 * 1024 * 1024)  # 3 Mi characters, 6 MiB in UTF-8
    rejection = build(["s-1", "+12025550143", big, "2025-11-15"])
    assert isinstance(rejection, RowRejection)
    assert (rejection.code, rejection.message_id) == (RECORD_TOO_LARGE, "s-1")
    assert rejection.error.startswith(f"column message holds text of {len(big)} characters")
    fits = "e" * 4_000_000  # long, but the record fits in one request
    assert build(["s-2", "+12025550143", fits, "2025-11-15"])["message"] == fits  # type: ignore[index]


def test_a_converter_that_raises_rejects_its_row_only(monkeypatch):
    """A converter bug (simulated: no real value makes one raise) costs one row, not the day."""

    def broken(value: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(CONVERTERS, "timestamp", broken)
    build = make_record_builder(plan_columns(["message_id", "offer_id", "phone_number", "timestamp"], CLICKS))
    assert build(["m", "o", "+12025550143", "2025-11-15"]).code == "invalid_timestamp"  # type: ignore[union-attr]


def test_a_phone_number_seen_again_gets_the_same_answer():
    """The builder remembers E.164 forms of phone texts it saw; a rejected one stays rejected."""
    build = make_record_builder(
        plan_columns(["id", "to_number", "timestamp"], SENDS), SENDS, default_region="US"
    )
    for _ in range(3):
        assert build(["s", "(202) 555-0143", "2025-11-15"])["to_number"] == "+12025550143"  # type: ignore[index]
        assert build(["s", "+1202555", "2025-11-15"]).code == "invalid_phone"  # type: ignore[union-attr]
    numbers = [f"+1202555{n:04d}" for n in range(10_000)] * 2  # past the memo's size: it starts over
    assert [build(["s", number, "2025-11-15"])["to_number"] for number in numbers] == numbers  # type: ignore[index]


@pytest.mark.parametrize("kind", sorted(CONVERTERS))
def test_a_source_type_loaded_opaque_is_refused_by_every_field_naming_the_cast(kind):
    money = OpaqueValue("PostgreSQL money")
    assert CONVERTERS[kind](money) is None
    assert why_invalid("send_type", kind, money).startswith(
        "column send_type holds a PostgreSQL money (cast it in the query: CAST(col AS text) or "
        "CAST(col AS numeric)), not a valid send_type."
    )

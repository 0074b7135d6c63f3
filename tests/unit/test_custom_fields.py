"""
A contact's custom fields (trackly_api/custom_fields.py): every value a driver returns, sent as
text, a number or a boolean, or refused naming the key and never the value.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from trackly_provider.trackly_api.custom_fields import (
    CustomFieldError,
    custom_fields_object,
    custom_value,
)

MAX = 2**53 - 1
FIX = "A custom field takes text, a number or a boolean: cast it in the query (CAST(col AS CHAR))."
PHONE = "+12025550123"
PHONE_DIGITS = "2025550123"
AN_OBJECT = 'it takes one such as {"plan": "gold", "vip": true}.'
NOT_JSON = 'it takes a JSON object such as {"plan": "gold", "vip": true}.'


def refusal(key: str, value: Any) -> str:
    with pytest.raises(CustomFieldError) as raised:
        custom_value(key, value)
    return str(raised.value)


def column_refusal(value: Any) -> str:
    with pytest.raises(CustomFieldError) as raised:
        custom_fields_object(value)
    return str(raised.value)


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("gold", "gold"),
        ("", ""),
        (" padded ", " padded "),
        (True, True),
        (False, False),
        (0, 0),
        (MAX, MAX),
        (-MAX, -MAX),
        (1.5, 1.5),
        (-0.25, -0.25),
        (Decimal("12"), 12),
        (Decimal("12.000"), 12),
        (Decimal("-7E+2"), -700),
        (Decimal(MAX), MAX),
        (Decimal(-MAX), -MAX),
        (Decimal("12.50"), 12.5),
        (Decimal("-0.125"), -0.125),
        (b"gold", "gold"),
        ("café".encode(), "café"),
        (bytearray(b"silver"), "silver"),
        (memoryview(b"bronze"), "bronze"),
        (datetime(2025, 11, 15, 10, 0), "2025-11-15T10:00:00+00:00"),
        (datetime(2025, 11, 15, 10, 0, 30, 250000), "2025-11-15T10:00:30.250000+00:00"),
        (datetime(2025, 11, 15, 10, 0, tzinfo=timezone(timedelta(hours=-5))), "2025-11-15T15:00:00+00:00"),
        (
            datetime(2025, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2024-12-31T19:30:00+00:00",
        ),
        (date(2025, 1, 2), "2025-01-02"),
        (UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (None, None),
    ],
)
def test_accepted_values_are_sent_as_text_numbers_or_booleans(value, sent):
    converted = custom_value("plan", value)
    assert converted == sent
    assert type(converted) is type(sent)  # 12 stays a whole number, never 12.0; True never 1


def test_a_whole_decimal_is_sent_as_an_int_and_a_fraction_as_a_float():
    assert type(custom_value("n", Decimal("42.0"))) is int
    assert type(custom_value("n", Decimal("42.5"))) is float


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (float("nan"), "NaN or an infinity"),
        (float("inf"), "NaN or an infinity"),
        (float("-inf"), "NaN or an infinity"),
        (Decimal("NaN"), "a NaN or infinite decimal"),
        (Decimal("sNaN"), "a NaN or infinite decimal"),
        (Decimal("Infinity"), "a NaN or infinite decimal"),
        (Decimal("-Infinity"), "a NaN or infinite decimal"),
        (Decimal("1E+400"), "a whole number beyond +/-9,007,199,254,740,991 (send it as text)"),
        (Decimal("9007199254740993"), "a whole number beyond +/-9,007,199,254,740,991 (send it as text)"),
        (Decimal("1" + "0" * 400 + ".5"), "a decimal beyond a double's range (send it as text)"),
        (MAX + 1, "a whole number beyond +/-9,007,199,254,740,991 (send it as text)"),
        (-MAX - 1, "a whole number beyond +/-9,007,199,254,740,991 (send it as text)"),
        (timedelta(days=1), "a duration"),
        (time(10, 30), "a time of day"),
        ([1, 2], "a list"),
        ({"a": 1}, "a JSON object"),
        (b"\xffgold", "5 bytes that are not UTF-8 text"),
        ("gold\ud800", "text that is not valid Unicode"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "a datetime outside years 1 to 9999 in UTC"),
    ],
)
def test_refused_values_name_the_key_and_what_was_wrong(value, what):
    assert refusal("plan", value) == f"custom field 'plan' holds {what}. {FIX}"


@pytest.mark.parametrize(
    "value",
    [
        12025550123000000,  # a whole number beyond 2**53 - 1 that holds the digits
        -12025550123000000,
        f"{PHONE}\ud800",
        f"{PHONE} café".encode("latin-1"),
        PHONE.encode() + b"\xff",
        [PHONE],
        {"phone": PHONE},
        (PHONE,),
        {PHONE},
    ],
)
def test_a_refused_value_never_appears_in_the_message(value):
    message = refusal("plan", value)
    assert message.startswith("custom field 'plan' holds ")
    assert PHONE_DIGITS not in message
    assert "202" not in message


def test_a_key_that_looks_like_a_phone_number_is_redacted():
    assert refusal(PHONE, [1]) == f"custom field '[redacted]' holds a list. {FIX}"
    assert refusal("+1 (202) 555-0123", [1]) == f"custom field '[redacted]' holds a list. {FIX}"


def test_a_long_key_is_cut_to_64_characters():
    assert refusal("k" * 70, [1]) == f"custom field '{'k' * 64}…' holds a list. {FIX}"
    assert refusal("k" * 64, [1]) == f"custom field '{'k' * 64}' holds a list. {FIX}"


@pytest.mark.parametrize(
    "column",
    [
        {"plan": "gold", "vip": True, "score": 3},
        '{"plan": "gold", "vip": true, "score": 3}',
        b'{"plan": "gold", "vip": true, "score": 3}',
        bytearray(b'{"plan": "gold", "vip": true, "score": 3}'),
        memoryview(b'{"plan": "gold", "vip": true, "score": 3}'),
    ],
)
def test_the_custom_fields_column_is_a_dict_or_json_text_or_bytes(column):
    assert custom_fields_object(column) == {"plan": "gold", "vip": True, "score": 3}


def test_json_values_are_converted_like_column_values():
    fields = custom_fields_object('{"ratio": 0.5, "big": 9007199254740991, "empty": "", "no": false}')
    assert fields == {"ratio": 0.5, "big": MAX, "empty": "", "no": False}
    assert fields is not None and type(fields["no"]) is bool


def test_a_json_null_or_a_none_leaves_the_key_out():
    assert custom_fields_object('{"plan": null, "vip": true}') == {"vip": True}
    assert custom_fields_object({"plan": None, "vip": True}) == {"vip": True}
    assert custom_fields_object('{"plan": null}') == {}


def test_a_null_column_holds_no_fields():
    assert custom_fields_object(None) is None


def test_a_dict_from_the_driver_is_not_changed():
    column = {"plan": None, "when": date(2025, 1, 2)}
    assert custom_fields_object(column) == {"when": "2025-01-02"}
    assert column == {"plan": None, "when": date(2025, 1, 2)}


@pytest.mark.parametrize(
    ("column", "what"),
    [
        ("[1, 2]", "a list"),
        ('"gold"', "text of 4 characters"),
        ("42", "a whole number"),
        ("true", "a boolean"),
        (42, "a whole number"),
        ([PHONE], "a list"),
    ],
)
def test_a_column_that_is_not_a_json_object_is_refused(column, what):
    assert column_refusal(column) == f"column custom_fields holds {what}, not a JSON object; {AN_OBJECT}"


@pytest.mark.parametrize(
    ("column", "what"),
    [
        ('{"plan": ', "text of 9 characters"),
        ("", "text of 0 characters"),
        (f'{{"phone": "{PHONE}"', "text of 24 characters"),
        (b"{", "1 bytes"),
        (memoryview(b"{"), "1 bytes"),
        (b"\xff", "1 bytes that are not UTF-8 text"),
    ],
)
def test_invalid_json_is_refused_without_its_text(column, what):
    message = column_refusal(column)
    assert message == f"column custom_fields holds {what} that is not JSON; {NOT_JSON}"
    assert PHONE_DIGITS not in message


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ('{"plan": {"tier": 1}}', f"custom field 'plan' holds a JSON object. {FIX}"),
        ('{"plan": ["gold"]}', f"custom field 'plan' holds a list. {FIX}"),
        (
            '{"big": 12345678901234567890}',
            "custom field 'big' holds a whole number beyond +/-9,007,199,254,740,991 (send it as text). "
            + FIX,
        ),
        (f'{{"ok": "x", "phones": ["{PHONE}"]}}', f"custom field 'phones' holds a list. {FIX}"),
        (f'{{"{PHONE}": [1]}}', f"custom field '[redacted]' holds a list. {FIX}"),
    ],
)
def test_nested_values_are_refused_naming_the_key(column, message):
    assert column_refusal(column) == message
    assert PHONE_DIGITS not in message


@pytest.mark.parametrize(
    ("column", "position"),
    [
        ('{"": 1}', 1),
        ('{"plan": "gold", "   ": 1}', 2),
        ({"plan": "gold", "vip": True, 7: "x"}, 3),
        ({None: "x"}, 1),
    ],
)
def test_a_key_that_is_not_a_name_is_refused_by_its_position(column, position):
    assert column_refusal(column) == f"column custom_fields has a key (number {position}) that is not a name."


def test_the_json_text_null_holds_no_fields_as_a_null_column_does():
    assert custom_fields_object("null") is None
    assert custom_fields_object(b" null ") is None

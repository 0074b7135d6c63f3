"""Rows -> API records: column mapping, value conversion, and rejection with the API's codes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pendulum
import pytest

from trackly_provider.operators._engine.records import (
    MissingColumnsError,
    RowRejection,
    make_record_builder,
    plan_columns,
)
from trackly_provider.trackly_api.results import encode_records
from trackly_provider.trackly_api.values import id_text, utc_moment

FIX = (
    "Return a timestamp, a date or ISO 8601 text between years 1 and 9999 in UTC; epoch seconds convert with "
    "datetime(col, 'unixepoch') (SQLite), to_timestamp(col) (PostgreSQL) or FROM_UNIXTIME(col) (MySQL, in a "
    "UTC session)."
)
COLUMNS = ["message_id", "offer_id", "phone_number", "send_timestamp", "timestamp"]
build = make_record_builder(plan_columns(COLUMNS))


def sent(record: Any) -> dict[str, Any]:
    """The record as the API receives it: through the request body's encoder."""
    return orjson.loads(encode_records([record]))["records"][0]


def sent_timestamp(value: Any) -> str:
    """A timestamp value as the API receives it."""
    return sent({"timestamp": utc_moment(value)})["timestamp"]


def test_missing_columns_error_names_them_and_shows_how_to_alias():
    with pytest.raises(MissingColumnsError) as raised:
        plan_columns(["message_id", "offer_id", "phone", "clicked_at"])
    message = str(raised.value)
    assert "phone_number, timestamp" in message
    assert "returned message_id, offer_id, phone, clicked_at" in message
    assert (
        "Alias your columns to the clicks record fields, e.g. SELECT <your column> AS phone_number" in message
    )


def test_columns_match_case_insensitively_and_extras_are_listed():
    layout = plan_columns(["MESSAGE_ID", "Offer_Id", "PHONE_NUMBER", "TIMESTAMP", "campaign"])
    assert layout.positions == {"message_id": 0, "offer_id": 1, "phone_number": 2, "timestamp": 3}
    assert layout.ignored == ["campaign"]


def test_a_full_row_becomes_a_record_in_utc_iso_8601():
    sent_at = datetime(2025, 11, 15, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    clicked = datetime(2025, 11, 15, 14, 35, 22, 123456, tzinfo=timezone.utc)
    assert sent(build(["a1", "o1", "+12025559876", sent_at, clicked])) == {
        "message_id": "a1",
        "offer_id": "o1",
        "phone_number": "+12025559876",
        "send_timestamp": "2025-11-15T14:30:00+00:00",
        "timestamp": "2025-11-15T14:35:22.123456+00:00",
    }


def test_naive_datetimes_and_offsetless_text_are_taken_as_utc():
    assert sent_timestamp(datetime(2025, 11, 15, 23, 59, 59, 999999)) == "2025-11-15T23:59:59.999999+00:00"
    assert sent_timestamp("2025-11-15 00:00:00") == "2025-11-15T00:00:00+00:00"
    assert sent_timestamp("2025-11-15T01:00:00+01:00") == "2025-11-15T00:00:00+00:00"
    assert sent_timestamp("2025-11-15T00:00:00Z") == "2025-11-15T00:00:00+00:00"


@pytest.mark.parametrize("bad", ["15/11/2025 10:00", "yesterday", "2025-13-01 00:00:00", 1731628800, b"x"])
def test_non_iso_timestamps_are_invalid(bad):
    assert utc_moment(bad) is None


@pytest.mark.parametrize(
    ("value", "text"), [(42, "42"), (Decimal("7"), "7"), (Decimal("7E+2"), "700"), (" m-1 ", "m-1")]
)
def test_ids_that_are_whole_numbers_become_strings(value, text):
    assert id_text(value) == text


def test_the_builder_strips_text_ids_and_phone_numbers():
    assert sent(build([" m-1 ", "\to-1 ", " +12025559876\n", None, "2025-11-15 10:00:00"])) == {
        "message_id": "m-1",
        "offer_id": "o-1",
        "phone_number": "+12025559876",
        "timestamp": "2025-11-15T10:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("row", "rejection"),
    [
        (
            [None, "o", "+12025559876", None, "2025-11-15 10:00:00"],
            ("missing_message_id", "column message_id is NULL or empty", None),
        ),
        (
            ["  ", "o", "+12025559876", None, "2025-11-15 10:00:00"],
            ("missing_message_id", "column message_id is NULL or empty", None),
        ),
        (
            ["m", None, "+12025559876", None, "2025-11-15 10:00:00"],
            ("missing_offer_id", "column offer_id is NULL or empty", "m"),
        ),
        (
            ["m", "o", "  ", None, "2025-11-15 10:00:00"],
            ("missing_phone_number", "column phone_number is NULL or empty", "m"),
        ),
        (
            ["m", "o", "+12025559876", None, None],
            ("missing_timestamp", "column timestamp is NULL or empty", "m"),
        ),
        (
            ["m", "o", "+12025559876", None, ""],
            ("missing_timestamp", "column timestamp is NULL or empty", "m"),
        ),
        (
            ["m", "o", "+12025559876", None, "not a date"],
            (
                "invalid_timestamp",
                f"column timestamp holds text of 10 characters, not a valid timestamp. {FIX}",
                "m",
            ),
        ),
        (
            ["m", "o", "+12025559876", "not a date", "2025-11-15 10:00:00"],
            (
                "invalid_timestamp",
                f"column send_timestamp holds text of 10 characters, not a valid send_timestamp. {FIX}",
                "m",
            ),
        ),
    ],
)
def test_rows_the_api_would_reject_get_its_code_and_a_text_without_their_values(row, rejection):
    """The code, the message id and the exact text users see in XCom, logs and the rejects table."""
    assert build(row) == RowRejection(*rejection)


def test_empty_optional_send_timestamp_is_left_out():
    record = build(["m", "o", "+12025559876", None, "2025-11-15 10:00:00"])
    assert sent(record) == {
        "message_id": "m",
        "offer_id": "o",
        "phone_number": "+12025559876",
        "timestamp": "2025-11-15T10:00:00+00:00",
    }


def test_fast_paths_give_the_same_utc_iso_form():
    from zoneinfo import ZoneInfo

    moment = datetime(2025, 11, 15, 0, 0, 6, 500000)
    assert sent_timestamp(moment.replace(tzinfo=ZoneInfo("Etc/UTC"))) == "2025-11-15T00:00:06.500000+00:00"
    assert sent_timestamp(moment.replace(tzinfo=timezone.utc)) == "2025-11-15T00:00:06.500000+00:00"
    assert sent_timestamp(moment) == "2025-11-15T00:00:06.500000+00:00"
    assert sent_timestamp("2025-11-15 00:00:06.500") == "2025-11-15T00:00:06.500000+00:00"
    assert sent_timestamp("2025-11-15 00:00:06.5+00") == "2025-11-15T00:00:06.500000+00:00"  # PostgreSQL text
    assert sent_timestamp(date(2025, 11, 15)) == "2025-11-15T00:00:00+00:00"
    assert sent_timestamp("2025-11-15") == "2025-11-15T00:00:00+00:00"
    assert sent_timestamp(" 2025-11-15T00:00:06 ") == "2025-11-15T00:00:06+00:00"
    assert sent_timestamp("2025-11-15T00:00:06+05:30") == "2025-11-14T18:30:06+00:00"


def test_pendulum_datetimes_are_sent_in_utc():
    paris = pendulum.datetime(2025, 11, 15, 1, 0, 6, tz="Europe/Paris")
    assert sent_timestamp(paris) == "2025-11-15T00:00:06+00:00"
    assert sent_timestamp(pendulum.datetime(2025, 11, 15, tz="UTC")) == "2025-11-15T00:00:00+00:00"
    assert sent({"timestamp": paris})["timestamp"] == "2025-11-15T00:00:06+00:00"  # a hook user's own record


def test_a_value_json_cannot_carry_is_refused_naming_its_type():
    with pytest.raises(TypeError) as raised:  # orjson's JSONEncodeError, caused by ours
        encode_records([{"message_id": {"m"}}])
    assert str(raised.value.__cause__) == "a record value of type set cannot be sent as JSON"

"""
Rows -> contacts (operators/_engine/records.py with CONTACTS): custom_<key> columns and a JSON
custom_fields column, the opt-ins' fields on every record, rejections with the API's codes named by
a reference (never the phone number), the 4,000-byte limit per contact, and the count of records
sent without signup_date. The history entities' builder is checked unchanged.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from trackly_provider.operators._engine import opt_ins
from trackly_provider.operators._engine.records import (
    MissingColumnsError,
    RowRejection,
    make_record_builder,
    plan_columns,
)
from trackly_provider.trackly_api.entities import CLICKS, CONTACTS
from trackly_provider.trackly_api.references import personal_reference, record_key
from trackly_provider.trackly_api.results import encode_record, encode_records

SECRET = "secret"
PHONE, LIST = "+12025550124", "+14155550100"
REF = personal_reference(PHONE, SECRET)
OFF = {"use_journeys": False, "use_validation": False}
COLUMNS = [
    "phone_number",
    "list_number",
    "signup_date",
    "ip_address",
    "url",
    "custom_fields",
    "custom_plan",
    "CUSTOM_Tier",
]
PHONE_FIX = (
    "Return the number in E.164 (+ then the country code and number, e.g. +14155550100), or set the "
    "operator's default_region (e.g. 'US') for numbers written without a country code."
)
CUSTOM_FIX = "A custom field takes text, a number or a boolean: cast it in the query (CAST(col AS CHAR))."


def builder(
    columns: list[str] = COLUMNS,
    chosen: dict[str, bool] | None = None,
    missing: Counter[str] | None = None,
) -> Any:
    return make_record_builder(
        plan_columns(columns, CONTACTS),
        CONTACTS,
        "US",
        key_of=record_key(CONTACTS, SECRET),
        constants=opt_ins.record_fields(CONTACTS, chosen or {}),
        missing=Counter() if missing is None else missing,
    )


def row(**values: Any) -> list[Any]:
    """A row of COLUMNS: the phone number and list by default, everything else NULL."""
    named = {"phone_number": PHONE, "list_number": LIST, **values}
    return [named.get(column) for column in COLUMNS]


def sent(record: Any) -> dict[str, Any]:
    """The contact as the API receives it: through the request body's encoder."""
    assert isinstance(record, dict), record
    return orjson.loads(encode_records([record], CONTACTS.body_key))["contacts"][0]


# --- plan_columns ---------------------------------------------------------------------------------


def test_custom_columns_become_custom_field_keys_with_their_case_kept():
    layout = plan_columns(
        ["PHONE_NUMBER", "List_Number", "custom_Plan", "CUSTOM_vip", "Custom_Loyalty_Tier", "note"], CONTACTS
    )
    assert layout.positions == {"phone_number": 0, "list_number": 1}
    assert layout.custom == (("Plan", 2), ("vip", 3), ("Loyalty_Tier", 4))
    assert layout.ignored == ["note"]


def test_a_column_named_custom_alone_is_ignored():
    layout = plan_columns(["phone_number", "list_number", "custom_", "CUSTOM_"], CONTACTS)
    assert layout.custom == ()
    assert layout.ignored == ["custom_", "CUSTOM_"]


def test_known_fields_win_over_the_custom_prefix():
    layout = plan_columns(["phone_number", "list_number", "CUSTOM_FIELDS", "custom_fields"], CONTACTS)
    assert layout.positions == {"phone_number": 0, "list_number": 1, "custom_fields": 2}
    assert layout.custom == ()
    assert layout.ignored == []


def test_the_first_of_two_custom_columns_for_one_key_wins():
    layout = plan_columns(["phone_number", "list_number", "custom_plan", "custom_plan"], CONTACTS)
    assert layout.custom == (("plan", 2),)


def test_opt_in_columns_in_the_query_are_ignored():
    layout = plan_columns(
        ["phone_number", "list_number", "use_journeys", "skip_journey_if_exists", "use_validation"], CONTACTS
    )
    assert layout.ignored == ["use_journeys", "skip_journey_if_exists", "use_validation"]
    columns = ["phone_number", "list_number", "use_journeys", "use_validation"]
    assert sent(builder(columns)([PHONE, LIST, True, True])) == {
        "phone_number": PHONE,
        "list_number": LIST,
        **OFF,
    }


def test_missing_contact_columns_are_named():
    with pytest.raises(MissingColumnsError) as raised:
        plan_columns(["phone", "custom_plan"], CONTACTS)
    assert str(raised.value) == (
        "The query is missing the required column(s) phone_number, list_number; it returned phone, "
        "custom_plan. Alias your columns to the contacts record fields, e.g. SELECT <your column> AS "
        "phone_number, ... (required: phone_number, list_number; optional: signup_date, ip_address, url, "
        "custom_fields)."
    )


# --- records built --------------------------------------------------------------------------------


def test_a_full_row_becomes_a_contact():
    signed_up = datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    record = builder()(
        row(
            phone_number="(202) 555-0124",
            list_number="415.555.0100",
            signup_date=signed_up,
            ip_address="203.0.113.7",
            url="https://example.com/join",
            custom_fields='{"plan": "silver", "score": 3}',
            custom_plan="gold",
            CUSTOM_Tier=2,
        )
    )
    assert sent(record) == {
        "phone_number": PHONE,
        "list_number": LIST,
        "signup_date": "2024-03-01T14:30:00+00:00",
        "ip_address": "203.0.113.7",
        "url": "https://example.com/join",
        "custom_fields": {"plan": "gold", "score": 3, "Tier": 2},
        "use_journeys": False,
        "use_validation": False,
    }


@pytest.mark.parametrize(
    ("phone", "listed"),
    [
        ("2025550124", "4155550100"),
        (" +1 202-555-0124 ", "+1 (415) 555-0100"),
        (12025550124, 4155550100),
        (b"202 555 0124", "tel:+1-415-555-0100"),
    ],
)
def test_phone_numbers_are_sent_in_e164_with_the_default_region(phone, listed):
    assert sent(builder()(row(phone_number=phone, list_number=listed))) == {
        "phone_number": PHONE,
        "list_number": LIST,
        **OFF,
    }


def test_a_custom_column_wins_over_the_json_column_and_a_null_one_leaves_its_key_to_it():
    build = builder()
    fields = {"plan": "silver", "Tier": 1, "since": "2019"}
    record = build(row(custom_fields=orjson.dumps(fields), custom_plan="gold", CUSTOM_Tier=None))
    assert sent(record)["custom_fields"] == {"plan": "gold", "Tier": 1, "since": "2019"}


def test_a_null_custom_column_leaves_its_key_out():
    record = builder()(row(custom_plan=None, CUSTOM_Tier=True))
    assert sent(record) == {
        "phone_number": PHONE,
        "list_number": LIST,
        "custom_fields": {"Tier": True},
        **OFF,
    }


def test_no_custom_value_sends_no_custom_fields():
    build = builder()
    assert sent(build(row())) == {"phone_number": PHONE, "list_number": LIST, **OFF}
    assert sent(build(row(custom_fields='{"plan": null}'))) == {
        "phone_number": PHONE,
        "list_number": LIST,
        **OFF,
    }
    assert sent(build(row(custom_fields={}))) == {"phone_number": PHONE, "list_number": LIST, **OFF}


def test_a_json_column_alone_gives_the_custom_fields():
    build = builder(["phone_number", "list_number", "custom_fields"])
    record = build([PHONE, LIST, {"vip": True, "ratio": 0.5}])
    assert sent(record)["custom_fields"] == {"vip": True, "ratio": 0.5}


def test_custom_columns_alone_give_the_custom_fields():
    build = builder(["phone_number", "list_number", "custom_a", "custom_b"])
    assert sent(build([PHONE, LIST, "x", ""]))["custom_fields"] == {"a": "x", "b": ""}


@pytest.mark.parametrize(
    ("chosen", "constants"),
    [
        ({}, OFF),
        (
            {"use_journeys": True},
            {"use_journeys": True, "skip_journey_if_exists": True, "use_validation": False},
        ),
        ({"use_validation": True}, {"use_journeys": False, "use_validation": True}),
    ],
)
def test_the_opt_in_fields_are_on_every_record(chosen, constants):
    build = builder(chosen=chosen)
    records = [build(row()), build(row(custom_plan="gold")), build(row(phone_number="2025550199"))]
    for record in records:
        assert isinstance(record, dict)
        assert {key: record[key] for key in constants} == constants
        assert set(record) - set(constants) <= {"phone_number", "list_number", "custom_fields"}


def test_records_do_not_share_their_custom_fields():
    build = builder()
    first = build(row(custom_plan="gold"))
    second = build(row(CUSTOM_Tier=1))
    assert isinstance(first, dict) and isinstance(second, dict)
    assert (first["custom_fields"], second["custom_fields"]) == ({"plan": "gold"}, {"Tier": 1})


# --- rejections -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "rejection"),
    [
        ({"phone_number": None}, ("missing_phone_number", "column phone_number is NULL or empty", None)),
        ({"phone_number": "   "}, ("missing_phone_number", "column phone_number is NULL or empty", None)),
        (
            {"phone_number": "202-555"},
            (
                "invalid_phone",
                f"column phone_number holds text of 7 characters, not a valid phone_number. {PHONE_FIX}",
                None,
            ),
        ),
        (
            {"phone_number": True},
            (
                "invalid_phone",
                f"column phone_number holds a boolean, not a valid phone_number. {PHONE_FIX}",
                None,
            ),
        ),
        ({"list_number": None}, ("missing_list_number", "column list_number is NULL or empty", REF)),
        (
            {"list_number": "555-0100 ext 2"},
            (
                "invalid_list_number",
                f"column list_number holds text of 14 characters, not a valid list_number. {PHONE_FIX}",
                REF,
            ),
        ),
        (
            {"signup_date": "last spring"},
            (
                "invalid_signup_date",
                "column signup_date holds text of 11 characters, not a valid signup_date. Return a "
                "timestamp, a date or ISO 8601 text between years 1 and 9999 in UTC; epoch seconds "
                "convert with datetime(col, 'unixepoch') (SQLite), to_timestamp(col) (PostgreSQL) or "
                "FROM_UNIXTIME(col) (MySQL, in a UTC session).",
                REF,
            ),
        ),
        (
            {"custom_plan": ["+12025550124"]},
            ("invalid_custom_fields", f"custom field 'plan' holds a list. {CUSTOM_FIX}", REF),
        ),
        (
            {"CUSTOM_Tier": float("nan")},
            ("invalid_custom_fields", f"custom field 'Tier' holds NaN or an infinity. {CUSTOM_FIX}", REF),
        ),
        (
            {"custom_fields": '{"phones": ["+12025550124"]}'},
            ("invalid_custom_fields", f"custom field 'phones' holds a list. {CUSTOM_FIX}", REF),
        ),
        (
            {"custom_fields": "[1]"},
            (
                "invalid_custom_fields",
                'column custom_fields holds a list, not a JSON object; it takes one such as {"plan": "gold", '
                '"vip": true}.',
                REF,
            ),
        ),
        (
            {"custom_fields": "+1 202 555 0124"},
            (
                "invalid_custom_fields",
                "column custom_fields holds text of 15 characters that is not JSON; it takes a JSON object "
                'such as {"plan": "gold", "vip": true}.',
                REF,
            ),
        ),
    ],
)
def test_rejections_carry_the_api_code_and_the_reference_never_the_number(values, rejection):
    result = builder()(row(**values))
    assert result == RowRejection(*rejection)
    assert "2025550124" not in repr(result)
    assert "555 0124" not in repr(result)


def test_the_reference_is_of_the_number_as_sent_whatever_its_spelling():
    build = builder()
    for spelling in ("(202) 555-0124", "+1.202.555.0124", 2025550124):
        assert build(row(phone_number=spelling, list_number=None)) == RowRejection(
            "missing_list_number", "column list_number is NULL or empty", REF
        )


def test_without_a_key_of_a_rejected_contact_is_named_by_nothing_never_its_number():
    build = make_record_builder(plan_columns(["phone_number", "list_number"], CONTACTS), CONTACTS, "US")
    assert build([PHONE, None]) == RowRejection(
        "missing_list_number", "column list_number is NULL or empty", None
    )


# --- 4,000 bytes per contact ----------------------------------------------------------------------

# The contact with an empty custom field "notes" is 133 bytes as JSON: the notes may hold 3,867.
BASE_JSON = (
    '{"phone_number":"+12025550124","list_number":"+14155550100","custom_fields":{"notes":""},'
    '"use_journeys":false,"use_validation":false}'
)
NOTES_ROOM = 4_000 - len(BASE_JSON)
NOTES_COLUMNS = ["phone_number", "list_number", "custom_notes"]


def notes_of(size: int) -> str:
    """Text of ``size`` bytes in UTF-8 (and in JSON: nothing to escape), 2-byte characters first."""
    return "é" * 1_000 + "x" * (size - 2_000)


def test_the_base_contact_is_133_bytes():
    assert len(BASE_JSON) == 133
    record = builder(NOTES_COLUMNS)([PHONE, LIST, ""])
    assert encode_record(record) == BASE_JSON.encode()


def test_a_contact_of_exactly_4000_bytes_is_sent():
    notes = notes_of(NOTES_ROOM)
    assert (len(notes), len(notes.encode())) == (2_867, 3_867)
    record = builder(NOTES_COLUMNS)([PHONE, LIST, notes])
    assert isinstance(record, dict)
    assert encode_record(record) == BASE_JSON.replace('"notes":""', f'"notes":"{notes}"').encode()
    assert len(encode_record(record)) == 4_000


def test_a_contact_of_4001_bytes_is_rejected_naming_its_largest_field_never_a_value():
    rejection = builder(NOTES_COLUMNS)([PHONE, LIST, notes_of(NOTES_ROOM + 1)])
    assert rejection == RowRejection(
        "record_too_large",
        "the contacts record is 4,001 bytes as JSON, over the API's 4,000 bytes per record; its largest "
        "field, custom_fields, is 3,880 bytes. Shorten its column(s) in the query (custom fields: the "
        "custom_fields column and the custom_<key> ones).",
        REF,
    )  # custom_fields: {"notes":"<3,868 bytes>"}


def test_a_long_url_is_named_as_the_largest_field():
    url = "https://example.com/?n=" + "+1 202 555 0199 " * 250
    columns = ["phone_number", "list_number", "url", "custom_plan"]
    rejection = builder(columns)([PHONE, LIST, url, "gold"])
    assert isinstance(rejection, RowRejection)
    assert rejection.code == "record_too_large"
    assert rejection.message_id == REF
    assert rejection.error == (
        f"the contacts record is {len(url) + 145:,} bytes as JSON, over the API's 4,000 bytes per record; "
        f"its largest field, url, is {len(url) + 2:,} bytes. Shorten its column(s) in the query (custom "
        "fields: the custom_fields column and the custom_<key> ones)."
    )
    assert "555 0199" not in rejection.error
    assert "example.com" not in rejection.error


def test_the_opt_in_fields_count_towards_the_limit():
    notes = notes_of(NOTES_ROOM)
    assert isinstance(builder(NOTES_COLUMNS)([PHONE, LIST, notes]), dict)
    # journeys on adds ,"skip_journey_if_exists":true (30 bytes) and turns false into true (-1)
    rejection = builder(NOTES_COLUMNS, chosen={"use_journeys": True})([PHONE, LIST, notes])
    assert isinstance(rejection, RowRejection)
    assert rejection.error.startswith("the contacts record is 4,029 bytes as JSON")


# --- records without signup_date -------------------------------------------------------------------


def test_only_records_returned_without_signup_date_are_counted():
    missing: Counter[str] = Counter()
    build = builder(missing=missing)
    results = [
        build(row(signup_date=datetime(2024, 1, 1))),  # sent with it
        build(row()),  # sent without it
        build(row(signup_date="   ")),  # blank: sent without it
        build(row(list_number=None)),  # rejected: missing_list_number
        build(row(phone_number="x")),  # rejected: invalid_phone
        build(row(custom_plan=[1])),  # rejected: invalid_custom_fields
        build(row(signup_date="last spring")),  # rejected: invalid_signup_date
        build(row(url="u" * 4_000)),  # rejected: record_too_large
    ]
    assert [type(result).__name__ for result in results] == ["dict"] * 3 + ["RowRejection"] * 5
    assert missing == Counter({"signup_date": 2})


def test_a_query_without_a_signup_date_column_counts_every_record_sent():
    missing: Counter[str] = Counter({"signup_date": 0})
    build = builder(["phone_number", "list_number"], missing=missing)
    for _ in range(3):
        build([PHONE, LIST])
    build([None, LIST])
    assert missing == Counter({"signup_date": 3})


# --- the history entities are unchanged --------------------------------------------------------------


def test_a_click_gets_no_custom_fields_constants_or_size_check():
    columns = ["message_id", "offer_id", "phone_number", "timestamp", "custom_plan", "use_journeys"]
    layout = plan_columns(columns, CLICKS)
    assert layout.custom == ()
    assert layout.ignored == ["custom_plan", "use_journeys"]
    missing: Counter[str] = Counter()
    build = make_record_builder(
        layout,
        CLICKS,
        "US",
        key_of=record_key(CLICKS, SECRET),
        constants=opt_ins.record_fields(CLICKS, {"use_journeys": True}),
        missing=missing,
    )
    record = build(["m-1", "o-1", "(202) 555-0124", datetime(2025, 11, 15, 10, 0), "gold", True])
    assert record == {
        "message_id": "m-1",
        "offer_id": "o-1",
        "phone_number": PHONE,
        "timestamp": datetime(2025, 11, 15, 10, 0),
    }
    long_offer = "o" * 5_000  # no 4,000-byte limit on a click
    assert isinstance(build(["m-2", long_offer, PHONE, datetime(2025, 11, 15), None, None]), dict)
    assert build(["m-3", "o-1", "x", datetime(2025, 11, 15), None, None]) == RowRejection(
        "invalid_phone_number",
        f"column phone_number holds text of 1 characters, not a valid phone_number. {PHONE_FIX}",
        "m-3",
    )
    assert missing == Counter()

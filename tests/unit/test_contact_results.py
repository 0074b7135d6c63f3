"""
A contact import's answer (trackly_api/results.py with CONTACTS.answer_counts): its other counts,
its errors without the phone number each repeats, its warnings filtered; results combined.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from trackly_provider.exceptions import TracklyResponseError
from trackly_provider.trackly_api.entities import CONTACTS
from trackly_provider.trackly_api.results import (
    ImportResult,
    RecordError,
    encode_records,
    parse_import_result,
)

COUNTS = CONTACTS.answer_counts
PHONE = "+12025550123"
KEY = "trk_" + "Q7" * 16


def parse(body: Any, records_sent: int) -> ImportResult:
    return parse_import_result(body, records_sent, COUNTS)


def refused(body: Any, records_sent: int) -> str:
    with pytest.raises(TracklyResponseError) as raised:
        parse(body, records_sent)
    return str(raised.value)


def answer(**extra: Any) -> dict[str, Any]:
    return {"success_count": 3, "error_count": 0, **extra}


def test_the_answer_counts_are_read():
    result = parse(answer(contacts_created=2, list_contacts_created=3, journeys_enrolled=1), 3)
    assert result == ImportResult(
        3, 0, 0, [], {"contacts_created": 2, "list_contacts_created": 3, "journeys_enrolled": 1}, ()
    )
    assert list(result.counts) == ["contacts_created", "list_contacts_created", "journeys_enrolled"]


def test_absent_counts_are_zero():
    result = parse(answer(contacts_created=3), 3)
    assert result.counts == {"contacts_created": 3, "list_contacts_created": 0, "journeys_enrolled": 0}
    assert result.duplicates_skipped == 0  # an upsert: the answer has no duplicates_skipped


def test_a_count_equal_to_success_count_is_accepted():
    assert parse(answer(journeys_enrolled=3), 3).counts["journeys_enrolled"] == 3


@pytest.mark.parametrize("name", COUNTS)
def test_a_count_above_success_count_is_not_trusted(name):
    assert refused(answer(**{name: 4}), 3) == (
        f"Trackly's counts do not add up: '{name}' is 4 but only 3 records were stored. Not trusting "
        "this response; the batch is not counted."
    )


@pytest.mark.parametrize("bad", [-1, True, False, "2", 1.0, None, [1]])
@pytest.mark.parametrize("name", COUNTS)
def test_a_count_that_is_not_a_whole_number_is_not_trusted(name, bad):
    assert refused(answer(**{name: bad}), 3) == (
        f"Trackly answered 200 without a valid '{name}' count; cannot trust it."
    )


def test_without_answer_counts_the_contact_counts_are_not_read():
    result = parse_import_result(answer(contacts_created=99, journeys_enrolled="x"), 3)
    assert result.counts == {}


def test_an_error_entry_keeps_no_phone_number():
    body = {
        "success_count": 1,
        "error_count": 2,
        "errors": [
            {"index": 0, "phone_number": PHONE, "code": "invalid_phone", "error": f"{PHONE} is not valid"},
            {
                "index": 2,
                "phone_number": "+1 (202) 555-0123",
                "code": "list_not_found",
                "error": "List +1 (415) 555-0100 not found for 202-555-0123",
            },
        ],
        "contacts_created": 1,
    }
    result = parse(body, 3)
    assert result.errors == [
        RecordError(0, "invalid_phone", "[redacted] is not valid"),
        RecordError(2, "list_not_found", "List [redacted] not found for [redacted]"),
    ]
    for error in result.errors:
        assert set(vars(error)) == {"index", "code", "error"}
    text = repr(result)
    for digits in ("2025550123", "555-0123", "555 0123", "4155550100", "555-0100"):
        assert digits not in text


def test_a_code_carrying_a_phone_number_is_not_kept():
    body = {"success_count": 0, "error_count": 1, "errors": [{"index": 0, "code": f"bad_{PHONE}"}]}
    assert parse(body, 1).errors == [RecordError(0, "unexpected_code", "")]


def test_warnings_are_filtered():
    warnings = [
        "List +1 (415) 555-0100 has active Welcome Journeys and use_journeys was not set",
        f"key {KEY} is read-only",
        "  spaced\tout\n text  ",
    ]
    assert parse(answer(warnings=warnings), 3).warnings == (
        "List [redacted] has active Welcome Journeys and use_journeys was not set",
        "key [redacted] is read-only",
        "spaced out text",
    )


@pytest.mark.parametrize("warnings", ["use_journeys was not set", {"a": "b"}, 3, None, True])
def test_warnings_that_are_not_a_list_are_ignored(warnings):
    assert parse(answer(warnings=warnings), 3).warnings == ()


def test_warnings_that_are_not_text_are_dropped_and_duplicates_kept_once():
    listed = [3, None, "same", {"text": "x"}, "", "same", ["y"], " same ", "other"]
    assert parse(answer(warnings=listed), 3).warnings == ("same", "other")


def test_at_most_ten_warnings_are_kept():
    listed = [f"warning {n}" for n in range(25)]
    assert parse(answer(warnings=listed), 3).warnings == tuple(f"warning {n}" for n in range(10))


def test_a_long_warning_is_cut():
    (kept,) = parse(answer(warnings=["w" * 1_000]), 3).warnings
    assert kept == "w" * 299 + "…"


def test_adding_results_sums_counts_and_merges_warnings():
    first = ImportResult(
        2,
        1,
        0,
        [RecordError(0, "invalid_phone", "a")],
        {"contacts_created": 2, "list_contacts_created": 1, "journeys_enrolled": 1},
        ("w1", "w2"),
    )
    second = ImportResult(
        3,
        0,
        0,
        [RecordError(4, "list_not_found", "b")],
        {"contacts_created": 1, "list_contacts_created": 3, "journeys_enrolled": 2},
        ("w2", "w3"),
    )
    assert first + second == ImportResult(
        5,
        1,
        0,
        [RecordError(0, "invalid_phone", "a"), RecordError(4, "list_not_found", "b")],
        {"contacts_created": 3, "list_contacts_created": 4, "journeys_enrolled": 3},
        ("w1", "w2", "w3"),
    )


def test_adding_results_keeps_every_count_also_when_it_is_zero():
    counts = {"contacts_created": 1, "list_contacts_created": 0, "journeys_enrolled": 0}
    total = ImportResult(1, 0, 0, counts=counts) + ImportResult(1, 0, 0, counts=counts)
    assert total.counts == {"contacts_created": 2, "list_contacts_created": 0, "journeys_enrolled": 0}


def test_a_shifted_result_keeps_its_counts_and_warnings():
    counts = {"contacts_created": 2, "list_contacts_created": 2, "journeys_enrolled": 0}
    result = ImportResult(2, 1, 0, [RecordError(1, "invalid_phone", "e")], counts, ("w",))
    assert result.shifted(500) == ImportResult(
        2, 1, 0, [RecordError(501, "invalid_phone", "e")], counts, ("w",)
    )


def test_a_split_batch_parsed_in_halves_adds_up_to_the_whole():
    first = parse({"success_count": 2, "error_count": 0, "contacts_created": 2, "warnings": ["w"]}, 2)
    second = parse(
        {
            "success_count": 1,
            "error_count": 1,
            "errors": [{"index": 0, "phone_number": PHONE, "code": "not_sendable", "error": "VOIP"}],
            "contacts_created": 1,
            "journeys_enrolled": 0,
            "warnings": ["w", "v"],
        },
        2,
    )
    whole = first + second.shifted(2)
    assert (whole.success_count, whole.error_count, whole.duplicates_skipped) == (3, 1, 0)
    assert whole.errors == [RecordError(2, "not_sendable", "VOIP")]
    assert whole.counts["contacts_created"] == 3
    assert whole.warnings == ("w", "v")


def test_the_contacts_body_has_the_contacts_key():
    records = [{"phone_number": PHONE, "list_number": "+14155550100", "use_journeys": False}]
    body = encode_records(records, CONTACTS.body_key)
    assert body == (
        b'{"contacts":[{"phone_number":"+12025550123","list_number":"+14155550100","use_journeys":false}]}'
    )
    assert orjson.loads(body) == {"contacts": records}
    assert encode_records(records).startswith(b'{"records":[')

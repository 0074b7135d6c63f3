"""
What is kept of a server's or a driver's words: codes in the API's alphabet, texts without phone
numbers, keys or control characters (trackly_api/redact.py).
"""

from __future__ import annotations

import pytest

from trackly_provider.trackly_api.redact import (
    UNEXPECTED_CODE,
    redact_phone_numbers,
    server_code,
    server_text,
)


@pytest.mark.parametrize(
    ("code", "kept"),
    [
        ("invalid_phone", "invalid_phone"),
        ("message_not_found", "message_not_found"),
        ("+12025550123", UNEXPECTED_CODE),
        ("contact_12025550123", UNEXPECTED_CODE),
        ("Invalid Phone", UNEXPECTED_CODE),
        ("a" * 65, UNEXPECTED_CODE),
        (12025550123, UNEXPECTED_CODE),
        (["x"], UNEXPECTED_CODE),
    ],
)
def test_a_code_outside_the_apis_alphabet_is_unexpected_code(code, kept):
    assert server_code(code) == kept


def test_a_server_text_loses_phone_numbers_keys_and_control_characters_and_is_cut():
    key = "trk_" + "A1" * 16
    assert server_text(f"contact +1 (202) 555-0123 with key {key}\r\nnot\tfound") == (
        "contact [redacted] with key [redacted] not found"
    )
    long = server_text("x" * 5000)
    assert len(long) == 300 and long.endswith("…")


@pytest.mark.parametrize(
    "written",
    ["202_555_0123", "202,555,0123", "+1_202_555_0123", "+1,202,555,0123", "202, 555, 0123"],
)
def test_a_server_text_loses_phone_numbers_broken_by_underscores_or_commas(written):
    assert server_text(f"no contact {written}: not found") == "no contact [redacted]: not found"


@pytest.mark.parametrize(
    "text",
    ["its limit is 5,000,000 bytes", "SUBSTRING(message, 1, 10000)", "1,048,576 bytes", "row 12 34 56"],
)
def test_numbers_that_no_phone_is_written_as_are_kept(text):
    assert server_text(text) == text


def test_phone_numbers_in_texts_from_the_api_are_redacted():
    assert redact_phone_numbers("Contact +1 (202) 555-9876 not found") == "Contact [redacted] not found"
    assert redact_phone_numbers("No message exists with id msg-42") == "No message exists with id msg-42"


@pytest.mark.parametrize(
    "written",
    [
        "202/555/0199",
        "1\u2011202\u2011555\u20110199",
        "202\u2013555\u20130199",
        "1\u00a0202\u00a0555\u00a00199",
        "+1.202.555.0199",
    ],
)
def test_phone_numbers_are_redacted_however_their_digits_are_separated(written):
    """Every separator phone_numbers reads between digits (a driver's error may quote any of them)."""
    assert redact_phone_numbers(f'invalid input syntax for type bigint: "{written}"') == (
        'invalid input syntax for type bigint: "[redacted]"'
    )


@pytest.mark.parametrize(
    "echoed",
    ["%2B1%20202%20555%200143", "+1:202:555:0143", "202|555|0143", "+1'202'555'0143", "+1~202~555~0143"],
)
def test_numbers_a_server_echoes_with_other_separators_or_url_encoded_are_redacted(echoed):
    assert "555" not in server_text(f"Contact {echoed} rejected")

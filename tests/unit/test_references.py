"""
Stand-ins for a contact's phone number in errors, rejects and the ledger (trackly_api/references.py):
``c_`` and the first 16 hex digits of HMAC-SHA256 keyed with the API key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from trackly_provider.trackly_api.entities import CLICKS, CONTACTS, REVENUE, SENDS
from trackly_provider.trackly_api.references import personal_reference, record_key

SECRET = "trk_" + "a1B2" * 8
PHONE = "+12025550123"


def hmac_reference(value: str, secret: str) -> str:
    """The rule computed independently: RFC 2104 HMAC with SHA-256, its first 64 bits in hex."""
    mac = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return "c_" + mac[:8].hex()


def test_a_reference_is_c_and_16_lowercase_hex_digits():
    reference = personal_reference(PHONE, SECRET)
    assert re.fullmatch(r"c_[0-9a-f]{16}", reference)
    assert "2025550123" not in reference


def test_a_reference_is_the_truncated_hmac_sha256_of_the_number_keyed_with_the_secret():
    assert personal_reference(PHONE, SECRET) == hmac_reference(PHONE, SECRET)
    assert personal_reference("+442071838750", "s") == hmac_reference("+442071838750", "s")
    assert personal_reference(PHONE, "secret") == "c_8159b946f5bfe11f"  # computed once, kept


def test_a_non_ascii_secret_is_read_as_utf_8():
    assert personal_reference(PHONE, "clé-secrète") == hmac_reference(PHONE, "clé-secrète")


def test_the_same_number_and_secret_give_the_same_reference():
    assert personal_reference(PHONE, SECRET) == personal_reference(PHONE, SECRET)


def test_another_secret_or_another_number_gives_another_reference():
    reference = personal_reference(PHONE, SECRET)
    assert personal_reference(PHONE, SECRET + "x") != reference
    assert personal_reference("+12025550124", SECRET) != reference


def test_a_contact_is_named_by_the_reference_of_its_phone_number():
    key_of = record_key(CONTACTS, SECRET)
    assert key_of({"phone_number": PHONE, "list_number": "+14155550100"}) == hmac_reference(PHONE, SECRET)


@pytest.mark.parametrize(
    "record",
    [{}, {"list_number": "+14155550100"}, {"phone_number": None}, {"phone_number": 12025550123}],
)
def test_a_contact_without_its_phone_number_as_text_has_no_reference(record):
    assert record_key(CONTACTS, SECRET)(record) is None


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_secret_a_contact_has_no_reference(secret):
    assert record_key(CONTACTS, secret)({"phone_number": PHONE}) is None


def test_a_click_is_named_by_its_message_id_text():
    for secret in (SECRET, None):
        key_of = record_key(CLICKS, secret)
        assert key_of({"message_id": "m-1", "phone_number": PHONE}) == "m-1"
        assert key_of({"phone_number": PHONE}) is None
        assert key_of({"message_id": 42}) is None


@pytest.mark.parametrize(("entity", "key_field"), [(SENDS, "id"), (REVENUE, "message_id")])
def test_other_history_records_are_named_by_their_key_field_text(entity, key_field):
    key_of = record_key(entity, SECRET)
    assert key_of({key_field: "k-1", "phone_number": PHONE}) == "k-1"
    assert key_of({"phone_number": PHONE}) is None

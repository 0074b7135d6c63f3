"""
Phone numbers to E.164, by one rule for every field of every entity (pure functions).

The rule: a value is a phone number when `phonenumbers` (the maintained port of Google's
libphonenumber) reads it, with ``default_region`` for numbers written without a country code, and
its national significant number has a length that libphonenumber's metadata lists as possible for
its country calling code. The number is sent in E.164 (``+`` then country code and number, ITU-T
E.164; the API's format for every phone field). Numbers that pass the rule but are not assigned
are left to Trackly, which rejects them (``invalid_phone`` on sends): ``is_valid_number``'s full
check costs about 24 µs a value, more than the rest of an import's work on a row.

A value already in E.164 (``+`` and digits, the common case) is checked against the same length
table without parsing: about 0.3 µs instead of 12 µs. Both paths give the same verdict
(tests/test_phone_numbers.py checks every country code and length).
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat

MAX_PHONE_CHARS = 64  # longer text is no phone number; libphonenumber itself stops at 250
E164_DIGITS = re.compile(r"\+[1-9][0-9]{1,14}")


def _country_rules() -> dict[str, tuple[frozenset[int], re.Pattern[str] | None]]:
    """
    Country calling code (as text) -> the national significant number lengths possible for it, and
    the national prefix that libphonenumber strips when it follows the code (``+27 0...``).
    """
    table: dict[str, tuple[frozenset[int], re.Pattern[str] | None]] = {}
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        main_region = phonenumbers.region_code_for_country_code(code)
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, main_region)
        if metadata is None or metadata.general_desc is None:
            continue
        prefix = metadata.national_prefix_for_parsing or metadata.national_prefix
        table[str(code)] = (
            frozenset(metadata.general_desc.possible_length),
            re.compile(prefix) if prefix else None,
        )
    return table


COUNTRY_RULES = _country_rules()
POSSIBLE_LENGTHS = {code: lengths for code, (lengths, _) in COUNTRY_RULES.items()}


def is_known_region(region: str) -> bool:
    """Whether ``region`` is a CLDR region code libphonenumber has metadata for (``US``, ``GB``...)."""
    return region in phonenumbers.SUPPORTED_REGIONS


def _e164_verdict(text: str) -> bool | None:
    """
    For ``+`` and digits: True when it is a possible number as written, False when it is not, None
    when a national prefix follows the country code and only libphonenumber can tell.
    """
    for size in (1, 2, 3):
        rules = COUNTRY_RULES.get(text[1 : 1 + size])
        if rules is not None:  # country calling codes are prefix-free: the first match is the code
            lengths, national_prefix = rules
            if national_prefix is not None and national_prefix.match(text, 1 + size):
                return None
            return len(text) - 1 - size in lengths
    return False


def to_e164(text: str, default_region: str | None = None) -> str | None:
    """
    ``text`` as an E.164 number, or None when it is not one by the module's rule.

    :param text: the number as written: ``+14155550100``, ``+1 (415) 555-0100``, ``tel:+1-415-555-0100``,
        or national (``4155550100``, ``(415) 555-0100``) with ``default_region``.
    :param default_region: the CLDR region of numbers written without a country code (``"US"``);
        None: such numbers are not phone numbers.
    """
    if E164_DIGITS.fullmatch(text):
        verdict = _e164_verdict(text)
        if verdict is not None:
            return text if verdict else None
    if len(text) > MAX_PHONE_CHARS:
        return None
    try:
        number = phonenumbers.parse(text, default_region)
    except NumberParseException:
        return None
    if number.extension:  # E.164 has no extension: sending the number without it would be another line
        return None
    national = phonenumbers.national_significant_number(number)
    if len(national) not in POSSIBLE_LENGTHS.get(str(number.country_code), ()):
        return None
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)

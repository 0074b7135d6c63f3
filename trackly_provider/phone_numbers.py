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
E164_MAX_CHARS = 16  # "+" and at most 15 digits (ITU-T E.164, section 6.1)


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


def _rules_by_head() -> dict[str, tuple[int, frozenset[int], re.Pattern[str] | None]]:
    """
    The first three digits after ``+`` -> where the national number starts (1 + the country code's
    length), the text lengths possible for that country code, and its national prefix where a
    number led by those digits may carry one: one lookup finds the code, which is the first one to
    three digits (E.164 codes are prefix-free). Most prefixes are one literal digit (``0``, ``1``,
    ``8``): a head whose national digit is another needs no prefix check at all.
    """
    table = {}
    for number in range(1000):
        head = f"{number:03d}"
        for size in (1, 2, 3):
            rules = COUNTRY_RULES.get(head[:size])
            if rules is None:
                continue
            lengths, national_prefix = rules
            if national_prefix is not None and national_prefix.pattern.isdigit() and size < 3:
                if not head[size:].startswith(national_prefix.pattern[: 3 - size]):
                    national_prefix = None  # a literal prefix these digits do not start with
            table[head] = (1 + size, frozenset(1 + size + length for length in lengths), national_prefix)
            break
    return table


RULES_BY_HEAD = _rules_by_head()


def _e164_verdict(text: str) -> bool | None:
    """
    For ``+`` and digits: True when it is a possible number as written, False when it is not, None
    when a national prefix may follow the country code and only libphonenumber can tell.
    """
    rules = RULES_BY_HEAD.get(text[1:4])
    if rules is None:  # no country calling code (or fewer than three digits: libphonenumber decides)
        return None if len(text) < 4 else False
    national_start, text_lengths, national_prefix = rules
    if national_prefix is not None and national_prefix.match(text, national_start):
        return None
    return len(text) in text_lengths


def to_e164(text: str, default_region: str | None = None) -> str | None:
    """
    ``text`` as an E.164 number, or None when it is not one by the module's rule.

    :param text: the number as written: ``+14155550100``, ``+1 (415) 555-0100``, ``tel:+1-415-555-0100``,
        or national (``4155550100``, ``(415) 555-0100``) with ``default_region``.
    :param default_region: the CLDR region of numbers written without a country code (``"US"``);
        None: such numbers are not phone numbers.
    """
    if text[:1] == "+" and text.isascii() and text[1:].isdigit() and len(text) <= E164_MAX_CHARS:
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

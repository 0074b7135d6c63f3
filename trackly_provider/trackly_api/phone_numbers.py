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
(tests/unit/test_phone_numbers.py checks every country code and length). `phonenumbers` and its
metadata load on the first number read (about 70 ms), not when a DAG file imports an operator.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

MAX_PHONE_CHARS = 64  # longer text is no phone number; libphonenumber itself stops at 250
E164_MAX_CHARS = 16  # "+" and at most 15 digits (ITU-T E.164, section 6.1)
# What may stand between the digits of a number as written: spaces (no-break too), dots, slashes,
# parentheses, dashes of every kind; a '+' for the country code. Nothing else is read.
PHONE_PUNCTUATION = frozenset("+ \t\u00a0().-/\u2010\u2011\u2012\u2013\u2014\u2015\u2212")

CountryRules = tuple[frozenset[int], "re.Pattern[str] | None"]
HeadRules = tuple[int, frozenset[int], "re.Pattern[str] | None"]


@cache
def country_rules() -> dict[str, CountryRules]:
    """
    Country calling code (as text) -> the national significant number lengths possible for it, and
    the national prefix that libphonenumber strips when it follows the code (``+27 0...``).
    """
    import phonenumbers
    from phonenumbers import PhoneMetadata

    table: dict[str, CountryRules] = {}
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


def possible_lengths(country_code: str) -> frozenset[int]:
    """The national significant number lengths possible for a country calling code; none if unknown."""
    rules = country_rules().get(country_code)
    return rules[0] if rules else frozenset()


def is_known_region(region: str) -> bool:
    """Whether ``region`` is a CLDR region code libphonenumber has metadata for (``US``, ``GB``...)."""
    import phonenumbers

    return region in phonenumbers.SUPPORTED_REGIONS


@cache
def rules_by_head() -> dict[str, HeadRules]:
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
            rules = country_rules().get(head[:size])
            if rules is None:
                continue
            lengths, national_prefix = rules
            literal = national_prefix.pattern if national_prefix is not None else ""
            if literal.isdigit() and size < 3 and not head[size:].startswith(literal[: 3 - size]):
                national_prefix = None  # a literal prefix these digits do not start with
            table[head] = (1 + size, frozenset(1 + size + length for length in lengths), national_prefix)
            break
    return table


def _e164_verdict(text: str, by_head: dict[str, HeadRules]) -> bool | None:
    """
    For ``+`` and digits: True when it is a possible number as written, False when it is not, None
    when a national prefix may follow the country code and only libphonenumber can tell.
    """
    rules = by_head.get(text[1:4])
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
        or national (``4155550100``, ``(415) 555-0100``) with ``default_region``. Digits and
        ``PHONE_PUNCTUATION`` only: letters (vanity numbers, extensions) and any other sign refuse it.
    :param default_region: the CLDR region of numbers written without a country code (``"US"``);
        None: such numbers are not phone numbers.
    """
    if text[:1] == "+" and text.isascii() and text[1:].isdigit() and len(text) <= E164_MAX_CHARS:
        verdict = _e164_verdict(text, rules_by_head())
        if verdict is not None:
            return text if verdict else None
    if len(text) > MAX_PHONE_CHARS:
        return None
    if text[:4].lower() == "tel:":  # an RFC 3966 URI: its parameters (;ext=, ;isub=) are refused below
        text = text[4:]
    if not all(char.isdigit() or char in PHONE_PUNCTUATION for char in text):
        return None  # letters (vanity numbers, 'ext', labels), '*', '#', ';': not one line's number
    return _parsed_e164(text, default_region)


def _parsed_e164(text: str, default_region: str | None) -> str | None:
    import phonenumbers

    try:
        number: Any = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if number.extension:  # E.164 has no extension: sending the number without it would be another line
        return None
    national = phonenumbers.national_significant_number(number)
    if len(national) not in possible_lengths(str(number.country_code)):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))

"""
The sandbox account: its sending lists, its settings, and its contacts (``POST /api/v2/contacts/bulk``),
as the API page describes them (/work/shared/trackly-api.md, "Contacts").

A contact is global, keyed by its phone number; a list contact (a membership) is keyed by
(phone number, list number) and holds that membership's custom fields and consent evidence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import Any

from trackly_provider.sandbox import (
    NOT_SENDABLE_PREFIX,
    SANDBOX_LIST_NUMBER,
    SECOND_LIST_NUMBER,
    VALIDATION_FAILS_PREFIX,
)
from trackly_provider.trackly_api.limits import MAX_ERRORS_LISTED, MAX_RECORDS_PER_REQUEST

E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # +6834002 (Niue) is a whole number
LISTS = (  # GET /api/v2/lists, without the contact counts (those are the store's)
    {"id": 1, "name": "Sandbox list", "phone_number": SANDBOX_LIST_NUMBER},
    {"id": 2, "name": "Second sandbox list", "phone_number": SECOND_LIST_NUMBER},
)
KNOWN_LIST_IDS = frozenset(str(sending_list["id"]) for sending_list in LISTS)
LIST_NUMBERS = frozenset(str(sending_list["phone_number"]) for sending_list in LISTS)
MAX_CONTACT_BYTES = 4000  # one contact object, as compact UTF-8 JSON (trackly-api.md, "Contacts")
FIELD_TYPES = (str, int, float, bool)  # a custom field's value: string, number or boolean

Problem = tuple[str, str]  # (code, error text)
JOURNEY_WARNING = (
    "List {} has active Welcome Journeys; use_journeys was not set, so contacts were not enrolled."
)


@dataclass(frozen=True)
class AccountSettings:
    """
    The account as ``POST /_sandbox/account`` sets it: every key left out takes its default.

    - ``require_sends``: a click or revenue record needs its message imported as a send first.
    - ``require_contacts``: a send needs its list to exist (``list_id`` a known list id,
      ``list_number`` a known list number; neither given is fine), and a revenue record needs its
      message's contact (the stored send's ``to_number`` a contact of any list).
    - ``billing``: a payment method is on file; without one, ``use_validation`` gets a 402.
    - ``journey_lists``: list numbers with active Welcome Journeys (default: list 1's).
    - ``enrol_regardless``: a misbehaving server that enrols contacts of journey lists even
      without ``use_journeys``.
    """

    require_sends: bool = False
    require_contacts: bool = False
    billing: bool = False
    journey_lists: tuple[str, ...] = (SANDBOX_LIST_NUMBER,)
    enrol_regardless: bool = False

    @classmethod
    def from_json(cls, data: Any) -> AccountSettings:
        """Raise ValueError on an unknown key, a non-boolean switch or a list number not of the account."""
        if not isinstance(data, dict):
            raise ValueError("the account settings must be a JSON object")
        known = [f.name for f in fields(cls)]
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown account settings: {sorted(unknown)}; known: {known}")
        settings: dict[str, Any] = {}
        for name, value in data.items():
            if name == "require_sends":
                settings[name] = bool(value)  # as it always was: any truthy value
            elif name == "journey_lists":
                if not isinstance(value, list) or not all(
                    number in LIST_NUMBERS for number in map(str, value)
                ):
                    raise ValueError(
                        f"journey_lists must be a list of the account's list numbers: {sorted(LIST_NUMBERS)}"
                    )
                settings[name] = tuple(value)
            elif not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            else:
                settings[name] = value
        return cls(**settings)


def compact_size(contact: Any) -> int:
    """The contact's size in bytes, as compact UTF-8 JSON: what the 4,000-byte limit counts."""
    return len(json.dumps(contact, separators=(",", ":"), ensure_ascii=False).encode())


def array_refusal(body: Any, key: str) -> tuple[int, dict[str, Any]] | None:
    """
    The whole-request error of an import body whose ``key`` (``records``, ``contacts``) is not a
    non-empty array of at most 1,000 (``400 missing_<key>``, ``413 too_many_<key>``), or None.
    """
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return 400, {
            "error": f"The {key} field is required and must be a non-empty array.",
            "code": f"missing_{key}",
        }
    if len(items) > MAX_RECORDS_PER_REQUEST:
        return 413, {
            "error": f"Exceeded the maximum of 1,000 {key} per request.",
            "code": f"too_many_{key}",
        }
    return None


def request_refusal(body: Any, account: AccountSettings) -> tuple[int, dict[str, Any]] | None:
    """The whole-request error (status, body) for a ``POST /contacts/bulk`` body, or None."""
    refusal = array_refusal(body, "contacts")
    if refusal is not None:
        return refusal
    contacts = body["contacts"]
    if any(compact_size(contact) > MAX_CONTACT_BYTES for contact in contacts):
        return 413, {"error": "A contact exceeds the maximum of 4,000 bytes.", "code": "payload_too_large"}
    if not account.billing and any(isinstance(c, dict) and c.get("use_validation") is True for c in contacts):
        return 402, {
            "error": "Phone validation requires a payment method on the account",
            "code": "no_payment_method",
        }
    return None


def _fields_valid(custom_fields: Any) -> bool:
    return custom_fields is None or (
        isinstance(custom_fields, dict)
        and all(isinstance(value, FIELD_TYPES) for value in custom_fields.values())
    )


def contact_error(contact: Any) -> Problem | None:
    """
    The per-contact error, checked in this order, before validation (see ``ContactStore.upsert``);
    every text repeats the phone number as sent, as the API's do. ``invalid_custom_fields`` is the
    sandbox's own code: the API page lists none for a malformed ``custom_fields``.
    """
    if not isinstance(contact, dict):
        return "missing_phone_number", "Contact must be an object with a phone_number."
    phone, list_number = contact.get("phone_number"), contact.get("list_number")
    if phone in (None, ""):
        return "missing_phone_number", "A contact is missing the phone_number field."
    if list_number in (None, ""):
        return "missing_list_number", f"Contact {phone} is missing the list_number field."
    if not isinstance(phone, str) or not E164.fullmatch(phone):
        return "invalid_phone", f"Invalid phone number {phone}: not an E.164 number."
    if not isinstance(list_number, str) or not E164.fullmatch(list_number):
        return "invalid_list_number", f"Contact {phone}: list_number {list_number} is not an E.164 number."
    if list_number not in LIST_NUMBERS:
        return "list_not_found", f"Contact {phone}: no list {list_number} on this account."
    if not _fields_valid(contact.get("custom_fields")):
        return (
            "invalid_custom_fields",
            f"Contact {phone}: custom_fields must be an object of string, number or boolean values.",
        )
    if phone.startswith(NOT_SENDABLE_PREFIX):
        return "not_sendable", f"Phone number {phone} is not sendable: carrier check failed (VOIP rejected)."
    return None


class ContactStore:
    """Contacts, list contacts, Welcome Journey enrolments and phone lookups; callers hold a lock."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}  # phone -> {"created_at"}
        self.list_contacts: dict[tuple[str, str], dict[str, Any]] = {}  # (phone, list number) -> membership
        self.journey_enrolments: list[dict[str, str]] = []  # every enrolment, in order: each sends SMS
        self.looked_up: set[str] = set()  # numbers validated once: later lookups are cached, free
        self._enrolled: set[tuple[str, str]] = set()

    def members(self, list_number: str) -> int:
        return sum(key[1] == list_number for key in self.list_contacts)

    def state(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "list_contacts": list(self.list_contacts.values()),
            "journey_enrolments": self.journey_enrolments,
            "validation_lookups": len(self.looked_up),
        }

    def upsert(self, contacts: list[Any], account: AccountSettings, now: str) -> dict[str, Any]:
        """
        Create or update each valid contact (a request ``request_refusal`` let through); return the
        200 answer. ``now`` (ISO 8601 UTC) is the request's time: a new membership's signup date
        when the contact gives none. An update merges custom fields and overwrites only the
        evidence fields it gives.
        """
        created = list_created = enrolled = success = 0
        errors: list[dict[str, Any]] = []
        warned: list[str] = []
        for index, contact in enumerate(contacts):
            problem = contact_error(contact) or self._validation_error(contact)
            if problem is not None:
                phone = contact.get("phone_number") if isinstance(contact, dict) else None
                errors.append(
                    {"index": index, "phone_number": phone, "code": problem[0], "error": problem[1]}
                )
                continue
            success += 1
            phone, list_number = contact["phone_number"], contact["list_number"]
            if phone not in self.contacts:
                self.contacts[phone] = {"created_at": now}
                created += 1
            list_created += self._save_membership(contact, now)
            if list_number not in account.journey_lists:
                continue
            if contact.get("use_journeys") is True or account.enrol_regardless:
                enrolled += self._enrol(
                    phone, list_number, contact.get("skip_journey_if_exists") is not False
                )
            elif list_number not in warned:
                warned.append(list_number)
        answer: dict[str, Any] = {
            "success_count": success,
            "error_count": len(errors),
            "errors": errors[:MAX_ERRORS_LISTED],
            "contacts_created": created,
            "list_contacts_created": list_created,
            "journeys_enrolled": enrolled,
        }
        if warned:
            answer["warnings"] = [JOURNEY_WARNING.format(number) for number in warned]
        return answer

    def _validation_error(self, contact: dict[str, Any]) -> Problem | None:
        """
        With ``use_validation`` (a billed account: see ``request_refusal``), one paid lookup per number
        never looked up before; a contact rejected by ``contact_error`` is never looked up.
        """
        if contact.get("use_validation") is not True:
            return None
        phone = contact["phone_number"]
        self.looked_up.add(phone)
        if phone.startswith(VALIDATION_FAILS_PREFIX):
            return "validation_failed", f"Phone validation failed for {phone}."
        return None

    def _save_membership(self, contact: dict[str, Any], now: str) -> int:
        """Create or update the (phone, list) membership; return 1 when it is new."""
        key = (contact["phone_number"], contact["list_number"])
        member = self.list_contacts.get(key)
        is_new = member is None
        if member is None:
            member = self.list_contacts[key] = {
                "phone_number": key[0],
                "list_number": key[1],
                "custom_fields": {},
                "signup_date": now,
                "ip_address": None,
                "url": None,
            }
        for name in ("signup_date", "ip_address", "url"):
            if contact.get(name) not in (None, ""):
                member[name] = contact[name]
        member["custom_fields"].update(contact.get("custom_fields") or {})
        return int(is_new)

    def _enrol(self, phone: str, list_number: str, skip_if_enrolled: bool) -> int:
        """Start the list's Welcome Journey for the contact; return 1 when it started."""
        if skip_if_enrolled and (phone, list_number) in self._enrolled:
            return 0
        self._enrolled.add((phone, list_number))
        self.journey_enrolments.append({"phone_number": phone, "list_number": list_number})
        return 1

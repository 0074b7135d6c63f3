"""The sandbox's history store and the endpoints' validation rules, as the API contract describes them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from trackly_provider.sandbox import CONTACTLESS_ID_PREFIX, UNKNOWN_ID_PREFIX
from trackly_provider.sandbox.contacts import (
    E164,
    KNOWN_LIST_IDS,
    LIST_NUMBERS,
    AccountSettings,
    ContactStore,
    array_refusal,
    request_refusal,
)
from trackly_provider.trackly_api.iso8601 import parse_iso_datetime
from trackly_provider.trackly_api.limits import MAX_ERRORS_LISTED

REQUIRED = {
    "clicks": ("message_id", "offer_id", "phone_number", "timestamp"),
    "sends": ("id", "to_number", "timestamp"),
    "revenue": ("message_id", "offer_id", "revenue"),
}
KEY_FIELD = {"clicks": "message_id", "sends": "id", "revenue": "message_id"}
TIMESTAMPS = ("timestamp", "send_timestamp")
ENTITIES = (*REQUIRED, "contacts")  # the keys of ``requests_by_entity``

Problem = tuple[str, str]  # (code, error text)


def _iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_iso_datetime(value)
    except ValueError:
        return False
    return True


def _amount(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


class HistoryStore:
    """
    Stored sends and clicks (one per id), revenue (every record received), the account's contacts
    (``contact_book``), and, optionally, every request received, for tests.

    Message references: with ``require_sends`` a click or revenue record needs its message imported
    as a send first, as in a fresh account; otherwise every message id not starting with
    ``unknown`` exists already, as in an account that holds its sends. ``require_contacts`` likewise
    makes sends need their list and revenue its message's contact (``AccountSettings``).
    """

    def __init__(self, *, record_requests: bool = True) -> None:
        self._lock = threading.Lock()
        self.record_requests = record_requests
        self.account = AccountSettings()
        self.contact_book = ContactStore()
        self.sends: dict[str, dict[str, Any]] = {}
        self.clicks: dict[str, dict[str, Any]] = {}
        self.revenue: list[dict[str, Any]] = []
        self.requests: list[list[Any]] = []
        self.requests_by_entity: dict[str, int] = dict.fromkeys(ENTITIES, 0)

    def reset(self) -> None:
        with self._lock:
            self.account = AccountSettings()
            self.contact_book = ContactStore()
            self.sends.clear()
            self.clicks.clear()
            self.revenue.clear()
            self.requests.clear()
            self.requests_by_entity = dict.fromkeys(ENTITIES, 0)

    @property
    def total_revenue(self) -> Decimal:
        """The stored revenue, summed exactly (each amount as the JSON text it was sent as)."""
        return sum((Decimal(str(record["revenue"])) for record in self.revenue), Decimal(0))

    def record_error(self, entity: str, record: Any) -> Problem | None:
        """The API's per-record error for a record, or None when it is valid and its references exist."""
        if not isinstance(record, dict):
            return f"missing_{KEY_FIELD[entity]}", "Record must be an object."
        for field in REQUIRED[entity]:
            if record.get(field) in (None, ""):
                return f"missing_{field}", f"A record is missing the {field} field."
        if any(record.get(field) not in (None, "") and not _iso8601(record[field]) for field in TIMESTAMPS):
            return "invalid_timestamp", "The timestamp is not a valid ISO 8601 datetime."
        if entity == "sends":
            return self._send_error(record)
        if entity == "revenue" and not _amount(record["revenue"]):
            return "invalid_revenue", "revenue must be a number >= 0."
        message_id = str(record["message_id"])
        if message_id.startswith(UNKNOWN_ID_PREFIX) or (
            self.account.require_sends and message_id not in self.sends
        ):
            return "message_not_found", "No message exists with the given message_id."
        if str(record["offer_id"]).startswith(UNKNOWN_ID_PREFIX):
            return "offer_not_found", "No offer exists with the given offer_id."
        if entity == "revenue" and (
            message_id.startswith(CONTACTLESS_ID_PREFIX) or not self._has_contact(message_id)
        ):
            return "contact_not_found", "The message's contact no longer exists."
        return None

    def _has_contact(self, message_id: str) -> bool:
        """Whether the message's contact exists: always, unless ``require_contacts``."""
        if not self.account.require_contacts:
            return True
        send = self.sends.get(message_id)
        return send is not None and send.get("to_number") in self.contact_book.contacts

    def _send_error(self, record: dict[str, Any]) -> Problem | None:
        if not isinstance(record["to_number"], str) or not E164.fullmatch(record["to_number"]):
            return "invalid_phone", "to_number is not a valid E.164 phone number."
        list_id, list_number = record.get("list_id"), record.get("list_number")
        if (list_id is not None and str(list_id) not in KNOWN_LIST_IDS) or (
            list_number is not None
            and (
                str(list_number).startswith(UNKNOWN_ID_PREFIX)
                or (self.account.require_contacts and str(list_number) not in LIST_NUMBERS)
            )
        ):
            return "list_not_found", "No list exists with the given list_id or list_number."
        return None

    def import_records(
        self, entity: str, body: Any, fails_to_save: Callable[[str], bool] = lambda key: False
    ) -> tuple[int, dict[str, Any]]:
        """Apply one ``POST /history/<entity>`` body; return the status and the JSON answer."""
        refusal = array_refusal(body, "records")
        if refusal is not None:
            return refusal
        records = body["records"]
        key_field = KEY_FIELD[entity]
        stored = {"sends": self.sends, "clicks": self.clicks}.get(entity)
        success = duplicates = 0
        revenue = Decimal(0)
        errors: list[dict[str, Any]] = []
        with self._lock:
            self.requests_by_entity[entity] += 1
            if self.record_requests:
                self.requests.append(records)
            for index, record in enumerate(records):
                problem = self.record_error(entity, record)
                key = str(record.get(key_field)) if isinstance(record, dict) else ""
                if problem is None and stored is not None and key in stored:
                    duplicates += 1
                    continue
                if problem is None and fails_to_save(key):
                    problem = "save_error", "Could not save."
                if problem is not None:
                    errors.append({"index": index, "code": problem[0], "error": problem[1]})
                    if entity == "sends":
                        errors[-1]["id"] = record.get("id") if isinstance(record, dict) else None
                    continue
                success += 1
                if stored is not None:
                    stored[key] = record
                else:
                    self.revenue.append(record)
                    revenue += Decimal(str(record["revenue"]))
        answer: dict[str, Any] = {
            "success_count": success,
            "error_count": len(errors),
            "duplicates_skipped": duplicates,
            "errors": errors[:MAX_ERRORS_LISTED],
        }
        if entity == "sends":
            answer["invalid_phones"] = sum(error["code"] == "invalid_phone" for error in errors)
        if entity == "revenue":
            del answer["duplicates_skipped"]  # the endpoint does not document one: it never skips
            answer["total_revenue"] = float(revenue)
        return 200, answer

    def import_contacts(self, body: Any, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
        """Apply one ``POST /contacts/bulk`` body; return the status and the JSON answer."""
        refusal = request_refusal(body, self.account)
        if refusal is not None:
            return refusal
        contacts = body["contacts"]
        stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self.requests_by_entity["contacts"] += 1
            if self.record_requests:
                self.requests.append(contacts)
            return 200, self.contact_book.upsert(contacts, self.account, stamp.replace("+00:00", "Z"))

"""The sandbox's click store and the endpoint's validation rules, as the API contract describes them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from trackly_provider.api_limits import MAX_ERRORS_LISTED, MAX_RECORDS_PER_REQUEST
from trackly_provider.iso8601 import parse_iso_datetime
from trackly_provider.sandbox import UNKNOWN_ID_PREFIX

REQUIRED = ("message_id", "offer_id", "phone_number", "timestamp")


def _iso8601(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_iso_datetime(value)
    except ValueError:
        return False
    return True


def record_error(record: Any) -> tuple[str, str] | None:
    """The API's per-record error for a record, or None when it is valid and its ids are known."""
    if not isinstance(record, dict):
        return "missing_message_id", "Record must be an object."
    for field in REQUIRED:
        if record.get(field) in (None, ""):
            return f"missing_{field}", f"A record is missing the {field} field."
    if not _iso8601(record["timestamp"]) or (
        record.get("send_timestamp") not in (None, "") and not _iso8601(record["send_timestamp"])
    ):
        return "invalid_timestamp", "The timestamp is not a valid ISO 8601 datetime."
    if str(record["message_id"]).startswith(UNKNOWN_ID_PREFIX):
        return "message_not_found", "No message exists with the given message_id."
    if str(record["offer_id"]).startswith(UNKNOWN_ID_PREFIX):
        return "offer_not_found", "No offer exists with the given offer_id."
    return None


class ClickStore:
    """Stored clicks (one per message_id) and, optionally, every request received, for tests."""

    def __init__(self, *, record_requests: bool = True) -> None:
        self._lock = threading.Lock()
        self.record_requests = record_requests
        self.clicks: dict[str, dict[str, Any]] = {}
        self.requests: list[list[Any]] = []

    def reset(self) -> None:
        with self._lock:
            self.clicks.clear()
            self.requests.clear()

    def import_clicks(
        self, body: Any, fails_to_save: Callable[[str], bool] = lambda message_id: False
    ) -> tuple[int, dict[str, Any]]:
        """Apply one ``POST /history/clicks`` body; return the status and the JSON answer."""
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            return 400, {
                "error": "The records field is required and must be a non-empty array.",
                "code": "missing_records",
            }
        if len(records) > MAX_RECORDS_PER_REQUEST:
            return 413, {
                "error": "Exceeded the maximum of 1,000 records per request.",
                "code": "too_many_records",
            }
        success = duplicates = 0
        errors: list[dict[str, Any]] = []
        with self._lock:
            if self.record_requests:
                self.requests.append(records)
            for index, record in enumerate(records):
                problem = record_error(record)
                if problem:
                    errors.append({"index": index, "code": problem[0], "error": problem[1]})
                elif str(record["message_id"]) in self.clicks:
                    duplicates += 1
                elif fails_to_save(str(record["message_id"])):
                    errors.append({"index": index, "code": "save_error", "error": "Could not save."})
                else:
                    self.clicks[str(record["message_id"])] = record
                    success += 1
        return 200, {
            "success_count": success,
            "error_count": len(errors),
            "duplicates_skipped": duplicates,
            "errors": errors[:MAX_ERRORS_LISTED],
        }

"""ISO 8601 text to ``datetime`` the same way on every supported Python, and back (no Airflow needed)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone

_EXTENDED = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?)?"
)


def _parse_on_python_310(text: str) -> datetime:
    """What Python 3.11's ``fromisoformat`` accepts in extended form: ``Z``, ``+HH``, any fraction."""
    match = _EXTENDED.fullmatch(text)
    if match is None:
        raise ValueError(f"Invalid isoformat string: {text!r}")
    day, clock, fraction, offset = match.groups()
    if clock is None:
        return datetime.fromisoformat(day)
    if fraction:
        clock += "." + (fraction + "00000")[:6]  # digits past microseconds are dropped, as 3.11 does
    if offset == "Z":
        offset = "+00:00"
    elif offset:
        offset = offset[:3] + ":" + (offset[3:].lstrip(":") or "00")
    return datetime.fromisoformat(f"{day}T{clock}{offset or ''}")


parse_iso_datetime: Callable[[str], datetime] = (
    datetime.fromisoformat if sys.version_info >= (3, 11) else _parse_on_python_310
)
"""``datetime.fromisoformat`` with Python 3.11's rules: ``ValueError`` for text that is not ISO 8601."""


def utc_iso(moment: datetime) -> str:
    """ISO 8601 in UTC with its offset, as the API receives it (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.isoformat() + "+00:00"
    return moment.astimezone(timezone.utc).isoformat()

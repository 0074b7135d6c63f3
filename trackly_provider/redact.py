"""Keep phone numbers out of texts the API sends back before they reach logs, exceptions or XCom."""

from __future__ import annotations

import re

# Seven or more digits, optionally led by '+' and broken by spaces, dots, dashes or parentheses.
_PHONE_LIKE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def redact_phone_numbers(text: str) -> str:
    """Replace anything that looks like a phone number with ``[redacted]``."""
    return _PHONE_LIKE.sub("[redacted]", text)

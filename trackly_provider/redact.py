"""Keep phone numbers out of texts the API sends back before they reach logs, exceptions or XCom."""

from __future__ import annotations

import re

# Seven or more digits, optionally led by '+' and broken by what phone_numbers accepts between
# them: spaces (no-break ones too), dots, slashes, parentheses and dashes of every kind (U+2010 to
# U+2015, the minus sign U+2212).
_PHONE_LIKE = re.compile(r"\+?\d[\d\s()./\u2010-\u2015\u2212-]{5,}\d")  # re reads the \u escapes


def redact_phone_numbers(text: str) -> str:
    """Replace anything that looks like a phone number with ``[redacted]``."""
    return _PHONE_LIKE.sub("[redacted]", text)

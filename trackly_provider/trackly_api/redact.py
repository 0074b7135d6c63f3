"""Keep phone numbers and keys out of texts the API sends back before they reach logs, exceptions or XCom."""

from __future__ import annotations

import re
from typing import Any

# Seven or more digits, optionally led by '+' and broken by what phone_numbers accepts between
# them: spaces (no-break ones too), dots, slashes, parentheses and dashes of every kind (U+2010 to
# U+2015, the minus sign U+2212); and by what a server or a driver may echo back though
# phone_numbers refuses it: '_' and ',' ("202_555_0123", "202,555,0123"), ':', '|', '~' and "'",
# and '%' of URL-encoded text ("%2B1%20202%20555%200143"). Kept: runs of fewer than 7
# digits, and numbers grouped in thousands ("1,048,576", "5,000,000"), which no phone is written as.
_PHONE_LIKE = re.compile(r"\+?\d[\d\s()./,_:|~'%\u2010-\u2015\u2212-]{5,}\d")  # re reads the \u escapes
_THOUSANDS = re.compile(r"\d{1,3}(,\d{3})+")
MIN_PHONE_DIGITS = 7
# A Trackly API key (trk_ and 32 letters or digits), also when a server echoes one back.
_API_KEY_LIKE = re.compile(r"trk_[A-Za-z0-9]{32}")
# The alphabet of the API's error codes: every documented one is lower-case words joined by '_'.
_CODE = re.compile(r"[a-z][a-z_]{0,63}")
UNEXPECTED_CODE = "unexpected_code"
SERVER_TEXT_LIMIT = 300  # characters of a server's error text kept, "…" included


def redact_phone_numbers(text: str) -> str:
    """Replace anything that looks like a phone number with ``[redacted]``."""
    return _PHONE_LIKE.sub(_redacted, text)


def _redacted(match: re.Match[str]) -> str:
    found = match.group()
    if _THOUSANDS.fullmatch(found) or sum(c.isdigit() for c in found) < MIN_PHONE_DIGITS:
        return found
    return "[redacted]"


def server_code(code: Any) -> str:
    """
    An error ``code`` as the server sent it if it is in the API's alphabet (``[a-z][a-z_]{0,63}``),
    else ``unexpected_code``: a code is never a place for digits, so no phone number passes.
    """
    return code if isinstance(code, str) and _CODE.fullmatch(code) else UNEXPECTED_CODE


def server_text(text: Any) -> str:
    """
    A server's text (an error, a reason phrase) fit for a log line: phone numbers and API keys
    replaced by ``[redacted]``, control characters and runs of spaces made one space, cut to
    ``SERVER_TEXT_LIMIT`` characters.
    """
    flat = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    flat = redact_phone_numbers(_API_KEY_LIKE.sub("[redacted]", flat))
    if len(flat) > SERVER_TEXT_LIMIT:
        flat = flat[: SERVER_TEXT_LIMIT - 1] + "…"
    return flat

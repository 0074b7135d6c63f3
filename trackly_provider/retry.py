"""The retry policy in one place: what is retryable and how long to wait (pure functions)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from trackly_provider.settings import RetrySettings


def _retryable_status(status: int) -> bool:
    """429 and every 5xx are transient; any other 4xx is final."""
    return status == 429 or status >= 500


def _retryable_error(exc: BaseException) -> bool:
    """Network faults (connect/read/write errors, timeouts, resets, dropped connections) are transient."""
    return isinstance(exc, httpx.TransportError)


def _certainly_unprocessed_error(exc: BaseException) -> bool:
    """
    Faults that happen before a request's first byte leaves: no connection, or no free one in the pool.

    Anything later (a write error, a read timeout, a reset, a dropped connection) may come after
    the server received the whole request and acted on it.
    """
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _certainly_unprocessed_status(status: int) -> bool:
    """
    429: the server refused the request for its rate limit before acting on it (RFC 6585).

    A 5xx may come from the server failing after it stored the records, or from a proxy that
    forwarded them and lost the answer (502, 504), so none of them is certain.
    """
    return status == 429


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def backoff_delay(
    attempt: int, settings: RetrySettings, rand: Callable[[float, float], float] = random.uniform
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
    ceiling = min(settings.backoff_max, settings.backoff_base * 2 ** (attempt - 1))
    return rand(0.0, ceiling)

"""
The hook's retry policy, one object: what is retried, how long to wait, when to give up.

Pure code (no I/O); the hook's send loop consults it. Read it as urllib3's ``Retry``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx


@dataclass(frozen=True)
class RetryPolicy:
    """
    How the hook retries a request that failed for a reason that may pass.

    :param max_attempts: attempts per request, the first included (default 5). Connection extra
        ``max_attempts``.
    :param backoff_base: seconds; the ceiling of the wait after attempt ``n`` is
        ``backoff_base * 2 ** (n - 1)`` (default 1.0). Extra ``backoff_base``.
    :param backoff_max: seconds; no wait's ceiling exceeds it (default 60.0). Extra ``backoff_max``.
    :param retry_after_max: seconds; a ``Retry-After`` asking for longer fails the request instead of
        sleeping through the task's time (default 300.0). Extra ``retry_after_max``.

    Retried: network faults (``httpx.TransportError``: connect, read and write errors, timeouts,
    resets, dropped connections), ``429`` and every ``5xx``. Any other status is final. The wait is
    the server's ``Retry-After`` (RFC 9110, section 10.2.3) when it gives one, otherwise exponential
    backoff with full jitter: uniform in ``[0, min(backoff_max, backoff_base * 2 ** (n - 1))]``.

    For requests that must not be stored twice (revenue), only failures that certainly left the
    request unprocessed are retried: :meth:`certainly_unprocessed_error` and
    :meth:`certainly_unprocessed_status`.
    """

    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    retry_after_max: float = 300.0

    @staticmethod
    def is_retryable_status(status: int) -> bool:
        """429 and every 5xx are transient; any other status is final."""
        return status == 429 or status >= 500

    @staticmethod
    def is_retryable_error(exc: BaseException) -> bool:
        """Network faults (connect/read/write errors, timeouts, resets, dropped connections)."""
        return isinstance(exc, httpx.TransportError)

    @staticmethod
    def certainly_unprocessed_error(exc: BaseException) -> bool:
        """
        Faults that happen before a request's first byte leaves: no connection, or no free one in the pool.

        Anything later (a write error, a read timeout, a reset, a dropped connection) may come after
        the server received the whole request and acted on it.
        """
        return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))

    @staticmethod
    def certainly_unprocessed_status(status: int) -> bool:
        """
        429: the server refused the request for its rate limit before acting on it (RFC 6585).

        A 5xx may come from the server failing after it stored the records, or from a proxy that
        forwarded them and lost the answer (502, 504), so none of them is certain.
        """
        return status == 429

    def backoff(self, attempt: int, rand: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): full jitter under the ceiling."""
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return rand(0.0, ceiling)


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

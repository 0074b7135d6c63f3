"""
What a failed attempt means: not sent, sent and lost, or a configuration no retry can fix (pure).

httpx names the fault (``ConnectError``, ``ReadTimeout``, ``ProxyError``...); the hook needs to know
whether Trackly may have received the request (revenue is never sent twice) and whether retrying can
help at all. These functions answer from the fault, its causes and the attempt's record
(``deadlines.Attempt``).
"""

from __future__ import annotations

import httpx

from trackly_provider.hooks.network.deadlines import (
    Attempt,
    RequestNotSent,
    RequestTimeoutReached,
    deadline_passed,
)
from trackly_provider.hooks.network.tls import (
    TrustSource,
    certificate_failure,
    certificate_message,
    tls_reason,
    tls_setup_fix,
)
from trackly_provider.trackly_api.redact import server_text


def attempt_failure(
    exc: httpx.TransportError, attempt: Attempt, request_timeout: float
) -> httpx.TransportError | None:
    """
    The fault an attempt's ``exc`` stands for, or None when it is ``exc`` itself.

    ``RequestNotSent`` (a ``ConnectError``: certainly unprocessed) when no byte of the request left,
    as when a proxy refused or never answered its ``CONNECT`` (known only on a transport of
    ``deadlines.enforce_deadlines``: elsewhere any fault may follow the request);
    ``RequestTimeoutReached`` (a ``ReadTimeout``: a lost answer) when the deadline ended an attempt
    whose request had left.
    """
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return None  # already certainly unprocessed
    timed_out = isinstance(exc, httpx.TimeoutException) and deadline_passed(attempt)
    what = f"request_timeout ({request_timeout:g} s) reached" if timed_out else failure_label(exc)
    if attempt.watched and not attempt.request_written:
        return RequestNotSent(f"{what} before the request was sent")
    if timed_out:
        return RequestTimeoutReached(what)
    return None


def failure_label(exc: BaseException) -> str:
    """The fault for a log line: its class and httpx's text, filtered; OpenSSL's reason if TLS."""
    if isinstance(exc, (RequestNotSent, RequestTimeoutReached)):
        return str(exc)
    text = server_text(str(exc)) if str(exc) else ""
    label = f"{type(exc).__name__} ({text})" if text else type(exc).__name__
    reason = tls_reason(exc)
    return f"{label} (TLS: {reason})" if reason and reason not in label else label


def configuration_problem(
    exc: BaseException, conn_id: str, url: str, trust: TrustSource, *, via_proxy: bool = False
) -> str | None:
    """
    Why ``exc`` is a configuration error no retry can fix, with the fix; None if it is not one: a
    refused server certificate, a TLS set-up failure (``tls.tls_setup_fix``), or a proxy that
    refused its credentials (407). Through a proxy, plain http where TLS was expected is the
    proxy's answer inside the tunnel (its upstream down, say), not Trackly's port: retried.
    """
    failed = certificate_failure(exc)
    if failed is not None:
        return certificate_message(conn_id, url, failed, trust)
    reason = tls_reason(exc)
    fix = tls_setup_fix(reason) if reason and not (via_proxy and "WRONG_VERSION_NUMBER" in reason) else None
    if fix:
        return f"Connection '{conn_id}': TLS with {url} failed ({reason}): {fix}. Not retried."
    proxy_error = _proxy_error(exc)
    if proxy_error is not None and str(proxy_error).startswith("407"):
        return (
            f"Connection '{conn_id}': the proxy refused its credentials (407 Proxy Authentication "
            "Required). Put the proxy's user and password in the proxy URL (extra 'proxy' or "
            "HTTPS_PROXY: http://user:password@host:port). Not retried."
        )
    return None


def _proxy_error(exc: BaseException) -> httpx.ProxyError | None:
    current: BaseException | None = exc
    for _ in range(5):  # RequestNotSent -> httpx.ProxyError
        if current is None or isinstance(current, httpx.ProxyError):
            break
        current = current.__cause__
    return current if isinstance(current, httpx.ProxyError) else None

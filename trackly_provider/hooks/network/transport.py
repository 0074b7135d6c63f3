"""
The hook's transport, and one attempt over it: whom it trusts, which proxy it uses, the attempt's
deadline, and the answer read within bounds. The hook owns the retries around ``send_once``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, Protocol

import httpx

from trackly_provider.exceptions import TracklyResponseError
from trackly_provider.hooks.network.answers import ERROR_BODY_BYTES, UnreadableEncoding, read_answer
from trackly_provider.hooks.network.deadlines import Attempt, enforce_deadlines, request_deadline
from trackly_provider.hooks.network.failures import attempt_failure
from trackly_provider.hooks.network.proxies import choose_proxy
from trackly_provider.hooks.network.tls import ssl_context, trust_source
from trackly_provider.hooks.settings import TracklySettings
from trackly_provider.trackly_api.request_bodies import send_pieces


class Log(Protocol):
    """What is logged through: the hook's logger (stdlib or structlog, by Airflow release)."""

    def warning(self, event: str, *args: Any) -> Any: ...

    def info(self, event: str, *args: Any) -> Any: ...


DROPPED_HEADERS = ("content-encoding", "content-length", "transfer-encoding")  # of the inflated answer


def open_transport(
    conn_id: str, settings: TracklySettings, limits: httpx.Limits, log: Log
) -> tuple[httpx.HTTPTransport, bool]:
    """
    The transport for ``settings``: its TLS trust (``tls.py``), its proxy (``proxies.py``) and a
    deadline on every attempt (``deadlines.py``); and whether it goes through a proxy. Logs a
    WARNING when verification is off and the proxy used (never its credentials).

    :raises TracklyConfigError: a CA bundle, client certificate or proxy URL that cannot be used.
    """
    trust = trust_source(settings.verify)
    if trust.origin == "off":
        log.warning(
            "TLS certificate verification is OFF for Trackly connection '%s' (verify is false): "
            "anyone between this worker and %s can read the API key and the records. Trust the "
            "server's CA instead (extra 'verify' set to its PEM bundle).",
            conn_id,
            settings.base_url,
        )
    proxy = choose_proxy(conn_id, settings.base_url, settings.proxy)
    if proxy is not None:
        log.info(
            "Trackly connection '%s' goes through proxy %s (from %s).", conn_id, proxy.shown, proxy.origin
        )
    context = ssl_context(conn_id, trust, settings.client_cert, settings.client_key)
    via = None
    if proxy is not None:  # an https:// proxy is verified with the same trust (httpx would use certifi's)
        https_proxy = proxy.url.lower().startswith("https://")
        via = httpx.Proxy(proxy.url, ssl_context=context) if https_proxy else httpx.Proxy(proxy.url)
    transport = httpx.HTTPTransport(verify=context, limits=limits, proxy=via, trust_env=False)
    return enforce_deadlines(transport), proxy is not None


def send_once(
    client: httpx.Client,
    method: str,
    path: str,
    content: bytes | memoryview | None,
    *,
    request_timeout: float,
    max_response_bytes: int,
    conn_id: str,
    connect_timeout: float | None = None,
) -> httpx.Response:
    """
    One attempt within ``request_timeout`` seconds, its answer read to ``max_response_bytes``.

    ``connect_timeout`` (seconds) replaces the client's for this attempt only (the Test button's
    shorter one); None keeps the client's.

    Returns a response whose ``content`` is the decompressed body (an error status's cut to 64 KiB,
    judged by its status alone). A memoryview ``content`` is a pooled body (``request_bodies.py``),
    sent in pieces with one length.

    :raises httpx.TransportError: the attempt failed; ``RequestNotSent`` when no byte of the request
        left, ``RequestTimeoutReached`` when the deadline ended it after (``failures.attempt_failure``).
    :raises TracklyResponseError: a 200 larger than the limit, or in an encoding not read (not
        retried: the same server would answer the same).
    """
    headers = None
    payload: bytes | Iterator[bytes] | None
    if isinstance(content, memoryview):
        headers = {"Content-Length": str(len(content))}
        payload = send_pieces(content)
    else:
        payload = content
    with request_deadline(request_timeout) as attempt:
        timeout = client.timeout
        if connect_timeout is not None:
            timeout = _with_connect(timeout, connect_timeout)
        request = client.build_request(method, path, content=payload, headers=headers, timeout=timeout)
        try:
            streamed = client.send(request, stream=True)
            try:
                ok = streamed.status_code == 200
                limit = max_response_bytes if ok else min(max_response_bytes, ERROR_BODY_BYTES)
                body, complete = _read(streamed, limit, f"{method} {path}", strict=ok)
            finally:
                streamed.close()
        except httpx.TransportError as exc:
            _raise_meant(exc, attempt, request_timeout)
            raise
    if ok and not complete:
        raise TracklyResponseError(
            f"Trackly's answer to {method} {path} is larger than max_response_bytes "
            f"({limit:,} bytes once decompressed; a real answer is a few kilobytes), so it was not "
            "read. Something other than Trackly may be answering: check the Base URL and proxy, or "
            f"raise the extra max_response_bytes on connection '{conn_id}'."
        )
    kept = [
        (name, value) for name, value in streamed.headers.multi_items() if name.lower() not in DROPPED_HEADERS
    ]
    extensions = {k: v for k, v in streamed.extensions.items() if k in ("reason_phrase", "http_version")}
    return httpx.Response(
        streamed.status_code, headers=kept, content=body, request=request, extensions=extensions
    )


def _with_connect(timeout: httpx.Timeout, connect: float) -> httpx.Timeout:
    return httpx.Timeout(connect=connect, read=timeout.read, write=timeout.write, pool=timeout.pool)


def _read(streamed: httpx.Response, limit: int, request: str, *, strict: bool) -> tuple[bytes, bool]:
    """``read_answer``; an unreadable body raises for a 200 (``strict``), else counts as empty."""
    try:
        return read_answer(streamed, limit)
    except (UnreadableEncoding, zlib.error) as exc:
        if not strict:
            return b"", True
        why = str(exc) if isinstance(exc, UnreadableEncoding) else "its compressed body is corrupt"
        raise TracklyResponseError(f"Trackly's answer to {request} cannot be read: {why}.") from None


def _raise_meant(exc: httpx.TransportError, attempt: Attempt, request_timeout: float) -> None:
    meant = attempt_failure(exc, attempt, request_timeout)
    if meant is not None:
        raise meant from exc

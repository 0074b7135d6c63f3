"""
A hard deadline per request: connect, TLS, send and receive together, on top of httpx's per-read timeouts.

httpx bounds each socket operation (``read_timeout`` is the longest gap between two reads), so a
server that answers one byte a second holds a request for as long as it likes. Here every socket
operation of a request gets at most the time left before the request's deadline: the operation that
would pass it ends in a timeout at the deadline, which httpx raises as ``ConnectTimeout``,
``WriteTimeout`` or ``ReadTimeout`` like any other.

The deadline is set per thread of work with :func:`request_deadline` around one attempt, and read by a
wrapper of httpcore's network backend that :func:`enforce_deadlines` installs in an httpx transport.
The same wrapper notes whether any byte of the request itself was written (a proxy's ``CONNECT`` is
not the request): an attempt that failed before that certainly left Trackly untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import ssl
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx


@dataclass
class Attempt:
    """One attempt's deadline (``time.monotonic`` seconds) and whether its request began to leave."""

    deadline: float
    watched: bool = False  # a connection of enforce_deadlines' served it (else nothing below is known)
    request_written: bool = False


_attempt: contextvars.ContextVar[Attempt | None] = contextvars.ContextVar("trackly_attempt", default=None)


class RequestTimeoutReached(httpx.ReadTimeout):
    """A request sent, at least in part, that ran out of its deadline: a lost answer, like a read timeout."""


class RequestNotSent(httpx.ConnectError):
    """An attempt that failed before any byte of its request left (a proxy refused the tunnel...)."""


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[Attempt]:
    """Every socket operation inside the block ends by ``seconds`` from now; yields the attempt."""
    attempt = Attempt(time.monotonic() + seconds)
    token = _attempt.set(attempt)
    try:
        yield attempt
    finally:
        _attempt.reset(token)


def deadline_passed(attempt: Attempt) -> bool:
    """Whether ``attempt``'s deadline has passed."""
    return time.monotonic() >= attempt.deadline


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to the time left before the deadline; raises ``error`` once none is left."""
    attempt = _attempt.get()
    if attempt is None:
        return timeout
    attempt.watched = True
    left = attempt.deadline - time.monotonic()
    if left <= 0:
        raise error("the request's deadline (request_timeout) was reached")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the deadline of the request using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        timeout = _bounded(timeout, httpcore.WriteTimeout)
        attempt = _attempt.get()
        if attempt is not None and buffer and not buffer.startswith(b"CONNECT "):
            attempt.request_written = True  # set before writing: a failed write may have sent a part
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's network backend, with every connection's operations bounded by the deadline."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def enforce_deadlines(transport: httpx.HTTPTransport) -> httpx.HTTPTransport:
    """
    Make ``transport``'s connections honour :func:`request_deadline`; returns it.

    httpx exposes no network backend of its own, so this replaces the one its httpcore pool holds
    (``_network_backend``, httpcore 1.x, pinned in constraints.txt) before any connection is made.
    Raises ``RuntimeError`` if that pool has no such attribute (an httpcore this was not made for).
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.NetworkBackend):
        raise RuntimeError(
            "airflow-provider-trackly cannot set request deadlines on this httpx/httpcore version "
            f"(httpx {httpx.__version__}, httpcore {httpcore.__version__}); install the versions in "
            "its constraints.txt."
        )
    pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]
    return transport

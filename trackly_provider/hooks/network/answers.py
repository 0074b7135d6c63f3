"""
Read an answer within bounds: at most ``max_response_bytes`` once decompressed, or fail cleanly.

A real Trackly answer is a few kilobytes. httpx would read any body whole, and inflate a gzip body in
one step (a 64 KiB chunk can inflate to 64 MiB), so a broken server or proxy could fill the worker's
memory. Here the raw body is read chunk by chunk and inflated at most one byte past the limit.
"""

from __future__ import annotations

import zlib

import httpx

from trackly_provider.trackly_api.redact import redact_phone_numbers

ACCEPT_ENCODING = "gzip, deflate"  # what the hook asks for: the encodings read_answer inflates
ERROR_BODY_BYTES = 65_536  # of an error status's body: enough for its text, the rest is dropped


class AnswerTooLarge(Exception):
    """The answer's body passed the limit; nothing of it is kept."""


class UnreadableEncoding(Exception):
    """The answer came in a Content-Encoding this provider does not inflate."""


class _Inflater:
    """
    Inflates one Content-Encoding, bounded by the caller's room: ``gzip`` (every member of a
    multi-member body, as gzip and urllib3 read it; zero padding or bytes that are not a gzip member
    after the first are dropped) or ``deflate``, zlib-wrapped as RFC 9110 says or raw (no header),
    as some servers send it and httpx used to accept: the first two bytes tell which.
    """

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._member: zlib._Decompress | None = None
        self._members = 0  # gzip members started
        self._pending = b""  # input not handed to a decompressor yet
        self._done = False  # the stream ended: what follows is dropped

    def inflate(self, data: bytes, room: int) -> list[bytes]:
        """
        Inflate ``data`` after what is left of earlier input, stopping once ``room`` bytes came out
        (input past that point stays pending; the caller stops reading then).

        :raises zlib.error: the stream is corrupt (a later gzip member's corruption ends the body).
        """
        self._pending += data
        out: list[bytes] = []
        produced = 0
        while self._pending and not self._done and produced < room:
            if self._member is None:
                self._member = self._next_decompressor()
                if self._member is None:
                    break  # only zero padding, or a deflate stream's first byte: wait for more
            try:
                inflated = self._member.decompress(self._pending, room - produced)
            except zlib.error:
                if self._members > 1:  # after a whole first member, as urllib3: drop the rest
                    self._done = True
                    break
                raise
            out.append(inflated)
            produced += len(inflated)
            if self._member.eof:
                self._pending = self._member.unused_data
                self._member = None
                self._done = not self._gzip  # one deflate stream per body; gzip may hold more members
            else:
                self._pending = self._member.unconsumed_tail
        return out

    def _next_decompressor(self) -> zlib._Decompress | None:
        """A decompressor for the stream starting at ``_pending``; None while more bytes are needed."""
        if self._gzip:
            if self._members:
                self._pending = self._pending.lstrip(b"\0")  # zero padding between members
                if not self._pending:
                    return None
            self._members += 1
            return zlib.decompressobj(zlib.MAX_WBITS | 16)
        if len(self._pending) < 2:
            return None
        first, second = self._pending[0], self._pending[1]
        zlib_header = (first & 0x0F) == 8 and (first << 8 | second) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)


def _inflater(encoding: str) -> _Inflater | None:
    """A decompressor for one Content-Encoding value; None for identity."""
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater(encoding)
    raise UnreadableEncoding(
        f"Content-Encoding {encoding[:40]!r}, which is not one this provider reads ({ACCEPT_ENCODING})"
    )


def read_answer(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """
    The body of a streamed ``response``, decompressed: ``(body, complete)``.

    Reads until the body ends or passes ``limit`` bytes (after decompression); then ``complete`` is
    False and ``body`` holds the first ``limit`` bytes. The caller closes the response, which drops
    the connection when the body was not read to its end.

    :raises UnreadableEncoding: a Content-Encoding other than gzip, deflate or identity.
    :raises httpx.TransportError: the connection failed while reading (including the deadline).
    :raises zlib.error: the compressed body is corrupt.
    """
    if response.is_stream_consumed:  # built already read (httpx.MockTransport's answers, in tests)
        return response.content[:limit], len(response.content) <= limit
    encodings = [part.strip().lower() for part in response.headers.get("content-encoding", "").split(",")]
    inflaters = [_inflater(encoding) for encoding in reversed(encodings)]
    body = bytearray()
    raw_read = 0
    for chunk in response.iter_raw():
        raw_read += len(chunk)
        pieces = [chunk]
        for inflater in inflaters:
            if inflater is not None:
                pieces = list(_inflate(inflater, pieces, limit - len(body) + 1))
        for piece in pieces:
            body += piece
        if len(body) > limit or raw_read > limit:
            return bytes(body[:limit]), False
    return bytes(body), True


def _inflate(inflater: _Inflater, pieces: list[bytes], room: int) -> list[bytes]:
    """Inflate ``pieces`` in order, stopping once ``room`` bytes came out (the caller then stops)."""
    out: list[bytes] = []
    produced = 0
    for piece in pieces:
        inflated = inflater.inflate(piece, room - produced)
        out += inflated
        produced += sum(map(len, inflated))
        if produced >= room:
            break
    return out


def media_type(response: httpx.Response) -> str:
    """The answer's Content-Type without its parameters (``"text/html"``), as sent; ``""`` if none."""
    return response.headers.get("content-type", "").split(";")[0].strip()


def describe_answer(response: httpx.Response, body: bytes) -> str:
    """
    What came back, for a message: ``"text/html, 5,120 bytes (an HTML page: a login page, captive
    portal or proxy?)"``. Never any of the body's text.
    """
    raw_type = media_type(response)
    content_type = redact_phone_numbers("".join(c for c in raw_type[:80] if c.isalnum() or c in "/+.-_"))
    content_type = content_type or ("an unreadable content type" if raw_type else "no content type")
    size = f"{len(body):,} bytes" if body else "no body"
    described = f"{content_type}, {size}"
    if content_type.endswith("html") or body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
        described += " (an HTML page: a login page, captive portal or proxy?)"
    return described

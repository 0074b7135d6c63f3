"""
Read an answer within bounds: at most ``max_response_bytes`` once decompressed, or fail cleanly.

A real Trackly answer is a few kilobytes. httpx would read any body whole, and inflate a gzip body in
one step (a 64 KiB chunk can inflate to 64 MiB), so a broken server or proxy could fill the worker's
memory. Here the raw body is read chunk by chunk and inflated at most one byte past the limit.
"""

from __future__ import annotations

import zlib

import httpx

from trackly_provider.redact import redact_phone_numbers

ACCEPT_ENCODING = "gzip, deflate"  # what the hook asks for: the encodings read_answer inflates
ERROR_BODY_BYTES = 65_536  # of an error status's body: enough for its text, the rest is dropped


class AnswerTooLarge(Exception):
    """The answer's body passed the limit; nothing of it is kept."""


class UnreadableEncoding(Exception):
    """The answer came in a Content-Encoding this provider does not inflate."""


def _inflater(encoding: str) -> zlib._Decompress | None:
    """A decompressor for one Content-Encoding value; None for identity."""
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":  # RFC 9110 says zlib-wrapped; some servers send raw deflate
        return zlib.decompressobj(zlib.MAX_WBITS | 32)
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


def _inflate(inflater: zlib._Decompress, pieces: list[bytes], room: int) -> list[bytes]:
    """Inflate ``pieces`` in order, stopping once ``room`` bytes came out (the caller then stops)."""
    out: list[bytes] = []
    produced = 0
    for piece in pieces:
        data = piece
        while data and not inflater.eof and produced < room:
            inflated = inflater.decompress(data, room - produced)
            out.append(inflated)
            produced += len(inflated)
            data = inflater.unconsumed_tail
        if produced >= room or inflater.eof:
            break
    return out


def describe_answer(response: httpx.Response, body: bytes) -> str:
    """
    What came back, for a message: ``"text/html, 5,120 bytes (an HTML page: a login page, captive
    portal or proxy?)"``. Never any of the body's text.
    """
    raw_type = response.headers.get("content-type", "").split(";")[0].strip()
    content_type = redact_phone_numbers("".join(c for c in raw_type[:80] if c.isalnum() or c in "/+.-_"))
    content_type = content_type or ("an unreadable content type" if raw_type else "no content type")
    size = f"{len(body):,} bytes" if body else "no body"
    described = f"{content_type}, {size}"
    if content_type.endswith("html") or body.lstrip()[:15].lower().startswith((b"<!doctype", b"<html")):
        described += " (an HTML page: a login page, captive portal or proxy?)"
    return described

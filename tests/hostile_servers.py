"""
HTTP servers no honest Trackly would be, on 127.0.0.1, for the hook's defences (issue 22).

Each is a raw socket server in background threads: ``running(answer)`` starts one and stops it when
the block ends, and it stops by itself after ``lifetime`` seconds (default 120) whatever happens.
``answer(request, reply)`` writes one answer; the server records every request (method, path,
headers, body) in ``HostileServer.requests`` for assertions. Answers:

- ``trickle(part)``: a valid-looking 200 sent one byte a second, from the status line
  (``part="head"``) or after whole headers (``part="body"``).
- ``huge(framing, status)``: a 1 GiB body made on the fly (never held), framed by Content-Length
  (``"length"``), chunked transfer encoding (``"chunked"``) or the connection's end (``"close"``).
- ``gzip_bomb``: 200 ``Content-Encoding: gzip``, about 1 MiB that inflates to 1 GiB of zeros.
- ``login_page``: 200 text/html for every method and path; ``not_found_page``: 404 text/html.
- ``json_answer(body)``: 200 application/json with this body for every method and path.
- ``server_words``: phone numbers, an API key and bad codes in an import answer's words.
- ``bad_request_words``: a 400 whose JSON body and reason phrase carry a phone number;
  ``bad_request_page``: a 400 whose reason phrase and content type do, with a non-JSON body.
- ``brotli``: 200 ``Content-Encoding: br``.
"""

from __future__ import annotations

import functools
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

GIB = 1024**3
PHONE = "+12025550123"  # in the servers' words only; the tests look for its digits 2025550123
FOREIGN_KEY = "trk_" + "Q7" * 16  # an API key-shaped word in an error text (not the test's key)
_CHUNK = b" " * (64 * 1024)


@dataclass
class Received:
    """One request a hostile server received."""

    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes


class ClientGone(Exception):
    """The client closed the connection, or the server is stopping."""


@dataclass
class Reply:
    """The connection an answer is written to; every write raises ``ClientGone`` once it ends."""

    sock: socket.socket
    stopping: threading.Event
    close_after: bool = False  # set by an answer framed by the connection's end
    sent: int = field(default=0)

    def send(self, data: bytes) -> None:
        if self.stopping.is_set():
            raise ClientGone
        try:
            self.sock.sendall(data)
        except OSError:
            raise ClientGone from None
        self.sent += len(data)

    def trickle(self, data: bytes, interval: float = 1.0) -> None:
        """Send ``data`` one byte every ``interval`` seconds."""
        for byte in data:
            self.send(bytes([byte]))
            if self.stopping.wait(interval):
                raise ClientGone

    def head(self, status: str, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def answer(self, status: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        """A whole answer with Content-Length, at once."""
        all_headers = {**(headers or {}), "Content-Length": str(len(body))}
        self.send(self.head(status, all_headers) + body)


Answer = Callable[[Received, Reply], None]


class HostileServer:
    """A loopback HTTP/1.1 server answering every request with ``answer``; see the module doc."""

    def __init__(self, answer: Answer, lifetime: float = 120.0) -> None:
        self._answer = answer
        self._lifetime = lifetime
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._threads: list[threading.Thread] = []
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    def start(self) -> HostileServer:
        thread = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._listener.close()

    def _accept(self) -> None:
        deadline = time.monotonic() + self._lifetime
        while not self._stopping.is_set():
            if time.monotonic() > deadline:
                self._stopping.set()
                break
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            thread = threading.Thread(target=self._serve, args=(sock,), name="hostile-conn", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(1.0)
        buffer = bytearray()
        try:
            while not self._stopping.is_set():
                request = _read_request(sock, buffer, self._stopping)
                if request is None:
                    return
                with self._lock:
                    self._received.append(request)
                reply = Reply(sock, self._stopping)
                self._answer(request, reply)
                if reply.close_after:
                    return
        except (ClientGone, OSError):
            return
        finally:
            sock.close()


@contextmanager
def running(answer: Answer, lifetime: float = 120.0) -> Iterator[HostileServer]:
    """A started ``HostileServer``; stopped (its connections closed) when the block ends."""
    server = HostileServer(answer, lifetime).start()
    try:
        yield server
    finally:
        server.stop()


def _receive(sock: socket.socket, stopping: threading.Event) -> bytes:
    """The next bytes from the client (b"" at its end); waits at most 30 s, checking ``stopping``."""
    for _ in range(30):
        if stopping.is_set():
            raise ClientGone
        try:
            return sock.recv(65536)
        except TimeoutError:
            continue
    raise ClientGone


def _read_request(sock: socket.socket, buffer: bytearray, stopping: threading.Event) -> Received | None:
    """One request from the connection (None when the client closed it between requests)."""
    while b"\r\n\r\n" not in buffer:
        data = _receive(sock, stopping)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(sock, buffer, stopping)
    else:
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            data = _receive(sock, stopping)
            if not data:
                raise ClientGone
            buffer += data
        body = bytes(buffer[:length])
        del buffer[:length]
    return Received(method, target, headers, body)


def _read_chunked(sock: socket.socket, buffer: bytearray, stopping: threading.Event) -> bytes:
    body = bytearray()
    while True:
        while b"\r\n" not in buffer:
            buffer += _receive(sock, stopping) or b"\r\n0\r\n\r\n"
        line_end = buffer.index(b"\r\n")
        size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
        while len(buffer) < line_end + 2 + size + 2:
            data = _receive(sock, stopping)
            if not data:
                raise ClientGone
            buffer += data
        body += buffer[line_end + 2 : line_end + 2 + size]
        del buffer[: line_end + 2 + size + 2]
        if size == 0:
            return bytes(body)


def records_sent(request: Received) -> int:
    """How many records an import request carried (1 when its body is not an import body)."""
    try:
        return len(json.loads(request.body)["records"])
    except (ValueError, KeyError, TypeError):
        return 1


def import_answer(request: Received) -> bytes:
    """A correct import answer for ``request``: every record stored."""
    count = records_sent(request)
    return json.dumps(
        {"success_count": count, "error_count": 0, "duplicates_skipped": 0, "errors": []}
    ).encode()


# --- (a) trickling ---------------------------------------------------------------------------------


def trickle(part: str, interval: float = 1.0) -> Answer:
    """
    A valid 200 import answer (or ``{"lists": []}`` for GET) sent one byte every ``interval`` s.

    ``part="head"`` trickles from the status line's first byte; ``part="body"`` sends the headers at
    once (with Content-Length) and trickles the body, padded with 60 leading spaces so it lasts over
    a minute at one byte a second.
    """
    if part not in ("head", "body"):
        raise ValueError(part)

    def answer(request: Received, reply: Reply) -> None:
        body = b" " * 60 + (b'{"lists": []}' if request.method == "GET" else import_answer(request))
        head = reply.head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))})
        if part == "head":
            reply.trickle(head + body, interval)
        else:
            reply.send(head)
            reply.trickle(body, interval)

    return answer


# --- (b) 1 GiB bodies ------------------------------------------------------------------------------


def huge(framing: str, status: str = "200 OK", size: int = GIB) -> Answer:
    """
    ``{"error": "<spaces>"}``, ``size`` bytes in all, made 64 KiB at a time as the client reads it.

    ``framing``: ``"length"`` (Content-Length: size), ``"chunked"`` (Transfer-Encoding: chunked) or
    ``"close"`` (no length: the body ends with the connection).
    """
    if framing not in ("length", "chunked", "close"):
        raise ValueError(framing)

    def answer(request: Received, reply: Reply) -> None:
        headers = {"Content-Type": "application/json"}
        if framing == "length":
            headers["Content-Length"] = str(size)
        elif framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Connection"] = "close"
            reply.close_after = True
        reply.send(reply.head(status, headers))
        opening, closing = b'{"error": "', b'"}'
        remaining = size - len(opening) - len(closing)
        _send_body(reply, opening, framing)
        while remaining > 0:
            piece = _CHUNK[: min(len(_CHUNK), remaining)]
            _send_body(reply, piece, framing)
            remaining -= len(piece)
        _send_body(reply, closing, framing)
        if framing == "chunked":
            reply.send(b"0\r\n\r\n")

    return answer


def _send_body(reply: Reply, piece: bytes, framing: str) -> None:
    if framing == "chunked":
        reply.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    else:
        reply.send(piece)


# --- (c) gzip bomb ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def gzip_bomb_body(inflated: int = GIB) -> bytes:
    """``inflated`` zero bytes gzip-compressed (about 1 MiB for 1 GiB), made 1 MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    zeros = bytes(1024 * 1024)
    parts = [compressor.compress(zeros) for _ in range(inflated // len(zeros))]
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_bomb(request: Received, reply: Reply) -> None:
    """200 application/json, ``Content-Encoding: gzip``, inflating to 1 GiB."""
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    reply.answer("200 OK", gzip_bomb_body(), headers)


# --- (d) not Trackly -------------------------------------------------------------------------------

LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method='post' "
    b"action='/login'><input name='user'><input name='password' type='password'>"
    b"<button>Sign in</button></form></body></html>"
)


def login_page(request: Received, reply: Reply) -> None:
    """200 text/html: a single sign-on portal's login page, for every method and path."""
    reply.answer("200 OK", LOGIN_PAGE, {"Content-Type": "text/html; charset=utf-8"})


def not_found_page(request: Received, reply: Reply) -> None:
    """404 text/html for every path: a gateway that serves Trackly under a path the URL lacks."""
    reply.answer("404 Not Found", b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"})


def json_answer(body: object, content_type: str = "application/json") -> Answer:
    """200 with ``body`` as JSON for every method and path."""
    encoded = json.dumps(body).encode()

    def answer(request: Received, reply: Reply) -> None:
        reply.answer("200 OK", encoded, {"Content-Type": content_type})

    return answer


# --- (e) the server's words ------------------------------------------------------------------------

LONG_TEXT = f"contact {PHONE} not found; " + "details " * 1000  # 8,000+ characters

# (code, error) per record, in order; a batch of n records gets the first min(n, 4) as its errors.
SERVER_WORDS = [
    (PHONE, "contact +1 202 555 0123 not found"),
    ("Message Not Found", "No message for (202) 555-0123"),
    ("message_not_found", LONG_TEXT),
    ("offer_not_found", f"key {FOREIGN_KEY} may not read offers of 202.555.0123"),
]


def server_words(request: Received, reply: Reply) -> None:
    """
    ``GET /api/v2/lists``: a normal ``{"lists": []}``. An import POST: 200 JSON whose first records
    (up to four) fail with ``SERVER_WORDS``' codes and texts; the others are stored.
    """
    if request.method == "GET":
        reply.answer("200 OK", b'{"lists": []}', {"Content-Type": "application/json"})
        return
    count = records_sent(request)
    errors = [
        {"index": index, "code": code, "error": error}
        for index, (code, error) in enumerate(SERVER_WORDS[:count])
    ]
    body = {
        "success_count": count - len(errors),
        "error_count": len(errors),
        "duplicates_skipped": 0,
        "errors": errors,
    }
    reply.answer("200 OK", json.dumps(body).encode(), {"Content-Type": "application/json"})


def bad_request_words(request: Received, reply: Reply) -> None:
    """400 ``Bad +12025550123``: a body whose error and code carry the phone number."""
    body = json.dumps({"error": f"contact {PHONE} not found", "code": f"bad {PHONE}"}).encode()
    reply.answer(f"400 Bad {PHONE}", body, {"Content-Type": "application/json"})


def bad_request_page(request: Received, reply: Reply) -> None:
    """400 ``Bad +12025550123``, content type ``text/plain; contact=+12025550123``, a non-JSON body."""
    headers = {"Content-Type": f"text/plain; contact={PHONE}"}
    reply.answer(f"400 Bad {PHONE}", f"no such contact {PHONE}".encode(), headers)


# --- (f) an encoding the hook cannot read ----------------------------------------------------------


def brotli(request: Received, reply: Reply) -> None:
    """200 application/json, ``Content-Encoding: br`` (these bytes are not real brotli)."""
    headers = {"Content-Type": "application/json", "Content-Encoding": "br"}
    reply.answer("200 OK", b"\x1b\x0c\x00\xf8\xa5[\xc2\x1e\x00", headers)

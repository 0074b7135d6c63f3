"""The sandbox's HTTP/1.1 server (standard library only), with control endpoints under ``/_sandbox``."""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trackly_provider.sandbox.contacts import LISTS, AccountSettings
from trackly_provider.sandbox.faults import FaultConfig, FaultPlan
from trackly_provider.sandbox.store import REQUIRED, HistoryStore

HTML_PAGE = b"<html><head><title>%d</title></head><body><h1>%d Bad Gateway</h1>nginx</body></html>"
HISTORY_PATH = "/api/v2/history/"
CONTACTS_PATH = "/api/v2/contacts/bulk"


def import_entity(path: str) -> str | None:
    """The entity an import path imports (``clicks``, ``sends``, ``revenue``, ``contacts``), or None."""
    if path == CONTACTS_PATH:
        return "contacts"
    if path.startswith(HISTORY_PATH) and path[len(HISTORY_PATH) :] in REQUIRED:
        return path[len(HISTORY_PATH) :]
    return None


# Every route the sandbox serves, (method, exact path) to its SandboxHandler method; anything else
# answers 404 not_found. `python -m trackly_provider.sandbox --help` describes each (a test checks).
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/api/v2/lists"): "_lists",
    **{("POST", HISTORY_PATH + entity): "_import_request" for entity in REQUIRED},
    ("POST", CONTACTS_PATH): "_import_request",
    ("GET", "/_sandbox/counts"): "_counts",
    ("GET", "/_sandbox/state"): "_state",
    ("POST", "/_sandbox/reset"): "_reset",
    ("POST", "/_sandbox/account"): "_set_account",
    ("POST", "/_sandbox/faults"): "_set_faults",
    ("POST", "/_sandbox/record"): "_set_record",
}


class SandboxServer(ThreadingHTTPServer):
    """A threading server holding the store, the fault plan and the accepted API key."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api_key: str) -> None:
        super().__init__(address, SandboxHandler)
        self.api_key = api_key
        self.store = HistoryStore()
        self.faults = FaultPlan()
        self.requests_seen = 0
        self.import_connections: set[Any] = set()  # client (address, port) pairs that sent imports
        self.open_imports = 0
        self.most_open_imports = 0
        self.counter_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (timed out, killed) is normal here; anything else is printed."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    _import_open = False  # this connection's current request is an import still being processed
    _request_number = 0  # the current import request's number among those seen since the last reset
    server: SandboxServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK stall every response by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no request lines on stderr
        pass

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._finish_import()
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _reply_html(self, status: int) -> None:
        self._finish_import()
        page = HTML_PAGE % (status, status)
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def _finish_import(self) -> None:
        """An import stops counting as open as its answer starts: before the client can send again."""
        if self._import_open:
            self._import_open = False
            with self.server.counter_lock:
                self.server.open_imports -= 1

    def _drop_connection(self) -> None:
        """Close with a TCP reset and no response."""
        self._finish_import()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorised(self) -> bool:
        key = self.headers.get("X-Api-Key")
        if not key:
            self._reply(401, {"error": "API key required", "code": "missing_api_key"})
        elif key != self.server.api_key:
            self._reply(401, {"error": "Invalid API key", "code": "invalid_api_key"})
        elif self.server.faults.config.suspended:
            self._reply(403, {"error": "Account suspended"})
        else:
            return True
        return False

    def do_GET(self) -> None:
        self._route("GET", b"")

    def do_POST(self) -> None:
        self._route("POST", self._read_body())  # read even when unrouted: the connection stays usable

    def _route(self, method: str, body: bytes) -> None:
        handler = ROUTES.get((method, self.path))
        if handler is None:
            self._reply(404, {"error": "Not found", "code": "not_found"})
        else:
            getattr(self, handler)(body)

    def _lists(self, body: bytes) -> None:
        if self._authorised():
            book = self.server.store.contact_book
            lists = [{**each, "contact_count": book.members(str(each["phone_number"]))} for each in LISTS]
            self._reply(200, {"lists": lists})

    def _import_request(self, body: bytes) -> None:
        entity = import_entity(self.path)
        assert entity is not None  # ROUTES sends only import paths here
        server = self.server
        with server.counter_lock:
            server.requests_seen += 1
            self._request_number = server.requests_seen
            server.import_connections.add(self.client_address)
            server.open_imports += 1
            server.most_open_imports = max(server.most_open_imports, server.open_imports)
        self._import_open = True
        try:
            self._import(entity, body)
        finally:
            self._finish_import()

    def _state(self, body: bytes) -> None:
        store = self.server.store
        self._reply(
            200,
            {
                "requests": store.requests,
                "clicks": store.clicks,
                "sends": store.sends,
                "revenue": store.revenue,
                "total_revenue": str(store.total_revenue),
                "requests_by_entity": store.requests_by_entity,
                **store.contact_book.state(),
                "faults_injected": self.server.faults.injected,
                "requests_seen": self.server.requests_seen,
                "import_connections": len(self.server.import_connections),
                "most_open_imports": self.server.most_open_imports,
                "open_imports": self.server.open_imports,
            },
        )

    def _counts(self, body: bytes) -> None:  # the state's numbers only: cheap with millions stored
        store = self.server.store
        self._reply(
            200,
            {
                "requests_seen": self.server.requests_seen,
                "sends": len(store.sends),
                "clicks": len(store.clicks),
                "revenue": len(store.revenue),
                "total_revenue": str(store.total_revenue),
                "contacts": len(store.contact_book.contacts),
                "list_contacts": len(store.contact_book.list_contacts),
            },
        )

    def _reset(self, body: bytes) -> None:
        self.server.store.reset()
        self.server.faults.configure(FaultConfig())
        self.server.requests_seen = 0
        self.server.import_connections.clear()
        self.server.most_open_imports = 0
        self._reply(200, {"ok": True})

    def _set_faults(self, body: bytes) -> None:
        try:
            self.server.faults.configure(FaultConfig.from_json(json.loads(body or b"{}")))
        except (ValueError, TypeError) as exc:
            self._reply(400, {"error": str(exc), "code": "bad_fault_config"})
            return
        self._reply(200, {"ok": True})

    def _set_account(self, body: bytes) -> None:
        try:
            self.server.store.account = AccountSettings.from_json(json.loads(body or b"{}"))
        except ValueError as exc:
            self._reply(400, {"error": str(exc), "code": "bad_account_config"})
            return
        self._reply(200, {"ok": True})

    def _set_record(self, body: bytes) -> None:
        self.server.store.record_requests = bool(json.loads(body or b"true"))
        self._reply(200, {"ok": True})

    def _import(self, entity: str, body: bytes) -> None:
        faults = self.server.faults
        if faults.config.latency_ms:
            time.sleep(faults.latency())
        if not self._authorised():
            return
        down_after = faults.config.down_after_requests
        if down_after is not None and self._request_number > down_after:  # the API is down
            self._reply_html(503)
            return
        fault = faults.draw()
        if fault == "reset":
            self._drop_connection()
            return
        if fault == "html_503":
            self._reply_html(503)
            return
        if fault == "rate_limited":
            self._reply(
                429,
                {"error": "Too many requests", "code": "rate_limited"},
                {"Retry-After": faults.config.retry_after},
            )
            return
        if len(body) > faults.config.max_body_bytes:
            # The contacts page documents a code for this 413; the history pages none.
            code = {"code": "payload_too_large"} if entity == "contacts" else {}
            self._reply(413, {"error": "Payload Too Large", **code})
            return
        try:
            parsed = json.loads(body)
        except ValueError:
            self._reply(400, {"error": "Request body is not valid JSON.", "code": "invalid_json"})
            return
        store = self.server.store
        if entity == "contacts":
            status, answer = store.import_contacts(parsed)
        else:
            status, answer = store.import_records(entity, parsed, faults.fails_to_save)
        if fault == "lost_after_commit":
            self._drop_connection()
        elif fault == "html_502_after_commit":
            self._reply_html(502)
        elif fault == "contradicting_after_commit":
            self._reply(status, contradicting(answer))
        else:
            self._reply(status, answer)


def contradicting(answer: dict[str, Any]) -> dict[str, Any]:
    """
    An answer no honest server gives: its last listed error names the first one's record again
    (the counts still add up), or, with fewer than two errors, one record too many is counted stored.
    """
    errors = answer.get("errors", [])
    if len(errors) >= 2:
        return {**answer, "errors": [*errors[:-1], {**errors[-1], "index": errors[0]["index"]}]}
    return {**answer, "success_count": answer.get("success_count", 0) + 1}


def serve(host: str, port: int, api_key: str) -> SandboxServer:
    """Bind the sandbox (port 0 picks a free one); the caller runs ``serve_forever``."""
    return SandboxServer((host, port), api_key)

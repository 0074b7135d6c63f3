"""
Real TLS servers and a real forward proxy on loopback, for the trust, proxy and gateway-path tests.

- ``pki`` (session): two certificate authorities made here with ``trustme`` ("Trackly Test CA", the
  one the servers' certificates chain to, and "Other Test CA", trusted by nobody's server), each
  written to a PEM file, plus a self-signed server certificate.
- ``tls_server``: starts the sandbox (``trackly_provider.sandbox.server.serve``, in this process)
  or any other ``socketserver`` server behind TLS with a chosen certificate, on 127.0.0.1, in a
  background thread stopped at teardown. Each TLS connection is counted on the server side, and
  each failed handshake recorded, so a test can tell how many attempts reached the server even
  when none got as far as an HTTP request.
- ``forward_proxy``: ``proxy.py`` (PyPI) as a subprocess on a free loopback port at its most
  verbose log level (DEBUG), its log in a file the test reads; stopped at teardown.
- ``PathGateway``: a reverse proxy that records each request's path and forwards only those under
  ``/trackly`` to the sandbox, prefix removed, as an API gateway mounted at a path does.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import ipaddress
import logging
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from proxy.http.parser import HttpParser
from proxy.http.proxy import HttpProxyBasePlugin

from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.server import SandboxServer, serve

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
HANDSHAKE_TIMEOUT = 5.0  # seconds a client may take to finish its TLS handshake
START_TIMEOUT = 30.0  # seconds proxy.py may take to start listening
# Every environment variable that could give the hook a trust store or a proxy behind a test's back.
TRUST_AND_PROXY_VARIABLES = (
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


@dataclass(frozen=True)
class ServerCert:
    """A server's certificate chain and private key, as PEM files."""

    chain: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """The test's certificate authorities (PEM bundle files) and server certificates."""

    ca: trustme.CA
    ca_bundle: Path  # "Trackly Test CA": every server certificate but the self-signed one chains to it
    other_ca_bundle: Path  # "Other Test CA": signs nothing any server here presents
    trusted: ServerCert  # issued by ``ca`` for 127.0.0.1 and localhost
    wrong_host: ServerCert  # issued by ``ca`` for trackly.example only
    self_signed: ServerCert  # its own issuer, for 127.0.0.1
    client: ServerCert  # a client certificate issued by ``ca`` (chain and key in separate files)


def _leaf(ca: trustme.CA, directory: Path, name: str, *identities: str) -> ServerCert:
    leaf = ca.issue_cert(*identities)
    chain, key = directory / f"{name}.pem", directory / f"{name}.key"
    for blob, path in ((leaf.cert_chain_pems[0], chain), (leaf.private_key_pem, key)):
        blob.write_to_path(str(path))
    return ServerCert(chain, key)


def _self_signed(directory: Path, host: str) -> ServerCert:
    """A certificate for ``host`` signed by its own key (not a CA: basicConstraints CA=false)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed Trackly gateway")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    chain, key_path = directory / "self-signed.pem", directory / "self-signed.key"
    chain.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ServerCert(chain, key_path)


def make_pki(directory: Path) -> Pki:
    """Two fresh CAs and the server certificates, written under ``directory``."""
    ca, other = trustme.CA(organization_name="Trackly Test CA"), trustme.CA(organization_name="Other Test CA")
    ca_bundle, other_bundle = directory / "trackly-test-ca.pem", directory / "other-test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_bundle))
    other.cert_pem.write_to_path(str(other_bundle))
    return Pki(
        ca=ca,
        ca_bundle=ca_bundle,
        other_ca_bundle=other_bundle,
        trusted=_leaf(ca, directory, "trusted", LOOPBACK, "localhost"),
        wrong_host=_leaf(ca, directory, "wrong-host", "trackly.example"),
        self_signed=_self_signed(directory, LOOPBACK),
        client=_leaf(ca, directory, "client", "airflow-worker.example"),
    )


def client_context(bundle: Path) -> ssl.SSLContext:
    """A client context trusting only ``bundle`` (for checking a server without the hook)."""
    return ssl.create_default_context(cafile=str(bundle))


@dataclass
class TlsStats:
    """What the TLS listener saw: TCP connections accepted and the handshakes that failed (their errors)."""

    connections: int = 0
    handshakes: int = 0  # completed
    failed_handshakes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def settled(self, timeout: float = 5.0) -> TlsStats:
        """Self, once every connection accepted has finished its handshake or failed it (a client
        that gives up first may not have been seen failing yet)."""
        deadline = time.monotonic() + timeout
        while self.connections != self.handshakes + len(self.failed_handshakes):
            if time.monotonic() > deadline:
                raise AssertionError(f"a TLS handshake is still unfinished after {timeout} s: {self}")
            time.sleep(0.02)
        return self


def serve_tls(server: socketserver.TCPServer, cert: ServerCert, client_ca: Path | None = None) -> TlsStats:
    """
    Make ``server`` speak TLS with ``cert``: each accepted connection is counted, then wrapped with a
    server-side ``ssl.SSLContext`` (handshake at accept, at most ``HANDSHAKE_TIMEOUT`` seconds). A
    failed handshake closes the connection and is recorded; ``socketserver`` treats the ``OSError``
    as no request, so the handler never runs for it. With ``client_ca`` (a PEM bundle) the server
    requires a client certificate signed by it.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert.chain), str(cert.key))
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(client_ca))
    stats = TlsStats()
    listener = server.socket

    def get_request() -> tuple[socket.socket, Any]:
        plain, address = listener.accept()
        with stats.lock:
            stats.connections += 1
        plain.settimeout(HANDSHAKE_TIMEOUT)
        try:
            secure = context.wrap_socket(plain, server_side=True)
        except OSError as exc:
            with stats.lock:
                stats.failed_handshakes.append(str(exc))
            plain.close()
            raise
        secure.settimeout(None)
        with stats.lock:
            stats.handshakes += 1
        return secure, address

    server.get_request = get_request  # type: ignore[method-assign]
    return stats


class RunningServer:
    """A ``socketserver`` server serving in a daemon thread until ``stop``."""

    def __init__(self, server: socketserver.TCPServer, tls: TlsStats | None) -> None:
        self.server = server
        self.tls = tls
        host, port = server.server_address[:2]
        self.url = f"{'https' if tls else 'http'}://{host!s}:{port}"
        self.port = int(port)
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)

    @property
    def sandbox(self) -> SandboxServer:
        assert isinstance(self.server, SandboxServer)
        return self.server

    def paths_seen(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request a ``PathGateway`` received, in order."""
        assert isinstance(self.server, PathGateway)
        return self.server.seen

    def import_requests(self) -> list[list[Any]]:
        """Every import request's records that reached the sandbox, in order."""
        return self.sandbox.store.requests


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


ServerFactory = Callable[..., RunningServer]


@pytest.fixture
def tls_server() -> Iterator[ServerFactory]:
    """
    ``start(cert=None, server=None, client_ca=None)``: run ``server`` (default: a fresh sandbox
    accepting ``SANDBOX_API_KEY``) on 127.0.0.1, behind TLS with ``cert`` when given (requiring a
    client certificate signed by ``client_ca`` when given); every server started is stopped at
    teardown.
    """
    running: list[RunningServer] = []

    def start(
        cert: ServerCert | None = None,
        server: socketserver.TCPServer | None = None,
        client_ca: Path | None = None,
    ) -> RunningServer:
        server = server or serve(LOOPBACK, 0, SANDBOX_API_KEY)
        tls = serve_tls(server, cert, client_ca) if cert else None
        running.append(RunningServer(server, tls))
        return running[-1]

    yield start
    for server in running:
        server.stop()


class LogEveryRequest(HttpProxyBasePlugin):
    """
    A proxy.py plugin that logs each request it receives whole (method, target, every header, body):
    proxy.py's own DEBUG log has no headers, so without it a key sent to the proxy would go unseen.
    """

    def before_upstream_connection(self, request: HttpParser) -> HttpParser | None:
        self._log(request)
        return request

    def handle_client_request(self, request: HttpParser) -> HttpParser | None:
        self._log(request)
        return request

    @staticmethod
    def _log(request: HttpParser) -> None:
        logging.getLogger("proxy").info("request received: %r", request.build(disable_headers=[]))


class ForwardProxy:
    """
    ``proxy.py`` on a free loopback port, logging at DEBUG (its most verbose) to ``log_path``, plus
    every request whole (``LogEveryRequest``).
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path, scheme: str) -> None:
        self.process = process
        self.port = port
        self.url = f"{scheme}://{LOOPBACK}:{port}"
        self.log_path = log_path

    @classmethod
    def start(
        cls, workdir: Path, basic_auth: str | None = None, cert: ServerCert | None = None
    ) -> ForwardProxy:
        """
        Start it; ``basic_auth`` ("user:password") makes it require those proxy credentials, and
        ``cert`` makes clients talk TLS to it (an ``https://`` proxy URL).
        """
        port_file, log_path = workdir / "proxy.port", workdir / "proxy.log"
        command = [
            sys.executable,
            "-m",
            "proxy",
            "--hostname",
            LOOPBACK,
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--log-level",
            "DEBUG",
            "--log-file",
            str(log_path),
            "--num-acceptors",
            "1",
            "--num-workers",
            "1",
            "--plugins",
            f"{__name__}.LogEveryRequest",
        ]
        if basic_auth:
            command += ["--basic-auth", basic_auth]
        if cert:
            command += ["--cert-file", str(cert.chain), "--key-file", str(cert.key)]
        process = subprocess.Popen(  # its own process group: its acceptor and worker processes stop with it
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            port = port_file.read_text().strip() if port_file.exists() else ""
            if port and _accepts(int(port)):
                return cls(process, int(port), log_path, "https" if cert else "http")
            if process.poll() is not None or time.monotonic() > deadline:
                _end(process)
                raise RuntimeError(f"proxy.py did not start within {START_TIMEOUT:.0f} s")
            time.sleep(0.05)

    def stop(self) -> None:
        _end(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for(self, text: str, timeout: float = 5.0) -> str:
        """The log once it holds ``text`` (proxy.py logs a tunnel as it closes); fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the proxy's log never showed {text!r}; it holds:\n{log}")
            time.sleep(0.05)
        return log


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=1).close()
    except OSError:
        return False
    return True


def _end(process: subprocess.Popen[bytes]) -> None:
    """Stop proxy.py and every process it forked (its process group, which holds nothing else)."""
    _signal_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    _signal_group(process, signal.SIGKILL)  # whatever did not stop in time, or outlived the main process
    process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is empty: every process of it has exited
        os.killpg(process.pid, signum)


@pytest.fixture
def forward_proxy(tmp_path: Path) -> Iterator[ForwardProxy]:
    proxy = ForwardProxy.start(tmp_path)
    yield proxy
    proxy.stop()


@pytest.fixture
def clean_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No trust store or proxy from the environment unless the test sets one."""
    for name in TRUST_AND_PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class PathGatewayHandler(BaseHTTPRequestHandler):
    """Records each request's method and path; forwards those under the prefix to the sandbox without it."""

    protocol_version = "HTTP/1.1"
    server: PathGateway

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _forward(self, body: bytes) -> None:
        self.server.seen.append((self.command, self.path))
        prefix = self.server.prefix
        if not self.path.startswith(prefix + "/"):
            page = b"<html><body><h1>404 Not Found</h1>gateway</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        upstream = http.client.HTTPConnection(LOOPBACK, self.server.upstream_port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            upstream.request(self.command, self.path[len(prefix) :], body=body or None, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class PathGateway(ThreadingHTTPServer):
    """A gateway on 127.0.0.1 serving the sandbox at ``upstream_port`` under ``prefix`` (default /trackly)."""

    daemon_threads = True

    def __init__(self, upstream_port: int, prefix: str = "/trackly") -> None:
        super().__init__((LOOPBACK, 0), PathGatewayHandler)
        self.upstream_port = upstream_port
        self.prefix = prefix
        self.seen: list[tuple[str, str]] = []


# structlog's console line: "<time> [<level>  ] <message> [<logger>] loc=<file:line>"
STRUCTLOG_LINE = re.compile(r"^\S+ \[(?P<level>[a-z]+)\s*\] (?P<message>.*?)(?: \[[\w.]+\])?(?: \w+=\S+)*$")


@pytest.fixture
def logged(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Callable[[], list[tuple[str, str]]]:
    """
    ``logged()``: ``(level, message)`` of everything logged at INFO or above since the last call,
    level in lower case. Airflow 3.2+ prints hook logs to stdout through structlog; 3.0 and 3.1 log
    through the standard library, whose records caplog keeps.
    """
    caplog.set_level(logging.INFO)

    def read() -> list[tuple[str, str]]:
        lines = [
            (match["level"], match["message"])
            for line in capfd.readouterr().out.splitlines()
            if (match := STRUCTLOG_LINE.match(line))
        ]
        lines += [(record.levelname.lower(), record.getMessage()) for record in caplog.records]
        caplog.clear()
        return lines

    return read

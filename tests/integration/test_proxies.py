"""
Which forward proxy the hook goes through, against ``proxy.py`` running on 127.0.0.1 at its most
verbose log level, in front of the sandbox behind TLS with a CA made here (``tests/tls_servers.py``).

The proxy's own log is the witness: it writes one access line per tunnel (``CONNECT host:port``)
when the tunnel closes, so each test closes its hook before reading it. Nothing is mocked.
"""

from __future__ import annotations

import re
import socket
import traceback
from typing import TYPE_CHECKING

import pytest

from tests.helpers import set_trackly_connection
from trackly_provider.exceptions import TracklyConfigError, TracklyRetriesExhaustedError
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.trackly_api.results import ImportResult

if TYPE_CHECKING:  # imported by pytest as a plugin (imported here first, its asserts would not be rewritten)
    from tests.tls_servers import ForwardProxy, Pki, RunningServer, ServerFactory

pytest_plugins = ["tests.tls_servers"]
pytestmark = pytest.mark.usefixtures("clean_network_environment")

RECORD = {
    "message_id": "msg-proxy-1",
    "offer_id": "offer-1",
    "phone_number": "+12025550123",
    "timestamp": "2025-11-15T14:35:22+00:00",
}
PROXY_USER, PROXY_PASSWORD = "airflow", "Pr0xyS3cretPw"


@pytest.fixture
def https_sandbox(tls_server: ServerFactory, pki: Pki) -> RunningServer:
    return tls_server(pki.trusted)


def import_one(monkeypatch, server: RunningServer, pki: Pki, extra: dict | None = None) -> ImportResult:
    """One click imported by a fresh hook that trusts the test CA; the hook is closed (tunnel ended)."""
    set_trackly_connection(
        monkeypatch, server.url, SANDBOX_API_KEY, {"verify": str(pki.ca_bundle), **(extra or {})}
    )
    hook = TracklyHook(sleep=lambda _: None)
    try:
        return hook.import_clicks([RECORD])
    finally:
        hook.close()


ACCESS_LINE = re.compile(r"access_log:\d+ - 127\.0\.0\.1:\d+ - (?P<request>.*) - \d+ bytes - [\d.]+ms$")


def tunnel_lines(log: str) -> list[str]:
    """The proxy's access-log lines for CONNECT tunnels, from the method to the target."""
    requests = [match["request"] for line in log.splitlines() if (match := ACCESS_LINE.search(line))]
    return [request for request in requests if request.startswith("CONNECT ")]


def assert_went_through(proxy: ForwardProxy, server: RunningServer) -> None:
    log = proxy.wait_for(f"CONNECT 127.0.0.1:{server.port} ")
    assert tunnel_lines(log) == [f"CONNECT 127.0.0.1:{server.port}"]
    assert server.import_requests() == [[RECORD]]


def assert_went_around(proxy: ForwardProxy, server: RunningServer) -> None:
    """Nothing about the sandbox in the proxy's log, once a later request through it has been logged."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as later:
        later.sendall(b"GET http://127.0.0.1:9/later HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
        later.recv(4096)
    log = proxy.wait_for("127.0.0.1:9/later")
    assert f":{server.port}" not in log
    assert server.import_requests() == [[RECORD]]


def test_extra_proxy_carries_the_traffic_through_a_connect_tunnel(
    monkeypatch, https_sandbox, forward_proxy, pki
):
    result = import_one(monkeypatch, https_sandbox, pki, {"proxy": forward_proxy.url})
    assert result == ImportResult(1, 0, 0, [])
    assert_went_through(forward_proxy, https_sandbox)


def test_extra_proxy_is_used_even_for_a_host_in_no_proxy(monkeypatch, https_sandbox, forward_proxy, pki):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    import_one(monkeypatch, https_sandbox, pki, {"proxy": forward_proxy.url})
    assert_went_through(forward_proxy, https_sandbox)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
def test_an_environment_proxy_carries_the_traffic_and_is_logged_without_credentials(
    monkeypatch, https_sandbox, forward_proxy, pki, logged, variable
):
    monkeypatch.setenv(variable, forward_proxy.url)
    logged()
    import_one(monkeypatch, https_sandbox, pki)
    assert_went_through(forward_proxy, https_sandbox)
    said = [message for _, message in logged() if "goes through proxy" in message]
    origin = variable.upper()
    assert said == [
        f"Trackly connection 'trackly_default' goes through proxy {forward_proxy.url} (from {origin})."
    ]


def test_https_proxy_beats_all_proxy(monkeypatch, https_sandbox, forward_proxy, pki):
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url)
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")  # nothing listens: using it would fail
    import_one(monkeypatch, https_sandbox, pki)
    assert_went_through(forward_proxy, https_sandbox)


def test_http_proxy_is_for_a_plain_http_base_url_only(monkeypatch, tls_server, forward_proxy, pki):
    """A plain-http loopback sandbox goes through HTTP_PROXY; HTTPS_PROXY (a dead port) is not consulted."""
    server = tls_server()
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    import_one(monkeypatch, server, pki)
    log = forward_proxy.wait_for(f"127.0.0.1:{server.port}/api/v2/history/clicks")
    assert " CONNECT " not in log
    assert server.import_requests() == [[RECORD]]


@pytest.mark.parametrize(
    ("variable", "value"),
    [("NO_PROXY", "127.0.0.1"), ("no_proxy", "example.com, 127.0.0.1"), ("NO_PROXY", "*")],
)
def test_no_proxy_bypasses_an_environment_proxy(
    monkeypatch, https_sandbox, forward_proxy, pki, logged, variable, value
):
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url)
    monkeypatch.setenv(variable, value)
    logged()
    import_one(monkeypatch, https_sandbox, pki)
    assert_went_around(forward_proxy, https_sandbox)
    assert not [message for _, message in logged() if "proxy" in message]


def test_the_proxy_sees_only_host_and_port_never_the_api_key_or_records(
    monkeypatch, https_sandbox, forward_proxy, pki
):
    """proxy.py logs at DEBUG here, its most verbose: everything it could read is in its log."""
    import_one(monkeypatch, https_sandbox, pki, {"proxy": forward_proxy.url})
    log = forward_proxy.wait_for("CONNECT")
    assert SANDBOX_API_KEY not in log
    assert RECORD["phone_number"] not in log
    assert RECORD["message_id"] not in log
    assert "/api/v2" not in log
    assert "X-Api-Key".lower() not in log.lower()
    assert_went_through(forward_proxy, https_sandbox)


@pytest.fixture
def auth_proxy(tmp_path):
    from tests.tls_servers import ForwardProxy

    proxy = ForwardProxy.start(tmp_path, basic_auth=f"{PROXY_USER}:{PROXY_PASSWORD}")
    yield proxy
    proxy.stop()


def credentials_url(proxy: ForwardProxy, password: str = PROXY_PASSWORD) -> str:
    return f"http://{PROXY_USER}:{password}@127.0.0.1:{proxy.port}"


@pytest.mark.parametrize("origin", ["extra 'proxy'", "HTTPS_PROXY"])
def test_proxy_credentials_are_sent_but_never_logged(
    monkeypatch, https_sandbox, auth_proxy, pki, logged, origin
):
    """The proxy requires them (it would answer 407 without): the import passing proves they were sent."""
    logged()
    if origin == "HTTPS_PROXY":
        monkeypatch.setenv(origin, credentials_url(auth_proxy))
        import_one(monkeypatch, https_sandbox, pki)
    else:
        import_one(monkeypatch, https_sandbox, pki, {"proxy": credentials_url(auth_proxy)})
    assert_went_through(auth_proxy, https_sandbox)
    messages = [message for _, message in logged()]
    said = f"Trackly connection 'trackly_default' goes through proxy {auth_proxy.url} (from {origin})."
    assert said in messages
    assert not [message for message in messages if PROXY_PASSWORD in message]


# failure: (what the hook raises, words its message holds)
PROXY_FAILURES = {
    "wrong-password": (
        TracklyConfigError,
        "the proxy refused its credentials (407 Proxy Authentication Required)",
    ),
    "proxy-down": (TracklyRetriesExhaustedError, "Connection refused"),
}


@pytest.mark.parametrize("failure", PROXY_FAILURES)
def test_proxy_credentials_never_appear_in_a_failure(
    monkeypatch, https_sandbox, auth_proxy, pki, logged, failure
):
    """A refused password is a configuration error (no retry can fix it); a proxy down is retried."""
    if failure == "wrong-password":
        url = credentials_url(auth_proxy, password="Wr0ngPassw0rd")
        secret = "Wr0ngPassw0rd"
    else:
        auth_proxy.stop()
        url, secret = credentials_url(auth_proxy), PROXY_PASSWORD
    expected, words = PROXY_FAILURES[failure]
    logged()
    with pytest.raises(expected) as raised:
        import_one(monkeypatch, https_sandbox, pki, {"proxy": url})
    assert words in str(raised.value)
    told = "".join(traceback.format_exception(raised.value))
    assert secret not in told
    assert f"{PROXY_USER}:" not in told
    assert not [message for _, message in logged() if secret in message]
    assert https_sandbox.import_requests() == []


@pytest.fixture
def tls_proxy(tmp_path, pki):
    """proxy.py spoken to over TLS (an ``https://`` proxy URL), its certificate from the test CA."""
    from tests.tls_servers import ForwardProxy

    proxy = ForwardProxy.start(tmp_path, cert=pki.trusted)
    yield proxy
    proxy.stop()


def test_an_https_proxy_is_trusted_through_the_extra_verify_too(monkeypatch, https_sandbox, tls_proxy, pki):
    """The spec's ``proxy``: "http://[user:pass@]host:port (or https://)"; the private CA that the
    extra ``verify`` trusts signed both the proxy's and the sandbox's certificates."""
    import_one(monkeypatch, https_sandbox, pki, {"proxy": tls_proxy.url})
    assert_went_through(tls_proxy, https_sandbox)

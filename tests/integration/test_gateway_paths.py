"""
A Base URL with a path (Trackly behind an API gateway), in each form Airflow stores a connection:
the UI's host field, JSON (host + schema) and a URI. A real gateway on 127.0.0.1 records every
path it receives and forwards only those under ``/trackly`` to the sandbox, prefix removed, so a
request that lost the gateway path gets the gateway's 404 page instead of Trackly's answer. The
connection-validation cases, refused before any request, are in tests/unit/test_trackly.py.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from tests.helpers import set_trackly_connection
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.trackly_api.results import ImportResult

if TYPE_CHECKING:  # imported by pytest as a plugin (imported here first, its asserts would not be rewritten)
    from tests.tls_servers import Pki, RunningServer, ServerFactory

pytest_plugins = ["tests.tls_servers"]
pytestmark = pytest.mark.usefixtures("clean_network_environment")

RECORD = {
    "message_id": "msg-gw-1",
    "offer_id": "offer-1",
    "phone_number": "+12025550123",
    "timestamp": "2025-11-15T14:35:22+00:00",
}
UNDER_TRACKLY = [("GET", "/trackly/api/v2/lists"), ("POST", "/trackly/api/v2/history/clicks")]


@pytest.fixture
def sandbox(tls_server: ServerFactory) -> RunningServer:
    """The sandbox on plain http, only ever reached through a gateway here."""
    return tls_server()


@pytest.fixture
def http_gateway(tls_server: ServerFactory, sandbox: RunningServer) -> RunningServer:
    from tests.tls_servers import PathGateway

    return tls_server(server=PathGateway(sandbox.port))


@pytest.fixture
def https_gateway(tls_server: ServerFactory, sandbox: RunningServer, pki: Pki) -> RunningServer:
    """The gateway behind TLS: a schema other than http/https leaves the scheme https."""
    from tests.tls_servers import PathGateway

    return tls_server(pki.trusted, server=PathGateway(sandbox.port))


def check_and_import(hook: TracklyHook) -> ImportResult:
    """What a task does: the access check, then one click imported; the hook is closed."""
    try:
        hook.check_access()
        return hook.import_clicks([RECORD])
    finally:
        hook.close()


def assert_under_trackly(gateway: RunningServer, sandbox: RunningServer, result: ImportResult) -> None:
    assert gateway.paths_seen() == UNDER_TRACKLY
    assert result == ImportResult(1, 0, 0, [])
    assert sandbox.import_requests() == [[RECORD]]


@pytest.mark.parametrize(
    "path",
    ["/trackly", "/trackly/", "/trackly/api/v2", "/trackly/api/v2/"],
)
def test_ui_host_form_keeps_the_gateway_path(monkeypatch, http_gateway, sandbox, path):
    """host "http://127.0.0.1:PORT/trackly" (as typed in the UI's Base URL field)."""
    set_trackly_connection(monkeypatch, f"{http_gateway.url}{path}", SANDBOX_API_KEY)
    assert_under_trackly(http_gateway, sandbox, check_and_import(TracklyHook()))


def test_a_deeper_gateway_path_is_kept_whole(monkeypatch, tls_server, sandbox):
    from tests.tls_servers import PathGateway

    gateway = tls_server(server=PathGateway(sandbox.port, prefix="/edge/eu-1/trackly"))
    set_trackly_connection(monkeypatch, f"{gateway.url}/edge/eu-1/trackly", SANDBOX_API_KEY)
    check_and_import(TracklyHook())
    assert gateway.paths_seen() == [
        ("GET", "/edge/eu-1/trackly/api/v2/lists"),
        ("POST", "/edge/eu-1/trackly/api/v2/history/clicks"),
    ]


@pytest.mark.parametrize("schema", ["trackly", "/trackly", "trackly/", "trackly/api/v2"])
def test_json_form_takes_the_path_from_the_schema_field(monkeypatch, https_gateway, sandbox, pki, schema):
    conn = {
        "conn_type": "trackly",
        "host": "127.0.0.1",
        "port": https_gateway.port,
        "schema": schema,
        "password": SANDBOX_API_KEY,
        "extra": {"verify": str(pki.ca_bundle)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_DEFAULT", json.dumps(conn))
    assert_under_trackly(https_gateway, sandbox, check_and_import(TracklyHook()))


def test_the_same_path_in_host_and_schema_is_accepted(monkeypatch, http_gateway, sandbox):
    conn = {"conn_type": "trackly", "host": f"{http_gateway.url}/trackly", "schema": "trackly"}
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_DEFAULT", json.dumps({**conn, "password": SANDBOX_API_KEY}))
    assert_under_trackly(http_gateway, sandbox, check_and_import(TracklyHook()))


def test_uri_form_takes_the_path_from_the_uri(monkeypatch, https_gateway, sandbox, pki):
    """AIRFLOW_CONN_* as a URI: Airflow's ``Connection(uri=...)`` puts the path in the schema field."""
    uri = (
        f"trackly://:{SANDBOX_API_KEY}@127.0.0.1:{https_gateway.port}/trackly"
        f"?verify={quote(str(pki.ca_bundle), safe='')}"
    )
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_DEFAULT", uri)
    assert TracklyHook.get_connection("trackly_default").schema == "trackly"
    assert_under_trackly(https_gateway, sandbox, check_and_import(TracklyHook()))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_schema_http_or_https_is_the_scheme_not_a_path(monkeypatch, tls_server, sandbox, pki, scheme):
    from tests.tls_servers import PathGateway

    gateway = tls_server(
        pki.trusted if scheme == "https" else None, server=PathGateway(sandbox.port, prefix="")
    )
    conn = {
        "conn_type": "trackly",
        "host": "127.0.0.1",
        "port": gateway.port,
        "schema": scheme,
        "password": SANDBOX_API_KEY,
        "extra": {"verify": str(pki.ca_bundle)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_DEFAULT", json.dumps(conn))
    result = check_and_import(TracklyHook())
    assert gateway.paths_seen() == [("GET", "/api/v2/lists"), ("POST", "/api/v2/history/clicks")]
    assert result == ImportResult(1, 0, 0, [])

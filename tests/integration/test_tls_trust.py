"""
Which certificates the hook trusts, against real TLS servers on 127.0.0.1 whose CA is made here.

The servers are the sandbox itself behind TLS (``tests/tls_servers.py``); each counts the TLS
connections it accepted, so a refused certificate is shown to cost exactly one attempt even though
no HTTP request ever reaches the sandbox. Nothing is mocked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import set_trackly_connection
from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.trackly_api.results import ImportResult
from trackly_provider.version_compat import AirflowFailException

if TYPE_CHECKING:  # imported by pytest as a plugin (imported here first, its asserts would not be rewritten)
    from tests.tls_servers import Pki, RunningServer, ServerFactory

pytest_plugins = ["tests.tls_servers"]
pytestmark = pytest.mark.usefixtures("clean_network_environment")

RECORD = {
    "message_id": "msg-tls-1",
    "offer_id": "offer-1",
    "phone_number": "+12025550123",
    "timestamp": "2025-11-15T14:35:22+00:00",
}
VERIFICATION_OFF = "certificate verification is OFF"


def hook_for(
    monkeypatch: pytest.MonkeyPatch, server: RunningServer, extra: dict | None = None, **kwargs
) -> tuple[TracklyHook, list[float]]:
    """A hook on ``trackly_default`` pointing at ``server``, and the list of waits it asked for."""
    set_trackly_connection(monkeypatch, server.url, SANDBOX_API_KEY, extra)
    waits: list[float] = []
    return TracklyHook(sleep=waits.append, **kwargs), waits


def import_one(hook: TracklyHook) -> ImportResult:
    try:
        return hook.import_clicks([RECORD])
    finally:
        hook.close()


def assert_one_click_arrived(server: RunningServer, result: ImportResult) -> None:
    assert result == ImportResult(1, 0, 0, [])
    assert server.import_requests() == [[RECORD]]


def test_extra_verify_path_trusts_a_private_ca(monkeypatch, tls_server: ServerFactory, pki: Pki):
    server = tls_server(pki.trusted)
    hook, _ = hook_for(monkeypatch, server, {"verify": str(pki.ca_bundle)})
    assert_one_click_arrived(server, import_one(hook))


def test_hook_argument_verify_beats_the_extra(monkeypatch, tls_server: ServerFactory, pki: Pki):
    server = tls_server(pki.trusted)
    hook, _ = hook_for(monkeypatch, server, {"verify": str(pki.other_ca_bundle)}, verify=str(pki.ca_bundle))
    assert_one_click_arrived(server, import_one(hook))


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
@pytest.mark.parametrize("verify", [None, True, "true"], ids=["no-extra", "json-true", "string-true"])
def test_a_ca_bundle_variable_trusts_a_private_ca(
    monkeypatch, tls_server: ServerFactory, pki: Pki, variable, verify
):
    """``verify`` true (as JSON or as the string "true", never a file named "true") means: the usual trust."""
    server = tls_server(pki.trusted)
    monkeypatch.setenv(variable, str(pki.ca_bundle))
    hook, _ = hook_for(monkeypatch, server, {} if verify is None else {"verify": verify})
    assert_one_click_arrived(server, import_one(hook))


@pytest.mark.parametrize(
    ("winner", "loser"),
    [
        ("extra", "REQUESTS_CA_BUNDLE"),
        ("extra", "SSL_CERT_FILE"),
        ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
        ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"),
        ("CURL_CA_BUNDLE", "SSL_CERT_FILE"),
    ],
)
def test_the_first_trust_source_found_wins(monkeypatch, tls_server: ServerFactory, pki: Pki, winner, loser):
    """The loser names a bundle of another CA: had it been used (or merged), the import would fail."""
    server = tls_server(pki.trusted)
    monkeypatch.setenv(loser, str(pki.other_ca_bundle))
    extra = {}
    if winner == "extra":
        extra = {"verify": str(pki.ca_bundle)}
    else:
        monkeypatch.setenv(winner, str(pki.ca_bundle))
    hook, _ = hook_for(monkeypatch, server, extra)
    assert_one_click_arrived(server, import_one(hook))


@pytest.mark.parametrize(
    "loser",
    [
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",  # which OpenSSL's default paths would read: only the extra may count
        "SSL_CERT_DIR",
    ],
)
def test_a_winning_bundle_replaces_the_others_instead_of_adding_to_them(
    monkeypatch, tls_server: ServerFactory, pki: Pki, hashed_ca_directory: Path, loser
):
    """The extra names the other CA and a variable the right one: the extra alone counts."""
    server = tls_server(pki.trusted)
    monkeypatch.setenv(loser, str(hashed_ca_directory if loser == "SSL_CERT_DIR" else pki.ca_bundle))
    hook, _ = hook_for(monkeypatch, server, {"verify": str(pki.other_ca_bundle)})
    with pytest.raises(TracklyConfigError, match="unable to get local issuer certificate"):
        import_one(hook)
    assert server.import_requests() == []


REFUSED = {
    # case: (server certificate, what the hook trusts, OpenSSL's reason)
    "untrusted-ca-certifi": ("trusted", None, "unable to get local issuer certificate"),
    "untrusted-ca-other-bundle": ("trusted", "other", "unable to get local issuer certificate"),
    "self-signed": ("self_signed", "ca", "self-signed certificate"),
    "wrong-host-name": ("wrong_host", "ca", "IP address mismatch, certificate is not valid for '127.0.0.1'"),
}


@pytest.mark.parametrize("operation", ["import_clicks", "check_access"])
@pytest.mark.parametrize("case", REFUSED)
def test_a_refused_certificate_fails_at_once_saying_why_and_how_to_fix(
    monkeypatch, tls_server: ServerFactory, pki: Pki, case, operation
):
    cert_name, trusts, reason = REFUSED[case]
    server = tls_server(getattr(pki, cert_name))
    bundle = {"ca": pki.ca_bundle, "other": pki.other_ca_bundle}.get(trusts or "")
    hook, waits = hook_for(monkeypatch, server, {"verify": str(bundle)} if bundle else {})
    with pytest.raises(TracklyConfigError) as raised:
        try:
            hook.import_clicks([RECORD]) if operation == "import_clicks" else hook.check_access()
        finally:
            hook.close()
    assert isinstance(raised.value, AirflowFailException)  # Airflow does not retry the task either
    message = str(raised.value)
    assert "certificate" in message
    assert reason in message
    assert "'verify'" in message
    assert "REQUESTS_CA_BUNDLE" in message
    assert "SSL_CERT_FILE" in message
    assert SANDBOX_API_KEY not in message
    tls = server.tls.settled()  # type: ignore[union-attr]
    assert (tls.connections, tls.handshakes, len(tls.failed_handshakes)) == (1, 0, 1)
    assert waits == []
    assert server.import_requests() == []


@pytest.mark.parametrize("verify", [False, "false"], ids=["json-false", "string-false"])
def test_verify_false_reaches_a_self_signed_server_and_warns_each_time_a_client_opens(
    monkeypatch, tls_server: ServerFactory, pki: Pki, logged, verify
):
    server = tls_server(pki.self_signed)
    logged()
    first, _ = hook_for(monkeypatch, server, {"verify": verify})
    try:
        first.import_clicks([RECORD])
        first.import_clicks([{**RECORD, "message_id": "msg-tls-2"}])  # same client: no new warning
    finally:
        first.close()
    second, _ = hook_for(monkeypatch, server, {"verify": verify})  # the next task run's hook
    import_one(second)
    lines = [(level, message) for level, message in logged() if VERIFICATION_OFF in message]
    assert [level for level, _ in lines] == ["warning", "warning"]
    assert all("'trackly_default'" in message for _, message in lines)
    assert [len(request) for request in server.import_requests()] == [1, 1, 1]


def test_verify_false_also_ignores_a_bundle_variable_of_another_ca(
    monkeypatch, tls_server: ServerFactory, pki: Pki
):
    server = tls_server(pki.trusted)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.other_ca_bundle))
    hook, _ = hook_for(monkeypatch, server, {"verify": False})
    assert_one_click_arrived(server, import_one(hook))


@pytest.mark.parametrize("origin", ["extra", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_a_missing_bundle_is_a_config_error_naming_it_before_any_connection(
    monkeypatch, tls_server: ServerFactory, pki: Pki, tmp_path: Path, origin
):
    server = tls_server(pki.trusted)
    missing = tmp_path / "no-such-dir" / "corporate-ca.pem"
    extra = {}
    if origin == "extra":
        extra = {"verify": str(missing)}
    else:
        monkeypatch.setenv(origin, str(missing))
    hook, _ = hook_for(monkeypatch, server, extra)
    with pytest.raises(TracklyConfigError) as raised:
        import_one(hook)
    message = str(raised.value)
    assert str(missing) in message
    assert ("'verify'" if origin == "extra" else origin) in message
    assert SANDBOX_API_KEY not in message
    assert server.tls.connections == 0  # type: ignore[union-attr]


def test_client_certificate_is_presented_to_a_server_that_requires_one(
    monkeypatch, tls_server: ServerFactory, pki: Pki
):
    server = tls_server(pki.trusted, client_ca=pki.ca_bundle)
    extra = {
        "verify": str(pki.ca_bundle),
        "client_cert": str(pki.client.chain),
        "client_key": str(pki.client.key),
    }
    hook, _ = hook_for(monkeypatch, server, extra)
    assert_one_click_arrived(server, import_one(hook))


def test_client_certificate_file_may_hold_its_key(monkeypatch, tls_server: ServerFactory, pki: Pki, tmp_path):
    server = tls_server(pki.trusted, client_ca=pki.ca_bundle)
    combined = tmp_path / "client-with-key.pem"
    combined.write_bytes(pki.client.chain.read_bytes() + pki.client.key.read_bytes())
    hook, _ = hook_for(monkeypatch, server, {"verify": str(pki.ca_bundle), "client_cert": str(combined)})
    assert_one_click_arrived(server, import_one(hook))


@pytest.mark.parametrize("missing", ["client_cert", "client_key"])
def test_a_missing_client_certificate_or_key_is_a_config_error_naming_it(
    monkeypatch, tls_server: ServerFactory, pki: Pki, tmp_path: Path, missing
):
    server = tls_server(pki.trusted, client_ca=pki.ca_bundle)
    extra = {
        "verify": str(pki.ca_bundle),
        "client_cert": str(pki.client.chain),
        "client_key": str(pki.client.key),
    }
    extra[missing] = str(tmp_path / f"absent-{missing}.pem")
    hook, _ = hook_for(monkeypatch, server, extra)
    with pytest.raises(TracklyConfigError) as raised:
        import_one(hook)
    assert f"'{missing}' ({extra[missing]})" in str(raised.value)
    assert server.tls.connections == 0  # type: ignore[union-attr]


@pytest.fixture
def hashed_ca_directory(pki: Pki, tmp_path: Path) -> Path:
    """A directory of CA certificates as OpenSSL looks them up: ``<subject hash>.0`` (``openssl rehash``)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command (Debian: openssl) computes the subject hash OpenSSL looks up")
    directory = tmp_path / "ca-dir"
    directory.mkdir()
    shutil.copy(pki.ca_bundle, directory / "trackly-test-ca.pem")
    subprocess.run([openssl, "rehash", str(directory)], check=True, capture_output=True)
    return directory


@pytest.mark.parametrize("origin", ["extra", "SSL_CERT_DIR"])
def test_a_directory_of_ca_certificates_is_trusted(
    monkeypatch, tls_server: ServerFactory, pki: Pki, hashed_ca_directory: Path, origin
):
    server = tls_server(pki.trusted)
    extra = {}
    if origin == "extra":
        extra = {"verify": str(hashed_ca_directory)}
    else:
        monkeypatch.setenv(origin, str(hashed_ca_directory))
    hook, _ = hook_for(monkeypatch, server, extra)
    assert_one_click_arrived(server, import_one(hook))

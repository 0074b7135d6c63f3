"""Which transport failures are configuration errors, not retried (hooks/network/failures.py)."""

from __future__ import annotations

import ssl

import httpx

from trackly_provider.hooks.network.failures import configuration_problem
from trackly_provider.hooks.network.tls import TrustSource


def _tls_failure(reason: str) -> httpx.ConnectError:
    """An httpx error caused by OpenSSL's ``reason`` (built: the real one is proven in test_tls_trust)."""
    cause = ssl.SSLError(1, reason.lower())
    cause.reason = reason
    failure = httpx.ConnectError("TLS failed")
    failure.__cause__ = cause
    return failure


def test_plain_http_where_tls_was_expected_is_a_configuration_error_unless_a_proxy_answered():
    failure = _tls_failure("WRONG_VERSION_NUMBER")
    trust = TrustSource("certifi", None)
    assert configuration_problem(failure, "c", "https://127.0.0.1:8765", trust) == (
        "Connection 'c': TLS with https://127.0.0.1:8765 failed (WRONG_VERSION_NUMBER): the port does not "
        "speak TLS (plain http?); for a local sandbox use http://. Not retried."
    )
    assert configuration_problem(failure, "c", "https://127.0.0.1:8765", trust, via_proxy=True) is None
    required = _tls_failure("TLSV13_ALERT_CERTIFICATE_REQUIRED")
    assert "set the extras 'client_cert'" in str(
        configuration_problem(required, "c", "u", trust, via_proxy=True)
    )

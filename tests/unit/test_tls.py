"""
Which CAs the hook trusts: the extra, then the environment's bundle variables (hooks/network/tls.py).

Real TLS servers: tests/integration/test_tls_trust.py.
"""

from __future__ import annotations

import pytest

from trackly_provider.hooks.network.tls import trust_source


@pytest.mark.parametrize(
    ("verify", "environ", "expected"),
    [
        (True, {}, ("certifi", None)),
        (False, {"REQUESTS_CA_BUNDLE": "/r.pem"}, ("off", None)),
        ("/x.pem", {"REQUESTS_CA_BUNDLE": "/r.pem"}, ("extra 'verify'", "/x.pem")),
        (True, {"REQUESTS_CA_BUNDLE": "/r.pem", "SSL_CERT_FILE": "/s.pem"}, ("REQUESTS_CA_BUNDLE", "/r.pem")),
        (True, {"CURL_CA_BUNDLE": "/c.pem", "SSL_CERT_FILE": "/s.pem"}, ("CURL_CA_BUNDLE", "/c.pem")),
        (True, {"SSL_CERT_FILE": "/s.pem", "SSL_CERT_DIR": "/d"}, ("SSL_CERT_FILE", "/s.pem")),
        (True, {"SSL_CERT_DIR": "/d"}, ("SSL_CERT_DIR", "/d")),
        (True, {"REQUESTS_CA_BUNDLE": "  "}, ("certifi", None)),  # set but empty: not a bundle
    ],
)
def test_the_trusted_cas_come_from_the_extra_then_the_environment(verify, environ, expected):
    source = trust_source(verify, environ)
    assert (source.origin, source.path) == expected

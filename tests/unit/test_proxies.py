"""
Which forward proxy the hook goes through: the extra, then the environment (hooks/network/proxies.py).

A real proxy: tests/integration/test_proxies.py.
"""

from __future__ import annotations

import pytest

from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.hooks.network.proxies import choose_proxy

SANDBOX = "http://127.0.0.1:8765"
TRACKLY = "https://app.tracklysms.com"


@pytest.mark.parametrize(
    ("base_url", "extra", "environ", "expected"),
    [
        (TRACKLY, None, {}, None),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:3128"}, ("http://p:3128", "HTTPS_PROXY")),
        (
            TRACKLY,
            None,
            {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"},
            ("http://low:1", "HTTPS_PROXY"),
        ),
        (TRACKLY, None, {"HTTP_PROXY": "http://p:3128"}, None),  # an http proxy is for http URLs
        (SANDBOX, None, {"HTTP_PROXY": "p:3128"}, ("http://p:3128", "HTTP_PROXY")),  # scheme-less: http
        (TRACKLY, None, {"ALL_PROXY": "http://all:1"}, ("http://all:1", "ALL_PROXY")),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "tracklysms.com"}, None),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:1", "no_proxy": "*"}, None),
        (SANDBOX, None, {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1"}, None),
        (
            TRACKLY,
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.org"},
            ("http://p:1", "HTTPS_PROXY"),
        ),
        # NO_PROXY as curl and requests read it
        (
            TRACKLY,
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "a.example tracklysms.com,b.example"},
            None,
        ),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": " a.example ,  *"}, None),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".tracklysms.com"}, None),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*.tracklysms.com"}, None),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "TRACKLYSMS.COM."}, None),
        (
            "https://app.tracklysms.com.",
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "tracklysms.com"},
            None,
        ),
        (TRACKLY, None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "app.tracklysms.com:443"}, None),
        (
            TRACKLY,
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "app.tracklysms.com:8443"},
            ("http://p:1", "HTTPS_PROXY"),
        ),
        (
            "https://app.tracklysms.com:8443",
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "tracklysms.com:8443"},
            None,
        ),
        (SANDBOX, None, {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1:8765"}, None),
        ("http://127.0.0.1", None, {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1:80"}, None),
        (
            "http://127.0.0.1",
            None,
            {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1:443"},
            ("http://p:1", "HTTP_PROXY"),
        ),
        (
            "https://badtracklysms.com",
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "tracklysms.com"},
            ("http://p:1", "HTTPS_PROXY"),
        ),
        ("http://[::1]:8765", None, {"HTTP_PROXY": "http://p:1", "NO_PROXY": "::1"}, None),
        ("http://[::1]:8765", None, {"HTTP_PROXY": "http://p:1", "NO_PROXY": "[::1]"}, None),
        ("http://[::1]:8765", None, {"HTTP_PROXY": "http://p:1", "NO_PROXY": "[::1]:8765"}, None),
        (
            "http://[::1]:8765",
            None,
            {"HTTP_PROXY": "http://p:1", "NO_PROXY": "[::1]:9"},
            ("http://p:1", "HTTP_PROXY"),
        ),
        ("https://10.20.30.40", None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, None),
        (
            "https://11.20.30.40",
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"},
            ("http://p:1", "HTTPS_PROXY"),
        ),
        ("https://[fd00::1:2]", None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "fd00::/8"}, None),
        (
            "https://[fe80::1]",
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "fd00::/8"},
            ("http://p:1", "HTTPS_PROXY"),
        ),
        # an address is not a name: no suffix matching for it
        (
            "https://110.0.0.1",
            None,
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "0.0.1"},
            ("http://p:1", "HTTPS_PROXY"),
        ),
        # the extra wins, and NO_PROXY does not apply to it
        (
            TRACKLY,
            "http://x:9",
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"},
            ("http://x:9", "extra 'proxy'"),
        ),
    ],
)
def test_the_proxy_comes_from_the_extra_then_the_environment(base_url, extra, environ, expected):
    choice = choose_proxy("c", base_url, extra, environ)
    assert (choice.url, choice.origin) == expected if expected else choice is None


def test_a_proxy_is_shown_without_its_credentials():
    choice = choose_proxy("c", TRACKLY, "http://user:s3cret@proxy.internal:3128", {})
    assert choice.shown == "http://proxy.internal:3128"


@pytest.mark.parametrize(
    "url", ["ftp://p:21", "http://", "http://p:99999", "http://p:1/path", "socks5://p:1"]
)
def test_a_proxy_url_that_cannot_be_used_is_a_configuration_error_without_its_text(url):
    with pytest.raises(TracklyConfigError) as raised:
        choose_proxy("c", TRACKLY, url.replace("://", "://user:s3cret@", 1) if "p:" in url else url, {})
    assert "give http://host:port" in str(raised.value)
    assert "s3cret" not in str(raised.value)

"""The pure choices of network/: which proxy, which CAs, how much of an answer is read (no server here)."""

from __future__ import annotations

import gzip
import ssl
import tracemalloc
import zlib
from collections.abc import Iterator

import httpx
import pytest

from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.hooks.network.answers import UnreadableEncoding, _inflate, _inflater, read_answer
from trackly_provider.hooks.network.failures import configuration_problem
from trackly_provider.hooks.network.proxies import choose_proxy
from trackly_provider.hooks.network.tls import TrustSource, trust_source
from trackly_provider.trackly_api.redact import UNEXPECTED_CODE, server_code, server_text

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


@pytest.mark.parametrize(
    ("code", "kept"),
    [
        ("invalid_phone", "invalid_phone"),
        ("message_not_found", "message_not_found"),
        ("+12025550123", UNEXPECTED_CODE),
        ("contact_12025550123", UNEXPECTED_CODE),
        ("Invalid Phone", UNEXPECTED_CODE),
        ("a" * 65, UNEXPECTED_CODE),
        (12025550123, UNEXPECTED_CODE),
        (["x"], UNEXPECTED_CODE),
    ],
)
def test_a_code_outside_the_apis_alphabet_is_unexpected_code(code, kept):
    assert server_code(code) == kept


def test_a_server_text_loses_phone_numbers_keys_and_control_characters_and_is_cut():
    key = "trk_" + "A1" * 16
    assert server_text(f"contact +1 (202) 555-0123 with key {key}\r\nnot\tfound") == (
        "contact [redacted] with key [redacted] not found"
    )
    long = server_text("x" * 5000)
    assert len(long) == 300 and long.endswith("…")


@pytest.mark.parametrize(
    "written",
    ["202_555_0123", "202,555,0123", "+1_202_555_0123", "+1,202,555,0123", "202, 555, 0123"],
)
def test_a_server_text_loses_phone_numbers_broken_by_underscores_or_commas(written):
    assert server_text(f"no contact {written}: not found") == "no contact [redacted]: not found"


def _streamed(chunks: list[bytes], encoding: str, consumed: list[int]) -> httpx.Response:
    def chunks_read() -> Iterator[bytes]:
        for chunk in chunks:
            consumed.append(len(chunk))
            yield chunk

    return httpx.Response(200, headers={"content-encoding": encoding}, content=chunks_read())


def test_a_gzip_bomb_is_inflated_one_byte_past_the_limit_and_read_no_further():
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)  # about 250 KB of gzip
    chunks = [bomb[i : i + 65_536] for i in range(0, len(bomb), 65_536)]  # httpcore reads 64 KiB
    consumed: list[int] = []
    tracemalloc.start()
    try:
        body, complete = read_answer(_streamed(chunks, "gzip", consumed), 1_048_576)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(body), complete) == (1_048_576, False)
    assert consumed == [65_536]  # 1 MiB of zeros inflates from the first chunk: the rest is never read
    assert peak < 8 * 1_048_576  # the body and its copy; one 64 KiB chunk inflated whole is 64 MiB


def test_an_answer_within_the_limit_is_read_whole_in_each_encoding():
    text = b'{"lists": []}' * 100
    for encoding, data in [
        ("gzip", gzip.compress(text)),
        ("deflate", zlib.compress(text)),
        ("identity", text),
        ("", text),
    ]:
        chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
        assert read_answer(_streamed(chunks, encoding, []), len(text)) == (text, True)
    assert read_answer(_streamed([text], "identity", []), len(text) - 1) == (text[:-1], False)


def test_an_encoding_not_asked_for_is_refused_by_name():
    with pytest.raises(UnreadableEncoding, match="Content-Encoding 'br'"):
        read_answer(_streamed([b"x"], "br", []), 100)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # no zlib header or checksum
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 65_536])
def test_a_raw_deflate_body_without_zlib_header_is_inflated(chunk_size):
    text = b'{"lists": []}' * 100
    data = _raw_deflate(text)
    assert data[:2] != zlib.compress(text)[:2]  # truly headerless
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    assert read_answer(_streamed(chunks, "deflate", []), len(text)) == (text, True)


def test_a_raw_deflate_bomb_is_inflated_one_byte_past_the_limit_and_read_no_further():
    bomb = _raw_deflate(b"\0" * (256 * 1024 * 1024))
    chunks = [bomb[i : i + 65_536] for i in range(0, len(bomb), 65_536)]
    consumed: list[int] = []
    tracemalloc.start()
    try:
        body, complete = read_answer(_streamed(chunks, "deflate", consumed), 1_048_576)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(body), complete) == (1_048_576, False)
    assert consumed == [65_536]
    assert peak < 8 * 1_048_576


@pytest.mark.parametrize("chunk_size", [1, 5, 65_536])
def test_every_member_of_a_multi_member_gzip_body_is_inflated(chunk_size):
    first, second, third = b'{"lists": ', b'[{"id": "l1"}]' * 50, b"}"
    data = gzip.compress(first) + gzip.compress(second) + b"\0\0\0" + gzip.compress(third)
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    whole = first + second + third
    assert read_answer(_streamed(chunks, "gzip", []), len(whole)) == (whole, True)


def test_a_multi_member_gzip_bomb_is_bounded_across_its_members():
    member = gzip.compress(b"\0" * (512 * 1024), compresslevel=9)  # about 500 bytes each
    data = member * 2048  # 1 GiB once inflated, about 1 MB of gzip
    chunks = [data[i : i + 65_536] for i in range(0, len(data), 65_536)]
    consumed: list[int] = []
    tracemalloc.start()
    try:
        body, complete = read_answer(_streamed(chunks, "gzip", consumed), 1_048_576)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(body), complete) == (1_048_576, False)
    assert consumed == [65_536]  # the first chunk's members pass the limit: the rest is never read
    assert peak < 8 * 1_048_576  # the first chunk's members inflated whole would be about 64 MiB


def test_one_inflation_step_yields_exactly_its_room_across_gzip_members_and_pieces():
    """The bound read_answer relies on (its own result is cut to the limit, so it cannot show this)."""
    member = gzip.compress(b"\0" * 512 * 1024)
    in_one_piece = _inflate(_inflater("gzip"), [member * 3], 700_000)
    in_pieces = _inflate(_inflater("gzip"), [member, member, member], 700_000)
    assert sum(map(len, in_one_piece)) == sum(map(len, in_pieces)) == 700_000


def test_bytes_after_the_last_gzip_member_that_are_not_gzip_are_dropped():
    text = b'{"lists": []}'
    data = gzip.compress(text) + b"<html>proxy footer</html>"
    assert read_answer(_streamed([data], "gzip", []), 1000) == (text, True)


def test_a_corrupt_first_gzip_member_still_fails():
    with pytest.raises(zlib.error):
        read_answer(_streamed([b"\x1f\x8bnot gzip at all"], "gzip", []), 1000)


@pytest.mark.parametrize(
    "text",
    ["its limit is 5,000,000 bytes", "SUBSTRING(message, 1, 10000)", "1,048,576 bytes", "row 12 34 56"],
)
def test_numbers_that_no_phone_is_written_as_are_kept(text):
    assert server_text(text) == text


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

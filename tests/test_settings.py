"""Connection fields -> validated settings: key format, base URL, timeouts (pure, no Airflow run)."""

from __future__ import annotations

import pytest

from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.settings import build_base_url, parse_settings, validate_api_key

KEY = "trk_" + "a1B2" * 8


def test_key_with_trailing_newline_and_spaces_is_accepted_stripped():
    assert validate_api_key(f"  {KEY}\n", "trackly_default") == KEY


@pytest.mark.parametrize(
    "bad_key", ["trk_short", "TRK_" + "a" * 32, "trk_" + "a" * 31 + "!", "trk_" + "a" * 33, "sk_" + "a" * 32]
)
def test_malformed_key_error_names_connection_and_format_never_the_key(bad_key):
    with pytest.raises(TracklyConfigError) as raised:
        validate_api_key(bad_key, "my_trackly")
    message = str(raised.value)
    assert "'my_trackly'" in message
    assert "'trk_' followed by 32 letters or digits" in message
    assert bad_key not in message


def test_missing_key_says_where_to_put_it():
    with pytest.raises(TracklyConfigError, match="password field"):
        validate_api_key(None, "trackly_default")


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "https://app.tracklysms.com"),
        ("api.tracklysms.com", None, "https://api.tracklysms.com"),
        ("https://api.tracklysms.com/", None, "https://api.tracklysms.com"),
        ("https://api.tracklysms.com/api/v2", None, "https://api.tracklysms.com"),
        ("app.tracklysms.com", 8443, "https://app.tracklysms.com:8443"),
        ("http://127.0.0.1", 8765, "http://127.0.0.1:8765"),
        ("http://localhost:9000", None, "http://localhost:9000"),
        ("http://[::1]:9000", None, "http://[::1]:9000"),
        ("http://127.8.9.10", None, "http://127.8.9.10"),
    ],
)
def test_base_url_from_host_and_port(host, port, expected):
    assert build_base_url(host, port, "c") == expected


@pytest.mark.parametrize(
    "host", ["http://app.tracklysms.com", "http://10.0.0.5", "http://localhost.evil.com"]
)
def test_plain_http_is_refused_except_for_loopback(host):
    with pytest.raises(TracklyConfigError, match="clear text"):
        build_base_url(host, None, "c")


def test_extras_set_timeouts_and_retries_and_hook_arguments_win():
    settings = parse_settings(
        "c",
        host=None,
        port=None,
        password=KEY,
        extras={"connect_timeout": "3", "read_timeout": 20, "max_attempts": 7, "backoff_max": 9},
        overrides={"read_timeout": 5, "max_attempts": None},
    )
    assert (settings.connect_timeout, settings.read_timeout) == (3.0, 5.0)
    assert (settings.retry.max_attempts, settings.retry.backoff_max) == (7, 9.0)


def test_defaults_bound_every_wait_as_the_readme_says():
    """As the README documents: timeouts 10 and 60 s, 5 attempts, backoff 1 to 60 s, Retry-After 300 s."""
    settings = parse_settings("c", host=None, port=None, password=KEY, extras={})
    assert (settings.connect_timeout, settings.read_timeout) == (10.0, 60.0)
    retry = settings.retry
    assert (retry.max_attempts, retry.backoff_base, retry.backoff_max, retry.retry_after_max) == (
        5,
        1.0,
        60.0,
        300.0,
    )


def test_non_numeric_extra_is_a_clear_error():
    with pytest.raises(TracklyConfigError, match="'read_timeout' must be a finite number, got 'soon'"):
        parse_settings("c", host=None, port=None, password=KEY, extras={"read_timeout": "soon"})

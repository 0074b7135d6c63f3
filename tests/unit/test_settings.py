"""Connection fields -> validated settings: key format, base URL, timeouts (pure, no Airflow run)."""

from __future__ import annotations

import pytest

from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.hooks.settings import (
    KNOWN_EXTRAS,
    build_base_url,
    parse_settings,
    unknown_extras,
    validate_api_key,
)

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
    with pytest.raises(TracklyConfigError) as raised:
        validate_api_key(None, "trackly_default")
    assert str(raised.value) == (
        "Connection 'trackly_default' has no API key: put the Trackly API key in the connection's "
        "API key field (its password)."
    )


def test_the_mask_in_place_of_the_key_says_which_test_button_sends_it_and_what_to_fill():
    with pytest.raises(TracklyConfigError, match=r"the mask '\*\*\*' as its API key.*Airflow 3.3.1's Test"):
        validate_api_key(" *** ", "trackly_default")


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("https://app.tracklysms.com", 443, "https://app.tracklysms.com"),
        ("https://app.tracklysms.com:443/trackly", None, "https://app.tracklysms.com/trackly"),
        ("http://127.0.0.1:80", 80, "http://127.0.0.1"),
        ("https://gw.example", 80, "https://gw.example:80"),
        ("http://127.0.0.1", 443, "http://127.0.0.1:443"),
    ],
)
def test_the_schemes_default_port_is_left_out_of_the_base_url(host, port, expected):
    """What Airflow 3.3.2's Test button needs typed in Port (443) names the same URL as none."""
    assert build_base_url(host, port, "c") == expected


def test_empty_form_fields_mean_the_defaults():
    """An empty field of the form: null from Airflow 3.2+, an empty string from 3.0 and 3.1."""
    empty = {name: value for name, value in zip(KNOWN_EXTRAS, [None, "", " "] * 4, strict=True)}
    assert parse_settings("c", host=None, port=None, password=KEY, extras=empty) == parse_settings(
        "c", host=None, port=None, password=KEY, extras={}
    )


def test_the_text_fields_of_airflow_3_0_and_3_1_are_read_as_numbers():
    extras = {"connect_timeout": "2.5", "max_attempts": "3", "verify": "false", "backoff_base": "0"}
    settings = parse_settings("c", host=None, port=None, password=KEY, extras=extras)
    assert (settings.connect_timeout, settings.retry.max_attempts) == (2.5, 3)
    assert (settings.verify, settings.retry.backoff_base) == (False, 0.0)


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


def test_defaults_bound_every_wait_as_the_connection_page_says():
    """As docs/connection.md says: timeouts 10 and 60 s, 5 attempts, backoff 1 to 60 s, Retry-After 300 s."""
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


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"backoff_base": -1}, "extra 'backoff_base' must be zero or more seconds, got -1."),
        ({"backoff_base": "-0.5"}, "extra 'backoff_base' must be zero or more seconds, got '-0.5'."),
        ({"max_attempts": 0.5}, "extra 'max_attempts' must be a whole number of at least 1, got 0.5."),
        ({"max_attempts": 0}, "extra 'max_attempts' must be a whole number of at least 1, got 0."),
        ({"max_attempts": "2.5"}, "extra 'max_attempts' must be a whole number of at least 1, got '2.5'."),
        (
            {"max_response_bytes": 0.5},
            "extra 'max_response_bytes' must be a whole number of at least 1, got 0.5.",
        ),
        (
            {"max_response_bytes": -1},
            "extra 'max_response_bytes' must be a whole number of at least 1, got -1.",
        ),
    ],
)
def test_a_retry_or_size_extra_that_cannot_work_is_a_clear_error(extras, message):
    with pytest.raises(TracklyConfigError) as raised:
        parse_settings("c", host=None, port=None, password=KEY, extras=extras)
    assert str(raised.value) == f"Connection 'c' {message}"


def test_zero_backoff_and_whole_counts_written_as_text_or_floats_are_accepted():
    settings = parse_settings(
        "c",
        host=None,
        port=None,
        password=KEY,
        extras={"backoff_base": 0, "max_attempts": "3", "max_response_bytes": 2048.0},
    )
    assert (settings.retry.backoff_base, settings.retry.max_attempts, settings.max_response_bytes) == (
        0.0,
        3,
        2048,
    )
    assert type(settings.retry.max_attempts) is int and type(settings.max_response_bytes) is int


def test_no_extra_the_connection_reads_is_reported_unknown():
    assert unknown_extras(dict.fromkeys(KNOWN_EXTRAS, "x")) == []


def test_the_extras_parse_settings_reads_are_exactly_the_known_ones():
    """Every known extra changes the settings (so KNOWN_EXTRAS cannot list one nobody reads)."""
    values = {
        "connect_timeout": 3,
        "read_timeout": 4,
        "request_timeout": 5,
        "max_response_bytes": 6,
        "max_attempts": 7,
        "backoff_base": 8,
        "backoff_max": 9,
        "retry_after_max": 10,
        "verify": "/ca.pem",
        "client_cert": "/c.pem",
        "client_key": "/k.pem",
        "proxy": "http://p:1",
    }
    assert set(values) == set(KNOWN_EXTRAS)
    for name, value in values.items():
        base = {"client_cert": "/c.pem"} if name == "client_key" else {}  # a key needs its cert
        before = parse_settings("c", host=None, port=None, password=KEY, extras=base)
        after = parse_settings("c", host=None, port=None, password=KEY, extras={**base, name: value})
        assert after != before, name


def test_unknown_extras_name_the_close_extra_or_the_one_to_use_instead_of_http_hooks():
    messages = unknown_extras(
        {
            "request_timout": 30,
            "VERIFY": False,
            "proxies": {"https": "http://user:s3cret@p:1"},
            "cert": "/c.pem",
            "timeout": 30,
            "verify_ssl": False,
            "colour": "blue",
            "read_timeout": 60,
        }
    )
    assert messages == [
        "extra 'request_timout' is not read by this provider; did you mean 'request_timeout'?",
        "extra 'VERIFY' is not read by this provider; did you mean 'verify'?",
        "extra 'proxies' is not read by this provider (it is Airflow's HttpHook's): use 'proxy', one "
        "proxy URL such as 'http://proxy.internal:3128'",
        "extra 'cert' is not read by this provider (it is Airflow's HttpHook's): use 'client_cert' (and "
        "'client_key' when the key is in its own file)",
        "extra 'timeout' is not read by this provider (it is Airflow's HttpHook's): use 'request_timeout' "
        "(seconds per attempt), or 'connect_timeout' and 'read_timeout'",
        "extra 'verify_ssl' is not read by this provider (it is Airflow's HttpHook's): use 'verify' (true, "
        "false or the path of a PEM CA bundle)",
        "extra 'colour' is not read by this provider",
    ]
    assert "s3cret" not in " ".join(messages)


@pytest.mark.parametrize(
    ("host", "schema", "expected"),
    [
        ("https://gw.example/gw/API/V2", None, "https://gw.example/gw"),
        ("https://gw.example/gw/Api/v2/", None, "https://gw.example/gw"),
        ("https://gw.example/API/V2", None, "https://gw.example"),
        ("gw.example", "trackly/API/v2", "https://gw.example/trackly"),
    ],
)
def test_a_trailing_api_v2_is_dropped_in_any_case(host, schema, expected):
    assert build_base_url(host, None, "c", schema) == expected


@pytest.mark.parametrize(
    ("host", "schema"),
    [
        ("https://gw.example//trackly", None),
        ("https://gw.example/a//b", None),
        ("gw.example//trackly", None),
        ("gw.example", "a//b"),
        ("https://gw.example//trackly", "trackly"),
    ],
)
def test_a_gateway_path_with_an_empty_segment_is_a_configuration_error(host, schema):
    with pytest.raises(TracklyConfigError) as raised:
        build_base_url(host, None, "c", schema)
    assert str(raised.value) == (
        "Connection 'c' has a Base URL path with an empty segment ('//'), which servers and proxies "
        "read in different ways. Give the gateway's path with single slashes, e.g. '/trackly'."
    )


@pytest.mark.parametrize(
    ("host", "schema"),
    [("gw.exa\tmple", None), ("https://gw.example/track\nly", None), ("gw.example", "track ly")],
)
def test_whitespace_inside_a_base_url_is_an_error_not_dropped(host, schema):
    with pytest.raises(
        TracklyConfigError, match="space, tab, newline or control character inside its Base URL"
    ):
        build_base_url(host, None, "c", schema)


def test_an_unknown_extra_whose_name_may_hold_a_secret_is_not_named():
    names = {"http://u:Pr0xyS3cret@proxy:3128": 1, "trk_" + "a1" * 16: 1, "+12025550123": 1, "x" * 61: 1}
    warnings = unknown_extras(names)
    assert len(warnings) == 4
    assert all(warning.startswith("an extra whose name is not a word") for warning in warnings)
    assert not any(secret in " ".join(warnings) for secret in ("S3cret", "a1a1", "2025550123", "xxx"))


def test_an_airflow_2_prefixed_extra_is_named_without_its_prefix():
    assert unknown_extras({"extra__trackly__proxy": "http://p:3128"}) == [
        "extra 'extra__trackly__proxy' is not read by this provider; name it 'proxy', without the prefix"
    ]

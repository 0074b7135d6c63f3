"""
TracklyHook against httpx.MockTransport: headers, request shape, error mapping, the connection test,
Base URLs refused before any request, the key never shown.

MockTransport stands in for the network here only; tests/integration/test_trackly.py and the operator
tests use the sandbox over real HTTP.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import set_trackly_connection
from trackly_provider import __version__
from trackly_provider.exceptions import (
    TracklyApiError,
    TracklyAuthError,
    TracklyConfigError,
    TracklyResponseError,
    TracklyTransientError,
)
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.trackly_api.entities import CLICKS
from trackly_provider.trackly_api.results import ImportResult, RecordError

pytest_plugins = ["tests.tls_servers"]  # the logged and clean_network_environment fixtures

KEY = "trk_0123456789abcdef0123456789ABCDEF"
RECORD = {
    "message_id": "m1",
    "offer_id": "o1",
    "phone_number": "+12025559876",
    "timestamp": "2025-11-15T14:35:22+00:00",
}


def ok_body(records: list, **overrides):
    body = {"success_count": len(records), "error_count": 0, "duplicates_skipped": 0, "errors": []}
    return {**body, **overrides}


@pytest.fixture
def make_hook(monkeypatch):
    def make(handler, *, key=KEY, host="api.tracklysms.test", extra=None, **kwargs):
        set_trackly_connection(monkeypatch, host, key, extra)
        return TracklyHook(transport=httpx.MockTransport(handler), sleep=lambda _: None, **kwargs)

    return make


def test_import_posts_records_with_key_and_provider_user_agent(make_hook):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ok_body(json.loads(request.content)["records"]))

    result = make_hook(handler, key=f"{KEY}\n").import_clicks([RECORD])
    (request,) = seen
    assert str(request.url) == "https://api.tracklysms.test/api/v2/history/clicks"
    assert request.method == "POST"
    assert request.headers["X-Api-Key"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == f"airflow-provider-trackly/{__version__}"
    assert "Authorization" not in request.headers
    assert json.loads(request.content) == {"records": [RECORD]}
    assert result == ImportResult(1, 0, 0, [])


@pytest.mark.parametrize("count", [0, 1001])
def test_batch_outside_1_to_1000_is_refused_before_any_request(make_hook, count):
    hook = make_hook(lambda r: pytest.fail("no request may be sent"))
    with pytest.raises(ValueError, match=f"1 to 1000 records per request, got {count}"):
        hook.import_clicks([RECORD] * count)


def test_per_record_errors_are_parsed(make_hook):
    body = {
        "success_count": 1,
        "error_count": 1,
        "duplicates_skipped": 1,
        "errors": [{"index": 2, "code": "message_not_found", "error": "No message exists"}],
    }
    hook = make_hook(lambda r: httpx.Response(200, json=body))
    assert hook.import_clicks([RECORD] * 3) == ImportResult(
        1, 1, 1, [RecordError(2, "message_not_found", "No message exists")]
    )


def test_counts_that_do_not_add_up_fail_loudly(make_hook):
    hook = make_hook(lambda r: httpx.Response(200, json=ok_body([1, 2])))
    with pytest.raises(TracklyResponseError, match=r"sent 3 records.*= 2\. Not trusting"):
        hook.import_clicks([RECORD] * 3)


def test_error_index_out_of_range_fails_loudly(make_hook):
    body = {
        "success_count": 0,
        "error_count": 1,
        "duplicates_skipped": 0,
        "errors": [{"index": 5, "code": "save_error", "error": "x"}],
    }
    hook = make_hook(lambda r: httpx.Response(200, json=body))
    with pytest.raises(TracklyResponseError, match=r"index is outside 0\.\.0"):
        hook.import_clicks([RECORD])


def _counts(success: int, errors: int, listed: object) -> dict[str, object]:
    return {"success_count": success, "error_count": errors, "duplicates_skipped": 0, "errors": listed}


ERROR_0 = {"index": 0, "code": "message_not_found", "error": "No message exists"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # The answer: 5 records, 3 stored and 2 errors, but the same record listed twice.
        (_counts(3, 2, [ERROR_0, ERROR_0]), "listing the record at index 0 twice among its errors"),
        (_counts(3, 2, {"0": ERROR_0}), "'errors' as a JSON dict, not a list"),
        (_counts(3, 2, "index 0 failed"), "'errors' as a JSON str, not a list"),
        (_counts(3, 2, 2), "'errors' as a JSON int, not a list"),
        (_counts(3, 2, [ERROR_0, "save_error"]), "an error entry that is not a JSON object"),
        (_counts(4, 1, [{**ERROR_0, "index": True}]), r"index is outside 0\.\.4"),
        (_counts(3, 1, [ERROR_0]), r"sent 5 records.*= 4\. Not trusting"),
        (_counts(3, 1, [ERROR_0, {**ERROR_0, "index": 1}]), "listing 2 errors but counting 1"),
    ],
)
def test_an_answer_that_contradicts_itself_is_one_clear_response_error(make_hook, body, message):
    hook = make_hook(lambda r: httpx.Response(200, json=body))
    with pytest.raises(TracklyResponseError, match=message):
        hook.import_revenue([RECORD] * 5)


def test_401_is_an_auth_error_naming_the_connection_with_the_api_code(make_hook):
    hook = make_hook(
        lambda r: httpx.Response(401, json={"error": "Invalid API key", "code": "invalid_api_key"})
    )
    with pytest.raises(TracklyAuthError) as raised:
        hook.import_clicks([RECORD])
    assert (raised.value.status, raised.value.code) == (401, "invalid_api_key")
    assert str(raised.value) == (
        "Trackly rejected the API key of connection 'trackly_default' at https://api.tracklysms.test: "
        "check the connection's API key (copy it again from Trackly's settings page): "
        "HTTP 401 invalid_api_key: Invalid API key"
    )


def test_403_keeps_the_api_code(make_hook):
    hook = make_hook(lambda r: httpx.Response(403, json={"error": "Suspended", "code": "account_suspended"}))
    with pytest.raises(TracklyAuthError) as raised:
        hook.import_clicks([RECORD])
    assert raised.value.code == "account_suspended"


def test_other_api_errors_name_the_request_and_keep_the_code(make_hook):
    hook = make_hook(lambda r: httpx.Response(409, json={"error": "Busy importing", "code": "import_locked"}))
    with pytest.raises(TracklyApiError) as raised:
        hook.import_clicks([RECORD])
    assert (raised.value.status, raised.value.code) == (409, "import_locked")
    assert str(raised.value) == (
        "Trackly answered POST /api/v2/history/clicks with an error: HTTP 409 import_locked: Busy importing"
    )


@pytest.mark.parametrize(
    ("response", "described"),
    [
        (
            httpx.Response(
                404, text="<html>nope</html>", headers={"content-type": "text/html; charset=utf-8"}
            ),
            "HTTP 404: Not Found (non-JSON body, text/html, 17 bytes (an HTML page: a login page, "
            "captive portal or proxy?))",
        ),
        (httpx.Response(499, content=b"nope!!"), "HTTP 499: error (non-JSON body, no content type, 6 bytes)"),
    ],
)
def test_a_non_json_error_body_is_described_not_shown(make_hook, response, described):
    hook = make_hook(lambda r: response)
    with pytest.raises(TracklyApiError) as raised:
        hook.import_clicks([RECORD])
    assert str(raised.value).endswith(f": {described}")


def test_403_without_code_says_the_account_may_be_suspended(make_hook):
    hook = make_hook(lambda r: httpx.Response(403, json={"error": "Account suspended"}))
    with pytest.raises(
        TracklyAuthError, match=r"account may be suspended.*HTTP 403: Account suspended"
    ) as raised:
        hook.import_clicks([RECORD])
    assert raised.value.code is None


def test_404_with_non_json_body_is_an_api_error_describing_the_body(make_hook):
    hook = make_hook(
        lambda r: httpx.Response(404, text="<html>nope</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(TracklyApiError) as raised:
        hook.import_clicks([RECORD])
    assert not isinstance(raised.value, TracklyAuthError)
    assert (raised.value.status, raised.value.code) == (404, None)
    assert "Not Found (non-JSON body, text/html, 17 bytes (an HTML page" in str(raised.value)


def test_400_with_message_field_uses_it(make_hook):
    hook = make_hook(lambda r: httpx.Response(400, json={"message": "records must be an array"}))
    with pytest.raises(TracklyApiError, match="HTTP 400: records must be an array"):
        hook.import_clicks([RECORD])


def test_200_with_non_json_body_is_untrusted(make_hook):
    hook = make_hook(lambda r: httpx.Response(200, text="OK"))
    with pytest.raises(TracklyResponseError) as raised:
        hook.import_clicks([RECORD])
    assert str(raised.value) == (
        "Trackly answered POST /api/v2/history/clicks with 200 text/plain, 2 bytes: not a JSON object, "
        "so the batch is not counted."
    )


def test_malformed_key_fails_before_any_request(make_hook):
    hook = make_hook(lambda r: pytest.fail("no request may be sent"), key="trk_tooshort")
    with pytest.raises(TracklyConfigError, match="'trackly_default' has a malformed API key"):
        hook.import_clicks([RECORD])


def test_connection_test_reads_lists(make_hook):
    paths = []

    def handler(request):
        paths.append((request.method, request.url.path))
        return httpx.Response(200, json={"lists": []})

    assert make_hook(handler).test_connection() == (
        True,
        "Connected to Trackly at https://api.tracklysms.test: the API key works.",
    )
    assert paths == [("GET", "/api/v2/lists")]


RANDOM_ID = "OlijjtSG"  # the UI's Test button tests a copy of the form under such an id


@pytest.fixture
def form_copy(monkeypatch):
    """A hook as the Test button makes one: on a copy of the connection under a random id."""

    def make(handler, *, host="https://api.tracklysms.test", port=None, key=KEY, extra=None):
        conn = {"conn_type": "trackly", "host": host, "port": port, "password": key, "extra": extra or {}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{RANDOM_ID.upper()}", json.dumps(conn))
        return TracklyHook(RANDOM_ID, transport=httpx.MockTransport(handler), sleep=lambda _: None)

    return make


def refuse(exc_type):
    def handler(request):
        raise exc_type("[Errno 111] Connection refused", request=request)

    return handler


CHECK = (
    "Check the Base URL and Port, and that the Airflow api-server (where Test runs; the workers connect "
    "from their own hosts) can reach it: DNS, firewall, proxy (HTTPS_PROXY)."
)
# What the Test button says, by what happened: the URL tried and the form's labels, never the random id.
TEST_BUTTON_SAYS = {
    "key-rejected": (
        lambda r: httpx.Response(401, json={"error": "Invalid API key", "code": "invalid_api_key"}),
        {},
        "Trackly rejected the API key of the connection at https://api.tracklysms.test: check the "
        "connection's API key (copy it again from Trackly's settings page): HTTP 401 invalid_api_key: "
        "Invalid API key",
    ),
    "suspended": (
        lambda r: httpx.Response(403, json={"error": "Suspended", "code": "account_suspended"}),
        {},
        "Trackly at https://api.tracklysms.test refused the connection (403: the account may be suspended "
        "or the API key lacks access): HTTP 403 account_suspended: Suspended",
    ),
    "refused": (
        refuse(httpx.ConnectError),
        {},
        f"Could not connect to https://api.tracklysms.test: [Errno 111] Connection refused. {CHECK}",
    ),
    "connect-timeout": (
        refuse(httpx.ConnectTimeout),
        {},
        f"Could not connect to https://api.tracklysms.test: no answer within 5 s (connect timeout). {CHECK}",
    ),
    "shorter-connect-timeout": (
        refuse(httpx.ConnectTimeout),
        {"extra": {"connect_timeout": 2}},
        f"Could not connect to https://api.tracklysms.test: no answer within 2 s (connect timeout). {CHECK}",
    ),
    "answer-cut": (
        refuse(httpx.RemoteProtocolError),
        {},
        "Connected to https://api.tracklysms.test, but GET /api/v2/lists failed: RemoteProtocolError "
        "([Errno 111] Connection refused). Check that the Base URL is Trackly's and no proxy or gateway "
        "on the way cuts the answer.",
    ),
    "gateway-path-and-port": (
        refuse(httpx.ConnectError),
        {"host": "https://gw.example:8443/trackly"},
        f"Could not connect to https://gw.example:8443: [Errno 111] Connection refused. {CHECK}",
    ),
    "malformed-key": (
        lambda r: pytest.fail("no request may be sent"),
        {"key": "trk_tooshort"},
        "The connection has a malformed API key: expected 'trk_' followed by 32 letters or digits. Copy "
        "the key again from Trackly's settings page.",
    ),
    "ports-disagree": (
        lambda r: pytest.fail("no request may be sent"),
        {"host": "https://gw.example:8443", "port": 9443},
        "The connection has port 9443 in its Port field but 8443 in its Base URL: keep one of them.",
    ),
    "masked-key": (
        lambda r: pytest.fail("no request may be sent"),
        {"key": "***"},
        "The connection has the mask '***' as its API key, not the key itself: Airflow 3.3.1's Test "
        "button sends it when the Base URL or Port is empty. Fill in both (Port: 443 for https), save, "
        "and press Test again; or type the API key again before Test.",
    ),
}


@pytest.mark.usefixtures("clean_network_environment")
@pytest.mark.parametrize("case", TEST_BUTTON_SAYS)
def test_the_test_button_names_the_url_and_the_fields_never_the_random_id_or_the_key(form_copy, case):
    handler, fields, says = TEST_BUTTON_SAYS[case]
    assert form_copy(handler, **fields).test_connection() == (False, says)
    assert RANDOM_ID not in says and KEY not in says


def test_the_test_button_makes_one_attempt_with_a_5_s_connect_timeout(form_copy):
    seen = []

    def handler(request):
        seen.append(request.extensions["timeout"])
        return httpx.Response(503, json={"error": "Down for maintenance"})

    ok, says = form_copy(handler, extra={"connect_timeout": 12, "read_timeout": 40}).test_connection()
    assert seen == [{"connect": 5.0, "read": 40.0, "write": 40.0, "pool": 40.0}]  # one attempt, no retry
    assert (ok, says) == (
        False,
        "Trackly answered GET /api/v2/lists with an error: HTTP 503: Down for maintenance",
    )


def test_imports_keep_the_connections_connect_timeout(make_hook):
    seen = []

    def handler(request):
        seen.append(request.extensions["timeout"]["connect"])
        return httpx.Response(200, json=ok_body([RECORD]))

    make_hook(handler, extra={"connect_timeout": 12}).import_clicks([RECORD])
    assert seen == [12.0]


def test_without_connection_id_rewrites_every_form_the_messages_use():
    from trackly_provider.hooks.trackly import without_connection_id

    assert without_connection_id("Connection 'x1': the proxy refused.", "x1") == "The proxy refused."
    assert without_connection_id("Connection 'x1' has no API key.", "x1") == "The connection has no API key."
    assert without_connection_id("raise it on connection 'x1'.", "x1") == "Raise it on the connection."
    assert without_connection_id("Trackly connection 'x1' ('x1')", "x1") == (
        "Trackly the connection (the connection)"
    )


def test_a_pre_encoded_body_is_sent_as_is(make_hook):
    from trackly_provider.trackly_api.results import encode_records

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(200, json=ok_body(json.loads(request.content)["records"]))

    body = encode_records([RECORD, {**RECORD, "message_id": "m2"}])
    assert make_hook(handler).import_encoded(CLICKS, body, 2).success_count == 2
    assert seen == [body]


def test_a_redirect_names_where_it_points_not_the_whole_location(make_hook):
    location = "https://sso.example.com/login?next=%2Fapi%2Fv2%2Flists&phone=%2B12025550123"
    hook = make_hook(lambda r: httpx.Response(302, headers={"location": location}))
    with pytest.raises(TracklyApiError) as raised:
        hook.check_access()
    assert str(raised.value) == (
        "GET /api/v2/lists was redirected to sso.example.com (a login portal, or a Base URL that moved?): "
        "Trackly's API does not redirect; check the Base URL (https://api.tracklysms.test) and any proxy on "
        "the way: HTTP 302: Found (non-JSON body, no content type, no body)"
    )


def test_a_json_error_with_a_code_and_no_text_keeps_its_code(make_hook):
    hook = make_hook(lambda r: httpx.Response(400, json={"code": "missing_records", "error": ""}))
    with pytest.raises(TracklyApiError) as raised:
        hook.import_clicks([RECORD])
    assert (raised.value.code, raised.value.error) == ("missing_records", "no error text")


def test_a_retry_after_too_long_is_refused_without_quoting_the_servers_value(make_hook):
    hook = make_hook(lambda r: httpx.Response(503, headers={"retry-after": "12025550123"}))
    with pytest.raises(TracklyTransientError) as raised:
        hook.import_clicks([RECORD])
    assert "2025550123" not in str(raised.value)
    assert "longer than retry_after_max=300 s (Retry-After)" in str(raised.value)


def test_an_extra_the_provider_does_not_read_is_a_warning_naming_the_one_to_use(make_hook, logged):
    hook = make_hook(
        lambda r: httpx.Response(200, json={"lists": []}),
        extra={"request_timout": 5, "proxies": {"https": "http://p:3128"}, "read_timeout": 3},
    )
    logged()
    hook.check_access()
    assert [message for level, message in logged() if level == "warning"] == [
        "Trackly connection 'trackly_default': extra 'request_timout' is not read by this provider; did "
        "you mean 'request_timeout'?",
        "Trackly connection 'trackly_default': extra 'proxies' is not read by this provider (it is "
        "Airflow's HttpHook's): use 'proxy', one proxy URL such as 'http://proxy.internal:3128'",
    ]


def test_the_auth_object_never_shows_the_key_when_printed():
    from trackly_provider.hooks.trackly import TracklyAuth

    auth = TracklyAuth("trk_0123456789abcdef0123456789ABCDEF")
    assert repr(auth) == str(auth) == "TracklyAuth(api_key=***)"


HOST_PASSWORD = "hunter2gw"


# (host, schema, port, what the message must say): each refused before any request, never quoting a password.
REFUSED = {
    "query-string": ("https://gw.example/trackly?tenant=eu", None, None, ["query string", "Remove it"]),
    "fragment": ("https://gw.example/trackly#v2", None, None, ["fragment", "Remove it"]),
    "empty-query": ("https://gw.example/trackly?", None, None, ["query string", "Remove it"]),
    "host-and-schema-paths-differ": (
        "https://gw.example/trackly",
        "other",
        None,
        ["'/trackly'", "'/other'", "keep it in one place"],
    ),
    "user-and-password-in-host": (
        f"https://svc:{HOST_PASSWORD}@gw.example/trackly",
        None,
        None,
        ["user or password", "remove it", "API key field"],
    ),
    "password-in-host-with-a-bad-port": (
        f"https://svc:{HOST_PASSWORD}@gw.example:99999/trackly",
        None,
        None,
        ["port"],
    ),
    "dot-dot-segment": ("https://gw.example/trackly/../admin", None, None, ["'..'", "e.g. '/trackly'"]),
    "dot-segment": ("https://gw.example/./trackly", None, None, ["'.'", "e.g. '/trackly'"]),
    "dot-dot-in-schema": ("gw.example", "trackly/..", None, ["'..'"]),
    # A gateway that normalises the path (RFC 3986: %2E is '.') would route these to /admin, key and all.
    "percent-encoded-dot-dot": ("https://gw.example/trackly/%2e%2e/admin", None, None, ["'..'", "%2E"]),
    "percent-encoded-dot": ("https://gw.example/%2E/trackly", None, None, ["'.'", "%2E"]),
    "half-encoded-dot-dot": ("gw.example", "trackly/.%2E", None, ["'..'", "%2E"]),
    "broken-percent-escape": ("https://gw.example/trackly%zz", None, None, ["'%' not followed by two hex"]),
    "space-in-path": ("https://gw.example/track ly", None, None, ["space, tab, newline", "remove it"]),
    "angle-brackets-in-path": ("https://gw.example/<trackly>", None, None, ["'<'", "percent-encoded"]),
    "backslash-in-path": ("https://gw.example/trackly\\admin", None, None, ["'\\'", "percent-encoded"]),
    "quote-in-schema": ("gw.example", 'track"ly', None, ["quotes", "percent-encoded"]),
    "port-field-differs-from-host": (
        "https://gw.example:8443/trackly",
        None,
        9443,
        ["port 9443 in its Port field but 8443 in its Base URL", "keep one of them"],
    ),
    "scheme-in-host-and-another-in-schema": (
        "https://gw.example/trackly",
        "http",
        None,
        ["two schemes", "Keep one of them"],
    ),
}


@pytest.mark.usefixtures("clean_network_environment")
@pytest.mark.parametrize("case", REFUSED)
def test_an_unusable_base_url_is_a_config_error_saying_what_and_how_to_fix(monkeypatch, case):
    host, schema, port, says = REFUSED[case]
    conn = {"conn_type": "trackly", "host": host, "schema": schema, "port": port, "password": SANDBOX_API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_DEFAULT", json.dumps(conn))
    hook = TracklyHook()
    with pytest.raises(
        TracklyConfigError
    ) as raised:  # raised before any request: gw.example is never looked up
        hook.check_access()
    message = str(raised.value)
    assert "Connection 'trackly_default'" in message
    for words in says:
        assert words in message
    assert SANDBOX_API_KEY not in message
    assert HOST_PASSWORD not in message
    ok, told = hook.test_connection()  # the UI's Test button says the same, without the id
    assert (ok, told) == (False, message.replace("Connection 'trackly_default'", "The connection"))


@pytest.mark.usefixtures("clean_network_environment")
@pytest.mark.parametrize("host", ["https://gw.example:8443/trackly", "https://gw.example/trackly"])
def test_a_port_field_equal_to_the_host_port_or_alone_is_accepted(monkeypatch, host):
    conn = {"conn_type": "trackly", "host": host, "port": 8443, "password": SANDBOX_API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_DEFAULT", json.dumps(conn))
    assert TracklyHook().settings.base_url == "https://gw.example:8443/trackly"

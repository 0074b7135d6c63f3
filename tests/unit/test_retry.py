"""Retry policy: what is retried, how long the hook waits, and when it gives up.

The hook runs against httpx.MockTransport here so that each fault lands on a precise attempt; the
fault tests in test_faults.py do the same through real Airflow and the sandbox over real HTTP.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from tests.helpers import CLICK_RECORD, HOOK_KEY, set_trackly_connection
from trackly_provider.exceptions import (
    TracklyApiError,
    TracklyAuthError,
    TracklyOutcomeUnknownError,
    TracklyResponseError,
    TracklyRetriesExhaustedError,
    TracklyTransientError,
)
from trackly_provider.hooks.retry import RetryPolicy, parse_retry_after
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.trackly_api.results import ImportResult, RecordError

KEY, RECORD = HOOK_KEY, CLICK_RECORD
HTML_503 = httpx.Response(
    503, text="<html><h1>503 Service Unavailable</h1></html>", headers={"content-type": "text/html"}
)


def ok(request: httpx.Request) -> httpx.Response:
    records = json.loads(request.content)["records"]
    return httpx.Response(
        200, json={"success_count": len(records), "error_count": 0, "duplicates_skipped": 0, "errors": []}
    )


class Script:
    """Answers each request with the next step: a response, an exception to raise, or a handler."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step


@pytest.fixture
def hook_for(monkeypatch):
    def make(script: Script, extra=None, **kwargs):
        set_trackly_connection(monkeypatch, "api.tracklysms.test", KEY, extra)
        sleeps: list[float] = []
        hook = TracklyHook(transport=httpx.MockTransport(script), sleep=sleeps.append, **kwargs)
        return hook, sleeps

    return make


def test_retry_after_seconds_and_http_dates():
    now = datetime(2025, 11, 15, 12, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_under_an_exponential_ceiling_capped_by_max():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=10.0)
    ceilings = [policy.backoff(attempt, rand=lambda low, high: high) for attempt in range(1, 7)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert policy.backoff(3, rand=lambda low, high: low) == 0.0


@pytest.mark.parametrize(
    "fault",
    [
        HTML_503,
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}),
        httpx.Response(500, json={"error": "Internal error"}),
        httpx.Response(429, json={"error": "Too many requests"}),
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=["503-html", "502-html", "500-json", "429-no-retry-after", "connect", "read-timeout", "dropped"],
)
def test_transient_faults_are_retried_then_succeed(hook_for, fault, task_output):
    script = Script(fault, fault, ok)
    hook, sleeps = hook_for(script, extra={"backoff_base": 2, "backoff_max": 3})
    assert hook.import_clicks([RECORD]) == ImportResult(1, 0, 0, [])
    assert len(script.requests) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 2 and 0 <= sleeps[1] <= 3
    warnings = [line for line in task_output().splitlines() if "retrying in" in line]
    assert len(warnings) == 2
    assert "(attempt 1 of 5); retrying in" in warnings[0]
    assert "(attempt 2 of 5); retrying in" in warnings[1]
    expected = f"HTTP {fault.status_code}" if isinstance(fault, httpx.Response) else type(fault).__name__
    assert f"failed with {expected}" in warnings[0]


def test_retry_after_is_honoured_not_clamped(hook_for):
    script = Script(httpx.Response(429, headers={"Retry-After": "45"}, json={"error": "slow down"}), ok)
    hook, sleeps = hook_for(script, extra={"backoff_max": 1})
    hook.import_clicks([RECORD])
    assert sleeps == [45.0]


def test_retry_after_longer_than_the_maximum_fails_saying_so(hook_for):
    script = Script(httpx.Response(503, headers={"Retry-After": "900"}, text="<html>maintenance</html>"))
    hook, sleeps = hook_for(script, retry_after_max=300)
    with pytest.raises(
        TracklyTransientError, match=r"wait longer than retry_after_max=300 s \(Retry-After\)"
    ):
        hook.import_clicks([RECORD])
    assert sleeps == []
    assert len(script.requests) == 1


def test_attempts_are_bounded(hook_for):
    script = Script(HTML_503)
    hook, sleeps = hook_for(script, max_attempts=4)
    with pytest.raises(
        TracklyRetriesExhaustedError, match="failed 4 times, the last with HTTP 503; giving up"
    ):
        hook.import_clicks([RECORD])
    assert len(script.requests) == 4
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(400, json={"error": "bad", "code": "missing_records"}), TracklyApiError),
        (httpx.Response(404, json={"error": "nope"}), TracklyApiError),
        (httpx.Response(409, json={"error": "conflict"}), TracklyApiError),
        (httpx.Response(401, json={"error": "Invalid API key", "code": "invalid_api_key"}), TracklyAuthError),
        (httpx.Response(403, json={"error": "Account suspended"}), TracklyAuthError),
    ],
)
def test_other_4xx_are_not_retried(hook_for, response, error):
    script = Script(response)
    hook, sleeps = hook_for(script)
    with pytest.raises(error):
        hook.import_clicks([RECORD])
    assert len(script.requests) == 1
    assert sleeps == []


def payload_too_large_over(limit: int):
    """A 413 (no code) for more than ``limit`` records; message 'bad' is rejected, 'dup' a duplicate."""

    def handle(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        if len(records) > limit:
            return httpx.Response(413, json={"error": "Payload Too Large"})
        errors = [
            {"index": i, "code": "message_not_found", "error": "x"}
            for i, r in enumerate(records)
            if r["message_id"] == "bad"
        ]
        duplicates = sum(r["message_id"] == "dup" for r in records)
        return httpx.Response(
            200,
            json={
                "success_count": len(records) - len(errors) - duplicates,
                "error_count": len(errors),
                "duplicates_skipped": duplicates,
                "errors": errors,
            },
        )

    return handle


def test_413_payload_too_large_splits_in_halves_and_keeps_error_indexes(hook_for):
    script = Script(payload_too_large_over(2))
    hook, _ = hook_for(script)
    records = [{**RECORD, "message_id": f"m{i}"} for i in range(7)]
    records[5]["message_id"] = "bad"
    result = hook.import_clicks(records)
    assert result == ImportResult(6, 1, 0, [RecordError(5, "message_not_found", "x")])
    sent = [json.loads(r.content)["records"] for r in script.requests]
    assert [len(batch) for batch in sent] == [7, 3, 1, 2, 4, 2, 2]
    assert [r["message_id"] for batch in sent if len(batch) <= 2 for r in batch] == [
        r["message_id"] for r in records
    ]


def test_413_too_many_records_is_our_bug_and_fails_loudly(hook_for):
    script = Script(httpx.Response(413, json={"error": "Exceeded", "code": "too_many_records"}))
    hook, _ = hook_for(script)
    with pytest.raises(TracklyApiError, match="a bug in airflow-provider-trackly") as raised:
        hook.import_clicks([RECORD] * 10)
    assert (raised.value.code, len(script.requests)) == ("too_many_records", 1)


def test_timeouts_are_set_by_default(hook_for):
    hook, _ = hook_for(Script(ok))
    timeout = hook.get_conn().timeout
    assert (timeout.connect, timeout.read) == (10.0, 60.0)


def test_tls_verification_stays_on(monkeypatch):
    import ssl

    set_trackly_connection(monkeypatch, "https://api.tracklysms.test", KEY)
    context = TracklyHook().get_conn()._transport._pool._ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_errors_not_listed_are_attributed_by_sending_those_records_again(hook_for):
    """Mocked: a server whose failures on m100..m149 are transient, which the sandbox has no mode for."""
    stored: set[str] = set()

    def handle(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        outcomes = []
        for record in records:
            n = int(record["message_id"][1:])
            if record["message_id"] in stored:
                outcomes.append("duplicate")
            elif n < 100 or (n < 150 and len(records) == 200):  # m100..m149 fail only the first time
                outcomes.append("save_error" if n >= 100 else "message_not_found")
            else:
                stored.add(record["message_id"])
                outcomes.append("imported")
        errors = [
            {"index": i, "code": o, "error": "x"}
            for i, o in enumerate(outcomes)
            if o not in ("imported", "duplicate")
        ]
        return httpx.Response(
            200,
            json={
                "success_count": outcomes.count("imported"),
                "error_count": len(errors),
                "duplicates_skipped": outcomes.count("duplicate"),
                "errors": errors[:100],
            },
        )

    script = Script(handle)
    hook, _ = hook_for(script)
    result = hook.import_clicks([{**RECORD, "message_id": f"m{n}"} for n in range(200)])
    assert (result.success_count, result.error_count, result.duplicates_skipped) == (100, 100, 0)
    assert result.errors == [RecordError(n, "message_not_found", "x") for n in range(100)]
    sent = [[r["message_id"] for r in json.loads(request.content)["records"]] for request in script.requests]
    assert sent == [[f"m{n}" for n in range(200)], [f"m{n}" for n in range(100, 200)]]


def test_waiting_before_a_later_retry_sleeps_the_connections_backoff(hook_for):
    hook, sleeps = hook_for(Script(ok), extra={"backoff_base": 2, "backoff_max": 5})
    delays = [hook.wait_before_retry(attempt) for attempt in (1, 2, 3, 4)]
    assert sleeps == delays
    assert all(0 <= delay <= ceiling for delay, ceiling in zip(delays, (2, 4, 5, 5), strict=True))


def test_errors_of_records_sent_again_are_attributed_with_their_code_and_text(hook_for, task_output):
    """
    Mocked: 250 records, 200 of them rejected; the API lists 100 errors per answer. The other 150
    are sent again in two requests of at most 100; their errors come back with their own codes and
    texts, the 50 stored ones as duplicates, which still count as imported.
    """
    stored: set[str] = set()

    def outcome(message_id: str) -> tuple[str, str] | None:
        n = int(message_id[1:])
        if n < 200:
            return ("offer_not_found", f"no offer for m{n}") if n % 2 else ("message_not_found", f"no m{n}")
        return None

    def handle(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        errors, imported, duplicates = [], 0, 0
        for index, record in enumerate(records):
            failure = outcome(record["message_id"])
            if failure:
                errors.append({"index": index, "code": failure[0], "error": failure[1]})
            elif record["message_id"] in stored:
                duplicates += 1
            else:
                stored.add(record["message_id"])
                imported += 1
        body = {"success_count": imported, "error_count": len(errors), "duplicates_skipped": duplicates}
        return httpx.Response(200, json={**body, "errors": errors[:100]})

    script = Script(handle)
    hook, _ = hook_for(script)
    result = hook.import_clicks([{**RECORD, "message_id": f"m{n}"} for n in range(250)])
    assert (result.success_count, result.error_count, result.duplicates_skipped) == (50, 200, 0)
    assert result.errors == [RecordError(n, *outcome(f"m{n}")) for n in range(200)]  # type: ignore[misc]
    sizes = [len(json.loads(request.content)["records"]) for request in script.requests]
    assert sizes == [250, 100, 50]
    assert (
        "Trackly listed 100 of 200 errors for 250 records; sent the other 150 records again in 2 "
        "request(s) to learn which failed."
    ) in task_output()


def test_split_halves_add_up_to_the_whole_batch(hook_for):
    """Errors and duplicates on both sides of every split: the counts are summed, never cancelled."""
    hook, _ = hook_for(Script(payload_too_large_over(2)))
    ids = ["bad", "dup", "m2", "m3", "bad", "dup", "m6"]
    result = hook.import_clicks([{**RECORD, "message_id": message_id} for message_id in ids])
    assert (result.success_count, result.error_count, result.duplicates_skipped) == (3, 2, 2)
    assert [error.index for error in result.errors] == [0, 4]


def test_a_single_record_still_too_large_is_its_own_error_and_the_others_are_imported(hook_for, task_output):
    """Mocked 413 (no code) for any request holding the big record; the API's text has a phone-like run."""

    def handle(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        if any(len(record.get("message_id", "")) > 100 for record in records):
            return httpx.Response(413, json={"error": "Payload Too Large for +12025559876"})
        return ok(request)

    script = Script(handle)
    hook, _ = hook_for(script)
    big = {**RECORD, "message_id": "m" * 200_000}
    result = hook.import_clicks([RECORD, big, {**RECORD, "message_id": "m3"}])
    assert result == ImportResult(
        2,
        1,
        0,
        [
            RecordError(
                1,
                "record_too_large",
                "Trackly refused the record alone as too large (HTTP 413: Payload Too Large for "
                "[redacted]; its limit is 5,000,000 bytes per request body); its largest field, "
                "message_id, is 200,002 bytes as JSON. Shorten that column in the query: "
                "LEFT(message_id, 10000) or SUBSTRING(message_id, 1, 10000).",
            )
        ],
    )
    sent = [len(json.loads(request.content)["records"]) for request in script.requests]
    assert sent == [3, 1, 2, 1, 1]  # halves, down to the big record alone; nothing is sent twice
    output = task_output()
    assert "Trackly answered 413 for 3 records; splitting into halves." in output
    assert "Trackly answered 413 for a single clicks record; it is rejected." in output


def test_revenue_too_large_alone_is_a_record_error_too(hook_for):
    """A 413 means Trackly stored nothing: safe for revenue, which Trackly never deduplicates."""
    script = Script(payload_too_large_over(0))
    hook, _ = hook_for(script)
    record = {"message_id": "m1", "offer_id": "o1", "revenue": 1.5}
    result = hook.import_revenue([record])
    assert (result.success_count, result.error_count, [e.code for e in result.errors]) == (
        0,
        1,
        ["record_too_large"],
    )
    assert len(script.requests) == 1


def ghost_server(resend_claims_success: bool = False):
    """Mocked: m0..m149 fail and are never listed ('ghosts'); the rest are stored once."""
    stored: set[str] = set()
    seen_once: list[bool] = []

    def handle(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        if resend_claims_success and seen_once:  # a server contradicting its first answer
            return httpx.Response(
                200, json={"success_count": len(records), "error_count": 0, "duplicates_skipped": 0}
            )
        seen_once.append(True)
        ghosts = sum(int(r["message_id"][1:]) < 150 for r in records)
        new = {r["message_id"] for r in records if int(r["message_id"][1:]) >= 150} - stored
        stored.update(new)
        body = {
            "success_count": len(new),
            "error_count": ghosts,
            "duplicates_skipped": len(records) - ghosts - len(new),
        }
        return httpx.Response(200, json={**body, "errors": []})

    return handle


def test_errors_never_listed_even_when_sent_again_are_counted_as_unattributed(hook_for):
    hook, _ = hook_for(Script(ghost_server()))
    result = hook.import_clicks([{**RECORD, "message_id": f"m{n}"} for n in range(250)])
    assert (result.success_count, result.error_count, result.duplicates_skipped) == (100, 150, 0)
    assert (result.errors, result.unlisted_errors) == ([], 150)


def test_counts_that_stop_adding_up_after_sending_again_are_not_trusted(hook_for):
    hook, _ = hook_for(Script(ghost_server(resend_claims_success=True)))
    with pytest.raises(TracklyResponseError) as raised:
        hook.import_clicks([{**RECORD, "message_id": f"m{n}"} for n in range(250)])
    assert str(raised.value) == (
        "Trackly's counts do not add up after sending 250 records again to attribute their errors: "
        "350 imported and 0 errors out of 250."
    )


# Revenue: Trackly stores it every time it arrives, so only faults that certainly left the request
# unprocessed are retried. Mock transport: these faults at this precise moment cannot be made real.
REVENUE = {"message_id": "m1", "offer_id": "o1", "revenue": 12.5}


@pytest.mark.parametrize(
    "fault",
    [
        httpx.Response(429, json={"error": "Too many requests"}, headers={"Retry-After": "0"}),
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.PoolTimeout("no free connection"),
    ],
    ids=["429", "connect", "connect-timeout", "pool-timeout"],
)
def test_revenue_is_retried_only_after_faults_before_the_request_reached_trackly(hook_for, fault):
    script = Script(fault, ok)
    hook, _ = hook_for(script)
    assert hook.import_revenue([REVENUE]) == ImportResult(1, 0, 0, [])
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (HTML_503, "HTTP 503"),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "HTTP 502"),
        (httpx.Response(500, json={"error": "Internal error"}), "HTTP 500"),
        (httpx.ReadTimeout("timed out"), "ReadTimeout (timed out) after the request was sent"),
        (httpx.WriteError("broken pipe"), "WriteError (broken pipe) after the request was sent"),
        (
            httpx.ReadError("connection reset by peer"),
            "ReadError (connection reset by peer) after the request was sent",
        ),
        (
            httpx.RemoteProtocolError("Server disconnected"),
            "RemoteProtocolError (Server disconnected) after the request was sent",
        ),
    ],
    ids=["503", "502", "500", "read-timeout", "write-error", "reset", "dropped"],
)
def test_revenue_is_never_resent_when_its_outcome_is_unknown(hook_for, fault, reason):
    script = Script(fault, ok)
    hook, sleeps = hook_for(script)
    with pytest.raises(TracklyOutcomeUnknownError) as raised:
        hook.import_revenue([REVENUE])
    assert str(raised.value) == f"POST /api/v2/history/revenue: {reason}"
    assert (len(script.requests), sleeps) == (1, [])


def test_sends_are_resent_after_an_unknown_outcome_because_trackly_skips_duplicates(hook_for):
    script = Script(httpx.Response(502, text="Bad Gateway"), ok)
    hook, _ = hook_for(script)
    assert hook.import_sends(
        [{"id": "m1", "to_number": "+12025550001", "timestamp": "2025-11-15T00:00:00Z"}]
    ) == (ImportResult(1, 0, 0, []))
    assert [request.url.path for request in script.requests] == ["/api/v2/history/sends"] * 2


def test_revenue_with_more_than_100_errors_is_not_resent_to_attribute_them(hook_for):
    records = [{**REVENUE, "message_id": f"m{n}"} for n in range(250)]
    listed = [{"index": n, "code": "offer_not_found", "error": "No offer"} for n in range(100)]
    answer = {"success_count": 100, "error_count": 150, "total_revenue": 1250.0, "errors": listed}
    script = Script(httpx.Response(200, json=answer))
    hook, _ = hook_for(script)
    result = hook.import_revenue(records)
    assert (result.success_count, result.error_count, result.unlisted_errors) == (100, 150, 50)
    assert len(script.requests) == 1

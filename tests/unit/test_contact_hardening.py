"""What the attack on the contact import found, pinned: each test failed before its fix."""

from __future__ import annotations

import json
import logging
from ipaddress import IPv4Address, IPv6Network

import httpx
import pytest

from tests.unit.test_trackly import make_hook  # noqa: F401  (the fixture)
from trackly_provider.database.source import count_query
from trackly_provider.exceptions import (
    TracklyBillingError,
    TracklyResponseError,
    TracklyUnrequestedEffectError,
)
from trackly_provider.operators._engine import import_log
from trackly_provider.operators._engine.records import RowRejection
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.entities import CONTACTS
from trackly_provider.trackly_api.results import parse_import_result
from trackly_provider.trackly_api.values import text

CONTACT = {"phone_number": "+12025550143", "list_number": "+18005550100", "use_journeys": False}
FORBIDDEN = ("journeys_enrolled",)


def contact_answer(**overrides):
    body = {"success_count": 1, "error_count": 0, "errors": [], "contacts_created": 1}
    return {**body, "list_contacts_created": 1, "journeys_enrolled": 0, **overrides}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (9, "9"),
        (1, "1"),
        (None, "a value that is not a count"),
        ("1", "a value that is not a count"),
        (1.5, "a value that is not a count"),
        (True, "a value that is not a count"),
        (False, "a value that is not a count"),
    ],
)
def test_an_unrequested_count_fails_before_any_other_check(value, shown):
    # 9 > success_count 1 would otherwise be a retried TracklyResponseError ("rerunning is safe")
    with pytest.raises(TracklyUnrequestedEffectError) as raised:
        parse_import_result(contact_answer(journeys_enrolled=value), 1, CONTACTS.answer_counts, FORBIDDEN)
    assert (raised.value.count_name, raised.value.shown) == ("journeys_enrolled", shown)


def test_an_absent_or_zero_unrequested_count_is_fine():
    answer = contact_answer()
    del answer["journeys_enrolled"]
    assert parse_import_result(answer, 1, CONTACTS.answer_counts, FORBIDDEN).counts["journeys_enrolled"] == 0
    assert parse_import_result(contact_answer(), 1, CONTACTS.answer_counts, FORBIDDEN).counts == {
        "contacts_created": 1,
        "list_contacts_created": 1,
        "journeys_enrolled": 0,
    }


def test_the_hook_checks_unrequested_counts_on_every_answer_it_reads(make_hook):  # noqa: F811
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=contact_answer(journeys_enrolled=1))

    hook = make_hook(handler)
    assert hook.import_records(CONTACTS, [CONTACT]).counts["journeys_enrolled"] == 1  # asked for
    with pytest.raises(TracklyUnrequestedEffectError):
        hook.import_records(CONTACTS, [CONTACT], FORBIDDEN)


def test_duplicates_in_an_upsert_answer_are_not_trusted(make_hook):  # noqa: F811
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json=contact_answer(
                success_count=0, duplicates_skipped=1, contacts_created=0, list_contacts_created=0
            ),
        )

    with pytest.raises(TracklyResponseError, match="duplicates_skipped = 1 for contacts"):
        make_hook(handler).import_contacts([CONTACT])


def test_contacts_are_posted_under_their_body_key(make_hook):  # noqa: F811
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=contact_answer())

    make_hook(handler).import_contacts([CONTACT])
    assert seen[0].url.path == "/api/v2/contacts/bulk"
    assert json.loads(seen[0].content) == {"contacts": [CONTACT]}


@pytest.mark.parametrize(
    ("code", "advice"),
    [("no_payment_method", "needs a payment method"), ("suspended", "the account is suspended for billing")],
)
def test_a_402_is_a_billing_error_saying_what_to_do(make_hook, code, advice):  # noqa: F811
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(402, json={"error": "Payment required", "code": code})

    with pytest.raises(TracklyBillingError, match=advice):
        make_hook(handler).import_contacts([CONTACT])


def test_the_outcome_log_names_a_contact_by_its_reference(caplog):
    tally = ImportTally(key_label="contact_ref", rows_read=1)
    tally.reject_row(0, RowRejection("invalid_phone", "column phone_number holds text", "c_0123456789abcdef"))
    with caplog.at_level(logging.WARNING):
        import_log.outcome(logging.getLogger("t"), tally, "contacts", 1.0, None, None, (None, ""))
    assert (
        "Rejected row 0 (contact_ref c_0123456789abcdef): invalid_phone: column phone_number holds text"
        in (caplog.text)
    )


def test_an_ip_address_column_is_text():
    assert text(IPv4Address("192.0.2.7")) == "192.0.2.7"
    assert text(IPv6Network("2001:db8::/32")) == "2001:db8::/32"


@pytest.mark.parametrize(
    ("sql", "inner"),
    [
        ("SELECT a FROM t; -- trailing", "SELECT a FROM t"),
        ("SELECT a FROM t /* kept: inside */ ;  # mysql comment", "SELECT a FROM t /* kept: inside */"),
        ("SELECT a FROM t -- note", "SELECT a FROM t"),
        (
            "WITH c AS (SELECT 1 AS a) SELECT a FROM c ORDER BY a;",
            "WITH c AS (SELECT 1 AS a) SELECT a FROM c ORDER BY a",
        ),
        ("/*!50100 SELECT a FROM t */;", "/*!50100 SELECT a FROM t */"),
    ],
)
def test_the_count_query_wraps_the_statement_without_its_trailing_semicolon_or_comment(sql, inner):
    assert count_query(sql) == f"SELECT COUNT(*) FROM (\n{inner}\n) AS trackly_rows"


def test_the_count_query_leaves_what_is_not_one_select_to_the_stream_to_refuse():
    assert count_query("SELECT 1; SELECT 2") == "SELECT 1; SELECT 2"
    assert count_query("DELETE FROM t") == "DELETE FROM t"


def test_an_unrequested_count_carries_the_answer_when_it_can_be_read_so_that_it_is_counted():
    answer = contact_answer(success_count=2, contacts_created=2, list_contacts_created=2, journeys_enrolled=2)
    with pytest.raises(TracklyUnrequestedEffectError) as raised:
        parse_import_result(answer, 2, CONTACTS.answer_counts, FORBIDDEN)
    assert raised.value.result.success_count == 2
    assert raised.value.result.counts["journeys_enrolled"] == 2
    with pytest.raises(TracklyUnrequestedEffectError) as raised:  # 9 > 2 stored: nothing to trust
        parse_import_result({**answer, "journeys_enrolled": 9}, 2, CONTACTS.answer_counts, FORBIDDEN)
    assert raised.value.result is None


def test_contacts_without_signup_date_are_warned_about_once_also_when_the_import_stopped_early(caplog):
    from trackly_provider.operators._engine.import_run import ImportRun, RunArguments

    run = ImportRun(CONTACTS, RunArguments("SELECT 1", None, 10, 1), logging.getLogger("t"))
    run.tally.rows_read, run.tally.fields_missing["signup_date"] = 5, 3
    with caplog.at_level(logging.WARNING):
        summary = run.stopped_early_summary(RuntimeError("lost"))
        run.stopped_early_summary(RuntimeError("lost"))
    assert summary["records_without_signup_date"] == 3
    assert caplog.text.count("3 contacts (of 5 rows read) had no signup_date") == 1

"""The sandbox's contacts endpoint and fresh-account mode, as the API contract says, over loopback HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from trackly_provider.sandbox import (
    NOT_SENDABLE_PREFIX,
    SANDBOX_API_KEY,
    SANDBOX_LIST_NUMBER,
    SECOND_LIST_NUMBER,
    VALIDATION_FAILS_PREFIX,
)

PATH = "/api/v2/contacts/bulk"
ALICE = "+12025550101"
BOB = "+12025550102"
CAROL = "+447700900123"
VOIP = NOT_SENDABLE_PREFIX + "1234567"
FAILS_VALIDATION = VALIDATION_FAILS_PREFIX + "1234567"
WARNING = (
    f"List {SANDBOX_LIST_NUMBER} has active Welcome Journeys; use_journeys was not set, "
    "so contacts were not enrolled."
)


def contact(phone: str = ALICE, list_number: str = SANDBOX_LIST_NUMBER, **fields: Any) -> dict[str, Any]:
    return {"phone_number": phone, "list_number": list_number, **fields}


@pytest.fixture
def api(sandbox):
    with httpx.Client(base_url=sandbox.url, headers={"X-Api-Key": SANDBOX_API_KEY}) as client:
        yield client


def account(sandbox, **settings: Any) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/account", json=settings).raise_for_status()


def post(api, contacts: Any) -> dict[str, Any]:
    response = api.post(PATH, json={"contacts": contacts})
    assert response.status_code == 200, response.text
    return response.json()


def answer(success: int, errors: list[dict[str, Any]] | None = None, **counts: int) -> dict[str, Any]:
    """The full 200 answer expected: every count not given is 0, and no ``warnings`` key."""
    errors = errors or []
    return {
        "success_count": success,
        "error_count": counts.pop("error_count", len(errors)),
        "errors": errors,
        "contacts_created": counts.pop("contacts_created", 0),
        "list_contacts_created": counts.pop("list_contacts_created", 0),
        "journeys_enrolled": counts.pop("journeys_enrolled", 0),
        **counts,
    }


def contacts_requests(sandbox) -> int:
    return sandbox.state()["requests_by_entity"]["contacts"]


# --- the lists -------------------------------------------------------------------------------------


def test_lists_show_each_list_number_and_its_member_count(api):
    post(api, [contact(ALICE), contact(BOB), contact(ALICE, SECOND_LIST_NUMBER)])
    assert api.get("/api/v2/lists").json() == {
        "lists": [
            {"id": 1, "name": "Sandbox list", "phone_number": SANDBOX_LIST_NUMBER, "contact_count": 2},
            {"id": 2, "name": "Second sandbox list", "phone_number": SECOND_LIST_NUMBER, "contact_count": 1},
        ]
    }


# --- whole-request errors --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"contacts": []}, {"contacts": "x"}, {"contacts": {"a": 1}}, []])
def test_missing_or_empty_contacts_is_400_and_nothing_is_processed(api, sandbox, body):
    response = api.post(PATH, json=body)
    assert (response.status_code, response.json()["code"]) == (400, "missing_contacts")
    assert (contacts_requests(sandbox), sandbox.state()["requests"]) == (0, [])


def test_1000_contacts_pass_and_1001_are_413_too_many_contacts(api, sandbox):
    batch = [contact(f"+1202555{n:04d}") for n in range(1001)]
    refused = api.post(PATH, json={"contacts": batch})
    accepted = post(api, batch[:1000])
    assert (refused.status_code, refused.json()["code"]) == (413, "too_many_contacts")
    assert (accepted["success_count"], accepted["contacts_created"]) == (1000, 1000)
    assert contacts_requests(sandbox) == 1


def compact_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def padded(size: int, filler: str = "x") -> dict[str, Any]:
    """A valid contact whose compact UTF-8 JSON is exactly ``size`` bytes (``filler``: 1 or 2 bytes)."""
    missing = size - compact_bytes(contact(custom_fields={"note": ""}))
    note = "x" * (missing % len(filler.encode())) + filler * (missing // len(filler.encode()))
    sized = contact(custom_fields={"note": note})
    assert compact_bytes(sized) == size
    return sized


def test_a_contact_of_4000_bytes_passes_and_one_of_4001_is_413_payload_too_large(api, sandbox):
    refused = api.post(PATH, json={"contacts": [contact(BOB), padded(4001, "x")]})
    accepted = post(api, [padded(4000, "x")])
    assert (refused.status_code, refused.json()["code"]) == (413, "payload_too_large")
    assert accepted["success_count"] == 1
    assert sandbox.state()["contacts"].keys() == {ALICE}  # BOB's request was refused whole


def test_the_contact_limit_counts_utf8_bytes_not_characters_nor_escapes(api):
    too_big = padded(4001, "é")  # about 2,000 characters, 4,001 bytes
    fits = padded(4000, "é")  # over 4,000 bytes were each "é" counted as the escape \u00e9
    assert len(json.dumps(too_big, separators=(",", ":"), ensure_ascii=False)) < 4000
    refused = api.post(PATH, json={"contacts": [too_big]})
    assert (refused.status_code, refused.json()["code"]) == (413, "payload_too_large")
    assert post(api, [fits])["success_count"] == 1


def test_a_body_over_5_mb_is_413_payload_too_large(api, sandbox):
    body = json.dumps({"contacts": [contact()]}).encode() + b" " * 5_000_000  # valid JSON, too big
    response = api.post(PATH, content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    assert sandbox.state()["contacts"] == {}


def test_validation_without_billing_refuses_the_whole_batch_with_402(api, sandbox):
    response = api.post(PATH, json={"contacts": [contact(BOB), contact(use_validation=True)]})
    assert (response.status_code, response.json()) == (
        402,
        {"error": "Phone validation requires a payment method on the account", "code": "no_payment_method"},
    )
    state = sandbox.state()
    assert (state["contacts"], state["validation_lookups"], contacts_requests(sandbox)) == ({}, 0, 0)


def test_auth_applies_to_contacts(sandbox):
    with httpx.Client(base_url=sandbox.url) as client:
        missing = client.post(PATH, json={"contacts": [contact()]})
        wrong = client.post(PATH, json={"contacts": [contact()]}, headers={"X-Api-Key": "trk_" + "0" * 32})
        sandbox.set_faults(suspended=True)
        suspended = client.post(PATH, json={"contacts": [contact()]}, headers={"X-Api-Key": SANDBOX_API_KEY})
    assert [(r.status_code, r.json().get("code")) for r in (missing, wrong, suspended)] == [
        (401, "missing_api_key"),
        (401, "invalid_api_key"),
        (403, None),
    ]
    assert sandbox.state()["contacts"] == {}


def test_faults_apply_to_contacts_by_request_count(api, sandbox):
    sandbox.set_faults(down_after_requests=1)
    first = api.post(PATH, json={"contacts": [contact(ALICE)]})
    second = api.post(PATH, json={"contacts": [contact(BOB)]})
    assert (first.status_code, second.status_code) == (200, 503)
    assert second.headers["Content-Type"] == "text/html"
    assert (sandbox.state()["contacts"].keys(), sandbox.state()["requests_seen"]) == ({ALICE}, 2)


def test_a_connection_lost_after_commit_still_stored_the_contacts(api, sandbox):
    sandbox.set_faults(lost_after_commit=1.0)
    with pytest.raises(httpx.TransportError):
        api.post(PATH, json={"contacts": [contact(ALICE), contact(BOB)]})
    state = sandbox.state()
    assert (state["faults_injected"]["lost_after_commit"], sorted(state["contacts"])) == (1, [ALICE, BOB])
    sandbox.set_faults()
    again = post(api, [contact(ALICE), contact(BOB)])  # a retry finds them there: nothing is created
    assert again == answer(2, warnings=[WARNING])


def test_rate_limits_and_html_503_store_nothing(api, sandbox):
    sandbox.set_faults(rate_limited=1.0, retry_after="7")
    limited = api.post(PATH, json={"contacts": [contact()]})
    sandbox.set_faults(html_503=1.0)
    unavailable = api.post(PATH, json={"contacts": [contact()]})
    assert (limited.status_code, limited.headers["Retry-After"], unavailable.status_code) == (429, "7", 503)
    assert (sandbox.state()["contacts"], contacts_requests(sandbox)) == ({}, 0)


# --- per-contact errors ----------------------------------------------------------------------------


def test_each_per_contact_code_repeats_the_phone_number_as_sent(api, sandbox):
    contacts = [
        "not an object",
        {"list_number": SANDBOX_LIST_NUMBER},
        contact(""),
        contact(ALICE, None),
        contact(BOB, ""),
        contact("2025550103"),
        contact("+12025550104", "18005550100"),
        contact("+12025550105", "+18005550199"),
        contact("+12025550106", custom_fields={"plan": {"nested": True}}),
        contact(VOIP),
        contact(CAROL, SECOND_LIST_NUMBER),
    ]
    body = post(api, contacts)
    assert body == answer(
        1,
        [
            {
                "index": 0,
                "phone_number": None,
                "code": "missing_phone_number",
                "error": "Contact must be an object with a phone_number.",
            },
            {
                "index": 1,
                "phone_number": None,
                "code": "missing_phone_number",
                "error": "A contact is missing the phone_number field.",
            },
            {
                "index": 2,
                "phone_number": "",
                "code": "missing_phone_number",
                "error": "A contact is missing the phone_number field.",
            },
            {
                "index": 3,
                "phone_number": ALICE,
                "code": "missing_list_number",
                "error": f"Contact {ALICE} is missing the list_number field.",
            },
            {
                "index": 4,
                "phone_number": BOB,
                "code": "missing_list_number",
                "error": f"Contact {BOB} is missing the list_number field.",
            },
            {
                "index": 5,
                "phone_number": "2025550103",
                "code": "invalid_phone",
                "error": "Invalid phone number 2025550103: not an E.164 number.",
            },
            {
                "index": 6,
                "phone_number": "+12025550104",
                "code": "invalid_list_number",
                "error": "Contact +12025550104: list_number 18005550100 is not an E.164 number.",
            },
            {
                "index": 7,
                "phone_number": "+12025550105",
                "code": "list_not_found",
                "error": "Contact +12025550105: no list +18005550199 on this account.",
            },
            {
                "index": 8,
                "phone_number": "+12025550106",
                "code": "invalid_custom_fields",
                "error": "Contact +12025550106: custom_fields must be an object of string, number or "
                "boolean values.",
            },
            {
                "index": 9,
                "phone_number": VOIP,
                "code": "not_sendable",
                "error": f"Phone number {VOIP} is not sendable: carrier check failed (VOIP rejected).",
            },
        ],
        contacts_created=1,
        list_contacts_created=1,
    )
    assert list(sandbox.state()["contacts"]) == [CAROL]


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        (contact("12025550101", "+18005550199"), "invalid_phone"),  # the phone is checked before the list
        (contact("12025550101", "18005550100"), "invalid_phone"),  # ... and before the list's format
        (contact("bad", None), "missing_list_number"),  # a missing field before a malformed one
        (contact(VOIP, "+18005550199"), "list_not_found"),  # the list before the carrier
        (contact(VOIP, custom_fields=[1]), "invalid_custom_fields"),  # the payload before the carrier
        (contact(12025550101), "invalid_phone"),  # a number, not a string
        (contact("+0202555010"), "invalid_phone"),  # E.164 starts with 1-9
        (contact("+1234567890123456"), "invalid_phone"),  # 16 digits: one too many
    ],
)
def test_the_first_failing_check_names_the_error(api, sent, code):
    assert [error["code"] for error in post(api, [sent])["errors"]] == [code]


@pytest.mark.parametrize(
    "custom_fields",
    [["a"], "plan=gold", {"tags": ["a"]}, {"nested": {"a": 1}}, {"nothing": None}],
)
def test_custom_fields_must_be_an_object_of_strings_numbers_or_booleans(api, sandbox, custom_fields):
    body = post(api, [contact(custom_fields=custom_fields)])
    assert ([e["code"] for e in body["errors"]], body["success_count"]) == (["invalid_custom_fields"], 0)
    assert sandbox.state()["list_contacts"] == []


def test_errors_are_capped_at_100_but_counted(api):
    body = post(api, [contact(f"202555{n:04d}") for n in range(250)])
    assert (body["error_count"], len(body["errors"]), body["errors"][-1]["index"]) == (250, 100, 99)


# --- upserts ---------------------------------------------------------------------------------------


def test_a_second_import_updates_and_creates_nothing(api, sandbox):
    batch = [
        contact(ALICE, custom_fields={"plan": "gold", "visits": 3}),
        contact(BOB),
        contact(ALICE, SECOND_LIST_NUMBER),
    ]
    first = post(api, batch)
    second = post(api, batch)
    assert first == answer(3, contacts_created=2, list_contacts_created=3, warnings=[WARNING])
    assert second == answer(3, warnings=[WARNING])
    state = sandbox.state()
    assert (len(state["contacts"]), len(state["list_contacts"])) == (2, 3)


def test_an_update_merges_custom_fields_and_keeps_what_it_does_not_give(api, sandbox):
    post(
        api,
        [
            contact(
                custom_fields={"plan": "gold", "visits": 3, "vip": False},
                signup_date="2024-01-02T03:04:05Z",
                ip_address="203.0.113.9",
                url="https://example.com/join",
            )
        ],
    )
    again = post(api, [contact(custom_fields={"visits": 4, "score": 1.5}, url="https://example.com/b")])
    assert (again["success_count"], again["contacts_created"], again["list_contacts_created"]) == (1, 0, 0)
    assert sandbox.state()["list_contacts"] == [
        {
            "phone_number": ALICE,
            "list_number": SANDBOX_LIST_NUMBER,
            "custom_fields": {"plan": "gold", "visits": 4, "vip": False, "score": 1.5},
            "signup_date": "2024-01-02T03:04:05Z",
            "ip_address": "203.0.113.9",
            "url": "https://example.com/b",
        }
    ]


def test_a_contact_without_signup_date_gets_the_request_time_in_utc(api, sandbox):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    post(api, [contact()])
    after = datetime.now(timezone.utc)
    state = sandbox.state()
    (member,) = state["list_contacts"]
    signed_up = member["signup_date"]
    assert signed_up.endswith("Z")  # UTC, though this machine's local time is UTC+05:30
    assert before <= datetime.fromisoformat(signed_up.replace("Z", "+00:00")) <= after
    assert state["contacts"] == {ALICE: {"created_at": signed_up}}
    assert (member["ip_address"], member["url"], member["custom_fields"]) == (None, None, {})


def test_one_contact_on_two_lists_holds_separate_custom_fields(api, sandbox):
    post(
        api,
        [
            contact(ALICE, custom_fields={"source": "web"}),
            contact(ALICE, SECOND_LIST_NUMBER, custom_fields={"source": "shop"}),
        ],
    )
    fields = {m["list_number"]: m["custom_fields"] for m in sandbox.state()["list_contacts"]}
    assert fields == {SANDBOX_LIST_NUMBER: {"source": "web"}, SECOND_LIST_NUMBER: {"source": "shop"}}


# --- Welcome Journeys ------------------------------------------------------------------------------


def test_use_journeys_enrols_once_unless_asked_to_enrol_again(api, sandbox):
    first = post(api, [contact(use_journeys=True)])
    skipped = post(api, [contact(use_journeys=True)])
    explicit_skip = post(api, [contact(use_journeys=True, skip_journey_if_exists=True)])
    again = post(api, [contact(use_journeys=True, skip_journey_if_exists=False)])
    assert [b["journeys_enrolled"] for b in (first, skipped, explicit_skip, again)] == [1, 0, 0, 1]
    assert "warnings" not in first
    assert sandbox.state()["journey_enrolments"] == [
        {"phone_number": ALICE, "list_number": SANDBOX_LIST_NUMBER},
        {"phone_number": ALICE, "list_number": SANDBOX_LIST_NUMBER},
    ]


def test_a_list_without_journeys_enrols_nobody_and_warns_of_nothing(api, sandbox):
    body = post(
        api, [contact(ALICE, SECOND_LIST_NUMBER, use_journeys=True), contact(BOB, SECOND_LIST_NUMBER)]
    )
    assert body == answer(2, contacts_created=2, list_contacts_created=2)
    assert sandbox.state()["journey_enrolments"] == []


def test_contacts_of_a_journey_list_without_use_journeys_get_one_warning_naming_the_list(api, sandbox):
    body = post(
        api,
        [contact(ALICE), contact(BOB), contact(CAROL, use_journeys=True), contact("bad")],
    )
    assert (body["journeys_enrolled"], body["warnings"]) == (1, [WARNING])
    assert sandbox.state()["journey_enrolments"] == [
        {"phone_number": CAROL, "list_number": SANDBOX_LIST_NUMBER}
    ]


def test_a_rejected_contact_brings_no_warning(api):
    assert "warnings" not in post(api, [contact(VOIP)])


def test_journey_lists_are_an_account_setting(api, sandbox):
    account(sandbox, journey_lists=[SECOND_LIST_NUMBER])
    moved = post(api, [contact(ALICE, use_journeys=True), contact(BOB, SECOND_LIST_NUMBER)])
    account(sandbox, journey_lists=[])
    none = post(api, [contact(CAROL), contact(CAROL, SECOND_LIST_NUMBER, use_journeys=True)])
    assert (moved["journeys_enrolled"], moved["warnings"]) == (
        0,
        [WARNING.replace(SANDBOX_LIST_NUMBER, SECOND_LIST_NUMBER)],
    )
    assert (none["journeys_enrolled"], "warnings" in none) == (0, False)


def test_a_misbehaving_server_enrols_regardless_of_use_journeys(api, sandbox):
    account(sandbox, enrol_regardless=True)
    body = post(api, [contact(ALICE), contact(BOB, SECOND_LIST_NUMBER), contact(ALICE)])
    assert body == answer(3, contacts_created=2, list_contacts_created=2, journeys_enrolled=1)
    assert sandbox.state()["journey_enrolments"] == [
        {"phone_number": ALICE, "list_number": SANDBOX_LIST_NUMBER}
    ]


# --- paid validation -------------------------------------------------------------------------------


def test_billed_validation_looks_each_new_number_up_once(api, sandbox):
    account(sandbox, billing=True)
    first = post(
        api,
        [
            contact(ALICE, use_validation=True),
            contact(ALICE, SECOND_LIST_NUMBER, use_validation=True),  # the same number: cached
            contact(FAILS_VALIDATION, use_validation=True),
            contact(VOIP, use_validation=True),  # rejected before any lookup
            contact("bad", use_validation=True),
            contact(BOB),  # not asked
        ],
    )
    assert sandbox.state()["validation_lookups"] == 2
    second = post(api, [contact(ALICE, use_validation=True), contact(CAROL, use_validation=True)])
    assert sandbox.state()["validation_lookups"] == 3
    assert [(e["index"], e["code"]) for e in first["errors"]] == [
        (2, "validation_failed"),
        (3, "not_sendable"),
        (4, "invalid_phone"),
    ]
    assert first["errors"][0] == {
        "index": 2,
        "phone_number": FAILS_VALIDATION,
        "code": "validation_failed",
        "error": f"Phone validation failed for {FAILS_VALIDATION}.",
    }
    assert (first["success_count"], second["success_count"]) == (3, 2)


def test_a_failing_prefix_passes_without_validation(api):
    assert post(api, [contact(FAILS_VALIDATION)])["success_count"] == 1


# --- a fresh account -------------------------------------------------------------------------------

SEND = {"id": "s1", "to_number": ALICE, "timestamp": "2025-11-15T14:00:00Z"}
SALE = {"message_id": "s1", "offer_id": "o1", "revenue": 5}


def history(api, entity: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.post(f"/api/v2/history/{entity}", json={"records": records})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_fresh_account_needs_the_send_s_list_to_exist(api, sandbox):
    sends = [
        {**SEND, "id": "s1", "list_number": SECOND_LIST_NUMBER},
        {**SEND, "id": "s2", "list_number": "+18005550199"},
        {**SEND, "id": "s3", "list_id": 2},
        {**SEND, "id": "s4", "list_id": 3},
        {**SEND, "id": "s5"},  # no list given: fine
    ]
    before = history(api, "sends", [{**s, "id": f"before-{s['id']}"} for s in sends])
    account(sandbox, require_contacts=True)
    after = history(api, "sends", sends)
    assert [(e["index"], e["code"]) for e in before["errors"]] == [(3, "list_not_found")]
    assert [(e["index"], e["code"]) for e in after["errors"]] == [
        (1, "list_not_found"),
        (3, "list_not_found"),
    ]
    assert after["success_count"] == 3


def test_a_fresh_account_needs_the_revenue_s_contact(api, sandbox):
    account(sandbox, require_sends=True, require_contacts=True)
    history(api, "sends", [SEND, {**SEND, "id": "s2", "to_number": BOB}])
    post(api, [contact(ALICE, SECOND_LIST_NUMBER)])  # a contact of any list
    body = history(api, "revenue", [SALE, {**SALE, "message_id": "s2"}, {**SALE, "message_id": "s3"}])
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (1, "contact_not_found"),
        (2, "message_not_found"),
    ]
    assert (body["success_count"], body["total_revenue"]) == (1, 5.0)


def test_revenue_without_a_stored_send_has_no_contact_in_a_fresh_account(api, sandbox):
    account(sandbox, require_contacts=True)  # every message exists, but no send names its contact
    post(api, [contact(ALICE)])
    body = history(api, "revenue", [SALE])
    assert [e["code"] for e in body["errors"]] == ["contact_not_found"]


def test_revenue_needs_no_contact_unless_the_account_is_fresh(api):
    history(api, "sends", [SEND])
    assert history(api, "revenue", [SALE])["success_count"] == 1


# --- account settings, state and counts ------------------------------------------------------------


def test_account_settings_left_out_take_their_defaults(api, sandbox):
    account(sandbox, billing=True, journey_lists=[])
    account(sandbox, require_contacts=True)  # billing false and list 1's journey again
    refused = api.post(PATH, json={"contacts": [contact(use_validation=True)]})
    warned = post(api, [contact()])
    assert (refused.status_code, warned["warnings"]) == (402, [WARNING])


def test_reset_restores_the_default_account_and_empties_the_contacts(api, sandbox):
    account(sandbox, billing=True, enrol_regardless=True, require_contacts=True)
    post(api, [contact(use_validation=True)])
    sandbox.reset()
    state = sandbox.state()
    assert (state["contacts"], state["list_contacts"], state["journey_enrolments"]) == ({}, [], [])
    assert (state["validation_lookups"], state["requests_by_entity"]["contacts"]) == (0, 0)
    assert api.post(PATH, json={"contacts": [contact(use_validation=True)]}).status_code == 402
    assert post(api, [contact()])["journeys_enrolled"] == 0
    assert history(api, "sends", [{**SEND, "list_number": "+18005550199"}])["success_count"] == 1


@pytest.mark.parametrize(
    "settings",
    [
        {"enroll_regardless": True},
        {"billing": "yes"},
        {"journey_lists": ["+18005550199"]},
        {"journey_lists": "x"},
        [],
    ],
)
def test_a_mistyped_account_setting_is_refused(sandbox, settings):
    response = httpx.post(f"{sandbox.url}/_sandbox/account", json=settings)
    assert (response.status_code, response.json()["code"]) == (400, "bad_account_config")


def test_state_and_counts_show_what_the_api_received_and_holds(api, sandbox):
    batch = [contact(ALICE, custom_fields={"a": 1}), contact("bad"), contact(ALICE, SECOND_LIST_NUMBER)]
    post(api, batch)
    post(api, [contact(BOB, use_journeys=True)])
    history(
        api,
        "clicks",
        [{"message_id": "m1", "offer_id": "o1", "phone_number": ALICE, "timestamp": "2025-11-15T14:35:22Z"}],
    )
    state = sandbox.state()
    assert state["requests"][:2] == [batch, [contact(BOB, use_journeys=True)]]
    assert state["requests_by_entity"] == {"clicks": 1, "sends": 0, "revenue": 0, "contacts": 2}
    assert sorted(state["contacts"]) == [ALICE, BOB]
    assert [(m["phone_number"], m["list_number"]) for m in state["list_contacts"]] == [
        (ALICE, SANDBOX_LIST_NUMBER),
        (ALICE, SECOND_LIST_NUMBER),
        (BOB, SANDBOX_LIST_NUMBER),
    ]
    assert state["journey_enrolments"] == [{"phone_number": BOB, "list_number": SANDBOX_LIST_NUMBER}]
    assert state["validation_lookups"] == 0
    counts = httpx.get(f"{sandbox.url}/_sandbox/counts").json()
    assert (counts["contacts"], counts["list_contacts"], counts["clicks"], counts["requests_seen"]) == (
        2,
        3,
        1,
        3,
    )


def test_a_contradicting_answer_after_commit_reaches_contacts_too(api, sandbox):
    sandbox.set_faults(contradicting_after_commit=1.0)
    body = post(api, [contact("bad1"), contact(ALICE), contact("bad2")])
    assert [e["index"] for e in body["errors"]] == [0, 0]  # the last error names the first's contact
    assert list(sandbox.state()["contacts"]) == [ALICE]

"""The sandbox honours the API contract, over real HTTP on loopback."""

from __future__ import annotations

import httpx
import pytest

from trackly_provider.sandbox import SANDBOX_API_KEY

GOOD = {
    "message_id": "m1",
    "offer_id": "o1",
    "phone_number": "+12025559876",
    "timestamp": "2025-11-15T14:35:22Z",
}


@pytest.fixture
def api(sandbox):
    with httpx.Client(base_url=sandbox.url, headers={"X-Api-Key": SANDBOX_API_KEY}) as client:
        yield client


def post(api, records):
    return api.post("/api/v2/history/clicks", json={"records": records})


def test_missing_and_wrong_keys_get_the_documented_401_bodies(sandbox):
    with httpx.Client(base_url=sandbox.url) as client:
        missing = client.post("/api/v2/history/clicks", json={"records": [GOOD]})
        wrong = client.get("/api/v2/lists", headers={"X-Api-Key": "trk_" + "0" * 32})
    assert (missing.status_code, missing.json()) == (
        401,
        {"error": "API key required", "code": "missing_api_key"},
    )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid API key", "code": "invalid_api_key"})


def test_lists_answers_with_a_valid_key(api):
    response = api.get("/api/v2/lists")
    assert response.status_code == 200
    assert "lists" in response.json()


@pytest.mark.parametrize("body", [{}, {"records": []}, {"records": "x"}])
def test_missing_or_empty_records_is_400(api, body):
    response = api.post("/api/v2/history/clicks", json=body)
    assert (response.status_code, response.json()["code"]) == (400, "missing_records")


def test_more_than_1000_records_is_413_too_many_records(api):
    response = post(api, [GOOD] * 1001)
    assert (response.status_code, response.json()["code"]) == (413, "too_many_records")


def test_per_record_validation_and_known_ids(api):
    records = [
        GOOD,
        {**GOOD, "message_id": ""},
        {**GOOD, "message_id": "m3", "offer_id": None},
        {k: v for k, v in {**GOOD, "message_id": "m4"}.items() if k != "phone_number"},
        {k: v for k, v in {**GOOD, "message_id": "m5"}.items() if k != "timestamp"},
        {**GOOD, "message_id": "m6", "timestamp": "15/11/2025"},
        {**GOOD, "message_id": "unknown-7"},
        {**GOOD, "message_id": "m8", "offer_id": "unknown-offer"},
        {**GOOD, "message_id": "m9", "send_timestamp": "2025-11-15T14:30:00Z"},
    ]
    body = post(api, records).json()
    assert [(e["index"], e["code"]) for e in body["errors"]] == [
        (1, "missing_message_id"),
        (2, "missing_offer_id"),
        (3, "missing_phone_number"),
        (4, "missing_timestamp"),
        (5, "invalid_timestamp"),
        (6, "message_not_found"),
        (7, "offer_not_found"),
    ]
    assert (body["success_count"], body["error_count"], body["duplicates_skipped"]) == (2, 7, 0)


def test_one_click_per_message_id_within_and_across_requests(api, sandbox):
    first = post(api, [GOOD, {**GOOD, "offer_id": "o2"}]).json()
    second = post(api, [GOOD]).json()
    assert (first["success_count"], first["duplicates_skipped"]) == (1, 1)
    assert (second["success_count"], second["duplicates_skipped"]) == (0, 1)
    assert sandbox.stored() == {"m1": GOOD}


def test_errors_are_capped_at_100_but_counted(api):
    body = post(api, [{**GOOD, "message_id": f"unknown-{i}"} for i in range(250)]).json()
    assert body["error_count"] == 250
    assert len(body["errors"]) == 100


SANDBOX_WITHOUT_AIRFLOW = """
import json, sys, threading, urllib.request
sys.modules["airflow"] = None  # any import of Airflow now fails
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.server import serve
server = serve("127.0.0.1", 0, SANDBOX_API_KEY)
threading.Thread(target=server.serve_forever, daemon=True).start()
request = urllib.request.Request(
    f"http://127.0.0.1:{server.server_address[1]}/api/v2/history/clicks",
    data=json.dumps({"records": [RECORD]}).encode(),
    headers={"X-Api-Key": SANDBOX_API_KEY, "Content-Type": "application/json"},
)
print(urllib.request.urlopen(request).read().decode())
"""


def test_the_sandbox_runs_without_airflow_installed():
    """Users start it beside any Airflow, or none: nothing on its import path may need Airflow."""
    import json
    import subprocess
    import sys

    script = SANDBOX_WITHOUT_AIRFLOW.replace("RECORD", repr(GOOD))
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(answer.stdout) == {
        "success_count": 1,
        "error_count": 0,
        "duplicates_skipped": 0,
        "errors": [],
    }


SEND = {"id": "s1", "to_number": "+12025559876", "timestamp": "2025-11-15T14:00:00Z", "list_id": 1}
SALE = {"message_id": "m1", "offer_id": "o1", "revenue": 12.5, "payout": 3.1}


def test_sends_are_validated_skipped_by_id_and_errors_carry_the_id(api):
    records = [
        SEND,
        {**SEND, "id": ""},
        {**SEND, "id": "s3", "to_number": "2025559876"},
        {**SEND, "id": "s4", "timestamp": None},
        {**SEND, "id": "s5", "list_id": 99},
        {**SEND, "id": "s6", "list_number": "unknown-list"},
        {**SEND, "id": "s7", "timestamp": "yesterday"},
        SEND,
    ]
    body = api.post("/api/v2/history/sends", json={"records": records}).json()
    assert [(e["index"], e["code"], e["id"]) for e in body["errors"]] == [
        (1, "missing_id", ""),
        (2, "invalid_phone", "s3"),
        (3, "missing_timestamp", "s4"),
        (4, "list_not_found", "s5"),
        (5, "list_not_found", "s6"),
        (6, "invalid_timestamp", "s7"),
    ]
    assert (
        body["success_count"],
        body["error_count"],
        body["duplicates_skipped"],
        body["invalid_phones"],
    ) == (
        1,
        6,
        1,
        1,
    )


def test_revenue_is_stored_every_time_with_its_exact_total(api, sandbox):
    records = [SALE, {**SALE, "revenue": 0.1}, {**SALE, "revenue": 0.2}]
    first = api.post("/api/v2/history/revenue", json={"records": records}).json()
    second = api.post("/api/v2/history/revenue", json={"records": records}).json()
    assert first == second == {"success_count": 3, "error_count": 0, "errors": [], "total_revenue": 12.8}
    state = sandbox.state()
    assert (len(state["revenue"]), state["total_revenue"]) == (6, "25.6")  # a double import shows


def test_revenue_validation_and_references(api):
    records = [
        {**SALE, "message_id": None},
        {**SALE, "offer_id": ""},
        {k: v for k, v in SALE.items() if k != "revenue"},
        {**SALE, "revenue": -1},
        {**SALE, "revenue": "12"},
        {**SALE, "message_id": "unknown-m"},
        {**SALE, "offer_id": "unknown-o"},
        {**SALE, "message_id": "nocontact-m"},
    ]
    body = api.post("/api/v2/history/revenue", json={"records": records}).json()
    assert [e["code"] for e in body["errors"]] == [
        "missing_message_id",
        "missing_offer_id",
        "missing_revenue",
        "invalid_revenue",
        "invalid_revenue",
        "message_not_found",
        "offer_not_found",
        "contact_not_found",
    ]
    assert (body["success_count"], body["total_revenue"]) == (0, 0.0)


def test_a_fresh_account_knows_a_message_only_once_its_send_is_imported(api, sandbox):
    sandbox.require_sends()
    click = {**GOOD, "message_id": "s1"}
    before = post(api, [click]).json()
    api.post("/api/v2/history/sends", json={"records": [SEND]}).raise_for_status()
    after = post(api, [click]).json()
    sale = api.post("/api/v2/history/revenue", json={"records": [{**SALE, "message_id": "s1"}]}).json()
    assert [e["code"] for e in before["errors"]] == ["message_not_found"]
    assert (after["success_count"], sale["success_count"]) == (1, 1)

"""The sandbox's ``--help`` and docs/sandbox.md describe every route it serves and every setting it takes."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import fields

import httpx
import pytest

from tests.helpers import REPO
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.contacts import AccountSettings
from trackly_provider.sandbox.faults import FaultConfig
from trackly_provider.sandbox.server import ROUTES, serve

NOT_FOUND = {"error": "Not found", "code": "not_found"}


@pytest.fixture(scope="module")
def help_text() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "trackly_provider.sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def section(text: str, title: str) -> str:
    """The lines after the line starting with ``title``, up to the next blank line."""
    return text.split("\n" + title, 1)[1].split("\n\n", 1)[0]


@pytest.fixture
def own_sandbox() -> Iterator[str]:
    """A sandbox of its own: the control endpoints below change settings a reset does not restore."""
    server = serve("127.0.0.1", 0, SANDBOX_API_KEY)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_help_lists_every_route_of_the_routing_table_once(help_text):
    listed = re.findall(r"^  (GET|POST) +(/\S+) +\S", section(help_text, "endpoints"), re.M)
    assert len(listed) == len(set(listed)) == 11
    assert set(listed) == set(ROUTES)


def test_every_route_of_the_routing_table_is_served_and_no_other(own_sandbox):
    bodies = {"/_sandbox/record": b"true"}
    with httpx.Client(base_url=own_sandbox, headers={"X-Api-Key": SANDBOX_API_KEY}) as client:
        answers = {
            (method, path): client.request(method, path, content=bodies.get(path, b"{}"))
            if method == "POST"
            else client.get(path)
            for method, path in ROUTES
        }
        unrouted = [
            client.get("/api/v2/history/clicks"),
            client.post("/api/v2/lists", content=b"{}"),
            client.post("/api/v2/history/click", content=b"{}"),
            client.get("/_sandbox/counts/"),
            client.post("/_sandbox/state", content=b"{}"),
        ]
    assert {route: answer.status_code for route, answer in answers.items()} == {
        ("GET", "/api/v2/lists"): 200,
        ("POST", "/api/v2/history/sends"): 400,  # {} has no records: missing_records
        ("POST", "/api/v2/history/clicks"): 400,
        ("POST", "/api/v2/history/revenue"): 400,
        ("POST", "/api/v2/contacts/bulk"): 400,  # missing_contacts
        ("GET", "/_sandbox/counts"): 200,
        ("GET", "/_sandbox/state"): 200,
        ("POST", "/_sandbox/reset"): 200,
        ("POST", "/_sandbox/account"): 200,
        ("POST", "/_sandbox/faults"): 200,
        ("POST", "/_sandbox/record"): 200,
    }
    assert [(answer.status_code, answer.json()) for answer in unrouted] == [(404, NOT_FOUND)] * 5


def test_the_help_lists_every_account_setting_and_fault_setting_with_its_default(help_text):
    account = re.findall(r"^  (\w+) \(default (.+?)\): \S", section(help_text, "account settings"), re.M)
    assert account == [
        ("require_sends", "false"),
        ("require_contacts", "false"),
        ("billing", "false"),
        ("journey_lists", '["+18005550100"]'),
        ("enrol_regardless", "false"),
    ]
    assert [name for name, _ in account] == [each.name for each in fields(AccountSettings)]
    faults = re.findall(r"(\w+)=", section(help_text, "fault settings"))
    assert faults == [each.name for each in fields(FaultConfig)]


def test_docs_sandbox_md_lists_every_route_and_setting():
    page = (REPO / "docs" / "sandbox.md").read_text()
    routes = re.findall(r"^\| `(GET|POST) (/\S+)` \|", page, re.M)
    assert sorted(routes) == sorted(ROUTES)
    settings = re.findall(r"^\| `(\w+)` \| `", page, re.M)
    assert settings == [each.name for each in (*fields(AccountSettings), *fields(FaultConfig))]

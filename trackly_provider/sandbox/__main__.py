"""Run the sandbox: ``python -m trackly_provider.sandbox --port 8765``; ``--help`` lists every endpoint."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

from trackly_provider.sandbox import (
    CONTACTLESS_ID_PREFIX,
    NOT_SENDABLE_PREFIX,
    SANDBOX_API_KEY,
    SANDBOX_LIST_NUMBER,
    SECOND_LIST_NUMBER,
    UNKNOWN_ID_PREFIX,
    VALIDATION_FAILS_PREFIX,
)
from trackly_provider.sandbox.contacts import AccountSettings
from trackly_provider.sandbox.faults import FaultConfig
from trackly_provider.sandbox.server import serve

# What each route of server.ROUTES does (tests/integration/test_sandbox_cli.py keeps the two equal).
ENDPOINTS = {
    (
        "GET",
        "/api/v2/lists",
    ): f"the account's lists: {SANDBOX_LIST_NUMBER} (id 1), {SECOND_LIST_NUMBER} (id 2)",
    ("POST", "/api/v2/history/sends"): "import sends: one per id, a repeat is a duplicate",
    ("POST", "/api/v2/history/clicks"): "import clicks: one per message_id, a repeat is a duplicate",
    ("POST", "/api/v2/history/revenue"): "import revenue: every record is stored, repeats too",
    ("POST", "/api/v2/contacts/bulk"): "import contacts: an upsert by phone number and list",
    ("GET", "/_sandbox/counts"): "the numbers stored by entity, the total revenue, the import requests seen",
    ("GET", "/_sandbox/state"): "everything stored, every request received, the faults injected",
    ("POST", "/_sandbox/reset"): "forget everything; faults and account settings back to their defaults",
    ("POST", "/_sandbox/account"): 'set the account (below), e.g. {"require_sends": true}',
    ("POST", "/_sandbox/faults"): 'inject faults (below), e.g. {"html_503": 0.1, "latency_ms": 50}',
    ("POST", "/_sandbox/record"): "true or false: keep request bodies for /_sandbox/state (default true)",
}
ACCOUNT_SETTINGS = {
    "require_sends": "a click or revenue record needs its message imported as a send first",
    "require_contacts": "a send needs its list to exist, revenue its message's contact (a fresh account)",
    "billing": "a payment method on file; without one use_validation gets 402 no_payment_method",
    "journey_lists": "the list numbers with an active Welcome Journey",
    "enrol_regardless": "a misbehaving server: enrols contacts of those lists without use_journeys",
}


def _defaults(settings: type) -> dict[str, str]:
    """Each setting's default, as JSON."""
    return {
        each.name: json.dumps(list(each.default) if isinstance(each.default, tuple) else each.default)
        for each in fields(settings)
    }


def _paragraph(text: str) -> list[str]:
    return textwrap.wrap(text, width=100, initial_indent="  ", subsequent_indent="  ")


def epilog() -> str:
    """The endpoints, the account settings and the fault settings, one per line."""
    account = _defaults(AccountSettings)
    faults = ", ".join(f"{name}={value}" for name, value in _defaults(FaultConfig).items())
    return "\n".join(
        [
            "endpoints (/api/v2/* need the X-Api-Key header; /_sandbox/* need no key):",
            *(f"  {method:<5}{path:<26}{text}" for (method, path), text in ENDPOINTS.items()),
            "",
            "account settings (POST /_sandbox/account; a key left out takes its default):",
            *(f"  {name} (default {value}): {ACCOUNT_SETTINGS[name]}" for name, value in account.items()),
            "",
            "fault settings (POST /_sandbox/faults; the rates are shares 0..1 of import requests; a key",
            "left out takes its default; docs/sandbox.md says what each does):",
            *_paragraph(faults),
            "",
            "test data:",
            *_paragraph(
                f"Every message and offer id is known except those starting with '{UNKNOWN_ID_PREFIX}'; "
                f"revenue for a message starting with '{CONTACTLESS_ID_PREFIX}' finds no contact. Contacts "
                f"starting with {NOT_SENDABLE_PREFIX} are not_sendable; with use_validation (billing on) "
                f"those starting with {VALIDATION_FAILS_PREFIX} fail validation."
            ),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m trackly_provider.sandbox",
        description="A local Trackly-compatible server for demos, tests and trying a DAG without a key:\n"
        "the API's history, contacts and lists endpoints, and control endpoints under /_sandbox.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    parser.add_argument("--api-key", default=SANDBOX_API_KEY, help="the one key accepted")
    args = parser.parse_args(argv)
    server = serve(args.host, args.port, args.api_key)
    port = server.server_address[1]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.port_file:
        partial = args.port_file.with_suffix(".tmp")
        partial.write_text(f"{port}\n")
        partial.replace(args.port_file)  # atomic: a reader never sees a half-written port
    print(f"Trackly sandbox listening on http://{args.host}:{port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

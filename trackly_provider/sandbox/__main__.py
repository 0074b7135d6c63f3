"""Run the sandbox: ``python -m trackly_provider.sandbox --port 8765``."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from trackly_provider.sandbox import (
    NOT_SENDABLE_PREFIX,
    SANDBOX_API_KEY,
    SANDBOX_LIST_NUMBER,
    SECOND_LIST_NUMBER,
    UNKNOWN_ID_PREFIX,
    VALIDATION_FAILS_PREFIX,
)
from trackly_provider.sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m trackly_provider.sandbox",
        description="A local Trackly-compatible server: POST /api/v2/history/clicks, sends and revenue, "
        "POST /api/v2/contacts/bulk and GET /api/v2/lists. "
        f"Every message and offer id is known except those starting with '{UNKNOWN_ID_PREFIX}'. "
        f"The account's lists: {SANDBOX_LIST_NUMBER} (id 1, with a Welcome Journey) and {SECOND_LIST_NUMBER} "
        f"(id 2). Contacts starting with {NOT_SENDABLE_PREFIX} are not_sendable; with use_validation "
        f"(billing on) those starting with {VALIDATION_FAILS_PREFIX} fail validation. "
        "POST /_sandbox/account sets require_sends, require_contacts (a fresh account), billing, "
        "journey_lists and enrol_regardless.",
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

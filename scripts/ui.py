"""
``make ui``: the Airflow UI with the example DAGs, ready to click through, until Ctrl-C.

Starts what a newcomer's first Airflow is: ``airflow db migrate``, then api-server, scheduler,
dag-processor and triggerer (LocalExecutor, SQLite metadata) in ``.ui/airflow`` (git-ignored), the
api-server on 127.0.0.1, on ``UI_PORT`` or a free port, with ``AIRFLOW__API__BASE_URL`` to match.
Beside it: the Trackly sandbox, a SQLite source (``.ui/source.db``) holding ``sms_clicks`` for each
of the ``SEEDED_DAYS`` days before today, the example DAGs copied as shipped, and the connections
they use, created in Airflow's database (``airflow connections import``), so the Connections page
lists them and its Test button works: ``trackly_default`` (the sandbox, its port and its key),
``trackly_source`` (the source) and ``trackly_ledger`` (``.ui/ledger.db``, the migration's ledger).

Prints the URL, the login and what to try, then stays in the foreground; Ctrl-C (or SIGTERM) stops
everything it started. Each start begins afresh (a new Airflow home, source and sandbox); a second
``make ui`` while one runs stops at once, saying so. Components' logs: ``.ui/airflow/logs``.

The migration's other tables (``MIGRATION_TABLES``) are there, empty, so that its DAG runs (its
clicks as the click DAG's); ``make demo-migration`` shows a whole migration.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import sqlite3
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from e2e.deployment import ADMIN, Deployment, wait_for
from e2e.source import NULL_PHONE_PER_DAY, UNKNOWN_PER_DAY, VALID_PER_DAY, seed_sqlite
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.process import start_sandbox, stop_sandbox

REPO = Path(__file__).resolve().parent.parent
HOME = REPO / ".ui"
SOURCE_DB = HOME / "source.db"
# The migration DAG's other tables, as its docstring describes them (SQLite's types), left empty.
MIGRATION_TABLES = (
    "CREATE TABLE sms_contacts (phone_number TEXT, list_number TEXT, signup_date TEXT, ip_address TEXT, "
    "url TEXT, plan TEXT)",
    "CREATE TABLE sms_sends (message_id TEXT, to_number TEXT, list_id TEXT, message TEXT, delivered "
    "BOOLEAN, sent_at TEXT)",
    "CREATE TABLE sms_revenue (message_id TEXT, offer_id TEXT, revenue TEXT, payout TEXT, earned_at TEXT)",
)
LEDGER_DB = HOME / "ledger.db"
EXAMPLES = REPO / "dags_examples"
DAG_ID = "trackly_click_history_backfill"
SEEDED_DAYS = 14  # the source holds clicks for each of the 14 days before today
STARTUP_TIMEOUT = 180  # seconds for the api-server and the DAGs' first parse


def seeded_days(today: date) -> list[date]:
    """The days the source holds, oldest first: the ``SEEDED_DAYS`` days before ``today``."""
    return [today - timedelta(days=n) for n in range(SEEDED_DAYS, 0, -1)]


def connections(sandbox_url: str) -> dict[str, dict[str, str | int | None]]:
    """
    Every connection the example DAGs use, as ``airflow connections import`` reads them. The Port
    of ``trackly_default`` is the one in its Base URL: Airflow 3.3.2's Test button refuses an empty
    Port (docs/connection.md, "What the Test button checks").
    """
    port = urlsplit(sandbox_url).port
    return {
        "trackly_default": {
            "conn_type": "trackly",
            "host": sandbox_url,
            "port": port,
            "password": SANDBOX_API_KEY,
        },
        "trackly_source": {"conn_type": "sqlite", "host": str(SOURCE_DB)},
        "trackly_ledger": {"conn_type": "sqlite", "host": str(LEDGER_DB)},
    }


def next_steps(deployment: Deployment, sandbox_url: str, days: list[date], seconds: float) -> str:
    """What ``make ui`` prints once the DAGs are parsed: the URL, the login and what to try."""
    url = deployment.base_url
    first, last = days[-6], days[-4]
    rows, errors = VALID_PER_DAY + UNKNOWN_PER_DAY + NULL_PHONE_PER_DAY, UNKNOWN_PER_DAY + NULL_PHONE_PER_DAY
    return f"""
Airflow is ready ({seconds:.0f} s).
Airflow UI:  {url}
Log in:      {ADMIN} / {deployment.password}
Sandbox:     {sandbox_url} (what it stored: {sandbox_url}/_sandbox/counts)

Source: {SOURCE_DB.relative_to(REPO)}, sms_clicks for {days[0]}..{days[-1]}, {rows} rows a day:
{VALID_PER_DAY} valid, {UNKNOWN_PER_DAY} for messages Trackly does not know and
{NULL_PHONE_PER_DAY} without a phone number (rejected on purpose).

Try:
  1. {url}/connections: press Test on trackly_default's row; Edit shows its form (the Port is
     the Base URL's: Airflow 3.3.2's Test button needs it, docs/connection.md).
  2. {url}/dags/{DAG_ID}: Trigger, with start_date {first} and end_date {last}:
     one import_clicks per day, each {rows} rows read, {VALID_PER_DAY} imported, {errors} errors.
     Trigger the same range again: all {VALID_PER_DAY} come back as duplicates.
  3. Each import's counts: the task's XCom tab; rejected rows: trackly_rejects in the source.
  4. trackly_history_migration runs nothing until triggered with a range (the same dates work):
     its contacts, sends and revenue tables are empty here, its clicks are the ones above.
     make demo-migration shows a whole migration.

Logs: {deployment.home.relative_to(REPO)}/logs. Ctrl-C stops Airflow and the sandbox.
"""


def _stop(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C (SIGINT) or SIGTERM: leave the foreground loop, stopping what was started."""
    raise KeyboardInterrupt


def main() -> int:
    started = time.monotonic()
    HOME.mkdir(exist_ok=True)
    lock = (HOME / "ui.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"make ui is already running on this clone (it holds {HOME / 'ui.lock'}); stop it first.")
        return 1
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us with it ignored
        signal.signal(signum, _stop)
    port = int(os.environ.get("UI_PORT") or 0) or None
    deployment = Deployment(HOME / "airflow", {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}, port)
    days = seeded_days(datetime.now(timezone.utc).date())
    seed_sqlite(SOURCE_DB, dict.fromkeys(days, VALID_PER_DAY))
    with contextlib.closing(sqlite3.connect(SOURCE_DB)) as conn, conn:
        for create in MIGRATION_TABLES:
            conn.execute(create)
    LEDGER_DB.unlink(missing_ok=True)
    for dag in sorted(EXAMPLES.glob("*.py")):
        shutil.copy(dag, deployment.home / "dags" / dag.name)
    sandbox, sandbox_url = start_sandbox(HOME)
    try:
        print(
            f"Starting Airflow in {deployment.home.relative_to(REPO)} on {deployment.base_url} ...",
            flush=True,
        )
        deployment.airflow("db", "migrate")
        imported = deployment.home / "connections.json"
        imported.write_text(json.dumps(connections(sandbox_url)))
        deployment.airflow("connections", "import", str(imported))
        imported.unlink()
        deployment.start_core(migrate=False)
        deployment.start("triggerer", "triggerer")
        wait_for("the example DAGs to be parsed", lambda: dags_parsed(deployment), STARTUP_TIMEOUT)
        print(next_steps(deployment, sandbox_url, days, time.monotonic() - started), flush=True)
        while True:
            deployment.check_running()
            if sandbox.poll() is not None:
                raise RuntimeError(f"the Trackly sandbox exited with {sandbox.returncode}")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping Airflow and the sandbox ...", flush=True)
    finally:
        deployment.stop()
        stop_sandbox(sandbox)
    print("Stopped.")
    return 0


def dags_parsed(deployment: Deployment) -> bool:
    """Whether every example DAG is in the API (the dag-processor parsed its file)."""
    deployment.check_running()
    found = {dag["dag_id"] for dag in deployment.api("GET", "/api/v2/dags", params={"limit": 100})["dags"]}
    return {path.stem for path in EXAMPLES.glob("*.py")} <= found


if __name__ == "__main__":
    sys.exit(main())

"""
The migration DAG's catchup in a real deployment: contacts one run after the other, overlapping
runs and late-row re-imports of revenue, into a fresh account where revenue needs its contact.

``trackly_history_migration`` catches up over 4 days with ``max_active_runs`` 4, and each scheduled
run imports the two days before its own again (late rows): the first day is imported by three
runs, which start together. Each run first imports the contacts who signed up in its days (the
first run also the earlier ones and those without a signup date); ``depends_on_past`` makes each
run's ``import_contacts`` wait for the previous run's. Trackly stores revenue every time it
receives it, so the revenue imports would count a day twice if they sent it at once; the ledger's
partition lock makes the later ones wait for the one importing the day, then send only what it did
not confirm. An API answering in about a second makes each import last long enough for the runs
to meet. Checked: every task succeeded at its first try; each run's contacts started after the
previous run's ended and created exactly the contacts of its own days (the rest updated); each
valid revenue record was imported by exactly one import of its day; and the sandbox holds every
contact once and the source's revenue to the cent. Reported: how long imports waited.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

from e2e.deployment import Deployment, wait_for
from e2e.source import nightly_days, set_faults
from tests.databases import postgres_dsn
from trackly_provider.sandbox import SANDBOX_LIST_NUMBER

REPO = Path(__file__).resolve().parent.parent
MIGRATION_DAG = REPO / "dags_examples" / "trackly_history_migration.py"
MIGRATION_DAG_ID = "trackly_history_migration"
SOURCE_CONN_ID = "trackly_migration_source"  # the deployed copy reads its own database, not the clicks'
DAYS = 4
SENDS_PER_DAY = 2000  # two requests a day; every message has a click every other one, and revenue
# Each day's messages go to contacts of their own, +1<202 + the day's index>555<c>, each receiving
# every CONTACTS_PER_DAY-th message, signed up an hour before its first (so the first hour's
# contacts sign up the day before). Few contacts and many revenue records, as in a real account:
# a run's contacts are one request, while a day's revenue, sent in REVENUE_BATCH_SIZE batches
# (21 requests), lasts longer than the wait between two runs' contacts; so the runs' revenue
# imports of a day still meet although their contacts go one run after the other.
CONTACTS_PER_DAY = 200
SIGNUP_BEFORE_SEND = timedelta(hours=1)
UNDATED_EVERY = 100  # contacts 7 and 107 of each day have no signup_date: the first runs import them
REVENUE_BATCH_SIZE = 100
CLICKS_PER_DAY = SENDS_PER_DAY // 2
REVENUE_ERRORS = {"invalid_revenue": 1, "offer_not_found": 1}  # a negative amount, an unknown offer
LATENCY_MS = 1000  # per request: a day's revenue import takes ~6 s, so imports of a day meet
RUNS_TIMEOUT = 300
TASKS = ("import_sends", "import_clicks", "import_revenue")
PARTITIONED_BY = {
    "sms_contacts": "signup_date",
    "sms_sends": "sent_at",
    "sms_clicks": "clicked_at",
    "sms_revenue": "earned_at",
}


def deploy_migration_dag(deployment: Deployment, start_date: date) -> None:
    """
    The DAG as shipped, scheduled daily with catchup from ``start_date`` (``SCHEDULE`` and ``CATCHUP``
    set as a user who wants a catchup sets them), reading ``SOURCE_CONN_ID``, and revenue sent in
    batches of ``REVENUE_BATCH_SIZE`` (a day as long as a real account's many thousands).
    """
    deployment.deploy_example(
        MIGRATION_DAG,
        start_date,
        {
            "ledger_lock_timeout=LEDGER_LOCK_TIMEOUT,": (
                f"ledger_lock_timeout=LEDGER_LOCK_TIMEOUT, batch_size={REVENUE_BATCH_SIZE},"
            ),
        },
        {"SCHEDULE": "NIGHTLY", "SOURCE_CONN_ID": f'"{SOURCE_CONN_ID}"'},
    )


def seed_migration(database: str, days: list[date]) -> None:
    """
    ``sms_contacts``, ``sms_sends``, ``sms_clicks`` and ``sms_revenue`` for ``days``: the day's
    contacts, each message sent, every other one clicked, each earning revenue (to the cent); plus,
    each day, a negative revenue (rejected before sending) and one for an offer Trackly does not
    know (rejected by Trackly).
    """
    with psycopg.connect(postgres_dsn(database), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE sms_contacts (phone_number TEXT, list_number TEXT, signup_date TIMESTAMPTZ, "
            "ip_address TEXT, url TEXT, plan TEXT)"
        )
        conn.execute(
            "CREATE TABLE sms_sends (message_id TEXT, to_number TEXT, list_id TEXT, message TEXT, "
            "delivered BOOLEAN, sent_at TIMESTAMPTZ)"
        )
        conn.execute(
            "CREATE TABLE sms_clicks (message_id TEXT, offer_id TEXT, phone_number TEXT, "
            "sent_at TIMESTAMPTZ, clicked_at TIMESTAMPTZ)"
        )
        conn.execute(
            "CREATE TABLE sms_revenue (message_id TEXT, offer_id TEXT, revenue NUMERIC(14, 4), "
            "payout NUMERIC(14, 4), earned_at TIMESTAMPTZ)"
        )
        for table, column in PARTITIONED_BY.items():
            conn.execute(f"CREATE INDEX ON {table} ({column})")
        with conn.cursor() as cur:
            for index, day in enumerate(days):
                for table, rows in zip(PARTITIONED_BY, day_rows(day, index), strict=True):
                    with cur.copy(f"COPY {table} FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)


def day_rows(day: date, index: int) -> tuple[list[tuple[Any, ...]], ...]:
    """The contacts, sends, clicks and revenue of the ``index``-th day of the migration."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    contacts: list[tuple[Any, ...]] = []
    sends: list[tuple[Any, ...]] = []
    clicks: list[tuple[Any, ...]] = []
    revenue: list[tuple[Any, ...]] = []
    for n in range(SENDS_PER_DAY):
        message_id, phone = f"mig-{day:%Y%m%d}-{n:05d}", f"+1{202 + index}555{n % CONTACTS_PER_DAY:04d}"
        sent = midnight + timedelta(seconds=n * 80_000 // SENDS_PER_DAY)
        if n < CONTACTS_PER_DAY:  # the contact's first message
            signup = None if n % UNDATED_EVERY == 7 else sent - SIGNUP_BEFORE_SEND
            contacts.append(
                (phone, SANDBOX_LIST_NUMBER, signup, "192.0.2.1", "https://example.com/join", "gold")
            )
        sends.append((message_id, phone, "1", f"Offer {n % 9}", n % 10 != 0, sent))
        if n % 2 == 0:
            clicks.append((message_id, f"offer-{n % 9}", phone, sent, sent + timedelta(minutes=1)))
        amount = Decimal(100 + n * 7919 % 99_900) / 100
        revenue.append((message_id, f"offer-{n % 9}", amount, amount / 4, sent + timedelta(minutes=2)))
    revenue.append((f"mig-{day:%Y%m%d}-00001", "offer-1", Decimal("-5.00"), None, midnight))
    revenue.append((f"mig-{day:%Y%m%d}-00003", "unknown-offer", Decimal("9.99"), None, midnight))
    return contacts, sends, clicks, revenue


def expected_contacts(days: list[date], run_days: list[date]) -> tuple[int, int]:
    """
    What a run whose planned days are ``run_days`` imports: (rows read, contacts created). It reads
    the signups of its days, and, when they start at the first day, the earlier and undated ones;
    it creates those no earlier run read (runs import contacts oldest first).
    """
    signups = [row[2] for index, day in enumerate(days) for row in day_rows(day, index)[0]]
    start = datetime(run_days[0].year, run_days[0].month, run_days[0].day, tzinfo=timezone.utc)
    end = datetime(run_days[-1].year, run_days[-1].month, run_days[-1].day, tzinfo=timezone.utc)
    end += timedelta(days=1)
    from_first_day = run_days[0] == days[0]
    read = [
        s
        for s in signups
        if (s is None and from_first_day) or (s is not None and s < end and (from_first_day or s >= start))
    ]
    before = end - timedelta(days=1)  # what the previous run (one day earlier) read up to
    created = [s for s in read if s is not None and s >= before] if run_days[-1] != days[0] else read
    return len(read), len(created)


def source_revenue(database: str) -> tuple[int, Decimal]:
    """The source's valid revenue rows (an amount >= 0, an offer Trackly knows): how many, and their sum."""
    with psycopg.connect(postgres_dsn(database)) as conn:
        count, total = conn.execute(
            "SELECT COUNT(*), SUM(revenue) FROM sms_revenue "
            "WHERE revenue >= 0 AND offer_id NOT LIKE 'unknown%'"
        ).fetchone() or (0, None)
    return int(count), Decimal(total or 0)


def fresh_account(sandbox_url: str, fresh: bool = True) -> None:
    """A fresh account (or not): sends need their list, clicks and revenue their send, revenue its contact."""
    body = {"require_sends": fresh, "require_contacts": fresh}
    httpx.post(f"{sandbox_url}/_sandbox/account", json=body, timeout=30).raise_for_status()


def catch_up(deployment: Deployment, sandbox_url: str, database: str, first_day: date) -> str:
    """
    Unpause the DAG, let catchup run its ``DAYS`` runs (up to 4 at once) against a slow API, check
    what each import and the sandbox report, and return the report's notes on contacts and waiting.
    """
    fresh_account(sandbox_url)
    set_faults(sandbox_url, latency_ms=LATENCY_MS)
    try:
        deployment.airflow("dags", "unpause", MIGRATION_DAG_ID)
        runs = wait_for(f"{DAYS} scheduled runs", lambda: scheduled_runs(deployment), timeout=120)
        deadline = datetime.now(timezone.utc) + timedelta(seconds=RUNS_TIMEOUT)
        for run in runs:
            left = (deadline - datetime.now(timezone.utc)).total_seconds()
            run.update(deployment.wait_for_run(run["dag_run_id"], max(left, 1), MIGRATION_DAG_ID))
    finally:
        set_faults(sandbox_url, latency_ms=0)
        fresh_account(sandbox_url, False)
    failed = [(run["dag_run_id"], *task) for run in runs for task in failed_tasks(deployment, run)]
    check_stored(sandbox_url, database, failed)
    assert not failed and all(run["state"] == "success" for run in runs), failed
    contacts = check_contacts(deployment, runs, first_day)
    imports = [one for run in runs for one in run_imports(deployment, run, first_day)]
    return contacts + " " + waiting_note(check_imports(imports))


def scheduled_runs(deployment: Deployment) -> list[dict[str, Any]] | None:
    runs = [run for run in deployment.dag_runs(MIGRATION_DAG_ID) if run["run_type"] == "scheduled"]
    return sorted(runs, key=lambda run: run["data_interval_start"]) if len(runs) >= DAYS else None


def failed_tasks(deployment: Deployment, run: dict[str, Any]) -> list[tuple[str, int, str]]:
    """The task instances of a finished run that did not succeed: (task, map index, state)."""
    path = f"/api/v2/dags/{MIGRATION_DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances"
    tis = deployment.api("GET", path, params={"limit": 500})["task_instances"]
    return [(ti["task_id"], ti["map_index"], ti["state"]) for ti in tis if ti["state"] != "success"]


def run_imports(deployment: Deployment, run: dict[str, Any], first_day: date) -> list[dict[str, Any]]:
    """Each import of a finished run: its task, day, try, duration and XCom summary."""
    days = nightly_days(datetime.fromisoformat(run["data_interval_start"]).date(), first_day)
    found = []
    for task in TASKS:
        tis = deployment.task_results(run["dag_run_id"], f"migrate_day.{task}", MIGRATION_DAG_ID)
        assert [ti["map_index"] for ti, _ in tis] == list(range(len(days))), (run["dag_run_id"], task, tis)
        for ti, counts in tis:
            found.append(
                {
                    "run": run["dag_run_id"],
                    "task": task,
                    "day": days[ti["map_index"]],  # the run's own day is the last map index
                    "try_number": ti["try_number"],
                    "duration": ti["duration"],
                    "counts": counts,
                }
            )
    return found


def check_contacts(deployment: Deployment, runs: list[dict[str, Any]], first_day: date) -> str:
    """
    Each run's ``import_contacts`` succeeded at its first try, started after the previous run's
    ended (``depends_on_past``), read its days' signups (the first days' runs: the earlier and
    undated ones too) and created exactly those no earlier run read; return the report's note.
    """
    days = [first_day + timedelta(days=n) for n in range(DAYS)]
    previous_end: datetime | None = None
    created = []
    for run in runs:  # oldest first
        ((ti, counts),) = deployment.task_results(run["dag_run_id"], "import_contacts", MIGRATION_DAG_ID)
        where = (run["dag_run_id"], ti["try_number"], counts)
        assert ti["try_number"] == 1 and ti["state"] == "success" and counts is not None, where
        started, ended = (datetime.fromisoformat(ti[key]) for key in ("start_date", "end_date"))
        if previous_end is not None:
            assert started >= previous_end, (where, started, previous_end)
        previous_end = ended
        run_days = nightly_days(datetime.fromisoformat(run["data_interval_start"]).date(), first_day)
        read, new = expected_contacts(days, run_days)
        found = (counts["rows_read"], counts["list_contacts_created"], counts["contacts_updated"])
        assert found == (read, new, read - new) and counts["error_count"] == 0, (where, read, new)
        created.append(new)
    return (
        f"import_contacts ran one run after the other (each started after the previous run's ended) "
        f"and created, per run, {created} contacts: the first its days' and every earlier and undated "
        "signup, each later one its own day's; so every revenue record found its contact."
    )


def check_imports(imports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """
    Every import succeeded at its first try with counts that add up, and each valid revenue record
    of a day was imported by exactly one import of that day (the others found it in the ledger).
    Return the revenue imports.
    """
    expected = {"import_sends": SENDS_PER_DAY, "import_clicks": CLICKS_PER_DAY}
    revenue_valid = SENDS_PER_DAY
    imported: defaultdict[date, int] = defaultdict(int)
    revenue = []
    for one in imports:
        counts, where = one["counts"], (one["run"], one["task"], str(one["day"]))
        assert one["try_number"] == 1 and counts is not None, (where, one)
        if one["task"] != "import_revenue":
            valid = expected[one["task"]]
            assert counts["rows_read"] == valid and counts["error_count"] == 0, (where, counts)
            assert counts["success_count"] + counts["duplicates_skipped"] == valid, (where, counts)
            continue
        ledger = counts["ledger"]
        assert counts["rows_read"] == revenue_valid + sum(REVENUE_ERRORS.values()), (where, counts)
        assert counts["errors_by_code"] == REVENUE_ERRORS, (where, counts)  # no outcome_unknown
        assert counts["success_count"] + counts["duplicates_skipped"] == revenue_valid, (where, counts)
        assert ledger["skipped_confirmed"] == counts["duplicates_skipped"], (where, counts)
        assert str(one["day"]) in ledger["partition"], (where, ledger)
        imported[one["day"]] += counts["success_count"]
        revenue.append(one)
    assert len(revenue) == len(imports) // len(TASKS), [one["task"] for one in imports]
    assert dict(imported) == dict.fromkeys(imported, revenue_valid) and len(imported) == DAYS, imported
    return revenue


def check_stored(sandbox_url: str, database: str, failed: list[tuple[str, str, int, str]]) -> None:
    """
    The sandbox holds each contact, and each day's sends, clicks and valid revenue once: the
    source's total, exactly (checked first, whatever failed: ``failed`` is only shown).
    """
    state = httpx.get(f"{sandbox_url}/_sandbox/state", timeout=60).json()
    assert (len(state["contacts"]), len(state["list_contacts"])) == (DAYS * CONTACTS_PER_DAY,) * 2
    count, total = source_revenue(database)
    assert count == DAYS * SENDS_PER_DAY, count
    stored = (len(state["revenue"]), Decimal(state["total_revenue"]))  # nothing else sent revenue
    assert stored == (count, total), f"stored {stored}, source {(count, total)}; not successful: {failed}"
    assert sum(message_id.startswith("mig-") for message_id in state["sends"]) == DAYS * SENDS_PER_DAY
    assert sum(message_id.startswith("mig-") for message_id in state["clicks"]) == DAYS * CLICKS_PER_DAY


def waiting_note(revenue: list[dict[str, Any]]) -> str:
    """
    What the report says of the waits; fails when no import waited (the runs did not meet).

    The import that sent a day took its lock first, so it waited for no other import of the day.
    """
    senders = [one for one in revenue if one["counts"]["success_count"]]
    assert all(one["counts"]["ledger"]["lock_waited_seconds"] == 0.0 for one in senders), senders
    waits = [one["counts"]["ledger"]["lock_waited_seconds"] for one in revenue if one not in senders]
    waited = [seconds for seconds in waits if seconds > 0]
    assert waited, f"no revenue import waited for the one sending its day: {waits}"
    per_day: defaultdict[str, list[float]] = defaultdict(list)  # by run: the day's own run first
    for one in sorted(revenue, key=lambda one: one["run"]):
        per_day[str(one["day"])].append(one["counts"]["ledger"]["lock_waited_seconds"])
    took = [one["duration"] for one in senders]
    return (
        f"{MIGRATION_DAG_ID}: catchup of {DAYS} days, {DAYS} runs at once, the API answering in "
        f"{LATENCY_MS / 1000:g} s. {len(revenue)} revenue imports: {len(senders)} sent a day (in "
        f"{min(took):.1f} to {max(took):.1f} s), {len(waits)} imported a day again (late rows), and "
        f"{len(waited)} of these waited for the one sending it: {sum(waited):.1f} s in all, at most "
        f"{max(waited):.1f} s, then skipped every record the first had stored. lock_waited_seconds "
        f"per day, its own run first: {dict(per_day)}. The sandbox holds {DAYS * SENDS_PER_DAY:,} "
        "revenue records, each valid row once: the source's valid total to the cent."
    )

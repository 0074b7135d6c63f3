"""
``make demo-migration``: contacts, then two days of sends, clicks and revenue, into a fresh sandbox
account where revenue needs its contact; a rerun then changes nothing in Trackly.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from demo import DEMO, REPO, output_to, sqlite_text  # scripts/demo.py: the same Airflow home

from trackly_provider.sandbox import NOT_SENDABLE_PREFIX, SANDBOX_API_KEY, SANDBOX_LIST_NUMBER
from trackly_provider.sandbox.process import running_sandbox

SOURCE_DB = DEMO / "migration-source.db"
LEDGER_DB = DEMO / "migration-ledger.db"
RUN_LOG = DEMO / "airflow-migration.log"
DAG_FILE = REPO / "dags_examples" / "trackly_history_migration.py"
DAYS = [date(2025, 11, 1), date(2025, 11, 2)]
SENDS_PER_DAY = 600
ENTITIES = ("sends", "clicks", "revenue")
UNKNOWN_LIST = "+18005550199"  # a list number the sandbox account does not have: list_not_found
UNDATED_SENDS = (21, 23, 25, 27, 29)  # day 1's messages whose contacts have no signup_date
OVERSIZED_SEND = 13  # day 1's message whose contact is over 4,000 bytes: its revenue finds no contact
# What a fresh account holds and a rerun must leave as it is.
UNCHANGED = ("contacts", "list_contacts", "sends", "clicks", "revenue", "total_revenue")


def day_rows(day: date, rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """
    A day of sends, clicks and revenue with known problems: a send to a number that is not E.164 and
    one to an unknown list (their clicks and revenue then find no message), clicks on a message never
    sent, a click recorded twice, a negative revenue and revenue for an unknown offer.
    """
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    rows: dict[str, list[tuple[Any, ...]]] = {entity: [] for entity in ENTITIES}
    for n in range(SENDS_PER_DAY):
        message_id = f"msg-{day:%Y%m%d}-{n:05d}"
        sent = midnight + timedelta(seconds=rng.randrange(80_000))
        to_number = f"+1{rng.randrange(201, 990)}555{rng.randrange(10_000):04d}"
        list_id = "1"
        if n == 7:
            to_number = to_number[1:]  # no leading +: rejected before it is sent (invalid_phone)
        if n == 8:
            list_id = "99"  # Trackly has no such list: list_not_found
        rows["sends"].append(
            (message_id, to_number, list_id, f"Offer {n % 9} for you", n % 10 != 0, sqlite_text(sent))
        )
        if n % 3 == 2 and n not in (7, 8):
            continue  # not clicked
        clicked = sent + timedelta(seconds=rng.randrange(30, 3000))
        rows["clicks"].append(
            (message_id, f"offer-{n % 9}", to_number, sqlite_text(sent), sqlite_text(clicked))
        )
        if n % 2 or n in (7, 8):
            earned = clicked + timedelta(seconds=rng.randrange(60, 600))
            revenue = Decimal(rng.randrange(100, 5000)) / 100
            rows["revenue"].append((message_id, f"offer-{n % 9}", revenue, revenue / 4, sqlite_text(earned)))
    never_sent = f"msg-{day:%Y%m%d}-never-sent"
    rows["clicks"].append(
        (never_sent, "offer-1", "+12025550100", None, sqlite_text(midnight + timedelta(hours=3)))
    )
    rows["clicks"].append(rows["clicks"][10])  # recorded twice: the second is a duplicate
    rows["revenue"].append(
        ("msg-" + f"{day:%Y%m%d}-00001", "offer-1", Decimal("-5.00"), None, sqlite_text(midnight))
    )
    rows["revenue"].append(
        (f"msg-{day:%Y%m%d}-00003", "unknown-offer", Decimal("9.99"), None, sqlite_text(midnight))
    )
    return rows


def contact_rows(sends: list[tuple[Any, ...]], rng: random.Random) -> tuple[list[tuple[Any, ...]], set[str]]:
    """
    One contact per number the valid sends went to, signed up between an hour and 20 days before
    its first message (some before the first day), with consent evidence and a ``plan``; the
    contacts of ``UNDATED_SENDS`` have no signup_date, and ``OVERSIZED_SEND``'s is over 4,000 bytes.
    Then the known problems: three numbers that are not E.164 and a list the account does not have.
    Returns the rows and the numbers Trackly will hold as contacts (not those the sandbox's carrier
    check refuses, ``not_sendable``: a random area code 555).
    """
    first_sent: dict[str, str] = {}
    for _, to_number, list_id, _, _, sent_at in sends:
        if to_number.startswith("+") and list_id == "1":
            first_sent[to_number] = min(sent_at, first_sent.get(to_number, sent_at))
    undated = {sends[n][1] for n in UNDATED_SENDS}
    oversized = sends[OVERSIZED_SEND][1]
    rows: list[tuple[Any, ...]] = []
    for number, sent_at in sorted(first_sent.items()):
        signup = datetime.fromisoformat(sent_at) - timedelta(seconds=rng.randrange(3600, 20 * 86_400))
        plan = "x" * 5000 if number == oversized else rng.choice(["gold", "silver", None])
        rows.append(
            (
                number,
                SANDBOX_LIST_NUMBER,
                None if number in undated else sqlite_text(signup),
                f"198.51.100.{rng.randrange(1, 255)}",
                "https://example.com/join",
                plan,
            )
        )
    october = "2025-10-15 12:00:00"
    for bad_number in ("not a number", "+1202555", "2025550143"):  # not E.164: invalid_phone
        rows.append((bad_number, SANDBOX_LIST_NUMBER, october, None, None, None))
    rows.append(("+12025550188", UNKNOWN_LIST, october, None, None, None))  # Trackly: list_not_found
    refused = {number for number in first_sent if number.startswith(NOT_SENDABLE_PREFIX)}
    return rows, set(first_sent) - {oversized} - refused


def seed_source() -> tuple[Decimal, int]:
    """
    Create the four tables; return the revenue Trackly should end up with (valid rows whose message
    was sent to a valid contact) and the number of valid contacts.
    """
    SOURCE_DB.unlink(missing_ok=True)
    LEDGER_DB.unlink(missing_ok=True)
    rng = random.Random(20251101)
    expected = Decimal(0)
    days = {day: day_rows(day, rng) for day in DAYS}
    contacts, valid_contacts = contact_rows(days[DAYS[0]]["sends"] + days[DAYS[1]]["sends"], rng)
    with contextlib.closing(sqlite3.connect(SOURCE_DB)) as conn, conn:
        conn.execute(
            "CREATE TABLE sms_contacts (phone_number TEXT, list_number TEXT, signup_date TEXT, "
            "ip_address TEXT, url TEXT, plan TEXT)"
        )
        conn.executemany("INSERT INTO sms_contacts VALUES (?, ?, ?, ?, ?, ?)", contacts)
        conn.execute(
            "CREATE TABLE sms_sends (message_id TEXT, to_number TEXT, list_id TEXT, message TEXT, "
            "delivered BOOLEAN, sent_at TEXT)"
        )
        conn.execute(
            "CREATE TABLE sms_clicks (message_id TEXT, offer_id TEXT, phone_number TEXT, sent_at TEXT, "
            "clicked_at TEXT)"
        )
        conn.execute(
            "CREATE TABLE sms_revenue (message_id TEXT, offer_id TEXT, revenue TEXT, payout TEXT, "
            "earned_at TEXT)"
        )
        for day, rows in days.items():
            conn.executemany("INSERT INTO sms_sends VALUES (?, ?, ?, ?, ?, ?)", rows["sends"])
            conn.executemany("INSERT INTO sms_clicks VALUES (?, ?, ?, ?, ?)", rows["clicks"])
            conn.executemany(
                "INSERT INTO sms_revenue VALUES (?, ?, ?, ?, ?)",
                [(m, o, str(r), None if p is None else str(p), t) for m, o, r, p, t in rows["revenue"]],
            )
            bad_messages = {f"msg-{day:%Y%m%d}-00007", f"msg-{day:%Y%m%d}-00008"}
            recipient = {send[0]: send[1] for send in rows["sends"]}
            expected += sum(
                (
                    r
                    for m, o, r, _, _ in rows["revenue"]
                    if r >= 0
                    and m not in bad_messages
                    and o != "unknown-offer"
                    and recipient[m] in valid_contacts
                ),
                Decimal(0),
            )
    return expected, len(valid_contacts)


Results = dict[str, tuple[str, dict[str, Any] | None]]  # entity -> (task state, XCom summary)


def run_day(dag: Any, day: date) -> Results:
    """
    Run the DAG for one day, as a manual range of that day (the DAG may have no schedule); each
    entity's task state and XCom summary (its own day's, when mapped).
    """
    end_of_day = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    with output_to(RUN_LOG):
        run = dag.test(logical_date=end_of_day, run_conf={"start_date": str(day), "end_date": str(day)})
    results = {}
    for ti in sorted(run.get_task_instances(), key=lambda ti: ti.map_index):  # the run's day is the last
        entity = ti.task_id.rpartition("import_")[2]
        if entity in (*ENTITIES, "contacts"):
            results[entity] = (str(ti.state), ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index))
    return results


def codes(x: dict[str, Any]) -> str:
    return ", ".join(f"{code} {count}" for code, count in sorted(x["errors_by_code"].items()))


def print_contacts(runs: list[tuple[str, Results]]) -> None:
    header = (
        f"{'run':<22}{'contacts':>9}{'created':>9}{'updated':>9}{'errors':>8}{'no signup':>11}"
        "  state, errors by code"
    )
    print(header)
    print("-" * len(header))
    for label, results in runs:
        state, x = results.get("contacts", ("missing", None))
        x = x or {"rows_read": 0, "list_contacts_created": 0, "contacts_updated": 0, "error_count": 0}
        listed = codes(x) if "errors_by_code" in x else ""
        print(
            f"{label:<22}{x['rows_read']:>9}{x['list_contacts_created']:>9}{x['contacts_updated']:>9}"
            f"{x['error_count']:>8}{x.get('records_without_signup_date', 0):>11}  {state}"
            f"{', ' + listed if listed else ''}"
        )


def print_table(runs: list[tuple[str, Results]]) -> None:
    header = (
        f"{'run':<22}{'entity':<9}{'rows':>6}{'imported':>10}{'duplicates':>12}{'errors':>8}"
        "  state, errors by code"
    )
    print(header)
    print("-" * len(header))
    for label, results in runs:
        for entity in ENTITIES:
            state, x = results.get(entity, ("missing", None))
            x = x or {
                "rows_read": 0,
                "success_count": 0,
                "duplicates_skipped": 0,
                "error_count": 0,
                "errors_by_code": {},
            }
            listed = codes(x)
            print(
                f"{label:<22}{entity:<9}{x['rows_read']:>6}{x['success_count']:>10}{x['duplicates_skipped']:>12}"
                f"{x['error_count']:>8}  {state}{', ' + listed if listed else ''}"
            )
            label = ""


def main() -> int:
    started = time.monotonic()
    DEMO.mkdir(exist_ok=True)
    RUN_LOG.write_text("")
    expected_revenue, expected_contacts = seed_source()
    print(
        f"Seeded {SOURCE_DB.relative_to(REPO)}: sms_contacts (with 3 numbers that are not E.164, one "
        f"unknown list, one contact over 4,000 bytes and {len(UNDATED_SENDS)} without signup_date), "
        f"sms_sends, sms_clicks and sms_revenue for {DAYS[0]}..{DAYS[-1]}."
    )
    airflow = Path(sys.executable).parent / "airflow"
    with RUN_LOG.open("a") as log:
        subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=log, stderr=log)
    with running_sandbox(DEMO) as url:
        os.environ["AIRFLOW_CONN_TRACKLY_DEFAULT"] = json.dumps(
            {"conn_type": "trackly", "host": url, "password": SANDBOX_API_KEY}
        )
        os.environ["AIRFLOW_CONN_TRACKLY_SOURCE"] = json.dumps(
            {"conn_type": "sqlite", "host": str(SOURCE_DB)}
        )
        os.environ["AIRFLOW_CONN_TRACKLY_LEDGER"] = json.dumps(
            {"conn_type": "sqlite", "host": str(LEDGER_DB)}
        )
        # A fresh account: sends need their list, clicks and revenue their send, revenue its contact.
        httpx.post(
            f"{url}/_sandbox/account", json={"require_sends": True, "require_contacts": True}
        ).raise_for_status()
        print(
            f"Trackly sandbox at {url} (a fresh account: revenue needs its contact); running "
            f"{DAG_FILE.stem} (Airflow's log: {RUN_LOG.relative_to(REPO)})"
        )
        import importlib.util

        spec = importlib.util.spec_from_file_location("trackly_history_migration", DAG_FILE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        runs = [(f"{day}", run_day(module.dag, day)) for day in DAYS]
        before = httpx.get(f"{url}/_sandbox/state").json()
        runs.append((f"{DAYS[-1]} again", run_day(module.dag, DAYS[-1])))
        state = httpx.get(f"{url}/_sandbox/state").json()
    print()
    print_contacts(runs)
    print()
    print_table(runs)
    stored = Decimal(state["total_revenue"])
    changed = [key for key in UNCHANGED if state[key] != before[key]]
    print(
        f"\nTrackly now holds {len(state['contacts'])} contacts ({len(state['list_contacts'])} list "
        f"contacts; the source's valid ones: {expected_contacts}), {len(state['sends'])} sends, "
        f"{len(state['clicks'])} clicks and {len(state['revenue'])} revenue records; revenue {stored} "
        f"(the source's valid rows: {expected_revenue})."
    )
    if changed:
        print(f"The rerun of {DAYS[-1]} changed Trackly's {', '.join(changed)}: it must change nothing.")
    else:
        print(
            f"The rerun of {DAYS[-1]} changed nothing in Trackly: the same contacts and list contacts "
            "(updated in place), sends, clicks and revenue."
        )
    print(f"Done in {time.monotonic() - started:.0f} s.")
    ok = all(state == "success" for _, results in runs for state, _ in results.values())
    complete = all(len(results) == len(ENTITIES) + 1 for _, results in runs)
    held = (len(state["contacts"]), stored) == (expected_contacts, expected_revenue)
    return 0 if ok and complete and held and not changed else 1


if __name__ == "__main__":
    sys.exit(main())

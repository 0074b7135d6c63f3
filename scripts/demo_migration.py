"""``make demo-migration``: sends, clicks and revenue of two days into a fresh sandbox account, in order."""

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

from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.process import running_sandbox

SOURCE_DB = DEMO / "migration-source.db"
LEDGER_DB = DEMO / "migration-ledger.db"
RUN_LOG = DEMO / "airflow-migration.log"
DAG_FILE = REPO / "dags_examples" / "trackly_history_migration.py"
DAYS = [date(2025, 11, 1), date(2025, 11, 2)]
SENDS_PER_DAY = 600
ENTITIES = ("sends", "clicks", "revenue")


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


def seed_source() -> Decimal:
    """Create the three tables; return the revenue Trackly should end up with (valid rows only)."""
    SOURCE_DB.unlink(missing_ok=True)
    LEDGER_DB.unlink(missing_ok=True)
    rng = random.Random(20251101)
    expected = Decimal(0)
    with contextlib.closing(sqlite3.connect(SOURCE_DB)) as conn, conn:
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
        for day in DAYS:
            rows = day_rows(day, rng)
            conn.executemany("INSERT INTO sms_sends VALUES (?, ?, ?, ?, ?, ?)", rows["sends"])
            conn.executemany("INSERT INTO sms_clicks VALUES (?, ?, ?, ?, ?)", rows["clicks"])
            conn.executemany(
                "INSERT INTO sms_revenue VALUES (?, ?, ?, ?, ?)",
                [(m, o, str(r), None if p is None else str(p), t) for m, o, r, p, t in rows["revenue"]],
            )
            bad_messages = {f"msg-{day:%Y%m%d}-00007", f"msg-{day:%Y%m%d}-00008"}
            expected += sum(
                (
                    r
                    for m, o, r, _, _ in rows["revenue"]
                    if r >= 0 and m not in bad_messages and o != "unknown-offer"
                ),
                Decimal(0),
            )
    return expected


def run_day(dag: Any, day: date) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """Run the DAG for one day; each entity's task state and XCom summary."""
    end_of_day = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
    with output_to(RUN_LOG):
        run = dag.test(logical_date=end_of_day)
    results = {}
    for ti in sorted(run.get_task_instances(), key=lambda ti: ti.map_index):  # the run's day is the last
        entity = ti.task_id.rpartition("import_")[2]
        if entity in ENTITIES:
            results[entity] = (str(ti.state), ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index))
    return results


def print_table(runs: list[tuple[str, dict[str, tuple[str, dict[str, Any] | None]]]]) -> None:
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
            codes = ", ".join(f"{code} {count}" for code, count in x["errors_by_code"].items())
            print(
                f"{label:<22}{entity:<9}{x['rows_read']:>6}{x['success_count']:>10}{x['duplicates_skipped']:>12}"
                f"{x['error_count']:>8}  {state}{', ' + codes if codes else ''}"
            )
            label = ""


def main() -> int:
    started = time.monotonic()
    DEMO.mkdir(exist_ok=True)
    RUN_LOG.write_text("")
    expected_revenue = seed_source()
    print(
        f"Seeded {SOURCE_DB.relative_to(REPO)}: sms_sends, sms_clicks and sms_revenue for "
        f"{DAYS[0]}..{DAYS[-1]}."
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
        httpx.post(
            f"{url}/_sandbox/account", json={"require_sends": True}
        ).raise_for_status()  # a fresh account
        print(
            f"Trackly sandbox at {url} (a fresh account); running {DAG_FILE.stem} "
            f"(Airflow's log: {RUN_LOG.relative_to(REPO)})"
        )
        import importlib.util

        spec = importlib.util.spec_from_file_location("trackly_history_migration", DAG_FILE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        runs = [(f"{day}", run_day(module.dag, day)) for day in DAYS]
        runs.append((f"{DAYS[-1]} again", run_day(module.dag, DAYS[-1])))
        state = httpx.get(f"{url}/_sandbox/state").json()
    print()
    print_table(runs)
    stored = Decimal(state["total_revenue"])
    print(
        f"\nTrackly now holds {len(state['sends'])} sends, {len(state['clicks'])} clicks and "
        f"{len(state['revenue'])} revenue records; revenue {stored} (the source's valid rows: "
        f"{expected_revenue}). "
        "Running a day again sent no revenue twice."
    )
    print(f"Done in {time.monotonic() - started:.0f} s.")
    ok = all(state == "success" for _, results in runs for state, _ in results.values())
    return 0 if ok and stored == expected_revenue and all(len(results) == 3 for _, results in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

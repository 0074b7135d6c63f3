"""
``make demo``: the example click DAG end to end against the local sandbox, one run per day, then the
same days again; it explains the problems planted in its source and fails if any count disagrees
with the sandbox's own or with those planted rows.
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
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from trackly_provider.sandbox.process import running_sandbox

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
SOURCE_DB = DEMO / "source.db"
RUN_LOG = DEMO / "airflow-run.log"
DAG_FILE = REPO / "dags_examples" / "trackly_click_history_backfill.py"
DAYS = [date(2025, 11, 1) + timedelta(days=offset) for offset in range(3)]
CLICKS_PER_DAY = 1500

# Airflow reads its configuration when first imported: a home inside the repo (git-ignored).
os.environ["AIRFLOW_HOME"] = str(DEMO / "airflow")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAG_FILE.parent)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"


def sqlite_text(moment: datetime) -> str:
    """SQLite's own UTC text form, as the example table stores timestamps."""
    return moment.replace(tzinfo=None).isoformat(sep=" ")


def demo_clicks(day: date, rng: random.Random) -> Iterator[tuple[str, str, str | None, str, str]]:
    """A day of realistic clicks, a few for messages Trackly does not know, a few clicked twice."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    ids: list[str] = []
    for n in range(CLICKS_PER_DAY):
        clicked = midnight + timedelta(microseconds=rng.randrange(86_400_000_000)) if n else midnight
        sent = clicked - timedelta(seconds=rng.randrange(30, 7200))
        roll = rng.random()
        if roll < 0.01:
            message_id = f"unknown-{day:%Y%m%d}-{n:05d}"  # the sandbox knows no such message
        elif roll < 0.02 and ids:
            message_id = rng.choice(ids)  # a second click on the same message: a duplicate
        else:
            message_id = f"msg-{day:%Y%m%d}-{n:05d}"
            ids.append(message_id)
        phone = None if roll > 0.997 else f"+1{rng.randrange(201, 990)}555{rng.randrange(10_000):04d}"
        yield message_id, f"offer-{rng.randrange(1, 12)}", phone, sqlite_text(sent), sqlite_text(clicked)


def seed_source() -> None:
    SOURCE_DB.unlink(missing_ok=True)
    rng = random.Random(20251101)
    with contextlib.closing(sqlite3.connect(SOURCE_DB)) as conn, conn:
        conn.execute(
            "CREATE TABLE sms_clicks (message_id TEXT, offer_id TEXT, phone_number TEXT, "
            "sent_at TEXT, clicked_at TEXT)"
        )
        conn.execute("CREATE INDEX sms_clicks_clicked_at ON sms_clicks (clicked_at)")
        for day in DAYS:
            conn.executemany("INSERT INTO sms_clicks VALUES (?, ?, ?, ?, ?)", demo_clicks(day, rng))


@contextlib.contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Send everything Airflow prints (both file descriptors) to a log file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("a") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


Counts = dict[str, Any]  # one day's import: the operator's XCom (rows_read, success_count...)
Runs = dict[date, tuple[str, Counts]]  # each day imported: its task's state and XCom
COLUMNS = {"rows_read": "rows", "success_count": "imported", "duplicates_skipped": "duplicates"}
COLUMNS |= {"error_count": "errors", "batches": "batches"}
PLANTED = {  # the problems seeded on purpose, by the code the import reports them with
    "message_not_found": "clicks on a message Trackly does not know (unknown-...): Trackly rejects them",
    "duplicate": "second clicks on a message clicked that day: Trackly keeps one click per message",
    "missing_phone_number": "clicks without a phone number: rejected before sending",
}


def planted() -> dict[date, Counter[str]]:
    """What each day's import must report, from the seeded rows: imported, duplicate, each error code."""
    expected: dict[date, Counter[str]] = {day: Counter() for day in DAYS}
    seen: set[str] = set()
    with contextlib.closing(sqlite3.connect(SOURCE_DB)) as conn:
        for message_id, phone, clicked in conn.execute(
            "SELECT message_id, phone_number, clicked_at FROM sms_clicks"
        ):
            counts = expected[date.fromisoformat(clicked[:10])]
            if phone is None:
                counts["missing_phone_number"] += 1
            elif message_id.startswith("unknown-"):
                counts["message_not_found"] += 1
            elif message_id in seen:
                counts["duplicate"] += 1
            else:
                counts["imported"] += 1
                seen.add(message_id)
    return expected


def reported(xcom: Counts) -> Counter[str]:
    """A day's XCom in the terms of ``planted``."""
    return Counter({"imported": xcom["success_count"], "duplicate": xcom["duplicates_skipped"]}) + Counter(
        xcom["errors_by_code"]
    )


def import_days(dag: Any, logical_date: datetime | None, params: dict[str, str] | None = None) -> Runs:
    """One DAG run (``dag.test``): each ``import_clicks`` task's day, state and XCom."""
    with output_to(RUN_LOG):
        run = dag.test(logical_date=logical_date, run_conf=params)
    return {
        date.fromisoformat(ti.rendered_map_index): (
            str(ti.state),
            ti.xcom_pull(task_ids="import_clicks", map_indexes=ti.map_index) or dict.fromkeys(COLUMNS, 0),
        )
        for ti in run.get_task_instances()
        if ti.task_id == "import_clicks"
    }


def imported(runs: Runs) -> int:
    return sum(xcom["success_count"] for _, xcom in runs.values())


def sandbox_clicks(sandbox_url: str) -> int:
    """The clicks the sandbox holds, by its own count."""
    return int(httpx.get(f"{sandbox_url}/_sandbox/counts").json()["clicks"])


def print_table(runs: Runs) -> None:
    widths = dict(zip(COLUMNS, (7, 10, 12, 8, 9), strict=True))
    header = f"{'day':<12}" + "".join(f"{name:>{widths[key]}}" for key, name in COLUMNS.items()) + "  state"
    print(header)
    print("-" * len(header))
    for day, (state, xcom) in runs.items():
        print(f"{day!s:<12}" + "".join(f"{xcom[key]:>{widths[key]}}" for key in COLUMNS) + f"  {state}")


def first_import(dag: Any, sandbox_url: str, expected: dict[date, Counter[str]]) -> tuple[Runs, list[str]]:
    """One run per day, as the nightly schedule runs them; what it imported, and what disagrees."""
    print(f"\nImport: one run of {DAG_FILE.stem} per day, as its nightly schedule runs it")
    runs: Runs = {}
    total = 0
    for day in DAYS:
        # A run at the end of day D covers [D, D+1), the same interval as the scheduled run for D. It
        # also imports the days before it again, for late rows: they come back as duplicates.
        run = import_days(
            dag, datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
        )
        runs[day] = run[day]
        total += imported(run)
    print_table(runs)
    for day, (_, xcom) in runs.items():
        print(
            f"{day} errors by code: " + ", ".join(f"{code} {n}" for code, n in xcom["errors_by_code"].items())
        )
    stored = sandbox_clicks(sandbox_url)
    print(f"Imported {total} clicks; the sandbox holds {stored} (GET /_sandbox/counts).")
    failures = (
        [f"the runs imported {total} clicks, but the sandbox holds {stored}"] if stored != total else []
    )
    failures += [
        f"{day} reported {dict(reported(xcom))}, but the seeded rows make {dict(expected[day])}"
        for day, (_, xcom) in runs.items()
        if reported(xcom) != expected[day]
    ]
    return runs, failures


def rerun(dag: Any, sandbox_url: str, expected: dict[date, Counter[str]]) -> tuple[Runs, list[str]]:
    """The same days again, one manual run over the range: every valid row must come back a duplicate."""
    params = {"start_date": str(DAYS[0]), "end_date": str(DAYS[-1])}
    print(
        f"\nRerun: the same days again, one manual run with params start_date={DAYS[0]} end_date={DAYS[-1]}"
    )
    stored = sandbox_clicks(sandbox_url)
    runs = import_days(dag, None, params)
    print_table(runs)
    stored_after = sandbox_clicks(sandbox_url)
    print(
        f"Every valid row came back as a duplicate: {imported(runs)} new; the sandbox holds {stored_after}."
    )
    failures = (
        []
        if stored_after == stored
        else [f"the rerun took the sandbox from {stored} to {stored_after} clicks"]
    )
    failures += [
        f"{day} again: {xcom['success_count']} imported, {xcom['duplicates_skipped']} duplicates"
        for day, (_, xcom) in runs.items()
        if (xcom["success_count"], xcom["duplicates_skipped"])
        != (0, expected[day]["imported"] + expected[day]["duplicate"])
    ]
    return runs, failures


def load_dag(sandbox_url: str) -> Any:
    """The example DAG, its connections pointing at the sandbox and the seeded SQLite file."""
    from trackly_provider.sandbox import SANDBOX_API_KEY

    os.environ["AIRFLOW_CONN_TRACKLY_DEFAULT"] = json.dumps(
        {"conn_type": "trackly", "host": sandbox_url, "password": SANDBOX_API_KEY}
    )
    os.environ["AIRFLOW_CONN_TRACKLY_SOURCE"] = json.dumps({"conn_type": "sqlite", "host": str(SOURCE_DB)})
    import importlib.util

    spec = importlib.util.spec_from_file_location("trackly_click_history_backfill", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def main() -> int:
    started = time.monotonic()
    DEMO.mkdir(exist_ok=True)
    RUN_LOG.write_text("")
    seed_source()
    expected = planted()
    print(f"Seeded {SOURCE_DB.relative_to(REPO)}: {CLICKS_PER_DAY} clicks a day for {DAYS[0]}..{DAYS[-1]}.")
    print("Problems planted on purpose, to show how the import reports each (all three days):")
    for code, what in PLANTED.items():
        print(f"{sum(day[code] for day in expected.values()):>5} {what} ({code})")
    airflow = Path(sys.executable).parent / "airflow"
    with RUN_LOG.open("a") as log:
        subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=log, stderr=log)
    with running_sandbox(DEMO) as url:
        print(f"Trackly sandbox at {url}; Airflow's log: {RUN_LOG.relative_to(REPO)}")
        dag = load_dag(url)
        first, failures = first_import(dag, url, expected)
        again, rerun_failures = rerun(dag, url, expected)
    failures += rerun_failures
    states = sorted({state for runs in (first, again) for state, _ in runs.values()})
    failures += [] if states == ["success"] else [f"task states {states}, not all success"]
    for failure in failures:
        print(f"DEMO CHECK FAILED: {failure}", file=sys.stderr)
    if not failures:
        print("\nChecked: every count matches the sandbox's own and the rows planted.")
    print(f"Done in {time.monotonic() - started:.0f} s.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

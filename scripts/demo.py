"""``make demo``: the example DAG end to end against the local sandbox, one run per day, then the counts."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

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


def run_days(sandbox_url: str) -> list[tuple[date, str, dict | None]]:
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
    results = []
    for day in DAYS:
        # A run at the end of day D covers [D, D+1), the same interval as the scheduler's run for D.
        end_of_day = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(days=1)
        with output_to(RUN_LOG):
            run = module.dag.test(logical_date=end_of_day)
        # The run also imports the days before it again (late rows); report its own day's import.
        (ti,) = [
            ti
            for ti in run.get_task_instances()
            if ti.task_id == "import_clicks" and ti.rendered_map_index == str(day)
        ]
        results.append((day, str(ti.state), ti.xcom_pull(task_ids="import_clicks", map_indexes=ti.map_index)))
    return results


def print_table(results: list[tuple[date, str, dict | None]]) -> None:
    header = f"{'day':<12}{'rows':>7}{'imported':>10}{'duplicates':>12}{'errors':>8}{'batches':>9}  state"
    print(header)
    print("-" * len(header))
    for day, state, xcom in results:
        x = xcom or dict.fromkeys(
            ("rows_read", "success_count", "duplicates_skipped", "error_count", "batches"), 0
        )
        print(
            f"{day!s:<12}{x['rows_read']:>7}{x['success_count']:>10}{x['duplicates_skipped']:>12}"
            f"{x['error_count']:>8}{x['batches']:>9}  {state}"
        )
    for day, _, xcom in results:
        if xcom and xcom["errors"]:
            first = ", ".join(f"row {e['index']} {e['code']}" for e in xcom["errors"][:3])
            print(f"{day}: {len(xcom['errors'])} rejected rows, e.g. {first}")


def main() -> int:
    started = time.monotonic()
    DEMO.mkdir(exist_ok=True)
    RUN_LOG.write_text("")
    seed_source()
    print(
        f"Seeded {SOURCE_DB.relative_to(REPO)} with {CLICKS_PER_DAY} clicks a day for {DAYS[0]}..{DAYS[-1]}."
    )
    airflow = Path(sys.executable).parent / "airflow"
    with RUN_LOG.open("a") as log:
        subprocess.run([str(airflow), "db", "migrate"], check=True, stdout=log, stderr=log)
    with running_sandbox(DEMO) as url:
        log = RUN_LOG.relative_to(REPO)
        print(f"Trackly sandbox at {url}; running {DAG_FILE.stem} once per day (Airflow's log: {log})")
        results = run_days(url)
    print()
    print_table(results)
    print(f"\nDone in {time.monotonic() - started:.0f} s.")
    return 0 if all(state == "success" for _, state, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

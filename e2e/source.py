"""The users' side of the e2e run: PostgreSQL source tables, the days a run reads, the sandbox's data."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.databases import postgres_connection, postgres_dsn

VALID_PER_DAY = 200
UNKNOWN_PER_DAY = 4  # the sandbox answers message_not_found
NULL_PHONE_PER_DAY = 2  # rejected before sending (missing_phone_number)


@dataclass(frozen=True)
class DayExpectation:
    rows: int
    valid: int

    @property
    def errors(self) -> int:
        return self.rows - self.valid


def nightly_days(day: date, first_day: date) -> list[date]:
    """What a run importing its own ``day`` covers: the example DAGs' LATE_ROWS_DAYS (2) days first."""
    return [d for d in (day - timedelta(days=2), day - timedelta(days=1), day) if d >= first_day]


def recreate_database(name: str) -> None:
    with psycopg.connect(postgres_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def source_connection(database: str) -> str:
    return json.dumps(postgres_connection(database))


def day_rows(day: date, valid: int) -> list[tuple[Any, ...]]:
    """One day's clicks, spread over the day (first at midnight): valid, unknown, and NULL phones."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    total = valid + UNKNOWN_PER_DAY + NULL_PHONE_PER_DAY
    rows = []
    for i in range(total):
        moment = midnight + timedelta(seconds=i * 86_399 // total)
        if i < valid:
            message_id, phone = f"{day}-{i}", f"+1202555{i % 10_000:04d}"
        elif i < valid + UNKNOWN_PER_DAY:
            message_id, phone = f"unknown-{day}-{i}", "+12025550000"
        else:
            message_id, phone = f"{day}-nophone-{i}", None
        rows.append((message_id, "offer-1", phone, moment - timedelta(minutes=5), moment))
    return rows


def expectations(days: dict[date, int]) -> dict[date, DayExpectation]:
    """What each day of ``day_rows`` must give: its ``valid`` rows and the unknown and NULL-phone ones."""
    extra = UNKNOWN_PER_DAY + NULL_PHONE_PER_DAY
    return {day: DayExpectation(rows=valid + extra, valid=valid) for day, valid in days.items()}


def seed(database: str, days: dict[date, int]) -> dict[date, DayExpectation]:
    """Create ``sms_clicks`` with ``valid`` good rows for each day; return what each day must give."""
    with psycopg.connect(postgres_dsn(database), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS sms_clicks")
        conn.execute(
            "CREATE TABLE sms_clicks (id BIGSERIAL PRIMARY KEY, message_id TEXT, offer_id TEXT, "
            "phone_number TEXT, sent_at TIMESTAMPTZ, clicked_at TIMESTAMPTZ)"
        )
        conn.execute("CREATE INDEX ON sms_clicks (clicked_at)")
        with conn.cursor() as cur:
            for day, valid in days.items():
                with cur.copy(
                    "COPY sms_clicks (message_id, offer_id, phone_number, sent_at, clicked_at) FROM STDIN"
                ) as copy:
                    for row in day_rows(day, valid):
                        copy.write_row(row)
    return expectations(days)


def seed_sqlite(path: Path, days: dict[date, int]) -> dict[date, DayExpectation]:
    """
    A new SQLite file at ``path`` (replacing any) whose ``sms_clicks`` holds ``days``' rows as
    ``seed`` writes them, timestamps in SQLite's own UTC text form; return what each day must give.
    """
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "CREATE TABLE sms_clicks (message_id TEXT, offer_id TEXT, phone_number TEXT, "
            "sent_at TEXT, clicked_at TEXT)"
        )
        conn.execute("CREATE INDEX sms_clicks_clicked_at ON sms_clicks (clicked_at)")
        for day, valid in days.items():
            conn.executemany(
                "INSERT INTO sms_clicks VALUES (?, ?, ?, ?, ?)",
                [
                    (*row[:3], *(f"{moment:%Y-%m-%d %H:%M:%S}" for moment in row[3:]))
                    for row in day_rows(day, valid)
                ],
            )
    return expectations(days)


def insert_late_click(database: str, day: date) -> None:
    """A valid click of ``day`` written now, after the day was imported (message id ``<day>-late``)."""
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    with psycopg.connect(postgres_dsn(database), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sms_clicks (message_id, offer_id, phone_number, sent_at, clicked_at) "
            "VALUES (%s, 'offer-1', '+12025550199', NULL, %s)",
            (f"{day}-late", noon),
        )


def rejects_by_task(database: str, run_id: str) -> dict[tuple[int, int], int]:
    """How many rows the run's imports wrote to the rejects table, by (map index, try number)."""
    with psycopg.connect(postgres_dsn(database)) as conn:
        rows = conn.execute(
            "SELECT map_index, try_number, COUNT(*) FROM trackly_rejects WHERE run_id = %s GROUP BY 1, 2",
            (run_id,),
        ).fetchall()
    return {(map_index, try_number): count for map_index, try_number, count in rows}


def stored_per_day(sandbox_url: str) -> Counter[str]:
    """How many clicks the sandbox stored for each day (message ids start with the day)."""
    state = httpx.get(f"{sandbox_url}/_sandbox/state", timeout=30).json()
    return Counter(message_id[:10] for message_id in state["clicks"])


def reset_sandbox(sandbox_url: str) -> None:
    httpx.post(f"{sandbox_url}/_sandbox/reset", timeout=30).raise_for_status()


def set_faults(sandbox_url: str, **config: Any) -> None:
    httpx.post(f"{sandbox_url}/_sandbox/faults", json=config, timeout=30).raise_for_status()


def require_sends(sandbox_url: str, required: bool = True) -> None:
    """A fresh account: clicks and revenue need their message imported as a send first."""
    answer = httpx.post(f"{sandbox_url}/_sandbox/account", json={"require_sends": required}, timeout=30)
    answer.raise_for_status()

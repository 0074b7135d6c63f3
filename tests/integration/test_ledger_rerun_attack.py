"""
Revenue full of identical rows, exactly once across a partly confirmed first run and reruns that
read the rows in another order and other batches (real Airflow, PostgreSQL or SQLite, the sandbox over HTTP).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

from tests.helpers import LEDGER_CONN_ID, LEDGER_TABLE, set_trackly_connection
from tests.integration.test_ledger_attack import ASCENDING, DESCENDING, import_revenue
from tests.integration.test_sends_and_revenue import REVENUE_COLUMNS, counts, revenue_row
from trackly_provider.exceptions import TracklyRetriesExhaustedError
from trackly_provider.hooks.trackly import TracklyHook

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.02, "max_attempts": 3}
SEED = 14
SALES = [
    {"message_id": "msg-a", "offer_id": "offer-1", "revenue": Decimal("5.00"), "timestamp": None},
    {"message_id": "msg-b", "offer_id": "offer-2", "revenue": Decimal("0.25"), "timestamp": None},
]


def copy_heavy_rows(count: int) -> list[tuple]:
    """Two sales repeated over most rows (every other row, and every third), the rest distinct."""
    return [
        revenue_row(n, **SALES[0]) if n % 2 else revenue_row(n, **SALES[1]) if n % 3 == 0 else revenue_row(n)
        for n in range(count)
    ]


def held(sandbox) -> Counter:
    """How many times the sandbox holds each message id's revenue."""
    return Counter(record["message_id"] for record in sandbox.state()["revenue"])


def test_copies_of_requests_trackly_refused_are_sent_once_by_a_reordered_rerun(
    airflow, sandbox, postgres_source, monkeypatch
):
    rows = copy_heavy_rows(120)
    source = Counter(row[1] for row in rows)
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, FAST_RETRIES)
    # Trackly asks to wait, again and again: a request that gets 429 three times stored nothing.
    sandbox.set_faults(rate_limited=0.6, retry_after="0", seed=SEED)
    # One request at a time: the seeded faults then fall on the same requests on every run and every
    # Airflow line (with 3 in flight, which request drew which fault depended on the threads, and on
    # Airflow 3.0 none drew three 429s in a row).
    first = import_revenue(airflow, batch_size=7, max_in_flight=1, max_error_rate=1.0)
    assert first.state == "failed"
    assert first.xcom["failed"] == "TracklyRetriesExhaustedError"
    sandbox.set_faults()
    stored_first = sum(held(sandbox).values())
    assert 0 < stored_first < len(rows)
    assert first.xcom["success_count"] == stored_first  # every request answered before it failed is counted
    assert postgres_source.query(f"SELECT count(*) FROM {LEDGER_TABLE} WHERE state = 'unknown'") == [(0,)]

    # Backwards, 11 a request, two at once; some copies fail to save once and are sent again at the end.
    sandbox.set_faults(save_error=0.5, save_error_times=1, seed=4)
    rerun = import_revenue(airflow, sql=DESCENDING, batch_size=11, max_in_flight=2)
    assert sandbox.state()["faults_injected"]["save_error"] > 0
    sandbox.set_faults()
    assert rerun.state == "success"
    assert counts(rerun.xcom) == (len(rows), len(rows) - stored_first, stored_first, 0)
    assert held(sandbox) == source

    seen = sandbox.state()["requests_seen"]
    final = import_revenue(airflow, batch_size=5)
    assert counts(final.xcom) == (len(rows), 0, len(rows), 0)
    assert sandbox.state()["requests_seen"] == seen
    assert held(sandbox) == source
    total = sum((Decimal(row[3]) for row in rows), Decimal(0))
    assert Decimal(sandbox.state()["total_revenue"]) == total


def test_copies_whose_resend_never_reached_trackly_are_sent_by_the_rerun(
    airflow, sandbox, sqlite_source, ledger_db: Path, monkeypatch
):
    rows = copy_heavy_rows(10)
    sqlite_source.load("revenue", REVENUE_COLUMNS, rows)
    kwargs = {"sql": DESCENDING, "ledger_conn_id": LEDGER_CONN_ID, "batch_size": 5, "max_error_rate": 1.0}
    sandbox.set_faults(save_error=1.0, save_error_times=1)  # each message id's first record fails once
    sent = TracklyHook.import_encoded
    calls: list[int] = []

    def refused_after_two(self, *args, **kwargs):  # the resends meet Trackly's 429s, nothing stored
        calls.append(1)
        if len(calls) > 2:
            raise TracklyRetriesExhaustedError("POST /api/v2/history/revenue failed 3 times with HTTP 429")
        return sent(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(TracklyHook, "import_encoded", refused_after_two)
        first = import_revenue(airflow, **kwargs)
    sandbox.set_faults()
    assert first.state == "failed" and len(calls) == 3
    stored_first = sum(held(sandbox).values())
    assert 0 < stored_first < len(rows)

    rerun = import_revenue(airflow, sql=ASCENDING, ledger_conn_id=LEDGER_CONN_ID, batch_size=3)
    assert counts(rerun.xcom) == (len(rows), len(rows) - stored_first, stored_first, 0)
    assert held(sandbox) == Counter(row[1] for row in rows)

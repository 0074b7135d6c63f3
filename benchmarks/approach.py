"""One benchmark measurement in a fresh process: import N rows one way, print wall/CPU/peak memory as JSON.

Approaches:
- ``operator``: ClickHistoryImportOperator.execute (``--max-in-flight``), as a task runs it.
- ``naive``: what a DAG author writes by hand: ``get_records()`` of the whole query, then one httpx
  POST per 1,000 rows (pooled client, minimal conversion so the JSON encodes).
- ``floor``: ``fetchmany(1000)`` from the same streaming cursor plus one POST per 1,000 records whose
  JSON body is already built, with ``--max-in-flight`` POSTs open at once (each refilled as soon as
  it answers): the least work any importer with that concurrency must do.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing
from typing import TypeVar

import httpx
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseHook

from trackly_provider.database.source import open_streaming_cursor
from trackly_provider.operators.click_history import ClickHistoryImportOperator
from trackly_provider.sandbox import SANDBOX_API_KEY

BATCH = 1000
T = TypeVar("T")
CLICKS_PATH = "/api/v2/history/clicks"


def query(table: str, rows: int) -> str:
    return (
        "SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp "
        f"FROM {table} WHERE id <= {rows} ORDER BY id"
    )


def source_hook() -> DbApiHook:
    hook = BaseHook.get_connection("bench_source").get_hook()
    assert isinstance(hook, DbApiHook)
    return hook


def client(url: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, headers={"X-Api-Key": SANDBOX_API_KEY, "Content-Type": "application/json"}, timeout=120
    )


def run_operator(sql: str, url: str, max_in_flight: int) -> int:
    operator = ClickHistoryImportOperator(
        task_id="bench",
        sql=sql,
        sql_conn_id="bench_source",
        trackly_conn_id="bench_trackly",
        max_in_flight=max_in_flight,
    )
    result = operator.execute({})  # type: ignore[arg-type]
    return result["success_count"]


def run_naive(sql: str, url: str, _: int) -> int:
    rows = source_hook().get_records(sql)
    imported = 0
    with client(url) as http:
        for start in range(0, len(rows), BATCH):
            records = [
                {
                    "message_id": str(m),
                    "offer_id": str(o),
                    "phone_number": p,
                    "send_timestamp": str(s) if s is not None else None,
                    "timestamp": str(t),
                }
                for m, o, p, s, t in rows[start : start + BATCH]
            ]
            response = http.post(CLICKS_PATH, json={"records": records})
            response.raise_for_status()
            imported += response.json()["success_count"]
    return imported


def prebuilt_body() -> bytes:
    """1,000 valid records whose message ids carry a placeholder the batch number replaces."""
    records = [
        {
            "message_id": f"floor-@@@@@@@-{n:04d}",
            "offer_id": "offer-1",
            "phone_number": "+12025550100",
            "send_timestamp": "2025-11-15T10:00:00+00:00",
            "timestamp": "2025-11-15T10:00:05+00:00",
        }
        for n in range(BATCH)
    ]
    return json.dumps({"records": records}).encode()


def run_floor(sql: str, url: str, in_flight: int) -> int:
    """``in_flight`` POSTs of pre-built bodies open at once, each refilled as soon as it answers."""
    template, batch = prebuilt_body(), 0
    imported = 0

    def post(http: httpx.Client, body: bytes) -> int:
        response = http.post(CLICKS_PATH, content=body)
        response.raise_for_status()
        return int(response.json()["success_count"])

    with (
        closing(source_hook().get_conn()) as connection,
        client(url) as http,
        ThreadPoolExecutor(in_flight) as pool,
    ):
        cursor = open_streaming_cursor(connection)
        cursor.execute(sql)
        open_requests: set[Future[int]] = set()
        while rows := cursor.fetchmany(BATCH):
            body = template.replace(b"@@@@@@@", b"%07d" % batch)
            if len(rows) < BATCH:  # the last, partial batch: as many records as rows
                body = json.dumps({"records": json.loads(body)["records"][: len(rows)]}).encode()
            if len(open_requests) >= in_flight:
                done, open_requests = wait(open_requests, return_when=FIRST_COMPLETED)
                imported += sum(future.result() for future in done)
            open_requests.add(pool.submit(post, http, body))
            batch += 1
        imported += sum(future.result() for future in open_requests)
        cursor.close()
    return imported


APPROACHES = {"operator": run_operator, "naive": run_naive, "floor": run_floor}


def measured(run: Callable[[], T]) -> tuple[T, dict[str, float]]:
    """``run()``'s result, and its wall and CPU seconds (all threads) and the process's peak RSS."""
    usage_before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = run()
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime - usage_before.ru_utime) + (usage.ru_stime - usage_before.ru_stime)
    return result, {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--approach", choices=sorted(APPROACHES), required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--sandbox", required=True)
    parser.add_argument("--max-in-flight", type=int, default=1)
    args = parser.parse_args()
    sql = query(args.table, args.rows)
    imported, costs = measured(lambda: APPROACHES[args.approach](sql, args.sandbox, args.max_in_flight))
    print(json.dumps({"imported": imported, **costs, "pid": os.getpid()}))


if __name__ == "__main__":
    main()

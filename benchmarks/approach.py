"""One benchmark measurement in a fresh process: import N rows one way, print wall/CPU/peak memory as JSON.

Approaches:
- ``operator``: ClickHistoryImportOperator.execute (``--max-in-flight``), as a task runs it.
- ``naive``: what a DAG author writes by hand: ``get_records()`` of the whole query, then one httpx
  POST per 1,000 rows (pooled client, minimal conversion so the JSON encodes).
- ``floor``: ``fetchmany(1000)`` from the same streaming cursor plus one POST per 1,000 records whose
  JSON body is already built, with ``--max-in-flight`` POSTs open at once (each refilled as soon as
  it answers): the least work any importer with that concurrency must do.
- ``dicts``: the parallel floor of a real importer: ``fetchmany(1000)``, each row a dict of its
  columns, each batch encoded by orjson (no checks, no conversions), ``--max-in-flight`` POSTs open.

``--entity revenue`` imports revenue instead of clicks (``operator``, ``naive`` and ``dicts``); the
operator then keeps its ledger (always, for revenue) in ``bench_ledger``'s database.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import closing
from types import SimpleNamespace
from typing import TypeVar

import httpx
import orjson
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import BaseHook

from trackly_provider.database.source import open_streaming_cursor
from trackly_provider.operators.click_history import ClickHistoryImportOperator
from trackly_provider.operators.revenue_history import RevenueHistoryImportOperator
from trackly_provider.sandbox import SANDBOX_API_KEY

BATCH = 1000
T = TypeVar("T")
CLICKS_PATH = "/api/v2/history/clicks"
REVENUE_PATH = "/api/v2/history/revenue"
REVENUE_TABLE = "trackly_bench_revenue"
# What execute() reads of its Airflow context outside a task: the task instance the ledger names.
CONTEXT = {"ti": SimpleNamespace(dag_id="bench", run_id="bench", task_id="bench", map_index=-1, try_number=1)}
LEDGER_TABLE = "trackly_bench_compare_ledger"


def query(table: str, rows: int) -> str:
    return (
        "SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp "
        f"FROM {table} WHERE id <= {rows} ORDER BY id"
    )


def revenue_query(table: str, rows: int) -> str:
    return f"SELECT message_id, offer_id, revenue, timestamp FROM {table} WHERE id <= {rows} ORDER BY id"


def source_hook() -> DbApiHook:
    hook = BaseHook.get_connection("bench_source").get_hook()
    assert isinstance(hook, DbApiHook)
    return hook


def client(url: str) -> httpx.Client:
    return httpx.Client(
        base_url=url, headers={"X-Api-Key": SANDBOX_API_KEY, "Content-Type": "application/json"}, timeout=120
    )


def run_operator(sql: str, url: str, max_in_flight: int, entity: str = "clicks") -> int:
    if entity == "revenue":
        operator: ClickHistoryImportOperator | RevenueHistoryImportOperator = RevenueHistoryImportOperator(
            task_id="bench",
            sql=sql,
            sql_conn_id="bench_source",
            trackly_conn_id="bench_trackly",
            max_in_flight=max_in_flight,
            ledger_table=LEDGER_TABLE,
            ledger_conn_id="bench_ledger",
        )
    else:
        operator = ClickHistoryImportOperator(
            task_id="bench",
            sql=sql,
            sql_conn_id="bench_source",
            trackly_conn_id="bench_trackly",
            max_in_flight=max_in_flight,
        )
    result = operator.execute(CONTEXT)  # type: ignore[arg-type]
    return result["success_count"]


def run_naive(sql: str, url: str, _: int, entity: str = "clicks") -> int:
    """Hand: ``get_records()`` of the whole query, then one POST per 1,000 rows, one at a time."""
    rows = source_hook().get_records(sql)
    imported = 0
    path = REVENUE_PATH if entity == "revenue" else CLICKS_PATH
    with client(url) as http:
        for start in range(0, len(rows), BATCH):
            if entity == "revenue":
                records = [
                    {"message_id": str(m), "offer_id": str(o), "revenue": float(r), "timestamp": str(t)}
                    for m, o, r, t in rows[start : start + BATCH]
                ]
            else:
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
            response = http.post(path, json={"records": records})
            response.raise_for_status()
            imported += response.json()["success_count"]
    return imported


def chunks(sql: str) -> Iterator[tuple[list[str], list[tuple[object, ...]]]]:
    """The query's column names and its rows, ``BATCH`` at a time, from a streaming cursor."""
    with closing(source_hook().get_conn()) as connection:
        cursor = open_streaming_cursor(connection)
        cursor.execute(sql)
        names = [column[0] for column in cursor.description]
        while rows := cursor.fetchmany(BATCH):
            yield names, rows
        cursor.close()


def post_in_flight(bodies: Iterable[bytes], url: str, in_flight: int, path: str) -> int:
    """POST each body, ``in_flight`` open at once, each place refilled as soon as it answers."""
    imported = 0

    def post(http: httpx.Client, body: bytes) -> int:
        response = http.post(path, content=body)
        response.raise_for_status()
        return int(response.json()["success_count"])

    with client(url) as http, ThreadPoolExecutor(in_flight) as pool:
        open_requests: set[Future[int]] = set()
        for body in bodies:  # each made on this thread while the others are in flight
            if len(open_requests) >= in_flight:
                done, open_requests = wait(open_requests, return_when=FIRST_COMPLETED)
                imported += sum(future.result() for future in done)
            open_requests.add(pool.submit(post, http, body))
        imported += sum(future.result() for future in open_requests)
    return imported


def run_dicts(sql: str, url: str, in_flight: int, entity: str = "clicks") -> int:
    """The parallel floor of a real importer: rows as dicts, orjson bodies, ``in_flight`` POSTs open."""
    bodies = (
        # NUMERIC amounts as numbers
        orjson.dumps({"records": [dict(zip(names, row, strict=True)) for row in rows]}, default=float)
        for names, rows in chunks(sql)
    )
    return post_in_flight(bodies, url, in_flight, REVENUE_PATH if entity == "revenue" else CLICKS_PATH)


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


def run_floor(sql: str, url: str, in_flight: int, entity: str = "clicks") -> int:
    """``in_flight`` POSTs of pre-built bodies open at once, each refilled as soon as it answers."""
    template = prebuilt_body()

    def bodies() -> Iterator[bytes]:
        for batch, (_, rows) in enumerate(chunks(sql)):
            body = template.replace(b"@@@@@@@", b"%07d" % batch)
            if len(rows) < BATCH:  # the last, partial batch: as many records as rows
                body = json.dumps({"records": json.loads(body)["records"][: len(rows)]}).encode()
            yield body

    return post_in_flight(bodies(), url, in_flight, CLICKS_PATH)


APPROACHES = {"operator": run_operator, "naive": run_naive, "floor": run_floor, "dicts": run_dicts}


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
    parser.add_argument("--entity", choices=("clicks", "revenue"), default="clicks")
    args = parser.parse_args()
    sql = (revenue_query if args.entity == "revenue" else query)(args.table, args.rows)
    run = APPROACHES[args.approach]
    imported, costs = measured(lambda: run(sql, args.sandbox, args.max_in_flight, args.entity))
    print(json.dumps({"imported": imported, **costs, "pid": os.getpid()}))


if __name__ == "__main__":
    main()

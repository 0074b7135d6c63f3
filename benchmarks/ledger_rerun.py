"""``make bench-ledger``: what the ledger costs on a first import and saves on a rerun, 1M rows.

Each step is a fresh process running an operator's ``execute`` on PostgreSQL (source and ledger in
the same database) against the sandbox; clicks with and without a ledger, and revenue with its
ledger against the same import without one (a benchmark-only operator: revenue always keeps one).
Then the partition lock's own cost, uncontended. Results and the issue's targets, met or missed,
go to docs/ledger-benchmark.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from benchmarks.approach import CONTEXT, REVENUE_TABLE, measured, revenue_query
from benchmarks.compare import prepare_postgres_revenue
from benchmarks.run import DOCS, PG_DSN, REPO, TABLE, WORK, machine, prepare_postgres, reset_sandbox
from tests.databases import postgres_connection
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.process import running_sandbox

ROWS = 1_000_000
LEDGER_TABLE = "trackly_bench_ledger"
PARTITION = "bench/1M"  # one name for the whole and the half query, so the half counts for the whole
FIRST, RERUN = "first import", "rerun (nothing sent)"
STEPS = [
    # (entity, label, rows read, ledger, reset the sandbox and the ledger first)
    ("clicks", "first import, no ledger", ROWS, False, True),
    ("clicks", "rerun, no ledger (all sent again, duplicates)", ROWS, False, False),
    ("clicks", f"{FIRST}, ledger", ROWS, True, True),
    ("clicks", f"{RERUN}, ledger", ROWS, True, False),
    ("clicks", "half imported, ledger", ROWS // 2, True, True),
    ("clicks", "resume after half, ledger (sends the other half)", ROWS, True, False),
    ("revenue", "first import, no ledger (benchmark-only operator)", ROWS, False, True),
    ("revenue", f"{FIRST}, ledger", ROWS, True, True),
    ("revenue", f"{RERUN}, ledger", ROWS, True, False),
]
LOCK_SAMPLES = 20
# The targets of issue 26: (what, bound).
CPU_BOUND, WALL_BOUND, RSS_MARGIN_MIB, LOCK_BOUND_MS = 1.15, 1.05, 20, 50


def probe(entity: str, rows: int, ledger: bool) -> None:
    """One step, in this process: run the operator and print its counts, wall and CPU time as JSON."""
    from trackly_provider.operators import ClickHistoryImportOperator, RevenueHistoryImportOperator
    from trackly_provider.trackly_api.entities import REVENUE

    class RevenueWithoutLedger(RevenueHistoryImportOperator):
        """Revenue imported as if Trackly deduplicated it: no ledger. For this measurement only."""

        entity = dataclasses.replace(REVENUE, deduplicated=True)

    kinds: dict[str, Any] = {
        "clicks": ClickHistoryImportOperator,
        "revenue": RevenueHistoryImportOperator if ledger else RevenueWithoutLedger,
    }
    sql = (
        revenue_query(REVENUE_TABLE, rows)
        if entity == "revenue"
        else (
            "SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp "
            f"FROM {TABLE} WHERE id <= {rows} ORDER BY id"
        )
    )
    operator = kinds[entity](
        task_id="bench",
        sql=sql,
        sql_conn_id="bench_source",
        trackly_conn_id="bench_trackly",
        ledger_table=LEDGER_TABLE if ledger else None,
        ledger_partition=PARTITION,
    )
    summary, costs = measured(lambda: operator.execute(CONTEXT))
    print(json.dumps({**{k: summary[k] for k in ("success_count", "duplicates_skipped")}, **costs}))


def lock_probe() -> None:
    """Open and close an empty partition's ledger with and without its lock, interleaved: ms each."""
    from trackly_provider.database.ledger import ImportLedger
    from trackly_provider.database.source import sql_hook

    hook = sql_hook("bench_source")
    costs: dict[str, list[float]] = {"lock": [], "none": []}
    for sample in range(LOCK_SAMPLES):
        for kind, timeout in (("lock", 60.0), ("none", None)):
            started = time.perf_counter()
            with ImportLedger(hook, LEDGER_TABLE, f"bench/lock/{sample}", lock_timeout=timeout):
                pass
            costs[kind].append((time.perf_counter() - started) * 1000)
    print(json.dumps({kind: statistics.median(values) for kind, values in costs.items()}))


def drop_ledger() -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {LEDGER_TABLE}")


def environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_CONN_BENCH_SOURCE": json.dumps(postgres_connection()),
        "AIRFLOW_CONN_BENCH_TRACKLY": json.dumps(
            {"conn_type": "trackly", "host": url, "password": SANDBOX_API_KEY}
        ),
    }


def run_step(url: str, step: tuple[str, str, int, bool, bool], latency_ms: int) -> dict[str, Any]:
    entity, _, rows, ledger, fresh = step
    if fresh:
        reset_sandbox(url, {"latency_ms": latency_ms})
        drop_ledger()
    requests_before = httpx.get(f"{url}/_sandbox/counts").json()["requests_seen"]
    command = [sys.executable, "-m", "benchmarks.ledger_rerun", "--probe", str(rows), "--entity", entity]
    command += ["--ledger"] if ledger else []
    done = subprocess.run(command, cwd=REPO, env=environment(url), capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["requests"] = httpx.get(f"{url}/_sandbox/counts").json()["requests_seen"] - requests_before
    return result


def targets(results: dict[tuple[int, str, str], dict[str, Any]], lock: dict[str, float]) -> list[str]:
    """The issue's targets, each with its figures and verdict, as table rows."""
    lines = []

    def row(what: str, figure: str, ok: bool) -> None:
        lines.append(f"| {what} | {figure} | {'met' if ok else 'MISSED'} |")

    for latency in sorted({key[0] for key in results}):
        for entity, without in (("clicks", "first import, no ledger"), ("revenue", STEPS[6][1])):
            plain, kept = results[(latency, entity, without)], results[(latency, entity, f"{FIRST}, ledger")]
            cpu, wall = kept["cpu_s"] / plain["cpu_s"], kept["wall_s"] / plain["wall_s"]
            row(
                f"{latency} ms, {entity}: first import with its ledger / without, CPU",
                f"{kept['cpu_s']:.1f} / {plain['cpu_s']:.1f} s = {cpu:.2f} (≤ {CPU_BOUND})",
                cpu <= CPU_BOUND,
            )
            row(
                f"{latency} ms, {entity}: first import with its ledger / without, wall",
                f"{kept['wall_s']:.1f} / {plain['wall_s']:.1f} s = {wall:.2f} (≤ {WALL_BOUND})",
                wall <= WALL_BOUND,
            )
            rerun = results[(latency, entity, f"{RERUN}, ledger")]
            growth = rerun["peak_rss_mib"] - kept["peak_rss_mib"]
            row(
                f"{latency} ms, {entity}: peak RSS of the rerun - of the first import (both with the ledger)",
                f"{rerun['peak_rss_mib']:.0f} - {kept['peak_rss_mib']:.0f} = {growth:+.0f} MiB "
                f"(≤ +{RSS_MARGIN_MIB})",
                growth <= RSS_MARGIN_MIB,
            )
            if latency == 0:
                row(
                    f"0 ms, {entity}: the rerun of a finished day / the first import without a ledger, wall",
                    f"{rerun['wall_s']:.1f} / {plain['wall_s']:.1f} s (< 1)",
                    rerun["wall_s"] < plain["wall_s"],
                )
    added = lock["lock"] - lock["none"]
    row(
        "the partition lock, uncontended: opening and closing a ledger with it - without",
        f"{lock['lock']:.1f} - {lock['none']:.1f} = {added:.1f} ms, median of {LOCK_SAMPLES} "
        f"(< {LOCK_BOUND_MS})",
        added < LOCK_BOUND_MS,
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", type=int)
    parser.add_argument("--lock-probe", action="store_true")
    parser.add_argument("--entity", default="clicks")
    parser.add_argument("--ledger", action="store_true")
    parser.add_argument("--latency-ms", type=int, nargs="*", default=[0, 100])
    args = parser.parse_args()
    if args.probe:
        probe(args.entity, args.probe, args.ledger)
        return
    if args.lock_probe:
        lock_probe()
        return
    WORK.mkdir(exist_ok=True)
    prepare_postgres(ROWS)
    prepare_postgres_revenue(ROWS)
    about = machine()
    lines = [
        "# Benchmark: what the ledger costs and saves (1M rows, PostgreSQL)",
        "",
        f"Generated by `make bench-ledger` ({about['date']}) on {about['cores']} cores, "
        f"{about['memory_gib']} GiB, {about['cpu']}, Python {about['python']}, Airflow {about['airflow']}. "
        "Each step is a fresh process running the operator's `execute` (4 in flight) on a PostgreSQL "
        "source, with the ledger table in the same database, against the sandbox with the latency shown. "
        "Steps run in order; 'first' steps start from an empty sandbox and ledger. Revenue without a "
        "ledger is a benchmark-only operator (revenue always keeps one): the baseline of what the "
        "ledger costs.",
        "",
        "| latency | entity | step | sent (requests) | imported | duplicates | wall s | CPU s "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    results: dict[tuple[int, str, str], dict[str, Any]] = {}
    with running_sandbox(WORK) as url:
        for latency in args.latency_ms:
            for step in STEPS:
                r = run_step(url, step, latency)
                results[(latency, step[0], step[1])] = r
                line = (
                    f"| {latency} ms | {step[0]} | {step[1]} | {r['requests']} | {r['success_count']:,} | "
                    f"{r['duplicates_skipped']:,} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                    f"{r['peak_rss_mib']:.0f} |"
                )
                print(line, flush=True)
                lines.append(line)
        drop_ledger()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.ledger_rerun", "--lock-probe"],
            cwd=REPO,
            env=environment(url),
            capture_output=True,
            text=True,
            check=True,
        )
        lock = json.loads(done.stdout.strip().splitlines()[-1])
    drop_ledger()
    verdicts = targets(results, lock)
    print("\n".join(verdicts))
    lines += ["", "## Targets (issue 26)", "", "| target | measured | verdict |", "|---|---|---|", *verdicts]
    (DOCS / "ledger-benchmark.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""``make bench``: every approach, source, size and latency in one run; results and a chart in docs/."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from tests.databases import postgres_connection, postgres_dsn
from trackly_provider.sandbox.process import running_sandbox

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench"
DOCS = REPO / "docs"
TABLE = "trackly_bench_clicks"
PG_DSN = postgres_dsn()  # TRACKLY_TEST_PG_* (tests/databases.py)
OPERATOR_DEFAULT = 4
APPROACHES = [
    ("floor serial", "floor", 1),
    (f"parallel floor ({OPERATOR_DEFAULT} in flight)", "floor", OPERATOR_DEFAULT),
    ("naive", "naive", 1),
    ("operator serial", "operator", 1),
    (f"operator default ({OPERATOR_DEFAULT} in flight)", "operator", OPERATOR_DEFAULT),
]
# A network with a tail: log-normal latency, mean 300 ms, sigma 1 (median 180 ms, p99 about 1.9 s).
JITTER = {"latency_ms": 300, "latency_jitter": 1.0, "seed": 11}
JITTER_IN_FLIGHT = (1, 4, 8, 16)
TASK_RUNNER_ROWS = (1_000_000, 5_000_000)
TASK_RUNNER_IN_FLIGHT = (4, 16)


def sqlite_table(path: Path, table: str, rows: int, columns: str, select: str) -> Path:
    """
    ``path`` holding ``table`` (``columns``) of ``rows`` rows, made by ``select`` over ``g(n)``,
    n = 1..rows; kept when it already holds that many.
    """
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(path)) as conn:
        if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows:
            return path
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(f"CREATE TABLE {table} ({columns})")
        conn.execute(
            f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) "
            f"INSERT INTO {table} {select}"
        )
    return path


def prepare_sqlite(rows: int) -> Path:
    return sqlite_table(
        WORK / "source.db",
        TABLE,
        rows,
        "id INTEGER PRIMARY KEY, message_id TEXT, offer_id TEXT, phone_number TEXT, sent_at TEXT, "
        "clicked_at TEXT",
        "SELECT n, 'msg-' || n, 'offer-' || (n % 7), '+1202' || printf('%07d', n), "
        "datetime('2025-11-01', '+' || (n / 2) || ' seconds'), "
        "strftime('%Y-%m-%d %H:%M:%f', '2025-11-01', '+' || (n / 2) || ' seconds', '+0.25 seconds') "
        "FROM g",
    )


def postgres_table(table: str, rows: int, columns: str, select: str) -> None:
    """``table`` (``columns``) of ``rows`` rows, by ``select`` over g = 1..rows; kept if it has that many."""
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        with contextlib.suppress(psycopg.Error):
            if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows:  # type: ignore[index]
                return
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} ({columns})")
        conn.execute(f"INSERT INTO {table} {select} FROM generate_series(1, {rows}) AS g")


def prepare_postgres(rows: int) -> None:
    postgres_table(
        TABLE,
        rows,
        "id BIGINT PRIMARY KEY, message_id TEXT, offer_id TEXT, phone_number TEXT, sent_at TIMESTAMPTZ, "
        "clicked_at TIMESTAMPTZ",
        "SELECT g, 'msg-' || g, 'offer-' || (g % 7), '+1202' || lpad(g::text, 7, '0'), "
        "timestamptz '2025-11-01' + g * interval '500 ms', "
        "timestamptz '2025-11-01' + g * interval '500 ms' + interval '250 ms'",
    )


def reset_sandbox(url: str, faults: dict[str, Any]) -> None:
    with httpx.Client(base_url=url) as control:
        control.post("/_sandbox/reset").raise_for_status()
        control.post("/_sandbox/record", json=False).raise_for_status()
        control.post("/_sandbox/faults", json=faults).raise_for_status()


def measure(
    url: str, source_env: dict[str, str], approach: str, in_flight: int, rows: int, faults: dict[str, Any]
) -> dict:
    reset_sandbox(url, faults)
    command = [sys.executable, "-m", "benchmarks.approach", "--approach", approach, "--table", TABLE]
    command += ["--rows", str(rows), "--sandbox", url, "--max-in-flight", str(in_flight)]
    return run_probe(command, source_env, rows, approach)


def measure_task_runner(url: str, source_env: dict[str, str], in_flight: int, rows: int) -> dict:
    """The operator through ``airflow dags test``: Airflow's task path, as users run it."""
    reset_sandbox(url, {})
    command = [sys.executable, "-m", "benchmarks.taskrunner", "--table", TABLE, "--rows", str(rows)]
    command += ["--max-in-flight", str(in_flight), "--dags-folder", str(WORK / "airflow" / "dags")]
    return run_probe(command, source_env, rows, "task runner")


def run_probe(command: list[str], source_env: dict[str, str], rows: int, approach: str) -> dict:
    done = subprocess.run(command, cwd=REPO, env=source_env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["imported"] != rows:
        raise RuntimeError(f"{approach} imported {result['imported']} of {rows} rows")
    return result


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(
        next(
            line.split()[1]
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    )
    import airflow

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "python": platform.python_version(),
        "airflow": airflow.__version__,
        "os": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def show(result: dict) -> None:
    rows = result["rows"]
    cpu = f"CPU {result['cpu_s']:6.2f} s" if "cpu_s" in result else " " * 12
    print(
        f"{result['suite']:<11}{result['source']:<9}{rows:>9} rows {result['latency']:>9}  "
        f"{result['approach']:<32} {result['wall_s']:7.2f} s  {rows / result['wall_s']:>9.0f} rows/s  "
        f"{cpu}  peak {result['peak_rss_mib']:6.0f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--latencies-ms", default="0,100")
    parser.add_argument("--sources", default="sqlite,postgres")
    # Rows per request slot: N in flight import N x this, so every run lasts about as long (~18 s ideal).
    parser.add_argument("--jitter-rows-per-slot", type=int, default=60_000)
    parser.add_argument("--suites", default="latency,jitter,taskrunner,compare")
    parser.add_argument("--task-runner-rows", default=",".join(map(str, TASK_RUNNER_ROWS)))
    args = parser.parse_args()
    suites = set(args.suites.split(","))
    sizes = [int(n) for n in args.rows.split(",")]
    latencies = [int(n) for n in args.latencies_ms.split(",")]
    task_runner_rows = [int(n) for n in args.task_runner_rows.split(",")] if "taskrunner" in suites else []
    jitter_rows = {n: n * args.jitter_rows_per_slot for n in JITTER_IN_FLIGHT} if "jitter" in suites else {}
    largest = max([*sizes, *jitter_rows.values(), *task_runner_rows]) if suites - {"compare"} else 0
    WORK.mkdir(exist_ok=True)
    base_env = {**os.environ, "AIRFLOW_HOME": str(WORK / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    if "taskrunner" in suites:
        subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=base_env, check=True
        )
    results = []
    with running_sandbox(WORK) as url:
        base_env["AIRFLOW_CONN_BENCH_TRACKLY"] = json.dumps(
            {"conn_type": "trackly", "host": url, "password": "trk_sandboxDemoKey000000000000000000"}
        )
        if "compare" in suites:
            from benchmarks import compare

            comparison = compare.run_comparison(url, base_env, args.sources.split(","))
            compare.write(comparison, DOCS)
            print(f"Wrote the comparison into {DOCS / 'performance.md'} and {DOCS / 'comparison.json'}")
        for source in args.sources.split(",") if largest else ():
            if source == "sqlite":
                conn = {"conn_type": "sqlite", "host": str(prepare_sqlite(largest))}
            else:
                prepare_postgres(largest)
                conn = postgres_connection()
            env = {**base_env, "AIRFLOW_CONN_BENCH_SOURCE": json.dumps(conn)}
            for rows in sizes if "latency" in suites else ():
                for latency in latencies:
                    for label, approach, in_flight in APPROACHES:
                        result = measure(url, env, approach, in_flight, rows, {"latency_ms": latency})
                        result.update(suite="latency", source=source, rows=rows, latency=f"{latency} ms")
                        result.update(latency_ms=latency, approach=label, in_flight=in_flight)
                        results.append(result)
                        show(result)
            for in_flight in JITTER_IN_FLIGHT if "jitter" in suites else ():
                for label, approach in (("parallel floor", "floor"), ("operator", "operator")):
                    result = measure(url, env, approach, in_flight, jitter_rows[in_flight], JITTER)
                    result.update(
                        suite="jitter", source=source, rows=jitter_rows[in_flight], latency="300 ms, sigma 1"
                    )
                    result.update(approach=f"{label} ({in_flight} in flight)", in_flight=in_flight)
                    results.append(result)
                    show(result)
            for in_flight in TASK_RUNNER_IN_FLIGHT if "taskrunner" in suites else ():
                for rows in task_runner_rows:
                    result = measure_task_runner(url, env, in_flight, rows)
                    result.update(suite="taskrunner", source=source, rows=rows, latency="0 ms")
                    result.update(approach=f"task runner ({in_flight} in flight)", in_flight=in_flight)
                    results.append(result)
                    show(result)
    if not results:
        return
    report = {"machine": machine(), "results": results}
    (DOCS / "benchmark.json").write_text(json.dumps(report, indent=1) + "\n")
    from benchmarks.report import write_report

    memory_ok = write_report(report, DOCS)
    print(f"Wrote {DOCS / 'benchmark.md'} and its charts")
    if not memory_ok:
        raise SystemExit("Peak memory through the task runner grew past its bound: see docs/benchmark.md")


if __name__ == "__main__":
    main()

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

from trackly_provider.sandbox.process import running_sandbox

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".bench"
DOCS = REPO / "docs"
TABLE = "trackly_bench_clicks"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
OPERATOR_DEFAULT = 4
APPROACHES = [
    ("floor", "floor", 1),
    ("naive", "naive", 1),
    ("operator serial", "operator", 1),
    (f"operator default ({OPERATOR_DEFAULT} in flight)", "operator", OPERATOR_DEFAULT),
]


def prepare_sqlite(rows: int) -> Path:
    path = WORK / "source.db"
    with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(path)) as conn:
        if conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == rows:
            return path
    path.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, message_id TEXT, offer_id TEXT, "
            "phone_number TEXT, sent_at TEXT, clicked_at TEXT)"
        )
        conn.execute(
            f"WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) "
            f"INSERT INTO {TABLE} SELECT n, 'msg-' || n, 'offer-' || (n % 7), "
            "'+1202' || printf('%07d', n), datetime('2025-11-01', '+' || (n / 2) || ' seconds'), "
            "strftime('%Y-%m-%d %H:%M:%f', '2025-11-01', '+' || (n / 2) || ' seconds', '+0.25 seconds') "
            "FROM g"
        )
    return path


def prepare_postgres(rows: int) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        with contextlib.suppress(psycopg.Error):
            if conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == rows:  # type: ignore[index]
                return
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, message_id TEXT, offer_id TEXT, "
            "phone_number TEXT, sent_at TIMESTAMPTZ, clicked_at TIMESTAMPTZ)"
        )
        conn.execute(
            f"INSERT INTO {TABLE} SELECT g, 'msg-' || g, 'offer-' || (g % 7), "
            "'+1202' || lpad(g::text, 7, '0'), "
            "timestamptz '2025-11-01' + g * interval '500 ms', "
            "timestamptz '2025-11-01' + g * interval '500 ms' + interval '250 ms' "
            f"FROM generate_series(1, {rows}) AS g"
        )


def measure(
    url: str, source_env: dict[str, str], approach: str, in_flight: int, rows: int, latency_ms: int
) -> dict:
    with httpx.Client(base_url=url) as control:
        control.post("/_sandbox/reset").raise_for_status()
        control.post("/_sandbox/record", json=False).raise_for_status()
        control.post("/_sandbox/faults", json={"latency_ms": latency_ms}).raise_for_status()
    command = [
        sys.executable,
        "-m",
        "benchmarks.approach",
        "--approach",
        approach,
        "--table",
        TABLE,
        "--rows",
        str(rows),
        "--sandbox",
        url,
        "--max-in-flight",
        str(in_flight),
    ]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--latencies-ms", default="0,100")
    parser.add_argument("--sources", default="sqlite,postgres")
    args = parser.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    latencies = [int(n) for n in args.latencies_ms.split(",")]
    WORK.mkdir(exist_ok=True)
    base_env = {**os.environ, "AIRFLOW_HOME": str(WORK / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    results = []
    with running_sandbox(WORK) as url:
        base_env["AIRFLOW_CONN_BENCH_TRACKLY"] = json.dumps(
            {"conn_type": "trackly", "host": url, "password": "trk_sandboxDemoKey000000000000000000"}
        )
        for source in args.sources.split(","):
            if source == "sqlite":
                conn = {"conn_type": "sqlite", "host": str(prepare_sqlite(max(sizes)))}
            else:
                prepare_postgres(max(sizes))
                conn = {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "login": "postgres",
                    "schema": "test",
                }
            env = {**base_env, "AIRFLOW_CONN_BENCH_SOURCE": json.dumps(conn)}
            for rows in sizes:
                for latency in latencies:
                    for label, approach, in_flight in APPROACHES:
                        result = measure(url, env, approach, in_flight, rows, latency)
                        result.update(source=source, rows=rows, latency_ms=latency, approach=label)
                        results.append(result)
                        print(
                            f"{source:<9}{rows:>9} rows {latency:>4} ms  {label:<32} "
                            f"{result['wall_s']:7.2f} s  {rows / result['wall_s']:>9.0f} rows/s  "
                            f"CPU {result['cpu_s']:6.2f} s  peak {result['peak_rss_mib']:6.0f} MiB",
                            flush=True,
                        )
    DOCS.mkdir(exist_ok=True)
    report = {"machine": machine(), "results": results}
    (DOCS / "benchmark.json").write_text(json.dumps(report, indent=1) + "\n")
    from benchmarks.report import write_report

    write_report(report, DOCS)
    print(f"Wrote {DOCS / 'benchmark.md'} and {DOCS / 'benchmark.png'}")


if __name__ == "__main__":
    main()

"""
``make bench`` (suite ``compare``): the provider, the parallel floor and Hand side by side.

Clicks and revenue, 200k and 1M rows, from SQLite and PostgreSQL, against the sandbox answering at
once (0 ms): the import alone, each in a fresh process (``benchmarks.approach``), the three
contenders interleaved, 3 repetitions. The provider imports revenue with its ledger (always kept
for revenue), each repetition a first import (the ledger emptied before). Writes
docs/comparison.json and the table between the markers of docs/performance.md.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.approach import LEDGER_TABLE, REVENUE_TABLE
from benchmarks.run import (
    PG_DSN,
    TABLE,
    WORK,
    machine,
    postgres_table,
    prepare_postgres,
    prepare_sqlite,
    reset_sandbox,
    run_probe,
    sqlite_table,
)

CONTENDERS = [
    # (label, approach, requests in flight)
    ("this provider", "operator", 4),
    ("parallel floor", "dicts", 4),
    ("Hand", "naive", 1),
]
ENTITIES = ("clicks", "revenue")
SIZES = (200_000, 1_000_000)
REPETITIONS = 3
START, END = "<!-- make bench: comparison -->", "<!-- end of the comparison -->"


def prepare_sqlite_revenue(rows: int) -> Path:
    return sqlite_table(
        WORK / "revenue.db",
        REVENUE_TABLE,
        rows,
        "id INTEGER PRIMARY KEY, message_id TEXT, offer_id TEXT, revenue REAL, timestamp TEXT",
        "SELECT n, 'msg-' || n, 'offer-' || (n % 7), (n % 5000) / 100.0 + 0.25, "
        "strftime('%Y-%m-%d %H:%M:%f', '2025-11-01', '+' || (n / 2) || ' seconds', '+0.25 seconds') "
        "FROM g",
    )


def prepare_postgres_revenue(rows: int) -> None:
    postgres_table(
        REVENUE_TABLE,
        rows,
        "id BIGINT PRIMARY KEY, message_id TEXT, offer_id TEXT, revenue NUMERIC(12, 2), "
        "timestamp TIMESTAMPTZ",
        "SELECT g, 'msg-' || g, 'offer-' || (g % 7), (g % 5000) / 100.0 + 0.25, "
        "timestamptz '2025-11-01' + g * interval '500 ms'",
    )


def empty_ledger(source: str) -> None:
    """Each repetition of the provider's revenue import is a first import."""
    if source == "sqlite":
        (WORK / "compare-ledger.db").unlink(missing_ok=True)
        return
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {LEDGER_TABLE}")


def connections(source: str, largest: int) -> dict[str, str]:
    """The bench_source (per entity) and bench_ledger connections as AIRFLOW_CONN_* values."""
    from tests.databases import postgres_connection

    if source == "sqlite":
        ledger = {"conn_type": "sqlite", "host": str(WORK / "compare-ledger.db")}
        return {
            "clicks": json.dumps({"conn_type": "sqlite", "host": str(prepare_sqlite(largest))}),
            "revenue": json.dumps({"conn_type": "sqlite", "host": str(prepare_sqlite_revenue(largest))}),
            "ledger": json.dumps(ledger),
        }
    prepare_postgres(largest)
    prepare_postgres_revenue(largest)
    conn = json.dumps(postgres_connection())
    return {"clicks": conn, "revenue": conn, "ledger": conn}


def measure(url: str, env: dict[str, str], entity: str, contender: tuple[str, str, int], rows: int) -> dict:
    """One run of one contender in a fresh process; the provider's revenue starts from no ledger."""
    _, approach, in_flight = contender
    reset_sandbox(url, {"latency_ms": 0})
    if approach == "operator" and entity == "revenue":
        empty_ledger("sqlite" if "sqlite" in env["AIRFLOW_CONN_BENCH_LEDGER"] else "postgres")
    table = REVENUE_TABLE if entity == "revenue" else TABLE
    command = [sys.executable, "-m", "benchmarks.approach", "--approach", approach, "--table", table]
    command += ["--rows", str(rows), "--sandbox", url, "--max-in-flight", str(in_flight), "--entity", entity]
    return run_probe(command, env, rows, approach)


def run_comparison(url: str, base_env: dict[str, str], sources: list[str]) -> list[dict[str, Any]]:
    """Every contender, entity, size and source, interleaved, ``REPETITIONS`` times: one row each."""
    results: list[dict[str, Any]] = []
    for source in sources:
        conns = connections(source, max(SIZES))
        for entity in ENTITIES:
            env = {**base_env, "AIRFLOW_CONN_BENCH_SOURCE": conns[entity]}
            env["AIRFLOW_CONN_BENCH_LEDGER"] = conns["ledger"]
            for rows in SIZES:
                runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in CONTENDERS}
                for _ in range(REPETITIONS):
                    for contender in CONTENDERS:
                        runs[contender[0]].append(measure(url, env, entity, contender, rows))
                group = []
                for label, _, in_flight in CONTENDERS:
                    result = summarised(runs[label], rows)
                    result.update(source=source, entity=entity, rows=rows, contender=label)
                    result["in_flight"] = in_flight
                    group.append(result)
                for result in group:
                    print(row_text(result, group), flush=True)
                results += group
    empty_ledger("sqlite")
    return results


def summarised(runs: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    """The runs' wall times (sorted) and median, the median CPU per row (µs), the highest peak RSS."""
    walls = sorted(run["wall_s"] for run in runs)
    return {
        "wall_s": walls,
        "wall_median_s": statistics.median(walls),
        "cpu_us_per_row": statistics.median(run["cpu_s"] for run in runs) / rows * 1e6,
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
    }


def row_text(result: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """One contender's line, its wall time also as a multiple of its group's parallel floor's."""
    floor = next(
        r
        for r in results
        if r["contender"] == "parallel floor" and all(r[k] == result[k] for k in ("source", "entity", "rows"))
    )
    ratio = result["wall_median_s"] / floor["wall_median_s"]
    walls = result["wall_s"]
    return (
        f"| {result['entity']} | {result['source']} | {result['rows']:,} | {result['contender']} | "
        f"{result['wall_median_s']:.1f} ({walls[0]:.1f} to {walls[-1]:.1f}) | {ratio:.2f} | "
        f"{result['cpu_us_per_row']:.1f} | {result['peak_rss_mib']:.0f} |"
    )


def table(results: list[dict[str, Any]], about: dict[str, Any]) -> str:
    """The markdown table between the page's markers, with the date and machine of the run."""
    lines = [
        START,
        f"Measured by `make bench` (suite `compare`) on {about['date']}: {about['cores']} cores, "
        f"{about['memory_gib']} GiB, {about['cpu']}, Python {about['python']}, Airflow {about['airflow']}. "
        f"Each figure: the median of {REPETITIONS} runs interleaved with the others (range in brackets); "
        "the import alone, in a fresh process, against the sandbox answering at once; CPU of all threads.",
        "",
        "| entity | source | rows | contender | wall s, median (range) | / floor | CPU µs a row "
        "| peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|",
        *[row_text(result, results) for result in results],
        END,
    ]
    return "\n".join(lines)


def write(results: list[dict[str, Any]], docs: Path) -> None:
    about = machine()
    (docs / "comparison.json").write_text(json.dumps({"machine": about, "results": results}, indent=1) + "\n")
    page = docs / "performance.md"
    text = page.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{page} has no {START} ... {END} markers for the comparison table")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    page.write_text(before + table(results, about) + after)

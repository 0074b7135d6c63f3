"""Turn benchmark results into docs/benchmark.md (tables, ratios, targets) and the charts beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

OPERATOR = "operator default"
PARALLEL_FLOOR = "parallel floor"
CPU_PER_ROW_US = 2.5
TASK_RUNNER_GROWTH_MIB = 10
JITTER_MEAN_S = 0.3


def _find(results: list[dict], suite: str, **match: Any) -> dict:
    prefix = match.pop("approach", "")
    return next(
        r
        for r in results
        if r["suite"] == suite
        and r["approach"].startswith(prefix)
        and all(r[key] == value for key, value in match.items())
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def latency_targets(results: list[dict]) -> list[str]:
    """Operator against the parallel floor at the same in-flight, its CPU per row and memory growth."""
    rows_ = [r for r in results if r["suite"] == "latency"]
    lines = []
    for source in sorted({r["source"] for r in rows_}):
        sizes = sorted({r["rows"] for r in rows_ if r["source"] == source})
        for rows in sizes:
            for latency in sorted({r["latency_ms"] for r in rows_}):
                key = {"source": source, "rows": rows, "latency_ms": latency}
                op = _find(results, "latency", approach=OPERATOR, **key)
                floor = _find(results, "latency", approach=PARALLEL_FLOOR, **key)
                bound = 1.15 if latency == 0 else 1.05
                ratio = op["wall_s"] / floor["wall_s"]
                lines.append(
                    f"| {source} | {rows:,} | {latency} ms | operator / parallel floor, 4 in flight | "
                    f"{ratio:.2f} (target ≤ {bound}) | {_verdict(ratio <= bound)} |"
                )
        largest = sizes[-1]
        for latency in sorted({r["latency_ms"] for r in rows_}):
            op = _find(results, "latency", approach=OPERATOR, source=source, rows=largest, latency_ms=latency)
            per_row = op["cpu_s"] / largest * 1e6
            lines.append(
                f"| {source} | {largest:,} | {latency} ms | operator CPU per row, all threads | "
                f"{per_row:.2f} µs (target ≤ {CPU_PER_ROW_US}) | {_verdict(per_row <= CPU_PER_ROW_US)} |"
            )
    return lines


def jitter_targets(results: list[dict]) -> list[str]:
    rows_ = [r for r in results if r["suite"] == "jitter"]
    lines = []
    for source in sorted({r["source"] for r in rows_}):
        for in_flight in sorted({r["in_flight"] for r in rows_}):
            key = {"source": source, "in_flight": in_flight}
            op = _find(results, "jitter", approach="operator", **key)
            floor = _find(results, "jitter", approach=PARALLEL_FLOOR, **key)
            ratio = op["wall_s"] / floor["wall_s"]
            lines.append(
                f"| {source} | {op['rows']:,} | 300 ms ± tail | operator / parallel floor, "
                f"{in_flight} in flight | {ratio:.2f} (target ≤ 1.05) | {_verdict(ratio <= 1.05)} |"
            )
        op = _find(results, "jitter", approach="operator", source=source, in_flight=16)
        ideal = 16 * 1000 / JITTER_MEAN_S
        share = op["rows"] / op["wall_s"] / ideal
        lines.append(
            f"| {source} | {op['rows']:,} | 300 ms ± tail | operator throughput at 16 in flight / "
            f"16 x 1000 / mean latency | {share:.3f} (target ≥ 0.9) | {_verdict(share >= 0.9)} |"
        )
    return lines


def task_runner_targets(results: list[dict]) -> tuple[list[str], bool]:
    """Peak memory growth through ``airflow dags test``; the regression check of ``make bench``."""
    rows_ = [r for r in results if r["suite"] == "taskrunner"]
    lines, all_met = [], True
    for source in sorted({r["source"] for r in rows_}):
        for in_flight in sorted({r["in_flight"] for r in rows_}):
            runs = sorted(
                (r for r in rows_ if r["source"] == source and r["in_flight"] == in_flight),
                key=lambda r: r["rows"],
            )
            small, large = runs[0], runs[-1]
            growth = large["peak_rss_mib"] - small["peak_rss_mib"]
            met = growth < TASK_RUNNER_GROWTH_MIB
            all_met &= met
            lines.append(
                f"| {source} | {small['rows']:,} → {large['rows']:,} | 0 ms | peak memory growth through "
                f"the task runner, {in_flight} in flight | {growth:+.1f} MiB "
                f"(target < {TASK_RUNNER_GROWTH_MIB}) | {_verdict(met)} |"
            )
    return lines, all_met


def write_report(report: dict[str, Any], docs: Path) -> bool:
    """Write docs/benchmark.md and the charts; True when the memory regression check passed."""
    results, machine = report["results"], report["machine"]
    memory_lines, memory_ok = task_runner_targets(results)
    table = []
    for r in results:
        cpu = f"{r['cpu_s']:.2f} | {r['cpu_s'] / r['rows'] * 1e6:.2f}" if "cpu_s" in r else "- | -"
        table.append(
            f"| {r['suite']} | {r['source']} | {r['rows']:,} | {r['latency']} | {r['approach']} | "
            f"{r['wall_s']:.2f} | {r['rows'] / r['wall_s']:,.0f} | {cpu} | {r['peak_rss_mib']:.0f} |"
        )
    text = f"""# Benchmark: importing clicks into the Trackly sandbox

Generated by `make bench` ({machine["date"]}) on {machine["cores"]} cores ({machine["cpu"]}),
{machine["memory_gib"]} GiB, Python {machine["python"]}, Airflow {machine["airflow"]}, {machine["os"]}.
Each measurement is a fresh process importing into a freshly emptied sandbox (`python -m
trackly_provider.sandbox`, on the same machine, with the latency per request shown). Wall time
covers the import itself, not interpreter start-up; CPU is the process's user + system time over
the same span, all threads; peak is the process's maximum resident memory, Airflow's imports
included (about 120 MiB of it).

- **floor serial** / **parallel floor (N in flight)**: `fetchmany(1000)` from the same streaming
  cursor plus one POST per 1,000 records whose JSON is already built, with N POSTs open at once,
  each refilled as soon as it answers: the least any importer with that concurrency must do.
- **naive**: what a DAG author writes by hand: `get_records()` of the whole query, then one httpx
  POST per 1,000 rows.
- **operator serial** / **operator default**: `ClickHistoryImportOperator` with 1 and 4 in flight,
  its `execute()` called directly.
- **jitter** suite: latency drawn per request from a log-normal law, mean 300 ms, sigma 1 (median
  180 ms, 1% over 1.9 s), operator and parallel floor at 1, 4, 8 and 16 in flight.
- **taskrunner** suite: the operator through `airflow dags test`, Airflow's own task path (task
  runner, logging, XCom), 1M and 5M rows; peak is the `airflow` process's. `make bench` fails when
  its memory grows by {TASK_RUNNER_GROWTH_MIB} MiB or more from 1M to 5M rows.

![wall time and peak memory](benchmark.png)

![throughput on a jittered network](benchmark-jitter.png)

## Targets

| source | rows | latency | measure | value | verdict |
|---|---|---|---|---|---|
{chr(10).join(latency_targets(results) + jitter_targets(results) + memory_lines)}

## All measurements

| suite | source | rows | latency | approach | wall s | rows/s | CPU s | CPU µs/row | peak MiB |
|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(table)}
"""
    (docs / "benchmark.md").write_text(text)
    _latency_chart([r for r in results if r["suite"] == "latency"], machine, docs / "benchmark.png")
    _jitter_chart([r for r in results if r["suite"] == "jitter"], machine, docs / "benchmark-jitter.png")
    return memory_ok


def _latency_chart(results: list[dict], machine: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    approaches = list(dict.fromkeys(r["approach"] for r in results))
    scenarios = list(dict.fromkeys((r["source"], r["rows"], r["latency_ms"]) for r in results))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 9))
    width = 0.8 / len(approaches)
    for i, approach in enumerate(approaches):
        found = [
            _find(results, "latency", approach=approach, source=s, rows=n, latency_ms=lat)
            for s, n, lat in scenarios
        ]
        xs = [x + i * width for x in range(len(scenarios))]
        top.bar(xs, [r["wall_s"] for r in found], width, label=approach)
        bottom.bar(xs, [r["peak_rss_mib"] for r in found], width, label=approach)
    labels = [f"{s}\n{n // 1000}k rows\n{lat} ms" for s, n, lat in scenarios]
    for axis, title in ((top, "wall time, s (log scale; lower is better)"), (bottom, "peak memory, MiB")):
        axis.set_xticks([x + 0.4 - width / 2 for x in range(len(scenarios))], labels, fontsize=8)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    top.set_yscale("log")
    top.legend(fontsize=8)
    fig.suptitle(
        f"Trackly click import: {machine['cores']} cores, {machine['cpu']}, {machine['date']}", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _jitter_chart(results: list[dict], machine: dict, path: Path) -> None:
    """Records per second against requests in flight, with the ideal ``N x 1000 / mean latency``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(9, 5.5))
    in_flight = sorted({r["in_flight"] for r in results})
    for source in sorted({r["source"] for r in results}):
        for label in ("operator", PARALLEL_FLOOR):
            found = [_find(results, "jitter", approach=label, source=source, in_flight=n) for n in in_flight]
            axis.plot(
                in_flight, [r["rows"] / r["wall_s"] for r in found], marker="o", label=f"{source}, {label}"
            )
    axis.plot(
        in_flight, [n * 1000 / JITTER_MEAN_S for n in in_flight], "k--", label="N x 1000 / mean latency"
    )
    axis.set_xlabel("max_in_flight (requests open at once)")
    axis.set_ylabel("records per second")
    axis.set_xticks(in_flight)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(
        f"Jittered API latency (log-normal, mean 300 ms, sigma 1): "
        f"{machine['cores']} cores, {machine['date']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

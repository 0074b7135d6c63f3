"""Summarise ``mutmut run``: the kill score per module and every mutant that was not killed."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {"killed", "timeout"}  # a mutant that makes a test hang is caught too
# Modules that do I/O or run Airflow; every other mutated module is pure code (docs/architecture.md).
NOT_PURE = {"hooks.trackly", "operators._engine.import_run"}


def module_of(mutant: str) -> str:
    """``trackly_provider.hooks.trackly.x_f__mutmut_3`` -> ``hooks.trackly``."""
    return mutant.split(".x")[0].removeprefix("trackly_provider.")


def main() -> int:
    mutmut = str(Path(sys.executable).parent / "mutmut")
    listing = [mutmut, "results", "--all", "true"]
    out = subprocess.run(listing, capture_output=True, text=True, check=True).stdout
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    not_killed: list[tuple[str, str]] = []
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name.startswith("trackly_provider."):
            continue
        statuses[module_of(name)][status] += 1
        if status not in KILLED:
            not_killed.append((name, status))
    print("| module | mutants | killed | score |")
    print("|---|---|---|---|")
    totals: dict[str, Counter[str]] = {"pure": Counter(), "all": Counter()}
    for module, counts in sorted(statuses.items()):
        total, killed = sum(counts.values()), sum(counts[s] for s in KILLED)
        print(f"| {module} | {total} | {killed} | {killed / total:.1%} |")
        for group in ("all",) if module in NOT_PURE else ("all", "pure"):
            totals[group].update(total=total, killed=killed)
    for group, counts in totals.items():
        total, killed = counts["total"], counts["killed"]
        if total:
            print(f"| **{group}** | {total} | {killed} | {killed / total:.1%} |")
    print(f"\nNot killed ({len(not_killed)}): `mutmut show NAME` shows each one's change.")
    for name, status in not_killed:
        print(f"- {name}: {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

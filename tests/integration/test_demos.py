"""``make demo`` (the README's first command) and ``make demo-migration``, run as users run them."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (REPO / "scripts").is_dir(), reason="the scripts are not in the installed wheel"),
]


def run_script(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / name)], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_the_demo_imports_each_of_its_three_days() -> None:
    table = re.findall(r"^(2025-11-0\d) +1500 +(\d+) +(\d+) +(\d+) +2  success$", run_script("demo.py"), re.M)
    assert [day for day, *_ in table] == ["2025-11-01", "2025-11-02", "2025-11-03"]
    assert all(sum(map(int, counts)) == 1500 for _, *counts in table)  # imported, duplicates, errors


def test_the_migration_demo_holds_the_valid_contacts_and_revenue_and_a_rerun_changes_nothing() -> None:
    output = run_script("demo_migration.py")
    (held, source) = re.findall(r"revenue (\d+\.\d+) \(the source's valid rows: (\d+\.\d+)\)", output)[0]
    assert held == source
    (contacts, members, valid) = re.findall(
        r"holds (\d+) contacts \((\d+) list contacts; the source's valid ones: (\d+)\)", output
    )[0]
    assert contacts == members == valid
    contacts_table = r"^(2025-11-02 again|2025-11-0\d) +(\d+) +(\d+) +(\d+) +6 +5  success, (.*)$"
    runs = re.findall(contacts_table, output, re.M)  # rows, created, updated, 6 errors, 5 undated
    assert [(run, codes) for run, *_, codes in runs] == [
        (run, "invalid_phone 3, list_not_found 1, not_sendable 1, record_too_large 1")
        for run in ("2025-11-01", "2025-11-02", "2025-11-02 again")
    ]
    assert [created for _, _, created, _, _ in runs][-1] == "0"  # the rerun only updates
    assert "The rerun of 2025-11-02 changed nothing in Trackly" in output

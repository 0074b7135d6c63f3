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


DEMO_LINES = """
   54 clicks on a message Trackly does not know (unknown-...): Trackly rejects them (message_not_found)
   41 second clicks on a message clicked that day: Trackly keeps one click per message (duplicate)
   19 clicks without a phone number: rejected before sending (missing_phone_number)
2025-11-01     1500      1461          15      24        2  success
2025-11-02     1500      1464          13      23        2  success
2025-11-03     1500      1461          13      26        2  success
2025-11-01 errors by code: message_not_found 18, missing_phone_number 6
2025-11-02 errors by code: message_not_found 18, missing_phone_number 5
2025-11-03 errors by code: message_not_found 18, missing_phone_number 8
Imported 4386 clicks; the sandbox holds 4386 (GET /_sandbox/counts).
Rerun: the same days again, one manual run with params start_date=2025-11-01 end_date=2025-11-03
2025-11-01     1500         0        1476      24        2  success
2025-11-02     1500         0        1477      23        2  success
2025-11-03     1500         0        1474      26        2  success
Every valid row came back as a duplicate: 0 new; the sandbox holds 4386.
Checked: every count matches the sandbox's own and the rows planted.
"""


def test_the_demo_explains_its_planted_problems_imports_three_days_and_a_rerun_stores_nothing() -> None:
    output = run_script("demo.py").splitlines()
    expected = DEMO_LINES.strip("\n").splitlines()
    assert [line for line in output if line in expected] == expected  # each once, in this order


def test_the_migration_demo_holds_the_valid_contacts_and_revenue_and_a_rerun_changes_nothing() -> None:
    output = run_script("demo_migration.py")
    (held, source) = re.findall(r"revenue (\d+\.\d+) \(the source's valid rows: (\d+\.\d+)\)", output)[0]
    assert held == source
    (contacts, members, valid) = re.findall(
        r"holds (\d+) contacts \((\d+) list contacts; the source's valid ones: (\d+)\)", output
    )[0]
    assert contacts == members == valid
    contacts_table = r"^(2025-11-02 again|2025-11-0\d) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)  (.*)$"
    # run, rows, created, updated, errors, without signup_date, state and codes: day 1's range starts
    # at START_DATE and imports every earlier signup too; day 2 (and its rerun, which only updates)
    # its own signups.
    assert re.findall(contacts_table, output, re.M) == [
        (
            "2025-11-01",
            *("1181", "1175", "0", "6", "5"),
            "success, invalid_phone 3, list_not_found 1, not_sendable 1, record_too_large 1",
        ),
        ("2025-11-02", "19", "19", "0", "0", "0", "success"),
        ("2025-11-02 again", "19", "0", "19", "0", "0", "success"),
    ]
    assert "The rerun of 2025-11-02 changed nothing in Trackly" in output

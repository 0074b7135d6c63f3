"""
``make matrix``: the test suite against the built wheel on every supported Airflow release line.

For each line, a fresh virtualenv on that line's Python gets the wheel, the latest patch of that
Airflow minor and the test extras, resolved with ``--uploaded-prior-to`` shortly after the release
(an approximation of the official constraints, which cannot be downloaded here). The tests and
example DAGs are copied to a work folder outside the source tree, so ``trackly_provider`` can only
come from the installed wheel. Results go to ``.matrix/<line>/result.json`` and ``docs/matrix.md``.

Usage: ``python scripts/matrix.py WHEEL [LINE ...]`` (default: every line).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".matrix"
PIP_VERSION = "26.3"


@dataclass(frozen=True)
class Line:
    """One supported Airflow release line: its latest patch, the Python it runs on, and its date."""

    minor: str
    airflow: str
    python: str
    uploaded_prior_to: str  # the release's upload day + 1: the providers of its day, nothing newer
    pins: tuple[str, ...] = ()  # the few pins a release needs beyond that date, each with its reason
    extras: str = "test,openlineage"


# Airflow 3.0 and 3.1 build every provider's connection form with wtforms (it comes with the FAB
# provider); without it no form is customised, so the lines install it to test ours.
WTFORMS = "wtforms"
# SQLAlchemy 2.1 came out before 3.1.8, which its constraints keep on 2.0 (sqlalchemy-utils breaks).
SQLALCHEMY_2_0 = "sqlalchemy<2.1"

# One Python per line, so that the four lines cover Python 3.10 to 3.13 between them. The oldest line
# goes without the [openlineage] extra: its suite proves the provider works without OpenLineage.
LINES = (
    Line("3.0", "3.0.6", "3.10", "2025-08-30T00:00:00Z", (WTFORMS,), extras="test"),
    Line("3.1", "3.1.8", "3.11", "2026-03-12T00:00:00Z", (WTFORMS, SQLALCHEMY_2_0)),
    Line("3.2", "3.2.2", "3.12", "2026-05-30T00:00:00Z"),
    Line("3.3", "3.3.2", "3.13", "2026-09-18T00:00:00Z"),
)


def find_python(version: str) -> str:
    """The interpreter for ``version``: on PATH, or from pyenv's versions folder."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"))
    if candidates:
        return candidates[-1]
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return found
    raise SystemExit(f"Python {version} not found: install it (e.g. `pyenv install {version}`).")


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def install(line: Line, wheel: Path) -> Path:
    """A venv with the wheel on this line; reused while the wheel and the line are unchanged."""
    home = WORK / line.minor
    venv = home / "venv"
    key = hashlib.sha256(wheel.read_bytes() + repr(line).encode()).hexdigest()[:16]
    stamp = home / f".installed-{key}"
    if stamp.exists():
        return venv
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    run([find_python(line.python), "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    run([*pip, "install", f"pip=={PIP_VERSION}"])
    run(
        [
            *pip,
            "install",
            "--uploaded-prior-to",
            line.uploaded_prior_to,
            f"apache-airflow=={line.airflow}",
            f"{wheel}[{line.extras}]",
            *line.pins,
        ]
    )
    stamp.touch()
    return venv


def copy_suite(home: Path) -> Path:
    """The tests, the example DAGs, the docs they read and the pytest settings, without the package."""
    suite = home / "suite"
    shutil.rmtree(suite, ignore_errors=True)
    suite.mkdir()
    for folder in ("tests", "dags_examples", "docs"):
        shutil.copytree(REPO / folder, suite / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", suite / "pyproject.toml")
    return suite


def versions(python: Path, suite: Path) -> dict[str, str]:
    probe = (
        "import json, sys, importlib.metadata as m, trackly_provider;"
        "print(json.dumps({'python': sys.version.split()[0], 'provider_file': trackly_provider.__file__,"
        "**{n: m.version(n) for n in ('apache-airflow', 'apache-airflow-task-sdk',"
        "'apache-airflow-providers-common-sql', 'httpx', 'pendulum')},"
        "'openlineage': next((d.version for d in m.distributions()"
        " if d.metadata['Name'] == 'apache-airflow-providers-openlineage'), 'not installed')}))"
    )
    out = subprocess.run([str(python), "-c", probe], cwd=suite, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_line(line: Line, wheel: Path) -> dict:
    venv = install(line, wheel)
    home = WORK / line.minor
    suite = copy_suite(home)
    python = venv / "bin" / "python"
    found = versions(python, suite)
    if not found["provider_file"].startswith(str(venv)):
        raise SystemExit(f"trackly_provider came from {found['provider_file']}, not the installed wheel.")
    started = time.monotonic()
    report = home / "junit.xml"
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    outcome = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=suite,
        env=env,
    )
    result = {
        "line": line.minor,
        **found,
        "seconds": round(time.monotonic() - started),
        "exit_code": outcome.returncode,
        **junit_counts(report),
    }
    (home / "result.json").write_text(json.dumps(result, indent=2))
    return result


def junit_counts(report: Path) -> dict[str, int]:
    import xml.etree.ElementTree as ET

    if not report.exists():
        return {"passed": 0, "failed": 0, "skipped": 0}
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    total, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    return {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}


def write_table() -> None:
    """``docs/matrix.md`` from the latest result of every line run on this machine."""
    rows = []
    for line in LINES:
        path = WORK / line.minor / "result.json"
        if path.exists():
            r = json.loads(path.read_text())
            rows.append(
                f"| {line.minor} | {r['apache-airflow']} | {r['python']} | {r['apache-airflow-task-sdk']} | "
                f"{r['apache-airflow-providers-common-sql']} | {r.get('openlineage', '?')} | {r['httpx']} | "
                f"{r['pendulum']} | {line.uploaded_prior_to[:10]} | {r['passed']} | {r['failed']} | "
                f"{r['skipped']} | {r['seconds']} s |"
            )
    header = (
        "# Compatibility matrix\n\n"
        "Written by `make matrix`: the built wheel installed into a fresh virtualenv per Airflow line,\n"
        "dependencies resolved as they were shortly after that release (`--uploaded-prior-to`), and the\n"
        "whole test suite (real SQLite, PostgreSQL, MariaDB, sandbox over HTTP) run against it.\n"
        "On 3.0 the tests that read a failed task's log are skipped: 3.0's `dag.test()` keeps none\n"
        "(their XCom and state checks run on every other line). 3.0 goes without the `[openlineage]`\n"
        "extra: its OpenLineage tests are skipped and one proves an import works without it.\n\n"
        "| line | Airflow | Python | task SDK | common-sql | openlineage | httpx | pendulum | deps as of "
        "| passed | failed | skipped | time |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    (REPO / "docs" / "matrix.md").write_text(header + "\n".join(rows) + "\n")


def main(argv: list[str]) -> int:
    wheel = Path(argv[0]).resolve()
    wanted = argv[1:] or [line.minor for line in LINES]
    unknown = set(wanted) - {line.minor for line in LINES}
    if unknown:
        raise SystemExit(f"Unknown line(s) {sorted(unknown)}; known: {[line.minor for line in LINES]}.")
    results = [test_line(line, wheel) for line in LINES if line.minor in wanted]
    write_table()
    for r in results:
        label = f"Airflow {r['apache-airflow']} / Python {r['python']}"
        print(f"{label}: {r['passed']} passed, {r['failed']} failed.")
    return 0 if all(r["exit_code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

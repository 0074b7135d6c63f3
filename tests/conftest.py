"""Shared fixtures: a throwaway Airflow home, the sandbox over real HTTP, and real source databases."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

# Local time is not UTC here (UTC+05:30, no DST), so code that reads a naive or offset-less value as
# local time fails instead of hiding on UTC machines. The sandbox and Airflow's processes inherit it.
os.environ["TZ"] = "Asia/Kolkata"
time.tzset()
if time.localtime().tm_gmtoff != 19_800:
    raise RuntimeError("TZ=Asia/Kolkata is not in effect: install the time zone data (Debian: tzdata).")

# Airflow reads its configuration when first imported: point it at a throwaway home first.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="trackly-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_AIRFLOW_HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
(_AIRFLOW_HOME / "dags").mkdir()
# Every task's OpenLineage events, one JSON per line (the OpenLineage provider's configuration is
# read once per process, so it is set for the whole session; tests find their events by job name).
OPENLINEAGE_EVENTS = _AIRFLOW_HOME / "openlineage-events.jsonl"
os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(
    {"type": "file", "log_file_path": str(OPENLINEAGE_EVENTS), "append": True}
)

import subprocess  # noqa: E402

import pytest  # noqa: E402

from tests.helpers import (  # noqa: E402
    LEDGER_CONN_ID,
    AirflowRunner,
    MariaDbSource,
    PostgresSource,
    Sandbox,
    SqliteSource,
    register_history_assets,
    set_trackly_connection,
)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """A migrated Airflow metadata database in a temporary home."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    if AIRFLOW_VERSION < (3, 1):  # its dag.test() registers no Asset; a scheduled DAG's are registered
        register_history_assets()
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory):
    """The sandbox as users run it: ``python -m trackly_provider.sandbox`` on a free loopback port."""
    server = Sandbox.start(tmp_path_factory.mktemp("sandbox"))
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox, emptied and without faults, with ``trackly_default`` pointing at it."""
    sandbox_server.reset()
    set_trackly_connection(monkeypatch, sandbox_server.url, sandbox_server.api_key)
    return sandbox_server


@pytest.fixture
def airflow(airflow_home: Path, sandbox: Sandbox) -> AirflowRunner:
    """Runs single-operator DAGs through real Airflow (``dag.test()``)."""
    return AirflowRunner(airflow_home / "dags")


AIRFLOW_VERSION = tuple(int(part) for part in metadata.version("apache-airflow").split(".")[:2])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """
    Mark each test by its folder (``unit`` or ``integration``), so ``-m unit`` selects the fast ones.

    Airflow 3.0's ``dag.test()`` drops a failed task's log, so its message cannot be read there.
    """
    for item in items:
        kind = item.path.parent.name
        if kind in ("unit", "integration"):
            item.add_marker(kind)
    if AIRFLOW_VERSION < (3, 1):
        skip = pytest.mark.skip(reason="Airflow 3.0's dag.test() keeps no log of a failed task")
        for item in items:
            if item.get_closest_marker("reads_failed_task_log"):
                item.add_marker(skip)


@pytest.fixture
def task_output(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture):
    """
    Everything a task printed or logged so far, each message once.

    Airflow 3.2+ prints task logs to stdout through structlog; 3.0 and 3.1 log through the standard
    library, whose records caplog keeps.
    """
    caplog.set_level(logging.INFO)

    def read() -> str:
        printed = "\n".join(
            line for line in capfd.readouterr().out.splitlines() if not _airflow_30_test_comms(line)
        )
        logged = [record.getMessage() for record in caplog.records]
        caplog.clear()
        return "\n".join([printed, *(message for message in logged if message not in printed)])

    return read


def _airflow_30_test_comms(line: str) -> bool:
    """
    Airflow 3.0's in-process supervisor of ``dag.test()`` (``InProcessSupervisorComms.send``) prints
    every request at debug level, the connection's password in ``MaskSecret(value=...)`` included.
    Its real supervisor omits that body ("Received message from task runner (body omitted)"), and
    3.1+ prints no such line: it is Airflow's test harness, not the provider's output.
    """
    return "Sending request" in line and "msg=MaskSecret(" in line


@pytest.fixture
def sqlite_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteSource:
    return SqliteSource.create(tmp_path / "source.db", monkeypatch)


@pytest.fixture
def postgres_source(monkeypatch: pytest.MonkeyPatch):
    source = PostgresSource.create(monkeypatch)
    yield source
    source.drop()


@pytest.fixture
def mariadb_source(monkeypatch: pytest.MonkeyPatch):
    source = MariaDbSource.create(monkeypatch)
    yield source
    source.drop()


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def any_source(request: pytest.FixtureRequest):
    """Each real source database in turn."""
    return request.getfixturevalue(f"{request.param}_source")


@pytest.fixture
def ledger_db(tmp_path, monkeypatch):
    """A SQLite file for the ledger, beside a SQLite source (which cannot hold it while it is read)."""
    path = tmp_path / "ledger.db"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{LEDGER_CONN_ID.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return path


@pytest.fixture(scope="session")
def own_mariadb(tmp_path_factory: pytest.TempPathFactory):
    """
    A MariaDB server of the tests' own (never the shared one of tests/databases.py): default time zone -05:00,
    and ``net_write_timeout`` and ``net_read_timeout`` lowered to 5 s, so that a read the import
    did not set up gets ``TIMESTAMP`` values 5 h off and loses a stream it stops reading for 5 s.
    Skipped, saying why, where the MariaDB server binaries are not installed.
    """
    from tests.mariadb_server import OwnMariaDb

    server = OwnMariaDb.start(
        tmp_path_factory.mktemp("own-mariadb"),
        "--default-time-zone=-05:00",
        "--net-write-timeout=5",
        "--net-read-timeout=5",
    )
    yield server
    server.stop()

"""
One import of a ledger partition at a time (issue 20): two imports of one revenue day started
together, each in its own Airflow process, import it once; an import killed while it holds the
partition leaves no lock behind; and the lock itself on PostgreSQL, MariaDB and a SQLite file.
Real Airflow, real databases, the sandbox over HTTP.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.databases import mariadb_connection, postgres_connection
from tests.helpers import LEDGER_CONN_ID, SOURCE_CONN_ID, AirflowRunner, PostgresSource, Sandbox, wait_for
from tests.integration.test_sends_and_revenue import REVENUE_COLUMNS, REVENUE_SQL, counts, revenue_row
from trackly_provider.database.ledger import ImportLedger
from trackly_provider.database.ledger_lock import PartitionLock
from trackly_provider.database.source import sql_hook
from trackly_provider.exceptions import TracklyPartitionLockedError

LEDGER_CONNECTIONS = {"postgres": postgres_connection(), "mariadb": mariadb_connection()}


@dataclass
class Ledger:
    """The ledger's database as the test sees it: connection ``trackly_ledger``, a table of its own."""

    kind: str
    table: str

    def connect(self) -> Any:
        """A new session, as the import's ledger opens one (the connection's Airflow hook)."""
        return sql_hook(LEDGER_CONN_ID).get_conn()

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``%s`` marks parameters) on a session of its own, committed; its rows."""
        if self.kind == "sqlite":
            sql = sql.replace("%s", "?")
        connection = self.connect()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, parameters)
            rows = list(cursor.fetchall()) if cursor.description else []
            cursor.close()
            connection.commit()
            return rows
        finally:
            connection.close()

    def holder_named(self, session: Any, holder: str) -> str:
        """
        How a waiter's message names the import holding the lock on ``session``: PostgreSQL by its
        backend pid and the holder's text (as application_name), MariaDB by its connection id,
        SQLite by the holder's text (in the lock file).
        """
        if self.kind == "sqlite":
            return f"{holder} (lock file "
        sql = {"postgres": "SELECT pg_backend_pid()", "mariadb": "SELECT CONNECTION_ID()"}[self.kind]
        cursor = session.cursor()
        cursor.execute(sql)
        (session_id,) = cursor.fetchone()
        cursor.close()
        session.commit()
        if self.kind == "postgres":
            return f"PostgreSQL backend pid {session_id} ('{holder}'"
        return f"MySQL/MariaDB connection {session_id} "


@pytest.fixture
def ledger(
    request: pytest.FixtureRequest, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Connection ``trackly_ledger`` to the database named by the parameter, and a table dropped after."""
    kind = request.param
    conn = LEDGER_CONNECTIONS.get(kind) or {"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")}
    monkeypatch.setenv(f"AIRFLOW_CONN_{LEDGER_CONN_ID.upper()}", json.dumps(conn))
    ledger = Ledger(kind, f"trackly_ledger_{uuid.uuid4().hex[:8]}")  # no other test's table
    yield ledger
    ledger.execute(f"DROP TABLE IF EXISTS {ledger.table}")


def load_revenue(source: PostgresSource, rows: list[tuple[Any, ...]]) -> str:
    """The rows in a PostgreSQL table of this test's own (dropped after it); the query reading them."""
    table = f"revenue_{uuid.uuid4().hex[:8]}"
    source.load(table, REVENUE_COLUMNS, rows)
    return REVENUE_SQL.replace("FROM revenue", f"FROM {table}")


# As test_sends_and_revenue.RUN_DAG, then the task's state and XCom return value on a line of their own.
RUN_AND_REPORT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("worker_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test()
(ti,) = run.get_task_instances()
print("\\nRESULT " + json.dumps({"state": str(ti.state), "xcom": ti.xcom_pull(task_ids=ti.task_id)}))
"""


@dataclass
class Worker:
    """A one-task DAG run by ``dag.test()`` in a process of its own, with an Airflow home of its own."""

    process: subprocess.Popen[bytes]
    output: Path

    def result(self) -> tuple[str, dict[str, Any]]:
        """The task's state and XCom return value, as the process printed them last."""
        assert self.process.poll() is not None
        lines = [
            line
            for line in self.output.read_text(errors="replace").splitlines()
            if line.startswith("RESULT ")
        ]
        assert len(lines) == 1, f"the run printed no result:\n{self.log()}"
        result = json.loads(lines[0].removeprefix("RESULT "))
        return result["state"], result["xcom"]

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-5000:]


@pytest.fixture
def start_worker(
    airflow_home: Path, sandbox: Sandbox, tmp_path: Path
) -> Iterator[Callable[[dict[str, Any]], Worker]]:
    """
    Starts a revenue import in a process of its own, as a worker runs a task (its environment
    names the connections, the sandbox's included); any still running at the end is killed.

    Each process gets its own Airflow home, whose metadata database is a copy of the session's
    migrated one: ``dag.test()`` writes every DAG file of its dags folder to the database, and two
    processes doing so at once over one SQLite database collide on the DAG rows.
    """
    started: list[Worker] = []

    def start(kwargs: dict[str, Any]) -> Worker:
        home = tmp_path / f"airflow-{len(started)}"
        (home / "dags").mkdir(parents=True)
        with (
            closing(sqlite3.connect(airflow_home / "airflow.db")) as shared,
            closing(sqlite3.connect(home / "airflow.db")) as copy,
        ):
            shared.backup(copy)
        path, _ = AirflowRunner(home / "dags").write_dag(
            "RevenueHistoryImportOperator", "import_revenue", kwargs
        )
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        }
        output = home / "output.log"
        with output.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-c", RUN_AND_REPORT, str(path)],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its process group: killed whole, as a worker is
            )
        started.append(Worker(process, output))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("ledger", ["postgres", "mariadb", "sqlite"], indirect=True)
def test_two_imports_of_one_day_started_together_import_its_revenue_once(
    sandbox, postgres_source, ledger, start_worker
):
    invalid = set(range(150, 3000, 300))  # 10 rows without revenue: reported, never sent
    rows = [revenue_row(n, revenue=None if n in invalid else Decimal("1.00")) for n in range(3000)]
    valid = [row for row in rows if row[3] is not None]
    sandbox.set_faults(latency_ms=1000)
    batch_size = 300  # 10 requests, 2 at a time: the first import holds the day ~5 s
    kwargs = {
        "sql": load_revenue(postgres_source, rows),
        "sql_conn_id": SOURCE_CONN_ID,
        "batch_size": batch_size,
        "max_in_flight": 2,
        "max_error_rate": 0.01,
        "ledger_conn_id": LEDGER_CONN_ID,
        "ledger_table": ledger.table,
        "ledger_lock_timeout": 120,
    }
    both = [start_worker(kwargs), start_worker(kwargs)]
    wait_for(lambda: all(worker.process.poll() is not None for worker in both), timeout=300)
    assert [worker.process.returncode for worker in both] == [0, 0], [worker.log() for worker in both]
    results = [worker.result() for worker in both]

    # Trackly received each valid row once: the source's total, exactly.
    state = sandbox.state()
    assert Decimal(state["total_revenue"]) == sum(row[3] for row in valid) == Decimal("2990.00")
    assert sorted(record["message_id"] for record in state["revenue"]) == [row[1] for row in valid]
    assert state["requests_seen"] == math.ceil(len(valid) / batch_size)  # one import's requests
    assert [task for task, _ in results] == ["success", "success"], [worker.log() for worker in both]

    # They overlapped: one waited for the other, then found every valid row confirmed, and sent none.
    first, second = sorted((xcom for _, xcom in results), key=lambda xcom: -xcom["success_count"])
    assert second["ledger"]["lock_waited_seconds"] > 0, "one import ended before the other began"
    assert first["ledger"]["lock_waited_seconds"] == 0.0  # took the day at its first try
    assert counts(first) == (3000, len(valid), 0, 10)
    assert counts(second) == (3000, 0, len(valid), 10)
    assert first["errors_by_code"] == second["errors_by_code"] == {"missing_revenue": 10}
    assert (second["ledger"]["confirmed_before"], second["ledger"]["unknown_before"]) == (len(valid), 0)
    assert second["ledger"]["skipped_confirmed"] == len(valid)


@pytest.mark.slow
@pytest.mark.parametrize("ledger", ["postgres", "mariadb", "sqlite"], indirect=True)
def test_an_import_killed_holding_the_partition_leaves_no_lock_behind_for_its_rerun(
    airflow, sandbox, postgres_source, ledger, start_worker
):
    rows = [revenue_row(n) for n in range(3000)]
    sql = load_revenue(postgres_source, rows)
    sandbox.set_faults(latency_ms=100)
    kwargs = {
        "sql": sql,
        "sql_conn_id": SOURCE_CONN_ID,
        "batch_size": 100,
        "max_in_flight": 2,
        "ledger_conn_id": LEDGER_CONN_ID,
        "ledger_table": ledger.table,
        # The query's text changes below, its rows do not. Locks are named by the partition (within a
        # database): no other test's.
        "ledger_partition": f"revenue-day-{uuid.uuid4().hex[:8]}",
        "ledger_lock_timeout": 10,
    }
    worker = start_worker(kwargs)
    wait_for(lambda: worker.process.poll() is not None or sandbox.state()["requests_seen"] >= 10)
    assert worker.process.poll() is None, f"the import ended before it could be killed:\n{worker.log()}"
    os.killpg(worker.process.pid, signal.SIGKILL)  # mid-day, holding the partition
    worker.process.wait()
    wait_for(lambda: sandbox.state()["open_imports"] == 0)  # a request in flight still completes
    sandbox.set_faults()
    stored_before = {record["message_id"] for record in sandbox.state()["revenue"]}
    in_ledger = ledger.execute(f"SELECT state, records, batch_id, message_ids FROM {ledger.table}")
    confirmed = sum(records for state, records, _, _ in in_ledger if state == "confirmed")
    unknown = {batch_id: json.loads(ids) for state, _, batch_id, ids in in_ledger if state == "unknown"}
    unknown_ids = {message_id for ids in unknown.values() for message_id in ids}
    assert 0 < confirmed < len(stored_before) + 1 <= 3000
    assert len(unknown_ids) <= 200  # at most the two batches in flight when the worker died (2 x 100)

    # The rerun takes the partition at once (a stale lock would fail it after 10 s, sending nothing).
    reverse = {**kwargs, "sql": sql.replace("ORDER BY row_id", "ORDER BY row_id DESC")}
    requests_before = len(sandbox.requests())
    rerun = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **reverse)
    assert rerun.xcom is not None, "the rerun failed before it read the day: a lock left behind?"
    sent_by_rerun = [
        record["message_id"] for request in sandbox.requests()[requests_before:] for record in request
    ]
    assert counts(rerun.xcom) == (3000, 3000 - confirmed - len(unknown_ids), confirmed, len(unknown_ids))
    assert rerun.xcom["ledger"]["lock_waited_seconds"] == 0.0  # took the day at its first try
    assert rerun.state == ("failed" if unknown else "success")
    assert sorted(sent_by_rerun) == sorted({row[1] for row in rows} - stored_before - unknown_ids)

    # As the failure message says: a request Trackly stored is set 'confirmed', one it never
    # received is deleted from the ledger, so that the next run sends its records.
    not_stored = 0
    for batch_id, ids in unknown.items():
        if set(ids) <= stored_before:
            ledger.execute(f"UPDATE {ledger.table} SET state = 'confirmed' WHERE batch_id = %s", (batch_id,))
        else:
            assert not set(ids) & stored_before  # a request is stored whole or not at all
            not_stored += len(ids)
            ledger.execute(f"DELETE FROM {ledger.table} WHERE batch_id = %s", (batch_id,))
    final = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **reverse)
    assert final.state == "success"
    assert counts(final.xcom) == (3000, not_stored, 3000 - not_stored, 0)
    revenue = sandbox.state()
    assert sorted(record["message_id"] for record in revenue["revenue"]) == [row[1] for row in rows]
    assert Decimal(revenue["total_revenue"]) == sum(row[3] for row in rows)


@pytest.mark.parametrize("ledger", ["postgres", "mariadb", "sqlite"], indirect=True)
def test_the_partition_lock_names_its_holder_dies_with_its_session_and_locks_one_partition(ledger):
    hook = sql_hook(LEDGER_CONN_ID)
    day_1 = f"day-1-{uuid.uuid4().hex[:8]}"  # locks are named by the partition: no other test's
    day_2 = day_1.replace("day-1", "day-2")
    holder_session = ledger.connect()
    holder = PartitionLock(holder_session, ledger.table, day_1, 0.3, "import A on host-a")
    holder.acquire()
    assert holder.waited_for is None
    held_by = ledger.holder_named(holder_session, "import A on host-a")

    # Another import of the day, on a session of its own, gives up after its bound, naming the holder.
    with (
        pytest.raises(TracklyPartitionLockedError) as refused,
        ImportLedger(hook, ledger.table, day_1, lock_timeout=0.3, holder="import B on host-b"),
    ):
        pass
    message = str(refused.value)
    assert f"Another import of ledger partition '{day_1}' (table {ledger.table}) is still running" in message
    assert "(ledger_lock_timeout=0.3 s)" in message
    assert f"held by {held_by}" in message
    assert "Nothing was sent." in message

    # Another day is never blocked.
    with ImportLedger(hook, ledger.table, day_2, lock_timeout=0, holder="import C") as other_day:
        assert other_day.lock is not None and other_day.lock.waited_for is None

    # While an import waits, the holder goes: its session ends (PostgreSQL, MariaDB: the server drops
    # the lock) or, on SQLite, where the lock is a file beside the database, it releases it.
    def holder_goes_at_the_first_pause(seconds: float) -> None:
        if not gone:
            if ledger.kind == "sqlite":
                holder.release()
            holder_session.close()
            gone.append(True)
        time.sleep(seconds)

    gone: list[bool] = []
    waiter_session = ledger.connect()
    waiter = PartitionLock(
        waiter_session, ledger.table, day_1, 30, "import D", sleep=holder_goes_at_the_first_pause
    )
    waiter.acquire()
    assert gone and waiter.waited_for is not None and waiter.waited_for.startswith(held_by)
    waiter.release()
    waiter_session.close()

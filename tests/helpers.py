"""Test helpers: the sandbox as a subprocess, real source databases, and running DAGs in real Airflow."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.databases import mariadb_connection, mariadb_options, postgres_connection, postgres_dsn
from trackly_provider.sandbox import SANDBOX_API_KEY
from trackly_provider.sandbox.process import start_sandbox, stop_sandbox

REPO = Path(__file__).resolve().parent.parent
SOURCE_CONN_ID = "trackly_source"
REJECTS_TABLE = "trackly_rejects"  # dropped with the PostgreSQL and MariaDB sources' tables
LEDGER_CONN_ID = "trackly_ledger"  # a SQL connection for the ledger, where the source cannot hold it
LEDGER_TABLE = "trackly_import_ledger"  # the revenue operator's default, dropped with PostgreSQL's tables

# A click as the example table holds it: message_id, offer_id, phone_number, sent_at, clicked_at.
Click = tuple[Any, Any, Any, Any, Any]


# A well-formed key and one valid click, for the tests that drive TracklyHook directly.
HOOK_KEY = "trk_0123456789abcdef0123456789ABCDEF"
CLICK_RECORD = {
    "message_id": "m1",
    "offer_id": "o1",
    "phone_number": "+12025559876",
    "timestamp": "2025-11-15T00:00:00Z",
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def phone(n: int) -> str:
    return f"+1202555{n:04d}"


def clicks(count: int, *, start: int = 0, day: datetime | None = None) -> list[Click]:
    """``count`` valid clicks with distinct message ids, a second apart, sent a minute before."""
    base = day or utc(2025, 11, 15)
    return [
        (
            f"msg-{i:07d}",
            f"offer-{i % 7}",
            phone(i % 10000),
            datetime.fromtimestamp(base.timestamp() + i - 60, timezone.utc),
            datetime.fromtimestamp(base.timestamp() + i, timezone.utc),
        )
        for i in range(start, start + count)
    ]


def set_trackly_connection(
    monkeypatch: pytest.MonkeyPatch, url: str, api_key: str, extra: dict[str, Any] | None = None
) -> None:
    conn = {"conn_type": "trackly", "host": url, "password": api_key, "extra": extra or {}}
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_DEFAULT", json.dumps(conn))


class Sandbox:
    """A running ``python -m trackly_provider.sandbox`` and its control endpoints."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url
        self.api_key = SANDBOX_API_KEY
        self._http = httpx.Client(base_url=self.url, timeout=30)

    @classmethod
    def start(cls, workdir: Path) -> Sandbox:
        process, url = start_sandbox(workdir)
        return cls(process, url)

    def stop(self) -> None:
        self._http.close()
        stop_sandbox(self.process)

    def reset(self) -> None:
        """Empty the sandbox once no request is still being handled.

        A request whose client gave up (a read timeout) still completes on the server; resetting
        before it does would let it store records into the next test's empty sandbox.
        """
        deadline = time.monotonic() + 10
        while self.state()["open_imports"] and time.monotonic() < deadline:
            time.sleep(0.05)
        self._http.post("/_sandbox/reset").raise_for_status()

    def set_faults(self, **config: Any) -> None:
        self._http.post("/_sandbox/faults", json=config).raise_for_status()

    def state(self) -> dict[str, Any]:
        return self._http.get("/_sandbox/state").json()

    def requests(self) -> list[list[dict[str, Any]]]:
        """Every click-import request body's records, in the order received."""
        return self.state()["requests"]

    def received(self) -> list[dict[str, Any]]:
        """Every record received, in order, across requests."""
        return [record for request in self.requests() for record in request]

    def stored(self) -> dict[str, dict[str, Any]]:
        """The clicks the sandbox stored, by message id."""
        return self.state()["clicks"]

    def require_sends(self) -> None:
        """As a fresh account: a click or revenue record needs its message imported as a send first."""
        self._http.post("/_sandbox/account", json={"require_sends": True}).raise_for_status()


class SqliteSource:
    """A SQLite file holding ``sms_clicks``, timestamps as UTC text in SQLite's own form."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteSource:
        source = cls(path)
        source.execute(
            "CREATE TABLE sms_clicks (id INTEGER PRIMARY KEY, message_id TEXT, offer_id TEXT, "
            "phone_number TEXT, sent_at TEXT, clicked_at TEXT)"
        )
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)})
        )
        return source

    def execute(self, sql: str, rows: list[Any] | None = None) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.executemany(sql, rows) if rows is not None else conn.execute(sql)
        conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path)) as conn:
            return conn.execute(sql).fetchall()

    @staticmethod
    def _text(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
        return str(value) if isinstance(value, Decimal) else value

    def load(self, table: str, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
        """Create ``table`` with these columns (``text``, ``number``, ``int``) and insert ``rows``."""
        types = {"text": "TEXT", "number": "TEXT", "int": "INTEGER"}
        self.execute(f"DROP TABLE IF EXISTS {table}")
        self.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {types[t]}' for n, t in columns.items())})")
        marks = ", ".join("?" * len(columns))
        self.execute(f"INSERT INTO {table} VALUES ({marks})", [tuple(map(self._text, row)) for row in rows])

    def insert_clicks(self, rows: list[Click]) -> None:
        self.execute(
            "INSERT INTO sms_clicks (message_id, offer_id, phone_number, sent_at, clicked_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(m, o, p, self._text(s), self._text(c)) for m, o, p, s, c in rows],
        )


class PostgresSource:
    """``sms_clicks`` in the shared PostgreSQL (tests/databases.py), timestamps as TIMESTAMPTZ."""

    dialect = "postgres"
    table = "sms_clicks"

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        self.extra = extra or {}
        self.tables = [self.table, REJECTS_TABLE, LEDGER_TABLE]

    def load(self, table: str, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
        """Create ``table`` with these columns (``text``, ``number``, ``int``) and insert ``rows``."""
        types = {"text": "TEXT", "number": "NUMERIC(14, 4)", "int": "BIGINT"}
        self.tables.append(table)
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TABLE {table} ({', '.join(f'{n} {types[t]}' for n, t in columns.items())})")
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(columns))})", rows)

    @staticmethod
    def connect() -> Any:
        import psycopg

        return psycopg.connect(postgres_dsn(), autocommit=True)

    @classmethod
    def create(cls, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any] | None = None) -> PostgresSource:
        source = cls(extra)
        with cls.connect() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {cls.table}")
            conn.execute(
                f"CREATE TABLE {cls.table} (id BIGSERIAL PRIMARY KEY, message_id TEXT, offer_id TEXT, "
                "phone_number TEXT, sent_at TIMESTAMPTZ, clicked_at TIMESTAMPTZ)"
            )
        conn_json = postgres_connection(extra=source.extra)
        monkeypatch.setenv(f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}", json.dumps(conn_json))
        return source

    def insert_clicks(self, rows: list[Click]) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.table} (message_id, offer_id, phone_number, sent_at, clicked_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                rows,
            )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return conn.execute(sql).fetchall()

    def drop(self) -> None:
        with self.connect() as conn:
            for table in self.tables:
                conn.execute(f"DROP TABLE IF EXISTS {table}")


def fetch_all(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` on a DB-API connection, which is closed after."""
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        conn.close()


class MariaDbSource:
    """``sms_clicks`` in the shared MariaDB (tests/databases.py), timestamps as DATETIME(6) in UTC."""

    dialect = "mysql"
    table = "sms_clicks"

    @staticmethod
    def connect() -> Any:
        import MySQLdb

        return MySQLdb.connect(**mariadb_options())

    @classmethod
    def create(cls, monkeypatch: pytest.MonkeyPatch) -> MariaDbSource:
        conn = cls.connect()
        cur = conn.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {cls.table}")
        cur.execute(
            f"CREATE TABLE {cls.table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, message_id VARCHAR(64), "
            "offer_id VARCHAR(64), phone_number VARCHAR(32), sent_at DATETIME(6), clicked_at DATETIME(6))"
        )
        conn.commit()
        conn.close()
        conn_json = mariadb_connection()
        monkeypatch.setenv(f"AIRFLOW_CONN_{SOURCE_CONN_ID.upper()}", json.dumps(conn_json))
        return cls()

    @staticmethod
    def _naive_utc(value: Any) -> Any:
        return value.astimezone(timezone.utc).replace(tzinfo=None) if isinstance(value, datetime) else value

    def insert_clicks(self, rows: list[Click]) -> None:
        conn = self.connect()
        cur = conn.cursor()
        cur.executemany(
            f"INSERT INTO {self.table} (message_id, offer_id, phone_number, sent_at, clicked_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(m, o, p, self._naive_utc(s), self._naive_utc(c)) for m, o, p, s, c in rows],
        )
        conn.commit()
        conn.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return fetch_all(self.connect(), sql)

    def load(self, table: str, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
        """Create ``table`` with these columns (``text``, ``number``, ``int``) and insert ``rows``."""
        types = {"text": "VARCHAR(255)", "number": "DECIMAL(14, 4)", "int": "BIGINT"}
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(
                f"CREATE TABLE {table} ({', '.join(f'{n} {types[t]}' for n, t in columns.items())})"
            )
            cursor.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(columns))})", rows)
            conn.commit()
        finally:
            conn.close()

    def drop(self) -> None:
        conn = self.connect()
        conn.cursor().execute(f"DROP TABLE IF EXISTS {self.table}")
        conn.cursor().execute(f"DROP TABLE IF EXISTS {REJECTS_TABLE}")
        conn.close()


SELECT_ALL = (
    "SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp "
    "FROM sms_clicks ORDER BY id"
)

DAG_TEMPLATE = """\
import pendulum
from airflow.sdk import DAG
from trackly_provider.operators import {operator}

with DAG(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")) as dag:
    {operator}(task_id={task_id!r}, **{kwargs!r})
"""


@dataclass
class RunResult:
    """What one DAG run left: task state, the XCom ``return_value``, and the task's log output."""

    state: str
    xcom: Any
    dag_id: str
    run_id: str


class AirflowRunner:
    """Writes a one-operator DAG into the dags folder and runs it with ``dag.test()``."""

    def __init__(self, dags_dir: Path) -> None:
        self.dags_dir = dags_dir

    def run_operator(
        self,
        operator: str = "ClickHistoryImportOperator",
        task_id: str = "import_clicks",
        **operator_kwargs: Any,
    ) -> RunResult:
        operator_kwargs.setdefault("sql_conn_id", SOURCE_CONN_ID)
        operator_kwargs.setdefault("sql", SELECT_ALL)
        path, dag_id = self.write_dag(operator, task_id, operator_kwargs)
        try:
            dag = load_dag(path, dag_id)
            run = dag.test()
        finally:
            path.unlink()
        (ti,) = run.get_task_instances()
        xcom = ti.xcom_pull(task_ids=task_id)
        return RunResult(state=str(ti.state), xcom=xcom, dag_id=dag_id, run_id=run.run_id)

    def write_dag(self, operator: str, task_id: str, operator_kwargs: dict[str, Any]) -> tuple[Path, str]:
        """A one-operator DAG file in the dags folder, and its dag id."""
        dag_id = f"test_{uuid.uuid4().hex[:10]}"
        path = self.dags_dir / f"{dag_id}.py"
        path.write_text(
            DAG_TEMPLATE.format(dag_id=dag_id, operator=operator, task_id=task_id, kwargs=operator_kwargs)
        )
        return path, dag_id


def register_history_assets() -> None:
    """
    Register the example DAGs' Assets as active, as a DAG processor parsing them does.

    Airflow 3.0's ``dag.test()`` writes nothing of the DAG to the metadata database, so a task
    with an outlet that was never parsed fails there (``AirflowInactiveAssetInInletOrOutletException``).
    """
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from trackly_provider.trackly_api.entities import CLICKS, CONTACTS, REVENUE, SENDS
    from trackly_provider.utils.assets import trackly_asset

    with create_session() as session:
        for entity in (CONTACTS, SENDS, CLICKS, REVENUE):
            asset = trackly_asset(entity)
            if session.scalar(select(AssetModel).where(AssetModel.uri == asset.uri)) is None:
                model = AssetModel(name=asset.name, uri=asset.uri, group=asset.group, extra=asset.extra)
                session.add(model)
                session.add(AssetActive.for_asset(model))


def load_dag(path: Path, dag_id: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"dag_{dag_id}_{uuid.uuid4().hex[:6]}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def wait_for(condition: Any, timeout: float = 120) -> None:
    """Poll ``condition()`` every 20 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)

"""
The migration example DAG in real Airflow, on a fresh account: contacts first (by signup day),
then per day sends -> clicks -> revenue; reruns that change nothing.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import REPO, load_dag
from trackly_provider.sandbox import SANDBOX_LIST_NUMBER
from trackly_provider.version_compat import AIRFLOW_V_3_1_PLUS

DAG_FILE = REPO / "dags_examples" / "trackly_history_migration.py"
DAYS = ("2025-11-01", "2025-11-02")  # the DAG's START_DATE and the day after
RANGE = {"start_date": DAYS[0], "end_date": DAYS[1], "dry_run": False}
UNKNOWN_LIST = "+18005550199"  # a well-formed list number that is not the sandbox account's

# Each message m-<day>-<n> goes to +1202555000<n> (both days); each contact signs up as its name says.
EARLIER, UNDATED, FIRST_DAY, SECOND_DAY, LATER = (f"+1202555{n:04d}" for n in range(5))
CONTACTS = [  # phone_number, list_number, signup_date (UTC), ip_address, url, plan
    (EARLIER, SANDBOX_LIST_NUMBER, "2025-10-20 09:00:00", "203.0.113.7", "https://example.com/join", "gold"),
    (UNDATED, SANDBOX_LIST_NUMBER, None, None, None, None),
    (FIRST_DAY, SANDBOX_LIST_NUMBER, "2025-11-01 00:30:00", None, None, "silver"),
    (SECOND_DAY, SANDBOX_LIST_NUMBER, "2025-11-02 00:00:00", None, None, None),  # on the bound: day 2
    (LATER, SANDBOX_LIST_NUMBER, "2025-11-03 00:00:00", None, None, None),  # after the range
]
# Each day: m-<day>-0 sold twice (two equal sales, both kept), m-<day>-1 and -2 once.
SALES = [(0, Decimal("2.50")), (0, Decimal("2.50")), (1, Decimal("1.25")), (2, Decimal("4.00"))]
CONTACT_COLUMNS = ("phone_number", "list_number", "signup_date", "ip_address", "url", "plan")
HISTORY = {
    "sms_sends": {
        "message_id": "text",
        "to_number": "text",
        "list_id": "text",
        "message": "text",
        "delivered": "int",
        "sent_at": "time",
    },
    "sms_clicks": {
        "message_id": "text",
        "offer_id": "text",
        "phone_number": "text",
        "sent_at": "time",
        "clicked_at": "time",
    },
    "sms_revenue": {
        "message_id": "text",
        "offer_id": "text",
        "revenue": "number",
        "payout": "number",
        "earned_at": "time",
    },
    "sms_contacts": dict.fromkeys(CONTACT_COLUMNS, "text") | {"signup_date": "time"},
}
TYPES = {
    "sqlite": {"text": "TEXT", "int": "INTEGER", "number": "TEXT", "time": "TEXT"},
    "postgres": {"text": "TEXT", "int": "BIGINT", "number": "NUMERIC(14, 4)", "time": "TIMESTAMPTZ"},
    "mysql": {"text": "VARCHAR(255)", "int": "BIGINT", "number": "DECIMAL(14, 4)", "time": "DATETIME(6)"},
}


def fresh_account(sandbox, **settings: bool) -> None:
    """As a new Trackly account: sends need their list, clicks and revenue their send, revenue its contact."""
    body = {"require_sends": True, "require_contacts": True, **settings}
    httpx.post(f"{sandbox.url}/_sandbox/account", json=body).raise_for_status()


def history_rows() -> dict[str, list[tuple[Any, ...]]]:
    """Two days of sends (3 a day), clicks (2 a day) and revenue (``SALES``), UTC text."""
    return {
        "sms_sends": [
            (f"m-{day}-{n}", f"+1202555{n:04d}", "1", "Hi", 1, f"{day} 0{n + 1}:00:00")
            for day in DAYS
            for n in range(3)
        ],
        "sms_clicks": [
            (f"m-{day}-{n}", "o1", f"+1202555{n:04d}", None, f"{day} 1{n}:00:00")
            for day in DAYS
            for n in range(2)
        ],
        "sms_revenue": [
            (f"m-{day}-{n}", "o1", amount, None, f"{day} 20:00:00") for day in DAYS for n, amount in SALES
        ],
    }


def load(source: Any, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    """Create the tables in the source with its own timestamp type (UTC), and insert the rows."""
    types = TYPES[source.dialect]
    for table, rows in tables.items():
        columns = HISTORY[table]
        create = f"CREATE TABLE {table} ({', '.join(f'{n} {types[t]}' for n, t in columns.items())})"
        times = [i for i, kind in enumerate(columns.values()) if kind == "time"]
        values = [
            tuple(
                as_time(source.dialect, v) if i in times else as_value(source.dialect, v)
                for i, v in enumerate(row)
            )
            for row in rows
        ]
        if source.dialect == "sqlite":
            with closing(sqlite3.connect(source.path)) as conn, conn:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(create)
                conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", values)
            continue
        conn = source.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(create)
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
            conn.commit()
        finally:
            conn.close()


def as_time(dialect: str, text: str | None) -> Any:
    """UTC text as each source stores it: text (SQLite), aware (PostgreSQL), naive UTC (MySQL)."""
    if text is None or dialect == "sqlite":
        return text
    moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return moment.replace(tzinfo=None) if dialect == "mysql" else moment


def as_value(dialect: str, value: Any) -> Any:
    """Decimals as text for SQLite (its driver binds none), as they are elsewhere."""
    return str(value) if dialect == "sqlite" and isinstance(value, Decimal) else value


@pytest.fixture
def deployed(airflow, tmp_path, monkeypatch):
    """The DAG as a user deploys it (a SQLite file for the ledger); returns a loader of it."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRACKLY_LEDGER",
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")}),
    )
    target = Path(airflow.dags_dir) / DAG_FILE.name
    shutil.copy(DAG_FILE, target)
    yield lambda: load_dag(target, "trackly_history_migration")
    target.unlink()


@pytest.fixture
def migration_dag(deployed, sqlite_source):
    """The DAG over a SQLite source with two days of history and the ``CONTACTS``."""
    load(sqlite_source, {**history_rows(), "sms_contacts": CONTACTS})
    return deployed()


def results(run) -> dict[tuple[str, str], tuple[str, tuple[int, int, int, int]]]:
    """(entity, day) -> (state, (rows_read, success, duplicates, errors)) of each mapped import.

    Days by map index (its place in plan_days' list): a task that never ran has no label.
    """
    found = {}
    for ti in run.get_task_instances():
        if ti.task_id.startswith("migrate_day.import_"):
            x = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index) or {}
            counts = tuple(
                x.get(k, -1) for k in ("rows_read", "success_count", "duplicates_skipped", "error_count")
            )
            found[(ti.task_id.rpartition("_")[2], DAYS[ti.map_index])] = (str(ti.state), counts)
    return found


def task_result(run, task_id: str) -> tuple[str, Any]:
    """A non-mapped task's state and XCom."""
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    return str(ti.state), ti.xcom_pull(task_ids=task_id)


def contact_counts(run) -> tuple[str, dict[str, int]]:
    state, x = task_result(run, "import_contacts")
    if x is None:  # it never ran (upstream_failed) or failed early
        return state, {}
    keys = ("rows_read", "success_count", "error_count", "list_contacts_created", "contacts_updated")
    return state, {**{k: x[k] for k in keys}, "undated": x.get("records_without_signup_date", 0)}


def revenue_amounts(state: dict[str, Any]) -> list[Decimal]:
    return sorted(Decimal(str(record["revenue"])) for record in state["revenue"])


def test_contacts_are_imported_once_per_run_before_every_days_sends(migration_dag):
    tasks = migration_dag.task_dict
    assert tasks["plan_days"].upstream_task_ids == {"check_connections"}
    downstream = tasks["check_connections"].get_flat_relative_ids(upstream=False)
    assert downstream == set(tasks) - {"check_connections"}  # every other task runs after the check
    contacts = tasks["import_contacts"]
    assert contacts.upstream_task_ids == {"contacts_range"}
    assert tasks["contacts_range"].upstream_task_ids == {"plan_days"}
    # As shipped (no schedule), a run's contacts do not wait for the run before (see below).
    assert (contacts.depends_on_past, contacts.wait_for_downstream) == (False, False)
    assert tasks["migrate_day.import_sends"].upstream_task_ids == {"import_contacts", "plan_days"}
    assert tasks["migrate_day.import_clicks"].upstream_task_ids == {"migrate_day.import_sends", "plan_days"}
    assert tasks["migrate_day.import_revenue"].upstream_task_ids == {"migrate_day.import_clicks", "plan_days"}
    assert [t.task_id for t in migration_dag.tasks if t.depends_on_past] == []


def test_with_a_schedule_each_runs_contacts_wait_for_the_previous_runs(airflow, deployed, sqlite_source):
    """A user who sets SCHEDULE for nightly runs gets contacts one run after the other."""
    target = Path(airflow.dags_dir) / DAG_FILE.name
    text = target.read_text()
    assert text.count("\nSCHEDULE = None\n") == 1
    target.write_text(text.replace("\nSCHEDULE = None\n", "\nSCHEDULE = NIGHTLY\n"))
    dag = deployed()
    contacts = dag.task_dict["import_contacts"]
    assert (contacts.depends_on_past, contacts.wait_for_downstream) == (True, False)
    assert [t.task_id for t in dag.tasks if t.depends_on_past] == ["import_contacts"]


def test_a_run_that_failed_before_its_contacts_does_not_hold_back_the_next(migration_dag, sandbox):
    """The first hour: a trigger without a range fails; the next, with one, runs (no depends_on_past wait)."""
    fresh_account(sandbox)
    failed = migration_dag.test()
    assert task_result(failed, "import_contacts")[0] == "upstream_failed"
    second = migration_dag.test(run_conf=RANGE)
    assert task_result(second, "import_contacts")[0] == "success"
    assert {state for state, _ in results(second).values()} == {"success"}


def test_a_fresh_account_gets_its_contacts_first_and_the_revenue_exactly(migration_dag, sandbox):
    fresh_account(sandbox)
    first = migration_dag.test(run_conf=RANGE)
    assert results(first) == {
        **{("sends", day): ("success", (3, 3, 0, 0)) for day in DAYS},
        **{("clicks", day): ("success", (2, 2, 0, 0)) for day in DAYS},
        **{("revenue", day): ("success", (4, 4, 0, 0)) for day in DAYS},
    }
    assert contact_counts(first) == (
        "success",
        {
            "rows_read": 4,  # earlier, undated, each day's: not the one who signed up after the range
            "success_count": 4,
            "error_count": 0,
            "list_contacts_created": 4,
            "contacts_updated": 0,
            "undated": 1,
        },
    )
    stored = sandbox.state()
    assert stored["contacts"].keys() == {EARLIER, UNDATED, FIRST_DAY, SECOND_DAY}
    assert revenue_amounts(stored) == sorted(amount for _ in DAYS for _, amount in SALES)
    assert Decimal(stored["total_revenue"]) == Decimal("20.50")
    members = {member["phone_number"]: member for member in stored["list_contacts"]}
    assert members[EARLIER] == {
        "phone_number": EARLIER,
        "list_number": SANDBOX_LIST_NUMBER,
        "signup_date": "2025-10-20T09:00:00+00:00",
        "ip_address": "203.0.113.7",
        "url": "https://example.com/join",
        "custom_fields": {"plan": "gold"},
    }

    again = migration_dag.test(run_conf=RANGE)
    assert contact_counts(again) == (
        "success",
        {
            "rows_read": 4,
            "success_count": 4,
            "error_count": 0,
            "list_contacts_created": 0,
            "contacts_updated": 4,
            "undated": 1,
        },
    )
    assert results(again) == {
        **{("sends", day): ("success", (3, 0, 3, 0)) for day in DAYS},
        **{("clicks", day): ("success", (2, 0, 2, 0)) for day in DAYS},
        **{("revenue", day): ("success", (4, 0, 4, 0)) for day in DAYS},
    }
    after = sandbox.state()
    for key in ("contacts", "list_contacts", "sends", "clicks", "revenue", "total_revenue"):
        assert after[key] == stored[key], key


def test_without_contacts_a_fresh_account_rejects_every_revenue_record_contact_not_found(
    migration_dag, sqlite_source, sandbox
):
    fresh_account(sandbox)
    sqlite_source.execute("DELETE FROM sms_contacts")
    run = migration_dag.test(run_conf=RANGE)
    assert contact_counts(run)[0] == "success"
    assert {key: value for key, value in results(run).items() if key[0] != "revenue"} == {
        **{("sends", day): ("success", (3, 3, 0, 0)) for day in DAYS},
        **{("clicks", day): ("success", (2, 2, 0, 0)) for day in DAYS},
    }
    for ti in run.get_task_instances():
        if ti.task_id == "migrate_day.import_revenue":
            x = ti.xcom_pull(task_ids=ti.task_id, map_indexes=ti.map_index)
            assert (str(ti.state), x["rows_read"], x["errors_by_code"]) == (
                "failed",
                4,
                {"contact_not_found": 4},
            )
    stored = sandbox.state()
    assert (stored["contacts"], stored["revenue"], len(stored["sends"])) == ({}, [], 6)


def test_a_range_after_the_first_day_imports_only_its_own_signups(migration_dag, sandbox):
    fresh_account(sandbox)
    run = migration_dag.test(run_conf={"start_date": DAYS[1], "end_date": DAYS[1], "dry_run": False})
    assert contact_counts(run)[1]["rows_read"] == 1
    assert sandbox.state()["contacts"].keys() == {SECOND_DAY}  # not the earlier or undated ones
    # The documented cost: this day's buyers signed up earlier, so a fresh account knows none of them.
    (revenue,) = [ti for ti in run.get_task_instances() if ti.task_id == "migrate_day.import_revenue"]
    x = revenue.xcom_pull(task_ids=revenue.task_id, map_indexes=revenue.map_index)
    assert (str(revenue.state), x["errors_by_code"]) == ("failed", {"contact_not_found": 4})


def test_a_day_whose_sends_fail_stops_there_and_the_other_day_goes_on(migration_dag, sqlite_source, sandbox):
    fresh_account(sandbox)
    sqlite_source.execute(f"UPDATE sms_sends SET to_number = 'not a number' WHERE sent_at LIKE '{DAYS[0]}%'")
    run = migration_dag.test(run_conf=RANGE)
    states = {key: state for key, (state, _) in results(run).items()}
    labels = {(ti.task_id, ti.map_index): ti.rendered_map_index for ti in run.get_task_instances()}
    # The failed try names its day (on 3.1+; 3.0 labels none: Airflow's map index, 0)
    assert labels[("migrate_day.import_sends", 0)] == (DAYS[0] if AIRFLOW_V_3_1_PLUS else "0")
    assert labels[("migrate_day.import_revenue", 1)] == (DAYS[1] if AIRFLOW_V_3_1_PLUS else "1")
    assert states == {
        ("sends", DAYS[0]): "failed",
        ("clicks", DAYS[0]): "upstream_failed",
        ("revenue", DAYS[0]): "upstream_failed",
        ("sends", DAYS[1]): "success",
        ("clicks", DAYS[1]): "success",
        ("revenue", DAYS[1]): "success",
    }


@pytest.fixture
def dropped_after(any_source):
    """Each source's migration tables, dropped after the test (the sources drop their own only)."""
    yield any_source
    if any_source.dialect != "sqlite":
        conn = any_source.connect()
        try:
            for table in HISTORY:
                conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
        finally:
            conn.close()


def test_the_first_days_contacts_query_reads_earlier_and_undated_signups_on_every_source(
    deployed, dropped_after, sandbox
):
    """The bounds and the NULL flag on each driver: SQLite text, PostgreSQL TIMESTAMPTZ, MySQL DATETIME(6)."""
    fresh_account(sandbox)
    load(
        dropped_after,
        {"sms_sends": [], "sms_clicks": [], "sms_revenue": [], "sms_contacts": CONTACTS},
    )
    run = deployed().test(run_conf={"start_date": DAYS[0], "end_date": DAYS[0], "dry_run": False})
    assert contact_counts(run)[0] == "success"
    assert sandbox.state()["contacts"].keys() == {EARLIER, UNDATED, FIRST_DAY}  # not day 2's, on its bound


def test_each_days_imports_are_labelled_with_the_day(migration_dag, sandbox):
    """On Airflow 3.1+; 3.0 cannot render the group's argument in a label: its map index, and it runs."""
    fresh_account(sandbox)
    run = migration_dag.test(run_conf=RANGE)
    labels = {
        (ti.task_id, ti.rendered_map_index, str(ti.state))
        for ti in run.get_task_instances()
        if ti.task_id.startswith("migrate_day.")
    }
    assert labels == {
        (f"migrate_day.import_{entity}", day if AIRFLOW_V_3_1_PLUS else str(index), "success")
        for entity in ("sends", "clicks", "revenue")
        for index, day in enumerate(DAYS)
    }


def test_switching_it_on_runs_nothing_until_triggered_and_a_trigger_runs_unpaused(migration_dag):
    assert (migration_dag.timetable.can_be_scheduled, migration_dag.catchup) == (False, False)
    assert migration_dag.is_paused_upon_creation is False


@pytest.mark.reads_failed_task_log
def test_a_run_without_a_range_fails_plan_days_at_once_saying_how_to_trigger_it(
    migration_dag, sandbox, task_output
):
    run = migration_dag.test()
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert (states["check_connections"], states["plan_days"]) == ("success", "failed")
    assert [ti.try_number for ti in run.get_task_instances() if ti.task_id == "plan_days"] == [1]
    assert sandbox.state()["requests_seen"] == 0
    assert (
        "DAG 'trackly_history_migration' has no schedule, so a run imports only the days it is given: "
        "trigger it with the params start_date and end_date (YYYY-MM-DD, UTC, both included; in the "
        "trigger form, pick both dates), e.g. airflow dags trigger trackly_history_migration -c "
        '\'{"start_date": "2025-11-01", "end_date": "2025-11-07"}\'.'
    ) in task_output()


@pytest.mark.reads_failed_task_log
def test_missing_connections_fail_the_first_task_before_anything_is_sent(
    migration_dag, sandbox, task_output, monkeypatch
):
    """The ledger's connection no setup step named, and a typo in the source's, both at once."""
    fresh_account(sandbox)
    monkeypatch.delenv("AIRFLOW_CONN_TRACKLY_LEDGER")
    monkeypatch.delenv("AIRFLOW_CONN_TRACKLY_SOURCE")
    run = migration_dag.test(run_conf=RANGE)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["check_connections"] == "failed"
    assert "success" not in {state for task, state in states.items() if task != "check_connections"}
    assert sandbox.state()["requests_seen"] == 0
    output = task_output()
    assert "2 connections cannot be used; nothing was read or sent:\n" in output
    assert "- Connection 'trackly_source' (sql_conn_id, the source database) is not defined" in output
    assert (
        "- Connection 'trackly_ledger' (ledger_conn_id, the revenue ledger) is not defined: add it in "
        "Admin > Connections, or run `airflow connections add trackly_ledger --conn-json "
    ) in output

"""The migration example DAG in real Airflow: per day sends -> clicks -> revenue, reruns that add nothing."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import REPO, load_dag

DAG_FILE = REPO / "dags_examples" / "trackly_history_migration.py"
DAYS = ("2025-11-14", "2025-11-15")


@pytest.fixture
def migration_dag(airflow, sqlite_source, tmp_path, monkeypatch):
    """The DAG as a user deploys it, over a SQLite source with two days of the three tables."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_TRACKLY_LEDGER",
        json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")}),
    )
    sqlite_source.execute("DROP TABLE sms_clicks")
    sqlite_source.load(
        "sms_sends",
        {
            "message_id": "text",
            "to_number": "text",
            "list_id": "text",
            "message": "text",
            "delivered": "int",
            "sent_at": "text",
        },
        [
            (f"m-{day}-{n}", f"+1202555{n:04d}", "1", "Hi", 1, f"{day} 0{n}:00:00")
            for day in DAYS
            for n in range(3)
        ],
    )
    sqlite_source.load(
        "sms_clicks",
        {
            "message_id": "text",
            "offer_id": "text",
            "phone_number": "text",
            "sent_at": "text",
            "clicked_at": "text",
        },
        [
            (f"m-{day}-{n}", "o1", f"+1202555{n:04d}", None, f"{day} 1{n}:00:00")
            for day in DAYS
            for n in range(2)
        ],
    )
    sqlite_source.load(
        "sms_revenue",
        {
            "message_id": "text",
            "offer_id": "text",
            "revenue": "number",
            "payout": "number",
            "earned_at": "text",
        },
        [(f"m-{day}-0", "o1", Decimal("2.50"), None, f"{day} 20:00:00") for day in DAYS]
        + [(f"m-{day}-0", "o1", Decimal("2.50"), None, f"{day} 20:00:00") for day in DAYS],  # two equal sales
    )
    target = Path(airflow.dags_dir) / DAG_FILE.name
    shutil.copy(DAG_FILE, target)
    yield load_dag(target, "trackly_history_migration")
    target.unlink()


def results(run) -> dict[tuple[str, str], tuple[str, tuple[int, int, int, int]]]:
    """(entity, day) -> (state, (rows_read, success, duplicates, errors)) of each mapped import.

    Days by map index: the DAG renders no map index label (Airflow 3.0 cannot, in a mapped group).
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


def test_each_day_imports_its_sends_then_its_clicks_then_its_revenue(migration_dag):
    group = {task.task_id: task for task in migration_dag.tasks if task.task_id.startswith("migrate_day.")}
    assert group["migrate_day.import_clicks"].upstream_task_ids == {"migrate_day.import_sends", "plan_days"}
    assert group["migrate_day.import_revenue"].upstream_task_ids == {"migrate_day.import_clicks", "plan_days"}


def test_a_manual_range_migrates_both_days_in_order_and_a_rerun_adds_nothing(migration_dag, sandbox):
    sandbox.require_sends()  # a fresh account: clicks and revenue need their sends imported first
    conf = {"start_date": DAYS[0], "end_date": DAYS[1], "dry_run": False}
    first = results(migration_dag.test(run_conf=conf))
    assert first == {
        **{("sends", day): ("success", (3, 3, 0, 0)) for day in DAYS},
        **{("clicks", day): ("success", (2, 2, 0, 0)) for day in DAYS},
        **{("revenue", day): ("success", (2, 2, 0, 0)) for day in DAYS},
    }
    again = results(migration_dag.test(run_conf=conf))
    assert again == {
        **{("sends", day): ("success", (3, 0, 3, 0)) for day in DAYS},
        **{("clicks", day): ("success", (2, 0, 2, 0)) for day in DAYS},
        **{("revenue", day): ("success", (2, 0, 2, 0)) for day in DAYS},
    }
    state = sandbox.state()
    assert (len(state["sends"]), len(state["clicks"]), len(state["revenue"])) == (6, 4, 4)
    assert Decimal(state["total_revenue"]) == Decimal("10.00")


def test_a_day_whose_sends_fail_stops_there_and_the_other_day_goes_on(migration_dag, sqlite_source, sandbox):
    sandbox.require_sends()
    sqlite_source.execute(f"UPDATE sms_sends SET to_number = 'not a number' WHERE sent_at LIKE '{DAYS[0]}%'")
    run = migration_dag.test(run_conf={"start_date": DAYS[0], "end_date": DAYS[1], "dry_run": False})
    states = {key: state for key, (state, _) in results(run).items()}
    assert states == {
        ("sends", DAYS[0]): "failed",
        ("clicks", DAYS[0]): "upstream_failed",
        ("revenue", DAYS[0]): "upstream_failed",
        ("sends", DAYS[1]): "success",
        ("clicks", DAYS[1]): "success",
        ("revenue", DAYS[1]): "success",
    }

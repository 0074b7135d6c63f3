"""The example DAG in real Airflow: parsing, its timetable, day boundaries on every source, manual ranges."""

from __future__ import annotations

import re
import shutil
import socket
import warnings
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import REPO, load_dag, utc
from trackly_provider.version_compat import CronDataIntervalTimetable

DAGS_EXAMPLES = REPO / "dags_examples"
DAG_FILE = DAGS_EXAMPLES / "trackly_click_history_backfill.py"
DAY = utc(2025, 11, 15)
US = timedelta(microseconds=1)


@pytest.fixture
def backfill_dag(airflow):
    """The example DAG, copied into the test dags folder as a user would deploy it."""
    target = Path(airflow.dags_dir) / DAG_FILE.name
    shutil.copy(DAG_FILE, target)
    yield load_dag(target, "trackly_click_history_backfill")
    target.unlink()


def run_day(dag, day):
    """A run whose data interval is ``[day, day + 1)``, as the scheduler creates for ``day``.

    ``dag.test(logical_date=X)`` infers the interval that ends at X, as Airflow does for manual runs.
    """
    return dag.test(logical_date=day + timedelta(days=1))


def import_results(run) -> dict[str, dict]:
    """The XCom counts of each mapped import, by day (the rendered map index)."""
    return {
        ti.rendered_map_index: ti.xcom_pull(task_ids="import_clicks", map_indexes=ti.map_index)
        for ti in run.get_task_instances()
        if ti.task_id == "import_clicks"
    }


def task_states(run) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in run.get_task_instances()}


def boundary_rows():
    """Clicks at and around the midnights that bound DAY, each named after the day it belongs to."""
    moments = {
        "prev-last": DAY - US,
        "day-first": DAY,
        "day-second": DAY + US,
        "day-last": DAY + timedelta(days=1) - US,
        "next-first": DAY + timedelta(days=1),
        "next-second": DAY + timedelta(days=1) + US,
        "prev-first": DAY - timedelta(days=1),
    }
    return [(name, "offer-1", "+12025550100", None, moment) for name, moment in moments.items()]


def test_every_example_dag_imports_without_errors_or_warnings_of_ours():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(DAGS_EXAMPLES))
    assert bag.import_errors == {}
    assert "trackly_click_history_backfill" in bag.dag_ids
    ours = [w for w in caught if "trackly" in str(w.filename) or "dags_examples" in str(w.filename)]
    assert ours == []


def test_every_example_import_task_has_an_execution_timeout():
    """A stalled proxy or source cannot hold a worker slot for ever: Airflow ends the task."""
    timeouts = {}
    for name, dag_id in (
        ("trackly_click_history_backfill.py", "trackly_click_history_backfill"),
        ("trackly_history_migration.py", "trackly_history_migration"),
    ):
        for task in load_dag(DAGS_EXAMPLES / name, dag_id).tasks:
            if task.task_id.startswith(("import_", "migrate_day.import_")):
                timeouts[task.task_id] = task.execution_timeout
    assert timeouts == dict.fromkeys(
        [
            "import_clicks",
            "import_contacts",
            "migrate_day.import_sends",
            "migrate_day.import_clicks",
            "migrate_day.import_revenue",
        ],
        timedelta(hours=2),
    )


def test_parsing_opens_no_connection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the DAG file opened a connection at parse time")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr("trackly_provider.version_compat.BaseHook.get_connection", refuse)
    dag = load_dag(DAG_FILE, "trackly_click_history_backfill")
    assert dag.dag_id == "trackly_click_history_backfill"


def test_timetable_gives_one_utc_day_and_runs_after_it_ends():
    from airflow.timetables.base import DataInterval, TimeRestriction

    dag = load_dag(DAG_FILE, "trackly_click_history_backfill")
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:  # Airflow 3.0, 3.1: the DAG holds the scheduler's timetable itself
        timetable = dag.timetable
    else:
        timetable = coerce_to_core_timetable(dag.timetable)
    restriction = TimeRestriction(earliest=utc(2025, 11, 1), latest=None, catchup=True)
    first = timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert first.data_interval == DataInterval(utc(2025, 11, 1), utc(2025, 11, 2))
    assert first.run_after == utc(2025, 11, 2)  # day 1 is imported only once it is over
    second = timetable.next_dagrun_info(
        last_automated_data_interval=first.data_interval, restriction=restriction
    )
    assert second.data_interval == DataInterval(utc(2025, 11, 2), utc(2025, 11, 3))
    assert second.run_after == second.data_interval.end
    assert dag.max_active_runs == 4


def core_timetable(dag):
    try:
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:  # Airflow 3.0, 3.1: the DAG holds the scheduler's timetable itself
        return dag.timetable
    return coerce_to_core_timetable(dag.timetable)


def first_scheduled_interval(dag):
    """The data interval of the first run the scheduler creates for the DAG as deployed now."""
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup)
    info = core_timetable(dag).next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    return info.data_interval


def test_switching_it_on_imports_the_last_complete_day_not_a_catchup_and_a_trigger_runs_unpaused():
    from datetime import datetime, timezone

    dag = load_dag(DAG_FILE, "trackly_click_history_backfill")
    assert (dag.catchup, dag.is_paused_upon_creation) == (False, False)
    before = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    interval = first_scheduled_interval(dag)
    after = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    assert interval.end in (before, after)  # today's 00:00 UTC (tomorrow's if midnight passed meanwhile)
    assert interval.start == interval.end - timedelta(days=1)


def test_setting_catchup_in_the_dag_file_catches_up_from_start_date(airflow):
    """As a user would: the module constant ``CATCHUP`` (a line of its own, which ``make e2e`` edits)."""
    text = DAG_FILE.read_text()
    line = re.search(r"^CATCHUP = False(  # .*)?$", text, re.M)
    assert line and text.count("catchup=CATCHUP,") == 1
    target = Path(airflow.dags_dir) / "clicks_catching_up.py"
    target.write_text(
        text.replace(line.group(0), "CATCHUP = True").replace(
            'dag_id="trackly_click_history_backfill"', 'dag_id="clicks_catching_up"'
        )
    )
    try:
        dag = load_dag(target, "clicks_catching_up")
    finally:
        target.unlink()
    assert dag.catchup is True
    assert first_scheduled_interval(dag) == (utc(2025, 11, 1), utc(2025, 11, 2))


@pytest.mark.parametrize("source_name", ["sqlite_source", "postgres_source", "mariadb_source"])
def test_day_boundaries_are_half_open_and_consecutive_days_are_disjoint(
    request, source_name, backfill_dag, sandbox
):
    source = request.getfixturevalue(source_name)
    source.insert_clicks(boundary_rows())
    imported: dict[str, set[str]] = {}
    for label, day in (("prev", DAY - timedelta(days=1)), ("day", DAY), ("next", DAY + timedelta(days=1))):
        before = set(sandbox.stored())
        run = run_day(backfill_dag, day)
        counts = import_results(run)[f"{day:%Y-%m-%d}"]  # the days before are only checked again
        imported[label] = set(sandbox.stored()) - before
        assert counts["rows_read"] == len(imported[label]) == counts["success_count"]
    assert imported == {
        "prev": {"prev-first", "prev-last"},
        "day": {"day-first", "day-second", "day-last"},
        "next": {"next-first", "next-second"},
    }
    assert sandbox.stored()["day-first"]["timestamp"] == "2025-11-15T00:00:00+00:00"
    assert sandbox.stored()["day-last"]["timestamp"] == "2025-11-15T23:59:59.999999+00:00"


def test_postgres_session_time_zone_does_not_move_the_boundaries(backfill_dag, sandbox, monkeypatch):
    from tests.helpers import PostgresSource

    source = PostgresSource.create(monkeypatch, extra={"options": "-c timezone=Pacific/Kiritimati"})
    try:
        source.insert_clicks(boundary_rows())
        run = run_day(backfill_dag, DAY)
        assert import_results(run)["2025-11-15"]["rows_read"] == 3
        stored = sandbox.stored()  # the day, and the day before it (imported for late rows)
        assert set(stored) == {"prev-first", "prev-last", "day-first", "day-second", "day-last"}
        # Read back as '2025-11-15 14:00:00+14' in that session, sent as UTC.
        assert stored["day-first"]["timestamp"] == "2025-11-15T00:00:00+00:00"
        assert stored["day-last"]["timestamp"] == "2025-11-15T23:59:59.999999+00:00"
    finally:
        source.drop()


def test_manual_range_imports_each_day_as_its_own_mapped_task(backfill_dag, sandbox, sqlite_source):
    sqlite_source.insert_clicks(boundary_rows())
    run = backfill_dag.test(run_conf={"start_date": "2025-11-14", "end_date": "2025-11-16"})
    results = import_results(run)
    assert {day: r["success_count"] for day, r in results.items()} == {
        "2025-11-14": 2,
        "2025-11-15": 3,
        "2025-11-16": 2,
    }
    assert all(r["rows_read"] == r["success_count"] for r in results.values())
    assert len(sandbox.stored()) == 7


def test_a_dry_run_range_reads_and_validates_each_day_and_sends_nothing(backfill_dag, sandbox, sqlite_source):
    sqlite_source.insert_clicks([*boundary_rows(), ("bad-ts", "offer-1", "+12025550100", None, "15/11/2025")])
    run = backfill_dag.test(run_conf={"start_date": "2025-11-14", "end_date": "2025-11-15", "dry_run": True})
    results = import_results(run)
    assert {day: (r["dry_run"], r["records_to_send"], r["success_count"]) for day, r in results.items()} == {
        "2025-11-14": (True, 2, 0),
        "2025-11-15": (True, 3, 0),
    }
    assert sandbox.requests() == []


def test_a_late_row_written_after_its_day_was_imported_is_imported_by_the_next_nights_run(
    backfill_dag, sandbox, sqlite_source
):
    sqlite_source.insert_clicks(boundary_rows())
    run_day(backfill_dag, DAY)
    late = ("day-late", "offer-1", "+12025550101", None, DAY + timedelta(hours=12))
    sqlite_source.insert_clicks([late])
    next_night = run_day(backfill_dag, DAY + timedelta(days=1))
    results = import_results(next_night)
    assert sorted(results) == ["2025-11-14", "2025-11-15", "2025-11-16"]
    found = results["2025-11-15"]
    assert (found["rows_read"], found["success_count"], found["duplicates_skipped"]) == (4, 1, 3)
    assert sandbox.stored()["day-late"]["timestamp"] == "2025-11-15T12:00:00+00:00"


def test_a_backfill_run_imports_exactly_its_day(backfill_dag):
    """``airflow backfill create`` fills history: its runs do not import the days before again."""
    from types import SimpleNamespace

    plan_days = backfill_dag.get_task("plan_days").python_callable
    run = SimpleNamespace(run_after=utc(2025, 11, 16), run_type="backfill")
    planned = plan_days(params={}, dag_run=run, data_interval_start=DAY, data_interval_end=utc(2025, 11, 16))
    assert planned == [[DAY, utc(2025, 11, 16)]]


def test_rerunning_a_day_reports_duplicates_not_errors(backfill_dag, sandbox, sqlite_source):
    sqlite_source.insert_clicks(boundary_rows())
    run_day(backfill_dag, DAY)
    rerun = run_day(backfill_dag, DAY)
    counts = import_results(rerun)["2025-11-15"]
    assert (
        counts["rows_read"],
        counts["success_count"],
        counts["duplicates_skipped"],
        counts["error_count"],
    ) == (
        3,
        0,
        3,
        0,
    )
    assert str(rerun.state) == "success"


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"start_date": "2025-11-14"}, "Give both start_date and end_date"),
        ({"end_date": "2025-11-14"}, "Give both start_date and end_date"),
        # Airflow 3.0's dag.test() drops these two failed tries' logs (the others reach its caplog).
        pytest.param(
            {"start_date": "2025-11-16", "end_date": "2025-11-14"},
            "end_date 2025-11-14 is before start_date 2025-11-16: swap them",
            marks=pytest.mark.reads_failed_task_log,
        ),
        pytest.param(
            {"start_date": "2025-10-31", "end_date": "2025-11-02"},
            "start_date 2025-10-31 is before 2025-11-01, the first day this DAG imports (its START_DATE)",
            marks=pytest.mark.reads_failed_task_log,
        ),
        (
            {"start_date": "2024-01-01", "end_date": "2025-11-14"},
            "has 684 days, more than the maximum of 366",
        ),
    ],
)
def test_bad_range_params_fail_at_once_with_a_clear_message(
    backfill_dag, sandbox, sqlite_source, task_output, conf, message
):
    sqlite_source.insert_clicks(boundary_rows())
    run = backfill_dag.test(run_conf=conf)
    states = task_states(run)
    assert states[("plan_days", -1)] == "failed"
    assert not any(task == "import_clicks" and state == "success" for (task, _), state in states.items())
    assert sandbox.state()["requests_seen"] == 0
    assert message in task_output()


def test_a_range_param_that_is_not_a_date_is_refused_when_triggered(backfill_dag, sandbox):
    try:
        from airflow.sdk.exceptions import ParamValidationError
    except ImportError:  # Airflow 3.0, 3.1
        from airflow.exceptions import ParamValidationError  # type: ignore[no-redef]

    # Airflow 3.2 raises a plain ValueError here, the other releases ParamValidationError.
    refused = "param start_date: '15/11/2025' is not a 'date'"
    with pytest.raises((ParamValidationError, ValueError), match=refused):
        backfill_dag.test(run_conf={"start_date": "15/11/2025", "end_date": "2025-11-16"})
    assert sandbox.state()["requests_seen"] == 0


def test_plan_days_needs_no_data_interval_as_in_a_manual_run_without_logical_date():
    """
    Airflow 3 gives such a run no ``data_interval_*`` in the context; TaskFlow then passes only
    ``params`` and ``dag_run`` (``dag.test()`` always sets an interval, so ``make e2e`` runs it too).
    """
    from types import SimpleNamespace

    plan_days = load_dag(DAG_FILE, "trackly_click_history_backfill").get_task("plan_days").python_callable
    run = SimpleNamespace(run_after=utc(2025, 11, 20, 9, 30), run_type="manual")
    assert plan_days(params={"start_date": None, "end_date": None}, dag_run=run) == [
        [utc(2025, 11, 17), utc(2025, 11, 18)],  # LATE_ROWS_DAYS = 2 days before, for late rows
        [utc(2025, 11, 18), utc(2025, 11, 19)],
        [utc(2025, 11, 19), utc(2025, 11, 20)],
    ]
    assert plan_days(params={"start_date": "2025-11-01", "end_date": "2025-11-02"}, dag_run=run) == [
        [utc(2025, 11, 1), utc(2025, 11, 2)],
        [utc(2025, 11, 2), utc(2025, 11, 3)],
    ]


@pytest.mark.reads_failed_task_log
def test_a_dag_built_like_the_example_with_schedule_daily_fails_plan_days_at_once(
    airflow, sandbox, sqlite_source, task_output
):
    """
    Airflow 3 makes ``schedule="@daily"`` a CronTriggerTimetable: each run's interval is [t, t),
    which would read nothing every night, with a green task. ``plan_days`` fails instead, saying why.
    """
    sqlite_source.insert_clicks(boundary_rows())
    text = DAG_FILE.read_text()
    schedule = "schedule=daily_timetable(),"
    assert text.count(schedule) == 1
    text = text.replace(schedule, 'schedule="@daily",').replace(
        'dag_id="trackly_click_history_backfill"', 'dag_id="clicks_at_daily"'
    )
    target = Path(airflow.dags_dir) / "clicks_at_daily.py"
    target.write_text(text)
    try:
        dag = load_dag(target, "clicks_at_daily")
        assert not isinstance(dag.timetable, CronDataIntervalTimetable)
        run = run_day(dag, DAY)
    finally:
        target.unlink()
    states = task_states(run)
    assert states[("plan_days", -1)] == "failed"  # not up_for_retry: no retry can fix a schedule
    assert "success" not in {state for (task, _), state in states.items() if task == "import_clicks"}
    assert sandbox.state()["requests_seen"] == 0
    assert (
        "The run's data interval [2025-11-16T00:00:00+00:00, 2025-11-16T00:00:00+00:00) is zero-length: "
        "the DAG's schedule gives its runs no interval, so every import would read nothing."
    ) in task_output()


def deployed_copy(airflow, dag_id: str, **constants: str):
    """The example DAG under another id, with module constants set as a user would edit them."""
    text = DAG_FILE.read_text().replace('dag_id="trackly_click_history_backfill"', f'dag_id="{dag_id}"')
    for name, value in constants.items():
        text, count = re.subn(rf"^{name} = .*$", f"{name} = {value}", text, flags=re.M)
        assert count == 1, name
    target = Path(airflow.dags_dir) / f"{dag_id}.py"
    target.write_text(text)
    return target


def test_a_day_whose_tries_fail_keeps_its_date_as_label_once_it_failed(
    airflow, sandbox, sqlite_source, monkeypatch
):
    """
    Airflow renders ``map_index_template`` after a failed try too, and (3.2+) before each try starts.
    A try that Airflow retries loses the label: it sends none with the retry (3.3's history entries
    show the map index), as the DAG's docs say.
    """
    from tests.conftest import AIRFLOW_VERSION
    from tests.helpers import set_trackly_connection

    set_trackly_connection(monkeypatch, sandbox.url, sandbox.api_key, {"max_attempts": 1})
    sandbox.set_faults(html_503=1.0)  # every request fails: the day's import fails, and is retried
    sqlite_source.insert_clicks(boundary_rows())
    target = deployed_copy(airflow, "clicks_failing", RETRY_DELAY="timedelta(0)")
    try:
        run = load_dag(target, "clicks_failing").test(
            run_conf={"start_date": "2025-11-15", "end_date": "2025-11-15"}
        )
    finally:
        target.unlink()
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "import_clicks"]
    assert (str(ti.state), ti.rendered_map_index) == ("failed", "2025-11-15")
    if AIRFLOW_VERSION >= (3, 3):  # dag.test() runs the retries
        from airflow.models.taskinstancehistory import TaskInstanceHistory
        from airflow.utils.session import create_session

        with create_session() as session:
            tries = session.query(TaskInstanceHistory).filter_by(dag_id="clicks_failing", run_id=run.run_id)
            labels = sorted(
                (h.try_number, h.rendered_map_index) for h in tries if h.task_id == "import_clicks"
            )
        assert (ti.try_number, labels) == (3, [(1, "0"), (2, "0")])


@pytest.mark.reads_failed_task_log
def test_a_missing_trackly_connection_fails_the_first_task_before_any_row_is_read(
    backfill_dag, sandbox, sqlite_source, task_output, monkeypatch
):
    sqlite_source.insert_clicks(boundary_rows())
    monkeypatch.delenv("AIRFLOW_CONN_TRACKLY_DEFAULT")
    run = backfill_dag.test(run_conf={"start_date": "2025-11-14", "end_date": "2025-11-15"})
    states = task_states(run)
    assert (states[("check_connections", -1)], states[("plan_days", -1)]) == ("failed", "upstream_failed")
    assert sandbox.state()["requests_seen"] == 0
    assert (
        "1 connection cannot be used; nothing was read or sent:\n"
        "- Connection 'trackly_default' (trackly_conn_id, the Trackly account) is not defined"
    ) in task_output()

"""What the example DAGs share: the daily schedule, the manual-range params and the days a run imports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airflow.sdk import Param, task

from trackly_provider.utils.partitions import (
    MAX_RANGE_DAYS,
    PartitionRangeError,
    plan_partitions,
    refuse_run_without_range,
)
from trackly_provider.version_compat import (
    AIRFLOW_V_3_1_PLUS,
    AirflowFailException,
    CronDataIntervalTimetable,
)

DAY_LABEL_TEMPLATE = "{{ task.parameters[0].strftime('%Y-%m-%d') }}"


def daily_timetable() -> CronDataIntervalTimetable:
    """
    The example DAGs' schedule: one run a day at 00:00 UTC, whose data interval is the UTC day before.

    ``CronDataIntervalTimetable("0 0 * * *", timezone="UTC")``, imported from ``airflow.sdk`` on
    Airflow 3.2 and later, and from ``airflow.timetables.interval`` before. A cron string such as
    ``"@daily"`` would give each run a zero-length interval in Airflow 3 (``plan_days`` refuses it).
    """
    return CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def range_params(*, range_required: bool = False) -> dict[str, Param]:
    """
    The trigger form's ``start_date``, ``end_date`` and ``dry_run``; ``range_required`` for a DAG
    without a schedule, whose runs need both dates (``days_of_run``).

    The form shows a date picker for each date, in the browser's own date format; it sends the date
    as ``YYYY-MM-DD``, the format the CLI (``-c``) and the REST API take. The form cannot refuse an
    ``end_date`` before the ``start_date`` (a JSON schema compares no two fields): ``plan_days`` does.
    """
    when_empty = (
        "Both dates are needed: this DAG has no schedule."
        if range_required
        else "Leave both dates empty for the run's own day."
    )
    return {
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description=(
                "First day to import (a UTC day). The date picker shows your browser's date format; "
                "in the CLI or REST API write YYYY-MM-DD. " + when_empty
            ),
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description=(
                f"Last day to import, included (a UTC day; at most {MAX_RANGE_DAYS} days from the first). "
                "The date picker shows your browser's date format; in the CLI or REST API write YYYY-MM-DD."
            ),
        ),
        "dry_run": Param(
            False,
            type="boolean",
            description="Read and validate the rows and check the API key, but send nothing.",
        ),
    }


def days_of_run(
    params: dict[str, Any],
    dag_run: Any,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    *,
    late_rows_days: int,
    first_day: date,
    range_required: bool = False,
) -> list[list[datetime]]:
    """
    The ``[start, end)`` bounds of each day a run imports: the params' range, or the run's interval
    after the ``late_rows_days`` days before it (not for backfill runs, which import their days).

    A manual run without a logical date has no data interval; with no params it imports the last
    complete UTC day, as a manual run with a logical date of now would. ``range_required`` (a DAG
    without a schedule): a run without both params is refused, saying to trigger it with them.
    A bad range (before ``first_day`` included), or a zero-length or reversed data interval (a
    schedule such as ``"@daily"``, which in Airflow 3 gives runs no interval), fails at once as
    ``AirflowFailException``: no retry can fix either.
    """
    start_date, end_date = params.get("start_date"), params.get("end_date")
    try:
        if range_required and start_date in (None, "") and end_date in (None, ""):
            raise refuse_run_without_range(dag_run.dag_id, first_day)
        return plan_partitions(
            start_date,
            end_date,
            data_interval_start,
            data_interval_end,
            dag_run.run_after,
            late_rows_days=0 if dag_run.run_type == "backfill" else late_rows_days,
            first_day=first_day,
        )
    except PartitionRangeError as exc:
        raise AirflowFailException(str(exc)) from None


def day_label(*, in_mapped_group: bool = False) -> dict[str, str]:
    """
    Keyword arguments that label each mapped import with its day (``YYYY-MM-DD``), for the grid.

    Returns ``{"map_index_template": ...}`` rendered from the task's ``parameters`` (the day's
    bounds), or ``{}`` where Airflow cannot render it: in a mapped task group
    (``in_mapped_group=True``) on Airflow 3.0, whose tries would fail rendering the group's
    argument. Airflow 3.2+ renders the label before each try starts, older lines at its end.
    """
    if in_mapped_group and not AIRFLOW_V_3_1_PLUS:
        return {}
    return {"map_index_template": DAY_LABEL_TEMPLATE}


def plan_days_task(*, late_rows_days: int, first_day: date, range_required: bool = False) -> Any:
    """
    The ``plan_days`` task of a daily import DAG: call it in the DAG, expand the imports over it.

    ``range_required``: True for a DAG without a schedule, whose runs must be given
    ``start_date`` and ``end_date`` (see ``days_of_run``). No retries: a failure here is a wrong
    param or a schedule without intervals, which no retry can fix.
    """

    @task(task_id="plan_days", retries=0)
    def plan_days(
        params: dict[str, Any],
        dag_run: Any = None,
        data_interval_start: datetime | None = None,
        data_interval_end: datetime | None = None,
    ) -> list[list[datetime]]:
        """The days to import: the params' range, or the run's interval and the late-rows days."""
        return days_of_run(
            params,
            dag_run,
            data_interval_start,
            data_interval_end,
            late_rows_days=late_rows_days,
            first_day=first_day,
            range_required=range_required,
        )

    return plan_days

"""Daily partition planning: half-open UTC days, manual ranges and their errors (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tests.helpers import utc
from trackly_provider.utils.partitions import (
    PartitionRangeError,
    day_bounds,
    days_before,
    describe_bounds,
    manual_range_days,
    plan_partitions,
    refuse_run_without_range,
)


def test_a_day_is_midnight_to_next_midnight_utc():
    assert day_bounds(date(2025, 12, 31)) == (utc(2025, 12, 31), utc(2026, 1, 1))


def test_no_params_use_the_run_interval():
    assert plan_partitions(None, None, utc(2025, 11, 1), utc(2025, 11, 2), utc(2025, 11, 20, 9)) == [
        [utc(2025, 11, 1), utc(2025, 11, 2)]
    ]


@pytest.mark.parametrize(
    ("run_after", "day"),
    [
        (utc(2025, 11, 20, 9, 30), 19),
        (utc(2025, 11, 20), 19),  # at midnight the day that just ended
        (utc(2025, 11, 20, 23, 59, 59), 19),
        (datetime(2025, 11, 20, 1, 0, tzinfo=timezone(timedelta(hours=5))), 18),  # 19 Nov 20:00 UTC
    ],
)
def test_no_params_and_no_interval_import_the_last_complete_utc_day(run_after, day):
    """A manual run without a logical date: the day before run_after's own UTC day."""
    assert plan_partitions(None, "", None, None, run_after) == [[utc(2025, 11, day), utc(2025, 11, day + 1)]]


def test_without_params_the_days_before_are_imported_again_first_for_late_rows():
    planned = plan_partitions(
        None, None, utc(2025, 12, 1), utc(2025, 12, 2), utc(2025, 12, 2), late_rows_days=2
    )
    assert planned == [
        [utc(2025, 11, 29), utc(2025, 11, 30)],
        [utc(2025, 11, 30), utc(2025, 12, 1)],
        [utc(2025, 12, 1), utc(2025, 12, 2)],
    ]
    no_interval = plan_partitions(None, None, None, None, utc(2025, 12, 2, 9), late_rows_days=1)
    assert no_interval == [[utc(2025, 11, 30), utc(2025, 12, 1)], [utc(2025, 12, 1), utc(2025, 12, 2)]]


def test_late_rows_days_never_reach_before_the_first_day():
    planned = plan_partitions(
        None,
        None,
        utc(2025, 11, 2),
        utc(2025, 11, 3),
        utc(2025, 11, 3),
        late_rows_days=3,
        first_day=date(2025, 11, 1),
    )
    assert planned == [[utc(2025, 11, 1), utc(2025, 11, 2)], [utc(2025, 11, 2), utc(2025, 11, 3)]]


def test_a_manual_range_is_exactly_its_days_whatever_late_rows_days():
    planned = plan_partitions(
        "2025-11-05", "2025-11-05", utc(2025, 11, 1), utc(2025, 11, 2), utc(2025, 11, 2), late_rows_days=2
    )
    assert planned == [[utc(2025, 11, 5), utc(2025, 11, 6)]]


def test_a_range_is_inclusive_one_partition_per_day_across_month_end():
    assert plan_partitions("2025-11-29", "2025-12-01", None, None, utc(2000, 1, 1)) == [
        [utc(2025, 11, 29), utc(2025, 11, 30)],
        [utc(2025, 11, 30), utc(2025, 12, 1)],
        [utc(2025, 12, 1), utc(2025, 12, 2)],
    ]


def test_a_single_day_range():
    assert manual_range_days("2025-11-05", "2025-11-05") == [date(2025, 11, 5)]


BOTH = (
    "Give both start_date and end_date (YYYY-MM-DD, inclusive), or neither to import the run's own data "
    "interval; got start_date={!r}, end_date={!r}."
)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2025-11-05", None, BOTH.format("2025-11-05", None)),
        ("", "2025-11-05", BOTH.format("", "2025-11-05")),
        ("2025-11-05", "", BOTH.format("2025-11-05", "")),
        (
            "2025-11-05",
            "2025-11-04",
            "end_date 2025-11-04 is before start_date 2025-11-05: swap them (the range runs from "
            "start_date to end_date, both included).",
        ),
        ("05/11/2025", "2025-11-06", "start_date must be a date written YYYY-MM-DD, got '05/11/2025'."),
        ("2025-11-06", "6 Nov", "end_date must be a date written YYYY-MM-DD, got '6 Nov'."),
        (
            "2025-01-01",
            "2026-01-02",
            "The range 2025-01-01..2026-01-02 has 367 days, more than the maximum of 366 for one run; "
            "split it into several runs or use `airflow backfill create`.",
        ),
    ],
)
def test_bad_ranges_say_exactly_what_to_fix(start, end, message):
    """The whole message a user sees when plan_days fails, through the function the DAG calls."""
    with pytest.raises(PartitionRangeError) as raised:
        plan_partitions(start, end, utc(2025, 11, 1), utc(2025, 11, 2), utc(2025, 11, 2))
    assert str(raised.value) == message


def test_a_range_that_starts_before_the_first_day_is_refused_saying_where_history_starts():
    with pytest.raises(PartitionRangeError) as raised:
        plan_partitions("2025-10-31", "2025-11-02", None, None, utc(2025, 11, 5), first_day=date(2025, 11, 1))
    assert str(raised.value) == (
        "start_date 2025-10-31 is before 2025-11-01, the first day this DAG imports (its START_DATE): "
        "start the range on 2025-11-01 or later, or move START_DATE back in the DAG file."
    )


def test_a_range_from_the_first_day_is_allowed():
    days = plan_partitions(
        "2025-11-01", "2025-11-01", None, None, utc(2025, 11, 5), first_day=date(2025, 11, 1)
    )
    assert days == [[utc(2025, 11, 1), utc(2025, 11, 2)]]


def test_a_run_without_a_range_of_a_dag_without_schedule_is_told_how_to_trigger_it():
    assert str(refuse_run_without_range("trackly_history_migration", date(2025, 11, 1))) == (
        "DAG 'trackly_history_migration' has no schedule, so a run imports only the days it is given: "
        "trigger it with the params start_date and end_date (YYYY-MM-DD, UTC, both included; in the "
        "trigger form, pick both dates), e.g. airflow dags trigger trackly_history_migration -c "
        '\'{"start_date": "2025-11-01", "end_date": "2025-11-07"}\'.'
    )


def test_a_range_of_exactly_the_maximum_is_allowed():
    assert len(manual_range_days("2025-01-01", "2026-01-01")) == 366


def test_date_values_are_taken_as_they_are():
    assert manual_range_days(date(2025, 11, 5), date(2025, 11, 6)) == [date(2025, 11, 5), date(2025, 11, 6)]


def test_days_before_count_in_utc_whatever_the_offset_of_the_start():
    """20:00 UTC on 1 Nov, written as 01:00 on 2 Nov at UTC+05:00: the days before are before 1 Nov."""
    start = datetime(2025, 11, 2, 1, 0, tzinfo=timezone(timedelta(hours=5)))
    assert days_before(start, 1, date.min) == [[utc(2025, 10, 31), utc(2025, 11, 1)]]


def test_empty_text_params_count_as_no_params():
    """What the trigger form sends for cleared fields: the run's own interval, not a range error."""
    assert plan_partitions("", None, utc(2025, 11, 1), utc(2025, 11, 2), utc(2025, 11, 2)) == [
        [utc(2025, 11, 1), utc(2025, 11, 2)]
    ]


def test_half_an_interval_is_no_interval():
    planned = plan_partitions(None, None, utc(2025, 11, 1), None, utc(2025, 11, 20, 9))
    assert planned == [[utc(2025, 11, 19), utc(2025, 11, 20)]]


@pytest.mark.parametrize(
    ("start", "end", "what"),
    [
        (utc(2025, 11, 15), utc(2025, 11, 15), "zero-length"),
        (utc(2025, 11, 16), utc(2025, 11, 15), "reversed (its end is before its start)"),
    ],
)
def test_an_interval_holding_no_time_fails_saying_which_timetable_to_use(start, end, what):
    """What Airflow 3 gives every run of schedule="@daily" (a CronTriggerTimetable): [t, t)."""
    with pytest.raises(PartitionRangeError) as raised:
        plan_partitions(None, None, start, end, utc(2025, 11, 16), late_rows_days=2)
    assert str(raised.value) == (
        f"The run's data interval [{start.isoformat()}, {end.isoformat()}) is {what}: the DAG's "
        "schedule gives its runs no interval, so every import would read nothing. In Airflow 3, "
        'schedule="@daily" (or any cron string) is a CronTriggerTimetable, whose runs have '
        "zero-length intervals. Pass a "
        "data-interval timetable as the schedule, as the example DAGs do: "
        'schedule=CronDataIntervalTimetable("@daily", timezone="UTC") (from airflow.sdk; '
        "airflow.timetables.interval before Airflow 3.2)."
    )


def test_a_manual_range_does_not_need_the_runs_interval():
    """A run without an interval of its own can still import a range given as params."""
    day = utc(2025, 11, 15)
    assert plan_partitions("2025-11-15", "2025-11-15", day, day, day) == [[day, utc(2025, 11, 16)]]


def test_bounds_are_shown_as_dates_and_anything_else_redacted_of_phone_numbers():
    bounds = [
        datetime(2025, 11, 15, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        utc(2025, 11, 16),
    ]
    assert describe_bounds(bounds) == "[2025-11-15T00:00:00+00:00, 2025-11-16T00:00:00+00:00]"
    assert describe_bounds(("2025-11-15", "2025-11-16 00:00:00", date(2025, 11, 17))) == (
        "['2025-11-15', '2025-11-16 00:00:00', 2025-11-17]"
    )
    assert describe_bounds({"phone": "+1 202-555-0143", "day": "2025-11-15", "since": 1763164800}) == (
        "{phone: '[redacted]', day: '2025-11-15', since: [redacted]}"
    )
    assert describe_bounds(None) == "no parameters"

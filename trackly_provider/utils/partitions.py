"""Daily UTC partitions for backfills: half-open ``[start, end)`` days (pure functions)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from trackly_provider.trackly_api.iso8601 import utc_iso
from trackly_provider.trackly_api.redact import redact_phone_numbers

MAX_RANGE_DAYS = 366
# A date or an ISO 8601 datetime as text: shown as it is, never taken for a phone number.
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")


class PartitionRangeError(ValueError):
    """A manual range (``start_date``/``end_date`` params), or a run's data interval, that cannot be run."""


def _parse_day(name: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise PartitionRangeError(f"{name} must be a date written YYYY-MM-DD, got {value!r}.") from None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The half-open UTC interval of one calendar day: midnight to the next midnight."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def manual_range_days(
    start_date: Any, end_date: Any, max_days: int = MAX_RANGE_DAYS, first_day: date = date.min
) -> list[date]:
    """
    Every day from ``start_date`` to ``end_date`` inclusive, or a clear error saying what to fix.

    :raises PartitionRangeError: one param without the other, a value that is not ``YYYY-MM-DD``, an
        inverted range, more than ``max_days`` days, or a ``start_date`` before ``first_day``.
    """
    if start_date in (None, "") or end_date in (None, ""):
        raise PartitionRangeError(
            "Give both start_date and end_date (YYYY-MM-DD, inclusive), or neither to import the run's "
            f"own data interval; got start_date={start_date!r}, end_date={end_date!r}."
        )
    first, last = _parse_day("start_date", start_date), _parse_day("end_date", end_date)
    if last < first:
        raise PartitionRangeError(
            f"end_date {last} is before start_date {first}: swap them (the range runs from start_date to "
            "end_date, both included)."
        )
    count = (last - first).days + 1
    if count > max_days:
        raise PartitionRangeError(
            f"The range {first}..{last} has {count} days, more than the maximum of {max_days} for one run; "
            "split it into several runs or use `airflow backfill create`."
        )
    if first < first_day:
        raise PartitionRangeError(
            f"start_date {first} is before {first_day}, the first day this DAG imports (its START_DATE): "
            f"start the range on {first_day} or later, or move START_DATE back in the DAG file."
        )
    return [first + timedelta(days=offset) for offset in range(count)]


def refuse_run_without_range(dag_id: str, first_day: date) -> PartitionRangeError:
    """
    The error for a run without ``start_date`` and ``end_date`` of a DAG that has no schedule
    (``schedule=None``): its runs have no data interval of their own to import.
    """
    example = f'{{"start_date": "{first_day}", "end_date": "{first_day + timedelta(days=6)}"}}'
    return PartitionRangeError(
        f"DAG '{dag_id}' has no schedule, so a run imports only the days it is given: trigger it with "
        "the params start_date and end_date (YYYY-MM-DD, UTC, both included; in the trigger form, pick "
        f"both dates), e.g. airflow dags trigger {dag_id} -c '{example}'."
    )


def last_complete_day(moment: datetime) -> date:
    """The last UTC day that is over at ``moment``: the day before ``moment``'s own UTC day."""
    return moment.astimezone(timezone.utc).date() - timedelta(days=1)


def days_before(start: datetime, count: int, first_day: date) -> list[list[datetime]]:
    """The ``count`` UTC days before ``start``'s day, oldest first, leaving out those before ``first_day``."""
    day = start.astimezone(timezone.utc).date()
    earlier = [day - timedelta(days=offset) for offset in range(count, 0, -1)]
    return [list(day_bounds(d)) for d in earlier if d >= first_day]


def check_interval(start: datetime, end: datetime) -> None:
    """Refuse a data interval that holds no time, which would import nothing every run."""
    if end > start:
        return
    what = "zero-length" if end == start else "reversed (its end is before its start)"
    raise PartitionRangeError(
        f"The run's data interval [{utc_iso(start)}, {utc_iso(end)}) is {what}: the DAG's schedule "
        "gives its runs no interval, so every import would read nothing. In Airflow 3, "
        'schedule="@daily" (or any cron string) is a CronTriggerTimetable, whose runs have '
        "zero-length intervals. Pass a data-interval timetable as the schedule, as the example "
        'DAGs do: schedule=CronDataIntervalTimetable("@daily", timezone="UTC") (from airflow.sdk; '
        "airflow.timetables.interval before Airflow 3.2)."
    )


def describe_bounds(parameters: Any) -> str:
    """
    An import's bind parameters as text for a log line: datetimes in UTC ISO 8601, dates and
    date-like text as they are, any other value with phone-like digits replaced by ``[redacted]``.
    """
    if parameters is None:
        return "no parameters"
    if isinstance(parameters, dict):
        return "{" + ", ".join(f"{key}: {_shown(value)}" for key, value in parameters.items()) + "}"
    if isinstance(parameters, (list, tuple)):
        return "[" + ", ".join(_shown(value) for value in parameters) + "]"
    return _shown(parameters)


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        return repr(value)
    return redact_phone_numbers(repr(value))


def plan_partitions(
    start_date: Any,
    end_date: Any,
    interval_start: datetime | None,
    interval_end: datetime | None,
    run_after: datetime,
    *,
    late_rows_days: int = 0,
    first_day: date = date.min,
) -> list[list[datetime]]:
    """
    The ``[start, end)`` bounds each import covers.

    With both params: one day per partition. With neither: the run's data interval; a manual run
    without a logical date has none, and imports the last complete UTC day before ``run_after``,
    the day a manual run with a logical date of ``run_after`` would cover on a daily timetable.
    Without params, the ``late_rows_days`` days before are imported again first (none before
    ``first_day``), to catch rows written after their day was imported. A zero-length or reversed
    interval raises ``PartitionRangeError`` (``check_interval``), as does a range that starts before
    ``first_day`` (``manual_range_days``).
    """
    if start_date in (None, "") and end_date in (None, ""):
        if interval_start is not None and interval_end is not None:
            check_interval(interval_start, interval_end)
            own = [interval_start, interval_end]
        else:
            own = list(day_bounds(last_complete_day(run_after)))
        return [*days_before(own[0], late_rows_days, first_day), own]
    return [list(day_bounds(day)) for day in manual_range_days(start_date, end_date, first_day=first_day)]

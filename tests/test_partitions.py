"""Daily partition planning: half-open UTC days, manual ranges and their errors (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from tests.helpers import utc
from trackly_provider.partitions import PartitionRangeError, day_bounds, manual_range_days, plan_partitions


def test_a_day_is_midnight_to_next_midnight_utc():
    assert day_bounds(date(2025, 12, 31)) == (utc(2025, 12, 31), utc(2026, 1, 1))


def test_no_params_use_the_run_interval():
    assert plan_partitions(None, None, utc(2025, 11, 1), utc(2025, 11, 2)) == [
        [utc(2025, 11, 1), utc(2025, 11, 2)]
    ]


def test_a_range_is_inclusive_one_partition_per_day_across_month_end():
    assert plan_partitions("2025-11-29", "2025-12-01", utc(2000, 1, 1), utc(2000, 1, 2)) == [
        [utc(2025, 11, 29), utc(2025, 11, 30)],
        [utc(2025, 11, 30), utc(2025, 12, 1)],
        [utc(2025, 12, 1), utc(2025, 12, 2)],
    ]


def test_a_single_day_range():
    assert manual_range_days("2025-11-05", "2025-11-05") == [date(2025, 11, 5)]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2025-11-05", None, "Give both start_date and end_date"),
        ("", "2025-11-05", "Give both start_date and end_date"),
        ("2025-11-05", "2025-11-04", "end_date 2025-11-04 is before start_date 2025-11-05"),
        ("05/11/2025", "2025-11-06", "start_date must be a date written YYYY-MM-DD, got '05/11/2025'"),
        ("2025-01-01", "2026-01-02", "has 367 days, more than the maximum of 366"),
    ],
)
def test_bad_ranges_say_what_to_fix(start, end, message):
    with pytest.raises(PartitionRangeError, match=message):
        manual_range_days(start, end)

"""The ledger's partition names, from the import's parameters or its rendered query (database/ledger.py)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pendulum
import pytest

from trackly_provider.database.ledger import default_partition, import_partition
from trackly_provider.exceptions import TracklyConfigError


def test_the_default_partition_names_the_day_whatever_the_datetime_class_or_zone():
    day = [pendulum.datetime(2025, 11, 1), pendulum.datetime(2025, 11, 2)]
    kolkata = timezone(timedelta(hours=5, minutes=30))
    same = [datetime(2025, 11, 1, 5, 30, tzinfo=kolkata), datetime(2025, 11, 2)]
    expected = 'revenue/trackly_default/["2025-11-01T00:00:00+00:00","2025-11-02T00:00:00+00:00"]'
    assert default_partition("revenue", "trackly_default", day, "SELECT 1") == expected
    # The parameters name the rows: an edited query keeps its days' partitions.
    assert default_partition("revenue", "trackly_default", same, "SELECT 2 -- edited") == expected
    long = default_partition("revenue", "t", {"ids": "x" * 300}, "SELECT 1")
    assert long.startswith("revenue/t/sha256:") and len(long) == len("revenue/t/sha256:") + 32


DAY_1 = "SELECT * FROM sales WHERE sold_at >= '2025-11-01T00:00:00+00:00' AND sold_at < '2025-11-02'"


DAY_2 = DAY_1.replace("11-01", "11-02").replace("11-02'", "11-03'")


@pytest.mark.parametrize("empty", [None, [], (), {}, ""])
def test_a_query_without_parameters_is_named_by_its_rendered_text(empty):
    first = default_partition("revenue", "trackly_default", empty, DAY_1)
    assert first == "revenue/trackly_default/sql:" + hashlib.sha256(DAY_1.encode()).hexdigest()[:32]
    assert default_partition("revenue", "trackly_default", None, f"\n  {DAY_1}\n") == first
    assert default_partition("revenue", "trackly_default", empty, DAY_2) != first
    assert default_partition("clicks", "trackly_default", empty, DAY_1) != first


def test_a_partition_is_named_within_200_characters_whatever_the_connection_id():
    days = [[f"2025-11-0{day}T00:00:00+00:00"] for day in (1, 2)]
    keys = [default_partition("revenue", "c" * 195, day, "SELECT 1") for day in days]
    assert keys[0] != keys[1]
    assert all(len(key) == 200 and key.startswith("revenue/ccc") for key in keys)


def test_an_import_s_partition_is_its_ledger_partition_or_named_by_its_rows():
    day = ["2025-11-01T00:00:00+00:00"]
    named = import_partition("revenue", "c", day, "SELECT {{ ds }}", "SELECT '{{ ds }}'", "revenue/x")
    assert named == "revenue/x"
    assert import_partition("revenue", "c", day, "SELECT ?", "SELECT {{ task.sql_placeholder }}", None) == (
        default_partition("revenue", "c", day, "SELECT ?")
    )
    with pytest.raises(TracklyConfigError, match="ledger_partition must be at most 200 characters, got 201"):
        import_partition("revenue", "c", day, "SELECT 1", "SELECT 1", "p" * 201)
    with pytest.raises(
        TracklyConfigError, match=r"or set ledger_partition \(e\.g\. 'revenue/\{\{ ds \}\}'\)"
    ):
        import_partition("revenue", "c", day, "SELECT '2025-11-01'", "SELECT '{{ ds }}'", None)

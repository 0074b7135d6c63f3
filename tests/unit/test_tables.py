"""Table names quoted part by part for each SQL dialect (database/tables.py)."""

from __future__ import annotations

import pytest

from trackly_provider.database.tables import quoted_identifier


@pytest.mark.parametrize(
    ("dialect", "quoted"),
    [
        ("postgresql", '"analytics"."user"'),
        ("sqlite", '"Analytics"."User"'),
        ("mysql", "`Analytics`.`User`"),
        ("other", "Analytics.User"),  # quoting and case rules unknown: as written
    ],
)
def test_each_part_of_a_table_name_is_quoted_for_its_dialect(dialect, quoted):
    assert quoted_identifier("Analytics.User", dialect) == quoted

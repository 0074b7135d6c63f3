"""The query as the OpenLineage SQL parser can read it (utils/lineage.py)."""

from __future__ import annotations

import pytest

pytest.importorskip("airflow.providers.openlineage", reason="the [openlineage] extra is not installed")


def test_driver_placeholders_become_what_the_parser_reads() -> None:
    from trackly_provider.utils.lineage import parseable_sql

    sql = "SELECT a FROM t WHERE b LIKE 'x%%' AND c = %s AND d = %(day)s AND e % 2 = ?"
    parsed = "SELECT a FROM t WHERE b LIKE 'x%' AND c = NULL AND d = NULL AND e % 2 = ?"
    assert parseable_sql(sql, "%s") == parsed
    assert parseable_sql(sql, "?") == sql

"""Asset events of the example DAGs' imports, as Airflow stores them for the DAGs scheduled on them."""

from __future__ import annotations

from typing import Any

from tests.helpers import clicks
from tests.integration.test_example_dag import backfill_dag, boundary_rows  # noqa: F401 (the fixture)
from tests.unit.test_assets import CLICKS_URI


def asset_events(uri: str, run_id: str) -> list[dict[str, Any]]:
    """The extra of each event of the Asset ``uri`` that a task of the run ``run_id`` emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = (
            select(AssetEvent.source_map_index, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
            .order_by(AssetEvent.source_map_index)
        )
        return [extra for _, extra in session.execute(query)]


def test_each_days_import_puts_its_day_and_counts_on_the_clicks_asset_event(
    backfill_dag,  # noqa: F811 (the fixture)
    sandbox,
    sqlite_source,
):
    bad = ("no-offer", None, "+12025550100", None, "2025-11-15 12:00:00")
    sqlite_source.insert_clicks([*boundary_rows(), *clicks(20), bad])  # 1 error in 24: under 5%
    run = backfill_dag.test(run_conf={"start_date": "2025-11-14", "end_date": "2025-11-15"})
    base = {"entity": "clicks", "duplicates_skipped": 0, "dry_run": False}
    assert asset_events(CLICKS_URI, run.run_id) == [
        {
            **base,
            "partition": ["2025-11-14T00:00:00+00:00", "2025-11-15T00:00:00+00:00"],
            "rows_read": 2,
            "records_sent": 2,
            "success_count": 2,
            "error_count": 0,
            "errors_by_code": {},
        },
        {
            **base,
            "partition": ["2025-11-15T00:00:00+00:00", "2025-11-16T00:00:00+00:00"],
            "rows_read": 24,
            "records_sent": 23,
            "success_count": 23,
            "error_count": 1,
            "errors_by_code": {"missing_offer_id": 1},
        },
    ]


def test_a_dry_run_says_so_on_its_asset_event(backfill_dag, sandbox, sqlite_source):  # noqa: F811
    sqlite_source.insert_clicks(boundary_rows())
    run = backfill_dag.test(run_conf={"start_date": "2025-11-15", "end_date": "2025-11-15", "dry_run": True})
    (event,) = asset_events(CLICKS_URI, run.run_id)
    assert (event["dry_run"], event["records_sent"], event["success_count"]) == (True, 0, 0)

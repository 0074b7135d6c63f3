"""
### Trackly clicks report

Runs whenever clicks land in Trackly: it is scheduled on the Asset
`trackly://app.tracklysms.com/history/clicks`, which every day's click import updates
(`trackly_click_history_backfill`, `trackly_history_migration`). Each triggering event's `extra`
holds the import's `partition` (the day's bounds), `rows_read`, `success_count`,
`duplicates_skipped`, `error_count`, `errors_by_code` and `dry_run`.

Several days finishing close together may trigger one run: it reports every day that triggered it.
Replace the task with what your team needs (a Slack message, a reconciliation query...).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from trackly_provider.utils.assets import history_asset

CLICKS_IN_TRACKLY = history_asset("clicks")

with DAG(
    dag_id="trackly_clicks_report",
    schedule=[CLICKS_IN_TRACKLY],
    start_date=pendulum.datetime(2025, 11, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["trackly"],
) as dag:

    @task
    def report_imported_clicks(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        """One entry per day imported: the day and its counts (dry runs and other events left out)."""
        days = []
        for event in triggering_asset_events[CLICKS_IN_TRACKLY]:
            extra = event.extra
            if extra.get("dry_run", True):  # a dry run, or an event that is not an import's
                continue
            start, end = extra["partition"]
            print(
                f"Clicks {start} to {end} ({event.source_dag_id}): {extra['success_count']} imported, "
                f"{extra['duplicates_skipped']} duplicates, {extra['error_count']} errors "
                f"of {extra['rows_read']} rows."
            )
            days.append({"source_dag_id": event.source_dag_id, **extra})
        return days

    report_imported_clicks()

"""
### Trackly history migration: sends, then clicks, then revenue, one UTC day at a time

Moves a team's whole SMS history from the `trackly_source` SQL connection into Trackly SMS
(`trackly_default` connection). Trackly accepts a click or a revenue record only for a message it
already has, so for each day the sends are imported first, then that day's clicks, then its
revenue; each step waits for the previous one of the same day only, so days run side by side.

**Source tables** (any SQL database: SQLite, PostgreSQL, MySQL/MariaDB...); timestamps in UTC, as
in `trackly_click_history_backfill` (SQLite `TEXT` `YYYY-MM-DD HH:MM:SS[.ffffff]`, PostgreSQL
`TIMESTAMPTZ`, MySQL/MariaDB `DATETIME(6)`); index each table's partition column.

`sms_sends`, partitioned by `sent_at`:

| column | type | notes |
|---|---|---|
| `message_id` | text | sent as `id`, the message id clicks and revenue refer to |
| `to_number` | text | E.164, e.g. `+12025559876` |
| `list_id` | text | the Trackly list; may be NULL |
| `message` | text | may be NULL |
| `delivered` | boolean | may be NULL |
| `sent_at` | timestamp, UTC | sent as `timestamp` |

`sms_clicks`, partitioned by `clicked_at`: as in `trackly_click_history_backfill`.

`sms_revenue`, partitioned by `earned_at`:

| column | type | notes |
|---|---|---|
| `message_id` | text | the message the revenue is attributed to |
| `offer_id` | text | the Trackly offer |
| `revenue` | decimal | >= 0 |
| `payout` | decimal | >= 0; may be NULL |
| `earned_at` | timestamp, UTC | sent as `timestamp` |

**Runs and params** as in `trackly_click_history_backfill`: scheduled and catchup runs import their
day after the `LATE_ROWS_DAYS` days before it, `airflow backfill create` imports exactly its days,
and a manual run takes `start_date`/`end_date` (and `dry_run`) params.

**Revenue exactly once.** Trackly stores revenue every time it receives it. The revenue import
keeps a ledger (`LEDGER_TABLE` on the `LEDGER_CONN_ID` connection: the source's database for
PostgreSQL or MySQL; another file for a SQLite source) of each record Trackly confirmed, per day:
a rerun, retry or backfill of a day sends only what is not confirmed. A request that got no answer
fails the day, naming its records, until you check them in Trackly and rerun with
`on_unknown_outcome` set (docs/ledger.md, "The ledger"). Sends and clicks are safe to rerun as
they are: Trackly skips those it already has.

**Overlapping runs.** Each scheduled run re-imports the `LATE_ROWS_DAYS` days before its own, and
up to `MAX_ACTIVE_RUNS` run at once, so several revenue imports of one day meet: while one sends
the day, the others wait for its ledger partition (up to `LEDGER_LOCK_TIMEOUT`), then send only
rows it did not confirm (late rows). A re-import waits at most about one import of its day
(`make e2e`: 1 s per request, at most 4.6 s); its XCom `ledger.lock_waited_seconds` says how long.

**Assets.** Each import updates its endpoint's Asset (`trackly://app.tracklysms.com/history/sends`,
`.../clicks`, `.../revenue`) with the day and the counts in the event's `extra`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pendulum
from airflow.sdk import DAG, task_group

from trackly_provider.operators import (
    ClickHistoryImportOperator,
    RevenueHistoryImportOperator,
    SendHistoryImportOperator,
)
from trackly_provider.utils.assets import history_asset
from trackly_provider.utils.daily_runs import daily_timetable, plan_days_task, range_params

START_DATE = pendulum.datetime(2025, 11, 1, tz="UTC")  # the first day to import
MAX_ACTIVE_RUNS = 4  # DAG runs (days, when catching up or backfilling) at once
MAX_PARALLEL_DAYS = 4  # imports of each entity at once across all runs of this DAG
MAX_ERROR_RATE = 0.05  # fail a day's import when more than 5% of its rows are rejected
LATE_ROWS_DAYS = 2  # rows may reach the source up to this many days after their day ends
REJECTS_TABLE = "trackly_rejects"  # each rejected row, in the source database; None for no table
LEDGER_CONN_ID = "trackly_ledger"  # where the revenue ledger lives (never a SQLite source itself)
LEDGER_TABLE = "trackly_import_ledger"
LEDGER_LOCK_TIMEOUT = timedelta(hours=1)  # how long a re-import waits for the import sending its day
RETRY_DELAY = timedelta(minutes=5)  # first wait before Airflow retries a failed import; doubles after
# An import that runs longer is stuck (a stalled proxy or source): Airflow ends it and retries.
IMPORT_TIMEOUT = timedelta(hours=2)
# The Assets each day's imports update, with the day and the counts in the event's extra.
SENDS_IN_TRACKLY = history_asset("sends")
CLICKS_IN_TRACKLY = history_asset("clicks")
REVENUE_IN_TRACKLY = history_asset("revenue")


def rows_of_day(select: str, table: str, column: str) -> str:
    """A day's rows of one table: ``[start, end)`` of ``column``, in the source driver's placeholder."""
    mark = "{{ task.sql_placeholder }}"
    return f"SELECT {select} FROM {table} WHERE {column} >= {mark} AND {column} < {mark} ORDER BY {column}"


SENDS = rows_of_day(
    "message_id AS id, to_number, list_id, message, delivered, sent_at AS timestamp", "sms_sends", "sent_at"
)
CLICKS = rows_of_day(
    "message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp",
    "sms_clicks",
    "clicked_at",
)
REVENUE = rows_of_day(
    "message_id, offer_id, revenue, payout, earned_at AS timestamp", "sms_revenue", "earned_at"
)
COMMON = {
    "sql_conn_id": "trackly_source",
    "trackly_conn_id": "trackly_default",
    "max_error_rate": MAX_ERROR_RATE,
    "dry_run": "{{ params.dry_run }}",
    "rejects_table": REJECTS_TABLE,
    "max_active_tis_per_dag": MAX_PARALLEL_DAYS,
    "execution_timeout": IMPORT_TIMEOUT,
    # No map_index_template here: Airflow 3.0 cannot render the group's argument in one (the day is
    # the map index's place in plan_days' list; the run's own day is the last).
}

with DAG(
    dag_id="trackly_history_migration",
    schedule=daily_timetable(),
    start_date=START_DATE,
    catchup=True,
    max_active_runs=MAX_ACTIVE_RUNS,
    default_args={"retries": 2, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True},
    params=range_params(),
    doc_md=__doc__,
    tags=["trackly"],
) as dag:
    plan_days = plan_days_task(late_rows_days=LATE_ROWS_DAYS, first_day=START_DATE.date())

    @task_group
    def migrate_day(bounds: list[datetime]) -> None:
        """One day: its sends, then its clicks, then its revenue (each waits for this day's previous step)."""
        sends = SendHistoryImportOperator(
            task_id="import_sends", sql=SENDS, parameters=bounds, outlets=[SENDS_IN_TRACKLY], **COMMON
        )
        clicks = ClickHistoryImportOperator(
            task_id="import_clicks", sql=CLICKS, parameters=bounds, outlets=[CLICKS_IN_TRACKLY], **COMMON
        )
        revenue = RevenueHistoryImportOperator(
            task_id="import_revenue",
            sql=REVENUE,
            parameters=bounds,
            ledger_conn_id=LEDGER_CONN_ID,
            ledger_table=LEDGER_TABLE,
            ledger_lock_timeout=LEDGER_LOCK_TIMEOUT,
            outlets=[REVENUE_IN_TRACKLY],
            **COMMON,
        )
        sends >> clicks >> revenue

    migrate_day.expand(bounds=plan_days())

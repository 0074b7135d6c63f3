"""
### Trackly click history backfill

Imports historical SMS clicks from the `trackly_source` SQL connection into Trackly SMS
(`trackly_default` connection), one UTC day at a time.

**Source table** (any SQL database: SQLite, PostgreSQL, MySQL/MariaDB...):

| column | type | notes |
|---|---|---|
| `message_id` | text | the Trackly message the click belongs to |
| `offer_id` | text | the Trackly offer clicked |
| `phone_number` | text | E.164, e.g. `+12025559876` |
| `sent_at` | timestamp, UTC | sent as `send_timestamp`; may be NULL |
| `clicked_at` | timestamp, UTC | sent as `timestamp`; the partition column |

Timestamp types: SQLite `TEXT` in SQLite's own UTC form `YYYY-MM-DD HH:MM:SS[.ffffff]`;
PostgreSQL `TIMESTAMPTZ`; MySQL/MariaDB `DATETIME(6)` holding UTC. Index `clicked_at`.

**Partitions.** Each day is the half-open UTC interval `[00:00, next 00:00)`: a click at exactly
midnight belongs to the day that starts then. A scheduled run covers its data interval, one day,
and starts only once that day is over. `catchup=True` fills history from `START_DATE`; so do
`airflow backfill create --dag-id trackly_click_history_backfill --from-date ... --to-date ...`
and the UI's backfill button.

**Manual range.** Trigger with params `start_date` and `end_date` (`YYYY-MM-DD`, inclusive, both
or neither, at most 366 days): each day becomes its own mapped `import_clicks` task instance.
This works with or without a logical date (CLI `-l`, REST `"logical_date": null`, the UI form).
A manual run with neither param imports its data interval; without a logical date it has none,
and imports the last complete UTC day (yesterday), as a run with a logical date of now would.
A bad range fails `plan_days` at once, without retries. With param `dry_run` each day's rows are
read and validated and the API key checked, but nothing is sent: the XCom says what would be.

**Late rows.** A click written to the source after its day was imported would be missed, so a
run that imports its own interval (scheduled, catchup, or manual without params) first imports
the `LATE_ROWS_DAYS` days before it again, each as its own mapped task labelled with its date:
their `success_count` is the late rows found, the rest come back as duplicates. Backfill runs
(`airflow backfill create`) and manual ranges import exactly their days.

**Rejected rows** are written to `REJECTS_TABLE` in the source database, with the task
instance, row index, message id and error code, never the phone number.

**Load on the API.** At most `MAX_ACTIVE_RUNS` runs and `MAX_PARALLEL_DAYS` day imports at once.
Re-running a day is safe: Trackly stores one click per message and reports the rest as duplicates.

**Asset.** Each day's import updates the Asset `CLICKS_IN_TRACKLY`
(`trackly://app.tracklysms.com/history/clicks`); its event's `extra` holds the day (`partition`,
the day's bounds) and the counts. `trackly_clicks_report` is scheduled on it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from trackly_provider.operators.click_history import ClickHistoryImportOperator
from trackly_provider.utils.assets import history_asset
from trackly_provider.utils.daily_runs import daily_timetable, plan_days_task, range_params

START_DATE = pendulum.datetime(2025, 11, 1, tz="UTC")  # the first day to import
MAX_ACTIVE_RUNS = 4  # DAG runs (days, when catching up or backfilling) at once
MAX_PARALLEL_DAYS = 4  # day imports at once across all runs of this DAG
MAX_ERROR_RATE = 0.05  # fail a day when more than 5% of its rows are rejected
LATE_ROWS_DAYS = 2  # clicks may reach the source up to this many days after their day ends
REJECTS_TABLE = "trackly_rejects"  # each rejected row, in the source database; None for no table
RETRY_DELAY = timedelta(minutes=5)  # first wait before Airflow retries a failed day; doubles after
# A day's import that runs longer is stuck (a stalled proxy or source): Airflow ends it and retries.
IMPORT_TIMEOUT = timedelta(hours=2)
CLICKS_IN_TRACKLY = history_asset("clicks")  # updated by each day's import, with its counts

# The same text works on every source: the placeholder is the source driver's own (? or %s), and the
# operator passes the day's bounds as values that driver compares correctly with UTC timestamps.
CLICKS_FOR_INTERVAL = """
SELECT message_id, offer_id, phone_number, sent_at AS send_timestamp, clicked_at AS timestamp
FROM sms_clicks
WHERE clicked_at >= {{ task.sql_placeholder }} AND clicked_at < {{ task.sql_placeholder }}
ORDER BY clicked_at, message_id
"""

with DAG(
    dag_id="trackly_click_history_backfill",
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

    ClickHistoryImportOperator.partial(
        task_id="import_clicks",
        sql=CLICKS_FOR_INTERVAL,
        sql_conn_id="trackly_source",
        trackly_conn_id="trackly_default",
        max_error_rate=MAX_ERROR_RATE,
        dry_run="{{ params.dry_run }}",
        rejects_table=REJECTS_TABLE,
        max_active_tis_per_dag=MAX_PARALLEL_DAYS,
        execution_timeout=IMPORT_TIMEOUT,
        outlets=[CLICKS_IN_TRACKLY],
        map_index_template="{{ task.parameters[0].strftime('%Y-%m-%d') }}",
    ).expand(parameters=plan_days())

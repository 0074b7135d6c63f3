"""
### Trackly click history backfill

Imports historical SMS clicks from the `trackly_source` SQL connection into Trackly SMS
(`trackly_default` connection), one UTC day at a time.

**What switching it on does.** The DAG starts unpaused (`is_paused_upon_creation=False`) and with
`CATCHUP = False`: once deployed, it imports the last complete UTC day (with the `LATE_ROWS_DAYS`
days before it, for late rows), then one day each night after 00:00 UTC. It never catches up on
its own. A manual trigger runs whether or not the form's "Unpause on trigger" is ticked (Airflow
runs nothing of a paused DAG, so the DAG is not paused to begin with); pause it to stop the nightly
runs. History is imported on demand: trigger a range (`start_date`, `end_date`, below), or
`airflow backfill create --dag-id trackly_click_history_backfill --from-date 2025-11-01 --to-date
2025-11-30` (the UI's backfill button does the same). Set `CATCHUP = True` in the DAG file to have
the scheduler import every day from `START_DATE` instead, one run per day.

`START_DATE` is the first day that may be imported: a range that starts earlier is refused, and
`CATCHUP = True` starts there. Move it back to import older history.

**Every task says its day.** Each day is its own mapped `import_clicks` task instance, labelled
with its date (`map_index_template`). Airflow 3.2 and later show the label as soon as a try starts
and keep it when the task succeeds or fails for good; a try that Airflow will retry loses it
(Airflow sends no label with a retry: the try's history entry and the task waiting for its next try
show the map index, `0`, `1`...), and the next try shows it again. Airflow 3.0 and 3.1 show it once
a try has ended, succeeded or failed for good. Each try's log names its day in its first line.

**Connections checked first.** `check_connections` (no retries) checks that `trackly_source` is a
SQL connection and that `trackly_default` is a Trackly SMS connection whose fields are valid,
before any row is read; it fails listing every problem, each with the command that fixes it.

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
and starts only once that day is over.

**Manual range.** Trigger with params `start_date` and `end_date` (inclusive, both or neither, at
most 366 days, no earlier than `START_DATE`): each day becomes its own mapped `import_clicks` task
instance. The form's date pickers show dates in the browser's format; the CLI (`-c`) and the REST
API take `YYYY-MM-DD`. This works with or without a logical date (CLI `-l`, REST
`"logical_date": null`, the UI form). A manual run with neither param imports its data interval;
without a logical date it has none, and imports the last complete UTC day (yesterday), as a run
with a logical date of now would. A bad range (one date only, `end_date` before `start_date`, too
long, or before `START_DATE`) fails `plan_days` at once, without retries, saying what to fix. With
param `dry_run` each day's rows are read and validated and the API key checked, but nothing is
sent: the XCom says what would be.

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
from trackly_provider.utils.connection_check import check_connections_task
from trackly_provider.utils.daily_runs import daily_timetable, day_label, plan_days_task, range_params

START_DATE = pendulum.datetime(2025, 11, 1, tz="UTC")  # the first day that may be imported
CATCHUP = False  # True: the scheduler imports every day from START_DATE; False: from the last day on
SOURCE_CONN_ID = "trackly_source"  # the SQL database the clicks are read from
TRACKLY_CONN_ID = "trackly_default"  # the Trackly SMS account they are sent to
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
    catchup=CATCHUP,
    is_paused_upon_creation=False,  # a manual trigger runs, "Unpause on trigger" ticked or not
    max_active_runs=MAX_ACTIVE_RUNS,
    default_args={"retries": 2, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True},
    params=range_params(),
    doc_md=__doc__,
    tags=["trackly"],
) as dag:
    check_connections = check_connections_task(sql_conn_id=SOURCE_CONN_ID, trackly_conn_id=TRACKLY_CONN_ID)
    plan_days = plan_days_task(late_rows_days=LATE_ROWS_DAYS, first_day=START_DATE.date())
    days = plan_days()
    check_connections() >> days

    ClickHistoryImportOperator.partial(
        task_id="import_clicks",
        sql=CLICKS_FOR_INTERVAL,
        sql_conn_id=SOURCE_CONN_ID,
        trackly_conn_id=TRACKLY_CONN_ID,
        max_error_rate=MAX_ERROR_RATE,
        dry_run="{{ params.dry_run }}",
        rejects_table=REJECTS_TABLE,
        max_active_tis_per_dag=MAX_PARALLEL_DAYS,
        execution_timeout=IMPORT_TIMEOUT,
        outlets=[CLICKS_IN_TRACKLY],
        **day_label(),  # each day's date in the grid
    ).expand(parameters=days)

"""
### Trackly history migration: contacts first, then per day sends, clicks and revenue

Moves a team's contacts and whole SMS history from the `trackly_source` SQL connection into
Trackly SMS (`trackly_default` connection). In a fresh account a message is sent from a list to a
contact on it, revenue needs its message's contact (`contact_not_found`), and a click or a
revenue record needs its message; so each run first imports contacts (`import_contacts`), then,
for each day, that day's sends, then its clicks, then its revenue. Each of these steps waits for
the previous one of the same day only, so days run side by side.

**What switching it on does: nothing until you trigger it.** A migration is started deliberately,
with a range: the DAG has no schedule (`SCHEDULE = None`, `CATCHUP = False`) and starts unpaused
(`is_paused_upon_creation=False`), so a manual trigger runs whether or not the form's "Unpause on
trigger" is ticked (Airflow runs nothing of a paused DAG). Trigger it with params `start_date`
and `end_date` (both included, at most 366 days a run, the first run from `START_DATE`): in the
form, pick both dates (the pickers show your browser's date format); from the CLI,
`airflow dags trigger trackly_history_migration -c '{"start_date": "2025-11-01", "end_date":
"2025-11-30"}'` (`YYYY-MM-DD`, as the REST API). A run without both fails `plan_days` at once,
saying so. Why no schedule: in an account without the history, a scheduled run's revenue would meet
`contact_not_found`, because only a range that starts at `START_DATE` imports the contacts who
signed up before it. Once the history is in, set `SCHEDULE = NIGHTLY` (`daily_timetable()`) to
keep it up to date each night (each run imports the day before, after the `LATE_ROWS_DAYS` days
before it); with `CATCHUP = True` too, the scheduler also runs every day from `START_DATE`. `airflow backfill
create` needs a schedule: with `SCHEDULE = None`, import history by ranges.

**Connections checked first.** `check_connections` (no retries) runs before every other task: it
checks that `trackly_source` and the ledger's `trackly_ledger` (`LEDGER_CONN_ID`) are SQL
connections, that the ledger is not the SQLite file being read, and that `trackly_default` is a
Trackly SMS connection whose fields are valid. It fails listing every problem at once, each with
the command that fixes it, before any contact or day is sent.

**Every task says its day.** Each day's `import_sends`, `import_clicks` and `import_revenue` is a
mapped task instance labelled with its date (`map_index_template`, Airflow 3.1 and later; on 3.0
the label is the map index, the day's place in `plan_days`' list, the run's own day last). Airflow
3.2 and later show it as soon as a try starts and keep it when the task succeeds or fails for good;
a try that Airflow will retry loses it (Airflow sends no label with a retry), and the next try shows
it again. `import_contacts` is one task for the run's whole range. Each try's log names its day or
range in its first line.

**Contacts by signup day, one run after the other.** Each run's one `import_contacts` task
(not mapped) imports the contacts whose `signup_date` falls in the run's planned range: from the
start of its first planned day to the end of its last (`contacts_range`), the same days, late
rows included, as its other imports. A range that starts at `START_DATE` (the first scheduled
run and the `LATE_ROWS_DAYS` after it, which re-import the first day; a manual or backfill range
from the first day) also imports every contact who signed up before it, and every contact whose
`signup_date` is NULL. Once `SCHEDULE` is set, the task has `depends_on_past=True` (and
`wait_for_downstream=False`): a scheduled or backfill run's contacts wait for the previous run's
contacts, not for its history. So when a day's revenue is imported, every contact who signed up
by that day's end is in Trackly. Without a schedule (as shipped) runs are ranges you trigger, and
`depends_on_past` is off: Airflow would hold every later run's contacts back for good behind a run
that failed before its contacts (a run without a range, a missing connection), since it counts
an `upstream_failed` task as not done. Trigger the first range from `START_DATE` and let its
`import_contacts` finish before a later range starts, or give one run the whole range.
Importing the whole table in each run would be as safe (an upsert), but each daily run would
re-send every contact; by signup day, a run sends its days' contacts only, and the first run the
backlog.

What this asks of you:
- Give each contact the `signup_date` of its opt-in, no later than its first message: a contact
  who signs up after a day's revenue is not there for it. A NULL `signup_date` is imported with
  the first day; Trackly then records the import time as the signup date, which loses the
  consent evidence (the operator counts and warns about these rows).
- A manual range or a backfill that starts after `START_DATE` imports only its own signups: it
  assumes the earlier contacts are in Trackly (from earlier runs). Start it at `START_DATE` the
  first time.
- `airflow backfill create` (once `SCHEDULE` is set) needs `--reprocess-behavior failed` (or
  `completed`; in the UI's backfill form, "Missing and Errored Runs" or "All Runs"): Airflow
  refuses to backfill a DAG with a `depends_on_past` task without one (`InvalidReprocessBehavior`),
  or backwards.
- With a `SCHEDULE`, a run that failed before or in `import_contacts` (its connections, its
  contacts) holds back the contacts, and so the history, of every later run with a logical date:
  fix the cause and clear the failed run's tasks; the later runs then go on.
- Contacts are upserts (keyed by phone number and list): a rerun creates nothing and reports
  `contacts_updated`. They are sent with journeys and paid validation off (the operator's
  defaults): no contact is texted or billed.

**Source tables** (any SQL database: SQLite, PostgreSQL, MySQL/MariaDB...); timestamps in UTC, as
in `trackly_click_history_backfill` (SQLite `TEXT` `YYYY-MM-DD HH:MM:SS[.ffffff]`, PostgreSQL
`TIMESTAMPTZ`, MySQL/MariaDB `DATETIME(6)`); index each table's partition column.

`sms_contacts`, partitioned by `signup_date` (`ContactImportOperator`, docs/operators.md):

| column | type | notes |
|---|---|---|
| `phone_number` | text | E.164, e.g. `+12025559876`; the contact |
| `list_number` | text | E.164: the sending list's number (`GET /api/v2/lists`), not its id |
| `signup_date` | timestamp, UTC | the opt-in time; may be NULL (imported with the first day) |
| `ip_address` | text | consent evidence; may be NULL |
| `url` | text | consent evidence: where the contact signed up; may be NULL |
| `plan` | text | sent as the custom field `plan` (`custom_plan`); may be NULL |

One row per contact and list (a contact on two lists has two rows). More custom fields: select
each as `custom_<key>` in `CONTACTS`. A contact over 4,000 bytes as JSON is rejected
(`record_too_large`), as are numbers that are not E.164 (`invalid_phone`,
`invalid_list_number`); a list that is not the account's is Trackly's `list_not_found`.

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

**Runs and params** as in `trackly_click_history_backfill` once `SCHEDULE` is set: scheduled and
catchup runs import their day after the `LATE_ROWS_DAYS` days before it, `airflow backfill create`
imports exactly its days, and a manual run takes `start_date`/`end_date` (and `dry_run`) params
(none before `START_DATE`; an `end_date` before the `start_date` fails `plan_days` at once). A
manual run without a logical date (CLI without `-l`, REST `"logical_date": null`) imports its
contacts at once; one with a logical date (the UI's form sends one) waits, as scheduled runs do,
for the contacts of the run before it (with `CATCHUP = True`, of the last scheduled or backfill run
before it: Airflow then leaves manual runs out of `depends_on_past`'s previous run).

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
(`make e2e`: 1 s per request, a few seconds: docs/e2e.md); XCom `ledger.lock_waited_seconds` says how long.

**Assets.** Each import updates its endpoint's Asset (`trackly://app.tracklysms.com/contacts`,
`.../history/sends`, `.../history/clicks`, `.../history/revenue`) with its range (the contacts':
`[from, to, NULLs included]`) and the counts in the event's `extra`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pendulum
from airflow.sdk import DAG, task, task_group

from trackly_provider.operators import (
    ClickHistoryImportOperator,
    ContactImportOperator,
    RevenueHistoryImportOperator,
    SendHistoryImportOperator,
)
from trackly_provider.trackly_api.entities import CONTACTS as CONTACTS_ENTITY
from trackly_provider.utils.assets import history_asset, trackly_asset
from trackly_provider.utils.connection_check import check_connections_task
from trackly_provider.utils.daily_runs import daily_timetable, day_label, plan_days_task, range_params

START_DATE = pendulum.datetime(2025, 11, 1, tz="UTC")  # the first day that may be imported
NIGHTLY = daily_timetable()  # one run a night, each importing the UTC day before
# On demand: each run imports the range it is triggered with. Once the history is in, set
# SCHEDULE = NIGHTLY to keep Trackly up to date each night.
SCHEDULE = None
CATCHUP = False  # with a SCHEDULE, True: the scheduler also runs every day from START_DATE
SOURCE_CONN_ID = "trackly_source"  # the SQL database the history is read from
TRACKLY_CONN_ID = "trackly_default"  # the Trackly SMS account it is sent to
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
# The Assets the imports update, with the range or day and the counts in the event's extra.
CONTACTS_IN_TRACKLY = trackly_asset(CONTACTS_ENTITY)
SENDS_IN_TRACKLY = history_asset("sends")
CLICKS_IN_TRACKLY = history_asset("clicks")
REVENUE_IN_TRACKLY = history_asset("revenue")


MARK = "{{ task.sql_placeholder }}"  # the source driver's own placeholder (? or %s)


def rows_of_day(select: str, table: str, column: str) -> str:
    """A day's rows of one table: ``[start, end)`` of ``column``, in the source driver's placeholder."""
    return f"SELECT {select} FROM {table} WHERE {column} >= {MARK} AND {column} < {MARK} ORDER BY {column}"


# A run's contacts: signed up in [from, to), and, when the third value is 1, those without a signup
# date. The flag is a whole number, which every driver compares with 1 (a boolean would not:
# PostgreSQL has no boolean = integer).
CONTACTS = (
    "SELECT phone_number, list_number, signup_date, ip_address, url, plan AS custom_plan "
    f"FROM sms_contacts WHERE (signup_date >= {MARK} AND signup_date < {MARK}) "
    f"OR (signup_date IS NULL AND {MARK} = 1) "
    "ORDER BY signup_date, phone_number, list_number"
)
# The lower bound of a range that starts at START_DATE: every earlier signup.
EARLIEST_SIGNUP = datetime(1900, 1, 1, tzinfo=timezone.utc)
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
COMMON: dict[str, Any] = {
    "sql_conn_id": SOURCE_CONN_ID,
    "trackly_conn_id": TRACKLY_CONN_ID,
    "max_error_rate": MAX_ERROR_RATE,
    "dry_run": "{{ params.dry_run }}",
    "rejects_table": REJECTS_TABLE,
    "max_active_tis_per_dag": MAX_PARALLEL_DAYS,
    "execution_timeout": IMPORT_TIMEOUT,
}
# The label of each day's imports: the day's date (none on Airflow 3.0, which cannot render it here).
DAY_LABEL = day_label(in_mapped_group=True)

with DAG(
    dag_id="trackly_history_migration",
    schedule=SCHEDULE,
    start_date=START_DATE,
    catchup=CATCHUP,
    is_paused_upon_creation=False,  # a manual trigger runs, "Unpause on trigger" ticked or not
    max_active_runs=MAX_ACTIVE_RUNS,
    default_args={"retries": 2, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True},
    params=range_params(range_required=SCHEDULE is None),
    doc_md=__doc__,
    tags=["trackly"],
) as dag:
    check_connections = check_connections_task(
        sql_conn_id=SOURCE_CONN_ID, trackly_conn_id=TRACKLY_CONN_ID, ledger_conn_id=LEDGER_CONN_ID
    )
    plan_days = plan_days_task(
        late_rows_days=LATE_ROWS_DAYS, first_day=START_DATE.date(), range_required=SCHEDULE is None
    )

    @task(retries=0)
    def contacts_range(days: list[list[datetime]]) -> list[datetime | int]:
        """
        ``[from, to, undated]``: the run's planned days as one range, its first day's start to its
        last day's end. A range from ``START_DATE`` (or before) starts at ``EARLIEST_SIGNUP`` and
        takes NULL signup dates too (``undated`` 1; otherwise 0).
        """
        start, end = days[0][0], days[-1][1]
        if start <= START_DATE:
            return [EARLIEST_SIGNUP, end, 1]
        return [start, end, 0]

    @task_group
    def migrate_day(bounds: list[datetime]) -> None:
        """One day: its sends, then its clicks, then its revenue (each waits for this day's previous step)."""
        day: dict[str, Any] = {"parameters": bounds, **DAY_LABEL, **COMMON}
        sends = SendHistoryImportOperator(
            task_id="import_sends", sql=SENDS, outlets=[SENDS_IN_TRACKLY], **day
        )
        clicks = ClickHistoryImportOperator(
            task_id="import_clicks", sql=CLICKS, outlets=[CLICKS_IN_TRACKLY], **day
        )
        revenue = RevenueHistoryImportOperator(
            task_id="import_revenue",
            sql=REVENUE,
            ledger_conn_id=LEDGER_CONN_ID,
            ledger_table=LEDGER_TABLE,
            ledger_lock_timeout=LEDGER_LOCK_TIMEOUT,
            outlets=[REVENUE_IN_TRACKLY],
            **day,
        )
        sends >> clicks >> revenue

    days = plan_days()
    check_connections() >> days
    contacts = ContactImportOperator(
        task_id="import_contacts",
        sql=CONTACTS,
        parameters=contacts_range(days),
        outlets=[CONTACTS_IN_TRACKLY],
        # With a schedule, each scheduled or backfill run's contacts wait for the previous run's, not
        # its history. Without one, runs are ranges you trigger: a run that failed before its
        # contacts (upstream_failed) would hold back every later run's for good.
        depends_on_past=SCHEDULE is not None,
        wait_for_downstream=False,
        **COMMON,
    )
    contacts >> migrate_day.expand(bounds=days)

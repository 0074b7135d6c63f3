"""The lines an import logs (operators/_engine/import_log.py): exact text, plurals at 0, 1 and 2."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import pytest

from tests.helpers import utc
from trackly_provider.exceptions import TracklyMissingSourceObjectError
from trackly_provider.operators._engine import import_log
from trackly_provider.operators._engine.records import RowRejection
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.entities import CLICKS, CONTACTS

LOG = logging.getLogger("tests.import_log")
DAY = [utc(2025, 11, 1), utc(2025, 11, 2)]


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 batches"), (1, "1 batch"), (2, "2 batches"), (1500, "1,500 batches")],
)
def test_plural_agrees_with_the_count(count, text):
    assert import_log.plural(count, "batch", "batches") == text


@pytest.mark.parametrize(("count", "text"), [(0, "0 rows"), (1, "1 row"), (2, "2 rows")])
def test_plural_adds_an_s_by_default(count, text):
    assert import_log.plural(count, "row") == text


def test_counts_by_code_go_largest_first_then_by_name_without_zeros():
    counts = {"offer_not_found": 1, "invalid_phone": 3, "save_error": 0, "missing_offer_id": 1}
    assert import_log.counted(counts) == "invalid_phone 3, missing_offer_id 1, offer_not_found 1"


@pytest.mark.parametrize(
    ("parameters", "text"),
    [
        (DAY, "the day 2025-11-01 ([2025-11-01T00:00:00+00:00, 2025-11-02T00:00:00+00:00])"),
        (
            {"start": DAY[0], "end": DAY[1]},
            "the day 2025-11-01 ({start: 2025-11-01T00:00:00+00:00, end: 2025-11-02T00:00:00+00:00})",
        ),
        (
            [utc(2025, 11, 1), utc(2025, 11, 3)],
            "parameters [2025-11-01T00:00:00+00:00, 2025-11-03T00:00:00+00:00]",
        ),
        (
            [utc(2025, 11, 1, 6), utc(2025, 11, 2, 6)],
            "parameters [2025-11-01T06:00:00+00:00, 2025-11-02T06:00:00+00:00]",
        ),
        (
            [datetime(2025, 11, 1, tzinfo=timezone(timedelta(hours=-5))), utc(2025, 11, 2, 5)],
            "parameters [2025-11-01T05:00:00+00:00, 2025-11-02T05:00:00+00:00]",
        ),
        ([date(2025, 11, 1)], "parameters [2025-11-01]"),
        (["+14155550100"], "parameters ['[redacted]']"),
        (None, "no parameters"),
    ],
)
def test_the_scope_names_the_day_when_the_parameters_are_one_utc_day(parameters, text):
    assert import_log.describe_scope(parameters) == text


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://api.trackly.example/", "api.trackly.example"),
        ("http://127.0.0.1:8081/prefix", "127.0.0.1:8081"),
        ("http://user:secret@[::1]:9000", "[::1]:9000"),
    ],
)
def test_the_base_url_host_is_shown_without_user_or_password(url, host):
    assert import_log.url_host(url) == host


def test_the_first_line_names_the_entity_the_day_and_the_connections(caplog):
    caplog.set_level(logging.INFO)
    import_log.started(LOG, CLICKS, DAY, ("trackly_source", "trackly_default", "api.trackly.example"), False)
    import_log.started(LOG, CONTACTS, None, ("src", "trk", "127.0.0.1:8081"), True)
    assert lines(caplog) == [
        "Importing clicks, the day 2025-11-01 ([2025-11-01T00:00:00+00:00, 2025-11-02T00:00:00+00:00]), "
        "from SQL connection 'trackly_source' (sql_conn_id) to Trackly connection 'trackly_default' "
        "(trackly_conn_id, host api.trackly.example).",
        "Dry run: checking contacts, no parameters, from SQL connection 'src' (sql_conn_id) to Trackly "
        "connection 'trk' (trackly_conn_id, host 127.0.0.1:8081); nothing will be sent.",
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_logged_every_30_seconds_with_elapsed_time_and_rate(caplog):
    caplog.set_level(logging.INFO)
    clock, tally = Clock(), ImportTally()
    progress = import_log.ProgressLog(LOG, clock.now, clock=clock)
    for now, rows, batches in [(129.9, 1, 0), (130.0, 1, 1), (159.0, 12_000, 12), (160.0, 12_000, 12)]:
        clock.now, tally.rows_read, tally.batches = now, rows, batches
        progress.tick(tally)
    clock.now, tally.rows_read, tally.batches = 200.0, 2, 2
    progress.tick(tally)
    assert lines(caplog) == [
        "Progress: 1 row read in 30 s (0 rows/s), 1 batch answered.",
        "Progress: 12,000 rows read in 60 s (200 rows/s), 12 batches answered.",
        "Progress: 2 rows read in 100 s (0 rows/s), 2 batches answered.",
    ]


def test_a_dry_runs_progress_says_nothing_was_sent(caplog):
    caplog.set_level(logging.INFO)
    import_log.log_progress(LOG, ImportTally(rows_read=0, dry_run=True), 30.0)
    assert lines(caplog) == ["Progress: 0 rows read in 30 s (0 rows/s), nothing sent (dry run)."]


def tally_of(rows: int, imported: int, duplicates: int, batches: int, codes: dict[str, int]) -> ImportTally:
    tally = ImportTally(
        rows_read=rows, success_count=imported, duplicates_skipped=duplicates, batches=batches
    )
    index = 0
    for code, count in codes.items():
        for _ in range(count):
            tally.reject_row(index, RowRejection(code, "why", f"m{index}"))
            index += 1
    return tally


@pytest.mark.parametrize(
    ("tally", "line"),
    [
        (
            tally_of(1500, 1496, 0, 2, {"invalid_phone": 3, "offer_not_found": 1}),
            "Imported 1,500 rows of clicks in 2.0 s (750 rows/s): 1,496 imported, 0 duplicates, 4 errors, "
            "2 batches. Errors by code: invalid_phone 3, offer_not_found 1.",
        ),
        (
            tally_of(2, 0, 1, 1, {"missing_offer_id": 1}),
            "Imported 2 rows of clicks in 2.0 s (1 rows/s): 0 imported, 1 duplicate, 1 error, 1 batch. "
            "Errors by code: missing_offer_id 1.",
        ),
        (
            tally_of(1, 1, 0, 1, {}),
            "Imported 1 row of clicks in 2.0 s (0 rows/s): 1 imported, 0 duplicates, 0 errors, 1 batch.",
        ),
        (
            tally_of(4, 2, 2, 2, {}),
            "Imported 4 rows of clicks in 2.0 s (2 rows/s): 2 imported, 2 duplicates, 0 errors, 2 batches.",
        ),
    ],
)
def test_the_closing_line_has_the_counts_with_plurals_and_the_errors_by_code(caplog, tally, line):
    caplog.set_level(logging.INFO)
    import_log.outcome(LOG, tally, "clicks", 2.0, DAY, None, (None, ""))
    assert lines(caplog)[0] == line


@pytest.mark.parametrize(
    ("to_send", "codes", "line"),
    [
        (
            1,
            {"invalid_phone": 1},
            "Dry run: read 2 rows of clicks in 2.0 s; 1 record would be sent, 1 row is rejected. Nothing "
            "was sent; the key works. Errors by code: invalid_phone 1.",
        ),
        (
            0,
            {"invalid_phone": 2},
            "Dry run: read 2 rows of clicks in 2.0 s; 0 records would be sent, 2 rows are rejected. "
            "Nothing was sent; the key works. Errors by code: invalid_phone 2.",
        ),
        (
            2,
            {},
            "Dry run: read 2 rows of clicks in 2.0 s; 2 records would be sent, 0 rows are rejected. "
            "Nothing was sent; the key works.",
        ),
    ],
)
def test_a_dry_runs_closing_line_agrees_with_its_counts(caplog, to_send, codes, line):
    caplog.set_level(logging.INFO)
    tally = tally_of(2, 0, 0, 0, codes)
    tally.dry_run, tally.records_to_send = True, to_send
    import_log.outcome(LOG, tally, "clicks", 2.0, DAY, None, (None, ""))
    assert lines(caplog)[0] == line


def test_an_import_that_stopped_early_says_its_counts_and_errors_by_code(caplog):
    import_log.stopped_early(LOG, "TracklyRetriesExhaustedError", tally_of(1, 0, 0, 1, {"invalid_phone": 1}))
    assert lines(caplog) == [
        "The import stopped early (TracklyRetriesExhaustedError) after reading 1 row: 0 imported, "
        "0 duplicates, 1 error, 1 batch answered. The counts are in XCom 'return_value'. Errors by "
        "code: invalid_phone 1."
    ]


@pytest.mark.parametrize(
    ("errors", "verb"),
    [({"invalid_phone": 1}, "1 of 3 rows (33.33%) was"), ({"invalid_phone": 2}, "2 of 3 rows (66.67%) were")],
)
def test_the_error_rate_failure_agrees_with_its_count(errors, verb):
    message = import_log.error_rate_exceeded(tally_of(3, 1, 0, 1, errors), 0.0)
    assert message.startswith(
        f"{verb} rejected, more than max_error_rate=0 allows. Imported 1, duplicates 0. Errors by code: "
        f"invalid_phone {sum(errors.values())}. First errors: row 0 (message_id m0): invalid_phone"
    )


@pytest.mark.parametrize(
    ("count", "line"),
    [
        (1, "1 contact (of 2 rows read) had no signup_date"),
        (2, "2 contacts (of 2 rows read) had no signup_date"),
    ],
)
def test_records_missing_a_field_are_counted_in_agreement(caplog, count, line):
    tally = ImportTally(rows_read=2)
    tally.fields_missing["signup_date"] = count
    import_log.fields_missing(LOG, CONTACTS, tally)
    assert lines(caplog)[0].startswith(line + ": ")


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        (
            "table",
            "sms_clickz",
            "The query reading the day 2025-11-01 ([2025-11-01T00:00:00+00:00, 2025-11-02T00:00:00+00:00]) "
            "names table 'sms_clickz', which SQL connection 'src' (sql_conn_id) does not have: check that "
            "the table exists in the database (and schema) connection 'src' points to, and that the query "
            "spells its name as the database does. A retry cannot fix this, so the task fails without "
            "retries. driver text",
        ),
        (
            "column",
            None,
            "The query reading the day 2025-11-01 ([2025-11-01T00:00:00+00:00, 2025-11-02T00:00:00+00:00]) "
            "names a column, which SQL connection 'src' (sql_conn_id) does not have: check the query's "
            "column names against the table on that connection (a column renamed or dropped, a missing table "
            "alias). A retry cannot fix this, so the task fails without retries. driver text",
        ),
    ],
)
def test_a_missing_table_or_column_names_the_connection_the_day_and_the_fix(kind, name, message):
    error = TracklyMissingSourceObjectError("driver text", kind, name)
    assert import_log.missing_source_object(error, "src", DAY) == message

"""ImportRun's steps that need no database and no Trackly: rows to records to batches, answers settled."""

from __future__ import annotations

import logging

import orjson
import pytest

from trackly_provider.exceptions import TracklySourceError
from trackly_provider.operators._engine.batch_window import Batch
from trackly_provider.operators._engine.import_log import ProgressLog
from trackly_provider.operators._engine.import_run import RESENT_CODES, ImportRun, RunArguments
from trackly_provider.trackly_api.entities import CLICKS
from trackly_provider.trackly_api.results import ImportResult, RecordError

COLUMNS = ["message_id", "offer_id", "phone_number", "timestamp", "campaign"]


def row(n: int, offer_id: str | None = "offer-1") -> tuple[str, str | None, str, str, str]:
    return (f"m{n}", offer_id, f"+1202555{n:04d}", "2025-11-15T00:00:00Z", "spring")


def new_run(**arguments) -> ImportRun:
    given = {"sql": "SELECT 1", "parameters": None, "batch_size": 2, "max_in_flight": 1, **arguments}
    return ImportRun(CLICKS, RunArguments(**given), logging.getLogger("tests.import_run"))


def message_ids(batch: Batch) -> list[str]:
    return [record["message_id"] for record in orjson.loads(batch.body)["records"]]


def test_rows_become_batches_of_batch_size_in_query_order_without_the_rejected_ones(caplog):
    run = new_run(batch_size=2)
    caplog.set_level(logging.WARNING)
    build = run.plan_columns(COLUMNS)
    chunks = [[row(0), row(1, offer_id=None), row(2)], [row(3), row(4), row(5)]]
    batches = list(run.batches(chunks, build))
    assert [batch.row_indexes for batch in batches] == [[0, 2], [3, 4], [5]]
    assert [message_ids(batch) for batch in batches] == [["m0", "m2"], ["m3", "m4"], ["m5"]]
    assert [batch.message_ids for batch in batches] == [["m0", "m2"], ["m3", "m4"], ["m5"]]
    assert all(batch.fingerprints is None for batch in batches)  # no ledger
    assert (run.tally.rows_read, run.tally.error_count) == (6, 1)
    assert run.tally.errors_by_code == {"missing_offer_id": 1}
    assert "Ignoring column(s) Trackly does not use: campaign" in caplog.text


def test_a_query_missing_a_required_column_is_a_source_error_saying_how_to_alias_it():
    with pytest.raises(TracklySourceError, match=r"missing the required column\(s\) phone_number, timestamp"):
        new_run().plan_columns(["message_id", "offer_id"])


def test_a_dry_runs_batches_are_counted_as_records_to_send_and_share_one_buffer():
    run = new_run(batch_size=2, dry_run=True)
    build = run.plan_columns(COLUMNS)
    buffers = []
    for batch in run.batches([[row(n) for n in range(5)]], build):
        buffers.append(batch.buffer)
        run.count_unsent(batch)
    assert run.tally.records_to_send == 5
    assert run.tally.batches == 0
    assert len({id(buffer) for buffer in buffers}) == 1  # each given back before the next is encoded


def test_an_answer_is_settled_and_its_save_error_records_kept_to_send_again():
    run = new_run(batch_size=3)
    run.resend_codes = RESENT_CODES
    build = run.plan_columns(COLUMNS)
    (batch,) = run.batches([[row(7), row(8), row(9)]], build)
    answer = ImportResult(
        1, 2, 0, [RecordError(1, "save_error", "try again"), RecordError(2, "offer_not_found", "no offer")]
    )
    run.settle_answer(batch, answer)
    assert [(index, record["message_id"], fingerprint) for index, record, fingerprint in run.unsaved] == [
        (1, "m8", b"")
    ]
    assert (run.tally.success_count, run.tally.error_count, run.tally.batches) == (1, 1, 1)
    assert run.tally.errors_by_code == {"offer_not_found": 1}  # save_error is counted once resent


def test_without_a_ledger_finish_has_nothing_to_settle_and_the_summary_is_the_tallys():
    run = new_run()
    assert run.finish() is None
    assert run.summary() == run.tally.as_xcom()


def test_progress_is_logged_while_reading_once_30_seconds_have_passed(caplog):
    run = new_run(batch_size=2)
    clock = iter([run.started + 10, run.started + 30, run.started + 45, run.started + 61])
    run.progress = ProgressLog(run.log, run.started, clock=lambda: next(clock))
    caplog.set_level(logging.INFO)
    chunks = [[row(0), row(1)], [row(2), row(3)], [row(4)], [row(5), row(6)]]
    list(run.batches(chunks, run.plan_columns(COLUMNS)))
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress")] == [
        "Progress: 2 rows read in 30 s (0 rows/s), 0 batches answered.",  # before the second chunk
        "Progress: 5 rows read in 61 s (0 rows/s), 0 batches answered.",
    ]

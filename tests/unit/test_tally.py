"""ImportTally: every row accounted for, and the first 100 errors in query order (pure)."""

from __future__ import annotations

from trackly_provider.operators._engine.records import RowRejection
from trackly_provider.operators._engine.tally import ImportTally
from trackly_provider.trackly_api.results import ImportResult, RecordError


def test_batch_errors_map_back_to_query_positions():
    tally = ImportTally(rows_read=6)
    tally.reject_row(1, RowRejection("missing_offer_id", "offer_id is NULL or empty", "m1"))
    tally.add_batch(
        ImportResult(3, 1, 1, [RecordError(2, "message_not_found", "No message")]),
        row_indexes=[0, 2, 3, 4, 5],
        message_ids=["m0", "m2", "m3", "m4", "m5"],
    )
    assert tally.as_xcom() == {
        "rows_read": 6,
        "success_count": 3,
        "error_count": 2,
        "duplicates_skipped": 1,
        "batches": 1,
        "errors_by_code": {"message_not_found": 1, "missing_offer_id": 1},
        "errors": [
            {
                "index": 1,
                "message_id": "m1",
                "code": "missing_offer_id",
                "error": "offer_id is NULL or empty",
            },
            {"index": 3, "message_id": "m3", "code": "message_not_found", "error": "No message"},
        ],
        "dry_run": False,
    }


def test_the_first_100_errors_are_kept_in_query_order_whatever_order_they_arrive_in():
    tally = ImportTally()
    for index in [*range(250, 100, -1), *range(0, 100, 2), *range(1, 100, 2)]:
        tally.reject_row(index, RowRejection("missing_timestamp", "x", None))
    assert tally.error_count == 250
    assert [e["index"] for e in tally.errors] == list(range(100))


def test_api_error_texts_are_redacted():
    tally = ImportTally()
    tally.add_batch(
        ImportResult(0, 1, 0, [RecordError(0, "save_error", "failed for +1 202 555 9876")]),
        row_indexes=[7],
        message_ids=["m7"],
    )
    assert tally.errors[0]["error"] == "failed for [redacted]"


def test_errors_the_api_counted_but_did_not_list_are_counted_as_unattributed():
    tally = ImportTally(rows_read=300)
    tally.reject_row(0, RowRejection("missing_timestamp", "timestamp is NULL or empty", "m0"))
    listed = [RecordError(i, "message_not_found", "No message") for i in range(100)]
    tally.add_batch(ImportResult(100, 150, 49, listed), row_indexes=range(1, 300), message_ids=["m"] * 299)
    assert tally.errors_by_code == {"missing_timestamp": 1, "message_not_found": 100, "unattributed": 50}
    assert sum(tally.errors_by_code.values()) == tally.error_count == 151


def test_a_dry_run_counts_the_records_it_would_send():
    tally = ImportTally(rows_read=7, dry_run=True)
    tally.add_unsent(5)
    tally.add_unsent(1)
    assert (tally.as_xcom()["records_to_send"], tally.as_xcom()["dry_run"]) == (6, True)


def test_a_huge_message_id_is_cut_in_xcom_but_reaches_the_rejects_writer_whole():
    """A 6 MB id (rejected as too large) would make XCom and the log 6 MB per error."""
    seen: list[str | None] = []
    tally = ImportTally(
        rows_read=1, error_sink=lambda index, message_id, code, error: seen.append(message_id)
    )
    huge = "m" * 6_000_000
    tally.reject_row(0, RowRejection("record_too_large", "column message_id holds text", huge))
    (error,) = tally.as_xcom()["errors"]
    assert error["message_id"] == "m" * 254 + "\N{HORIZONTAL ELLIPSIS}"
    assert seen == [huge]  # the rejects table cuts it to its column's size itself

"""
Revenue exactly once against hostile rows, copies, reordered and edited reruns, lost answers, legacy
8-byte partitions and hand-edited ledger rows (real Airflow, PostgreSQL, the sandbox over HTTP).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import xxhash

from tests.helpers import LEDGER_TABLE
from tests.integration.test_sends_and_revenue import REVENUE_COLUMNS, counts, revenue_row

PARTITION = "revenue/attack"  # named, so that a rerun may read its rows in another order
ASCENDING = (
    "SELECT message_id, offer_id, revenue, payout, attribution_type, timestamp FROM revenue ORDER BY row_id"
)
DESCENDING = ASCENDING + " DESC"
HOSTILE_IDS = [
    "a\n  },\n  {\n",
    "\n  }\n]",
    '"},{"',
    "\\",
    "x\u2028\u2029y",
    "é🎉",
    "}" * 50,
    '{\n    "message_id": "m"\n  },\n  {\n',
]


def import_revenue(airflow, sql: str = ASCENDING, **kwargs):
    return airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=sql, ledger_partition=PARTITION, **kwargs
    )


def stored(sandbox) -> Counter:
    """Each revenue record the sandbox holds, with how many times it holds it."""
    return Counter(
        (r["message_id"], r["offer_id"], Decimal(str(r["revenue"])), r.get("timestamp"))
        for r in sandbox.state()["revenue"]
    )


def hostile_rows() -> list[tuple]:
    """Hostile ids, years 1 and 9999, and copies of one sale: 3 in a row, 4 spread out."""
    rows: list[tuple] = []
    for n, text in enumerate(HOSTILE_IDS):
        rows.append(revenue_row(len(rows), message_id=text, offer_id=f"offer-{n}"))
        rows.append(revenue_row(len(rows), offer_id=text, timestamp="0001-01-01 00:00:00"))
        rows.append(revenue_row(len(rows), attribution_type=text, timestamp="9999-12-31 23:59:59.999999"))
    sale = {"message_id": "msg-copy", "offer_id": "offer-1", "revenue": Decimal("5.00"), "timestamp": None}
    for position in (0, 1, 2, 9, 13, 17, 24):
        rows.insert(position, revenue_row(0, **sale))
    return [(n, *row[1:]) for n, row in enumerate(rows)]


def test_hostile_rows_and_copies_are_stored_once_whatever_the_rerun_s_order_batches_and_edits(
    airflow, sandbox, postgres_source
):
    rows = hostile_rows()
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    first = import_revenue(airflow, batch_size=3)
    assert counts(first.xcom) == (len(rows), len(rows), 0, 0)
    expected = stored(sandbox)
    assert expected[("msg-copy", "offer-1", Decimal("5.00"), None)] == 7
    assert sum(expected.values()) == len(rows)

    # The rerun reads the rows backwards, 7 a request: nothing is sent again.
    seen = sandbox.state()["requests_seen"]
    again = import_revenue(airflow, sql=DESCENDING, batch_size=7)
    assert counts(again.xcom) == (len(rows), 0, len(rows), 0)
    assert sandbox.state()["requests_seen"] == seen

    # Two more copies of the sale, one row deleted, one changed: exactly the new ones are sent.
    changed = (rows[5][0], "msg-changed", *rows[5][2:])
    edited = [*rows[:5], changed, *rows[6:-1]]
    edited += [(len(rows) + n, *rows[0][1:]) for n in range(2)]
    postgres_source.load("revenue", REVENUE_COLUMNS, edited)
    edit = import_revenue(airflow, sql=DESCENDING, batch_size=1000)
    assert counts(edit.xcom) == (len(edited), 3, len(edited) - 3, 0)
    after = stored(sandbox)
    assert after[("msg-copy", "offer-1", Decimal("5.00"), None)] == 9
    assert sum(after.values()) == len(rows) + 3
    assert sum((after - expected).values()) == 3


def test_many_copies_spread_across_chunks_are_each_stored_once(airflow, sandbox, postgres_source):
    sale = {"message_id": "msg-same", "offer_id": "offer-1", "revenue": Decimal("0.25"), "timestamp": None}
    rows = [revenue_row(n, **sale) if n % 3 else revenue_row(n) for n in range(450)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    first = import_revenue(airflow, batch_size=7)
    assert counts(first.xcom) == (450, 450, 0, 0)
    rows += [revenue_row(450, **sale), revenue_row(451, **sale)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    again = import_revenue(airflow, sql=DESCENDING, batch_size=50)
    assert counts(again.xcom) == (452, 2, 450, 0)
    assert stored(sandbox)[("msg-same", "offer-1", Decimal("0.25"), None)] == 302
    assert len(sandbox.state()["revenue"]) == 452


def test_copies_of_one_record_cost_a_few_hashes_each_not_one_per_earlier_copy(
    airflow, sandbox, postgres_source, monkeypatch
):
    sale = {"message_id": "msg-same", "offer_id": "offer-1", "revenue": Decimal("0.25"), "timestamp": None}
    postgres_source.load("revenue", REVENUE_COLUMNS, [revenue_row(n, **sale) for n in range(400)])
    hashes: list[bytes] = []
    digest = xxhash.xxh3_128_digest

    def counted(data: bytes) -> bytes:
        hashes.append(data[:0])
        return digest(data)

    monkeypatch.setattr(xxhash, "xxh3_128_digest", counted)
    result = import_revenue(airflow, batch_size=20)
    assert counts(result.xcom) == (400, 400, 0, 0)
    assert len(hashes) <= 3 * 400  # probing #1, #2... from the start each time: n(n+1)/2 = 80,200


def unknown_then_settled(airflow, sandbox, postgres_source, rows) -> None:
    """A first run loses some answers; reruns: 'fail' sends nothing unknown, 'assume_imported' settles."""
    sandbox.set_faults(lost_after_commit=0.4, seed=3)
    first = import_revenue(airflow, batch_size=5, max_in_flight=1, max_error_rate=1.0)
    assert first.state == "failed"
    sandbox.set_faults()
    unknown = first.xcom["errors_by_code"]["outcome_unknown"]
    assert 0 < unknown < len(rows)
    assert len(sandbox.state()["revenue"]) == len(rows)  # every request was stored, some unanswered

    refused = import_revenue(airflow, sql=DESCENDING, batch_size=3)
    assert refused.state == "failed"
    assert counts(refused.xcom) == (len(rows), 0, len(rows) - unknown, unknown)
    assert len(sandbox.state()["revenue"]) == len(rows)

    settled = import_revenue(airflow, batch_size=11, on_unknown_outcome="assume_imported")
    assert settled.state == "success"
    assert counts(settled.xcom) == (len(rows), 0, len(rows), 0)
    final = import_revenue(airflow, sql=DESCENDING, batch_size=2)
    assert counts(final.xcom) == (len(rows), 0, len(rows), 0)
    assert postgres_source.query(f"SELECT count(*) FROM {LEDGER_TABLE} WHERE state = 'unknown'") == [(0,)]
    assert sorted(r["message_id"] for r in sandbox.state()["revenue"]) == sorted(row[1] for row in rows)


def test_answers_lost_mid_import_are_never_resent_and_settle_once(airflow, sandbox, postgres_source):
    rows = [revenue_row(n) for n in range(40)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    unknown_then_settled(airflow, sandbox, postgres_source, rows)
    widths = postgres_source.query(f"SELECT DISTINCT length(fingerprints) / records FROM {LEDGER_TABLE}")
    assert widths == [(16,)]


def test_answers_lost_in_a_partition_of_an_earlier_release_settle_in_its_8_bytes(
    airflow, sandbox, postgres_source, monkeypatch
):
    rows = [revenue_row(n) for n in range(40)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows[:10])
    with monkeypatch.context() as patch:  # an earlier release started the partition
        patch.setattr("trackly_provider.database.ledger.NEW_PARTITION_WIDTH", 8)
        before = import_revenue(airflow, batch_size=4)
    assert counts(before.xcom) == (10, 10, 0, 0)
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    sandbox.set_faults(lost_after_commit=0.4, seed=3)
    first = import_revenue(airflow, batch_size=5, max_in_flight=1, max_error_rate=1.0)
    sandbox.set_faults()
    assert first.state == "failed"
    assert first.xcom["duplicates_skipped"] == 10
    refused = import_revenue(airflow, sql=DESCENDING, batch_size=3)
    assert refused.state == "failed"
    settled = import_revenue(airflow, batch_size=11, on_unknown_outcome="assume_imported")
    assert counts(settled.xcom) == (40, 0, 40, 0)
    assert sorted(r["message_id"] for r in sandbox.state()["revenue"]) == [row[1] for row in rows]
    widths = postgres_source.query(f"SELECT DISTINCT length(fingerprints) / records FROM {LEDGER_TABLE}")
    assert widths == [(8,)]


@pytest.mark.reads_failed_task_log
@pytest.mark.parametrize(
    ("fingerprints", "records", "message"),
    [
        (b"\x01" * 17, 1, "holds 17 bytes of fingerprints for 1 records"),
        (b"", 0, "holds 0 bytes of fingerprints for 0 records"),
        (b"\x01" * 48, 4, "holds 48 bytes of fingerprints for 4 records"),
        (b"\x01" * 16, 2, "holds fingerprints of 8 and of 16 bytes"),  # beside the run's 16-byte rows
    ],
    ids=["17-bytes", "no-records", "12-bytes-each", "mixed-widths"],
)
def test_a_hand_edited_ledger_row_fails_the_import_at_once_sending_nothing(
    airflow, sandbox, postgres_source, task_output, fingerprints, records, message
):
    rows = [revenue_row(n) for n in range(6)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    assert import_revenue(airflow, batch_size=4).state == "success"
    with postgres_source.connect() as conn:
        conn.execute(
            f"INSERT INTO {LEDGER_TABLE} (partition_key, batch_id, state, first_row, records, fingerprints, "
            "message_ids, recorded_at) VALUES (%s, 'edited', 'confirmed', 0, %s, %s, '[]', now())",
            (PARTITION, records, fingerprints),
        )
    postgres_source.load("revenue", REVENUE_COLUMNS, [*rows, revenue_row(6)])
    seen = sandbox.state()["requests_seen"]
    result = import_revenue(airflow, batch_size=4)
    assert result.state == "failed"
    assert message in task_output()
    assert sandbox.state()["requests_seen"] == seen
    assert len(sandbox.state()["revenue"]) == 6

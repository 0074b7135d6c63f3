"""Sends and revenue imports through real Airflow, real SQLite and PostgreSQL, and the sandbox over HTTP."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.helpers import LEDGER_CONN_ID, LEDGER_TABLE, SOURCE_CONN_ID, clicks, phone
from trackly_provider.database.ledger import ImportLedger, unpack

SEND_COLUMNS = {
    "id": "text",
    "to_number": "text",
    "timestamp": "text",
    "list_id": "text",
    "message": "text",
    "send_type": "text",
    "delivered": "text",
    "length": "text",
}
REVENUE_COLUMNS = {
    "row_id": "int",
    "message_id": "text",
    "offer_id": "text",
    "revenue": "number",
    "payout": "number",
    "attribution_type": "text",
    "timestamp": "text",
}
SENDS_SQL = "SELECT id, to_number, timestamp, list_id, message, send_type, delivered, length FROM sends"
REVENUE_SQL = (
    "SELECT message_id, offer_id, revenue, payout, attribution_type, timestamp FROM revenue ORDER BY row_id"
)


def send_row(n: int, **changes: Any) -> tuple[Any, ...]:
    row = {
        "id": f"msg-{n:07d}",
        "to_number": phone(n),
        "timestamp": f"2025-11-15 10:{n // 60 % 60:02d}:{n % 60:02d}",
        "list_id": "1",
        "message": f"Hello {n}",
        "send_type": "campaign",
        "delivered": "true",
        "length": "42",
        **changes,
    }
    return tuple(row.values())


def revenue_row(n: int, **changes: Any) -> tuple[Any, ...]:
    row = {
        "row_id": n,
        "message_id": f"msg-{n:07d}",
        "offer_id": f"offer-{n % 7}",
        "revenue": Decimal(n % 50) + Decimal("0.25"),
        "payout": Decimal("1.10"),
        "attribution_type": "click",
        "timestamp": f"2025-11-15 11:{n // 60 % 60:02d}:{n % 60:02d}",
        **changes,
    }
    return tuple(row.values())


def counts(xcom: dict[str, Any]) -> tuple[int, int, int, int]:
    """(rows_read, success_count, duplicates_skipped, error_count), checked to add up."""
    assert xcom["rows_read"] == xcom["success_count"] + xcom["duplicates_skipped"] + xcom["error_count"]
    assert sum(xcom["errors_by_code"].values()) == xcom["error_count"]
    return xcom["rows_read"], xcom["success_count"], xcom["duplicates_skipped"], xcom["error_count"]


def test_sends_are_imported_record_by_record(airflow, sandbox, sqlite_source):
    sqlite_source.load("sends", SEND_COLUMNS, [send_row(1), send_row(2, list_id=None, delivered="0")])
    result = airflow.run_operator("SendHistoryImportOperator", "import_sends", sql=SENDS_SQL)
    assert result.state == "success"
    assert counts(result.xcom) == (2, 2, 0, 0)
    assert sandbox.received() == [
        {
            "id": "msg-0000001",
            "to_number": "+12025550001",
            "timestamp": "2025-11-15T10:00:01+00:00",
            "list_id": "1",
            "message": "Hello 1",
            "send_type": "campaign",
            "delivered": True,
            "length": 42,
        },
        {
            "id": "msg-0000002",
            "to_number": "+12025550002",
            "timestamp": "2025-11-15T10:00:02+00:00",
            "message": "Hello 2",
            "send_type": "campaign",
            "delivered": False,
            "length": 42,
        },
    ]
    assert sorted(sandbox.state()["sends"]) == ["msg-0000001", "msg-0000002"]


def test_every_send_error_code_is_counted_and_duplicates_are_skipped(airflow, sandbox, sqlite_source):
    sandbox_had = send_row(9)
    sqlite_source.load(
        "sends",
        SEND_COLUMNS,
        [
            send_row(1),
            send_row(2, id=" "),
            send_row(3, to_number=None),
            send_row(4, to_number="2025550004"),
            send_row(5, timestamp=None),
            send_row(6, timestamp="yesterday"),
            send_row(7, list_id="99"),
            send_row(8, delivered="maybe"),
            send_row(10, length="4.5"),
            sandbox_had,
            sandbox_had,
        ],
    )
    result = airflow.run_operator(
        "SendHistoryImportOperator", "import_sends", sql=SENDS_SQL, max_error_rate=1.0
    )
    assert result.state == "success"
    assert counts(result.xcom) == (11, 2, 1, 8)
    assert result.xcom["errors_by_code"] == {
        "invalid_delivered": 1,
        "invalid_length": 1,
        "invalid_phone": 1,
        "invalid_timestamp": 1,
        "list_not_found": 1,
        "missing_id": 1,
        "missing_timestamp": 1,
        "missing_to_number": 1,
    }
    by_row = {
        error["index"]: (error["message_id"], error["code"], error["error"])
        for error in result.xcom["errors"]
    }
    assert by_row[3] == (
        "msg-0000004",
        "invalid_phone",
        "column to_number holds text of 10 characters, not a valid to_number. Return the number in E.164 "
        "(+ then the country code and number, e.g. +14155550100), or set the operator's default_region "
        "(e.g. 'US') for numbers written without a country code.",
    )
    assert by_row[6][1:] == ("list_not_found", "No list exists with the given list_id or list_number.")
    assert "2025550004" not in json.dumps(result.xcom)
    assert [record["id"] for record in sandbox.received()] == [
        "msg-0000001",
        "msg-0000007",
        "msg-0000009",
        "msg-0000009",
    ]


def test_clicks_need_their_sends_first(airflow, sandbox, sqlite_source):
    sandbox.require_sends()
    sqlite_source.insert_clicks(clicks(5))
    sqlite_source.load("sends", SEND_COLUMNS, [send_row(n) for n in range(5)])

    before = airflow.run_operator(max_error_rate=1.0)
    assert counts(before.xcom) == (5, 0, 0, 5)
    assert before.xcom["errors_by_code"] == {"message_not_found": 5}

    sends = airflow.run_operator("SendHistoryImportOperator", "import_sends", sql=SENDS_SQL)
    after = airflow.run_operator()
    assert (counts(sends.xcom), counts(after.xcom)) == ((5, 5, 0, 0), (5, 5, 0, 0))
    assert sorted(sandbox.stored()) == [f"msg-{n:07d}" for n in range(5)]


def test_revenue_is_imported_once_and_a_rerun_sends_nothing(airflow, sandbox, postgres_source):
    rows = [revenue_row(n) for n in range(2500)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL)
    assert first.state == "success"
    assert counts(first.xcom) == (2500, 2500, 0, 0)
    assert first.xcom["ledger"]["table"] == LEDGER_TABLE
    received = sandbox.received()
    assert received[7] == {
        "message_id": "msg-0000007",
        "offer_id": "offer-0",
        "revenue": 7.25,
        "payout": 1.1,
        "attribution_type": "click",
        "timestamp": "2025-11-15T11:00:07+00:00",
    }
    source_total = sum(row[3] for row in rows)
    assert Decimal(sandbox.state()["total_revenue"]) == source_total

    requests_before = sandbox.state()["requests_seen"]
    again = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL)
    assert again.state == "success"
    assert counts(again.xcom) == (2500, 0, 2500, 0)
    assert again.xcom["ledger"]["skipped_confirmed"] == 2500
    assert sandbox.state()["requests_seen"] == requests_before
    assert Decimal(sandbox.state()["total_revenue"]) == source_total
    assert len(sandbox.state()["revenue"]) == 2500


def test_every_revenue_error_code(airflow, sandbox, postgres_source):
    postgres_source.load(
        "revenue",
        REVENUE_COLUMNS,
        [
            revenue_row(1),
            revenue_row(2, message_id=None),
            revenue_row(3, offer_id=""),
            revenue_row(4, revenue=None),
            revenue_row(5, revenue=Decimal("-1")),
            revenue_row(6, payout=Decimal("-0.5")),
            revenue_row(7, message_id="unknown-7"),
            revenue_row(8, offer_id="unknown-offer"),
            revenue_row(9, message_id="nocontact-9"),
            revenue_row(10, timestamp="15/11/2025"),
        ],
    )
    result = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, max_error_rate=1.0
    )
    assert result.state == "success"
    assert counts(result.xcom) == (10, 1, 0, 9)
    assert result.xcom["errors_by_code"] == {
        "contact_not_found": 1,
        "invalid_payout": 1,
        "invalid_revenue": 1,
        "invalid_timestamp": 1,
        "message_not_found": 1,
        "missing_message_id": 1,
        "missing_offer_id": 1,
        "missing_revenue": 1,
        "offer_not_found": 1,
    }
    assert [record["message_id"] for record in sandbox.received()] == [
        "msg-0000001",
        "unknown-7",
        "msg-0000008",
        "nocontact-9",
    ]
    # Rejected records are not in the ledger: a rerun sends them again (a fixed source may pass).
    again = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, max_error_rate=1.0
    )
    assert counts(again.xcom) == (10, 0, 1, 9)
    assert [record["message_id"] for record in sandbox.received()][4:] == [
        "unknown-7",
        "msg-0000008",
        "nocontact-9",
    ]
    assert len(sandbox.state()["revenue"]) == 1


@pytest.mark.reads_failed_task_log
def test_a_sqlite_source_cannot_hold_the_ledger(airflow, sandbox, sqlite_source, task_output):
    sqlite_source.load("revenue", REVENUE_COLUMNS, [revenue_row(1)])
    result = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL)
    assert result.state == "failed"
    assert sandbox.state()["requests_seen"] == 0
    assert (
        f"The ledger cannot live in the SQLite database being read (connection '{SOURCE_CONN_ID}')"
        in task_output()
    )


def test_revenue_from_sqlite_with_the_ledger_in_another_file(airflow, sandbox, sqlite_source, ledger_db):
    sqlite_source.load("revenue", REVENUE_COLUMNS, [revenue_row(n) for n in range(30)])
    kwargs = {"sql": REVENUE_SQL, "ledger_conn_id": LEDGER_CONN_ID, "batch_size": 7}
    first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    again = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert (counts(first.xcom), counts(again.xcom)) == ((30, 30, 0, 0), (30, 0, 30, 0))
    assert len(sandbox.state()["revenue"]) == 30


def unknown_in_ledger(source) -> list[tuple[str, int, list[bytes]]]:
    """The ledger's requests of unknown outcome: (batch_id, first row, fingerprints), lowest rows first."""
    rows = source.query(
        f"SELECT batch_id, first_row, fingerprints FROM {LEDGER_TABLE} WHERE state = 'unknown' ORDER BY 2"
    )
    return [(batch_id, int(row), list(unpack(data))) for batch_id, row, data in rows]


@pytest.mark.reads_failed_task_log
def test_revenue_after_lost_answers_is_stored_once_reported_and_never_resent(
    airflow, sandbox, postgres_source, task_output
):
    rows = [revenue_row(n) for n in range(3000)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    source_total = sum(row[3] for row in rows)
    sandbox.set_faults(lost_after_commit=0.1, html_502_after_commit=0.1, seed=5)
    kwargs = {"sql": REVENUE_SQL, "batch_size": 100}

    first_run = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    state = sandbox.state()
    injected = state["faults_injected"]
    lost = 100 * (injected["lost_after_commit"] + injected["html_502_after_commit"])
    assert injected["lost_after_commit"] >= 1 and injected["html_502_after_commit"] >= 1
    assert first_run.state == "failed"
    assert counts(first_run.xcom) == (3000, 3000 - lost, 0, lost)
    assert first_run.xcom["errors_by_code"] == {"outcome_unknown": lost}
    # The faults came after Trackly stored the records and nothing was sent twice: each row once.
    assert state["requests_seen"] == 30
    assert sorted(record["message_id"] for record in state["revenue"]) == [row[1] for row in rows]
    assert Decimal(state["total_revenue"]) == source_total
    unknown = unknown_in_ledger(postgres_source)
    assert sum(len(prints) for _, _, prints in unknown) == lost
    # Each request's records are 100 consecutive rows here: the first 20 of all, by row index.
    first = [(row + i, print_) for _, row, prints in unknown for i, print_ in enumerate(prints)][:20]
    requests = "; ".join(f"{batch_id} (from row {row}, 100 records)" for batch_id, row, _ in unknown[:10])
    log = task_output()
    assert (
        f"{lost} revenue records have an unknown outcome: their request got no answer (connection lost, "
        "timeout after sending, or a 5xx), or an answer that did not say which of them failed or "
        "contradicted itself, so Trackly may or may not have stored them. They were not sent again: "
        "Trackly does not skip revenue it already has, so sending them twice could count them twice. "
        "First rows: "
        f"{', '.join(str(row) for row, _ in first)}; fingerprints: "
        f"{', '.join(fingerprint.hex() for _, fingerprint in first)}. Ledger table "
        f"{LEDGER_TABLE}, partition_key '{first_run.xcom['ledger']['partition']}', state 'unknown': "
        f"{lost} records in {len(unknown)} request(s), the first by batch_id: {requests}. Check in "
        "Trackly whether they were stored (their message ids are in the rows' message_ids), then rerun "
        "with on_unknown_outcome='assume_imported' if they were, or on_unknown_outcome='resend' if they "
        "were not; or settle one request at a time by setting its row's state to 'confirmed' (stored) "
        "or deleting its row (not stored)."
    ) in log

    sandbox.set_faults()
    again = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert again.state == "failed"
    assert counts(again.xcom) == (3000, 0, 3000 - lost, lost)
    assert sandbox.state()["requests_seen"] == 30

    # A dry run that would assume them imported changes nothing in the ledger.
    dry = airflow.run_operator(
        "RevenueHistoryImportOperator",
        "import_revenue",
        on_unknown_outcome="assume_imported",
        dry_run=True,
        **kwargs,
    )
    assert (dry.state, dry.xcom["records_to_send"], dry.xcom["duplicates_skipped"]) == ("success", 0, 3000)
    assert unknown_in_ledger(postgres_source) == unknown

    # Checked in Trackly: they were stored.
    settled = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", on_unknown_outcome="assume_imported", **kwargs
    )
    after = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert (settled.state, after.state) == ("success", "success")
    assert counts(settled.xcom) == counts(after.xcom) == (3000, 0, 3000, 0)
    assert unknown_in_ledger(postgres_source) == []
    assert sandbox.state()["requests_seen"] == 30
    assert Decimal(sandbox.state()["total_revenue"]) == source_total


def test_revenue_whose_answers_were_lost_before_it_was_stored_is_sent_again_when_the_user_says_so(
    airflow, sandbox, postgres_source
):
    rows = [revenue_row(n) for n in range(1000)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    sandbox.set_faults(reset=0.3, seed=2)  # connection reset before Trackly processed the request
    kwargs = {"sql": REVENUE_SQL, "batch_size": 50}
    first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    lost = 50 * sandbox.state()["faults_injected"]["reset"]
    assert first.state == "failed"
    assert counts(first.xcom) == (1000, 1000 - lost, 0, lost)
    assert len(sandbox.state()["revenue"]) == 1000 - lost

    sandbox.set_faults()
    resent = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", on_unknown_outcome="resend", **kwargs
    )
    assert resent.state == "success"
    assert counts(resent.xcom) == (1000, lost, 1000 - lost, 0)
    assert sorted(record["message_id"] for record in sandbox.state()["revenue"]) == [row[1] for row in rows]


def test_revenue_rate_limited_is_retried_and_stored_once(airflow, sandbox, postgres_source):
    rows = [revenue_row(n) for n in range(1000)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    sandbox.set_faults(rate_limited=0.3, retry_after="0", seed=4)
    # One request at a time: the seeded faults then fall on the same requests every run (with
    # requests in parallel, which request draws which fault varies, and 5 in a row fail the task).
    result = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, batch_size=100, max_in_flight=1
    )
    state = sandbox.state()
    assert result.state == "success"
    assert counts(result.xcom) == (1000, 1000, 0, 0)
    assert state["requests_seen"] == 10 + state["faults_injected"]["rate_limited"] > 10
    assert sorted(record["message_id"] for record in state["revenue"]) == [row[1] for row in rows]


def test_a_dry_run_reads_the_ledger_and_says_what_a_rerun_would_send_writing_nothing(
    airflow, sandbox, postgres_source
):
    rows = [revenue_row(n) for n in range(300)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows[:200])
    airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, batch_size=50)
    ledger_before = postgres_source.query(f"SELECT batch_id, state FROM {LEDGER_TABLE} ORDER BY 1")
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)  # 100 rows arrived late
    dry = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, batch_size=50, dry_run=True
    )
    assert dry.state == "success"
    assert (
        dry.xcom["records_to_send"],
        dry.xcom["duplicates_skipped"],
        dry.xcom["ledger"]["skipped_confirmed"],
    ) == (
        100,
        200,
        200,
    )
    assert postgres_source.query(f"SELECT batch_id, state FROM {LEDGER_TABLE} ORDER BY 1") == ledger_before
    assert sandbox.state()["requests_seen"] == 4


@pytest.mark.reads_failed_task_log
def test_an_unknown_on_unknown_outcome_is_refused_before_anything_is_read(
    airflow, sandbox, postgres_source, task_output
):
    postgres_source.load("revenue", REVENUE_COLUMNS, [revenue_row(1)])
    result = airflow.run_operator(
        "RevenueHistoryImportOperator", "import_revenue", sql=REVENUE_SQL, on_unknown_outcome="ignore"
    )
    assert result.state == "failed"
    assert sandbox.state()["requests_seen"] == 0
    assert "on_unknown_outcome must be one of fail, resend, assume_imported, got 'ignore'." in task_output()


@pytest.mark.reads_failed_task_log
def test_revenue_whose_answer_names_only_100_of_its_errors_is_left_unknown_not_resent(
    airflow, sandbox, postgres_source, task_output
):
    rows = [revenue_row(n, offer_id="unknown-offer" if n % 5 < 3 else "offer-1") for n in range(250)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    kwargs = {"sql": REVENUE_SQL, "batch_size": 250, "max_error_rate": 1.0}
    first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    # 150 errors, 100 listed: the 150 records not listed (100 stored, 50 failed) cannot be told apart.
    assert first.state == "failed"
    assert counts(first.xcom) == (250, 100, 0, 150)
    assert first.xcom["errors_by_code"] == {"offer_not_found": 100, "unattributed": 50}
    assert sandbox.state()["requests_seen"] == 1
    assert sum(len(prints) for _, _, prints in unknown_in_ledger(postgres_source)) == 150
    assert "150 revenue records have an unknown outcome" in task_output()
    again = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert counts(again.xcom) == (250, 0, 0, 250)
    assert again.xcom["errors_by_code"] == {"offer_not_found": 100, "outcome_unknown": 150}
    assert len(sandbox.state()["revenue"]) == 100


def test_default_region_reads_national_numbers_and_every_phone_field_goes_in_e164(
    airflow, sandbox, sqlite_source, task_output
):
    """National and punctuated numbers become E.164; numbers no region makes whole are rejected."""
    sqlite_source.load(
        "sends",
        {**SEND_COLUMNS, "list_number": "text"},
        [
            (*send_row(1, to_number="(202) 555-0101", list_id=None), "+1 202 555 0100"),
            (*send_row(2, to_number="12025550102", list_id=None), "tel:+1-202-555-0100"),
            (*send_row(3, to_number="+44 7911 123456", list_id=None), "2025550100"),
            (*send_row(4, to_number="555-0104", list_id=None), "2025550100"),  # no area code
            (*send_row(5, list_id=None), "+1 202 555"),
        ],
    )
    result = airflow.run_operator(
        "SendHistoryImportOperator",
        "import_sends",
        sql="SELECT id, to_number, timestamp, list_number FROM sends",
        default_region="US",
        max_error_rate=1.0,
    )
    assert result.state == "success"
    assert [(r["id"], r["to_number"], r["list_number"]) for r in sandbox.received()] == [
        ("msg-0000001", "+12025550101", "+12025550100"),
        ("msg-0000002", "+12025550102", "+12025550100"),
        ("msg-0000003", "+447911123456", "+12025550100"),
    ]
    assert [(e["index"], e["code"]) for e in result.xcom["errors"]] == [
        (3, "invalid_phone"),
        (4, "invalid_list_number"),
    ]
    assert "555-0104" not in json.dumps(result.xcom)
    log = task_output()
    assert "Rejected row 3 (message_id msg-0000004): invalid_phone: column to_number holds text of 8" in log
    assert "555-0104" not in log


def test_a_day_imported_by_a_release_before_0_2_is_not_sent_again_after_the_upgrade(
    airflow, sandbox, postgres_source, monkeypatch
):
    """
    Releases before 0.2 wrote 8-byte fingerprints (``LegacyFingerprints``, pinned to their algorithm
    in tests/unit/test_fingerprints.py). The first run stands in for such a release: the width of a
    new partition is patched to 8 (the one thing mocked). The upgrade's reruns must still skip every
    revenue record Trackly confirmed, and keep writing that partition's fingerprints in 8 bytes.
    """
    postgres_source.load("revenue", REVENUE_COLUMNS, [revenue_row(n) for n in range(30)])
    kwargs = {"sql": REVENUE_SQL, "batch_size": 7}
    with monkeypatch.context() as patch:
        patch.setattr("trackly_provider.database.ledger.NEW_PARTITION_WIDTH", 8)
        before = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert counts(before.xcom) == (30, 30, 0, 0)
    rows = postgres_source.query(f"SELECT records, fingerprints FROM {LEDGER_TABLE}")
    assert {len(bytes(data)) // records for records, data in rows} == {8}
    seen = sandbox.state()["requests_seen"]

    after = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert counts(after.xcom) == (30, 0, 30, 0)
    assert sandbox.state()["requests_seen"] == seen  # nothing sent
    postgres_source.load("revenue", REVENUE_COLUMNS, [revenue_row(n) for n in range(40)])
    more = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert counts(more.xcom) == (40, 10, 30, 0)
    assert sorted(r["message_id"] for r in sandbox.state()["revenue"]) == [f"msg-{n:07d}" for n in range(40)]
    rows = postgres_source.query(f"SELECT records, fingerprints FROM {LEDGER_TABLE}")
    assert {len(bytes(data)) // records for records, data in rows} == {8}


@pytest.mark.reads_failed_task_log
def test_a_request_whose_ledger_row_could_not_be_written_is_never_sent(
    airflow, sandbox, postgres_source, monkeypatch, task_output
):
    """
    A request goes only once its ``unknown`` row is committed. The second write-ahead fails here
    (mocked: the one fault that must happen at that precise moment): that request and every later
    one stay unsent, the first is confirmed, and the rerun sends the rest, so every row is stored
    exactly once.
    """
    rows = [revenue_row(n) for n in range(50)]
    postgres_source.load("revenue", REVENUE_COLUMNS, rows)
    kwargs = {"sql": REVENUE_SQL, "batch_size": 10, "max_in_flight": 4}
    write_ahead = ImportLedger._write_ahead
    calls = []

    def failing_second(self, batch_id, records):
        calls.append(batch_id)
        if len(calls) == 2:
            raise RuntimeError("the ledger's database went away")
        return write_ahead(self, batch_id, records)

    with monkeypatch.context() as patch:
        patch.setattr(ImportLedger, "_write_ahead", failing_second)
        first = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert first.state == "failed"
    assert "the ledger's database went away" in task_output()
    assert sandbox.state()["requests_seen"] == 1
    assert len(sandbox.state()["revenue"]) == 10
    again = airflow.run_operator("RevenueHistoryImportOperator", "import_revenue", **kwargs)
    assert counts(again.xcom) == (50, 40, 10, 0)
    assert sorted(r["message_id"] for r in sandbox.state()["revenue"]) == [row[1] for row in rows]

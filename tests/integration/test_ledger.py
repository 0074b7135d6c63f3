"""The ledger's table on each real database, held across connections and locked per partition."""

from __future__ import annotations

import itertools
import json
import sqlite3

import MySQLdb
import pytest

from tests.databases import mariadb_options
from tests.helpers import SOURCE_CONN_ID, MariaDbSource, PostgresSource
from trackly_provider.database.ledger import (
    CONFIRMED,
    UNKNOWN,
    ImportLedger,
)
from trackly_provider.database.ledger_lock import PartitionLock
from trackly_provider.database.source import sql_hook
from trackly_provider.exceptions import TracklyConfigError, TracklyPartitionLockedError


def F(number: int) -> bytes:
    """A 16-byte fingerprint, written as a number."""
    return number.to_bytes(16, "big", signed=True)


@pytest.mark.parametrize("source", ["sqlite", "postgres", "mariadb"])
def test_the_ledger_keeps_each_partition_across_connections(request, source, airflow_home):
    request.getfixturevalue(f"{source}_source")
    hook = sql_hook(SOURCE_CONN_ID)
    table = "trackly_ledger_test"
    sent = [(F(1), 0, "m0"), (F(2), 1, "m1"), (F(3), 2, "m2"), (F(-(2**127)), 3, None)]
    try:
        with ImportLedger(hook, table, "day-1") as ledger:
            assert (ledger.confirmed_before, ledger.unknown_before) == (0, 0)
            first = ledger.record_sending(sent)
            ledger.settle(first, sent, [True, None, False, True])  # stored, no answer, rejected, stored
            ledger.finish()
        with ImportLedger(hook, table, "day-2") as other_day:
            other = other_day.record_sending([(F(1), 0, "m0")])
            assert other_day.unknown_requests() == [(other, 0, 1)]  # written before the request goes
            other_day.settle(other, [(F(1), 0, "m0")], [True])
        with ImportLedger(hook, table, "day-1") as rerun:
            assert (rerun.confirmed_before, rerun.unknown_before) == (2, 1)
            states = [rerun.state_of(f) for f in map(F, (1, -(2**127), 2, 3))]
            assert states == [CONFIRMED, CONFIRMED, UNKNOWN, None]
            assert rerun.unknown_requests() == [(first, 1, 1)]
            rerun.assume_imported((F(2), 5, "m1"))  # the user checked: Trackly has it
            rerun.finish()
        with ImportLedger(hook, table, "day-1") as again:
            assert (again.confirmed_before, again.unknown_before) == (3, 0)
            assert again.unknown_requests() == []
    finally:
        connection = hook.get_conn()
        connection.cursor().execute(f"DROP TABLE {table}")
        connection.commit()
        connection.close()


def request_without_answer(hook) -> str:
    """Records 7 and 8 of partition ``day`` sent by one request that got no answer: its batch id."""
    with ImportLedger(hook, "ledger", "day") as ledger:
        lost = ledger.record_sending([(F(7), 0, "a"), (F(8), 1, "b")])
        ledger.settle(lost, [(F(7), 0, "a"), (F(8), 1, "b")], [None, None])
    return lost


def test_a_record_sent_again_leaves_the_earlier_unknown_request_once_answered(sqlite_source, airflow_home):
    hook = sql_hook(SOURCE_CONN_ID)
    lost = request_without_answer(hook)
    with ImportLedger(hook, "ledger", "day") as resend:
        again = resend.record_sending([(F(7), 0, "a")])  # on_unknown_outcome="resend", for one of the two
        resend.settle(again, [(F(7), 0, "a")], [True])
        resend.finish()
        assert resend.unknown_requests() == [(lost, 0, 1)]
    with ImportLedger(hook, "ledger", "day") as after:
        assert (after.confirmed_before, after.unknown_before) == (1, 1)
        assert [after.state_of(f) for f in map(F, (7, 8))] == [CONFIRMED, UNKNOWN]


def test_a_crash_after_a_record_was_sent_again_leaves_it_confirmed_not_unknown(sqlite_source, airflow_home):
    hook = sql_hook(SOURCE_CONN_ID)
    request_without_answer(hook)
    with ImportLedger(hook, "ledger", "day") as resend:
        again = resend.record_sending([(F(7), 0, "a")])
        resend.settle(again, [(F(7), 0, "a")], [True])  # then the worker dies: finish() never runs
    with ImportLedger(hook, "ledger", "day") as after:
        assert (after.confirmed_before, after.unknown_before) == (1, 1)


@pytest.mark.parametrize("spelling", ["public.trackly_lock_test", "TRACKLY_LOCK_TEST"])
def test_the_partition_lock_names_the_partition_not_the_table_s_spelling(postgres_source, spelling):
    first, second = PostgresSource.connect(), PostgresSource.connect()
    try:
        PartitionLock(first, "trackly_lock_test", "revenue/day-1", 0, "import A").acquire()
        with pytest.raises(TracklyPartitionLockedError, match=r"'revenue/day-1' \(table " + spelling):
            PartitionLock(second, spelling, "revenue/day-1", 0, "import B").acquire()
    finally:
        first.close()
        second.close()


def test_mysql_locks_are_per_database_and_its_partition_keys_exact(mariadb_source, airflow_home):
    other_database = MySQLdb.connect(**mariadb_options("information_schema"))
    test_database = MariaDbSource.connect()
    try:
        PartitionLock(other_database, "ledger", "revenue/day-1", 0, "staging").acquire()
        PartitionLock(test_database, "ledger", "revenue/day-1", 0, "production").acquire()  # not blocked
    finally:
        other_database.close()
        test_database.close()
    hook = sql_hook(SOURCE_CONN_ID)
    try:
        with ImportLedger(hook, "trackly_case_test", '["Offer-A"]') as ledger:
            ledger.settle(ledger.record_sending([(F(1), 0, "m1")]), [(F(1), 0, "m1")], [True])
        for other in ('["offer-a"]', '["Offer-A"] ', '["Öffer-A"]'):
            with ImportLedger(hook, "trackly_case_test", other) as ledger:
                assert ledger.confirmed_before == 0, other
    finally:
        connection = hook.get_conn()
        connection.cursor().execute("DROP TABLE trackly_case_test")
        connection.commit()
        connection.close()


def test_a_lock_taken_at_once_reports_no_wait_however_slow_its_query(tmp_path):
    ticks = itertools.count(0, 0.06)  # every read of the clock 60 ms later
    lock = PartitionLock(
        sqlite3.connect(tmp_path / "ledger.db"), "t", "day", 10, "me", clock=lambda: next(ticks)
    )
    lock.acquire()
    assert (lock.waited_for, lock.waited) == (None, 0.0)


def test_a_ledger_that_fails_to_open_releases_its_sqlite_lock(tmp_path, monkeypatch, airflow_home):
    path = tmp_path / "ledger.db"
    monkeypatch.setenv("AIRFLOW_CONN_TRACKLY_LEDGER", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    broken = sqlite3.connect(path)
    broken.execute("CREATE TABLE ledger_t (partition_key TEXT)")  # not the ledger's columns
    broken.commit()
    hook = sql_hook("trackly_ledger")
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        ImportLedger(hook, "ledger_t", "day-1", lock_timeout=0).__enter__()
    broken.execute("DROP TABLE ledger_t")
    broken.commit()
    with ImportLedger(hook, "ledger_t", "day-1", lock_timeout=0) as ledger:  # in the same process
        assert ledger.lock is not None


def test_hand_edited_counts_reserve_no_memory_before_the_rows_are_checked(postgres_source, airflow_home):
    """
    Counts summing to 4 * 10^10 records (about 640 GiB of fingerprints) are a hint capped at 2^24;
    the rows themselves then fail the import with the fix, not a MemoryError.
    """
    hook = sql_hook(SOURCE_CONN_ID)
    with ImportLedger(hook, "ledger_counts", "day") as ledger:
        ledger.settle(ledger.record_sending([(F(1), 0, "m1")]), [(F(1), 0, "m1")], [True])
    connection = hook.get_conn()
    try:
        for n in range(20):
            connection.cursor().execute(
                "INSERT INTO ledger_counts (partition_key, batch_id, state, first_row, records, "
                "fingerprints, message_ids, recorded_at) "
                "VALUES ('day', %s, 'confirmed', 0, %s, %s, '[]', now())",
                (f"edited{n}", 2**31 - 1, F(n)),
            )
        connection.commit()
        with pytest.raises(TracklyConfigError, match="holds 16 bytes of fingerprints for 2147483647 records"):
            ImportLedger(hook, "ledger_counts", "day").__enter__()
    finally:
        connection.cursor().execute("DROP TABLE ledger_counts")
        connection.commit()
        connection.close()

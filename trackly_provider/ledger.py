"""A SQL table of the records Trackly confirmed, per partition, so a rerun never sends them twice."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import orjson
from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.iso8601 import utc_iso
from trackly_provider.sql_source import adapt_parameters, driver_name, open_streaming_cursor
from trackly_provider.sql_tables import checked_table_name, dialect_of, open_writer

CONFIRMED = "confirmed"  # Trackly answered that it stored the record (or already had it)
UNKNOWN = "unknown"  # being sent, or sent without an answer: Trackly may or may not have stored it
COLUMNS = ("partition_key", "fingerprint", "state", "row_index", "message_id", "recorded_at")
LOAD_CHUNK = 10_000
# Column types per dialect: the partition key, the message id and the UTC timestamp.
DIALECT_TYPES = {
    "sqlite": {"key": "TEXT", "id": "TEXT", "time": "TEXT"},
    "postgresql": {"key": "VARCHAR(200)", "id": "TEXT", "time": "TIMESTAMPTZ"},
    "mysql": {"key": "VARCHAR(200)", "id": "VARCHAR(255)", "time": "DATETIME(6)"},
    "other": {"key": "VARCHAR(200)", "id": "VARCHAR(255)", "time": "TIMESTAMP"},
}

MAX_PARTITION_LENGTH = 200
READABLE_PARAMETERS = 120  # longer parameters are named by a hash in the partition key

LedgerEntry = tuple[int, int, "str | None"]  # (fingerprint, row index in this run, message id)


def _parameter_text(value: Any) -> Any:
    """Datetimes as the UTC instant they name, whatever their class or zone; the rest as text."""
    if isinstance(value, datetime):
        return utc_iso(value)
    return str(value)


def default_partition(entity: str, trackly_conn_id: str, parameters: Any) -> str:
    """
    ``<entity>/<trackly connection>/<parameters>``: a day's query is named by its bounds, so every
    rerun of that day (retry, clear, backfill, a manual range) finds its records, even after its
    SQL text was edited. Parameters longer than 120 characters are named by their SHA-256.
    """
    text = orjson.dumps(
        parameters, default=_parameter_text, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_SORT_KEYS
    ).decode()
    if len(text) > READABLE_PARAMETERS:
        text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"{entity}/{trackly_conn_id}/{text}"[:MAX_PARTITION_LENGTH]


def ledger_ddl(table: str, dialect: str) -> list[str]:
    """The statement that creates the ledger table if it does not exist."""
    types = DIALECT_TYPES.get(dialect, DIALECT_TYPES["other"])
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (partition_key {types['key']} NOT NULL, "
        "fingerprint BIGINT NOT NULL, state VARCHAR(16) NOT NULL, row_index BIGINT NOT NULL, "
        f"message_id {types['id']}, recorded_at {types['time']} NOT NULL, "
        "PRIMARY KEY (partition_key, fingerprint))"
    ]


class ImportLedger:
    """
    The fingerprints of one partition's records whose import Trackly confirmed, or whose outcome is
    unknown, kept in ``table`` on the connection's database (created if missing).

    A batch is written as ``unknown`` and committed before it is sent, and turned ``confirmed`` (or
    deleted, for records Trackly rejected) once answered; so a crash, a killed worker or an Airflow
    retry (XCom does not survive one) leaves every record sent without an answer marked. A rerun
    loads its partition's fingerprints (a set of ints: ~60 bytes a record) and leaves out the
    records already confirmed.
    """

    def __init__(self, hook: DbApiHook, table: str, partition: str) -> None:
        self._hook = hook
        self.table = checked_table_name(table, "ledger_table")
        self.partition = partition
        self._connection: Any = None
        self._driver = ""
        self._confirmed: set[int] = set()
        self._unknown: set[int] = set()
        self.confirmed_before = 0
        self.unknown_before = 0

    def __enter__(self) -> ImportLedger:
        self._connection = self._hook.get_conn()
        self._driver = driver_name(self._connection)
        try:
            open_writer(self._connection, ledger_ddl(self.table, dialect_of(self._connection)))
            self._load()
        except BaseException:
            self._connection.close()
            raise
        return self

    def _load(self) -> None:
        """Stream the partition's fingerprints into two sets."""
        cursor = open_streaming_cursor(self._connection)
        try:
            cursor.execute(
                f"SELECT fingerprint, state FROM {self.table} WHERE partition_key = {self._hook.placeholder}",
                (self.partition,),
            )
            while rows := cursor.fetchmany(LOAD_CHUNK):
                for fingerprint, state in rows:
                    (self._confirmed if state == CONFIRMED else self._unknown).add(int(fingerprint))
        finally:
            cursor.close()
        self._connection.commit()
        self.confirmed_before = len(self._confirmed)
        self.unknown_before = len(self._unknown)

    def state_of(self, fingerprint: int) -> str | None:
        """What an earlier run learnt of this record: ``confirmed``, ``unknown``, or None (never sent)."""
        if fingerprint in self._confirmed:
            self._confirmed.discard(fingerprint)  # fingerprints are unique in a run: it cannot come again
            return CONFIRMED
        return UNKNOWN if fingerprint in self._unknown else None

    def record(self, entries: Sequence[LedgerEntry], state: str) -> None:
        """Write these records' state and commit, replacing an earlier ``unknown`` one."""
        if not entries:
            return
        mark = self._hook.placeholder
        cursor = self._connection.cursor()
        replaced = [
            (self.partition, fingerprint) for fingerprint, _, _ in entries if fingerprint in self._unknown
        ]
        if replaced:
            cursor.executemany(
                f"DELETE FROM {self.table} WHERE partition_key = {mark} AND fingerprint = {mark}", replaced
            )
            self._unknown.difference_update(fingerprint for _, fingerprint in replaced)
        recorded_at = datetime.now(timezone.utc)
        cursor.executemany(
            f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES ({', '.join([mark] * len(COLUMNS))})",
            [
                adapt_parameters(
                    self._driver, (self.partition, fingerprint, state, row, message_id, recorded_at)
                )
                for fingerprint, row, message_id in entries
            ],
        )
        cursor.close()
        self._connection.commit()

    def settle(self, confirmed: Sequence[int], rejected: Sequence[int]) -> None:
        """Mark answered records: stored ones ``confirmed``; rejected ones forgotten (a rerun sends them)."""
        if not confirmed and not rejected:
            return
        mark = self._hook.placeholder
        cursor = self._connection.cursor()
        if confirmed:
            recorded_at = adapt_parameters(self._driver, [datetime.now(timezone.utc)])[0]
            cursor.executemany(
                f"UPDATE {self.table} SET state = {mark}, recorded_at = {mark} "
                f"WHERE partition_key = {mark} AND fingerprint = {mark}",
                [(CONFIRMED, recorded_at, self.partition, fingerprint) for fingerprint in confirmed],
            )
        if rejected:
            cursor.executemany(
                f"DELETE FROM {self.table} WHERE partition_key = {mark} AND fingerprint = {mark}",
                [(self.partition, fingerprint) for fingerprint in rejected],
            )
        cursor.close()
        self._connection.commit()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._connection.close()

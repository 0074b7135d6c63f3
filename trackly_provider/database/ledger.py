"""A SQL table of the records Trackly confirmed, per partition, so a rerun never sends them twice."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import orjson
from airflow.providers.common.sql.hooks.sql import DbApiHook

from trackly_provider.database.fingerprint_set import WIDTHS, FingerprintSet, FingerprintSetBuilder
from trackly_provider.database.ledger_lock import PartitionLock
from trackly_provider.database.source import adapt_parameters, driver_name, open_streaming_cursor
from trackly_provider.database.tables import checked_table_name, dialect_of, open_writer, quoted_identifier
from trackly_provider.exceptions import TracklyConfigError
from trackly_provider.trackly_api.iso8601 import utc_iso

log = logging.getLogger(__name__)
CONFIRMED = "confirmed"  # Trackly answered that it stored these records (or already had them)
UNKNOWN = "unknown"  # being sent, or sent without an answer: Trackly may or may not have stored them
COLUMNS = (
    "partition_key",
    "batch_id",
    "state",
    "first_row",
    "records",
    "fingerprints",
    "message_ids",
    "recorded_at",
)
LOAD_CHUNK = 100
MAX_PARTITION_LENGTH = 200
READABLE_PARAMETERS = 120  # longer parameters are named by a hash in the partition key
ASSUMED_PER_ROW = 1000
# Column types per dialect: the partition key, the packed fingerprints, the ids and the UTC timestamp.
DIALECT_TYPES = {
    "sqlite": {"key": "TEXT", "blob": "BLOB", "text": "TEXT", "time": "TEXT"},
    "postgresql": {"key": "VARCHAR(200)", "blob": "BYTEA", "text": "TEXT", "time": "TIMESTAMPTZ"},
    # Bytes: partition keys that differ in case, accents or trailing spaces are other partitions
    # (any MySQL or MariaDB collation ignores one of these); 200 characters of UTF-8.
    "mysql": {
        "key": "VARBINARY(800)",
        "blob": "LONGBLOB",
        "text": "LONGTEXT",
        "time": "DATETIME(6)",
    },
    "other": {"key": "VARCHAR(200)", "blob": "BLOB", "text": "CLOB", "time": "TIMESTAMP"},
}
# MySQL tables take the database's character set, which may be latin1 or 3-byte utf8, where a
# message id with an emoji fails every insert: say utf8mb4 (as the rejects table does).
TABLE_OPTIONS = {"mysql": " DEFAULT CHARSET=utf8mb4"}

PLACEHOLDER_TEMPLATE = re.compile(r"\{\{-?\s*task\.sql_placeholder\s*-?\}\}")

Sent = tuple[bytes, int, "str | None"]  # (fingerprint, row index in this run, message id)
MAX_COUNTED_RECORDS = 1 << 24  # the confirmed set reserved before a partition streams in: 256 MiB at most
NEW_PARTITION_WIDTH = 16  # bytes per fingerprint in a partition without rows (8: started before 0.2)


def _parameter_text(value: Any) -> Any:
    """Datetimes as the UTC instant they name, whatever their class or zone; the rest as text."""
    if isinstance(value, datetime):
        return utc_iso(value)
    return str(value)


def parameters_json(parameters: Any) -> str:
    """Query parameters as JSON: datetimes as UTC instants, keys sorted, anything else as text."""
    return orjson.dumps(
        parameters, default=_parameter_text, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_SORT_KEYS
    ).decode()


def default_partition(entity: str, trackly_conn_id: str, parameters: Any, sql: str) -> str:
    """
    The ledger partition of an import that names none: ``<entity>/<trackly connection>/<rows>``.

    ``<rows>`` is the query's parameters as JSON when there are any: a day's query is named by its
    bounds, so every rerun of that day (retry, clear, backfill, a manual range) finds its records,
    even after its SQL text was edited; parameters longer than 120 characters are named by their
    SHA-256. A query without parameters (None or empty) names its rows in its text, dates written
    in by Jinja included: it is named ``sql:`` and the SHA-256 of the rendered SQL (without
    leading and trailing white space), so two days never share a partition, and an edited query
    starts a new one.
    """
    if parameters is None or (isinstance(parameters, (str, list, tuple, dict)) and not parameters):
        text = "sql:" + hashlib.sha256(sql.strip().encode()).hexdigest()[:32]
    else:
        text = parameters_json(parameters)
        if len(text) > READABLE_PARAMETERS:
            text = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]
    key = f"{entity}/{trackly_conn_id}/{text}"
    if len(key) > MAX_PARTITION_LENGTH:  # a long connection id: keep the start, name the whole by its hash
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        key = f"{key[: MAX_PARTITION_LENGTH - 40]}~sha256:{digest}"
    return key


def has_jinja_beyond_placeholder(sql: str) -> bool:
    """Whether a SQL template has Jinja (``{{``, ``{%``) other than ``{{ task.sql_placeholder }}``."""
    rest = PLACEHOLDER_TEMPLATE.sub("", sql)
    return "{{" in rest or "{%" in rest


def import_partition(
    entity: str,
    trackly_conn_id: str,
    parameters: Any,
    sql: str,
    sql_template: str,
    ledger_partition: str | None,
) -> str:
    """
    An import's ledger partition: ``ledger_partition`` when set, else ``default_partition``.

    :param sql: the query as rendered; ``sql_template`` as written (before Jinja).
    :raises TracklyConfigError: ``ledger_partition`` over 200 characters; or parameters beside
        Jinja in the query's text (other than ``{{ task.sql_placeholder }}``) and no
        ``ledger_partition``, since the parameters alone would not name the rows the Jinja chooses.
    """
    if ledger_partition:
        if len(ledger_partition) > MAX_PARTITION_LENGTH:
            raise TracklyConfigError(
                f"ledger_partition must be at most {MAX_PARTITION_LENGTH} characters, "
                f"got {len(ledger_partition)}."
            )
        return ledger_partition
    if parameters and has_jinja_beyond_placeholder(sql_template):
        raise TracklyConfigError(
            "The query has Jinja in its text and parameters, and the ledger partition is named by the "
            "parameters alone: rows the Jinja chooses (a day's dates, say) would share one partition "
            "with every other day's, and records equal to another day's would be skipped as already "
            "imported. Pass those values as parameters (e.g. parameters=[..., "
            "'{{ data_interval_start }}', '{{ data_interval_end }}']) or set ledger_partition (e.g. '"
            + entity
            + "/{{ ds }}')."
        )
    return default_partition(entity, trackly_conn_id, parameters, sql)


def pack(fingerprints: Sequence[bytes]) -> bytes:
    """Fingerprints (bytes of one width), one after the other: a ledger row's ``fingerprints``."""
    return b"".join(fingerprints)


def unpack(data: bytes, width: int = NEW_PARTITION_WIDTH) -> tuple[bytes, ...]:
    data = bytes(data)
    return tuple(data[start : start + width] for start in range(0, len(data), width))


def fingerprint_width(data: bytes, records: int) -> int:
    """The width of a ledger row's fingerprints (16, or 8 before 0.2), from its ``records`` count."""
    for width in WIDTHS:
        if records > 0 and len(data) == width * records:
            return width
    raise TracklyConfigError(
        f"A ledger row holds {len(data)} bytes of fingerprints for {records} records: neither 8 nor 16 "
        "bytes each. The row was not written by this provider; delete it (a rerun then sends its "
        "records again) or restore the table from a backup."
    )


def ledger_ddl(table: str, dialect: str) -> list[str]:
    """The statement that creates the ledger table (its name quoted here) if it does not exist."""
    types = DIALECT_TYPES.get(dialect, DIALECT_TYPES["other"])
    return [
        f"CREATE TABLE IF NOT EXISTS {quoted_identifier(table, dialect)} ("
        f"partition_key {types['key']} NOT NULL, "
        "batch_id VARCHAR(32) NOT NULL, state VARCHAR(16) NOT NULL, first_row BIGINT NOT NULL, "
        f"records INTEGER NOT NULL, fingerprints {types['blob']} NOT NULL, message_ids {types['text']}, "
        f"recorded_at {types['time']} NOT NULL, PRIMARY KEY (partition_key, batch_id))"
        + TABLE_OPTIONS.get(dialect, "")
    ]


@dataclass
class _EarlierUnknown:
    """A row an earlier run left ``unknown``, and which of its records this run settled."""

    batch_id: str
    first_row: int
    fingerprints: tuple[bytes, ...]
    message_ids: list[str | None]
    settled: set[bytes] = field(default_factory=set)


class ImportLedger:
    """
    Which records of one partition Trackly confirmed, and which were sent without an answer, kept
    in ``table`` on the connection's database (created if missing), one row per request.

    A request's row is written ``unknown`` and committed before it is sent, and turned
    ``confirmed`` once answered (records Trackly rejected are left out of it, so a rerun sends them
    again); so a crash, a killed worker or an Airflow retry (XCom does not survive one) leaves every
    request sent without an answer marked. A rerun streams its partition's confirmed fingerprints
    into a ``FingerprintSet`` (16 bytes a record) and leaves out the records already confirmed.
    ``fingerprint_width`` is the width of the partition's fingerprints: 16 bytes, or 8 in a
    partition an earlier release started (``fingerprints.LegacyFingerprints``).

    With ``lock_timeout`` (seconds), the partition is locked (``ledger_lock.PartitionLock``) before
    it is read and until the ledger closes, so that a second import of the same rows waits, then
    reads what the first one confirmed; None (a dry run, which writes nothing) takes no lock.
    """

    def __init__(
        self,
        hook: DbApiHook,
        table: str,
        partition: str,
        *,
        lock_timeout: float | None = None,
        holder: str = "",
        max_stall_seconds: float | None = None,
    ) -> None:
        """
        ``holder``: how the import names itself to a waiter; the process and host are added.
        ``max_stall_seconds``: the longest the import may leave the ledger's session idle (waiting on
        the API); the session's idle timeouts are raised to outlast it (``sql_tables.session_setup``).
        """
        self._hook = hook
        self.table = checked_table_name(table, "ledger_table")
        self._sql_table = table  # quoted for the connection's dialect once connected
        self.partition = partition
        self._lock_timeout = lock_timeout
        self._max_stall_seconds = max_stall_seconds
        process = f"pid {os.getpid()} on {socket.gethostname()}"
        self._holder = f"{holder}, {process}" if holder else process
        self.lock: PartitionLock | None = None
        self._connection: Any = None
        self._driver = ""
        self.fingerprint_width = NEW_PARTITION_WIDTH
        self._confirmed = FingerprintSet(NEW_PARTITION_WIDTH)
        self._unknown: dict[bytes, _EarlierUnknown] = {}
        self._assumed: list[Sent] = []
        self.confirmed_before = 0
        self.unknown_before = 0

    def __enter__(self) -> ImportLedger:
        self._connection = self._hook.get_conn()
        self._driver = driver_name(self._connection)
        self._sql_table = quoted_identifier(self.table, dialect_of(self._connection))
        try:
            ddl = ledger_ddl(self.table, dialect_of(self._connection))
            open_writer(self._connection, ddl, self._max_stall_seconds)
            if self._lock_timeout is not None:
                lock = PartitionLock(
                    self._connection, self.table, self.partition, self._lock_timeout, self._holder
                )
                lock.acquire()
                self.lock = lock
            self._load()
        except BaseException:
            self._close()
            raise
        return self

    def _load(self) -> None:
        """Stream the partition's rows into a compact set of confirmed fingerprints and the unknown rows."""
        unknown_rows: list[_EarlierUnknown] = []
        confirmed = FingerprintSetBuilder(self._count_confirmed())
        widths: set[int] = set()
        cursor = open_streaming_cursor(self._connection)
        try:
            cursor.execute(
                "SELECT state, fingerprints, batch_id, first_row, message_ids, records "
                f"FROM {self._sql_table} WHERE partition_key = {self._hook.placeholder}",
                (self.partition,),
            )
            while rows := cursor.fetchmany(LOAD_CHUNK):
                for state, data, batch_id, first_row, message_ids, records in rows:
                    data = bytes(data)
                    width = fingerprint_width(data, int(records))
                    widths.add(width)
                    if state == CONFIRMED:
                        confirmed.add(data, width)
                    else:
                        ids = orjson.loads(message_ids) if message_ids else []
                        prints = unpack(data, width)
                        unknown_rows.append(_EarlierUnknown(batch_id, int(first_row), prints, ids))
        finally:
            cursor.close()
        self._connection.commit()
        if len(widths) > 1:
            raise TracklyConfigError(
                f"Ledger table {self.table}, partition_key '{self.partition}', holds fingerprints of 8 "
                "and of 16 bytes: rows written by two releases into one partition. Delete the "
                "partition's rows of the release you do not run (or restore the table from a backup)."
            )
        self.fingerprint_width = widths.pop() if widths else NEW_PARTITION_WIDTH
        self._confirmed = confirmed.build(self.fingerprint_width)
        for row in unknown_rows:  # a crash may leave a record in both: confirmed wins
            done = self._confirmed.contains(pack(row.fingerprints)).tolist()
            for fingerprint, is_confirmed in zip(row.fingerprints, done, strict=True):
                if is_confirmed:
                    row.settled.add(fingerprint)
                else:
                    self._unknown[fingerprint] = row
        self.confirmed_before = len(self._confirmed)
        self.unknown_before = len(self._unknown)

    def _count_confirmed(self) -> int:
        """How many confirmed records the partition holds (to size the set before it streams in)."""
        mark = self._hook.placeholder
        cursor = self._connection.cursor()
        try:
            cursor.execute(
                f"SELECT SUM(records) FROM {self._sql_table} WHERE partition_key = {mark} AND state = {mark}",
                (self.partition, CONFIRMED),
            )
            row = cursor.fetchone()
        finally:
            cursor.close()
        # A hint only (the set grows past it): a hand-edited count cannot reserve gigabytes up front.
        return min(int(row[0] or 0), MAX_COUNTED_RECORDS) if row else 0

    @property
    def confirmed_set(self) -> FingerprintSet:
        """The fingerprints earlier runs saw Trackly confirm (``fingerprints.Fingerprints`` flags
        those a run meets)."""
        return self._confirmed

    @property
    def has_unknown(self) -> bool:
        """Whether earlier runs left records of unknown outcome in the partition."""
        return bool(self._unknown)

    def state_of(self, fingerprint: bytes, confirmed: bool | None = None) -> str | None:
        """
        What an earlier run learnt of this record: ``confirmed``, ``unknown``, or None (never sent).
        ``confirmed``: the record's answer from ``confirmed()``, when the batch was looked up already.
        """
        if confirmed is None:
            confirmed = bool(self._confirmed.contains(fingerprint)[0])
        if confirmed:
            return CONFIRMED
        return UNKNOWN if fingerprint in self._unknown else None

    def record_sending(self, records: Sequence[Sent]) -> str:
        """Before a request goes: its records are ``unknown`` (committed); return the row's ``batch_id``."""
        for fingerprint, _, _ in records:
            if fingerprint in self._unknown:  # sent again: no longer the earlier row's to answer for
                self._unknown[fingerprint].settled.add(fingerprint)
        batch_id = uuid.uuid4().hex
        self._write_ahead(batch_id, records)
        return batch_id

    def _write_ahead(self, batch_id: str, records: Sequence[Sent]) -> None:
        self._insert(batch_id, UNKNOWN, records)
        self._connection.commit()

    def settle(
        self,
        batch_id: str,
        records: Sequence[Sent],
        confirmed: Sequence[bool | None],
        *,
        after_failure: bool = False,
    ) -> None:
        """
        After the answer: ``confirmed[i]`` True (stored), False (rejected: left out, a rerun sends it
        again) or None (no answer: stays ``unknown``). ``after_failure``: the import failed (a write
        of the ledger's may be why): the session's transaction is rolled back first, and a failure
        to write is only logged.
        """
        if after_failure:
            self._settle_after_failure(batch_id, records, confirmed)
        else:
            self._settle(batch_id, records, confirmed)

    def _settle_after_failure(
        self, batch_id: str, records: Sequence[Sent], confirmed: Sequence[bool | None]
    ) -> None:
        try:
            self._connection.rollback()
            self._settle(batch_id, records, confirmed)
        except Exception as exc:
            log.warning(
                "Could not settle ledger row %s after the failure (%s); its %d records stay of unknown "
                "outcome.",
                batch_id,
                type(exc).__name__,
                len(records),
            )

    def _settle(self, batch_id: str, records: Sequence[Sent], confirmed: Sequence[bool | None]) -> None:
        mark = self._hook.placeholder
        cursor = self._connection.cursor()
        if all(confirmed):
            cursor.execute(
                f"UPDATE {self._sql_table} SET state = {mark} "
                f"WHERE partition_key = {mark} AND batch_id = {mark}",
                (CONFIRMED, self.partition, batch_id),
            )
        else:
            cursor.execute(
                f"DELETE FROM {self._sql_table} WHERE partition_key = {mark} AND batch_id = {mark}",
                (self.partition, batch_id),
            )
            stored = [record for record, answer in zip(records, confirmed, strict=True) if answer]
            lost = [record for record, answer in zip(records, confirmed, strict=True) if answer is None]
            self._insert(uuid.uuid4().hex, CONFIRMED, stored, cursor)
            self._insert(batch_id, UNKNOWN, lost, cursor)
        cursor.close()
        self._connection.commit()

    def assume_imported(self, record: Sent) -> None:
        """The user checked that Trackly has this record of unknown outcome: confirm it."""
        self._unknown[record[0]].settled.add(record[0])
        self._assumed.append(record)
        if len(self._assumed) >= ASSUMED_PER_ROW:
            assumed, self._assumed = self._assumed, []
            self._write_confirmed(assumed)

    def _write_confirmed(self, records: list[Sent]) -> None:
        self._insert(uuid.uuid4().hex, CONFIRMED, records)
        self._connection.commit()

    def finish(self) -> None:
        """Write what is pending, and take out of earlier ``unknown`` rows the records now settled."""
        assumed, self._assumed = self._assumed, []
        self._finish(assumed)

    def _finish(self, assumed: list[Sent]) -> None:
        self._write_confirmed(assumed)
        mark = self._hook.placeholder
        cursor = self._connection.cursor()
        for row in {id(row): row for row in self._unknown.values() if row.settled}.values():
            cursor.execute(
                f"DELETE FROM {self._sql_table} WHERE partition_key = {mark} AND batch_id = {mark}",
                (self.partition, row.batch_id),
            )
            left = [
                (fingerprint, row.first_row, message_id)
                for fingerprint, message_id in zip(row.fingerprints, row.message_ids, strict=False)
                if fingerprint not in row.settled
            ]
            self._insert(row.batch_id, UNKNOWN, left, cursor)
        cursor.close()
        self._connection.commit()

    def unknown_requests(self) -> list[tuple[str, int, int]]:
        """The partition's requests of unknown outcome: (batch_id, first row, records), by first row."""
        return self._unknown_requests()

    def _unknown_requests(self) -> list[tuple[str, int, int]]:
        mark = self._hook.placeholder
        cursor = self._connection.cursor()
        cursor.execute(
            f"SELECT batch_id, first_row, records FROM {self._sql_table} WHERE partition_key = {mark} "
            f"AND state = {mark} ORDER BY first_row",
            (self.partition, UNKNOWN),
        )
        rows = [
            (str(batch_id), int(first_row), int(records))
            for batch_id, first_row, records in cursor.fetchall()
        ]
        cursor.close()
        self._connection.commit()
        return rows

    def _insert(self, batch_id: str, state: str, records: Sequence[Sent], cursor: Any = None) -> None:
        if not records:
            return
        owned = cursor is None
        cursor = cursor or self._connection.cursor()
        prints, rows, message_ids = zip(*records, strict=True)
        values = (
            self.partition,
            batch_id,
            state,
            min(rows),
            len(records),
            pack(prints),
            orjson.dumps(message_ids).decode(),
            datetime.now(timezone.utc),
        )
        marks = ", ".join([self._hook.placeholder] * len(COLUMNS))
        cursor.execute(
            f"INSERT INTO {self._sql_table} ({', '.join(COLUMNS)}) VALUES ({marks})",
            adapt_parameters(self._driver, values),
        )
        if owned:
            cursor.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()

    def _close(self) -> None:
        """Release the partition (a SQLite lock is a file of its own) and close the session."""
        try:
            if self.lock is not None:
                self.lock.release()
        except Exception:  # closing the session releases a PostgreSQL or MySQL lock all the same
            pass
        finally:
            self._connection.close()

"""
One import of a ledger partition at a time: a lock held by the ledger's own database session.

The lock is named by the partition alone, within one database; not by how ``ledger_table`` is
spelled (``trackly_import_ledger``, ``public.trackly_import_ledger`` and ``TRACKLY_IMPORT_LEDGER``
are one table on PostgreSQL). Each kind of database gets a lock that dies with its holder:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``), which PostgreSQL scopes
  to the current database. The session sets TCP keepalives and ``tcp_user_timeout`` so that a
  holder whose host vanished is dropped within about a minute; a killed process closes its
  socket and the server releases the lock at once.
- MySQL and MariaDB: a named lock (``GET_LOCK``) whose name hashes the current database with
  the partition (named locks are server-wide), released when the session ends.
- SQLite: ``flock`` on a file beside the database (``<file>.trackly-locks/<hash>.lock``), which
  the kernel releases when the process dies. It excludes processes on one machine, as SQLite
  itself does.

Waiting polls the lock (every 50 ms at first, then every second) until the bound runs out; the
waiter then reads the ledger as the holder left it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from trackly_provider.database.tables import dialect_of
from trackly_provider.exceptions import TracklyConfigError, TracklyPartitionLockedError

FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0
APPLICATION_NAME_LENGTH = 63  # PostgreSQL keeps NAMEDATALEN - 1 bytes of application_name
POSTGRES_SESSION = (  # a vanished holder's session is dropped after ~60 s (seconds; ms for the last)
    "SET tcp_keepalives_idle = 30",
    "SET tcp_keepalives_interval = 10",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 60000",
)


class _Lock(Protocol):
    def try_acquire(self) -> bool: ...

    def holder(self) -> str | None: ...

    def release(self) -> None: ...


def lock_digest(partition: str, scope: str = "") -> bytes:
    """The SHA-256 naming a ledger partition within ``scope`` (the database, where locks are server-wide)."""
    return hashlib.sha256(f"{scope}\n{partition}".encode()).digest()


def _query_one(connection: Any, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, parameters)
        row = cursor.fetchone()
    finally:
        cursor.close()
    connection.commit()  # session locks outlive the transaction; nothing is left open
    return row


class _PostgresLock:
    def __init__(self, connection: Any, partition: str, holder: str) -> None:
        self._connection = connection
        self._key = int.from_bytes(lock_digest(partition)[:8], "big", signed=True)
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        self._classid, self._objid = unsigned >> 32, unsigned & 0xFFFF_FFFF  # as pg_locks shows a bigint key
        cursor = connection.cursor()
        for statement in POSTGRES_SESSION:
            cursor.execute(statement)
        name = holder.encode()[:APPLICATION_NAME_LENGTH].decode(errors="ignore")
        cursor.execute("SELECT set_config('application_name', %s, false)", (name,))
        cursor.close()
        connection.commit()

    def try_acquire(self) -> bool:
        return bool(_query_one(self._connection, "SELECT pg_try_advisory_lock(%s)", (self._key,))[0])

    def holder(self) -> str | None:
        row = _query_one(
            self._connection,
            "SELECT a.pid, a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (self._classid, self._objid),
        )
        if row is None:
            return None
        pid, name, address, since = row
        return (
            f"PostgreSQL backend pid {pid} ('{name}', from {address or 'a local socket'}, connected "
            f"{since}); end it with SELECT pg_terminate_backend({pid}) if its import is dead"
        )

    def release(self) -> None:
        _query_one(self._connection, "SELECT pg_advisory_unlock(%s)", (self._key,))


class _MysqlLock:
    def __init__(self, connection: Any, partition: str) -> None:
        self._connection = connection
        (database,) = _query_one(connection, "SELECT DATABASE()")
        digest = lock_digest(partition, scope=database or "")
        self._name = f"trackly:{digest.hex()[:40]}"  # GET_LOCK names are at most 64 characters

    def try_acquire(self) -> bool:
        return _query_one(self._connection, "SELECT GET_LOCK(%s, 0)", (self._name,))[0] == 1

    def holder(self) -> str | None:
        (connection_id,) = _query_one(self._connection, "SELECT IS_USED_LOCK(%s)", (self._name,))
        if connection_id is None:
            return None
        row = _query_one(
            self._connection,
            "SELECT USER, HOST, TIME FROM information_schema.PROCESSLIST WHERE ID = %s",
            (connection_id,),
        )
        seen = f" ({row[0]} from {row[1]}, {row[2]} s in its current state)" if row else ""
        return (
            f"MySQL/MariaDB connection {connection_id}{seen}, lock '{self._name}'; end it with "
            f"KILL {connection_id} if its import is dead"
        )

    def release(self) -> None:
        _query_one(self._connection, "SELECT RELEASE_LOCK(%s)", (self._name,))


class _SqliteFileLock:
    """``flock`` on a file beside the database; the file holds the holder's description."""

    def __init__(self, connection: Any, partition: str, holder: str) -> None:
        files = {name: path for _, name, path in connection.execute("PRAGMA database_list")}
        database = files.get("main", "")
        if not database:
            raise TracklyConfigError(
                "The ledger's SQLite database is in memory, where no other import could see it: "
                "give ledger_conn_id a SQLite file."
            )
        self.path = Path(f"{database}.trackly-locks") / f"{lock_digest(partition).hex()[:32]}.lock"
        self._holder = holder
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, self._holder.encode())
        self._fd = fd
        return True

    def holder(self) -> str | None:
        try:
            text = self.path.read_text(errors="replace").strip()
        except FileNotFoundError:
            return None
        return f"{text or 'a process'} (lock file {self.path}; it is released when that process ends)"

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # the file's only descriptor: closing it releases the flock


def _lock_for(connection: Any, partition: str, holder: str) -> _Lock:
    dialect = dialect_of(connection)
    if dialect == "postgresql":
        return _PostgresLock(connection, partition, holder)
    if dialect == "mysql":
        return _MysqlLock(connection, partition)
    if dialect == "sqlite":
        return _SqliteFileLock(connection, partition, holder)
    raise TracklyConfigError(
        "The ledger needs PostgreSQL, MySQL/MariaDB or SQLite (ledger_conn_id): only on these can "
        "an import lock its partition against another import of the same rows. Point ledger_conn_id "
        "at one of them."
    )


class PartitionLock:
    """
    The lock on one ledger partition, held on ``connection`` (the ledger's session) while it is open.

    :param connection: a DB-API connection to the ledger's database. A PostgreSQL or MySQL lock
        lives and dies with its session; a SQLite lock is a file descriptor of its own, released by
        ``release()`` or when the process ends.
    :param table: the ledger table, named in the failure message (the lock names the partition).
    :param partition: the ledger partition.
    :param timeout: seconds to wait for another import of the partition to finish (>= 0).
    :param holder: how this import names itself to a waiter (no secrets: a task instance, a host).
    :raises TracklyPartitionLockedError: the bound ran out; names the holder where the database can.
    """

    def __init__(
        self,
        connection: Any,
        table: str,
        partition: str,
        timeout: float,
        holder: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.partition = partition
        self.table = table
        self.timeout = timeout
        self._lock = _lock_for(connection, partition, holder)
        self._clock, self._sleep = clock, sleep
        self.waited = 0.0  # seconds spent waiting for another import
        self.waited_for: str | None = None  # the holder seen when this import had to wait

    def acquire(self) -> None:
        started = self._clock()
        poll = FIRST_POLL_SECONDS
        while not self._lock.try_acquire():
            if self.waited_for is None:
                self.waited_for = self._lock.holder() or "another import"
            elapsed = self._clock() - started
            if elapsed >= self.timeout:
                raise TracklyPartitionLockedError(
                    f"Another import of ledger partition '{self.partition}' (table {self.table}) is "
                    f"still running after {elapsed:.1f} s (ledger_lock_timeout={self.timeout:g} s); held by "
                    f"{self._lock.holder() or self.waited_for}. Nothing was sent. Rerun once it has "
                    "finished, or raise ledger_lock_timeout."
                )
            self._sleep(min(poll, self.timeout - elapsed))
            poll = min(poll * 2, MAX_POLL_SECONDS)
        if self.waited_for is not None:  # taken at the first try: no wait, however slow the query
            self.waited = self._clock() - started

    def release(self) -> None:
        self._lock.release()

"""Keep up to N batches in flight while the next rows are read; apply results in submission order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from trackly_provider.api_types import ImportResult, encode_records

MAX_IN_FLIGHT_LIMIT = 32


@dataclass(frozen=True)
class Batch:
    """Records to send, with each record's row position in the query result, and their JSON body."""

    records: list[dict[str, Any]]
    row_indexes: list[int]
    body: bytes | None = None  # None: the hook encodes the records itself

    @classmethod
    def encoded(cls, records: list[dict[str, Any]], row_indexes: list[int]) -> Batch:
        """A batch whose body is encoded now, on the caller's thread (see BatchWindow)."""
        return cls(records, row_indexes, encode_records(records))


class BatchWindow:
    """
    Sends batches with at most ``limit`` requests open at once.

    A request that answers frees its place at once, even while an older one is still open: on a
    network with a latency tail, one slow answer does not idle the others. ``on_result`` still sees
    every answered batch in submission order, on the caller's thread, so counts and error order are
    the same as one request at a time; answered batches wait for a slower one ahead of them, at most
    ``2 * limit`` batches held in all. ``limit=1`` sends on the caller's thread. Workers only send:
    bodies are encoded by the caller, so they hold the GIL briefly. If a batch fails, the batches
    already in flight are still awaited and counted, then the first failure is raised.
    """

    def __init__(
        self,
        send: Callable[[Batch], ImportResult],
        on_result: Callable[[Batch, ImportResult], None],
        limit: int,
    ) -> None:
        self._send = send
        self._on_result = on_result
        self._limit = limit
        self._held_limit = 2 * limit
        self._pending: deque[tuple[Batch, Future[ImportResult]]] = deque()
        self._executor = ThreadPoolExecutor(limit, thread_name_prefix="trackly-batch") if limit > 1 else None

    def submit(self, batch: Batch) -> None:
        if self._executor is None:
            self._on_result(batch, self._send(batch))
            return
        self._apply_answered()
        while self._open() >= self._limit or len(self._pending) >= self._held_limit:
            wait([future for _, future in self._pending if not future.done()], return_when=FIRST_COMPLETED)
            self._apply_answered()
        self._pending.append((batch, self._executor.submit(self._send, batch)))

    def drain(self) -> None:
        """Wait for every batch in flight."""
        while self._pending:
            self._complete_oldest()

    def _open(self) -> int:
        return sum(not future.done() for _, future in self._pending)

    def _apply_answered(self) -> None:
        """Count the answered batches at the head of the queue, in submission order."""
        while self._pending and self._pending[0][1].done():
            self._complete_oldest()

    def _complete_oldest(self) -> None:
        batch, future = self._pending.popleft()
        try:
            result = future.result()
        except BaseException:
            self._settle_after_failure()
            raise
        self._on_result(batch, result)

    def _settle_after_failure(self) -> None:
        """Count the batches that still land after one failed; their own failures are dropped."""
        while self._pending:
            batch, future = self._pending.popleft()
            if future.exception() is None:
                self._on_result(batch, future.result())

    def __enter__(self) -> BatchWindow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

"""Keep up to N batches in flight while the next rows are read; count each as it answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from trackly_provider.trackly_api.request_bodies import BodyBuffers
from trackly_provider.trackly_api.results import ImportResult, encode_records

MAX_IN_FLIGHT_LIMIT = 32


@dataclass(frozen=True)
class Batch:
    """
    A request's JSON body, with each record's row position in the query result, message id and,
    when the import keeps a ledger, fingerprint.

    The records themselves are not kept: a batch in flight holds its body and two lists, so its
    records' many small objects are freed on the reading thread as soon as it is encoded. Encoded
    with ``buffers``, the body is a view of a pooled ``buffer``, to give back once it is counted.
    """

    body: bytes | memoryview
    row_indexes: list[int]
    message_ids: list[str]
    fingerprints: list[bytes] | None = None
    buffer: bytearray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def encoded(
        cls,
        records: Sequence[Mapping[str, Any]],
        row_indexes: list[int],
        key_field: str = "message_id",
        fingerprints: list[bytes] | None = None,
        buffers: BodyBuffers | None = None,
        *,
        key_of: Callable[[Mapping[str, Any]], str | None] | None = None,
        body_key: str = "records",
    ) -> Batch:
        """
        A batch whose body (``{"<body_key>": [...]}``) is encoded now, on the caller's thread (see
        BatchWindow); each record named by ``key_of`` (``references.record_key``) when given,
        else by its ``key_field``.
        """
        if key_of is None:
            message_ids = [record[key_field] for record in records]
        else:
            message_ids = [key_of(record) or "" for record in records]
        body = encode_records(records, body_key)
        if buffers is None:
            return cls(body, row_indexes, message_ids, fingerprints)
        view, buffer = buffers.hold(body)
        return cls(view, row_indexes, message_ids, fingerprints, buffer)

    def __len__(self) -> int:
        return len(self.row_indexes)


class BatchWindow:
    """
    Sends batches with at most ``limit`` requests open at once.

    A request that answers frees its place at once, even while an older one is still open: on a
    network with a latency tail, one slow answer does not idle the others, and no answered batch
    waits behind it. ``on_result`` sees each answered batch on the caller's thread as soon as the
    caller looks (batches answered together in submission order); the counts it keeps do not
    depend on that order (the tally keeps its errors by row index). The first batch is sent alone
    on the caller's thread, so that a bad key or URL fails after one request; ``limit=1`` sends
    every batch there. Workers only send: bodies are encoded by the caller, so they hold the GIL
    briefly. ``before_send`` sees each batch on the caller's thread just before it is sent (once it
    has a place), for a write-ahead record. If a batch fails, the batches already in flight are
    still awaited and counted, then the failure is raised.
    """

    def __init__(
        self,
        send: Callable[[Batch], ImportResult],
        on_result: Callable[[Batch, ImportResult], None],
        limit: int,
        before_send: Callable[[Batch], None] | None = None,
    ) -> None:
        self._send = send
        self._on_result = on_result
        self._before_send = before_send
        self._limit = limit
        # Requests not yet counted, in submission order (dicts keep insertion order).
        self._open: dict[Future[ImportResult], Batch] = {}
        self._executor = ThreadPoolExecutor(limit, thread_name_prefix="trackly-batch") if limit > 1 else None
        self._answered = False

    def submit(self, batch: Batch) -> None:
        if self._executor is None or not self._answered:
            # The first request goes alone: a bad key or URL costs one request, not one per place.
            self._announce(batch)
            self._on_result(batch, self._send(batch))
            self._answered = True
            return
        while len(self._open) >= self._limit:
            self._count_next_answers()
        self._announce(batch)
        self._open[self._executor.submit(self._send, batch)] = batch

    def _announce(self, batch: Batch) -> None:
        if self._before_send is not None:
            self._before_send(batch)

    def drain(self) -> None:
        """Wait for every batch in flight, counting each as it answers."""
        while self._open:
            self._count_next_answers()

    def _count_next_answers(self) -> None:
        """Wait for at least one open request to answer; count every one answered by then."""
        answered = wait(self._open, return_when=FIRST_COMPLETED).done
        for future in [future for future in self._open if future in answered]:
            batch = self._open.pop(future)
            try:
                result = future.result()
            except BaseException:
                self._settle_after_failure()
                raise
            self._on_result(batch, result)

    def _settle_after_failure(self) -> None:
        """Count the batches that still land after one failed; their own failures are dropped."""
        wait(self._open)
        for future, batch in self._open.items():
            if future.exception() is None:
                self._on_result(batch, future.result())
        self._open.clear()

    def __enter__(self) -> BatchWindow:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

"""BatchWindow: bounded concurrency, results in submission order, failures settled (threads, no I/O)."""

from __future__ import annotations

import threading
import time

import pytest

from trackly_provider.operators._engine.batch_window import Batch, BatchWindow
from trackly_provider.trackly_api.results import ImportResult


class SlowSender:
    """Answers batch n after a delay that shrinks with n, so later batches finish first."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.most_open = 0
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, batch):
        first = batch.message_ids[0]
        with self.lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.05 / (1 + int(first)))
        with self.lock:
            self.open -= 1
        if first == self.fail_on:
            raise RuntimeError("batch failed")
        return ImportResult(len(batch), 0, 0, [])


def batches(count: int) -> list[Batch]:
    return [Batch.encoded([{"message_id": str(n)}], [n]) for n in range(count)]


def test_every_batch_is_counted_once_as_it_answers_with_at_most_limit_open():
    sender, seen = SlowSender(), []
    with BatchWindow(sender, lambda batch, result: seen.append(batch.row_indexes[0]), limit=4) as window:
        for batch in batches(20):
            window.submit(batch)
        window.drain()
    assert sorted(seen) == list(range(20))
    assert seen != list(range(20))  # later batches answer first here, and are counted first
    assert sender.most_open == 4


def test_limit_one_is_strictly_serial_on_the_callers_thread():
    sender, seen = SlowSender(), []
    with BatchWindow(sender, lambda batch, result: seen.append(batch.row_indexes[0]), limit=1) as window:
        for batch in batches(5):
            window.submit(batch)
            assert seen[-1] == batch.row_indexes[0]  # answered before submit returns
    assert sender.threads == {threading.current_thread().name}
    assert sender.most_open == 1


def test_a_failure_is_raised_after_the_batches_in_flight_are_counted():
    """Batch 2 fails at once while 1, 3 and 4 are still open: those three are counted, 5 is never sent."""

    def send(batch: Batch) -> ImportResult:
        n = batch.row_indexes[0]
        if n == 2:
            raise RuntimeError("batch failed")
        time.sleep(0.2 if n else 0)  # batch 0 goes alone and answers at once
        return ImportResult(len(batch), 0, 0, [])

    seen: list[tuple[int, int]] = []
    window = BatchWindow(
        send, lambda batch, result: seen.append((batch.row_indexes[0], result.success_count)), 4
    )
    with pytest.raises(RuntimeError, match="batch failed"), window:
        for batch in batches(6):
            window.submit(batch)
        window.drain()
    assert sorted(seen) == [(0, 1), (1, 1), (3, 1), (4, 1)]


def test_submit_waits_while_limit_batches_are_open():
    """The window itself holds at most ``limit`` batches, not only the thread pool running them."""
    release, started = threading.Event(), threading.Semaphore(0)
    submitted: list[int] = []

    def send(batch: Batch) -> ImportResult:
        if batch.row_indexes[0]:  # batch 0 goes alone and answers at once
            started.release()
            release.wait()
        return ImportResult(len(batch), 0, 0, [])

    with BatchWindow(send, lambda batch, result: None, limit=3) as window:

        def produce() -> None:
            for batch in batches(6):
                window.submit(batch)
                submitted.append(batch.row_indexes[0])

        producer = threading.Thread(target=produce)
        producer.start()
        try:
            for _ in range(3):
                assert started.acquire(timeout=10)
            time.sleep(0.3)  # ample for a wrongly unblocked submit to return
            assert submitted == [0, 1, 2, 3]  # batch 4 waits for a place
        finally:
            release.set()
            producer.join(timeout=10)
        window.drain()
    assert submitted == [0, 1, 2, 3, 4, 5]


def test_a_batch_keeps_its_body_and_ids_not_its_records():
    batch = Batch.encoded([{"message_id": "m", "phone_number": "+12025550001"}, {"message_id": "n"}], [3, 7])
    assert batch == Batch(
        b'{"records":[{"message_id":"m","phone_number":"+12025550001"},{"message_id":"n"}]}',
        [3, 7],
        ["m", "n"],
    )
    assert len(batch) == 2


def test_a_slow_answer_does_not_idle_the_other_places():
    """Batch 1 answers in 0.5 s, the others in 10 ms: the three other places keep sending meanwhile."""
    started: dict[int, float] = {}
    finished: dict[int, float] = {}

    def send(batch: Batch) -> ImportResult:
        n = batch.row_indexes[0]
        started[n] = time.monotonic()
        time.sleep(0.5 if n == 1 else 0.01)
        finished[n] = time.monotonic()
        return ImportResult(1, 0, 0, [])

    seen: list[int] = []
    with BatchWindow(send, lambda batch, result: seen.append(batch.row_indexes[0]), limit=4) as window:
        for batch in batches(12):
            window.submit(batch)
        window.drain()
    assert {n for n in started if n > 1 and started[n] < finished[1]} == set(range(2, 12))
    assert seen[0] == 0 and seen[-1] == 1 and sorted(seen) == list(range(12))


def test_the_first_batch_goes_alone_and_a_failure_there_sends_nothing_else():
    sent: list[tuple[int, str]] = []

    def send(batch: Batch) -> ImportResult:
        sent.append((batch.row_indexes[0], threading.current_thread().name))
        raise RuntimeError("401: bad key")

    window = BatchWindow(send, lambda batch, result: None, limit=8)
    with pytest.raises(RuntimeError, match="bad key"), window:
        for batch in batches(20):
            window.submit(batch)
    assert sent == [(0, threading.current_thread().name)]

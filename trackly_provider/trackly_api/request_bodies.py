"""
Request bodies kept in a few reused buffers, and sent in equal pieces.

A body of a thousand records is about 150 KB, a slightly different size for every batch. Allocated
anew for each request and held while the request is open, such bodies fragment glibc's heap: the
resident size of a task grew by 10 to 34 MiB from 1M to 5M rows though nothing was kept
(docs/performance.md). A batch's body is therefore copied into a buffer taken from a small pool
and given back once the batch is counted: warm, the pool holds one buffer per request in flight
plus one, and no large block outlives the encoding of its batch. The copy costs about 10 µs a batch.
"""

from __future__ import annotations

from collections.abc import Iterator

# Buffers grow in steps of this size, so that a pool settles on one size whatever the bodies.
BUFFER_STEP = 256 * 1024
# The piece size a body is handed to the HTTP client in: each piece is copied out as it is sent,
# and equal small pieces reuse one freed block instead of needing a new 150 KB one.
SEND_PIECE = 16 * 1024


class BodyBuffers:
    """A pool of byte buffers for request bodies; a buffer is never resized while a view of it exists."""

    def __init__(self) -> None:
        self._free: list[bytearray] = []

    def hold(self, body: bytes) -> tuple[memoryview, bytearray]:
        """``body`` copied into a pooled buffer: a read-only view of it, and the buffer to give back."""
        buffer = self._free.pop() if self._free else bytearray(BUFFER_STEP)
        if len(buffer) < len(body):
            buffer = bytearray(-(-len(body) // BUFFER_STEP) * BUFFER_STEP)
        buffer[: len(body)] = body
        return memoryview(buffer)[: len(body)].toreadonly(), buffer

    def give_back(self, buffer: bytearray) -> None:
        """Return a buffer whose body is no longer read (its batch is counted)."""
        self._free.append(buffer)


def send_pieces(body: memoryview) -> Iterator[bytes]:
    """A pooled body as the pieces to hand the HTTP client, ``SEND_PIECE`` bytes each, made as sent."""
    for start in range(0, len(body), SEND_PIECE):
        yield bytes(body[start : start + SEND_PIECE])

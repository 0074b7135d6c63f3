"""
A compact set of record fingerprints: sorted 64-bit integer arrays searched a batch at a time.

A Python ``set`` holds an int in about 70 bytes; this holds a 16-byte fingerprint in 16 (two
``int64`` arrays: its first and last 8 bytes), and answers for a whole batch in a few numpy calls
(binary search, ``numpy.searchsorted``). Pure logic, no I/O.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

WIDTHS = (8, 16)  # bytes per fingerprint: 8 (ledgers written before 0.2) or 16
# A one-bit-per-slot filter before the sorted levels: a fingerprint whose bit is clear is no member,
# found in one access to 2 MiB instead of a binary search through the levels (~15 cache misses).
FILTER_BITS = 1 << 24
MERGED_AT = 4

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


def _halves(packed: bytes | bytearray, width: int) -> tuple[Ints, Ints]:
    """The fingerprints packed one after the other, as (first 8 bytes, last 8 bytes), native int64."""
    if width == 8:
        high = np.frombuffer(packed, ">i8").astype(np.int64)
        return high, np.zeros(len(high), np.int64)
    pairs = np.frombuffer(packed, ">i8").reshape(-1, 2)
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)


def _filter_bits(high: Ints) -> tuple[Ints, npt.NDArray[np.uint8]]:
    """Each fingerprint's byte in the filter and its bit there, from its first half."""
    slots = high & (FILTER_BITS - 1)
    return slots >> 3, (1 << (slots & 7)).astype(np.uint8)


class _Level:
    """Fingerprints sorted by their first half, with their second halves in the same order."""

    def __init__(self, high: Ints, low: Ints, *, is_sorted: bool = False) -> None:
        if not is_sorted:
            order = np.argsort(high, kind="stable")
            high, low = high[order], low[order]
        self.high = high
        self.low = low
        # Two fingerprints sharing a first half (about 1 in 2^64 per pair): searched one by one.
        self.shared_high = bool(len(high) > 1 and np.any(high[1:] == high[:-1]))

    @classmethod
    def merged(cls, levels: list[_Level]) -> _Level:
        """The levels as one (a stable sort of sorted runs: a merge)."""
        high = np.concatenate([level.high for level in levels])
        low = np.concatenate([level.low for level in levels])
        return cls(high, low)

    def __len__(self) -> int:
        return len(self.high)

    def contains(self, high: Ints, low: Ints) -> Mask:
        return self.locate(high, low)[1]

    def locate(self, high: Ints, low: Ints) -> tuple[Ints, Mask]:
        """Each fingerprint's position in the level, and whether it is there at all."""
        # Searched in ascending order, each search starts where the last ended: half the cache misses.
        order = np.argsort(high)
        positions = np.empty(len(high), np.intp)
        positions[order] = np.searchsorted(self.high, high[order])
        positions = np.minimum(positions, len(self.high) - 1)
        found: Mask = (self.high[positions] == high) & (self.low[positions] == low)
        if self.shared_high:
            for i in np.flatnonzero(~found & (self.high[positions] == high)):
                start = positions[i]
                end = np.searchsorted(self.high, high[i], side="right")
                same = np.flatnonzero(self.low[start:end] == low[i])
                if len(same):
                    positions[i], found[i] = start + same[0], True
        return positions, found


class FingerprintSet:
    """
    Fingerprints of ``width`` bytes (8 or 16), added and looked up packed, a batch at a time.

    Memory: 16 bytes a member (two int64 halves; an 8-byte fingerprint's second half is 0), a
    2 MiB filter, and the levels being merged while a batch is added. Members added a batch at a
    time are kept in sorted levels merged by size class (tiered, ``MERGED_AT`` at a time: see
    ``add``), so adding n fingerprints costs O(n log n) in all and a lookup searches O(log n) levels.
    """

    def __init__(self, width: int) -> None:
        if width not in WIDTHS:
            raise ValueError(f"a fingerprint is 8 or 16 bytes, not {width}")
        self.width = width
        self._levels: list[_Level] = []
        self._filter = np.zeros(FILTER_BITS // 8, np.uint8)
        self._batch = 0  # the size of the first batch added: the unit of the size classes
        self._met: Mask | None = None  # the members a run met (index, met, meet)

    @classmethod
    def of_packed(cls, width: int, packed: bytes | bytearray) -> FingerprintSet:
        """One set of the fingerprints packed in ``packed``, sorted once."""
        builder = FingerprintSetBuilder(len(packed) // width)
        builder.add(packed, width)
        return builder.build(width)

    def __len__(self) -> int:
        return sum(len(level) for level in self._levels)

    def index(self, packed: bytes) -> Ints:
        """
        Each fingerprint's position among the members (of a set built at once: ``of_packed``, a
        builder), or -1 when it is none; the positions ``met`` and ``meet`` take.
        """
        high, low = _halves(packed, self.width)
        where = np.full(len(high), -1, np.intp)
        if not self._levels:
            return where
        if len(self._levels) > 1:
            raise ValueError("index() is for a set built at once, not one added to")
        maybe = np.flatnonzero(self._marked(high))
        if len(maybe):
            positions, found = self._levels[0].locate(high[maybe], low[maybe])
            where[maybe[found]] = positions[found]
        return where

    def met(self, positions: Ints) -> Mask:
        """Whether each member (at ``positions`` from ``index``) was marked by ``meet``."""
        if self._met is None:
            return np.zeros(len(positions), np.bool_)
        met: Mask = self._met[positions]
        return met

    def meet(self, positions: Ints) -> None:
        """Mark members (one byte each, allocated at the first mark): a run met them."""
        if self._met is None:
            self._met = np.zeros(len(self), np.bool_)
        self._met[positions] = True

    def contains(self, packed: bytes) -> Mask:
        """For each fingerprint packed in ``packed``, whether it is a member."""
        high, low = _halves(packed, self.width)
        found = np.zeros(len(high), np.bool_)
        maybe = np.flatnonzero(self._marked(high))
        if len(maybe):
            high, low = high[maybe], low[maybe]
            hits = np.zeros(len(maybe), np.bool_)
            for level in self._levels:
                hits |= level.contains(high, low)
            found[maybe] = hits
        return found

    def add(self, packed: bytes) -> None:
        """Add the fingerprints packed in ``packed`` (not members yet: a member added again is kept twice)."""
        if not packed:
            return
        high, low = _halves(packed, self.width)
        self._mark(high)
        # Tiered merging: once MERGED_AT levels are of one size class (a power of MERGED_AT batches),
        # they become one. Each member is merged about log4(n / batch) times, into at most
        # 3 x log4(n / batch) + 1 levels.
        self._levels.append(_Level(high, low))
        self._batch = self._batch or len(high)
        while (
            len(self._levels) >= MERGED_AT
            and len({self._size_class(lv) for lv in self._levels[-MERGED_AT:]}) == 1
        ):
            merged = _Level.merged(self._levels[-MERGED_AT:])
            del self._levels[-MERGED_AT:]
            self._levels.append(merged)

    def _size_class(self, level: _Level) -> int:
        return int(math.log(max(len(level) / self._batch, 1), MERGED_AT) + 1e-9)

    def _mark(self, high: Ints) -> None:
        np.bitwise_or.at(self._filter, *_filter_bits(high))

    def _marked(self, high: Ints) -> Mask:
        where, bits = _filter_bits(high)
        marked: Mask = (self._filter[where] & bits) != 0
        return marked


class FingerprintSetBuilder:
    """
    One ``FingerprintSet`` filled from a ledger's rows as they stream: no row is kept, only its
    fingerprints' halves (16 bytes each, in arrays of ``capacity``, grown if more come), then sorted
    once. Peak memory while building: about twice the set's own.
    """

    def __init__(self, capacity: int) -> None:
        self._high: Ints = np.empty(max(capacity, 0), np.int64)
        self._low: Ints = np.empty(max(capacity, 0), np.int64)
        self._size = 0

    def add(self, packed: bytes | bytearray, width: int) -> None:
        """The fingerprints of one row, ``width`` bytes each."""
        high, low = _halves(packed, width)
        end = self._size + len(high)
        if end > len(self._high):  # rows written since they were counted
            grown = max(end, 2 * len(self._high))
            self._high, self._low = np.resize(self._high, grown), np.resize(self._low, grown)
        self._high[self._size : end] = high
        self._low[self._size : end] = low
        self._size = end

    def build(self, width: int) -> FingerprintSet:
        """The set (the builder gives its arrays up to it)."""
        high, low = self._high[: self._size], self._low[: self._size]
        self._high = self._low = np.empty(0, np.int64)
        fingerprints = FingerprintSet(width)
        if len(high):
            fingerprints._mark(high)
            order = np.argsort(high)
            high = high[order]
            low = low[order]
            del order
            fingerprints._levels.append(_Level(high, low, is_sorted=True))
        return fingerprints

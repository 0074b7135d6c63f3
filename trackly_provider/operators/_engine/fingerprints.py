"""
Durable fingerprints of records, so a rerun can tell which records an earlier run confirmed.

A fingerprint is a 16-byte digest of a record's JSON text (keys sorted), computed a batch at a
time (``Fingerprints``): XXH3-128 (xxHash; its output is frozen since xxHash 0.8.0), or, for a
record holding personal data, BLAKE2b keyed with the API key (RFC 7693). A ledger partition an
earlier release started keeps its 8-byte BLAKE2b fingerprints (``LegacyFingerprints``), so that its
rerun still finds what it confirmed.

Why a non-cryptographic 128-bit hash is safe for money: a record is left out only when its
fingerprint equals one an earlier run confirmed in the same partition. XXH3-128 passes SMHasher's
collision and distribution tests, so two different records share a digest with probability about
2^-128: with 10^9 records read against 10^9 confirmed, about 3 in 10^21. Nobody gains by forging a
collision: the records come from the user's own database, and anyone who can write there can
delete a row outright.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import xxhash

from trackly_provider.database.fingerprint_set import FingerprintSet, Mask
from trackly_provider.trackly_api.results import encode_value

Fingerprint = bytes  # 16 bytes (8 in a partition started before release 0.2)
WIDTH = 16
LEGACY_WIDTH = 8
CONTENT_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_SORT_KEYS
# One call encodes a whole batch, indented: a raw newline is never inside a JSON string (it is
# escaped), and only the list's own items are indented by two spaces, so this separator cuts the
# text into each record's lines, exactly, whatever the records hold.
BATCH_OPTIONS = CONTENT_OPTIONS | orjson.OPT_INDENT_2
ITEM_SEPARATOR = b"\n  },\n  {\n"
LIST_START, LIST_END = b"[\n  {\n", b"\n  }\n]"


def fingerprint_text(fingerprint: Fingerprint) -> str:
    """A fingerprint as hex digits (32, or 16 for an 8-byte one), as reports and the ledger docs show it."""
    return fingerprint.hex()


def record_texts(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """
    Each record's JSON text as fingerprinted: its members, keys sorted, one per indented line; the
    same text for a record wherever it sits in a batch. One orjson call for the batch.
    """
    if not records:
        return []
    texts = _items(orjson.dumps(list(records), default=encode_value, option=BATCH_OPTIONS))
    if len(texts) == len(records):
        return texts
    # A record without members ({}) is written on one line, not cut: encode each alone, the same way.
    return [
        _items(orjson.dumps([record], default=encode_value, option=BATCH_OPTIONS))[0] for record in records
    ]


def _items(text: bytes) -> list[bytes]:
    """An indented list's items, each without its braces; the whole text when it is not such a list."""
    if text.startswith(LIST_START) and text.endswith(LIST_END):
        return text[len(LIST_START) : -len(LIST_END)].split(ITEM_SEPARATOR)
    return [text]


class Fingerprints:
    """
    Gives each record of one partition a 16-byte fingerprint of its content, a batch at a time.

    Identical records in a partition are numbered in the order they come (the second copy hashes
    its content with ``#1``...), so two equal revenue rows are two records, and a rerun that reads
    them in another order still names the same copies. Keeps every fingerprint given, in a
    ``FingerprintSet``: 16 bytes a record, the only per-record memory of an import with a ledger.

    ``key``: for records holding personal data (a contact's phone number), the hash is keyed with
    it (the API key), so that the ledger's fingerprints cannot be reversed by hashing every phone
    number; a new key gives new fingerprints, and a rerun then sends the contacts again (an upsert).
    """

    width = WIDTH

    def __init__(self, key: str | None = None, known: FingerprintSet | None = None) -> None:
        self._seen = FingerprintSet(self.width)
        # The partition's confirmed fingerprints: one this run meets is flagged there (one byte)
        # instead of being kept again in ``_seen`` (16 bytes), so a rerun holds each once.
        self._known = known if known is not None and len(known) else None
        self._key = key.encode("utf-8")[:64] if key else b""  # blake2b takes a key of up to 64 bytes
        self._digest = self._digest_function()
        self._next_copy: dict[Fingerprint, int] = {}  # a record's first fingerprint -> its next copy

    def of_batch(self, records: Sequence[dict[str, Any]]) -> tuple[list[Fingerprint], Mask]:
        """
        The fingerprints of ``records``, in order (each one new to this partition's run), and for
        each whether ``known`` holds it (all False without ``known``).
        """
        texts = self._texts(records)
        prints = list(map(self._digest, texts))
        packed = b"".join(prints)
        known_at = self._known_at(packed, len(prints))
        before = self._given_before(packed, known_at)
        if len(set(prints)) < len(prints) or before.any():
            prints = self._numbered(texts, prints, before)  # copies of a record (or a collision): rare
            packed = b"".join(prints)
            known_at = self._known_at(packed, len(prints))
        self._remember(packed, known_at)
        return prints, known_at >= 0

    def _known_at(self, packed: bytes, count: int) -> npt.NDArray[np.intp]:
        """Each fingerprint's position in ``known``, or -1."""
        if self._known is None:
            return np.full(count, -1, np.intp)
        return self._known.index(packed)

    def _given_before(self, packed: bytes, known_at: npt.NDArray[np.intp]) -> Mask:
        """Whether each fingerprint was given earlier in this run."""
        if self._known is None:
            return self._seen.contains(packed)
        in_known = known_at >= 0
        given = np.zeros(len(known_at), np.bool_)
        given[in_known] = self._known.met(known_at[in_known])
        others = np.flatnonzero(~in_known)
        if len(others):
            given[others] = self._seen.contains(_select(packed, others, self.width))
        return given

    def _remember(self, packed: bytes, known_at: npt.NDArray[np.intp]) -> None:
        if self._known is None:
            self._seen.add(packed)
            return
        in_known = known_at >= 0
        self._known.meet(known_at[in_known])
        others = np.flatnonzero(~in_known)
        if len(others):
            self._seen.add(_select(packed, others, self.width))

    def _texts(self, records: Sequence[dict[str, Any]]) -> list[bytes]:
        return record_texts(records)

    def _digest_function(self) -> Callable[[bytes], Fingerprint]:
        """XXH3-128, or BLAKE2b keyed with ``key`` for records holding personal data."""
        key = self._key
        if key:
            return lambda text: blake2b(text, digest_size=WIDTH, key=key).digest()
        return xxhash.xxh3_128_digest

    def _numbered(self, texts: list[bytes], prints: list[Fingerprint], before: Mask) -> list[Fingerprint]:
        """
        Number the copies, in order: a fingerprint given before (``before``, or earlier in the
        batch) is replaced by the first of ``text#1``, ``#2``... not given yet. Where a record has
        three copies or more, the next number to try is kept (``_next_copy``), so n copies cost
        O(n) hashes, not n^2/2.
        """
        given: set[Fingerprint] = set()
        numbered = list(prints)
        for i, (text, fingerprint) in enumerate(zip(texts, prints, strict=True)):
            if fingerprint in given or before[i]:
                copy = self._next_copy.get(fingerprint, 1)
                candidate = self._digest(b"%b#%d" % (text, copy))
                while candidate in given or self._given_before(candidate, self._known_at(candidate, 1))[0]:
                    copy += 1
                    candidate = self._digest(b"%b#%d" % (text, copy))
                if copy > 1 or fingerprint in self._next_copy:
                    self._next_copy[fingerprint] = copy + 1
                numbered[i] = candidate
            given.add(numbered[i])
        return numbered


class LegacyFingerprints(Fingerprints):
    """
    The fingerprints of releases before 0.2, for a ledger partition they started: 8 bytes, of each
    record's compact JSON (keys sorted), encoded one record at a time. A run that finds 8-byte
    fingerprints in its partition uses these, so a rerun of a day imported before the upgrade
    still skips what Trackly confirmed (a new fingerprint would send revenue twice).
    """

    width = LEGACY_WIDTH

    def _texts(self, records: Sequence[dict[str, Any]]) -> list[bytes]:
        return [orjson.dumps(record, default=encode_value, option=CONTENT_OPTIONS) for record in records]

    def _digest_function(self) -> Callable[[bytes], Fingerprint]:
        key = self._key
        return lambda text: blake2b(text, digest_size=LEGACY_WIDTH, key=key).digest()


def fingerprints_for(width: int, key: str | None, known: FingerprintSet | None = None) -> Fingerprints:
    """
    The fingerprints a partition's ledger rows were written with (``width``: 16, or 8 before 0.2);
    ``known``: the partition's confirmed ones.
    """
    return LegacyFingerprints(key, known) if width == LEGACY_WIDTH else Fingerprints(key, known)


def _select(packed: bytes, positions: npt.NDArray[np.intp], width: int) -> bytes:
    """The fingerprints at ``positions`` of ``packed``, packed."""
    return np.frombuffer(packed, f"V{width}")[positions].tobytes()

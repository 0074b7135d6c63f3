"""Durable fingerprints of records, so a rerun can tell which records an earlier run confirmed."""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

import orjson

from trackly_provider.trackly_api.results import encode_value


def fingerprint_text(fingerprint: int) -> str:
    """A fingerprint as 16 hex digits, as reports and the ledger documentation show it."""
    return f"{fingerprint & 0xFFFF_FFFF_FFFF_FFFF:016x}"


class Fingerprints:
    """
    Gives each record of one partition a 64-bit fingerprint of its content (signed, for a BIGINT).

    Identical records in a partition are numbered in the order they come (the second copy hashes
    its content with ``#1``...), so two equal revenue rows are two records, and a rerun that reads
    them in another order still names the same copies. Holds one int per record seen: about 60
    bytes a row, the only per-row memory of an import with a ledger.
    """

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def of(self, record: dict[str, Any]) -> int:
        content = orjson.dumps(
            record, default=encode_value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_SORT_KEYS
        )
        copy = 0
        while True:
            data = content if copy == 0 else b"%b#%d" % (content, copy)
            fingerprint = int.from_bytes(blake2b(data, digest_size=8).digest(), "big", signed=True)
            if fingerprint not in self._seen:
                self._seen.add(fingerprint)
                return fingerprint
            copy += 1

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

    ``key``: for records holding personal data (a contact's phone number), the hash is keyed with
    it (the API key), so that the ledger's fingerprints cannot be reversed by hashing every phone
    number; a new key gives new fingerprints, and a rerun then sends the contacts again (an upsert).
    """

    def __init__(self, key: str | None = None) -> None:
        self._seen: set[int] = set()
        self._key = key.encode("utf-8")[:64] if key else b""  # blake2b takes a key of up to 64 bytes

    def of(self, record: dict[str, Any]) -> int:
        content = orjson.dumps(
            record, default=encode_value, option=orjson.OPT_NAIVE_UTC | orjson.OPT_SORT_KEYS
        )
        copy = 0
        while True:
            data = content if copy == 0 else b"%b#%d" % (content, copy)
            digest = blake2b(data, digest_size=8, key=self._key).digest()
            fingerprint = int.from_bytes(digest, "big", signed=True)
            if fingerprint not in self._seen:
                self._seen.add(fingerprint)
                return fingerprint
            copy += 1

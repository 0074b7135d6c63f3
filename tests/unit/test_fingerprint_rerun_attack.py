"""
Reruns against a partially confirmed partition (operators/_engine/fingerprints.py): whatever the
batches of either run and the order of the rerun, every copy of a record gets the fingerprint a plain
reference gives (each copy takes the first of ``text``, ``text#1``, ``text#2``... not given earlier in
the run), and the rerun flags as confirmed exactly the fingerprints the partition holds.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Any

import orjson
import pytest
import xxhash

from trackly_provider.database.fingerprint_set import FingerprintSet, FingerprintSetBuilder
from trackly_provider.operators._engine.fingerprints import (
    CONTENT_OPTIONS,
    Fingerprints,
    fingerprints_for,
    record_texts,
)
from trackly_provider.trackly_api.results import encode_value

Record = dict[str, Any]
# Few distinct records, so that most of a run's records are copies; one ends in "#1"-like text.
POOL: list[Record] = [
    {"message_id": "m1", "offer_id": "o1", "revenue": 12.5},
    {"message_id": "m1", "offer_id": "o1", "revenue": 12.5, "payout": 1},
    {"message_id": "m2#1", "offer_id": "o", "revenue": 1},
    {"message_id": "m2", "offer_id": "o#1", "revenue": 1},
    {"message_id": "m3", "offer_id": "o", "revenue": 0},
    {"message_id": "a\n  },\n  {\n", "offer_id": "#1", "revenue": 2},
]
RUNS = 300


def reference(records: Sequence[Record], width: int, key: str | None) -> list[bytes]:
    """Each record in turn takes the first of text, text#1, text#2... not given earlier in the run."""
    if width == 8:
        digest: Callable[[bytes], bytes] = lambda text: blake2b(  # noqa: E731
            text, digest_size=8, key=(key or "").encode()
        ).digest()
        texts = [orjson.dumps(r, default=encode_value, option=CONTENT_OPTIONS) for r in records]
    else:
        if key:
            digest = lambda text: blake2b(text, digest_size=16, key=key.encode()).digest()  # noqa: E731
        else:
            digest = xxhash.xxh3_128_digest
        texts = [record_texts([record])[0] for record in records]
    given: set[bytes] = set()
    prints = []
    for text in texts:
        fingerprint, copy = digest(text), 0
        while fingerprint in given:
            copy += 1
            fingerprint = digest(b"%b#%d" % (text, copy))
        given.add(fingerprint)
        prints.append(fingerprint)
    return prints


def random_split(rng: random.Random, items: Sequence[Record]) -> list[list[Record]]:
    """``items`` cut into batches of random sizes (1 to 3 times the pool, or all at once)."""
    if rng.random() < 0.1:
        return [list(items)]
    parts, start = [], 0
    while start < len(items):
        size = rng.randint(1, 3 * len(POOL))
        parts.append(list(items[start : start + size]))
        start += size
    return parts


def run(fingerprints: Fingerprints, batches: list[list[Record]]) -> tuple[list[bytes], list[bool]]:
    prints: list[bytes] = []
    flagged: list[bool] = []
    for batch in batches:
        batch_prints, in_known = fingerprints.of_batch(batch)
        assert len(batch_prints) == len(batch) == len(in_known)
        prints += batch_prints
        flagged += in_known.tolist()
    return prints, flagged


def known_set(width: int, rows: list[list[bytes]]) -> FingerprintSet:
    """The confirmed set as the ledger builds it, from rows that may repeat a fingerprint."""
    builder = FingerprintSetBuilder(sum(map(len, rows)) // 2)  # counted low: rows written since
    for row in rows:
        builder.add(b"".join(row), width)
    return builder.build(width)


@pytest.mark.parametrize(("width", "key"), [(16, None), (16, "trk_key"), (8, None), (8, "trk_key")])
def test_reruns_of_a_partly_confirmed_day_number_and_flag_like_the_reference(width: int, key: str | None):
    rng = random.Random(f"{width}-{key}")
    for _ in range(RUNS):
        weights = [rng.random() ** 3 for _ in POOL]  # one record often has most copies
        records = [dict(r) for r in rng.choices(POOL, weights, k=rng.randint(1, 12 * len(POOL)))]
        first_prints, first_flags = run(fingerprints_for(width, key), random_split(rng, records))
        assert first_prints == reference(records, width, key)
        assert not any(first_flags)
        # Trackly confirmed a random part of the first run, in random requests; one row written twice.
        confirmed = [p for p in first_prints if rng.random() < 0.6]
        rows = [confirmed[i : i + 3] for i in range(0, len(confirmed), 3)]
        if rows and rng.random() < 0.3:
            rows.append(rng.choice(rows))
        stranger = [bytes(rng.getrandbits(8) for _ in range(width))]  # a record since deleted at source
        for attempt in range(2):  # a rerun, then a second rerun against the same partition
            known = known_set(width, [*rows, stranger])
            reordered = rng.sample(records, len(records)) if attempt == 0 else records
            prints, flags = run(fingerprints_for(width, key, known), random_split(rng, reordered))
            assert prints == reference(reordered, width, key)
            assert Counter(prints) == Counter(first_prints)  # the same copies, in any order
            assert flags == [p in set(confirmed) for p in prints]
            assert sum(flags) == len(set(confirmed))  # each confirmed copy skipped once, none twice


def test_many_copies_spread_over_batches_then_a_rerun_with_other_batches():
    """Hundreds of copies of two records, interleaved, cut differently in each run."""
    rng = random.Random(7)
    records = [dict(POOL[0]) if rng.random() < 0.8 else dict(POOL[1]) for _ in range(900)]
    first_prints, _ = run(Fingerprints(), [records[i : i + 37] for i in range(0, 900, 37)])
    assert first_prints == reference(records, 16, None)
    confirmed = {p for p in first_prints if rng.random() < 0.5}
    known = FingerprintSet.of_packed(16, b"".join(sorted(confirmed)))
    rerun = Fingerprints(known=known)
    prints, flags = run(rerun, [records[:1], records[1:500], records[500:501], records[501:]])
    assert prints == first_prints
    assert flags == [p in confirmed for p in prints]
    assert len(rerun._seen) == 900 - len(confirmed)  # what the partition holds is flagged, not kept

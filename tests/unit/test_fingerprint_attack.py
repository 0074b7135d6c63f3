"""
Adversarial inputs for the ledger's fingerprints: records built from hostile rows are cut out of
their batch's text exactly, and the compact set answers membership exactly whatever its members share.
"""

from __future__ import annotations

import random
import struct
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import orjson

from trackly_provider.database.fingerprint_set import FingerprintSet
from trackly_provider.operators._engine.fingerprints import record_texts
from trackly_provider.operators._engine.records import make_record_builder, plan_columns
from trackly_provider.trackly_api.entities import REVENUE, SENDS
from trackly_provider.trackly_api.results import encode_value

HOSTILE_TEXT = [
    "a\n  },\n  {\n",  # the batch's own separator
    "\n  }\n]",  # the batch's own end
    '"},{"',
    "\\",
    "x\u2028\u2029y",
    "x\x00y",
    "é🎉",
    "}" * 50,
    "  {\n",
    '{\n    "message_id": "m"\n  },\n  {\n',
]
INT64 = (-(2**63), 2**63 - 1, 0, -1, 1, 2**24, 2**24 - 1, -(2**24), 2**63 - 2**24)


def hostile_records() -> list[dict]:
    """Revenue and send records built by the import's own row builder from hostile values."""
    revenue = make_record_builder(
        plan_columns(
            ["message_id", "offer_id", "revenue", "payout", "attribution_type", "timestamp"], REVENUE
        ),
        REVENUE,
    )
    sends = make_record_builder(
        plan_columns(["id", "to_number", "timestamp", "message", "delivered", "length"], SENDS), SENDS
    )
    records = []
    for n, text in enumerate(HOSTILE_TEXT):
        records += [
            revenue((text, f"o{n}", Decimal("12.3456789012345678"), None, text, "0001-01-01T00:00:00")),
            revenue((f"m{n}", text, 1e308, 0, None, "9999-12-31T23:59:59.999999Z")),
            revenue((f"m{n}", "o", 2, None, None, datetime(9999, 12, 31, 23, 59, 59, 999999))),
            revenue((f"m{n}", "o", 2, None, None, datetime(2025, 1, 1, tzinfo=timezone.utc))),
            sends((f"s{n}", "+12025550143", "2025-11-15T10:00:00", text * 1000, True, 7)),
        ]
    rejected = [record for record in records if not isinstance(record, dict)]
    assert not rejected, rejected
    return [record for record in records if isinstance(record, dict)]


def test_every_hostile_record_is_cut_out_of_its_batch_exactly_its_own_members():
    records = hostile_records()
    texts = record_texts(records)
    assert len(texts) == len(records)
    for record, text in zip(records, texts, strict=True):
        expected = orjson.loads(orjson.dumps(record, default=encode_value, option=orjson.OPT_NAIVE_UTC))
        assert orjson.loads(b"{\n" + text + b"\n}") == expected
    # The same text for a record wherever it sits: alone, reversed, in any batch of others.
    assert texts == [record_texts([record])[0] for record in records]
    shuffled = list(range(len(records)))
    random.Random(7).shuffle(shuffled)
    assert record_texts([records[i] for i in shuffled]) == [texts[i] for i in shuffled]


def fingerprint(high: int, low: int, width: int) -> bytes:
    return struct.pack(">q", high) + (struct.pack(">q", low) if width == 16 else b"")


def test_membership_is_exact_for_members_sharing_halves_at_the_int64_edges_across_levels():
    for seed in range(200):
        rnd = random.Random(seed)
        width = rnd.choice([8, 16])
        highs = [*INT64, *(rnd.getrandbits(64) - 2**63 for _ in range(rnd.choice([1, 3, 40])))]
        highs = rnd.sample(highs, rnd.randint(1, len(highs)))
        lows = [*rnd.sample(INT64, 4), *(rnd.getrandbits(64) - 2**63 for _ in range(3))]
        universe = sorted({fingerprint(high, low, width) for high in highs for low in lows})
        start = rnd.sample(universe, rnd.randint(0, len(universe))) if rnd.random() < 0.3 else []
        members = FingerprintSet.of_packed(width, b"".join(start))
        expected = set(start)
        for _ in range(rnd.randint(1, 40)):
            added = [rnd.choice(universe) for _ in range(rnd.choice([0, 1, 2, 3, 7, 20]))]
            members.add(b"".join(added))
            expected.update(added)
            found = members.contains(b"".join(universe)).tolist()
            assert found == [member in expected for member in universe], (seed, width)
        assert not members.contains(b"").any()


def test_a_million_members_a_thousand_sharing_each_first_half_are_found_exactly():
    rnd = np.random.default_rng(5)
    halves = rnd.integers(-(2**63), 2**63 - 1, size=(1_000_000, 2), dtype=np.int64)
    halves[:1000, 0] = halves[0, 0]  # one first half, a thousand second halves
    halves[1000:2000, 0] = 2**63 - 1
    halves[2000:3000, 0] = -(2**63)
    members = halves.astype(">i8").tobytes()
    strangers = halves.copy()
    strangers[:, 1] ^= 1  # the same first halves, every second half off by one bit
    fingerprints = FingerprintSet(16)
    cuts = sorted(rnd.choice(1_000_000, size=60, replace=False).tolist())
    for start, end in zip([0, *cuts], [*cuts, 1_000_000], strict=True):
        fingerprints.add(members[16 * start : 16 * end])
    assert len(fingerprints) == 1_000_000
    assert fingerprints.contains(members).all()
    assert not fingerprints.contains(strangers.astype(">i8").tobytes()).any()

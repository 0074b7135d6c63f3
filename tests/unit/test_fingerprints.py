"""Record fingerprints: every value counts, key order does not (operators/_engine/fingerprints.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from trackly_provider.operators._engine.fingerprints import Fingerprints, fingerprint_text

RECORD = {"message_id": "m1", "offer_id": "o1", "revenue": 12.5, "timestamp": datetime(2025, 11, 15, 10)}


def test_identical_records_get_distinct_fingerprints_numbered_in_order():
    first, second = Fingerprints(), Fingerprints()
    a = [first.of(dict(RECORD)) for _ in range(3)]
    assert len(set(a)) == 3
    # Another run (another process) names the same copies the same way, in any order of other records.
    assert second.of({**RECORD, "message_id": "other"}) not in a
    assert [second.of(dict(RECORD)) for _ in range(3)] == a


def test_fingerprints_depend_on_every_value_not_on_key_order_or_zone():
    prints = Fingerprints()
    base = prints.of(RECORD)
    assert Fingerprints().of(dict(reversed(RECORD.items()))) == base
    kolkata = timezone(timedelta(hours=5, minutes=30))
    same_instant = {**RECORD, "timestamp": datetime(2025, 11, 15, 15, 30, tzinfo=kolkata)}
    assert Fingerprints().of(same_instant) != base  # sent as another text: another record for Trackly
    assert Fingerprints().of({**RECORD, "revenue": 12.51}) != base
    assert -(2**63) <= base < 2**63
    assert fingerprint_text(-1) == "ffffffffffffffff"

"""The compact fingerprint set (database/fingerprint_set.py): exact membership, 16 bytes a member."""

from __future__ import annotations

import os

import pytest

from trackly_provider.database.fingerprint_set import FingerprintSet, FingerprintSetBuilder


def packed(*fingerprints: bytes) -> bytes:
    return b"".join(fingerprints)


def test_members_added_a_batch_at_a_time_are_found_and_others_are_not():
    members = [os.urandom(16) for _ in range(5000)]
    strangers = [os.urandom(16) for _ in range(500)]
    fingerprints = FingerprintSet(16)
    for start in range(0, len(members), 700):  # levels of several sizes, merged as they come
        fingerprints.add(packed(*members[start : start + 700]))
    assert len(fingerprints) == 5000
    assert fingerprints.contains(packed(*members)).all()
    assert not fingerprints.contains(packed(*strangers)).any()
    assert fingerprints.contains(packed(strangers[0], members[4999], members[0])).tolist() == [
        False,
        True,
        True,
    ]


def test_fingerprints_sharing_their_first_or_last_half_are_told_apart():
    a, b, c = os.urandom(8), os.urandom(8), os.urandom(8)
    fingerprints = FingerprintSet.of_packed(16, packed(a + b, a + c, os.urandom(16)))
    assert fingerprints.contains(packed(a + b, a + c, a + a, b + b, c + b)).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]
    fingerprints.add(packed(a + a))
    assert fingerprints.contains(packed(a + a, a + b, b + a)).tolist() == [True, True, False]


def test_8_byte_fingerprints_of_earlier_releases():
    members = [os.urandom(8) for _ in range(100)]
    fingerprints = FingerprintSet.of_packed(8, packed(*members))
    assert fingerprints.contains(packed(*members)).all()
    assert not fingerprints.contains(packed(os.urandom(8), os.urandom(8))).any()
    assert len(FingerprintSet.of_packed(8, b"")) == 0
    assert not FingerprintSet(8).contains(packed(*members)).any()


def test_a_million_members_take_16_mib():
    fingerprints = FingerprintSet(16)
    for _ in range(100):
        fingerprints.add(os.urandom(16 * 10_000))
    arrays = [array for level in fingerprints._levels for array in (level.high, level.low)]
    assert sum(array.nbytes for array in arrays) == 16 * 1_000_000


def test_a_width_other_than_8_or_16_is_refused():
    with pytest.raises(ValueError, match="8 or 16 bytes, not 32"):
        FingerprintSet(32)


def test_a_set_built_from_rows_as_they_stream_grows_past_its_count():
    rows = [os.urandom(16 * 300) for _ in range(4)]
    builder = FingerprintSetBuilder(500)  # counted before two more rows were written
    for row in rows:
        builder.add(row, 16)
    fingerprints = builder.build(16)
    assert len(fingerprints) == 1200
    assert fingerprints.contains(b"".join(rows)).all()
    assert not fingerprints.contains(os.urandom(16 * 50)).any()
    assert len(FingerprintSetBuilder(0).build(8)) == 0


def test_members_are_found_at_their_position_and_flagged_when_met():
    a, b = os.urandom(8), os.urandom(8)
    members = [a + b, a + a, os.urandom(16), os.urandom(16)]  # two share their first half
    fingerprints = FingerprintSet.of_packed(16, packed(*members))
    where = fingerprints.index(packed(*members, os.urandom(16)))
    assert where[-1] == -1 and sorted(where[:-1].tolist()) == [0, 1, 2, 3]
    assert not fingerprints.met(where[:-1]).any()
    fingerprints.meet(where[[1, 2]])
    assert fingerprints.met(fingerprints.index(packed(*members))).tolist() == [False, True, True, False]
    growing = FingerprintSet(16)
    growing.add(packed(*members[:2]))
    growing.add(packed(*members[2:]))
    with pytest.raises(ValueError, match="built at once"):
        growing.index(packed(*members))

"""
Record fingerprints (operators/_engine/fingerprints.py): every value counts, key order does not; a
batch cut into its records whatever they hold; the 8-byte fingerprints of earlier releases unchanged.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from hashlib import blake2b

import orjson

from trackly_provider.database.fingerprint_set import FingerprintSet
from trackly_provider.operators._engine.fingerprints import (
    Fingerprints,
    LegacyFingerprints,
    fingerprint_text,
    fingerprints_for,
    record_texts,
)

RECORD = {"message_id": "m1", "offer_id": "o1", "revenue": 12.5, "timestamp": datetime(2025, 11, 15, 10)}
# Text that looks like the indented list's own separators, braces and quotes: still one record each.
TRICKY = [
    {"message_id": "a\n  },\n  {\n", "offer_id": "}", "revenue": 1.0},
    {"message_id": '"},{"', "offer_id": "\\", "revenue": 2.0, "custom_fields": {"k": {"n": [1, {}]}}},
    {"message_id": "\u2028 é 🎉", "offer_id": "x" * 100_000, "revenue": float("1e308")},
]


def one(prints: Fingerprints, record: dict) -> bytes:
    (fingerprint,), _ = prints.of_batch([record])
    return fingerprint


def test_identical_records_get_distinct_fingerprints_numbered_in_order_across_batches():
    first, second = Fingerprints(), Fingerprints()
    a = first.of_batch([dict(RECORD), dict(RECORD)])[0] + first.of_batch([dict(RECORD)])[0]
    assert len(set(a)) == 3 and all(len(fingerprint) == 16 for fingerprint in a)
    # Another run (another process) names the same copies the same way, in any order of other records.
    assert one(second, {**RECORD, "message_id": "other"}) not in a
    assert [one(second, dict(RECORD)) for _ in range(3)] == a


def test_fingerprints_depend_on_every_value_not_on_key_order_or_zone():
    base = one(Fingerprints(), RECORD)
    assert one(Fingerprints(), dict(reversed(RECORD.items()))) == base
    kolkata = timezone(timedelta(hours=5, minutes=30))
    same_instant = {**RECORD, "timestamp": datetime(2025, 11, 15, 15, 30, tzinfo=kolkata)}
    assert one(Fingerprints(), same_instant) != base  # sent as another text: another record for Trackly
    assert one(Fingerprints(), {**RECORD, "revenue": 12.51}) != base
    assert fingerprint_text(base) == base.hex() and len(fingerprint_text(base)) == 32


def test_a_record_has_one_text_wherever_it_sits_in_a_batch_whatever_its_text_holds():
    alone = [record_texts([record])[0] for record in TRICKY]
    assert record_texts(TRICKY) == alone
    assert record_texts(list(reversed(TRICKY))) == list(reversed(alone))
    assert len(set(alone)) == 3
    # An empty record cannot be cut out of the batch's text: each is then encoded alone, the same way.
    assert record_texts([TRICKY[0], {}, TRICKY[1]]) == [alone[0], record_texts([{}])[0], alone[1]]
    batch, _ = Fingerprints().of_batch(TRICKY)
    assert [one(Fingerprints(), record) for record in TRICKY] == batch


def test_a_batch_of_copies_and_earlier_records_is_numbered_like_one_at_a_time():
    records = [RECORD, TRICKY[0], RECORD, RECORD, TRICKY[0]]
    batched = Fingerprints()
    batched.of_batch([TRICKY[0]])
    singly = Fingerprints()
    singly.of_batch([TRICKY[0]])
    assert batched.of_batch(records)[0] == [one(singly, record) for record in records]


def test_the_8_byte_fingerprints_of_earlier_releases_are_unchanged():
    """A partition an earlier release started: the same 8 bytes as its Fingerprints.of gave."""

    def released(record: dict, copy: int = 0, key: bytes = b"") -> bytes:
        content = orjson.dumps(record, option=orjson.OPT_NAIVE_UTC | orjson.OPT_SORT_KEYS)
        data = content if copy == 0 else b"%b#%d" % (content, copy)
        return blake2b(data, digest_size=8, key=key).digest()

    legacy = fingerprints_for(8, None)
    assert isinstance(legacy, LegacyFingerprints)
    assert legacy.of_batch([RECORD, RECORD, TRICKY[1]])[0] == [
        released(RECORD),
        released(RECORD, 1),
        released(TRICKY[1]),
    ]
    assert one(fingerprints_for(8, "trk_a"), RECORD) == released(RECORD, key=b"trk_a")
    assert fingerprint_text(released(RECORD)) == released(RECORD).hex()
    assert type(fingerprints_for(16, None)) is Fingerprints


def test_a_keyed_fingerprint_differs_from_the_plain_one_and_by_key():
    record = {"phone_number": "+12025550143", "list_number": "+18005550100"}
    prints = {one(Fingerprints(key), record) for key in (None, "trk_a", "trk_b")}
    assert len(prints) == 3
    assert one(Fingerprints("trk_a"), record) == one(Fingerprints("trk_a"), record)  # stable for a key


def test_a_rerun_numbers_copies_as_the_first_run_did_and_flags_what_the_partition_holds():
    """
    A rerun meets the partition's confirmed fingerprints (``known``): each is flagged there, not kept
    again, and copies are numbered exactly as the first run numbered them, in any batches.
    """
    records = [RECORD, TRICKY[0], RECORD, TRICKY[1], RECORD]
    first = Fingerprints()
    given = first.of_batch(records[:2])[0] + first.of_batch(records[2:])[0]
    known = FingerprintSet.of_packed(16, b"".join(given[:4]))  # the last copy was not confirmed
    rerun = Fingerprints(known=known)
    again = []
    held = []
    for part in ([records[0]], records[1:4], [records[4]]):
        prints, in_known = rerun.of_batch(part)
        again += prints
        held += in_known.tolist()
    assert again == given
    assert held == [True, True, True, True, False]
    assert len(rerun._seen) == 1  # only the one the partition did not hold

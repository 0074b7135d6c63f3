"""Texts bounded as the rejects table's columns count them (database/rejects.py)."""

from __future__ import annotations

from trackly_provider.database.rejects import MESSAGE_ID_LIMIT, safe_text


def test_on_other_databases_texts_are_bounded_in_utf8_bytes_as_their_varchars_may_count():
    """No such database here: the bound is checked on the texts, as they would be sent."""
    cut = safe_text("\u00e9" * 200, MESSAGE_ID_LIMIT, count_bytes=True)
    assert cut == "\u00e9" * 126 + "\u2026"  # 252 + 3 bytes
    assert len(cut.encode()) == 255
    assert safe_text("m" * 255, MESSAGE_ID_LIMIT, count_bytes=True) == "m" * 255

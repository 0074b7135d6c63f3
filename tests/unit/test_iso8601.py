"""ISO 8601 parsing that behaves like Python 3.11's fromisoformat on Python 3.10 too."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from trackly_provider.trackly_api.iso8601 import _parse_on_python_310, parse_iso_datetime

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-15", datetime(2025, 11, 15)),
        ("2025-11-15 14:35", datetime(2025, 11, 15, 14, 35)),
        ("2025-11-15T14:35:22", datetime(2025, 11, 15, 14, 35, 22)),
        ("2025-11-15T14:35:22Z", datetime(2025, 11, 15, 14, 35, 22, tzinfo=UTC)),
        ("2025-11-15 14:35:22+00", datetime(2025, 11, 15, 14, 35, 22, tzinfo=UTC)),  # PostgreSQL text
        ("2025-11-15 14:35:22.5+00", datetime(2025, 11, 15, 14, 35, 22, 500000, tzinfo=UTC)),
        ("2025-11-15T14:35:22.1234567", datetime(2025, 11, 15, 14, 35, 22, 123456)),
        (
            "2025-11-15T14:35:22-0530",
            datetime(2025, 11, 15, 14, 35, 22, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        (
            "2025-11-15T14:35:22+05:30",
            datetime(2025, 11, 15, 14, 35, 22, tzinfo=timezone(timedelta(hours=5.5))),
        ),
    ],
)
def test_the_forms_sources_produce_parse_the_same_on_every_python(text, expected):
    assert _parse_on_python_310(text) == expected
    assert parse_iso_datetime(text) == expected


@pytest.mark.parametrize(
    "text", ["15/11/2025", "2025-11-15T14:35:22 UTC", "2025-13-01", "", "2025-11-15T25:00"]
)
def test_text_that_is_not_iso_8601_is_refused_on_every_python(text):
    with pytest.raises(ValueError):
        _parse_on_python_310(text)
    with pytest.raises(ValueError):
        parse_iso_datetime(text)

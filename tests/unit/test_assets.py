"""The Asset of each history endpoint, named as the lineage names it (utils/assets.py)."""

from __future__ import annotations

from trackly_provider.utils.assets import history_asset

CLICKS_URI = "trackly://app.tracklysms.com/history/clicks"


def test_the_asset_names_the_endpoint_as_the_lineage_does():
    assert history_asset("clicks").uri == CLICKS_URI
    assert (
        history_asset("revenue", "http://127.0.0.1:8000/").uri == "trackly://127.0.0.1:8000/history/revenue"
    )
    assert history_asset("sends", "eu.tracklysms.com").uri == "trackly://eu.tracklysms.com/history/sends"

"""A pooled request body sent whole over real HTTP in equal pieces (trackly_api/request_bodies.py)."""

from __future__ import annotations

from tests.unit.test_trackly import RECORD
from trackly_provider.hooks.trackly import TracklyHook
from trackly_provider.trackly_api.entities import CLICKS
from trackly_provider.trackly_api.request_bodies import SEND_PIECE, BodyBuffers
from trackly_provider.trackly_api.results import encode_records


def test_a_pooled_body_reaches_the_sandbox_whole_over_real_http(sandbox):
    """More than one piece, with a Content-Length: the sandbox (no chunked decoding) stores every record."""
    records = [{**RECORD, "message_id": f"msg-{n:04d}"} for n in range(1000)]
    body = encode_records(records)
    assert len(body) > 3 * SEND_PIECE
    view, _ = BodyBuffers().hold(body)
    hook = TracklyHook()
    try:
        result = hook.import_encoded(CLICKS, view, len(records))
        again = hook.import_encoded(CLICKS, view, len(records))  # the same view can be sent again
    finally:
        hook.close()
    assert (result.success_count, result.error_count, result.duplicates_skipped) == (1000, 0, 0)
    assert (again.success_count, again.duplicates_skipped) == (0, 1000)
    assert sandbox.requests()[0] == records
    assert sorted(sandbox.stored()) == [record["message_id"] for record in records]

"""Pooled request bodies: reused buffers, read-only views, equal pieces (trackly_api/request_bodies.py)."""

from __future__ import annotations

import pytest

from trackly_provider.trackly_api.request_bodies import BUFFER_STEP, SEND_PIECE, BodyBuffers, send_pieces


def test_a_body_is_held_in_a_read_only_copy():
    view, buffer = BodyBuffers().hold(b'{"records":[]}')
    assert bytes(view) == b'{"records":[]}'
    assert view.readonly
    assert len(buffer) == BUFFER_STEP


def test_a_buffer_given_back_is_reused_and_one_in_use_is_not():
    buffers = BodyBuffers()
    _, first = buffers.hold(b"a" * 1000)
    view, second = buffers.hold(b"b" * 10)
    assert second is not first  # first is still in use
    buffers.give_back(first)
    reused_view, reused = buffers.hold(b"c" * 20)
    assert reused is first
    assert bytes(reused_view) == b"c" * 20
    assert bytes(view) == b"b" * 10  # untouched by the reuse of another buffer


def test_a_body_larger_than_a_buffer_gets_a_buffer_of_whole_steps():
    buffers = BodyBuffers()
    _, small = buffers.hold(b"x")
    buffers.give_back(small)
    body = bytes(range(256)) * (BUFFER_STEP // 256 + 1)  # one step and 256 bytes
    view, large = buffers.hold(body)
    assert len(large) == 2 * BUFFER_STEP
    assert bytes(view) == body


@pytest.mark.parametrize("size", [1, SEND_PIECE, SEND_PIECE + 1, 3 * SEND_PIECE - 7])
def test_send_pieces_are_the_body_in_order_none_longer_than_a_piece(size):
    body = bytes(n % 251 for n in range(size))
    pieces = list(send_pieces(memoryview(body)))
    assert b"".join(pieces) == body
    assert all(len(piece) == SEND_PIECE for piece in pieces[:-1])
    assert 0 < len(pieces[-1]) <= SEND_PIECE

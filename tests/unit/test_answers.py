"""
How much of an answer is read: gzip and deflate bodies inflated within a bound, chunk by chunk
(hooks/network/answers.py). Real servers: tests/integration/test_bounded_answers.py.
"""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Iterator

import httpx
import pytest

from trackly_provider.hooks.network.answers import UnreadableEncoding, _inflate, _inflater, read_answer


def _streamed(chunks: list[bytes], encoding: str, consumed: list[int]) -> httpx.Response:
    def chunks_read() -> Iterator[bytes]:
        for chunk in chunks:
            consumed.append(len(chunk))
            yield chunk

    return httpx.Response(200, headers={"content-encoding": encoding}, content=chunks_read())


def test_a_gzip_bomb_is_inflated_one_byte_past_the_limit_and_read_no_further():
    bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)  # about 250 KB of gzip
    chunks = [bomb[i : i + 65_536] for i in range(0, len(bomb), 65_536)]  # httpcore reads 64 KiB
    consumed: list[int] = []
    tracemalloc.start()
    try:
        body, complete = read_answer(_streamed(chunks, "gzip", consumed), 1_048_576)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(body), complete) == (1_048_576, False)
    assert consumed == [65_536]  # 1 MiB of zeros inflates from the first chunk: the rest is never read
    assert peak < 8 * 1_048_576  # the body and its copy; one 64 KiB chunk inflated whole is 64 MiB


def test_an_answer_within_the_limit_is_read_whole_in_each_encoding():
    text = b'{"lists": []}' * 100
    for encoding, data in [
        ("gzip", gzip.compress(text)),
        ("deflate", zlib.compress(text)),
        ("identity", text),
        ("", text),
    ]:
        chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
        assert read_answer(_streamed(chunks, encoding, []), len(text)) == (text, True)
    assert read_answer(_streamed([text], "identity", []), len(text) - 1) == (text[:-1], False)


def test_an_encoding_not_asked_for_is_refused_by_name():
    with pytest.raises(UnreadableEncoding, match="Content-Encoding 'br'"):
        read_answer(_streamed([b"x"], "br", []), 100)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # no zlib header or checksum
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 65_536])
def test_a_raw_deflate_body_without_zlib_header_is_inflated(chunk_size):
    text = b'{"lists": []}' * 100
    data = _raw_deflate(text)
    assert data[:2] != zlib.compress(text)[:2]  # truly headerless
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    assert read_answer(_streamed(chunks, "deflate", []), len(text)) == (text, True)


def test_a_raw_deflate_bomb_is_inflated_one_byte_past_the_limit_and_read_no_further():
    bomb = _raw_deflate(b"\0" * (256 * 1024 * 1024))
    chunks = [bomb[i : i + 65_536] for i in range(0, len(bomb), 65_536)]
    consumed: list[int] = []
    tracemalloc.start()
    try:
        body, complete = read_answer(_streamed(chunks, "deflate", consumed), 1_048_576)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(body), complete) == (1_048_576, False)
    assert consumed == [65_536]
    assert peak < 8 * 1_048_576


@pytest.mark.parametrize("chunk_size", [1, 5, 65_536])
def test_every_member_of_a_multi_member_gzip_body_is_inflated(chunk_size):
    first, second, third = b'{"lists": ', b'[{"id": "l1"}]' * 50, b"}"
    data = gzip.compress(first) + gzip.compress(second) + b"\0\0\0" + gzip.compress(third)
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    whole = first + second + third
    assert read_answer(_streamed(chunks, "gzip", []), len(whole)) == (whole, True)


def test_a_multi_member_gzip_bomb_is_bounded_across_its_members():
    member = gzip.compress(b"\0" * (512 * 1024), compresslevel=9)  # about 500 bytes each
    data = member * 2048  # 1 GiB once inflated, about 1 MB of gzip
    chunks = [data[i : i + 65_536] for i in range(0, len(data), 65_536)]
    consumed: list[int] = []
    tracemalloc.start()
    try:
        body, complete = read_answer(_streamed(chunks, "gzip", consumed), 1_048_576)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(body), complete) == (1_048_576, False)
    assert consumed == [65_536]  # the first chunk's members pass the limit: the rest is never read
    assert peak < 8 * 1_048_576  # the first chunk's members inflated whole would be about 64 MiB


def test_one_inflation_step_yields_exactly_its_room_across_gzip_members_and_pieces():
    """The bound read_answer relies on (its own result is cut to the limit, so it cannot show this)."""
    member = gzip.compress(b"\0" * 512 * 1024)
    in_one_piece = _inflate(_inflater("gzip"), [member * 3], 700_000)
    in_pieces = _inflate(_inflater("gzip"), [member, member, member], 700_000)
    assert sum(map(len, in_one_piece)) == sum(map(len, in_pieces)) == 700_000


def test_bytes_after_the_last_gzip_member_that_are_not_gzip_are_dropped():
    text = b'{"lists": []}'
    data = gzip.compress(text) + b"<html>proxy footer</html>"
    assert read_answer(_streamed([data], "gzip", []), 1000) == (text, True)


def test_a_corrupt_first_gzip_member_still_fails():
    with pytest.raises(zlib.error):
        read_answer(_streamed([b"\x1f\x8bnot gzip at all"], "gzip", []), 1000)

"""Give the C heap's freed memory back to the operating system (glibc's ``malloc_trim``)."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)  # glibc only: not on musl, macOS or Windows
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """
    Return the heap's free pages to the OS; False where the C library cannot (nothing is done).

    Each batch's JSON is still encoded into a new ~150 KB block before it is copied into a pooled
    buffer (request_bodies.py), and glibc keeps freed space in its heaps, so the resident size can
    drift during a long import though nothing is kept (docs/performance.md). Trimming now and then
    bounds that drift.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

"""release_freed_memory: the C heap's free pages really go back to the OS (glibc only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trackly_provider.operators._engine.native_memory import release_freed_memory

# 2,000 blocks of 64 KiB (under glibc's mmap threshold, so they live in the heap), all freed but the
# last, which pins the heap's top: glibc's own trimming cannot give the 125 MiB below it back.
FRAGMENTED_HEAP = """
import json, os
from trackly_provider.operators._engine.native_memory import release_freed_memory

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

blocks = [bytes(64 * 1024 - 64) for _ in range(2000)]
pin = blocks[-1]
del blocks
freed = rss_mib()
released = release_freed_memory()
print(json.dumps({"freed": freed, "trimmed": rss_mib(), "released": released}))
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; glibc is the C library to trim"
)
def test_freed_heap_memory_goes_back_to_the_os():
    import json

    done = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, check=True)
    # The last line: importing the operators package loads Airflow, whose 3.0 may log to stdout first.
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["released"] is True
    assert measured["freed"] > 80, measured  # glibc kept the freed blocks
    assert measured["trimmed"] < measured["freed"] - 60, measured


def test_it_is_safe_to_call_often():
    assert all(release_freed_memory() for _ in range(1000))

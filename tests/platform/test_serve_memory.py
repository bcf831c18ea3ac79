"""The server's memory housekeeping (platform/serve_memory.py): freed memory that glibc
parks in its heaps is given back to the system once there is more than the threshold."""
from __future__ import annotations

import sys

import pytest

from zhongshu.platform import serve_memory

pytestmark = pytest.mark.skipif(serve_memory.free_heap_bytes() is None or not sys.platform.startswith("linux"),
                                reason="glibc only")


def _park_free_memory(mb: int) -> None:
    # Many objects above pymalloc's 512-byte limit, freed with a survivor between each pair,
    # so that the heap cannot shrink from its top: the shape a bulk insert leaves behind.
    keep, junk = [], []
    for i in range(mb * 256):
        junk.append(bytearray(4000))
        if i % 2:
            keep.append(bytearray(600))
    del junk
    _park_free_memory.keep = keep  # the survivors outlive the call


def test_parked_free_memory_is_given_back_and_little_is_left_alone():
    trimmer = serve_memory.Trimmer(threshold_mb=16)
    trimmer.check()  # whatever this process parked before the test (a long test run fragments)
    trims = trimmer.trims
    assert trimmer.check() is False  # nothing new worth a trim: a fragmented rest is left alone
    assert trimmer.check() is False
    _park_free_memory(64)
    assert serve_memory.free_heap_bytes() > 32 * 1024 * 1024, "the test did not park free memory"
    assert trimmer.check() is True
    assert trimmer.trims == trims + 1
    assert trimmer.check() is False  # given back: the next look has nothing to do
    _park_free_memory.keep = None


def test_rss_drops_when_parked_memory_is_trimmed():
    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    serve_memory.trim()
    _park_free_memory(64)
    before = rss_mb()
    assert serve_memory.Trimmer(threshold_mb=16).check() is True
    assert rss_mb() < before - 16  # whole free pages of the ~64 MB parked go back
    _park_free_memory.keep = None



def test_memory_used_again_and_freed_again_is_given_back_again():
    # A trim returns the pages but glibc still counts their chunks as free; when requests use
    # that memory again and free it again, it is parked again and must be trimmed again.
    trimmer = serve_memory.Trimmer(threshold_mb=16)
    _park_free_memory(64)
    assert trimmer.check() is True
    assert trimmer.check() is False
    keep, junk = [], []
    for i in range(64 * 256):  # the same shape as _park_free_memory, but still in use
        junk.append(bytearray(4000))
        if i % 2:
            keep.append(bytearray(600))
    assert trimmer.check() is False  # in use: nothing to give back
    del junk
    assert trimmer.check() is True
    assert trimmer.trims == 2
    _park_free_memory.keep = None

"""Resident memory of the long-running server (``zhongshu serve``).

CPython hands objects larger than 512 bytes (a record's dict, a 5,000-record body, the SQL
parameters of a bulk insert) to glibc's malloc. glibc keeps what is freed in its heaps, one
heap ("arena") per thread that allocated, up to 8 per core, and gives pages back only from a
heap's top. After a benchmark of 100,000 inserted rows and a few thousand reads the server held
210-230 MB, of which ``malloc_trim`` could return 65 MB: free memory, parked.

Two measures, both for the server process only (tests and the CLI are untouched):

* at most ``MALLOC_ARENAS`` (2) heaps for all threads (``mallopt(M_ARENA_MAX)``, the same as
  the ``MALLOC_ARENA_MAX`` environment variable, which wins when it is set): waitress' 8
  threads, the worker and the scheduler then share their free memory instead of each parking
  its own;
* a housekeeping thread that looks every ``interval`` seconds at how much freed memory glibc
  holds (``mallinfo2``, microseconds) and calls ``malloc_trim(0)`` when it is more than
  ``threshold_mb``. Trimming costs a few milliseconds and runs beside the requests (ctypes
  releases the GIL), never inside one.

Elsewhere than glibc (musl, macOS) both are no-ops.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

from .memory import trim

log = logging.getLogger("zhongshu.memory")
M_ARENA_MAX = -8
MALLOC_ARENAS = 2


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018  (glibc only)
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def limit_arenas(n: int = MALLOC_ARENAS) -> bool:
    """At most ``n`` malloc heaps for the process's threads; call before starting threads."""
    if _LIBC is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, n))


def free_heap_bytes() -> int | None:
    """Bytes that glibc holds free in its heaps (returned to the system by ``malloc_trim``)."""
    if _LIBC is None:
        return None
    return int(_LIBC.mallinfo2().fordblks)


class Trimmer:
    """Returns parked free memory to the system when there is more than ``threshold_mb``."""

    def __init__(self, interval: float = 2.0, threshold_mb: float = 8.0):
        self.interval, self.threshold = interval, int(threshold_mb * 1024 * 1024)
        self.trims = 0
        self._left = 0  # least free bytes seen since the last trim (what it could not give back)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        """One look; True when it trimmed."""
        free = free_heap_bytes()
        # Measured against the least free memory seen since the last trim: free chunks smaller
        # than a page stay counted as free after a trim, so a fragmented heap would otherwise
        # be trimmed on every look, for nothing; and once those chunks are reused, memory
        # freed later counts from there.
        if free is None:
            return False
        self._left = min(self._left, free)
        if free - self._left < self.threshold:
            return False
        trim()
        self._left = free_heap_bytes() or 0
        self.trims += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception as e:  # housekeeping must never take the server down
                log.warning("memory housekeeping failed: %s", e)
                return

    def start(self) -> "Trimmer":
        if _LIBC is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="zs-malloc-trim", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

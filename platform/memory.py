"""Giving memory back after big requests.

A bulk insert of 5,000 records or an Excel import parses tens of megabytes of objects. CPython
frees them, but glibc keeps the freed pages in its heaps (one per thread that allocated), so
a long-running server's resident size only grows. ``malloc_trim(0)`` returns the free pages to
the system; it costs a few milliseconds, so it runs only after requests with a large body.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading

BIG_REQUEST_BYTES = 512 * 1024

_trim = None
try:  # glibc only; elsewhere this is a no-op
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = _libc.malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):
    _trim = None

_lock = threading.Lock()


def trim() -> bool:
    """Returns free heap pages to the operating system; False where that is not possible."""
    if _trim is None:
        return False
    if not _lock.acquire(blocking=False):
        return True  # another thread is trimming right now
    try:
        _trim(0)
    finally:
        _lock.release()
    return True


def install(app) -> None:
    @app.teardown_request
    def _trim_after_big_request(_exc):
        from flask import request

        if (request.content_length or 0) >= BIG_REQUEST_BYTES:
            trim()

"""Overload guard: shed API writes early when the order pipeline is behind.

When the outbox's due priority-0 backlog (order processing) or the inbox's unprocessed
backlog is above its threshold, API **write** requests (POST/PUT/PATCH/DELETE under
``/api/v1``) answer ``503`` with ``Retry-After`` at once, instead of queueing behind the
backlog and timing out. Reads keep working, and so does webhook intake
(``/api/v1/hooks/...``): it only writes the raw inbox, which is what absorbs a burst.
Nothing already accepted is affected; workers keep draining (and defer non-core work,
see the worker's and the relay's overload policy).

Optionally, ``TOKEN_RATE_LIMIT`` caps requests per second per API token in each web
process (a token bucket with a burst of twice the rate): excess requests get ``429`` with
``Retry-After``.

The backlog is measured with two ``count(*)`` of at most ``threshold + 1`` index rows and
cached for ``OVERLOAD_CACHE_SECONDS`` (1 s) per process, so the guard costs nothing
measurable per request. If the measurement itself fails, requests pass (fail open): the
database error will surface in the request itself.

Settings (config.json, ``ZHONGSHU_<KEY>`` environment variables, or ``create_app``):

=============================  =======  ==============================================
``OVERLOAD_OUTBOX_THRESHOLD``   5000    due priority-0 outbox jobs; 0 turns the check off
``OVERLOAD_INBOX_THRESHOLD``    5000    inbox rows not yet processed; 0 turns it off
``OVERLOAD_RETRY_AFTER``        5       seconds, sent in ``Retry-After``
``OVERLOAD_CACHE_SECONDS``      1       how long one measurement is reused
``TOKEN_RATE_LIMIT``            0       requests/s per API token and process; 0 = off
=============================  =======  ==============================================
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time

from flask import jsonify, request
from sqlalchemy import func, select

log = logging.getLogger("zhongshu.overload")

DEFAULTS = {"OVERLOAD_OUTBOX_THRESHOLD": 5000, "OVERLOAD_INBOX_THRESHOLD": 5000, "OVERLOAD_RETRY_AFTER": 5,
            "OVERLOAD_CACHE_SECONDS": 1.0, "TOKEN_RATE_LIMIT": 0.0}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
#: write routes that are never shed: intake (raw inbox only), login/logout, public pages
EXEMPT_PREFIXES = ("/api/v1/hooks/", "/api/v1/auth/", "/api/v1/public/")


def setting(cfg, key: str):
    value = cfg.get(key)
    if value is None or value == "":
        value = os.environ.get("ZHONGSHU_" + key, DEFAULTS[key])
    return float(value) if isinstance(DEFAULTS[key], float) else int(value)


class Backlog:
    """Cached backlog measurement: ``(urgent_outbox, inbox)`` capped at threshold + 1."""

    def __init__(self, platform, outbox_threshold: int, inbox_threshold: int, ttl: float):
        self.platform = platform
        self.outbox_threshold, self.inbox_threshold, self.ttl = outbox_threshold, inbox_threshold, ttl
        self._value = (0, 0)
        self._at = -1e9
        self._lock = threading.Lock()

    def measure(self) -> tuple[int, int]:
        from zhongshu.platform.models import utcnow
        from zhongshu.runtime.models import InboxEvent, OutboxJob

        O, I = OutboxJob.__table__.c, InboxEvent.__table__.c
        urgent = inbox = 0
        with self.platform.engine.connect() as conn:
            if self.outbox_threshold:
                sub = select(O.id).where(O.status == "pending", O.priority <= 0, O.run_at <= utcnow()) \
                    .limit(self.outbox_threshold + 1).subquery()
                urgent = conn.execute(select(func.count()).select_from(sub)).scalar()
            if self.inbox_threshold:
                sub = select(I.id).where(I.status == "received").limit(self.inbox_threshold + 1).subquery()
                inbox = conn.execute(select(func.count()).select_from(sub)).scalar()
        return urgent, inbox

    def get(self) -> tuple[int, int]:
        now = time.monotonic()
        if now - self._at < self.ttl:
            return self._value
        if not self._lock.acquire(blocking=False):
            return self._value  # another thread is measuring: use the last value
        try:
            self._value = self.measure()
        except Exception as e:  # noqa: BLE001 - fail open
            log.warning("overload guard: cannot measure the backlog: %s", e)
            self._value = (0, 0)
        finally:
            self._at = time.monotonic()
            self._lock.release()
        return self._value

    def overloaded(self) -> str | None:
        urgent, inbox = self.get()
        if self.outbox_threshold and urgent > self.outbox_threshold:
            return f"more than {self.outbox_threshold} orders are waiting to be processed"
        if self.inbox_threshold and inbox > self.inbox_threshold:
            return f"more than {self.inbox_threshold} received events are waiting to be processed"
        return None


class TokenBuckets:
    def __init__(self, rate: float):
        self.rate, self.burst = rate, max(1.0, 2 * rate)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when allowed, else seconds until a request would be."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                if len(self._buckets) > 10000:
                    self._buckets.clear()
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


def _refuse(status: int, code: str, en: str, zh: str, retry_after: float):
    resp = jsonify({"error": {"code": code, "message": en, "message_zh": zh}})
    resp.status_code = status
    resp.headers["Retry-After"] = str(max(1, int(round(retry_after))))
    resp.headers["Cache-Control"] = "no-store"
    return resp


def install(app) -> None:
    """Registers the guard on ``app`` (runs before any blueprint's own hooks)."""
    cfg = app.config
    zs = app.extensions["zhongshu"]
    backlog = Backlog(zs, setting(cfg, "OVERLOAD_OUTBOX_THRESHOLD"), setting(cfg, "OVERLOAD_INBOX_THRESHOLD"),
                      setting(cfg, "OVERLOAD_CACHE_SECONDS"))
    retry_after = setting(cfg, "OVERLOAD_RETRY_AFTER")
    rate = setting(cfg, "TOKEN_RATE_LIMIT")
    buckets = TokenBuckets(rate) if rate > 0 else None
    app.extensions["zhongshu_overload"] = backlog

    @app.before_request
    def _overload_guard():
        path = request.path
        if not path.startswith("/api/v1/") or path.startswith(EXEMPT_PREFIXES):
            return None
        if buckets is not None:
            auth = request.headers.get("Authorization", "")
            if auth[:7].lower() == "bearer ":
                wait = buckets.take(hashlib.sha256(auth.encode()).hexdigest())
                if wait:
                    return _refuse(429, "rate_limited", "too many requests for this API token; slow down",
                                   "该令牌请求过于频繁，请稍后再试", wait)
        if request.method in WRITE_METHODS and (backlog.outbox_threshold or backlog.inbox_threshold):
            reason = backlog.overloaded()
            if reason:
                return _refuse(503, "overloaded", f"the order hub is busy ({reason}); please retry shortly",
                               "订单中枢繁忙（待处理订单积压），请稍后重试", retry_after)
        return None

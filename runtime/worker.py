"""The outbox worker: claims due jobs, runs their handlers, records the outcome.

Delivery is **at least once**. A job is claimed (``status='running'``, ``locked_by``,
``locked_until = now + lease``) in one short transaction, its handler runs outside any
transaction of the worker, and the outcome is written in another short transaction. A
worker that dies between claim and outcome leaves the job ``running`` with a lease that
expires; the job is then claimable again (by any worker) and runs a second time. Handlers
make their effects idempotent with ``JobContext.idempotency_key`` (send it as the remote
idempotency key, or insert keyed by it with ON CONFLICT DO NOTHING).

Claiming:

* PostgreSQL: ``SELECT id ... FOR UPDATE SKIP LOCKED`` then ``UPDATE ... RETURNING`` in the
  same transaction, so concurrent workers never claim the same job and never wait on
  each other's rows.
* SQLite: one ``UPDATE ... WHERE id IN (SELECT ...) AND <still due> RETURNING`` inside a
  ``BEGIN IMMEDIATE`` transaction (SQLite has a single writer anyway).

``attempts`` counts claims (it is incremented when a job is claimed), so a job whose
handler kills its worker every time still reaches ``max_attempts`` and is dead-lettered
instead of looping forever.

Outcomes:

* the handler returns -> ``done`` with ``result`` and ``finished_at``;
* it raises -> :func:`zhongshu.connectors.api.errors.classify` decides: ``retry`` ->
  ``pending`` again at ``now + backoff_delay(attempts, retry_after)``; ``dead_letter`` /
  ``reject``, or ``attempts >= max_attempts`` -> ``dead`` with ``last_error``;
* no handler registered for the kind -> ``dead`` ("no handler for kind ...").

Priorities (0 = order processing ... 9 = deferrable): jobs are claimed by priority, then
``run_at``. Overload policy: when more than ``overload_threshold`` priority-0 jobs are due,
a pass claims only priority-0 jobs, and everything of lower priority waits until that
backlog is down to the threshold. ``max_priority`` caps what one worker ever claims
(e.g. a dedicated order-processing worker with ``max_priority=0``).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import and_, func, or_, select, update

from zhongshu.connectors.api.errors import backoff_delay, classify
from zhongshu.platform.db import writer
from zhongshu.platform.models import utcnow

from .models import OutboxJob
from .outbox import HANDLERS, PRIORITY_ORDER, JobContext
from .wakeup import MIN_PASS_GAP, describe, jobs_committed, listener

log = logging.getLogger("zhongshu.worker")

T = OutboxJob.__table__
C = T.c

#: longest ``last_error`` kept (tracebacks of unexpected errors are cut to this)
MAX_ERROR_CHARS = 4000


def default_name() -> str:
    """``host:pid:short-uuid``: unique per worker, readable in ``locked_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _jsonable(value):
    """The handler's result as something the JSON column can store."""
    if value is None:
        return None
    if not isinstance(value, dict):
        value = {"value": value}
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return {"value": repr(value)[:MAX_ERROR_CHARS]}


class Worker:
    """Runs outbox jobs. One ``Worker`` is one sequential consumer; run several (threads
    or processes) for concurrency — claiming is safe between them.

    ``clock`` returns naive UTC (like :func:`zhongshu.platform.models.utcnow`); tests pass
    their own to make time pass without sleeping.
    """

    def __init__(self, platform, name: str | None = None, kinds: Iterable[str] | None = None, batch: int = 20,
                 lease_seconds: float = 60, *, max_priority: int | None = None, overload_threshold: int = 0,
                 clock: Callable[[], datetime] = utcnow, handlers: dict | None = None):
        self.platform = platform
        self.name = (name or default_name())[:100]
        self.kinds = sorted(set(kinds)) if kinds else None
        self.batch = max(1, int(batch))
        self.lease = timedelta(seconds=lease_seconds)
        self.max_priority = max_priority
        self.overload_threshold = max(0, int(overload_threshold))
        self.clock = clock
        self.handlers = HANDLERS if handlers is None else handlers
        self._engine = writer(platform.engine)
        self._pg = platform.dialect == "postgresql"

    # -- claiming -------------------------------------------------------------------------
    def _due(self, now: datetime):
        """Pending and due, or running with an expired lease (its worker died)."""
        cond = or_(and_(C.status == "pending", C.run_at <= now),
                   and_(C.status == "running", C.locked_until < now))
        if self.kinds is not None:
            cond = and_(cond, C.kind.in_(self.kinds))
        return cond

    def _priority_cap(self, conn, now: datetime) -> int | None:
        cap = self.max_priority
        if cap is not None and cap <= PRIORITY_ORDER:
            return cap
        # Overload: a deep backlog of priority-0 work makes everything else wait.
        urgent = select(C.id).where(self._due(now), C.priority <= PRIORITY_ORDER).limit(self.overload_threshold + 1)
        n = conn.execute(select(func.count()).select_from(urgent.subquery())).scalar()
        if n > self.overload_threshold:
            return PRIORITY_ORDER
        return cap

    def claim(self, limit: int | None = None) -> list[dict]:
        """Claims up to ``limit`` (default ``batch``) due jobs for this worker."""
        now = self.clock()
        limit = min(self.batch, limit) if limit else self.batch
        if not self._pg:
            # SQLite has one writer: look (read-only, no lock) before taking the write lock
            with self.platform.engine.connect() as conn:
                if conn.execute(select(C.id).where(self._due(now)).limit(1)).first() is None:
                    return []
        with self._engine.begin() as conn:
            cond = self._due(now)
            cap = self._priority_cap(conn, now)
            if cap is not None:
                cond = and_(cond, C.priority <= cap)
            pick = select(C.id).where(cond).order_by(C.priority, C.run_at, C.id).limit(limit)
            values = dict(status="running", locked_by=self.name, locked_until=now + self.lease,
                          attempts=C.attempts + 1)
            ret = (C.id, C.tenant_id, C.kind, C.payload, C.idempotency_key, C.attempts, C.max_attempts, C.priority,
                   C.run_at)
            if self._pg:
                ids = conn.execute(pick.with_for_update(skip_locked=True)).scalars().all()
                if not ids:
                    return []
                stmt = update(T).where(C.id.in_(ids)).values(**values).returning(*ret)
            else:
                stmt = update(T).where(C.id.in_(pick.scalar_subquery()), self._due(now)).values(**values).returning(*ret)
            rows = [dict(r._mapping) for r in conn.execute(stmt)]
        rows.sort(key=lambda r: (r["priority"], r["run_at"], r["id"]))
        return rows

    # -- running --------------------------------------------------------------------------
    def run_once(self, max_jobs: int | None = None) -> int:
        """Claims one batch of due jobs and runs them; returns how many were run."""
        jobs = self.claim(max_jobs)
        for job in jobs:
            self._run(job)
        return len(jobs)

    def _run(self, job: dict) -> None:
        fn = self.handlers.get(job["kind"])
        if fn is None:
            self._finish(job, status="dead", last_error=f"no handler is registered for the job kind '{job['kind']}' "
                                                        f"(is the module that registers it imported by this worker?)")
            log.error("outbox job %s: no handler for kind %r; dead-lettered", job["id"], job["kind"])
            return
        if job["attempts"] > job["max_attempts"]:
            # Claimed again after its worker died on the last allowed attempt.
            self._finish(job, status="dead", last_error=f"gave up after {job['max_attempts']} attempts "
                                                        "(the worker running the last one stopped before it finished)")
            return
        ctx = JobContext(platform=self.platform, job_id=job["id"], tenant_id=job["tenant_id"], attempt=job["attempts"],
                         idempotency_key=job["idempotency_key"])
        started = time.monotonic()
        try:
            result = fn(ctx, dict(job["payload"] or {}))
        except Exception as exc:  # a handler's failure never stops the worker
            self._failed(job, exc)
            return
        self._finish(job, status="done", result=_jsonable(result))
        jobs_committed(self.platform)  # the handler may have enqueued jobs: wake their consumers
        log.debug("outbox job %s (%s) done in %.1f ms", job["id"], job["kind"], (time.monotonic() - started) * 1000)

    def _failed(self, job: dict, exc: Exception) -> None:
        d = classify(exc)
        if d.unexpected:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
            message = f"{d.message}\n{tb}"[:MAX_ERROR_CHARS]
            log.warning("outbox job %s (%s) attempt %s failed unexpectedly: %s", job["id"], job["kind"],
                        job["attempts"], d.message, exc_info=exc)
        else:
            message = d.message[:MAX_ERROR_CHARS]
            log.info("outbox job %s (%s) attempt %s failed (%s): %s", job["id"], job["kind"], job["attempts"],
                     d.action, d.message)
        if d.action == "retry" and job["attempts"] < job["max_attempts"]:
            delay = backoff_delay(job["attempts"], retry_after=d.retry_after)
            self._finish(job, status="pending", last_error=message, run_at=self.clock() + timedelta(seconds=delay))
        else:
            if d.action == "retry":
                message = f"gave up after {job['attempts']} attempts: {message}"[:MAX_ERROR_CHARS]
            self._finish(job, status="dead", last_error=message)

    def _finish(self, job: dict, *, status: str, result=None, last_error: str | None = None,
                run_at: datetime | None = None) -> None:
        values: dict = dict(status=status, locked_by=None, locked_until=None)
        if status == "done":
            values.update(result=result, finished_at=self.clock())
        elif status == "dead":
            values.update(last_error=last_error, finished_at=self.clock())
        else:
            values.update(last_error=last_error, run_at=run_at)
        # Only while the job is still ours: if our lease expired and another worker
        # claimed it, that worker records the outcome.
        stmt = update(T).where(C.id == job["id"], C.status == "running", C.locked_by == self.name).values(**values)
        for attempt in range(5):
            try:
                with self._engine.begin() as conn:
                    n = conn.execute(stmt).rowcount
                break
            except Exception:  # database hiccup: the lease will hand the job to someone else otherwise
                if attempt == 4:
                    log.exception("outbox job %s: could not record the outcome %s", job["id"], status)
                    return
                time.sleep(0.2 * (attempt + 1))
        if not n:
            log.warning("outbox job %s: lease lost before the outcome %s was recorded (another worker has it)",
                        job["id"], status)

    # -- loops ----------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event, poll: float = 0.5) -> None:
        """Runs until ``stop`` is set: back-to-back batches while there is work; when idle,
        waits for a wake-up (PostgreSQL NOTIFY, runtime/wakeup.py) or ``poll`` seconds,
        whichever comes first. Database errors are logged and retried with a pause."""
        wake = listener(self.platform)
        log.info("outbox worker %s started (kinds: %s, wake-ups: %s)", self.name, ",".join(self.kinds or ["all"]),
                 describe(wake))
        pause = poll
        while not stop.is_set():
            seen = wake.generation if wake else 0  # read before claiming: a wake-up during the pass is not lost
            started = time.monotonic()
            try:
                n = self.run_once()
                pause = poll
            except Exception:
                log.exception("outbox worker %s: claiming failed; retrying", self.name)
                n = 0
                pause = min(30.0, max(pause, poll) * 2)
            if n == 0:
                if wake is not None and pause == poll:
                    if wake.wait(seen, pause, stop):  # woken: but not more often than MIN_PASS_GAP
                        stop.wait(max(0.0, started + MIN_PASS_GAP - time.monotonic()))
                else:
                    stop.wait(pause)
        log.info("outbox worker %s stopped", self.name)


def release_expired(platform, now: datetime | None = None) -> int:
    """Puts jobs whose worker's lease expired back to ``pending`` (or ``dead`` when that was
    their last allowed attempt). Workers also claim such jobs directly; this keeps the
    admin view honest. Returns how many rows changed."""
    now = now or utcnow()
    expired = and_(C.status == "running", C.locked_until < now)
    with writer(platform.engine).begin() as conn:
        dead = conn.execute(update(T).where(expired, C.attempts >= C.max_attempts).values(
            status="dead", locked_by=None, locked_until=None, finished_at=now,
            last_error="gave up: the worker running the last attempt stopped before it finished (lease expired)")).rowcount
        back = conn.execute(update(T).where(expired).values(status="pending", locked_by=None, locked_until=None,
                                                          run_at=now)).rowcount
    if dead or back:
        log.info("released %s expired outbox leases (%s dead-lettered)", dead + back, dead)
    return dead + back


def drain(platform, timeout: float = 30.0, **worker_kwargs) -> int:
    """Runs ``run_once`` until nothing is due (jobs retrying later are not due). For tests
    and scripts. Returns the number of jobs run; raises ``TimeoutError`` after ``timeout``."""
    worker_kwargs.setdefault("name", "drain")
    w = Worker(platform, **worker_kwargs)
    deadline = time.monotonic() + timeout
    total = 0
    while True:
        n = w.run_once()
        total += n
        if n == 0:
            return total
        if time.monotonic() > deadline:
            raise TimeoutError(f"outbox still had due jobs after {timeout} s ({total} run)")


def start_in_process(platform, *, concurrency: int = 1, poll: float = 0.5, **worker_kwargs) -> Callable[[], None]:
    """Starts ``concurrency`` worker threads (daemons) in this process and returns a
    function that stops them (also appended to ``platform.stoppers``)."""
    stop_event = threading.Event()
    base = worker_kwargs.pop("name", None) or default_name()
    threads = []
    for i in range(max(1, concurrency)):
        w = Worker(platform, name=base if concurrency == 1 else f"{base}/{i}", **worker_kwargs)
        t = threading.Thread(target=w.run_forever, args=(stop_event, poll), name=f"zhongshu-worker-{i}", daemon=True)
        t.start()
        threads.append(t)

    def stop(timeout: float = 30.0) -> None:
        stop_event.set()
        for t in threads:  # idempotent: a second call returns at once
            t.join(timeout)

    stop.event = stop_event  # type: ignore[attr-defined]
    stop.threads = threads  # type: ignore[attr-defined]
    platform.stoppers.append(stop)
    return stop

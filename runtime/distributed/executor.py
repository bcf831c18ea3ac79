"""Run one outbox job by id: the code path of a Celery task.

:class:`JobExecutor` is a :class:`zhongshu.runtime.worker.Worker`; only *claiming* differs
(one given row instead of "the next due rows"). Running the handler, classifying its
failure, backoff, dead letters and "only the lease holder records the outcome" are the
worker's own methods, so the two execution paths cannot drift apart.
"""
from __future__ import annotations

import logging

from sqlalchemy import and_, select, update

from zhongshu.runtime.worker import C, T, Worker

log = logging.getLogger("zhongshu.distributed.executor")

#: what :meth:`JobExecutor.execute` returns
RAN, SKIPPED = "ran", "skipped"

_RETURNING = (C.id, C.tenant_id, C.kind, C.payload, C.idempotency_key, C.attempts, C.max_attempts, C.priority,
              C.run_at)


class JobExecutor(Worker):
    """Claims a given job (when it is due: pending and ``run_at`` reached, or running with
    an expired lease) with a lease of ``lease_seconds``, and runs it like the worker does."""

    def claim_job(self, job_id: int) -> dict | None:
        now = self.clock()
        cond = and_(C.id == job_id, self._due(now))
        values = dict(status="running", locked_by=self.name, locked_until=now + self.lease, attempts=C.attempts + 1)
        with self._engine.begin() as conn:
            if self._pg:
                # Somebody else holding the row (another delivery of the same task, a
                # relay marking it) means it is not ours to run: skip, never wait.
                got = conn.execute(select(C.id).where(cond).with_for_update(skip_locked=True)).first()
                if got is None:
                    return None
            row = conn.execute(update(T).where(cond).values(**values).returning(*_RETURNING)).first()
        return dict(row._mapping) if row is not None else None

    def execute(self, job_id: int) -> str:
        """Claims and runs job ``job_id``. Returns ``"ran"``, or ``"skipped"`` when the job
        is not due for this delivery (done, dead, retrying later, or held by a live lease:
        a duplicate delivery)."""
        job = self.claim_job(job_id)
        if job is None:
            log.debug("outbox job %s: not claimable (already done, running elsewhere, or not due)", job_id)
            return SKIPPED
        self._run(job)
        return RAN

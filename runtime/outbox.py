"""The transactional outbox: side effects are written as jobs in the same transaction as
the change that caused them, and run later by a worker (runtime/worker.py) with retries,
backoff, idempotency keys and a dead-letter list.

A job kind is handled by one function registered with ``@handler("kind")``; the handler
gets a ``JobContext`` and the job's payload and returns a JSON-able result or raises
(``zhongshu.connectors.api.errors`` decide retry vs dead letter)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from zhongshu.platform.models import utcnow

from .models import OutboxJob

HANDLERS: dict[str, Callable[["JobContext", dict], Any]] = {}

#: priorities: order processing first; analytics and low-priority notices are deferred first
PRIORITY_ORDER, PRIORITY_NOTIFY, PRIORITY_LOW = 0, 5, 9


def handler(kind: str):
    def register(fn):
        HANDLERS[kind] = fn
        return fn

    return register


@dataclass
class JobContext:
    platform: Any  # zhongshu.platform.core.Platform
    job_id: int
    tenant_id: int
    attempt: int
    idempotency_key: str


def enqueue(conn, *, tenant_id: int, kind: str, payload: dict, key: str, priority: int = PRIORITY_NOTIFY,
            run_at: datetime | None = None, max_attempts: int = 8, rule_run_id: int | None = None) -> int | None:
    """Adds a job in the caller's transaction. The same (tenant, key) twice is one job:
    returns the new id, or None when the key was already queued."""
    ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(OutboxJob.__table__)
    now = utcnow()
    stmt = ins.values(tenant_id=tenant_id, kind=kind, payload=payload, idempotency_key=key[:200], status="pending",
                      priority=priority, attempts=0, max_attempts=max_attempts, run_at=run_at or now,
                      rule_run_id=rule_run_id, created_at=now).on_conflict_do_nothing(
        index_elements=["tenant_id", "idempotency_key"]).returning(OutboxJob.__table__.c.id)
    return conn.execute(stmt).scalar()

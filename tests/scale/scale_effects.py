"""A job kind for the multi-node tests: its effect is a row keyed by the idempotency key,
and every execution is logged with the pid that ran it. Imported by the Celery worker
processes through ``--import scale_effects`` (PYTHONPATH=tests/scale). Not a test module."""
from __future__ import annotations

import os
import time

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from zhongshu.runtime.outbox import handler

KIND = "scale.effect"
meta = MetaData()
effects = Table("scale_effects", meta, Column("key", String(200), primary_key=True), Column("job_id", Integer),
                Column("pid", Integer))
executions = Table("scale_effect_runs", meta, Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("key", String(200)), Column("pid", Integer))


@handler(KIND)
def do_effect(ctx, payload):
    engine = ctx.platform.engine
    with engine.begin() as conn:
        conn.execute(executions.insert().values(key=ctx.idempotency_key, pid=os.getpid()))
    if payload.get("sleep"):
        time.sleep(payload["sleep"])
    with engine.begin() as conn:
        conn.execute(pg_insert(effects).values(key=ctx.idempotency_key, job_id=ctx.job_id, pid=os.getpid())
                     .on_conflict_do_nothing())
    return {"key": ctx.idempotency_key}

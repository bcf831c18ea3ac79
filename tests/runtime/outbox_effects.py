"""A job kind whose effect is a row keyed by the idempotency key: used by the worker tests,
also from worker subprocesses (imported through PYTHONPATH). Not a test module."""
from __future__ import annotations

import os
import time

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from zhongshu.runtime.outbox import handler

KIND = "test.effect"
meta = MetaData()
#: one row per effect: a second execution of the same job inserts nothing
effects = Table("test_effects", meta, Column("key", String(200), primary_key=True), Column("job_id", Integer))
#: one row per execution (at-least-once: a re-run after a crash shows up here)
executions = Table("test_effect_runs", meta, Column("id", Integer, primary_key=True, autoincrement=True),
                   Column("key", String(200)), Column("pid", Integer))


def create_tables(engine) -> None:
    meta.create_all(engine)


@handler(KIND)
def do_effect(ctx, payload):
    engine = ctx.platform.engine
    ins = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    with engine.begin() as conn:
        conn.execute(executions.insert().values(key=ctx.idempotency_key, pid=os.getpid()))
    if payload.get("sleep"):
        time.sleep(payload["sleep"])
    with engine.begin() as conn:
        conn.execute(ins(effects).values(key=ctx.idempotency_key, job_id=ctx.job_id).on_conflict_do_nothing())
    return {"key": ctx.idempotency_key}

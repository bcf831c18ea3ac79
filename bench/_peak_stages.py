"""Where a payment's delay goes, and the order proof, read from the database rows.

A :class:`StageSampler` watches the outbox while the payments are sent (every ``every``
seconds) and reads, for each ``inbox.process`` job, when the relay published it (while it
is ``pending`` under a ``relay:`` publish lease: ``locked_until - republish_after``) and
when a worker claimed it (while ``running``: ``locked_until - lease``). Those moments are
gone from the row once the job is done, so the sampler must see each state once; the
times themselves are the ones the relay and the worker wrote. The rest comes from the rows
afterwards: ``inbox.received_at`` (intake), ``outbox.finished_at`` (job done) and the
order's ``paid_visible_at`` (set by the template's rule while processing).

All timestamps are naive UTC written by processes on this machine, so they compare with
the benchmark's own ``time.time()``. A publication shorter than the sampling interval may
be missed (that payment is then left out of the two relay/broker steps).
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from sqlalchemy import text

STEPS = ("intake (sent → stored)", "relay pickup (stored → published)", "broker+worker (published → claimed)",
         "pickup total (stored → claimed)", "rules until paid_visible_at (claimed → set)",
         "processing (claimed → job done)", "read (job done → seen via API)", "total (sent → seen)")


def epoch(dt: datetime | None) -> float | None:
    return None if dt is None else dt.replace(tzinfo=timezone.utc).timestamp()


class StageSampler(threading.Thread):
    def __init__(self, engine, after_job_id: int, *, lease: float, republish_after: float, every: float = 0.005):
        super().__init__(daemon=True, name="stage-sampler")
        self.engine, self.after, self.every = engine, after_job_id, every
        self.lease, self.republish_after = lease, republish_after
        self.published: dict[int, float] = {}  # inbox id -> when the relay published its job
        self.running: dict[int, float] = {}  # inbox id -> when a worker claimed its job
        self.stop = threading.Event()

    def run(self) -> None:
        q = text("select cast(payload->>'inbox_id' as bigint), status, locked_by, locked_until from outbox "
                 "where id > :after and kind = 'inbox.process' and status in ('pending', 'running') "
                 "and locked_until is not null")
        with self.engine.connect() as c:
            while not self.stop.is_set():
                rows = c.execute(q, {"after": self.after}).all()
                c.rollback()
                for inbox_id, status, locked_by, until in rows:
                    if status == "running":
                        self.running.setdefault(inbox_id, epoch(until) - self.lease)
                    elif locked_by and locked_by.startswith("relay:"):
                        self.published.setdefault(inbox_id, epoch(until) - self.republish_after)
                self.stop.wait(self.every)


def max_outbox_id(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("select coalesce(max(id), 0) from outbox")).scalar()


def orders_columns(conn, tenant_id: int, *names: str) -> tuple[str | None, dict[str, str]]:
    """The physical table of ``orders`` and the columns of the named fields (those it has)."""
    tid = conn.execute(text("select id from user_tables where tenant_id = :t and api_name = 'orders' "
                            "and deleted_at is null"), {"t": tenant_id}).scalar()
    if tid is None:
        return None, {}
    rows = conn.execute(text("select api_name, coalesce(physical, 'f_' || id) from fields where table_id = :tid "
                             "and deleted_at is null and api_name = any(:names)"), {"tid": tid, "names": list(names)})
    return f"t_{tid}", dict(rows.all())


def order_proof(engine, tenant_id: int) -> dict:
    """Orders in the table (not deleted), distinct global ids, global ids held by more than one order."""
    with engine.connect() as c:
        table, cols = orders_columns(c, tenant_id, "global_id")
        g = cols["global_id"]
        total, distinct = c.execute(text(f"select count(*), count(distinct {g}) from {table} "
                                         "where deleted_at is null")).one()
        doubled = c.execute(text(f"select count(*) from (select {g} from {table} where deleted_at is null "
                                 f"group by {g} having count(*) > 1) d")).scalar()
    return {"orders_in_table": total, "distinct_global_ids": distinct, "global_ids_with_more_than_one_order": doubled}


def breakdown(engine, tenant_id: int, sampler: StageSampler, sent: dict[str, float], seen: dict[str, float],
              pct) -> dict:
    """Per payment: sent → stored (intake) → published (relay) → claimed (worker) → rules
    set paid_visible_at → job done → seen through the API. p50/p95 of each step in ms
    (a payment without a timestamp for a step is left out of that step)."""
    with engine.connect() as c:
        rows = c.execute(text(
            "select i.id, i.external_id, i.received_at, o.finished_at from inbox i "
            "join outbox o on o.tenant_id = i.tenant_id and o.idempotency_key = 'inbox:' || i.id "
            "where i.tenant_id = :t and i.event_type = 'order.paid'"), {"t": tenant_id}).all()
        table, cols = orders_columns(c, tenant_id, "external_id", "paid_visible_at")
        visible = {}
        if len(cols) == 2:
            visible = dict(c.execute(text(f"select {cols['external_id']}, {cols['paid_visible_at']} from {table} "
                                          f"where {cols['external_id']} = any(:ids)"),
                                     {"ids": [r.external_id for r in rows]}).all())
    steps: dict[str, list[float]] = {k: [] for k in STEPS}

    def add(name, a, b):
        if a is not None and b is not None:
            steps[name].append((b - a) * 1000)

    for r in rows:
        s = sent.get(r.external_id)
        if s is None:
            continue
        stored, done = epoch(r.received_at), epoch(r.finished_at)
        pub, claimed = sampler.published.get(r.id), sampler.running.get(r.id)
        vis = visible.get(r.external_id)
        vis = epoch(vis) if isinstance(vis, datetime) else None
        add(STEPS[0], s, stored)
        add(STEPS[1], stored, pub)
        add(STEPS[2], pub, claimed)
        add(STEPS[3], stored, claimed)
        add(STEPS[4], claimed, vis)
        add(STEPS[5], claimed, done)
        add(STEPS[6], done, seen.get(r.external_id))
        add(STEPS[7], s, seen.get(r.external_id))
    return {k: {"n": len(v), "p50_ms": _round(pct(v, .5)), "p95_ms": _round(pct(v, .95))} for k, v in steps.items()}


def _round(v):
    return None if v is None else round(v, 1)


def partial_proof(engine, tenant_id: int, accepted: int) -> dict:
    """The proof of a run stopped before its backlog drained: every accepted order is one
    inbox row (nothing lost or doubled at intake), and the orders table holds exactly one
    order per ``order.created`` row processed so far (nothing lost or doubled by processing)."""
    with engine.connect() as c:
        rows, distinct, processed = c.execute(text(
            "select count(*), count(distinct global_id), count(*) filter (where status = 'processed') from inbox "
            "where tenant_id = :t and event_type = 'order.created'"), {"t": tenant_id}).one()
        jobs = dict(c.execute(text("select status, count(*) from outbox where tenant_id = :t "
                                   "and kind = 'inbox.process' group by status"), {"t": tenant_id}).all())
    orders = order_proof(engine, tenant_id)
    ok = (rows == distinct == accepted and orders["orders_in_table"] == orders["distinct_global_ids"] == processed
          and orders["global_ids_with_more_than_one_order"] == 0)
    return {"accepted_orders": accepted, "inbox_rows": rows, "inbox_distinct_global_ids": distinct,
            "inbox_processed": processed, "jobs": jobs, **orders, "lost_at_intake": accepted - distinct,
            "doubled_at_intake": rows - distinct, "ok": ok}

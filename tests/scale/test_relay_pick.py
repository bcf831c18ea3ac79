"""What the relay publishes (runtime/distributed/relay.py): the most urgent due jobs first,
running jobs whose lease expired, never a job another relay published a moment ago, never
more than the broker's in-flight room, and nothing that is not due yet. (The pick reads
pending jobs and expired leases in two index-ordered queries, so a deep backlog is not read
whole on every pick.)"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from zhongshu.platform.models import utcnow
from zhongshu.runtime.distributed.relay import Relay
from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.outbox import enqueue

T = OutboxJob.__table__


def _jobs(platform, specs):
    tenant = platform.create_tenant("relay", "Relay")
    ids = {}
    with platform.engine.begin() as conn:
        for name, priority, due_in in specs:
            ids[name] = enqueue(conn, tenant_id=tenant.id, kind="test.relay", payload={}, key=name, priority=priority,
                                run_at=utcnow() + timedelta(seconds=due_in))
    return ids


def test_the_relay_publishes_urgent_due_jobs_and_expired_leases_within_its_room(platform):
    ids = _jobs(platform, [("notify", 5, -10), ("order-a", 0, -5), ("order-b", 0, -1), ("later", 0, 3600),
                           ("stuck", 5, -60), ("leased", 0, -30)])
    now = utcnow()
    with platform.engine.begin() as conn:
        # a worker died holding "stuck"; another relay published "leased" a moment ago
        conn.execute(update(T).where(T.c.id == ids["stuck"]).values(status="running", locked_by="w:1",
                                                                   locked_until=now - timedelta(seconds=5)))
        conn.execute(update(T).where(T.c.id == ids["leased"]).values(locked_by="relay:other",
                                                                    locked_until=now + timedelta(seconds=300)))
    relay = Relay(platform, publish=lambda jobs: None, batch=3, max_inflight=10)
    # order processing first: while order jobs are due, nothing less urgent is published
    assert relay.mark() == [(ids["order-a"], 0), (ids["order-b"], 0)]
    # then the notification and the job whose lease expired
    assert relay.mark() == [(ids["notify"], 5), (ids["stuck"], 5)]
    assert relay.mark() == []  # "later" is not due, "leased" is in flight elsewhere


def test_the_in_flight_cap_counts_every_relays_published_jobs(platform):
    _jobs(platform, [(f"j{i}", 0, -1) for i in range(6)])
    a = Relay(platform, publish=lambda jobs: None, name="a", batch=10, max_inflight=4)
    b = Relay(platform, publish=lambda jobs: None, name="b", batch=10, max_inflight=4)
    assert len(a.mark()) == 4
    assert b.mark() == []  # 4 published, not yet claimed by a worker: the broker is full

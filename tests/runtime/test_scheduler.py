"""The scheduler: leader election through the scheduler_leases table, periodic tasks and
schedule providers that run only on the leader, the catch-up policy after a handover, and
the built-in pruning. Two Scheduler objects in one process stand for two nodes; time
passes through a clock the test controls."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from zhongshu.platform.models import utcnow
from zhongshu.runtime import scheduler as sch
from zhongshu.runtime.models import OutboxJob, RuleRun, SchedulerLease
from zhongshu.runtime.outbox import enqueue
from zhongshu.runtime.scheduler import Scheduler, periodic, prune_run_log, register_schedule_provider


class Clock:
    def __init__(self, start: datetime | None = None):
        self.now = start or utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def registry():
    """Restores the periodic registry and the providers after the test."""
    periodic_before, providers_before = dict(sch.PERIODIC), list(sch.SCHEDULE_PROVIDERS)
    yield
    sch.PERIODIC.clear()
    sch.PERIODIC.update(periodic_before)
    sch.SCHEDULE_PROVIDERS[:] = providers_before


@pytest.fixture
def nodes(platform, registry):
    """Two schedulers ("nodes") on the same database and clock; stopped afterwards."""
    clock = Clock()
    made = []

    def make(holder):
        s = Scheduler(platform, holder, clock=clock)
        made.append(s)
        return s

    make.clock = clock
    yield make
    for s in made:
        s.stop()


def lease(platform):
    with platform.tenant_session(None) as s:
        row = s.get(SchedulerLease, "main")
        return None if row is None else (row.holder, row.expires_at)


def test_only_one_leader_and_a_clean_stop_hands_over(platform, nodes):
    a, b = nodes("node-a:1:aaaa"), nodes("node-b:2:bbbb")
    a.tick()
    b.tick()
    assert a.is_leader() and not b.is_leader()
    assert lease(platform) == ("node-a:1:aaaa", nodes.clock.now + timedelta(seconds=sch.LEASE_TTL))
    nodes.clock.advance(5)
    a.tick(), b.tick()  # renewals keep the leader
    assert a.is_leader() and not b.is_leader()

    a.stop()  # releases the lease
    assert not a.is_leader() and lease(platform)[0] == ""
    b.tick()
    assert b.is_leader()
    assert lease(platform)[0] == "node-b:2:bbbb"


def test_a_dead_leader_is_replaced_after_its_lease_expires(platform, nodes):
    a, b = nodes("node-a"), nodes("node-b")
    a.tick()
    assert a.is_leader()
    nodes.clock.advance(10)  # a is "killed": it stops renewing
    b.tick()
    assert not b.is_leader()  # the lease still holds
    nodes.clock.advance(6)
    b.tick()
    assert b.is_leader() and not a.is_leader()  # a's own view expires with its lease
    a.tick()  # a comes back: it must not take the lease back
    assert not a.is_leader() and b.is_leader()


def test_periodic_tasks_run_only_on_the_leader(platform, nodes):
    runs = []

    @periodic("test.count", seconds=60)
    def count(zs):
        assert zs is platform
        runs.append(zs)

    a, b = nodes("a"), nodes("b")
    assert "periodic:test.count" in a.tick()  # the first run comes at once
    assert "periodic:test.count" not in b.tick()
    assert len(runs) == 1
    assert a.tick() == []  # not due again yet
    for _ in range(12):  # a minute of heartbeats
        nodes.clock.advance(5)
        a.tick(), b.tick()
    assert len(runs) == 2 and a.is_leader()
    # the built-in tasks are registered too
    assert {"periodic:runtime.prune_run_log", "periodic:runtime.release_outbox_leases"} <= set(a.jobs())


def test_a_failing_task_is_logged_and_the_others_still_run(platform, nodes):
    ran = []

    @periodic("test.fails", seconds=60)
    def fails(zs):
        raise RuntimeError("boom")

    @periodic("test.works", seconds=60)
    def works():  # no argument: called without the platform
        ran.append(True)

    a = nodes("a")
    done = a.tick()
    assert "periodic:test.fails" in done and ran == [True]
    assert a.jobs()["periodic:test.fails"]["last_error"] == "RuntimeError: boom"


def test_schedule_providers_add_replace_and_remove_jobs(platform, nodes):
    calls = []
    plan = {"rule:1": {"every_seconds": 600}, "rule:2": {"cron": "0 9 * * *", "timezone": "Asia/Shanghai"}}
    state = {"fail": False}

    @register_schedule_provider
    def provider(zs):
        if state["fail"]:
            raise RuntimeError("rules table unavailable")
        return [(jid, spec, (lambda zs, jid=jid: calls.append(jid))) for jid, spec in plan.items()]

    a = nodes("a")
    a.tick()
    jobs = a.jobs()
    assert {"provider:rule:1", "provider:rule:2"} <= set(jobs)
    nine = jobs["provider:rule:2"]["next_run_time"].astimezone(sch.ZoneInfo("Asia/Shanghai"))
    assert (nine.hour, nine.minute) == (9, 0)  # cron in the given timezone

    nodes.clock.advance(601)
    assert "provider:rule:1" in a.tick() and calls == ["rule:1"]

    before = a.jobs()["provider:rule:1"]["next_run_time"]
    a.sync()  # same spec: the job keeps its next run time
    assert a.jobs()["provider:rule:1"]["next_run_time"] == before

    plan["rule:1"] = {"cron": "*/10 * * * *"}  # changed spec: replaced
    a.sync()
    assert "cron" in a.jobs()["provider:rule:1"]["trigger"]

    del plan["rule:2"]  # gone: removed
    plan["bad"] = {"hourly": True}  # not understood: logged and left out
    a.sync()
    assert "provider:rule:2" not in a.jobs() and "provider:bad" not in a.jobs()

    state["fail"] = True  # a provider that fails keeps the jobs it had
    a.sync()
    assert "provider:rule:1" in a.jobs()
    state["fail"] = False
    plan.clear()
    a.sync()
    assert not [j for j in a.jobs() if j.startswith("provider:")]


def test_catch_up_after_a_crash_runs_missed_runs_once(platform, nodes):
    calls = []
    register_schedule_provider(lambda zs: [("every10", {"cron": "*/10 * * * *"}, lambda zs: calls.append(zs))])
    clock = nodes.clock
    clock.now = clock.now.replace(minute=0, second=30, microsecond=0)  # 30 s after a fire time
    a, b = nodes("a"), nodes("b")
    a.tick(), b.tick()
    assert a.is_leader() and calls == []
    # a dies; 25 minutes pass (two runs at :10 and :20 are missed)
    clock.advance(25 * 60)
    assert "provider:every10" in b.tick()
    assert len(calls) == 1  # coalesced into one run
    assert "provider:every10" not in b.tick()
    nxt = b.jobs()["provider:every10"]["next_run_time"].astimezone(timezone.utc).replace(tzinfo=None)
    assert nxt == clock.now.replace(minute=30, second=0)


def test_no_repeat_after_a_clean_handover(platform, nodes):
    calls = []
    register_schedule_provider(lambda zs: [("every10", {"cron": "*/10 * * * *"}, lambda zs: calls.append(zs))])
    clock = nodes.clock
    clock.now = clock.now.replace(minute=9, second=50, microsecond=0)
    a, b = nodes("a"), nodes("b")
    a.tick(), b.tick()
    clock.advance(15)  # 10:05: a runs the :10 job
    assert "provider:every10" in a.tick() and len(calls) == 1
    a.stop()
    clock.advance(1)
    assert "provider:every10" not in b.tick()  # b leads now, and does not repeat :10
    assert b.is_leader() and len(calls) == 1


def test_prune_run_log_keeps_the_retention_period(platform):
    t = platform.create_tenant("acme", "Acme").id
    now = utcnow()
    platform.config["RUN_LOG_RETENTION_DAYS"] = 7
    with platform.tenant_session(t, write=True) as s:
        for days in (1, 6, 8, 30):
            s.add(RuleRun(trigger="created", status="ok", at=now - timedelta(days=days)))
    with platform.engine.begin() as conn:
        ids = [enqueue(conn, tenant_id=t, kind="x", payload={}, key=k) for k in ("old-done", "old-dead", "new-done")]
    tbl = OutboxJob.__table__
    with platform.engine.begin() as conn:
        conn.execute(update(tbl).where(tbl.c.id == ids[0]).values(status="done", finished_at=now - timedelta(days=9)))
        conn.execute(update(tbl).where(tbl.c.id == ids[1]).values(status="dead", finished_at=now - timedelta(days=9)))
        conn.execute(update(tbl).where(tbl.c.id == ids[2]).values(status="done", finished_at=now - timedelta(days=1)))
    assert prune_run_log(platform, now) == {"rule_runs": 2, "outbox": 1}
    with platform.tenant_session(None) as s:
        assert s.scalar(select(func.count()).select_from(RuleRun)) == 2
        assert sorted(s.scalars(select(OutboxJob.id))) == ids[1:]
    platform.config["RUN_LOG_RETENTION_DAYS"] = 0  # 0 keeps everything
    assert prune_run_log(platform, now + timedelta(days=100)) == {"rule_runs": 0, "outbox": 0}


def test_background_schedulers_hand_over(platform, registry):
    """start_in_process: the APScheduler thread runs the task on the leader; stopping it
    lets the second process' scheduler take over on its next heartbeat."""
    ran = {"a": threading.Event(), "b": threading.Event()}
    current = {}

    @periodic("test.signal", seconds=1)
    def signal(zs):
        ran[current["who"]].set()

    current["who"] = "a"
    stop_a = sch.start_in_process(platform, "a", renew_every=0.05)
    assert stop_a in platform.stoppers and stop_a.scheduler.is_leader()
    assert ran["a"].wait(30)
    b = Scheduler(platform, "b", renew_every=0.05).start()
    try:
        assert not b.is_leader()
        stop_a()  # waits for a's running task, then releases the lease
        current["who"] = "b"
        assert ran["b"].wait(30)  # b took the lease and runs the task
        assert b.is_leader() and lease(platform)[0] == "b"
    finally:
        b.stop()
    assert lease(platform)[0] == ""


@pytest.mark.slow
def test_scheduler_command_leads_and_hands_the_lease_back_on_sigterm(platform, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    url = platform.engine.url.render_as_string(hide_password=False)
    env = dict(os.environ, ZHONGSHU_DATABASE_URL=url, ZHONGSHU_DATA_DIR=str(tmp_path / "cli-instance"),
               ZHONGSHU_SECRET_KEY="test")
    p = subprocess.Popen([sys.executable, "-m", "zhongshu.platform.cli", "scheduler"], cwd=str(tmp_path), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (lease(platform) and lease(platform)[0]):
            time.sleep(0.05)
        holder = lease(platform)[0]
        assert holder.split(":")[1] == str(p.pid)  # host:pid:uuid
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert lease(platform)[0] == ""  # handed back: another node takes over at once

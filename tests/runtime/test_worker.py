"""The outbox worker on a real database (SQLite and PostgreSQL): claiming, retries with
backoff, dead letters, leases of dead workers, priorities. Time passes through a clock the
test controls (``Worker(clock=...)``), never by sleeping."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from zhongshu.connectors.api.errors import PermanentError, RetryableError
from zhongshu.platform.models import utcnow
from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.outbox import HANDLERS, PRIORITY_LOW, PRIORITY_ORDER, enqueue
from zhongshu.runtime.worker import Worker, drain, release_expired, start_in_process

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import outbox_effects  # noqa: E402  (registers the "test.effect" kind)

REPO = HERE.parent.parent


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def to(self, when: datetime) -> None:
        self.now = max(self.now, when)


@pytest.fixture
def tenant_id(platform):
    return platform.create_tenant("acme", "Acme").id


@pytest.fixture
def kinds():
    """Registers handlers for one test: kinds["name"] = fn; removed afterwards."""
    added = {}

    class Reg(dict):
        def __setitem__(self, k, fn):
            added[k] = HANDLERS.get(k)
            HANDLERS[k] = fn
            super().__setitem__(k, fn)

    yield Reg()
    for k, old in added.items():
        if old is None:
            HANDLERS.pop(k, None)
        else:
            HANDLERS[k] = old


def add(platform, tenant_id, kind, key, payload=None, **kw):
    with platform.engine.begin() as conn:
        return enqueue(conn, tenant_id=tenant_id, kind=kind, payload=payload or {}, key=key, **kw)


def job(platform, job_id) -> OutboxJob:
    with platform.tenant_session(None) as s:
        return s.get(OutboxJob, job_id)


def test_retries_with_backoff_then_succeeds(platform, tenant_id, kinds):
    calls = []

    def flaky(ctx, payload):
        calls.append(ctx.attempt)
        if len(calls) < 3:
            raise RetryableError("HTTP 503 from the carrier")
        return {"sent": payload["to"]}

    kinds["test.flaky"] = flaky
    clock = Clock()
    w = Worker(platform, name="w", clock=clock)
    jid = add(platform, tenant_id, "test.flaky", "k1", {"to": "13800000000"}, run_at=clock.now)

    assert w.run_once() == 1
    j = job(platform, jid)
    assert (j.status, j.attempts, j.locked_by) == ("pending", 1, None)
    assert "HTTP 503" in j.last_error
    first_delay = (j.run_at - clock.now).total_seconds()
    assert 4.0 <= first_delay <= 6.0  # 5 s ± 20 % jitter
    assert w.run_once() == 0  # not due yet

    clock.to(j.run_at)
    assert w.run_once() == 1
    j = job(platform, jid)
    assert (j.status, j.attempts) == ("pending", 2)
    assert 8.0 <= (j.run_at - clock.now).total_seconds() <= 12.0  # doubled

    clock.to(j.run_at)
    assert w.run_once() == 1
    j = job(platform, jid)
    assert (j.status, j.attempts, j.result) == ("done", 3, {"sent": "13800000000"})
    assert j.finished_at == clock.now and j.locked_by is None and j.locked_until is None
    assert calls == [1, 2, 3]


def test_retry_after_from_the_service_is_honoured(platform, tenant_id, kinds):
    def limited(ctx, payload):
        raise RetryableError("429 rate limited", retry_after=120)

    kinds["test.limited"] = limited
    clock = Clock()
    jid = add(platform, tenant_id, "test.limited", "k", run_at=clock.now)
    Worker(platform, clock=clock).run_once()
    assert (job(platform, jid).run_at - clock.now).total_seconds() >= 120


def test_dead_letter_after_max_attempts(platform, tenant_id, kinds):
    def down(ctx, payload):
        raise ConnectionError("connection refused")  # unexpected: retried, then dead

    kinds["test.down"] = down
    clock = Clock()
    w = Worker(platform, clock=clock)
    jid = add(platform, tenant_id, "test.down", "k", max_attempts=3, run_at=clock.now)
    for _ in range(3):
        assert w.run_once() == 1
        clock.to(job(platform, jid).run_at)
    j = job(platform, jid)
    assert (j.status, j.attempts) == ("dead", 3)
    assert j.last_error.startswith("gave up after 3 attempts: ConnectionError: connection refused")
    assert "Traceback" in j.last_error  # unexpected errors keep their traceback
    clock.advance(10_000)
    assert w.run_once() == 0  # dead jobs stay dead until replayed


def test_permanent_error_dead_letters_at_once(platform, tenant_id, kinds):
    def bad(ctx, payload):
        raise PermanentError("400: the phone number is invalid")

    kinds["test.bad"] = bad
    jid = add(platform, tenant_id, "test.bad", "k")
    assert drain(platform) == 1
    j = job(platform, jid)
    assert (j.status, j.attempts, j.last_error) == ("dead", 1, "400: the phone number is invalid")


def test_idempotency_key_dedupes_at_enqueue(platform, tenant_id):
    other = platform.create_tenant("beta", "Beta").id
    first = add(platform, tenant_id, "test.effect", "order-42:notify")
    assert first is not None
    assert add(platform, tenant_id, "test.effect", "order-42:notify") is None
    assert add(platform, other, "test.effect", "order-42:notify") is not None  # keys are per tenant
    with platform.tenant_session(None) as s:
        assert s.scalar(select(func.count()).select_from(OutboxJob)) == 2


def test_unknown_kind_is_dead_lettered_with_a_clear_error(platform, tenant_id):
    jid = add(platform, tenant_id, "nobody.handles.this", "k")
    assert drain(platform) == 1
    j = job(platform, jid)
    assert j.status == "dead"
    assert "no handler is registered for the job kind 'nobody.handles.this'" in j.last_error


def test_a_failing_handler_does_not_stop_the_others(platform, tenant_id, kinds):
    done = []

    def boom(ctx, payload):
        raise ZeroDivisionError("division by zero")

    def fine(ctx, payload):
        done.append(payload["n"])
        return payload["n"]

    kinds["test.boom"], kinds["test.fine"] = boom, fine
    clock = Clock()
    bad = add(platform, tenant_id, "test.boom", "bad", run_at=clock.now - timedelta(seconds=1))
    good = [add(platform, tenant_id, "test.fine", f"ok{n}", {"n": n}, run_at=clock.now) for n in range(3)]
    assert Worker(platform, clock=clock).run_once() == 4
    assert sorted(done) == [0, 1, 2]
    assert job(platform, bad).status == "pending" and "ZeroDivisionError" in job(platform, bad).last_error
    assert [job(platform, g).result for g in good] == [{"value": 0}, {"value": 1}, {"value": 2}]


def test_a_job_of_a_killed_worker_is_claimed_again_after_its_lease(platform, tenant_id):
    outbox_effects.create_tables(platform.engine)
    clock = Clock()
    jid = add(platform, tenant_id, outbox_effects.KIND, "order-7:ship", run_at=clock.now)
    # A worker claimed it and was killed: running, lease until +60 s.
    with platform.engine.begin() as conn:
        conn.execute(update(OutboxJob.__table__).where(OutboxJob.id == jid).values(
            status="running", locked_by="host:1:dead", locked_until=clock.now + timedelta(seconds=60), attempts=1))
    w = Worker(platform, name="survivor", clock=clock)
    assert w.run_once() == 0  # the lease still holds
    clock.advance(61)
    assert w.run_once() == 1
    j = job(platform, jid)
    assert (j.status, j.attempts, j.result) == ("done", 2, {"key": "order-7:ship"})
    with platform.engine.connect() as conn:
        assert conn.execute(select(outbox_effects.effects.c.key)).scalars().all() == ["order-7:ship"]


def test_release_expired_puts_jobs_back_or_dead_letters_the_last_attempt(platform, tenant_id):
    now = utcnow()
    a = add(platform, tenant_id, "x", "a")
    b = add(platform, tenant_id, "x", "b", max_attempts=2)
    c = add(platform, tenant_id, "x", "c")
    t = OutboxJob.__table__
    with platform.engine.begin() as conn:
        conn.execute(update(t).where(t.c.id.in_([a, b])).values(status="running", locked_by="gone", attempts=2,
                                                                  locked_until=now - timedelta(seconds=1)))
        conn.execute(update(t).where(t.c.id == c).values(status="running", locked_by="alive", attempts=1,
                                                           locked_until=now + timedelta(seconds=60)))
    assert release_expired(platform, now) == 2
    assert (job(platform, a).status, job(platform, a).locked_by) == ("pending", None)
    assert job(platform, b).status == "dead" and "lease expired" in job(platform, b).last_error
    assert job(platform, c).status == "running"


def test_jobs_run_by_priority_then_time(platform, tenant_id, kinds):
    order = []
    kinds["test.rec"] = lambda ctx, p: order.append(p["n"])
    clock = Clock()
    add(platform, tenant_id, "test.rec", "a", {"n": "low-old"}, priority=PRIORITY_LOW, run_at=clock.now - timedelta(hours=1))
    add(platform, tenant_id, "test.rec", "b", {"n": "notify"}, run_at=clock.now - timedelta(minutes=1))
    add(platform, tenant_id, "test.rec", "c", {"n": "order-2"}, priority=PRIORITY_ORDER, run_at=clock.now)
    add(platform, tenant_id, "test.rec", "d", {"n": "order-1"}, priority=PRIORITY_ORDER, run_at=clock.now - timedelta(seconds=1))
    add(platform, tenant_id, "test.rec", "e", {"n": "future"}, priority=PRIORITY_ORDER, run_at=clock.now + timedelta(hours=1))
    assert Worker(platform, clock=clock, overload_threshold=10).run_once() == 4
    assert order == ["order-1", "order-2", "notify", "low-old"]


def test_overload_policy_defers_lower_priorities_while_orders_wait(platform, tenant_id, kinds):
    order = []
    kinds["test.rec"] = lambda ctx, p: order.append(p["n"])
    clock = Clock()
    for i in range(3):
        add(platform, tenant_id, "test.rec", f"o{i}", {"n": f"order{i}"}, priority=PRIORITY_ORDER, run_at=clock.now)
        add(platform, tenant_id, "test.rec", f"l{i}", {"n": f"low{i}"}, priority=PRIORITY_LOW, run_at=clock.now)
    # default threshold 0: while any priority-0 job is due, a pass claims only those
    w = Worker(platform, clock=clock)
    assert w.run_once() == 3 and order == ["order0", "order1", "order2"]
    assert w.run_once() == 3 and order[3:] == ["low0", "low1", "low2"]
    # max_priority: a dedicated worker never takes deferrable work
    add(platform, tenant_id, "test.rec", "l9", {"n": "low9"}, priority=PRIORITY_LOW, run_at=clock.now)
    assert Worker(platform, clock=clock, max_priority=PRIORITY_ORDER).run_once() == 0
    assert Worker(platform, clock=clock, max_priority=PRIORITY_LOW).run_once() == 1


def test_kinds_filter(platform, tenant_id, kinds):
    kinds["test.a"] = lambda ctx, p: "a"
    kinds["test.b"] = lambda ctx, p: "b"
    a = add(platform, tenant_id, "test.a", "a")
    b = add(platform, tenant_id, "test.b", "b")
    assert drain(platform, kinds=["test.b"]) == 1
    assert (job(platform, a).status, job(platform, b).status) == ("pending", "done")


def test_concurrent_workers_claim_each_job_once(platform, tenant_id, kinds):
    seen, lock = [], threading.Lock()

    def rec(ctx, payload):
        with lock:
            seen.append(ctx.job_id)

    kinds["test.rec"] = rec
    ids = [add(platform, tenant_id, "test.rec", f"k{i}") for i in range(120)]
    stop = start_in_process(platform, concurrency=4, batch=7, poll=0.01)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with platform.tenant_session(None) as s:
                if s.scalar(select(func.count()).where(OutboxJob.status == "done")) == len(ids):
                    break
            time.sleep(0.05)
    finally:
        stop()
    assert sorted(seen) == sorted(ids)  # every job exactly once: no double claims
    assert stop in platform.stoppers and not any(t.is_alive() for t in stop.threads)


# -- real processes ------------------------------------------------------------------------

WORKER_SCRIPT = """
import signal, sys, threading
import outbox_effects
from zhongshu.platform.core import Platform
from zhongshu.runtime.worker import Worker
url, name, data_dir = sys.argv[1:4]
zs = Platform({"DATABASE_URL": url, "DATA_DIR": data_dir, "SECRET_KEY": "test"})
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: stop.set())
Worker(zs, name=name, batch=5, lease_seconds=2).run_forever(stop, poll=0.05)
"""


def _spawn(url, name, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, url, name, str(tmp_path)], cwd=str(tmp_path), env=env)


def _wait_for(predicate, timeout=90.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_killed_worker_process_loses_nothing_and_duplicates_no_effect(platform, tenant_id, tmp_path):
    if platform.dialect != "postgresql":
        pytest.skip("multi-process workers are the PostgreSQL deployment")
    url = platform.engine.url.render_as_string(hide_password=False)
    outbox_effects.create_tables(platform.engine)
    n = 200
    with platform.engine.begin() as conn:
        for i in range(n):
            enqueue(conn, tenant_id=tenant_id, kind=outbox_effects.KIND, payload={"sleep": 0.02}, key=f"order-{i}:ship")

    def count(sql):
        with platform.engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    w1, w2 = _spawn(url, "w1", tmp_path), _spawn(url, "w2", tmp_path)
    procs = [w1, w2]
    try:
        # kill w1 while it holds claimed jobs (when it has any) after some progress
        _wait_for(lambda: count("select count(*) from test_effects") >= 30, what="progress")
        _wait_for(lambda: count("select count(*) from outbox where status='running' and locked_by='w1'") > 0,
                  timeout=10, what="w1 holding jobs")
        w1.send_signal(signal.SIGKILL)
        w1.wait(10)
        assert count("select count(*) from test_effects") < n, "the kill came too late to test anything"
        w1b = _spawn(url, "w1-restarted", tmp_path)
        procs.append(w1b)
        _wait_for(lambda: count("select count(*) from outbox where status='done'") == n, what="all jobs done")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    assert count("select count(*) from outbox where status <> 'done'") == 0
    # every effect exactly once, although some jobs ran more than once
    assert count("select count(*) from test_effects") == n
    assert count("select count(distinct key) from test_effects") == n
    assert count("select count(distinct key) from test_effect_runs") == n
    assert count("select count(*) from test_effect_runs") >= n
    for p in (w2, procs[-1]):
        assert p.returncode == 0  # stopped cleanly on SIGTERM


def _cli(args, url, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
               ZHONGSHU_DATABASE_URL=url, ZHONGSHU_DATA_DIR=str(tmp_path / "cli-instance"), ZHONGSHU_SECRET_KEY="test")
    return subprocess.Popen([sys.executable, "-m", "zhongshu.platform.cli", *args], cwd=str(tmp_path), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_worker_command_runs_jobs_and_stops_on_sigterm(platform, tenant_id, tmp_path):
    outbox_effects.create_tables(platform.engine)
    url = platform.engine.url.render_as_string(hide_password=False)
    ids = [add(platform, tenant_id, outbox_effects.KIND, f"cli-{i}") for i in range(10)]
    p = _cli(["worker", "--concurrency", "2", "--kinds", outbox_effects.KIND, "--poll", "0.05",
              "--import", "outbox_effects"], url, tmp_path)
    try:
        _wait_for(lambda: all(job(platform, i).status == "done" for i in ids), what="the jobs to be done")
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert "worker stopped" in out

"""Wake-ups of the outbox consumers (runtime/wakeup.py), mostly on PostgreSQL.

What a user relies on: a job committed with a wake-up is picked up by the relay and by
the in-process workers although their poll interval is an hour (on SQLite: by the
workers of the same process); a job whose notification
never came (not sent, or the listener's connection was cut) is still picked up by
polling; after the listener's connection is cut it reconnects and wake-ups work again;
and end to end, a webhook accepted by a web node is processed by a Celery worker although
the relay polls only once an hour. The deadlines below are far below the poll interval:
they bound how long a test may hang, they are not the thing measured.
"""
from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, select, text

from tests.scale import cluster as cl
from zhongshu.runtime import wakeup
from zhongshu.runtime.distributed.relay import Relay
from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.outbox import HANDLERS, enqueue
from zhongshu.runtime.worker import start_in_process

HOUR = 3600.0
KIND = "test.wakeup"


def wait_for(predicate, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


@pytest.fixture
def pg(platform):
    if platform.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY wake-ups are PostgreSQL's (SQLite's are process-local: tested below)")
    return platform


@pytest.fixture
def tenant_id(pg):
    return pg.create_tenant(f"wake-{uuid.uuid4().hex[:6]}", "Wake").id


@pytest.fixture
def ran():
    """A handler for KIND that records the job ids it ran."""
    done: list[int] = []
    old = HANDLERS.get(KIND)
    HANDLERS[KIND] = lambda ctx, payload: done.append(ctx.job_id)
    yield done
    if old is None:
        HANDLERS.pop(KIND, None)
    else:
        HANDLERS[KIND] = old


def add_job(platform, tenant_id, key: str, *, wake: bool) -> int:
    with platform.engine.begin() as conn:
        job_id = enqueue(conn, tenant_id=tenant_id, kind=KIND, payload={}, key=key)
    if wake:
        wakeup.jobs_committed(platform)  # after the commit, as intake does
    return job_id


def status(platform, job_id) -> str:
    with platform.tenant_session(None) as s:
        return s.scalar(select(OutboxJob.status).where(OutboxJob.id == job_id))


def listener_backends(platform) -> list[int]:
    with platform.engine.connect() as c:
        return c.execute(text("select pid from pg_stat_activity where datname = current_database() "
                              f"and query = 'LISTEN {wakeup.CHANNEL}'")).scalars().all()


def test_a_committed_job_wakes_the_in_process_worker_despite_an_hour_long_poll(pg, tenant_id, ran):
    stop = start_in_process(pg, concurrency=2, poll=HOUR)
    try:
        assert wakeup.listener(pg).connected.wait(30)
        for i in range(3):  # each after the workers went idle again
            job_id = add_job(pg, tenant_id, f"woken-{i}", wake=True)
            wait_for(lambda: status(pg, job_id) == "done", 30, f"job {i} to be run after its wake-up")
    finally:
        stop()
    assert len(ran) == 3  # each once


def test_a_committed_job_wakes_the_relay_despite_an_hour_long_poll(pg, tenant_id):
    published: list[int] = []
    relay = Relay(pg, lambda jobs: published.extend(j for j, _ in jobs), batch=50)
    stop = threading.Event()
    t = threading.Thread(target=relay.run_forever, args=(stop, HOUR), daemon=True)
    t.start()
    try:
        assert wakeup.listener(pg).connected.wait(30)
        for i in range(3):
            job_id = add_job(pg, tenant_id, f"relayed-{i}", wake=True)
            wait_for(lambda: job_id in published, 30, f"job {i} to be published after its wake-up")
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive(), "the relay stops on its stop flag while waiting for a wake-up"
    assert len(published) == len(set(published)) == 3


def test_a_lost_notification_is_made_up_for_by_polling_and_the_listener_comes_back(pg, tenant_id, ran):
    stop = start_in_process(pg, poll=0.2)
    listener = wakeup.listener(pg)
    try:
        assert listener.connected.wait(30)
        # 1. committed without any notification: the next poll finds it
        silent = add_job(pg, tenant_id, "silent", wake=False)
        wait_for(lambda: status(pg, silent) == "done", 30, "the unannounced job to be polled")
        # 2. the listener's connection is cut: jobs are still polled, then it reconnects
        backends = wait_for(lambda: listener_backends(pg), 10, "the listener's backend")
        with pg.engine.connect() as c:
            c.execute(text("select pg_terminate_backend(pid) from unnest(cast(:p as int[])) pid"), {"p": backends})
            c.commit()
        cut = add_job(pg, tenant_id, "while-cut", wake=True)
        wait_for(lambda: status(pg, cut) == "done", 30, "the job committed while the listener was cut")
        wait_for(lambda: set(listener_backends(pg)) - set(backends), 30, "the listener to reconnect")
    finally:
        stop()
    # 3. after reconnecting, a wake-up works again: an hour-long poll does not matter
    stop = start_in_process(pg, poll=HOUR)
    try:
        assert listener.connected.wait(30)
        again = add_job(pg, tenant_id, "after-reconnect", wake=True)
        wait_for(lambda: status(pg, again) == "done", 30, "a woken job after the reconnect")
    finally:
        stop()
    assert sorted(ran) == sorted([silent, cut, again])


def test_on_sqlite_a_committed_job_wakes_the_workers_of_the_same_process(platform):
    """SQLite has no LISTEN; the embedded server runs intake and its worker in one process,
    so a wake-up there is a process-local one."""
    if platform.dialect != "sqlite":
        pytest.skip("the SQLite half of the wake-up contract")
    tenant = platform.create_tenant("wake-lite", "Wake").id
    done: list[int] = []
    old = HANDLERS.get(KIND)
    HANDLERS[KIND] = lambda ctx, payload: done.append(ctx.job_id)
    stop = start_in_process(platform, poll=HOUR)
    try:
        assert wakeup.describe(wakeup.listener(platform)) == "in-process"
        for i in range(2):
            job_id = add_job(platform, tenant, f"lite-{i}", wake=True)
            wait_for(lambda: status(platform, job_id) == "done", 30, f"job {i} to be run after its wake-up")
    finally:
        stop()
        if old is None:
            HANDLERS.pop(KIND, None)
        else:
            HANDLERS[KIND] = old
    assert len(done) == 2


# -- end to end: web node → relay (hour-long poll) → Celery worker ------------------------------

@pytest.mark.slow
def test_a_webhook_is_processed_although_the_relay_polls_once_an_hour(tmp_path):
    problem = cl.pg_problem() or cl.broker_problem(cl.BROKERS["rabbitmq"])
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the wake-up test needs PostgreSQL and RabbitMQ in CI: {problem}")
        pytest.skip(problem)
    name = f"zs_wake_{os.getpid()}"
    url = cl.create_database(name)
    info = cl.prepare_tenant(url, tmp_path / "instance")
    info["platform"].close()
    prefix = f"zs-wake-{os.getpid()}-"
    c = cl.Cluster(tmp_path, url, cl.BROKERS["rabbitmq"], queue_prefix=prefix)
    engine = create_engine(url)
    try:
        c.web("web")
        c.celery_worker("worker", concurrency=1, imports=())
        c.relay(poll=HOUR)
        c.wait_http("web")
        c.wait_log("worker", "ready")
        c.wait_log("relay", "wake-ups: LISTEN")
        hook = cl.Http(*c.url("web"))
        for i in range(3):  # each after the relay went back to waiting
            raw, headers = cl.signed({"id": f"WAKE-{i}", "event": "order.created", "total": "12.50"})
            assert hook.request("POST", info["hook_path"], raw, headers)[0] == 200

            def processed(i=i):
                with engine.connect() as conn:
                    return conn.execute(text("select status from inbox where external_id = :e"),
                                        {"e": f"WAKE-{i}"}).scalar() == "processed"
            wait_for(processed, 45, f"webhook {i} to be processed")
        hook.close()
    finally:
        c.stop_all()
        engine.dispose()
        try:
            from zhongshu.runtime.distributed import QUEUES
            cl.purge_queues(cl.BROKERS["rabbitmq"], [prefix + q for q in QUEUES])
        except Exception:  # noqa: BLE001
            pass
        cl.drop_database(name)

"""The Celery application of Zhongshu's worker nodes.

    celery -A zhongshu.runtime.distributed.celery_app worker -Q orders,default,low
    zhongshu celery-worker            # the same, with Zhongshu's defaults and --import

The broker comes from the config key ``BROKER_URL`` (env ``ZHONGSHU_BROKER_URL``), e.g.
``amqp://guest:guest@127.0.0.1:5672//`` (RabbitMQ, the documented choice) or
``redis://127.0.0.1:6379/0``. There is no result backend: outcomes live in the outbox.

Reliability settings: ``acks_late`` (a message is acknowledged after the job ran, so a
worker that dies mid-job gets it redelivered), ``reject_on_worker_lost`` (a killed pool
process requeues its message), prefetch 1 (a busy worker does not sit on other jobs). The
outbox lease covers what the broker cannot: a redelivered message whose job is still held
by a live lease, or already done, is a no-op.
"""
from __future__ import annotations

import logging
import os
import threading

from celery import Celery
from kombu import Queue

from . import queue_names

log = logging.getLogger("zhongshu.distributed.celery")

TASK_NAME = "zhongshu.run_job"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"

_local = threading.local()
_state: dict = {}


def broker_url(config: dict | None = None) -> str:
    if config and config.get("BROKER_URL"):
        return config["BROKER_URL"]
    from zhongshu.platform.config import load_config

    return os.environ.get("ZHONGSHU_BROKER_URL") or load_config().get("BROKER_URL") or DEFAULT_BROKER


def make_app(url: str | None = None) -> Celery:
    url = url or broker_url()
    app = Celery("zhongshu", broker=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=int(os.environ.get("ZHONGSHU_CELERY_PREFETCH", "1")),
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue_names()[1],
        task_queues=[Queue(q, routing_key=q) for q in queue_names()],
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        # Redis only: a message not acknowledged within this time is delivered again
        # (the outbox lease makes a second delivery a no-op while the first still runs).
        broker_transport_options={"visibility_timeout": int(os.environ.get("ZHONGSHU_CELERY_VISIBILITY", "3600"))},
    )
    app.task(name=TASK_NAME, bind=False, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(run_job)
    return app


def executor():
    """This process's :class:`JobExecutor` (one Platform per process, made after fork)."""
    pid = os.getpid()
    if _state.get("pid") != pid:
        from zhongshu.platform.config import load_config
        from zhongshu.platform.core import Platform
        from zhongshu.runtime.cli import load_extensions

        load_extensions([m for m in os.environ.get("ZHONGSHU_IMPORTS", "").split(",") if m.strip()])
        _state.clear()
        _state.update(pid=pid, platform=Platform(load_config()), lock=threading.Lock())
    ex = getattr(_local, "executor", None)
    if ex is None or getattr(_local, "pid", None) != pid:
        from .executor import JobExecutor

        zs = _state["platform"]
        lease = float(zs.config.get("JOB_LEASE_SECONDS") or os.environ.get("ZHONGSHU_JOB_LEASE_SECONDS") or 60)
        ex = JobExecutor(zs, lease_seconds=lease)
        _local.executor, _local.pid = ex, pid
    return ex


def run_job(job_id: int) -> str:
    """The task: claim outbox job ``job_id`` and run it (a no-op when it is not due)."""
    return executor().execute(int(job_id))


_app: Celery | None = None


def get_app() -> Celery:
    global _app
    if _app is None:
        _app = make_app()
    return _app


def __getattr__(name):  # `celery -A zhongshu.runtime.distributed.celery_app` looks for `app` / `celery`
    if name in ("app", "celery"):
        return get_app()
    raise AttributeError(name)

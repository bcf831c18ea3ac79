"""Many-node runtime: outbox jobs executed by Celery workers.

The outbox table stays the source of truth (written in the business transaction, see
``zhongshu.runtime.outbox``). Celery is only the transport that spreads the work over
worker nodes:

* :mod:`.relay` — ``zhongshu relay``: reads due outbox job ids (marking them with a short
  publish lease so that two relays never publish the same job twice) and publishes one
  Celery task per job to the queue of its priority (``orders`` / ``default`` / ``low``);
* :mod:`.celery_app` — the Celery application and its one task ``zhongshu.run_job``;
* :mod:`.executor` — runs one job by id with the same claim / lease / retry / dead-letter
  code as :class:`zhongshu.runtime.worker.Worker` (it *is* a ``Worker``);
* :mod:`.cli` — ``zhongshu relay``, ``zhongshu celery-worker``, ``zhongshu doctor``.

A task delivered twice finds its row already claimed or done and does nothing; a worker
killed mid-job leaves a lease that expires, after which the relay publishes the job again.
"""
from __future__ import annotations

import os

QUEUES = ("orders", "default", "low")


def queue_prefix() -> str:
    """``ZHONGSHU_CELERY_QUEUE_PREFIX``: lets several deployments (or test runs) share one
    broker without sharing queues."""
    return os.environ.get("ZHONGSHU_CELERY_QUEUE_PREFIX", "")


def queue_names() -> tuple[str, ...]:
    return tuple(queue_prefix() + q for q in QUEUES)


def queue_for(priority: int) -> str:
    """Priority 0 (order processing) → ``orders``; 1–5 → ``default``; 6–9 → ``low``."""
    if priority <= 0:
        base = "orders"
    elif priority <= 5:
        base = "default"
    else:
        base = "low"
    return queue_prefix() + base

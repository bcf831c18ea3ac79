"""``zhongshu relay``, ``zhongshu celery-worker`` and ``zhongshu doctor`` (added to the
``zhongshu`` group by ``platform/cli.py`` through ``COMMANDS``)."""
from __future__ import annotations

import os
import sys
import threading

import click

from zhongshu.runtime.cli import _import_option, _logging, _platform, _stop_on_signals, load_extensions

from . import queue_names


@click.command("relay")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10000), help="jobs published per pass")
@click.option("--poll", default=0.2, show_default=True, type=click.FloatRange(0.01, 3600),
              help="seconds between passes when idle and not woken (on PostgreSQL committed jobs wake the relay)")
@click.option("--republish-after", default=300, show_default=True, type=click.IntRange(5, 86400),
              help="seconds before a published job that no worker claimed is published again (its message is "
                   "taken as lost); keep it above max-inflight / jobs claimed per second")
@click.option("--overload-threshold", default=0, show_default=True, type=click.IntRange(0),
              help="more due priority-0 jobs than this hold back lower priorities")
@click.option("--max-inflight", default=200, show_default=True, type=click.IntRange(1),
              help="most jobs published but not yet claimed by a worker (about 10 per worker process is plenty)")
@click.option("--broker", default=None, help="broker URL (default: BROKER_URL / ZHONGSHU_BROKER_URL)")
@click.option("-v", "--verbose", is_flag=True)
def relay(batch, poll, republish_after, overload_threshold, max_inflight, broker, verbose):
    """Publish due outbox jobs as Celery tasks until SIGTERM/SIGINT (any number may run)."""
    from .celery_app import make_app
    from .relay import Relay, celery_publisher

    _logging(verbose)
    zs = _platform()
    app = make_app(broker) if broker else None
    r = Relay(zs, celery_publisher(app), batch=batch, republish_after=republish_after,
              overload_threshold=overload_threshold, max_inflight=max_inflight)
    stop = threading.Event()
    _stop_on_signals(stop)
    click.echo(f"relay {r.name}: publishing to {(app.conf.broker_url if app else 'the configured broker')}")
    r.run_forever(stop, poll)
    zs.close()
    click.echo(f"relay stopped ({r.published} published)")


@click.command("celery-worker", context_settings={"ignore_unknown_options": True})
@click.option("--queues", "-Q", default=None,
              help="queues to consume, comma-separated (default: orders,default,low, with ZHONGSHU_CELERY_QUEUE_PREFIX)")
@click.option("--concurrency", "-c", default=None, type=int, help="pool size (default: CPU count)")
@click.option("--pool", default="prefork", show_default=True, type=click.Choice(["prefork", "threads", "solo"]))
@click.option("--lease", "lease_seconds", default=None, type=click.IntRange(5, 86400),
              help="seconds a claimed job stays with its worker (default JOB_LEASE_SECONDS, 60)")
@click.option("--hostname", "-n", default=None)
@click.option("--loglevel", "-l", default="INFO")
@_import_option
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def celery_worker(queues, concurrency, pool, lease_seconds, hostname, loglevel, imports, celery_args):
    """Run a Celery worker that executes outbox jobs (extra arguments go to celery)."""
    if imports:
        os.environ["ZHONGSHU_IMPORTS"] = ",".join(filter(None, [os.environ.get("ZHONGSHU_IMPORTS", ""), *imports]))
    if lease_seconds:
        os.environ["ZHONGSHU_JOB_LEASE_SECONDS"] = str(lease_seconds)
    # Handlers are registered before the pool forks (children inherit them); the
    # database engine is created in each child on its first task.
    load_extensions([m for m in os.environ.get("ZHONGSHU_IMPORTS", "").split(",") if m.strip()])
    from .celery_app import get_app

    argv = ["worker", "-Q", queues or ",".join(queue_names()), "--pool", pool, "-l", loglevel, "--without-gossip", "--without-mingle",
            "--without-heartbeat"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    if hostname:
        argv += ["-n", hostname]
    get_app().worker_main(argv + list(celery_args))


@click.command("doctor")
def doctor():
    """Check this deployment's configuration and connectivity (exit 1 on a FAIL)."""
    from zhongshu.platform.doctor import report, run_checks

    text, code = report(run_checks())
    click.echo(text)
    sys.exit(code)


COMMANDS = [relay, celery_worker, doctor]

"""``zhongshu worker`` and ``zhongshu scheduler``: the runtime's processes for deployments
that run them apart from the web nodes (``platform/cli.py`` adds ``COMMANDS`` to the
``zhongshu`` group). Both stop cleanly on SIGTERM / SIGINT: the worker finishes the job it
is running, the scheduler waits for running tasks and hands its lease over."""
from __future__ import annotations

import importlib
import logging
import signal
import threading

import click

#: modules that register outbox handlers, periodic tasks and schedule providers when
#: imported; missing ones are skipped (the parts are optional)
EXTENSION_MODULES = ("zhongshu.runtime.handlers", "zhongshu.runtime.rules", "zhongshu.connectors.service")

log = logging.getLogger("zhongshu.runtime.cli")


def load_extensions(extra: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Imports the modules that register handlers/tasks; returns those imported."""
    loaded = []
    for module in (*EXTENSION_MODULES, *extra):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if module in extra or e.name != module:
                raise
            continue
        loaded.append(module)
    return loaded


def _platform():
    from zhongshu.platform.config import load_config
    from zhongshu.platform.core import Platform

    return Platform(load_config())


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum, _frame):
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


_import_option = click.option("--import", "imports", multiple=True, metavar="MODULE",
                              help="also import MODULE (registers more handlers or tasks); repeatable")


@click.command("worker")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 256),
              help="worker threads in this process")
@click.option("--kinds", default="", help="only these job kinds, comma-separated (default: all)")
@click.option("--batch", default=20, show_default=True, type=click.IntRange(1, 1000), help="jobs claimed at a time")
@click.option("--lease", "lease_seconds", default=60, show_default=True, type=click.IntRange(5, 86400),
              help="seconds a claimed job stays with this worker before others may take it")
@click.option("--max-priority", default=None, type=click.IntRange(0, 9),
              help="never take jobs of a lower priority (higher number) than this")
@click.option("--overload-threshold", default=0, show_default=True, type=click.IntRange(0),
              help="more due priority-0 jobs than this make lower priorities wait")
@click.option("--poll", default=0.5, show_default=True, type=click.FloatRange(0.01, 60), help="seconds between polls when idle")
@_import_option
@click.option("-v", "--verbose", is_flag=True)
def worker(concurrency, kinds, batch, lease_seconds, max_priority, overload_threshold, poll, imports, verbose):
    """Run outbox workers until SIGTERM/SIGINT."""
    from .worker import Worker, default_name

    _logging(verbose)
    zs = _platform()
    loaded = load_extensions(imports)
    stop = threading.Event()
    _stop_on_signals(stop)
    base = default_name()
    kind_list = [k.strip() for k in kinds.split(",") if k.strip()] or None
    threads = []
    for i in range(concurrency):
        w = Worker(zs, name=base if concurrency == 1 else f"{base}/{i}", kinds=kind_list, batch=batch,
                   lease_seconds=lease_seconds, max_priority=max_priority, overload_threshold=overload_threshold)
        t = threading.Thread(target=w.run_forever, args=(stop, poll), name=f"worker-{i}", daemon=True)
        t.start()
        threads.append(t)
    click.echo(f"worker {base}: {concurrency} thread(s), kinds {','.join(kind_list or ['all'])}, "
               f"modules {', '.join(loaded) or '-'}")
    while not stop.wait(1.0):
        pass
    for t in threads:
        t.join()
    zs.close()
    click.echo("worker stopped")


@click.command("scheduler")
@_import_option
@click.option("-v", "--verbose", is_flag=True)
def scheduler(imports, verbose):
    """Run the scheduler until SIGTERM/SIGINT (only the elected leader fires)."""
    from .scheduler import Scheduler

    _logging(verbose)
    zs = _platform()
    loaded = load_extensions(imports)
    stop = threading.Event()
    _stop_on_signals(stop)
    sched = Scheduler(zs).start()
    click.echo(f"scheduler {sched.holder}: {'leader' if sched.is_leader() else 'standby'}, "
               f"modules {', '.join(loaded) or '-'}")
    while not stop.wait(1.0):
        pass
    sched.stop()
    zs.close()
    click.echo("scheduler stopped")


COMMANDS = [worker, scheduler]

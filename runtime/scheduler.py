"""The scheduler: periodic tasks and user schedules on APScheduler, run by one elected
leader even when many processes run a scheduler.

Leader election uses the ``scheduler_leases`` table (row ``name='main'``). A process takes
the lease when it is absent or expired, with one atomic ``INSERT ... ON CONFLICT DO
NOTHING`` / ``UPDATE ... WHERE holder = me OR holder = '' OR expires_at < now``; the holder renews it every
``renew_every`` seconds (5) for ``ttl`` seconds (15). ``stop()`` hands the lease back at
once (``holder=''``, ``expires_at=now``); a holder that dies simply stops renewing, and
another process takes over on its next heartbeat after the lease expired (<= ttl +
renew_every seconds). Clocks of the nodes must agree to well under ``ttl`` (NTP).

Every process keeps the same APScheduler jobs (re-synced every ``sync_every`` seconds from
the registry and the schedule providers) but only the leader's scheduler runs them; the
others are paused. Each job also checks ``is_leader()`` right before it runs.

Catch-up policy: jobs coalesce (missed runs become one run) with a large
``misfire_grace_time`` (:data:`MISFIRE_GRACE_SECONDS`). When a process becomes leader it
recomputes every job's next run from the moment the previous leader was last known to be
active (its release time after a clean stop; its last renewal, ``expires_at - ttl``, after
a crash), but never further back than :data:`MISFIRE_GRACE_SECONDS`: runs that fell into
the gap run once, right away; runs the previous leader already made are not repeated
(except one that it started in its last ``ttl`` seconds before dying: at-least-once).

Registering work (the rules engine and the connectors do this at import time)::

    from zhongshu.runtime.scheduler import periodic, register_schedule_provider

    @periodic("rules.fire_due_timers", seconds=10)
    def fire_due_timers(platform): ...

    @register_schedule_provider
    def scheduled_rules(platform):
        return [("rule:42", {"cron": "0 9 * * *", "timezone": "Asia/Shanghai"}, run_rule_42),
                ("pull:7", {"every_seconds": 600}, pull_install_7)]

Callables get the :class:`~zhongshu.platform.core.Platform` as their only argument
(a callable that takes no argument is called without it).
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from zhongshu.platform.db import writer
from zhongshu.platform.models import utcnow

from .models import OutboxJob, RuleRun, SchedulerLease
from .wakeup import jobs_committed

log = logging.getLogger("zhongshu.scheduler")

LEASE_NAME = "main"
LEASE_TTL = 15.0
RENEW_EVERY = 5.0
SYNC_EVERY = 10.0
#: missed runs older than this are not caught up (coalesced runs within it run once)
MISFIRE_GRACE_SECONDS = 24 * 3600
#: default of the config key RUN_LOG_RETENTION_DAYS
RUN_LOG_RETENTION_DAYS = 30
PRUNE_CHUNK = 5000


# -- registries ------------------------------------------------------------------------------

@dataclass
class Periodic:
    name: str
    seconds: float
    fn: Callable


PERIODIC: dict[str, Periodic] = {}
SCHEDULE_PROVIDERS: list[Callable] = []


def periodic(name: str, seconds: float):
    """Registers ``fn(platform)`` to run every ``seconds`` on the leader (first run as
    soon as a leader has it). Registering the same name again replaces it."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")

    def register(fn):
        PERIODIC[name] = Periodic(name, float(seconds), fn)
        return fn

    return register


def register_schedule_provider(fn: Callable):
    """Registers ``fn(platform) -> [(job_id, trigger_spec, callable), ...]``. It is called
    every ~10 s in every scheduler process; jobs are added, replaced (when the
    trigger spec changes) and removed to match. ``trigger_spec`` is ``{"cron": "*/10 * * * *"}``
    (five fields; optional ``"timezone"``, default the config's TIMEZONE) or
    ``{"every_seconds": 600}``. A provider that raises keeps its previous jobs."""
    if fn not in SCHEDULE_PROVIDERS:
        SCHEDULE_PROVIDERS.append(fn)
    return fn


def unregister_schedule_provider(fn: Callable) -> None:
    if fn in SCHEDULE_PROVIDERS:
        SCHEDULE_PROVIDERS.remove(fn)


# -- helpers ---------------------------------------------------------------------------------

def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _aware(naive_utc: datetime) -> datetime:
    return naive_utc.replace(tzinfo=timezone.utc) if naive_utc.tzinfo is None else naive_utc


def _call(fn: Callable, platform):
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                  and (p.default is p.empty or p.kind == p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        params = [None]
    return fn(platform) if params else fn()


def make_trigger(spec: dict, default_tz: str = "UTC", start: datetime | None = None):
    """An APScheduler trigger from ``{"cron": "...", "timezone": "..."}`` or
    ``{"every_seconds": n}`` (first fire at ``start``, default one interval from now);
    ValueError when the spec is not understood."""
    if not isinstance(spec, dict):
        raise ValueError("a trigger spec must be an object")
    if "cron" in spec:
        tz = ZoneInfo(spec.get("timezone") or default_tz)
        return CronTrigger.from_crontab(str(spec["cron"]), timezone=tz)
    if "every_seconds" in spec:
        n = float(spec["every_seconds"])
        if n < 1:
            raise ValueError("every_seconds must be at least 1")
        return IntervalTrigger(seconds=n, timezone=timezone.utc, start_date=start and _aware(start))
    raise ValueError(f"unknown trigger spec {spec!r} (use cron or every_seconds)")


def next_after(trigger, now: datetime) -> datetime | None:
    """The trigger's first fire time strictly after ``now``."""
    nxt = trigger.get_next_fire_time(None, now)
    while nxt is not None and nxt <= now:
        nxt = trigger.get_next_fire_time(nxt, now)
    return nxt


@dataclass
class _Entry:
    spec_key: str
    fn: Callable
    owner: object  # "periodic" or the provider function
    last_run: datetime | None = None
    last_error: str | None = None
    runs: int = field(default=0)


# -- the scheduler ---------------------------------------------------------------------------

class Scheduler:
    """One per process. ``start()`` runs it in the background; ``tick()`` is one
    synchronous pass (elect, sync, run what is due) for tests and scripts."""

    def __init__(self, platform, holder: str | None = None, *, name: str = LEASE_NAME, ttl: float = LEASE_TTL,
                 renew_every: float = RENEW_EVERY, sync_every: float = SYNC_EVERY,
                 clock: Callable[[], datetime] = utcnow, workers: int = 4):
        self.platform = platform
        self.holder = (holder or default_holder())[:200]
        self.name = name
        self.ttl = timedelta(seconds=ttl)
        self.renew_every = renew_every
        self.sync_every = timedelta(seconds=sync_every)
        self.clock = clock
        self.default_tz = platform.config.get("TIMEZONE") or "UTC"
        self._engine = writer(platform.engine)
        self._aps = BackgroundScheduler(
            timezone=timezone.utc, executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_SECONDS, "max_instances": 1})
        self._entries: dict[str, _Entry] = {}
        self._lease_until: datetime | None = None
        self._leading = False  # what the APScheduler state was last switched to
        self._background = False
        self._last_sync: datetime | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- leadership -----------------------------------------------------------------------
    def is_leader(self) -> bool:
        until = self._lease_until
        return until is not None and self.clock() < until

    def _elect(self) -> tuple[bool, datetime | None]:
        """Takes or renews the lease. Returns (holding it now, when the previous holder
        was last known active — only meaningful when we just took it over)."""
        now = self.clock()
        expires = now + self.ttl
        t = SchedulerLease.__table__
        with self._engine.begin() as conn:
            q = select(t.c.holder, t.c.expires_at).where(t.c.name == self.name)
            if conn.dialect.name == "postgresql":
                q = q.with_for_update()
            row = conn.execute(q).first()
            if row is None:
                ins = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(t)
                got = conn.execute(ins.values(name=self.name, holder=self.holder, expires_at=expires)
                                   .on_conflict_do_nothing(index_elements=["name"])
                                   .returning(t.c.name)).first() is not None
                prev_active = None
            else:
                got = conn.execute(update(t).where(t.c.name == self.name, or_(t.c.holder == self.holder,
                                                                             t.c.holder == "", t.c.expires_at < now))
                                   .values(holder=self.holder, expires_at=expires)).rowcount == 1
                prev_holder, prev_expires = row
                # a clean release stamps the release time; a live holder renews every
                # renew_every, so a dead one was last seen about ttl before expiry
                prev_active = prev_expires if prev_holder == "" else prev_expires - self.ttl
        self._lease_until = expires if got else None
        return got, prev_active

    def release(self) -> None:
        """Hands the lease back so that another process takes over at once."""
        t = SchedulerLease.__table__
        self._lease_until = None
        try:
            with self._engine.begin() as conn:
                conn.execute(update(t).where(t.c.name == self.name, t.c.holder == self.holder)
                             .values(holder="", expires_at=self.clock()))
        except Exception:  # pragma: no cover - the lease then expires on its own
            log.exception("scheduler %s: could not release the lease", self.holder)

    def heartbeat(self, force_sync: bool = False) -> bool:
        """Renews/takes the lease, switches between leading and following, re-syncs the
        jobs when due. Returns whether this process leads."""
        with self._lock:
            self._ensure_aps()
            prev_active = None
            try:
                got, prev_active = self._elect()
            except Exception:
                log.exception("scheduler %s: lease renewal failed", self.holder)
            now = self.clock()
            if force_sync or self._last_sync is None or now - self._last_sync >= self.sync_every:
                self.sync()
            leading = self.is_leader()
            if leading and not self._leading:
                log.info("scheduler %s is now the leader", self.holder)
                self._catch_up(prev_active)
                if self._background:
                    self._aps.resume()
            elif not leading and self._leading:
                log.info("scheduler %s is no longer the leader", self.holder)
                self._aps.pause()
            self._leading = leading
            return leading

    def _catch_up(self, prev_active: datetime | None) -> None:
        if prev_active is None:
            return
        now = _aware(self.clock())
        since = max(_aware(prev_active), now - timedelta(seconds=MISFIRE_GRACE_SECONDS))
        for job in self._aps.get_jobs():
            nxt = job.trigger.get_next_fire_time(None, since)
            if nxt is not None:
                job.modify(next_run_time=nxt)

    # -- jobs -----------------------------------------------------------------------------
    def _ensure_aps(self) -> None:
        if not self._aps.running:
            self._aps.start(paused=True)

    def _guarded(self, job_id: str):
        def run():
            if not self.is_leader():
                log.debug("scheduler %s: skipping %s (not the leader)", self.holder, job_id)
                return
            entry = self._entries.get(job_id)
            if entry is None:
                return
            entry.last_run = self.clock()
            entry.runs += 1
            try:
                _call(entry.fn, self.platform)
                entry.last_error = None
                jobs_committed(self.platform)  # a task may have enqueued jobs: wake their consumers
            except Exception as exc:
                entry.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("scheduled job %s failed", job_id)

        run.__name__ = f"zhongshu_job_{job_id}"
        return run

    def sync(self) -> None:
        """Makes the APScheduler jobs match the registry and the providers."""
        with self._lock:
            self._ensure_aps()
            wanted: dict[str, tuple[str, dict, Callable, object]] = {}
            for p in list(PERIODIC.values()):
                spec = {"every_seconds": p.seconds}
                wanted[f"periodic:{p.name}"] = (json.dumps(spec, sort_keys=True), spec, p.fn, "periodic")
            for provider in list(SCHEDULE_PROVIDERS):
                try:
                    items = list(_call(provider, self.platform) or [])
                except Exception:
                    log.exception("schedule provider %r failed; keeping its jobs", provider)
                    for jid, e in self._entries.items():
                        if e.owner is provider:
                            wanted[jid] = (e.spec_key, json.loads(e.spec_key), e.fn, provider)
                    continue
                for item in items:
                    try:
                        job_id, spec, fn = item
                        wanted[f"provider:{job_id}"] = (json.dumps(spec, sort_keys=True, default=str), spec, fn, provider)
                    except (TypeError, ValueError):
                        log.error("schedule provider %r returned a bad entry %r", provider, item)
            for jid in [j for j in self._entries if j not in wanted]:
                self._entries.pop(jid, None)
                if self._aps.get_job(jid):
                    self._aps.remove_job(jid)
            for jid, (key, spec, fn, owner) in wanted.items():
                old = self._entries.get(jid)
                if old is not None and old.spec_key == key:
                    old.fn, old.owner = fn, owner  # same schedule: keep its next run time
                    continue
                now = self.clock()
                # periodic tasks start at once; provider intervals one interval from now
                start = now if owner == "periodic" else now + timedelta(seconds=float(spec.get("every_seconds") or 0))
                try:
                    trigger = make_trigger(spec, self.default_tz, start)
                except Exception as exc:
                    log.error("scheduled job %s has an invalid trigger %r: %s", jid, spec, exc)
                    if old is not None:
                        self._entries.pop(jid, None)
                        if self._aps.get_job(jid):
                            self._aps.remove_job(jid)
                    continue
                self._entries[jid] = _Entry(key, fn, owner)
                # first run computed on this scheduler's clock
                first = trigger.get_next_fire_time(None, _aware(now))
                self._aps.add_job(self._guarded(jid), trigger, id=jid, name=jid, replace_existing=True,
                                  next_run_time=first)
            self._last_sync = self.clock()

    def jobs(self) -> dict[str, dict]:
        """The jobs known to this process, with their next run and last outcome."""
        out = {}
        for job in self._aps.get_jobs():
            e = self._entries.get(job.id)
            out[job.id] = {"next_run_time": job.next_run_time, "trigger": str(job.trigger),
                           "last_run": e.last_run if e else None, "runs": e.runs if e else 0,
                           "last_error": e.last_error if e else None}
        return out

    # -- driving it -----------------------------------------------------------------------
    def tick(self) -> list[str]:
        """One synchronous pass: take/renew the lease, sync the jobs and, when leading
        (and not started in the background), run every due job once. Returns the ids run."""
        self.heartbeat(force_sync=True)
        if self._background or not self.is_leader():
            return []
        now = _aware(self.clock())
        ran = []
        for job in sorted(self._aps.get_jobs(), key=lambda j: j.id):
            if job.next_run_time is not None and job.next_run_time <= now:
                job.func()
                ran.append(job.id)
                nxt = next_after(job.trigger, now)
                if nxt is None:
                    self._aps.remove_job(job.id)
                else:
                    job.modify(next_run_time=nxt)
        return ran

    def start(self) -> "Scheduler":
        """Runs in the background: a heartbeat thread for the lease and the job sync, and
        APScheduler's own thread, resumed only while this process leads."""
        with self._lock:
            if self._thread is not None:
                return self
            self._background = True
            self._stop.clear()
            self.heartbeat(force_sync=True)
            self._thread = threading.Thread(target=self._loop, name="zhongshu-scheduler", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.renew_every):
            try:
                self.heartbeat()
            except Exception:  # pragma: no cover - heartbeat logs its own failures
                log.exception("scheduler heartbeat failed")

    def stop(self, wait: bool = True) -> None:
        """Stops running jobs (waiting for running ones when ``wait``), then releases the
        lease so that another process takes over on its next heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.renew_every + 5)
            self._thread = None
        with self._lock:
            if self._aps.running:
                self._aps.shutdown(wait=wait)
            if self._leading or self._lease_until is not None:
                self.release()
            self._leading = False
            self._background = False


def start_in_process(platform, holder: str | None = None, **kwargs) -> Callable[[], None]:
    """Starts a background :class:`Scheduler` and returns its stop function (also
    appended to ``platform.stoppers``); ``stop.scheduler`` is the instance."""
    sched = Scheduler(platform, holder, **kwargs).start()

    def stop() -> None:
        sched.stop()

    stop.scheduler = sched  # type: ignore[attr-defined]
    platform.stoppers.append(stop)
    return stop


# -- built-in periodic tasks ---------------------------------------------------------------------

def retention_days(platform) -> int:
    raw = platform.config.get("RUN_LOG_RETENTION_DAYS", RUN_LOG_RETENTION_DAYS)
    try:
        return int(raw)
    except (TypeError, ValueError):
        log.warning("RUN_LOG_RETENTION_DAYS=%r is not a whole number; using %s", raw, RUN_LOG_RETENTION_DAYS)
        return RUN_LOG_RETENTION_DAYS


def prune_run_log(platform, now: datetime | None = None) -> dict:
    """Deletes rule runs older than RUN_LOG_RETENTION_DAYS, and finished (``done``) outbox
    jobs older than that (dead ones stay until replayed). In chunks, so that no
    transaction holds locks for long. 0 or less keeps everything."""
    days = retention_days(platform)
    if days <= 0:
        return {"rule_runs": 0, "outbox": 0}
    cutoff = (now or utcnow()) - timedelta(days=days)
    counts = {}
    for key, table, cond in (
        ("rule_runs", RuleRun.__table__, RuleRun.__table__.c.at < cutoff),
        ("outbox", OutboxJob.__table__, (OutboxJob.__table__.c.status == "done") & (OutboxJob.__table__.c.finished_at < cutoff)),
    ):
        total = 0
        while True:
            ids = select(table.c.id).where(cond).limit(PRUNE_CHUNK).scalar_subquery()
            with writer(platform.engine).begin() as conn:
                n = conn.execute(delete(table).where(table.c.id.in_(ids))).rowcount
            total += n
            if n < PRUNE_CHUNK:
                break
        counts[key] = total
    if any(counts.values()):
        log.info("pruned the run log older than %s days: %s", days, counts)
    return counts


@periodic("runtime.prune_run_log", seconds=3600)
def _prune_run_log(platform):
    prune_run_log(platform)


@periodic("runtime.release_outbox_leases", seconds=30)
def _release_outbox_leases(platform):
    from .worker import release_expired

    release_expired(platform)

"""Wake-ups for outbox consumers: PostgreSQL ``LISTEN``/``NOTIFY`` on top of polling.

Whoever commits new outbox jobs calls :func:`jobs_committed` (intake after storing a
webhook, the workers after a job ran); a :class:`Notifier` thread of that process then
sends ``NOTIFY zhongshu_outbox`` on a connection of its own. The relay and the
in-process workers wait on a :class:`Listener` (``LISTEN zhongshu_outbox``) instead of
sleeping a full poll interval, so a committed job is picked up at once.

Why after the commit and not from the inserting transaction (or a trigger): PostgreSQL
serialises the *commits* of all transactions that sent a ``NOTIFY``, including their WAL
flush, so a ``NOTIFY`` in every intake transaction cut concurrent insert throughput
about 8x on this machine (pgbench, 16 clients). A ``NOTIFY`` alone in its own
transaction writes no WAL and costs the inserts nothing. Sent after the commit, a
notification can never arrive before the rows it announces are visible.

Polling stays the safety net, unchanged: a lost notification (listener reconnecting,
notifier connection down, a job made runnable by time: retries, leases, ``run_at``) is
found by the next poll. Nothing here decides what runs; the claim queries do. SQLite has no
LISTEN: there :func:`jobs_committed` wakes the consumers of its own process only (the
embedded server runs intake and worker in one process); others poll. With
``ZHONGSHU_OUTBOX_NOTIFY=false`` (e.g. behind a transaction-pooling PgBouncer, where
LISTEN does not work) all of this is off and consumers poll.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref

from zhongshu.platform.db import writer

log = logging.getLogger("zhongshu.wakeup")

CHANNEL = "zhongshu_outbox"
#: a process sends at most one NOTIFY per this many seconds (requests in between are merged):
#: an idle system is woken at once, a busy one gets no more than 50 notifications/s per process
NOTIFY_INTERVAL = 0.02
#: a notifier idle this long closes its connection
IDLE_CLOSE = 60.0
#: a consumer woken by notifications starts at most one pass per this many seconds: a busy
#: outbox sends many, and each pass is a few queries (an idle consumer still starts at once)
MIN_PASS_GAP = 0.05
#: how often the listener thread looks at its stop flag
LISTEN_SLICE = 0.5


#: platform -> wake-ups on? Read once per platform object (and so once per process):
#: :func:`jobs_committed` runs after every intake commit and job, and reading the config
#: and the environment each time cost a lookup and a parse per webhook.
_enabled: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def enabled(platform) -> bool:
    """Wake-ups on (``OUTBOX_NOTIFY`` in the config, else ``ZHONGSHU_OUTBOX_NOTIFY``, default
    true); read on the first call for ``platform``, so a change later needs a restart."""
    try:
        return _enabled[platform]
    except KeyError:
        pass
    v = platform.config.get("OUTBOX_NOTIFY", os.environ.get("ZHONGSHU_OUTBOX_NOTIFY", "true"))
    on = _enabled[platform] = str(v).strip().lower() not in {"0", "false", "no", "off"}
    return on


def _uses_listen(platform) -> bool:
    return platform.dialect == "postgresql"


def _connect(platform):
    """A dedicated autocommit psycopg connection to the primary (not from the pool)."""
    import psycopg

    engine = writer(platform.engine)
    _, params = engine.dialect.create_connect_args(engine.url)
    params = {k: v for k, v in params.items() if k != "context"}
    params.setdefault("connect_timeout", 5)
    return psycopg.connect(autocommit=True, **params)


class Notifier:
    """Sends ``NOTIFY`` for one process, from its own thread: :meth:`request` never blocks
    and never touches the database; many requests in a burst become one notification per
    ``NOTIFY_INTERVAL``. Failures are logged and dropped (polling covers them)."""

    def __init__(self, platform):
        self._platform = weakref.ref(platform)
        self._wanted = threading.Event()
        self._pid = None
        self._lock = threading.Lock()
        self._closed = False
        self.sent = 0

    def request(self) -> None:
        if self._pid != os.getpid():  # first use, or a forked child: the thread is not ours
            with self._lock:
                if self._pid != os.getpid():
                    self._wanted = threading.Event()
                    threading.Thread(target=self._run, name="zhongshu-notify", daemon=True).start()
                    self._pid = os.getpid()
        self._wanted.set()

    def _run(self) -> None:
        conn = None
        wanted = self._wanted
        while True:
            if not wanted.wait(IDLE_CLOSE):  # idle: give the connection back (and end with the platform)
                _close_quietly(conn)
                conn = None
                if self._platform() is None:
                    break
                continue
            wanted.clear()
            platform = self._platform()
            if platform is None or self._closed:
                break
            try:
                if conn is None or conn.closed:
                    conn = _connect(platform)
                conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
                self.sent += 1
            except Exception as e:  # noqa: BLE001 - a lost wake-up only costs a poll interval
                log.debug("outbox notify failed (consumers will poll): %s", e)
                _close_quietly(conn)
                conn = None
                time.sleep(1.0)
            del platform
            time.sleep(NOTIFY_INTERVAL)  # merge the requests of a burst
        _close_quietly(conn)

    def close(self) -> None:
        self._closed = True
        self._wanted.set()


def _close_quietly(conn) -> None:
    try:
        if conn is not None:
            conn.close()
    except Exception:  # noqa: BLE001
        pass


class LocalWakeup:
    """Wake-ups within one process: consumers wait with :meth:`wait` until :meth:`bump`
    moves :attr:`generation` on. Used as is where the database has no LISTEN (SQLite: the
    embedded server runs intake and its worker in one process)."""

    def __init__(self):
        self._cond = threading.Condition()
        self.generation = 0

    def bump(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float, stop: threading.Event | None = None) -> bool:
        """Until :attr:`generation` differs from ``seen`` (True), ``timeout`` passes or
        ``stop`` is set (False). ``stop`` is looked at every quarter second."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.generation == seen:
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    return False
                self._cond.wait(min(left, 0.25))
            return True

    def close(self) -> None:
        self.bump()


class Listener(LocalWakeup):
    """``LISTEN`` on its own connection and thread. Every notification, and every
    (re)connect (one may have been missed meanwhile), moves :attr:`generation` on and wakes
    all waiters."""

    def __init__(self, platform):
        super().__init__()
        self._platform = weakref.ref(platform)
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zhongshu-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            platform = self._platform()
            if platform is None:
                return
            try:
                conn = _connect(platform)
            except Exception as e:  # noqa: BLE001
                log.warning("outbox listener cannot connect (polling meanwhile): %s", e)
                del platform
                self._stop.wait(backoff)
                backoff = min(30.0, backoff * 2)
                continue
            del platform
            try:
                with conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    backoff = 0.5
                    self.bump()  # anything committed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_SLICE):
                            self.bump()
            except Exception as e:  # noqa: BLE001 - connection lost: reconnect, poll meanwhile
                log.warning("outbox listener lost its connection (polling meanwhile): %s", e)
            finally:
                self.connected.clear()
            self._stop.wait(backoff)

    def close(self) -> None:
        self._stop.set()
        self.bump()
        self._thread.join(LISTEN_SLICE * 4)


def describe(wake: LocalWakeup | None) -> str:
    """For consumers' start-up log lines."""
    return "LISTEN" if isinstance(wake, Listener) else "in-process" if wake is not None else "polling only"


_notifiers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_listeners: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def jobs_committed(platform) -> None:
    """Tell the consumers that outbox jobs were committed (call after the commit; cheap,
    never blocks, never raises)."""
    try:
        if not enabled(platform):
            return
        if not _uses_listen(platform):
            got = _listeners.get(platform)
            if got is not None and got[0] == os.getpid():
                got[1].bump()  # consumers in this process; other processes poll
            return
        n = _notifiers.get(platform)
        if n is None:
            with _guard:
                n = _notifiers.get(platform)
                if n is None:
                    n = _notifiers[platform] = Notifier(platform)
                    platform.stoppers.append(n.close)
        n.request()
    except Exception:  # noqa: BLE001 - a wake-up is an optimisation, never a failure
        log.debug("outbox wake-up request failed", exc_info=True)


def listener(platform) -> LocalWakeup | None:
    """What this process's consumers of ``platform`` wait on: a :class:`Listener` on
    PostgreSQL (started on first use, stopped by ``platform.close()``), a
    :class:`LocalWakeup` elsewhere (woken by :func:`jobs_committed` in this process), or
    None when wake-ups are turned off."""
    if not enabled(platform):
        return None
    with _guard:
        got = _listeners.get(platform)
        if got is None or got[0] != os.getpid():
            wake = Listener(platform) if _uses_listen(platform) else LocalWakeup()
            got = _listeners[platform] = (os.getpid(), wake)
            platform.stoppers.append(wake.close)
    return got[1]

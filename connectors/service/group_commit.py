"""Group commit: the writes of many concurrent callers in one transaction.

A caller hands its item to :meth:`GroupCommitter.submit` and blocks until the transaction
that holds it has **committed** (or failed): only then does it answer its client, so nothing
is acknowledged before it is durable. A committer thread takes every item waiting at that
moment (up to ``max_batch``) and runs ``write_batch(conn, items)`` in one transaction; while
it commits, the next items gather. So under load a batch costs one statement round trip and
one commit (one WAL flush) for many items, and an idle server adds no delay: a lone item is
written at once. A committer thread keeps its connection while it has work (no pool
checkout and liveness ping per batch); after any error it is closed, and a batch that failed
on a kept connection is tried once more on a new one (safe: ``write_batch`` must be
idempotent — a batch whose commit was lost in transit is then found already stored).

``write_batch`` returns one outcome per item: a value for the caller, or an exception
instance that is raised in that caller only (the rest of the batch still commits). If the
whole transaction fails, every caller of a batch of one gets the error; a bigger batch is
retried item by item, each in its own transaction, so one item the database refuses cannot
fail the others — except when the database is unreachable (``fatal``), which is everyone's
error at once.

Committer threads start on first use in the process that uses them (safe after fork) and
exit after ``idle_exit`` seconds without work.
"""
from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import Any, Callable

log = logging.getLogger("zhongshu.connectors.group_commit")


class _Waiter:
    __slots__ = ("item", "done", "value", "error")

    def __init__(self, item):
        self.item = item
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class GroupCommitter:
    def __init__(self, connect: Callable[[], Any], write_batch: Callable[[Any, list], list], *,
                 fatal: tuple = (), max_batch: int = 200, threads: int = 1, idle_exit: float = 5.0,
                 after_commit: Callable[[list, list], None] | None = None, name: str = "group-commit"):
        self.connect, self.write_batch, self.fatal = connect, write_batch, fatal
        self.max_batch, self.threads, self.idle_exit = max_batch, threads, idle_exit
        self.after_commit, self.name = after_commit, name
        self._queue: deque[_Waiter] = deque()
        self._cond = threading.Condition()
        self._running = 0
        self._idle = 0
        self._pid = os.getpid()
        self.batches = self.items = 0  # counters, for tests and figures

    def submit(self, item, timeout: float | None = None):
        """Write ``item`` with whatever else is waiting; returns its outcome once committed."""
        w = _Waiter(item)
        with self._cond:
            if self._pid != os.getpid():  # forked: the parent's threads do not exist here
                self._pid, self._running, self._idle = os.getpid(), 0, 0
                self._queue.clear()
            self._queue.append(w)
            if self._idle:
                self._cond.notify()
            elif self._running < self.threads:
                self._running += 1
                threading.Thread(target=self._run, name=self.name, daemon=True).start()
        if not w.done.wait(timeout):
            raise TimeoutError("the write was not committed in time")  # it may still commit: the sender retries
        if w.error is not None:
            raise w.error
        return w.value

    def waiting(self) -> int:
        """Items queued and not yet taken into a batch."""
        with self._cond:
            return len(self._queue)

    def _take(self) -> list[_Waiter] | None:
        with self._cond:
            while not self._queue:
                self._idle += 1
                got = self._cond.wait(self.idle_exit)
                self._idle -= 1
                if not got and not self._queue:
                    self._running -= 1
                    return None
            n = min(len(self._queue), self.max_batch)
            return [self._queue.popleft() for _ in range(n)]

    def _run(self):
        holder = _Connection(self.connect)
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                try:
                    self._write(holder, batch)
                except BaseException as e:  # noqa: BLE001 - never leave a caller waiting
                    for w in batch:
                        if not w.done.is_set():
                            w.error = e
                            w.done.set()
        finally:
            holder.close()

    def _write(self, holder: "_Connection", batch: list[_Waiter]):
        reused = holder.conn is not None
        try:
            outcomes = self._transaction(holder, [w.item for w in batch])
        except self.fatal as e:
            if reused:  # the kept connection may have gone stale (server restart): once more on a new one
                return self._write(holder, batch)
            return self._fail(batch, e)
        except Exception as e:  # noqa: BLE001 - one bad item: write the others one by one
            if len(batch) == 1:
                return self._fail(batch, e)
            log.info("%s: a batch of %d failed (%s); writing its items one by one", self.name, len(batch), e)
            for w in batch:
                self._write(holder, [w])
            return
        self.batches += 1
        self.items += len(batch)
        for w, out in zip(batch, outcomes):
            if isinstance(out, BaseException):
                w.error = out
            else:
                w.value = out
            w.done.set()

    def _transaction(self, holder: "_Connection", items: list) -> list:
        conn = holder.get()
        try:
            with conn.begin():
                outcomes = self.write_batch(conn, items)
        except BaseException:
            holder.close()  # whatever state it is in: the next batch starts on a fresh one
            raise
        if len(outcomes) != len(items):
            raise RuntimeError(f"write_batch gave {len(outcomes)} outcomes for {len(items)} items")
        if self.after_commit is not None:
            try:
                self.after_commit(items, outcomes)
            except Exception:  # noqa: BLE001 - committed already: a hook must not fail the callers
                log.exception("%s: after_commit failed", self.name)
        return outcomes

    @staticmethod
    def _fail(batch: list[_Waiter], e: BaseException):
        for w in batch:
            w.error = e
            w.done.set()


class _Connection:
    """A committer thread's connection, opened on first use."""

    def __init__(self, connect):
        self.connect, self.conn = connect, None

    def get(self):
        if self.conn is None:
            self.conn = self.connect()
        return self.conn

    def close(self):
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection is discarded all the same
                log.debug("closing a committer connection failed", exc_info=True)

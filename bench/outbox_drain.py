"""Bench helper: drain the outbox with a real ``zhongshu worker`` process and measure it.

The worker runs as its own process, configured like a deployment (``ZHONGSHU_DATABASE_URL``,
``ZHONGSHU_DATA_DIR``, ``ZHONGSHU_SECRET_KEY``; the credential key file lives in the data
folder, so the worker decrypts what the bench's Platform encrypted). The rate comes from the
outbox rows' own timestamps: the first claim (``locked_until - lease`` of the first batch,
seen while it runs) to the last ``finished_at``. The worker's RSS is read from
``/proc/<pid>/status`` once the outbox is empty, before it is stopped.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import case, func, select

from zhongshu.runtime.models import OutboxJob as J

ZHONGSHU = Path(sys.executable).with_name("zhongshu")
LEASE_SECONDS = 60


def proc_memory_mb(pid: int) -> dict:
    """VmRSS (now) and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(line.split()[1]) / 1024, 1)
    return out


def _snapshot(conn) -> dict:
    """Counts by status and the earliest lease of running jobs, in one query."""
    def n(status):
        return func.count(case((J.status == status, 1)))

    row = conn.execute(select(n("pending"), n("running"), n("done"), n("dead"),
                              func.min(case((J.status == "running", J.locked_until))))).one()
    return dict(zip(("pending", "running", "done", "dead", "first_lease"), row))


def drain_with_worker(zs, url: str, data_dir: str, *, concurrency: int = 1, timeout: float = 600.0,
                      poll: float = 0.01) -> dict:
    """Starts ``zhongshu worker``, waits until nothing is pending or running, reads its
    memory, stops it (SIGTERM) and returns the figures."""
    env = dict(os.environ, ZHONGSHU_DATABASE_URL=url, ZHONGSHU_DATA_DIR=data_dir,
               ZHONGSHU_SECRET_KEY=zs.config["SECRET_KEY"])
    cmd = [str(ZHONGSHU), "worker", "--concurrency", str(concurrency), "--lease", str(LEASE_SECONDS)]
    with zs.engine.connect() as conn:
        before = _snapshot(conn)
    first_claim = None  # naive UTC, from the database rows
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            with zs.engine.connect() as conn:
                now = _snapshot(conn)
            # The first batch is the first claim only if nothing had finished yet when we saw it.
            if first_claim is None and now["first_lease"] is not None and \
                    now["done"] + now["dead"] == before["done"] + before["dead"]:
                first_claim = now["first_lease"] - timedelta(seconds=LEASE_SECONDS)
            if now["pending"] == 0 and now["running"] == 0:
                break
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{log.read()[-2000:]}")
            if time.monotonic() > deadline:
                break
            time.sleep(poll)
        memory = proc_memory_mb(proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    with zs.engine.connect() as conn:
        after = _snapshot(conn)
        first_finish, last_finish, retried = conn.execute(
            select(func.min(J.finished_at), func.max(J.finished_at), func.count(case((J.attempts > 1, 1))))).one()
    drained = after["done"] + after["dead"] - before["done"] - before["dead"]
    # Missed the first batch while it ran (a very fast one): count from the first finish, one job less.
    start, counted, window = (first_claim, drained, "first claim") if first_claim else (first_finish, drained - 1, "first finish")
    seconds = (last_finish - start).total_seconds() if drained and start and last_finish else 0.0
    return {"jobs_drained": drained, "seconds": round(seconds, 3),
            "jobs_per_s": round(counted / seconds, 1) if seconds > 0 else None, "window_from": window,
            # after the first job: the steady rate, without the worker's warm-up
            "jobs_per_s_after_first": round((drained - 1) / (last_finish - first_finish).total_seconds(), 1)
            if drained > 1 and last_finish > first_finish else None,
            # the first job also pays for the worker's first connector call (imports, HTTP client)
            "first_finish_after_claim_s": round((first_finish - first_claim).total_seconds(), 3)
            if first_claim and first_finish else None,
            "done": after["done"] - before["done"], "dead": after["dead"] - before["dead"], "retried": retried,
            "left_pending": after["pending"], "left_running": after["running"],
            "worker_rss_mb": memory.get("VmRSS"), "worker_peak_rss_mb": memory.get("VmHWM"),
            "worker_concurrency": concurrency}

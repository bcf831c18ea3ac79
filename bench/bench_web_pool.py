"""How many PostgreSQL connections a gunicorn web process opens under load: with the old
fixed pool (10 + 20 overflow) and with the pool that follows the threads (deploy/
gunicorn.conf.py: threads + 1, 4 overflow). Counts sessions started on the database
(pg_stat_database.sessions, PostgreSQL 14+) while N requests that each touch the database
(an API call with an unknown bearer token: one token lookup, then 401) run T at a time.

    nice -n 10 .venv/bin/python bench/bench_web_pool.py --threads 16 --requests 3000

Prints, per mode, the sessions opened during the load (new connections: a TCP connect and
authentication each) and requests/s (wall clock: only an indication on a shared machine)."""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sessions(db: str) -> int:
    with psycopg.connect(ADMIN, autocommit=True) as c:
        return c.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (db,)).fetchone()[0]


def backends(db: str) -> int:
    with psycopg.connect(ADMIN, autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db,)).fetchone()[0]


def hit(url: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": "Bearer zs_unknown_token_for_the_benchmark"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def run(mode: str, env: dict, db: str, threads: int, requests: int) -> dict:
    port = free_port()
    proc = subprocess.Popen([str(ROOT / ".venv/bin/gunicorn"), "-c", str(ROOT / "deploy/gunicorn.conf.py"),
                             "--workers", "1", "--threads", str(threads), "--bind", f"127.0.0.1:{port}",
                             "--log-level", "warning"], env=env, cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/api/v1/health", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        url = base + "/api/v1/tenants/acme/tables"
        with ThreadPoolExecutor(threads) as ex:  # warm-up: every thread once
            list(ex.map(hit, [url] * threads * 4))
        before = sessions(db)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as ex:
            codes = list(ex.map(hit, [url] * requests))
        dt = time.perf_counter() - t0
        opened = sessions(db) - before
        return {"mode": mode, "requests": requests, "statuses": sorted(set(codes)), "sessions_opened": opened,
                "per_1000_requests": round(opened * 1000 / requests, 1), "kept_after": backends(db),
                "requests_per_s": round(requests / dt)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    db = f"hx_pool_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{db}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZHONGSHU_DB_")}
        env.update({"ZHONGSHU_DATABASE_URL": url, "ZHONGSHU_DATA_DIR": f"/tmp/{db}", "ZHONGSHU_SECRET_KEY": "bench",
                    "ZHONGSHU_RUN_WORKER": "false", "ZHONGSHU_RUN_SCHEDULER": "false"})
        subprocess.run([str(ROOT / ".venv/bin/zhongshu"), "migrate"], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        old = run("fixed pool 10 + 20 (before)", {**env, "ZHONGSHU_DB_POOL_SIZE": "10", "ZHONGSHU_DB_MAX_OVERFLOW": "20"},
                  db, args.threads, args.requests)
        new = run(f"pool follows threads ({args.threads} + 1, 4 overflow)", env, db, args.threads, args.requests)
        for r in (old, new):
            print(r)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())

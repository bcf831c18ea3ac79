#!/usr/bin/env python
"""Benchmark: CPU time of the bulk create path, in one process (no HTTP server).

``bench_data.py`` times requests by the wall clock, which on a shared, loaded machine mostly
measures the wait for a core. This script runs the same requests -- ``POST .../records
?return=ids`` with batches of 5,000 orders-like records (bench_data's table and data), then
single creates -- through Flask's test client and reports rows per second of this
process's **CPU time** (``time.process_time``), which moves much less with the load. The
database work of PostgreSQL (another process) is not in the figure; SQLite's is.

    .venv/bin/python bench/bench_bulk_cpu.py --db sqlite --batches 4
    .venv/bin/python bench/bench_bulk_cpu.py --db postgresql --pg-db zs_bench_cpu
    .venv/bin/python bench/bench_bulk_cpu.py --profile        # cProfile of the bulk requests

Not a test. Run the old code from its own checkout for A/B pairs.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ZHONGSHU_ARGON2_PROFILE", "test")
os.environ.setdefault("ZHONGSHU_INIT_TEMPLATE", "none")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import TABLE, DataGen  # noqa: E402


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--batches", type=int, default=4, help="bulk requests of --batch rows (default 4)")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--single", type=int, default=200, help="single creates after the bulk load")
    ap.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    ap.add_argument("--pg-db", default="zs_bench_cpu")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)

    from sqlalchemy import create_engine, text

    from zhongshu.platform.app import create_app
    from zhongshu.platform.core import Platform

    work = tempfile.mkdtemp(prefix="zs_bulk_cpu")
    if args.db == "sqlite":
        url = f"sqlite:///{work}/zhongshu.db"
    else:
        e = create_engine(args.pg_url + "/postgres", isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{args.pg_db}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{args.pg_db}"'))
        e.dispose()
        url = f"{args.pg_url}/{args.pg_db}"
    config = {"DATABASE_URL": url, "DATA_DIR": work + "/instance", "SECRET_KEY": "bench", "RUN_WORKER": False,
              "RUN_SCHEDULER": False}
    os.makedirs(config["DATA_DIR"])
    zs = Platform(config)
    zs.create_all()
    try:
        app = create_app(config, platform=zs)
        user = zs.create_user("bench@example.test", "bench-password", name="Bench")
        zs.create_tenant("demo", "Demo", owner_email=user.email)
        client = app.test_client()
        r = client.post("/api/v1/auth/login", json={"email": "bench@example.test", "password": "bench-password"})
        headers = {"X-CSRF-Token": r.get_json()["csrf_token"], "Content-Type": "application/json"}
        assert client.post("/api/v1/tenants/demo/tables", json=TABLE, headers=headers).status_code == 201
        path = "/api/v1/tenants/demo/tables/orders/records"
        gen = DataGen(1)
        bodies = [json.dumps({"records": [gen.row() for _ in range(args.batch)]}, ensure_ascii=False).encode()
                  for _ in range(args.batches)]
        singles = [json.dumps(gen.row(), ensure_ascii=False).encode() for _ in range(args.single)]
        rss0 = _max_rss_mb()
        prof = cProfile.Profile() if args.profile else None
        cpu = wall = 0.0
        for body in bodies:
            c0, w0 = time.process_time(), time.perf_counter()
            if prof:
                prof.enable()
            r = client.post(path + "?return=ids", data=body, headers=headers)
            if prof:
                prof.disable()
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
            assert r.status_code == 201, r.get_data(as_text=True)[:500]
        n = args.batch * args.batches
        print(f"{args.db} bulk: {n / cpu:,.0f} rows/s of CPU ({n / wall:,.0f} rows/s wall); "
              f"peak RSS {rss0:.0f} -> {_max_rss_mb():.0f} MB")
        c0, w0 = time.process_time(), time.perf_counter()
        for body in singles:
            r = client.post(path, data=body, headers=headers)
            assert r.status_code == 201, r.get_data(as_text=True)[:500]
        if singles:
            print(f"{args.db} single create: {len(singles) / (time.process_time() - c0):,.0f}/s of CPU "
                  f"({len(singles) / (time.perf_counter() - w0):,.0f}/s wall)")
        if prof:
            pstats.Stats(prof).sort_stats(os.environ.get("ZS_SORT", "tottime")).print_stats(int(os.environ.get("ZS_N", "30")))
    finally:
        zs.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

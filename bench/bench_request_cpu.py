#!/usr/bin/env python
"""Benchmark: server CPU per read request, without the HTTP server, the client or the load of
the machine in the figure.

bench_data.py measures wall-clock latency at a client over HTTP: on a shared machine that is
mostly the other processes' load. This script runs the same reads as bench_data.py (a record
by id, the filtered page, the same page through the saved view, the count and the group-by)
through the Flask app in-process (werkzeug's test client: routing, auth, session, SQL,
serialising, JSON) and reports CPU time per request (``time.process_time``) and database
statements per request, against an instance that bench_data.py kept::

    .venv/bin/python bench/bench_data.py --rows 100000 --db sqlite --keep --workdir /tmp/zs_keep
    .venv/bin/python bench/bench_request_cpu.py /tmp/zs_keep/sqlite_100000
    .venv/bin/python bench/bench_request_cpu.py /tmp/zs_keep/postgresql_100000 \\
        --url postgresql+psycopg://postgres@127.0.0.1:5432/zs_bench

For an A/B, run it with each checkout's own venv against the same instance, back to back.
Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import FILTER, SORT, VIEW  # noqa: E402

TENANT = "/api/v1/tenants/demo"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("instance", help="an instance folder kept by bench_data.py --keep")
    ap.add_argument("--url", help="database URL (default: the instance's SQLite file)")
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --reps; the best round counts")
    args = ap.parse_args(argv)
    os.environ.update({"ZHONGSHU_RUN_WORKER": "false", "ZHONGSHU_RUN_SCHEDULER": "false"})
    from sqlalchemy import event

    from zhongshu.platform.app import create_app

    inst = Path(args.instance)
    url = args.url or f"sqlite:///{inst / 'zhongshu.db'}"
    app = create_app({"DATA_DIR": str(inst), "DATABASE_URL": url, "RUN_WORKER": False, "RUN_SCHEDULER": False})
    zs = app.extensions["zhongshu"]
    c = app.test_client()
    cred = json.loads((inst / "admin_credentials.json").read_text("utf-8"))
    r = c.post("/api/v1/auth/login", json=cred)
    assert r.status_code == 200, r.data
    r = c.post(f"{TENANT}/tokens", json={"name": "bench-cpu"}, headers={"X-CSRF-Token": r.json.get("csrf_token") or ""})
    assert r.status_code in (200, 201), r.data
    c = app.test_client()
    auth = {"Authorization": "Bearer " + r.json["token"]}
    jh = {**auth, "Content-Type": "application/json"}
    base = f"{TENANT}/tables/orders"
    qs = urllib.parse.urlencode({"filter": json.dumps(FILTER, ensure_ascii=False, separators=(",", ":")), "sort": SORT, "limit": 50})
    cnt = json.dumps({"filter": FILTER, "metrics": [{"fn": "count"}]}, ensure_ascii=False)
    grp = json.dumps({"filter": FILTER, "group_by": [{"field": "status"}],
                      "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}, ensure_ascii=False)
    one = c.get(f"{base}/records?limit=1", headers=auth).json["records"][0]["id"]
    reads = {
        "health (no auth)": lambda: c.get("/api/v1/health"),
        "record by id": lambda: c.get(f"{base}/records/{one}", headers=auth),
        "filtered page": lambda: c.get(f"{base}/records?{qs}", headers=auth),
        "page via view": lambda: c.get(f"{base}/views/{VIEW['api_name']}/records?limit=50", headers=auth),
        "count": lambda: c.post(f"{base}/aggregate", data=cnt, headers=jh),
        "group-by": lambda: c.post(f"{base}/aggregate", data=grp, headers=jh),
    }
    statements = [0]

    @event.listens_for(zs.engine, "after_cursor_execute")
    def _count(*_a):
        statements[0] += 1

    print(f"| read ({zs.dialect}, {args.reps} × {args.rounds}, best round) | CPU ms / request | wall ms / request | statements / request |")
    print("|---|---|---|---|")
    for name, f in reads.items():
        for _ in range(20):
            resp = f()
            assert resp.status_code == 200, (name, resp.status_code, resp.data[:300])
        rounds, walls = [], []
        for _ in range(args.rounds):
            statements[0] = 0
            t0, w0 = time.process_time(), time.perf_counter()
            for _ in range(args.reps):
                f()
            rounds.append((time.process_time() - t0) / args.reps * 1000)
            walls.append((time.perf_counter() - w0) / args.reps * 1000)
        n_st = statements[0] / args.reps
        print(f"| {name} | {min(rounds):.2f} (median round {statistics.median(rounds):.2f}) | {min(walls):.2f} | {n_st:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

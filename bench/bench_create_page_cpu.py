#!/usr/bin/env python
"""Benchmark: server CPU, statements and (PostgreSQL) round trips of a single create and of
the saved view's page, in-process through the Flask app (werkzeug's test client: routing,
auth, session, SQL, serialising, JSON), against an instance ``bench_data.py --keep`` left::

    .venv/bin/python bench/bench_data.py --rows 100000 --keep --workdir /tmp/keep
    .venv/bin/python bench/bench_create_page_cpu.py /tmp/keep/sqlite_100000
    .venv/bin/python bench/bench_create_page_cpu.py /tmp/keep/postgresql_100000 \\
        postgresql+psycopg://postgres@127.0.0.1:5432/zs_bench

For an A/B, run it for each checkout with ``bench/run_tree.py``, alternating, and compare the
medians. Round trips are counted from libpq's protocol trace (a Sync or a simple Query sent
by the client is one round trip). Each create adds a record to the instance. Not a test.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import VIEW, DataGen  # noqa: E402

TENANT = "/api/v1/tenants/demo"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit(__doc__)
    inst = Path(argv[0])
    url = argv[1] if len(argv) > 1 else f"sqlite:///{inst / 'zhongshu.db'}"
    reps, rounds = int(os.environ.get("REPS", 200)), int(os.environ.get("ROUNDS", 5))
    os.environ.update({"ZHONGSHU_RUN_WORKER": "false", "ZHONGSHU_RUN_SCHEDULER": "false"})
    import logging

    logging.disable(logging.INFO)
    from sqlalchemy import event

    from zhongshu.platform.app import create_app

    app = create_app({"DATA_DIR": str(inst), "DATABASE_URL": url, "RUN_WORKER": False, "RUN_SCHEDULER": False,
                      "AUTO_INDEX": False})
    zs = app.extensions["zhongshu"]
    c = app.test_client()
    cred = json.loads((inst / "admin_credentials.json").read_text("utf-8"))
    r = c.post("/api/v1/auth/login", json=cred)
    r = c.post(f"{TENANT}/tokens", json={"name": "bench-create-page"}, headers={"X-CSRF-Token": r.json.get("csrf_token") or ""})
    c = app.test_client()
    headers = {"Authorization": "Bearer " + r.json["token"], "Content-Type": "application/json"}
    base = f"{TENANT}/tables/orders"
    gen = DataGen(7)
    page = f"{base}/views/{VIEW['api_name']}/records?limit=50"
    requests = {
        "single create": lambda: c.post(f"{base}/records", data=json.dumps(gen.row(), ensure_ascii=False), headers=headers),
        "page via saved view": lambda: c.get(page, headers=headers),
    }
    statements = [0]

    @event.listens_for(zs.engine, "after_cursor_execute")
    def _count(*_a):
        statements[0] += 1

    trace = None
    if zs.dialect == "postgresql":
        trace = tempfile.TemporaryFile("w+")

        @event.listens_for(zs.engine, "connect")
        def _trace(dbapi_conn, _record):
            dbapi_conn.pgconn.trace(trace.fileno())
        zs.engine.dispose()  # new connections, traced

    print(f"| request ({zs.dialect}) | CPU ms / request, median of {rounds} × {reps} (min) | statements | round trips |")
    print("|---|---|---|---|")
    for name, f in requests.items():
        for _ in range(30):
            resp = f()
            assert resp.status_code in (200, 201), (name, resp.status_code, resp.data[:300])
        statements[0] = 0
        trips = "–"
        if trace is not None:
            trace.flush()
            trace.seek(0, 2)
            start = trace.tell()
        for _ in range(20):
            f()
        if trace is not None:
            trace.flush()
            trace.seek(start)
            sent = [line.split("\t") for line in trace.read().splitlines()]
            trips = f"{sum(1 for p in sent if len(p) > 3 and p[1] == 'F' and p[3].strip() in ('Sync', 'Query')) / 20:.1f}"
        n_st = statements[0] / 20
        xs = []
        for _ in range(rounds):
            t0 = time.process_time()
            for _ in range(reps):
                f()
            xs.append((time.process_time() - t0) / reps * 1000)
        print(f"| {name} | {statistics.median(xs):.2f} ({min(xs):.2f}) | {n_st:.1f} | {trips} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

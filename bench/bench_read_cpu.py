#!/usr/bin/env python
"""Benchmark: server CPU per read (record by id, the filtered page, the page via the saved
view), in-process, with the index advisor OFF -- bench_request_cpu.py's page figure can hold
the CPU of an index the advisor builds in the same process. For A/B pairs, run it with each
tree's code against one instance kept by ``bench_data.py --keep``, interleaved::

    .venv/bin/python bench/bench_read_cpu.py /tmp/r1-sq/sqlite_100000
    .venv/bin/python bench/bench_read_cpu.py /tmp/keep/postgresql_100000 postgresql+psycopg://postgres@127.0.0.1:5432/zs_bench

Prints "min / median" CPU ms per request over ROUNDS (7) rounds of REPS (150). Not a test.
"""
import json, os, sys, time, statistics, urllib.parse
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from bench_data import FILTER, SORT, VIEW
os.environ.update({"ZHONGSHU_RUN_WORKER": "false", "ZHONGSHU_RUN_SCHEDULER": "false"})
import logging; logging.disable(logging.INFO)
from zhongshu.platform.app import create_app
from pathlib import Path
inst = Path(sys.argv[1]); url = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "-" else f"sqlite:///{inst/'zhongshu.db'}"
app = create_app({"DATA_DIR": str(inst), "DATABASE_URL": url, "RUN_WORKER": False, "RUN_SCHEDULER": False, "AUTO_INDEX": False})
c = app.test_client()
cred = json.loads((inst / "admin_credentials.json").read_text("utf-8"))
r = c.post("/api/v1/auth/login", json=cred)
r = c.post("/api/v1/tenants/demo/tokens", json={"name": "x"}, headers={"X-CSRF-Token": r.json.get("csrf_token") or ""})
c = app.test_client()
auth = {"Authorization": "Bearer " + r.json["token"]}
base = "/api/v1/tenants/demo/tables/orders"
qs = urllib.parse.urlencode({"filter": json.dumps(FILTER, ensure_ascii=False, separators=(",", ":")), "sort": SORT, "limit": 50})
one = c.get(f"{base}/records?limit=1", headers=auth).json["records"][0]["id"]
reads = {"record by id": f"{base}/records/{one}", "page ?filter": f"{base}/records?{qs}", "page via view": f"{base}/views/{VIEW['api_name']}/records?limit=50"}
reps, rounds = int(os.environ.get("REPS", 150)), int(os.environ.get("ROUNDS", 7))
res = {}
for name, p in reads.items():
    for _ in range(20): assert c.get(p, headers=auth).status_code == 200
    xs = []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(reps): c.get(p, headers=auth)
        xs.append((time.process_time() - t0) / reps * 1000)
    res[name] = (min(xs), statistics.median(xs))
print(" | ".join(f"{k} {a:.2f}/{m:.2f}" for k, (a, m) in res.items()))

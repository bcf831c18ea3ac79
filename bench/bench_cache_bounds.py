"""RSS of one process reading many tenants, with the per-process metadata caches bounded or not
(SCHEMA_CACHE_TABLES, METADATA_CACHE_TENANTS; docs/cost-growth.md, "Defects found").

    .venv/bin/python bench/bench_cache_bounds.py setup 600   # 600 tenants, each the tests' orders table (+ items)
    .venv/bin/python bench/bench_cache_bounds.py small 0     # caps 400 tables / 200 tenants
    .venv/bin/python bench/bench_cache_bounds.py bounded 0   # the defaults (2000 / 200)
    .venv/bin/python bench/bench_cache_bounds.py unbounded 0 # caps of 10**9: the old behaviour
    .venv/bin/python bench/bench_cache_bounds.py drop 0

Each read mode reads every tenant's orders table twice over (a count and the items schema),
printing RSS growth every 150 reads; PostgreSQL database zs_cache_bound_mem on 127.0.0.1.
"""
import gc
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import create_engine, text
from zhongshu.platform.core import Platform
from zhongshu.platform.models import Tenant
from zhongshu.platform.templates_engine.installer import system_actor
from zhongshu.platform import memory
from tests.conftest import ORDERS
URL = "postgresql+psycopg://postgres@127.0.0.1:5432/zs_cache_bound_mem"
CFG = {"DATABASE_URL": URL, "DATA_DIR": "/tmp/zs_cache_bounds_instance", "SECRET_KEY": "x", "RUN_WORKER": False, "RUN_SCHEDULER": False}

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

mode, n = sys.argv[1], int(sys.argv[2])
if mode == "setup":
    a = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with a.connect() as c:
        c.execute(text("DROP DATABASE IF EXISTS zs_cache_bound_mem WITH (FORCE)")); c.execute(text("CREATE DATABASE zs_cache_bound_mem"))
    zs = Platform(CFG); zs.create_all()
    for i in range(n):
        t = zs.create_tenant(f"m{i}", f"m{i}")
        with zs.tenant_session(t.id, write=True) as s:
            zs.metadata(s, s.get(Tenant, t.id), system_actor()).create_table(dict(ORDERS))
    print("setup done")
elif mode == "drop":
    a = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with a.connect() as c:
        c.execute(text("DROP DATABASE IF EXISTS zs_cache_bound_mem WITH (FORCE)"))
else:
    caps = {"bounded": {}, "small": {"SCHEMA_CACHE_TABLES": 400, "METADATA_CACHE_TENANTS": 200}, "unbounded": {"SCHEMA_CACHE_TABLES": 10**9, "METADATA_CACHE_TENANTS": 10**9}}[mode]
    zs = Platform(dict(CFG, **caps))
    with zs.tenant_session(None) as s:
        ids = [t.id for t in s.query(Tenant).order_by(Tenant.id)]
    def read(tid):
        with zs.tenant_session(tid) as s:
            r = zs.records(s, s.get(Tenant, tid), system_actor())
            r.count(r.schema("orders")); r.schema("orders_items")
    read(ids[0]); gc.collect(); memory.trim(); base = rss()
    for i, tid in enumerate(ids + ids, 1):
        read(tid)
        if i % 150 == 0:
            gc.collect(); memory.trim(); print(f"  {i} tenants read: +{rss() - base:.0f} MB", flush=True)
    gc.collect(); memory.trim()
    print(f"{mode}: {len(ids)} tenants read; schemas cached {len(zs.cache)}, tenants cached {len(zs.cache.meta)}; "
          f"RSS {base:.0f} -> {rss():.0f} MB (+{rss() - base:.0f})")
    zs.cache.clear(); gc.collect(); memory.trim()
    print(f"  after clearing both caches: +{rss() - base:.0f} MB")
    from sqlalchemy import Table
    from zhongshu.platform.storage.schema import TableSchema
    live = lambda cls: sum(1 for o in gc.get_objects() if isinstance(o, cls))
    print(f"  live TableSchema {live(TableSchema)}, sqlalchemy Table {live(Table)}")
    zs.engine.clear_compiled_cache(); gc.collect(); memory.trim()
    print(f"  after compiled-cache clear: live TableSchema {live(TableSchema)}, Table {live(Table)}")
    print(f"  and SQLAlchemy's compiled-statement cache: +{rss() - base:.0f} MB")

#!/usr/bin/env python
"""Benchmark: 1,000 tenants on one PostgreSQL database, each with the order hub installed.

Two steps, so that the long install can run (resumably) in the background and the server
can be measured at checkpoints on the same database:

  install   creates tenants t00001.. and installs the order_management template (no sample
            data) into each, in this process through the Platform API (``create_tenant`` +
            ``install_template``, what ``POST /tenants`` + ``POST .../templates/install``
            run). Resumable: tenants already installed are skipped. One JSON line per
            install (wall seconds, CPU seconds of this process, database size every 50)
            goes to ``--log``.
  measure   starts ``zhongshu serve`` on that database (worker and scheduler on, as a user
            runs it) and records: start-up seconds, RSS at start, RSS after touching the
            first 10 / 100 / 1,000 tenants (the orders page of each, once), records page
            p50 and create p50 in tenant #1 and tenant #N, database size, tables / indexes.

    nice -n 19 .venv/bin/python bench/bench_tenants_scale.py install --to 1000 --log /tmp/zs_h5/install.jsonl
    nice -n 10 .venv/bin/python bench/bench_tenants_scale.py measure --touch 10 100 1000 --json /tmp/zs_h5/m.json
    .venv/bin/python bench/bench_tenants_scale.py periodic --label new     # the scheduler's rounds, in-process
    .venv/bin/python bench/bench_tenants_scale.py rounds --tenants 150 --rounds 3   # one web process, in-process
    .venv/bin/python bench/bench_tenants_scale.py summary --log /tmp/zs_h5/install.jsonl

The database (``--pg-db``, default ``zs_h5_tenants``) is kept between steps; ``drop``
removes it. Only 127.0.0.1 is contacted. Not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

PG_URL = os.environ.get("ZHONGSHU_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def self_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def load() -> float:
    return os.getloadavg()[0]


def admin_engine():
    from sqlalchemy import create_engine

    return create_engine(f"{PG_URL}/postgres", isolation_level="AUTOCOMMIT")


def ensure_db(name: str) -> str:
    from sqlalchemy import text

    e = admin_engine()
    with e.connect() as c:
        if not c.execute(text("select 1 from pg_database where datname = :n"), {"n": name}).scalar():
            c.execute(text(f'CREATE DATABASE "{name}"'))
    e.dispose()
    return f"{PG_URL}/{name}"


def db_stats(url: str) -> dict:
    from sqlalchemy import create_engine, text

    e = create_engine(url)
    with e.connect() as c:
        size = c.execute(text("select pg_database_size(current_database())")).scalar()
        rows = dict(c.execute(text("select case relkind when 'r' then 'table' when 'i' then 'index' else 'other' end, count(*) "
                                   "from pg_class where relnamespace = 'public'::regnamespace group by 1")).all())
    e.dispose()
    return {"db_mb": round(size / 2**20, 1), "db_tables": rows.get("table", 0), "db_indexes": rows.get("index", 0)}


def slug(i: int) -> str:
    return f"t{i:05d}"


# == install ===================================================================================

def cmd_install(a) -> int:
    from sqlalchemy import func, select

    from zhongshu.platform.cli import ensure_initialised
    from zhongshu.platform.core import Platform
    from zhongshu.platform.models import Tenant
    from zhongshu.platform.templates_engine import install_template

    url = ensure_db(a.pg_db)
    Path(a.workdir).mkdir(parents=True, exist_ok=True)
    zs = Platform({"DATABASE_URL": url, "DATA_DIR": a.workdir, "RUN_WORKER": False, "RUN_SCHEDULER": False})
    ensure_initialised(zs, admin_email="admin@example.com", tenant_slug="demo", tenant_name="Demo", quiet=True, template=None)
    from zhongshu.platform.models import TemplateInstall

    def installed(tid: int) -> bool:
        with zs.tenant_session(None) as s:
            return bool(s.scalar(select(func.count()).select_from(TemplateInstall).where(TemplateInstall.tenant_id == tid)))

    log = open(a.log, "a", encoding="utf-8")
    began = time.monotonic()
    done = 0
    for i in range(1, a.to + 1):
        if a.workers > 1 and i % a.workers != a.worker_index:
            continue
        if a.count and done >= a.count:
            break
        if a.max_minutes and (time.monotonic() - began) / 60 > a.max_minutes:
            print(f"stopping after {a.max_minutes} min", flush=True)
            break
        t = zs.tenant_by_slug(slug(i))
        if t is not None and installed(t.id):
            continue
        w0, c0 = time.perf_counter(), cpu()
        if t is None:
            t = zs.create_tenant(slug(i), f"Tenant {i}", owner_email="admin@example.com")
        w1, c1 = time.perf_counter(), cpu()
        install_template(zs, t.id, "order_management", with_sample_data=False)
        w2, c2 = time.perf_counter(), cpu()
        row = {"n": i, "tenant_id": t.id, "create_s": round(w1 - w0, 3), "install_s": round(w2 - w1, 3),
               "install_cpu_s": round(c2 - c1, 3), "rss_mb": round(self_rss_mb(), 1), "load": round(load(), 2),
               "at": time.strftime("%H:%M:%S")}
        if i % 50 == 0:
            row.update(db_stats(url))
        log.write(json.dumps(row) + "\n")
        log.flush()
        done += 1
        if done % 10 == 0:
            print(f"{i} tenants; install {row['install_s']:.2f} s wall / {row['install_cpu_s']:.2f} s CPU; load {row['load']}",
                  flush=True)
    log.close()
    zs.close()
    return 0


def cmd_summary(a) -> int:
    rows = [json.loads(x) for x in Path(a.log).read_text("utf-8").splitlines() if x.strip()]
    rows.sort(key=lambda r: r["n"])
    out = []
    for lo, hi in ((1, 10), (11, 100), (101, 200), (201, 500), (501, 800), (801, 1000)):
        got = [r for r in rows if lo <= r["n"] <= hi]
        if not got:
            continue
        out.append({"tenants": f"{lo}-{hi}", "installs": len(got),
                    "install_cpu_median_s": round(statistics.median(r["install_cpu_s"] for r in got), 2),
                    "install_wall_median_s": round(statistics.median(r["install_s"] for r in got), 2),
                    "load_median": round(statistics.median(r["load"] for r in got), 1),
                    "installer_rss_last_mb": got[-1]["rss_mb"]})
    sizes = [(r["n"], r["db_mb"], r["db_tables"], r["db_indexes"]) for r in rows if "db_mb" in r]
    print(json.dumps({"stretches": out, "db_sizes": sizes}, indent=1))
    return 0


# == measure ===================================================================================

def cmd_measure(a) -> int:
    from _server import Server
    from sqlalchemy import create_engine, text

    url = f"{PG_URL}/{a.pg_db}"
    e = create_engine(url)
    with e.connect() as c:
        slugs = [r[0] for r in c.execute(text("select t.slug from tenants t where t.slug like 't0%' and exists "
                                              "(select 1 from template_installs d where d.tenant_id = t.id) order by t.slug"))]
    e.dispose()
    n_all = len(slugs)
    res = {"label": a.label, "tenants_installed": n_all, **db_stats(url), "load_start": round(load(), 2)}
    print(f"{n_all} tenants installed; {res}", flush=True)
    env = {"ZHONGSHU_RUN_WORKER": "true" if a.worker else "false", "ZHONGSHU_RUN_SCHEDULER": "true" if a.worker else "false",
           **dict(kv.split("=", 1) for kv in a.env)}
    srv = Server(Path(a.workdir), url, env=env, log_path=Path(a.workdir) / f"server_{a.label}.log")
    try:
        _measure(srv, slugs, res, a)
    finally:
        srv.stop()
    print(json.dumps(res, indent=1))
    if a.json:
        p = Path(a.json)
        old = json.loads(p.read_text("utf-8")) if p.exists() else []
        p.write_text(json.dumps(old + [res], indent=1), "utf-8")
    return 0


def _measure(srv, slugs: list[str], res: dict, a) -> None:
    from bench_data import pct, timed
    from bench_growth import start_timed

    n_all = len(slugs)
    res["startup_s"] = round(start_timed(srv, timeout=900), 2)
    c = srv.client()
    time.sleep(a.settle)  # the scheduler's first rounds (leader election, schedule sync, periodic jobs)
    res["rss_start_mb"] = round(srv.rss_mb(), 1)
    cred = srv.credentials()
    c.login(cred["email"], cred["password"])  # the admin owns every tenant: one browser session for all
    touched = 0
    res["touch"] = []
    for n in sorted(x for x in a.touch if x <= n_all) + ([n_all] if a.touch_all and n_all not in a.touch else []):
        w0 = time.perf_counter()
        while touched < n:
            c.call("GET", f"/api/v1/tenants/{slugs[touched]}/tables/orders/records?limit=50")
            touched += 1
        res["touch"].append({"tenants_touched": n, "rss_mb": round(srv.rss_mb(), 1), "seconds": round(time.perf_counter() - w0, 2)})
        print(f"touched {n}: {res['touch'][-1]} (RSS at start {res['rss_start_mb']} MB)", flush=True)
    for which, s in (("first", slugs[0]), ("last", slugs[-1])):
        page = f"/api/v1/tenants/{s}/tables/orders/records?limit=50"
        for _ in range(5):
            timed(c, "GET", page)
        res[f"page_{which}_p50_ms"] = round(pct([timed(c, "GET", page)[0] * 1000 for _ in range(a.reps)], 50), 1)
        creates = []
        for _ in range(a.reps // 2 + 2):
            dt, _ = timed(c, "POST", f"/api/v1/tenants/{s}/tables/orders/records",
                          json.dumps(_order(c, s, a), ensure_ascii=False).encode())
            creates.append(dt * 1000)
        res[f"create_{which}_p50_ms"] = round(pct(creates[2:], 50), 1)
        res[f"tenant_{which}"] = s
    res["rss_end_mb"] = round(srv.rss_mb(), 1)
    res["peak_rss_mb"] = round(srv.peak_rss_mb(), 1)
    res["load_end"] = round(load(), 2)
    c.close()


#: a new order of the template (every record rule of the order hub runs on it)
ORDER = {"channel": "天猫", "shop": "旗舰店", "external_id": "BENCH", "amount_due": 99, "items": [{"sku": "SKU-1", "qty": 1, "unit_price": 99}]}


def _order(c, s: str, a) -> dict:
    return dict(a.order or ORDER, external_id=f"BENCH-{time.time_ns()}")  # external_id is unique


def cmd_periodic(a) -> int:
    """The scheduler's periodic work of one process on this database, in-process: CPU
    seconds (this process), wall seconds and RSS after each call of the schedule provider
    (every 10 s in every scheduler process) and of the dashboard alerts (every minute on
    the leader). Run it with each version's Python for an A/B."""
    import gc

    from sqlalchemy import text

    from zhongshu.platform.app import create_app
    from zhongshu.platform.core import Platform
    from zhongshu.runtime import tasks

    url = f"{PG_URL}/{a.pg_db}"
    zs = Platform({"DATABASE_URL": url, "DATA_DIR": a.workdir, "RUN_WORKER": False, "RUN_SCHEDULER": False})
    create_app(platform=zs)
    with zs.engine.connect() as c:
        counts = {t: c.execute(text(f"select count(*) from {t}")).scalar() for t in ("tenants", "rules", "dashboards")}
    gc.collect()
    out = {"label": a.label, **counts, "rss_before_mb": round(self_rss_mb(), 1), "calls": []}
    for name, fn in (("scheduled_rules", tasks.scheduled_rules), ("scheduled_rules", tasks.scheduled_rules),
                     ("dashboard_alerts", tasks.dashboard_alerts), ("dashboard_alerts", tasks.dashboard_alerts)):
        c0, w0 = cpu(), time.perf_counter()
        fn(zs)
        out["calls"].append({"fn": name, "cpu_s": round(cpu() - c0, 3), "wall_s": round(time.perf_counter() - w0, 2),
                             "rss_mb": round(self_rss_mb(), 1)})
    out["load"] = round(load(), 2)
    zs.close()
    print(json.dumps(out))
    return 0


def cmd_rounds(a) -> int:
    """One web process, in-process (Flask test client, no worker or scheduler): reads the
    orders page of the first ``--tenants`` tenants once per round, ``--rounds`` times, and
    after each round records RSS, the live ``Table`` objects of user tables (``t_<id>``, by
    the garbage collector), the schema cache's tables and the statement cache's entries.
    More tenants than the schema cache holds means every round compiles them again: what
    this shows is whether memory then stays bounded. Run it with each version's Python."""
    import gc

    from sqlalchemy import Table, text

    from zhongshu.platform.app import create_app
    from zhongshu.platform.core import Platform

    url = f"{PG_URL}/{a.pg_db}"
    zs = Platform({"DATABASE_URL": url, "DATA_DIR": a.workdir, "RUN_WORKER": False, "RUN_SCHEDULER": False,
                   **dict(kv.split("=", 1) for kv in a.env)})
    app = create_app(platform=zs)
    cred = json.loads((Path(a.workdir) / "admin_credentials.json").read_text("utf-8"))
    c = app.test_client()
    r = c.post("/api/v1/auth/login", json={"email": cred["email"], "password": cred["password"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    hdr = {"X-CSRF-Token": r.get_json()["csrf_token"]}
    with zs.engine.connect() as conn:
        slugs = [r[0] for r in conn.execute(text(
            "select t.slug from tenants t where t.slug like 't0%' and exists "
            "(select 1 from template_installs d where d.tenant_id = t.id) order by t.slug limit :n"), {"n": a.tenants})]

    def state(label) -> dict:
        gc.collect()
        tables = sum(1 for o in gc.get_objects() if type(o) is Table and o.name.startswith("t_"))
        cache = zs.engine.get_execution_options().get("compiled_cache", zs.engine._compiled_cache)
        return {"after": label, "rss_mb": round(self_rss_mb(), 1), "live_user_tables": tables,
                "schema_cache_tables": len(zs.cache), "statement_cache_entries": len(cache) if cache is not None else None}

    out = {"label": a.label, "tenants": a.tenants, "rounds": [state("start")]}
    for rnd in range(1, a.rounds + 1):
        c0, w0 = cpu(), time.perf_counter()
        for s in slugs:
            resp = c.get(f"/api/v1/tenants/{s}/tables/orders/records?limit=50", headers=hdr)
            assert resp.status_code == 200, (s, resp.status_code, resp.get_data(as_text=True)[:200])
        row = state(f"round {rnd}")
        row.update(cpu_ms_per_page=round((cpu() - c0) * 1000 / len(slugs), 1), wall_s=round(time.perf_counter() - w0, 1))
        out["rounds"].append(row)
        print(json.dumps(row), flush=True)
    zs.close()
    print(json.dumps(out))
    if a.json:
        p = Path(a.json)
        old = json.loads(p.read_text("utf-8")) if p.exists() else []
        p.write_text(json.dumps(old + [out], indent=1), "utf-8")
    return 0


def cmd_drop(a) -> int:
    from sqlalchemy import text

    e = admin_engine()
    with e.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{a.pg_db}" WITH (FORCE)'))
    e.dispose()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("install", "measure", "periodic", "rounds", "summary", "drop"):
        p = sub.add_parser(name)
        p.add_argument("--pg-db", default="zs_h5_tenants")
        p.add_argument("--workdir", default="/tmp/zs_h5/instance")
        p.add_argument("--log", default="/tmp/zs_h5/install.jsonl")
        if name == "install":
            p.add_argument("--to", type=int, default=1000)
            p.add_argument("--max-minutes", type=float, default=0)
            p.add_argument("--count", type=int, default=0, help="stop after this many installs (0: no limit)")
            p.add_argument("--workers", type=int, default=1, help="install processes running at once (each gets every k-th tenant)")
            p.add_argument("--worker-index", type=int, default=0)
        if name in ("periodic", "rounds"):
            p.add_argument("--label", default="main")
        if name == "rounds":
            p.add_argument("--tenants", type=int, default=150)
            p.add_argument("--rounds", type=int, default=3)
            p.add_argument("--json")
            p.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE", help="platform settings, e.g. SCHEMA_CACHE_COLUMNS=5000")
        if name == "measure":
            p.add_argument("--touch", type=int, nargs="*", default=[10, 100, 1000])
            p.add_argument("--touch-all", action="store_true", help="also touch every installed tenant")
            p.add_argument("--reps", type=int, default=40)
            p.add_argument("--settle", type=float, default=3.0)
            p.add_argument("--label", default="main")
            p.add_argument("--json")
            p.add_argument("--no-worker", dest="worker", action="store_false")
            p.add_argument("--env", nargs="*", default=[], metavar="KEY=VALUE", help="server environment, e.g. ZHONGSHU_SCHEMA_CACHE_COLUMNS=5000")
            p.add_argument("--order", type=json.loads, default={})
    a = ap.parse_args(argv)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a started server is stopped
    return {"install": cmd_install, "measure": cmd_measure, "periodic": cmd_periodic, "rounds": cmd_rounds, "summary": cmd_summary,
            "drop": cmd_drop}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

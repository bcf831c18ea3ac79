#!/usr/bin/env python
"""Benchmark: how time and memory grow with rows, rules per table, tenants and concurrent users.

Every figure comes from a real server on 127.0.0.1 (``zhongshu serve``, or gunicorn with
deploy/gunicorn.conf.py for the concurrency dimension), started on a fresh database, and is
the median of ``--runs`` runs. The script lowers its own priority to nice 10 (the servers it
starts inherit it). Dimensions (positional; default: all four):

  rows         bench/bench_data.py with --rows 10000 (repeatable --rows), run --runs times;
               the 100k figures are cited from docs/benchmarks.md, 1M is a placeholder row
  rules        single create / update through the API with 0, 1, 10, 100 active rules on the
               table (a mix of false conditions, edge triggers and set-field actions);
               statements per write (counted in-process on the same database); server RSS
  tenants      1 → 100 → 1,000 tenants, each with the order_management template installed:
               install time per tenant (median per stretch), database size, server RSS after
               touching every tenant once, records page p50 in tenant #1 vs the last tenant,
               server start-up time (the long PostgreSQL run toward 1,000 tenants, resumable
               and A/B-able: bench/bench_tenants_scale.py)
  concurrency  1, 10, 50 clients reading pages / writing records / both at once against
               ``zhongshu serve`` and gunicorn: requests/s, p50 / p95 ms, errors

    .venv/bin/python bench/bench_growth.py rules --db postgresql --json /tmp/g_rules.json
    .venv/bin/python bench/bench_growth.py tenants --tenants 1 100 1000 --max-minutes 40
    .venv/bin/python bench/bench_growth.py concurrency --clients 1 10 50 --duration 8
    .venv/bin/python bench/bench_growth.py --report /tmp/g_*.json     # one Markdown report

PostgreSQL: database ``zs_bench_growth`` on ``postgresql+psycopg://postgres@127.0.0.1:5432``
(--pg-url), dropped and created for each measurement and dropped at the end. Not a test.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from _server import HOST, Client, Server, rss_mb  # noqa: E402
from bench_data import FILTER, SORT, STATUSES, TABLE, DataGen, _flat, _weighted, log, pct, pg_recreate, timed  # noqa: E402
from run_all import machine  # noqa: E402

TENANT = "/api/v1/tenants/demo"
DIMENSIONS = ("rows", "rules", "tenants", "concurrency")
PAGE_QS = urllib.parse.urlencode({"filter": json.dumps(FILTER, ensure_ascii=False, separators=(",", ":")),
                                  "sort": SORT, "limit": 50})


def median(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 2) if xs else None


def database(db: str, work: Path, args, suffix: str = "") -> str:
    """A fresh database: a SQLite file in ``work`` or the PostgreSQL database ``--pg-db`` +
    suffix dropped and created (the suffixes used are remembered, to drop them at the end)."""
    if db == "sqlite":
        return f"sqlite:///{work / 'zhongshu.db'}"
    args.pg_suffixes.add(suffix)
    return pg_recreate(args.pg_url, args.pg_db + suffix)


def pg_drop(args) -> None:
    from sqlalchemy import create_engine, text

    e = create_engine(args.pg_url.rstrip("/") + "/postgres", isolation_level="AUTOCOMMIT")
    with e.connect() as c:
        for suffix in args.pg_suffixes | {""}:
            c.execute(text(f'DROP DATABASE IF EXISTS "{args.pg_db + suffix}" WITH (FORCE)'))
    e.dispose()


def db_size_mb(db: str, url: str, work: Path) -> float:
    if db == "sqlite":
        return round(sum(p.stat().st_size for p in work.glob("zhongshu.db*")) / 2**20, 1)
    from sqlalchemy import create_engine, text

    e = create_engine(url)
    with e.connect() as c:
        size = c.execute(text("select pg_database_size(current_database())")).scalar()
    e.dispose()
    return round(size / 2**20, 1)


def db_objects(db: str, url: str) -> dict:
    """Tables and indexes in the database (every tenant's tables are physical tables)."""
    from sqlalchemy import create_engine, text

    e = create_engine(url)
    with e.connect() as c:
        if db == "sqlite":
            rows = c.execute(text("select type, count(*) from sqlite_master group by type")).all()
        else:
            rows = c.execute(text("select case relkind when 'r' then 'table' when 'i' then 'index' else 'other' end, count(*) "
                                  "from pg_class where relnamespace = 'public'::regnamespace group by 1")).all()
    e.dispose()
    got = dict(rows)
    return {"db_tables": got.get("table", 0), "db_indexes": got.get("index", 0)}


def fresh_work(args, name: str) -> Path:
    work = Path(args.workdir) / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def admin_token(srv: Server, tenant_path: str = TENANT) -> str:
    c = srv.client()
    cred = srv.credentials()
    c.login(cred["email"], cred["password"])
    token = c.call("POST", f"{tenant_path}/tokens", {"name": "bench"})["token"]
    c.close()
    return token


def bulk_orders(c: Client, gen: DataGen, rows: int, batch: int = 5000) -> list[int]:
    ids: list[int] = []
    while len(ids) < rows:
        n = min(batch, rows - len(ids))
        body = json.dumps({"records": [gen.row() for _ in range(n)]}, ensure_ascii=False).encode()
        _, data = timed(c, "POST", f"{TENANT}/tables/orders/records?return=ids", body)
        ids.extend(json.loads(data)["ids"])
    return ids


# == rows ======================================================================================

#: docs/benchmarks.md, "Session 2 (2026-11-22)": bench_data.py --rows 100000, quiet machine.
CITED_100K = {
    "sqlite": {"bulk_rows_s": 4835, "create_p50_ms": 5.1, "update_p50_ms": 4.3, "page_p50_ms": 9.3, "page_p95_ms": 11.3,
               "count_p50_ms": 7.0, "group_p50_ms": 7.8, "getone_p50_ms": 3.4, "rss_mb": 254},
    "postgresql": {"bulk_rows_s": 2767, "create_p50_ms": 9.8, "update_p50_ms": 11.3, "page_p50_ms": 10.6, "page_p95_ms": 13.1,
                   "count_p50_ms": 7.5, "group_p50_ms": 10.4, "getone_p50_ms": 6.8, "rss_mb": 174},
}
ROW_COLS = [("bulk rows/s", "bulk_rows_s", "{:,.0f}"), ("create p50 ms", "create_p50_ms", "{:.1f}"),
            ("update p50 ms", "update_p50_ms", "{:.1f}"), ("get one p50 ms", "getone_p50_ms", "{:.1f}"),
            ("filtered page p50 / p95 ms", ("page_p50_ms", "page_p95_ms"), "{:.1f}"),
            ("count p50 ms", "count_p50_ms", "{:.1f}"), ("group-by p50 ms", "group_p50_ms", "{:.1f}"),
            ("RSS MB", "rss_mb", "{:.0f}")]


def measure_rows(args) -> list[dict]:
    """bench_data.py per (database, size), the runs interleaved (run 1 of every size, then
    run 2...) so that a change of the machine's load touches every size alike."""
    runs: dict[tuple[str, int], list[dict]] = {(db, rows): [] for db in args.db for rows in args.rows}
    out: list[dict] = []
    for i in range(args.runs):
        for (db, rows), got in runs.items():
            with tempfile.TemporaryDirectory() as tmp:
                f = Path(tmp) / "out.json"
                cmd = [sys.executable, str(BENCH / "bench_data.py"), "--rows", str(rows), "--db", db, "--reps", str(args.reps),
                       "--single", str(args.single), "--pg-db", args.pg_db, "--pg-url", args.pg_url,
                       "--workdir", str(Path(args.workdir) / "rows"), "--json", str(f)]
                log(f"rows {db} {rows:,}: run {i + 1}/{args.runs}")
                subprocess.run(cmd, cwd=str(ROOT), check=True, stdout=subprocess.DEVNULL)
                got.append(_flat(json.loads(f.read_text("utf-8"))["results"][0]))
        out = [{"db": db, "rows": rows, "runs": len(got), "cited": False, **{k: median([r[k] for r in got]) for k in got[0]}}
               for (db, rows), got in runs.items()]
        args.on_progress("rows", out)
    for r in out:
        log(f"  {json.dumps(r)}")
    return out


def rows_markdown(results: list[dict], include_cited: bool = True) -> str:
    head = "| rows | database | " + " | ".join(c[0] for c in ROW_COLS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(ROW_COLS)]
    res = list(results)
    if include_cited:
        dbs = sorted({r["db"] for r in results}) or ["sqlite", "postgresql"]
        res += [{"db": db, "rows": 100_000, "cited": True, **CITED_100K[db]} for db in dbs]
    for r in sorted(res, key=lambda r: (r["rows"], r["db"])):
        cells = []
        for _, key, fmt in ROW_COLS:
            keys = key if isinstance(key, tuple) else (key,)
            cells.append(" / ".join(fmt.format(r[k]) if r.get(k) is not None else "–" for k in keys))
        note = " (cited: docs/benchmarks.md)" if r["cited"] else f" (median of {r['runs']})"
        lines.append(f"| {r['rows']:,}{note} | {r['db']} | " + " | ".join(cells) + " |")
    lines.append("| 1,000,000 | postgresql | see docs/benchmarks.md |" + " |" * (len(ROW_COLS) - 1))
    return "\n".join(lines)


# == rules =====================================================================================

TAGS = 10  # text fields tag0..tag9 that set-field rules write


def rules_table() -> dict:
    t = json.loads(json.dumps(TABLE))
    t["fields"] += [{"api_name": f"tag{i}", "type": "text", "label": f"tag{i}"} for i in range(TAGS)]
    return t


def rule_doc(k: int) -> dict:
    """Rule number k of the mix: k % 3 == 0 sets a field, 1 has a condition that is false,
    2 is an edge trigger (condition_true) that fires only when an order turns 异常中 (1 %)."""
    kind, j = k % 3, k // 3
    created = {"type": "record_created"}
    updated = {"type": "record_updated", "fields": ["status"]}
    if kind == 0:
        return {"api_name": f"r{k:03d}_set", "table": "orders", "trigger": created if j % 2 == 0 else updated,
                "actions": [{"type": "update_record", "values": {f"tag{j % TAGS}": f"CONCAT(status, '-{k}')"}}]}
    if kind == 1:
        return {"api_name": f"r{k:03d}_false", "table": "orders", "trigger": created if j % 2 == 0 else updated,
                "condition": f"amount > {1_000_000 + k}",
                "actions": [{"type": "update_record", "values": {f"tag{j % TAGS}": "'never'"}}]}
    return {"api_name": f"r{k:03d}_edge", "table": "orders", "trigger": {"type": "condition_true"},
            "condition": f"status == '异常中' and amount > {k}",
            "actions": [{"type": "update_record", "values": {f"tag{j % TAGS}": "'edge'"}}]}


def count_statements(url: str, work: Path, token: str, ids: list[int], n: int = 10) -> dict:
    """Statements per create and per update, counted in this process with a cursor listener
    on the engine, through the same API (Flask test client) on the same database."""
    from sqlalchemy import event

    from zhongshu.platform.app import create_app
    from zhongshu.platform.core import Platform

    cfg = {"DATABASE_URL": url, "DATA_DIR": str(work), "RUN_WORKER": False, "RUN_SCHEDULER": False}
    zs = Platform(cfg)
    app = create_app(cfg, platform=zs)
    counter = [0]

    def count(*_a):
        counter[0] += 1

    event.listen(zs.engine, "before_cursor_execute", count)
    client = app.test_client()
    h = {"Authorization": f"Bearer {token}"}
    gen, rng = DataGen(7), random.Random(7)
    creates, updates = [], []
    for i in range(n + 2):  # the first two warm the caches
        counter[0] = 0
        r = client.post(f"{TENANT}/tables/orders/records", json=gen.row(), headers=h)
        assert r.status_code == 201, r.get_data(as_text=True)[:300]
        if i >= 2:
            creates.append(counter[0])
        counter[0] = 0
        body = {"status": _weighted(rng, STATUSES)(), "paid": gen.amount()}
        r = client.patch(f"{TENANT}/tables/orders/records/{ids[rng.randrange(len(ids))]}", json=body, headers=h)
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
        if i >= 2:
            updates.append(counter[0])
    event.remove(zs.engine, "before_cursor_execute", count)
    zs.close()
    return {"stmts_per_create": median(creates), "stmts_per_update": median(updates),
            "stmts_per_create_max": max(creates), "stmts_per_update_max": max(updates)}


class RulesCase:
    """One server and database with N active rules on its orders table."""

    def __init__(self, db: str, n: int, args):
        self.db, self.n = db, n
        self.work = fresh_work(args, f"rules_{db}_{n}")
        self.url = database(db, self.work, args, suffix=f"_r{n}")
        self.srv = Server(self.work, self.url).start(timeout=300)
        try:
            self._prepare(args)
        except BaseException:
            self.srv.stop()
            raise

    def _prepare(self, args) -> None:
        n = self.n
        self.token = admin_token(self.srv)
        self.c = self.srv.client(token=self.token)
        self.c.call("POST", f"{TENANT}/tables", rules_table())
        self.gen, self.rng = DataGen(args.seed), random.Random(args.seed)
        self.ids = bulk_orders(self.c, self.gen, args.base_rows)  # before the rules: with 100 rules 2,000 rows take > 10 min
        for k in range(n):
            self.c.call("POST", f"{TENANT}/rules", rule_doc(k))
        self.samples: dict[str, list[float]] = {k: [] for k in ("create_p50_ms", "create_p95_ms", "create_rows_s",
                                                                 "update_p50_ms", "update_p95_ms", "update_rows_s")}
        for _ in range(10):  # warm-up: compile rules, fill caches
            self.create()

    def create(self) -> float:
        return timed(self.c, "POST", f"{TENANT}/tables/orders/records", json.dumps(self.gen.row(), ensure_ascii=False).encode())[0]

    def update(self) -> float:
        body = json.dumps({"status": _weighted(self.rng, STATUSES)(), "paid": self.gen.amount()}, ensure_ascii=False).encode()
        return timed(self.c, "PATCH", f"{TENANT}/tables/orders/records/{self.ids[self.rng.randrange(len(self.ids))]}", body)[0]

    def run(self, single: int) -> None:
        for kind, op in (("create", self.create), ("update", self.update)):
            xs = [op() for _ in range(single)]
            self.samples[f"{kind}_p50_ms"].append(pct(xs, 50) * 1000)
            self.samples[f"{kind}_p95_ms"].append(pct(xs, 95) * 1000)
            self.samples[f"{kind}_rows_s"].append(len(xs) / sum(xs))

    def result(self) -> dict:
        return {"db": self.db, "rules": self.n, "case": f"{self.n} rules", "runs": len(self.samples["create_p50_ms"]),
                **{k: median(v) for k, v in self.samples.items()}, "rss_mb": round(self.srv.rss_mb() or 0, 1),
                "peak_rss_mb": round(self.srv.peak_rss_mb() or 0, 1)}

    def close(self) -> None:
        self.c.close()
        self.srv.stop()


def measure_rules(args) -> list[dict]:
    """Every rule count gets its own server and database, all running at once; the timed
    runs go round-robin over them, so a change of the machine's load touches all alike."""
    out: list[dict] = []
    for db in args.db:
        cases: list[RulesCase] = []
        try:
            for n in args.rules:
                log(f"rules {db}: setting up {n} rules")
                cases.append(RulesCase(db, n, args))
            for i in range(args.runs):
                for case in cases:
                    log(f"rules {db}: run {i + 1}/{args.runs}, {case.n} rules")
                    case.run(args.single)
            results = [case.result() for case in cases]
        finally:
            for case in cases:
                case.close()
        for case, res in zip(cases, results):
            res.update(count_statements(case.url, case.work, case.token, case.ids))
            shutil.rmtree(case.work, ignore_errors=True)
            out.append(res)
            log(f"  {json.dumps(res)}")
        args.on_progress("rules", out)
    return out


RULE_COLS = [("create p50 / p95 ms", ("create_p50_ms", "create_p95_ms"), "{:.1f}"), ("creates/s", "create_rows_s", "{:.0f}"),
             ("update p50 / p95 ms", ("update_p50_ms", "update_p95_ms"), "{:.1f}"), ("updates/s", "update_rows_s", "{:.0f}"),
             ("statements per create / update", ("stmts_per_create", "stmts_per_update"), "{:.0f}"),
             ("RSS (peak) MB", ("rss_mb", "peak_rss_mb"), "{:.0f}")]


def _cells(r: dict, cols) -> list[str]:
    cells = []
    for _, key, fmt in cols:
        keys = key if isinstance(key, tuple) else (key,)
        cells.append(" / ".join(fmt.format(r[k]) if r.get(k) is not None else "–" for k in keys))
    return cells


def rules_markdown(results: list[dict]) -> str:
    lines = ["| rules on the table | database | " + " | ".join(c[0] for c in RULE_COLS) + " |",
             "|---:|---|" + "---:|" * len(RULE_COLS)]
    for r in sorted(results, key=lambda r: (r["db"], r["rules"])):
        lines.append(f"| {r['rules']} | {r['db']} | " + " | ".join(_cells(r, RULE_COLS)) + " |")
    return "\n".join(lines)


# == tenants ===================================================================================

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: unlike wall time, barely moved by other load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def touch_all(c: Client, slugs: list[str]) -> float:
    """Reads the orders page of every tenant once; returns the seconds it took."""
    t0 = time.perf_counter()
    for s in slugs:
        c.call("GET", f"/api/v1/tenants/{s}/tables/orders/records?limit=50")
    return time.perf_counter() - t0


def page_p50(c: Client, slug: str, reps: int) -> float:
    path = f"/api/v1/tenants/{slug}/tables/orders/records?limit=50"
    for _ in range(5):
        timed(c, "GET", path)
    return pct([timed(c, "GET", path)[0] * 1000 for _ in range(reps)], 50)


def start_timed(srv: Server, timeout: float = 600) -> float:
    """Seconds from spawning the server to its first answered /api/v1/health."""
    t0 = time.perf_counter()
    srv.start(timeout=timeout)
    c = srv.client()
    while True:
        try:
            if c.raw("GET", "/api/v1/health")[0] == 200:
                break
        except OSError:
            time.sleep(0.05)
    c.close()
    return time.perf_counter() - t0


def tenant_checkpoint(db: str, url: str, work: Path, srv: Server, slugs: list[str], args) -> dict:
    """Restarts the server (start-up time), touches every tenant once (RSS before and after),
    and times the records page of the first and the last tenant."""
    n = len(slugs)
    res = {"db": db, "tenants": n, "case": f"{n} tenants", "db_size_mb": db_size_mb(db, url, work), **db_objects(db, url)}
    starts, rss_start, rss_touched, touch_s, first, last = [], [], [], [], [], []
    for _ in range(args.runs):
        srv.stop()
        starts.append(start_timed(srv))
        rss_start.append(srv.rss_mb())
        c = srv.client()
        cred = srv.credentials()
        c.login(cred["email"], cred["password"])
        touch_s.append(touch_all(c, slugs))
        rss_touched.append(srv.rss_mb())
        first.append(page_p50(c, slugs[0], args.reps))
        last.append(page_p50(c, slugs[-1], args.reps))
        c.close()
    res.update({"startup_s": median(starts), "rss_start_mb": median(rss_start), "rss_touched_mb": median(rss_touched),
                "touch_all_s": median(touch_s), "page_first_p50_ms": median(first), "page_last_p50_ms": median(last)})
    if n > 1:
        res["rss_per_tenant_mb"] = round((res["rss_touched_mb"] - res["rss_start_mb"]) / n, 3)
    return res


def measure_tenants(args) -> list[dict]:
    out = []
    for db in args.db:
        work = fresh_work(args, f"tenants_{db}")
        url = database(db, work, args)
        log(f"tenants {db}: up to {max(args.tenants):,} tenants (at most {args.max_minutes} min of installing)")
        srv = Server(work, url)
        srv.start(timeout=600)
        cred = srv.credentials()
        c = srv.client()
        c.login(cred["email"], cred["password"])
        slugs: list[str] = []
        installs: list[float] = []  # seconds per install, in order
        creates: list[float] = []
        install_cpu: list[float] = []  # server CPU seconds per install (the scheduler thread's included)
        began = time.monotonic()
        body = {"name": "order_management", "with_sample_data": args.sample > 0}
        if args.sample > 0:
            body["sample_size"] = args.sample
        stopped_early = False
        for target in sorted(args.tenants):
            while len(slugs) < target:
                if (time.monotonic() - began) / 60 > args.max_minutes:
                    stopped_early = True
                    break
                slug = f"t{len(slugs) + 1:05d}"
                t0 = time.perf_counter()
                c.call("POST", "/api/v1/tenants", {"slug": slug, "name": f"Tenant {len(slugs) + 1}"})
                t1, cpu1 = time.perf_counter(), cpu_seconds(srv.pid)
                c.call("POST", f"/api/v1/tenants/{slug}/templates/install", body)
                t2, cpu2 = time.perf_counter(), cpu_seconds(srv.pid)
                creates.append(t1 - t0)
                installs.append(t2 - t1)
                install_cpu.append(cpu2 - cpu1)
                slugs.append(slug)
                if len(slugs) % 10 == 0:
                    log(f"  {len(slugs):,} tenants; last 10 installs median {statistics.median(installs[-10:]):.2f} s "
                        f"({statistics.median(install_cpu[-10:]):.2f} s server CPU); load {load_average()}; "
                        f"RSS {srv.rss_mb():.0f} MB")
            if not slugs:
                break
            res = {"target": target, "stopped_early": stopped_early, "rss_after_installs_mb": round(srv.rss_mb() or 0, 1),
                   "install_median_s": median(installs), "install_first10_median_s": median(installs[:10]),
                   "install_last10_median_s": median(installs[-10:]), "tenant_create_median_s": median(creates),
                   "install_cpu_first10_median_s": median(install_cpu[:10]), "install_cpu_last10_median_s": median(install_cpu[-10:]),
                   "install_minutes_total": round(sum(installs) / 60, 1)}
            c.close()
            res = {**tenant_checkpoint(db, url, work, srv, slugs, args), **res}
            out.append(res)
            log(f"  {json.dumps(res)}")
            args.on_progress("tenants", out)
            c = srv.client()
            c.login(cred["email"], cred["password"])
            if stopped_early:
                break
        c.close()
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


TENANT_COLS = [("install s (median; first 10 → last 10)", None, None),
               ("install server CPU s, first 10 / last 10", ("install_cpu_first10_median_s", "install_cpu_last10_median_s"), "{:.2f}"), ("DB MB", "db_size_mb", "{:,.0f}"),
               ("tables / indexes", ("db_tables", "db_indexes"), "{:,}"),
               ("start-up s", "startup_s", "{:.1f}"), ("RSS at start MB", "rss_start_mb", "{:.0f}"),
               ("RSS after touching all MB", "rss_touched_mb", "{:.0f}"), ("MB per touched tenant", "rss_per_tenant_mb", "{:.2f}"),
               ("page p50 ms, tenant #1 / last", ("page_first_p50_ms", "page_last_p50_ms"), "{:.1f}")]


def tenants_markdown(results: list[dict]) -> str:
    lines = ["| tenants | database | " + " | ".join(c[0] for c in TENANT_COLS) + " |",
             "|---:|---|" + "---:|" * len(TENANT_COLS)]
    for r in results:
        inst = f"{r['install_median_s']:.2f} ({r['install_first10_median_s']:.2f} → {r['install_last10_median_s']:.2f})"
        label = f"{r['tenants']:,}" + (f" (of {r['target']:,} planned)" if r["tenants"] < r["target"] else "")
        lines.append(f"| {label} | {r['db']} | {inst} | " + " | ".join(_cells(r, TENANT_COLS[1:])) + " |")
    return "\n".join(lines)


# == concurrency ===============================================================================

def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Gunicorn(Server):
    """gunicorn with deploy/gunicorn.conf.py on the instance a ``Server`` prepared."""

    def start(self, timeout: float = 120.0) -> "Gunicorn":
        env = dict(os.environ)
        env.update({"ZHONGSHU_DATA_DIR": str(self.data_dir), "ZHONGSHU_DATABASE_URL": self.database_url,
                    "ZHONGSHU_RUN_WORKER": "false", "ZHONGSHU_RUN_SCHEDULER": "false", "PYTHONUNBUFFERED": "1"})
        env.update(self.extra_env)
        exe = Path(sys.executable).with_name("gunicorn")
        cmd = [str(exe), "-c", str(ROOT / "deploy" / "gunicorn.conf.py"), "--bind", f"{HOST}:{self.port}"]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                c = Client(HOST, self.port, timeout=5)
                if c.raw("GET", "/api/v1/health")[0] == 200:
                    c.close()
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f}s; see {self.log_path}")

    def rss_mb(self) -> float | None:
        """Master plus workers."""
        return sum(rss_mb(p) or 0 for p in [self.pid, *_children(self.pid)])


def _client_loop(port: int, token: str, workload: str, start_at: float, end_at: float, seed: int, out: list):
    c = Client(HOST, port, token=token, timeout=120)
    gen, rng = DataGen(seed), random.Random(seed)
    page = f"{TENANT}/tables/orders/records?{PAGE_QS}"
    create = f"{TENANT}/tables/orders/records"
    while time.time() < start_at:
        time.sleep(0.001)
    while True:
        write = workload == "write" or (workload == "mixed" and rng.random() < 0.2)
        body = json.dumps(gen.row(), ensure_ascii=False).encode() if write else None
        t0 = time.time()
        if t0 >= end_at:
            break
        try:
            status, _ = c.raw("POST" if write else "GET", create if write else page, body)
            ok = status in (200, 201)
        except OSError:
            ok, c = False, Client(HOST, port, token=token, timeout=120)
        t1 = time.time()
        if t1 <= end_at:
            out.append((t1 - t0, ok))
    c.close()


def _client_process(port, token, workload, start_at, end_at, seeds, queue):
    results: list = []
    threads = [threading.Thread(target=_client_loop, args=(port, token, workload, start_at, end_at, s, results)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(results)


def load_run(port: int, token: str, workload: str, clients: int, seconds: float, procs: int, seed: int) -> dict:
    """``clients`` keep-alive connections, each sending its next request when the last
    answered, spread over ``procs`` client processes (threads inside them)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.0
    end_at = start_at + seconds
    n = min(procs, clients)
    seeds = [[seed * 1000 + k for k in range(clients) if k % n == p] for p in range(n)]
    ps = [ctx.Process(target=_client_process, args=(port, token, workload, start_at, end_at, s, queue)) for s in seeds]
    for p in ps:
        p.start()
    samples = []
    for _ in ps:
        samples.extend(queue.get())
    for p in ps:
        p.join()
    lat = [dt * 1000 for dt, ok in samples if ok]
    return {"requests_s": len(lat) / seconds, "p50_ms": pct(lat, 50) if lat else None, "p95_ms": pct(lat, 95) if lat else None,
            "errors": sum(1 for _, ok in samples if not ok)}


def measure_concurrency(args) -> list[dict]:
    out: list[dict] = []
    db = args.db[0] if len(args.db) == 1 else "postgresql"
    work = fresh_work(args, f"concurrency_{db}")
    url = database(db, work, args)
    log(f"concurrency {db}: loading {args.base_rows:,} orders")
    with Server(work, url) as srv:
        token = admin_token(srv)
        c = srv.client(token=token)
        c.call("POST", f"{TENANT}/tables", TABLE)
        bulk_orders(c, DataGen(args.seed), args.base_rows)
        c.close()
    # Both servers run at once on the same database and take turns, run by run.
    servers = {}
    try:
        for kind in args.servers:
            servers[kind] = (Gunicorn(work, url, log_path=work / "gunicorn.log") if kind == "gunicorn"
                             else Server(work, url)).start(timeout=300)
        runs: dict[tuple, list[dict]] = {}
        for i in range(args.runs):
            for workload in args.workloads:
                for clients in args.clients:
                    for kind, srv in servers.items():
                        if i == 0:
                            load_run(srv.port, token, workload, clients, 2, args.client_procs, 0)  # warm-up
                        runs.setdefault((kind, workload, clients), []).append(
                            load_run(srv.port, token, workload, clients, args.duration, args.client_procs, i + 1))
            out = [{"db": db, "server": kind, "workload": workload, "clients": clients,
                    "case": f"{kind} {workload} {clients} clients", "runs": len(got),
                    **{k: median([r[k] for r in got]) for k in ("requests_s", "p50_ms", "p95_ms")},
                    "errors": sum(r["errors"] for r in got), "rss_mb": round(servers[kind].rss_mb() or 0, 1)}
                   for (kind, workload, clients), got in runs.items()]
            args.on_progress("concurrency", out)
            log(f"concurrency: run {i + 1}/{args.runs} done")
    finally:
        for srv in servers.values():
            srv.stop()
    for r in out:
        log(f"  {json.dumps(r)}")
    shutil.rmtree(work, ignore_errors=True)
    return out


def concurrency_markdown(results: list[dict]) -> str:
    lines = ["| server | workload | clients | requests/s | p50 ms | p95 ms | errors | RSS MB (all processes) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['server']} ({r['db']}) | {r['workload']} | {r['clients']} | {r['requests_s']:.0f} | "
                     f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['errors']} | {r['rss_mb']:.0f} |")
    return "\n".join(lines)


# == report ====================================================================================

def markdown(report: dict) -> str:
    m = report.get("machine", {})
    out = [f"Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gb')} GB RAM, {m.get('os')}; Python "
           f"{m.get('python')}, SQLite {m.get('sqlite')}, PostgreSQL {m.get('postgresql')}. Load at start: {report.get('load')}."]
    parts = {"rows": ("Rows", rows_markdown), "rules": ("Rules per table", rules_markdown),
             "tenants": ("Tenants", tenants_markdown), "concurrency": ("Concurrent clients", concurrency_markdown)}
    for dim, (title, fn) in parts.items():
        if report.get(dim):
            out += ["", f"### {title}", "", fn(report[dim])]
    return "\n".join(out) + "\n"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dims", nargs="*", metavar="DIMENSION", help=f"{', '.join(DIMENSIONS)} (default: all)")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append", help="database (repeatable; default both)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure; each figure is their median (default 3)")
    ap.add_argument("--json", help="write the results as JSON to this file (after each step)")
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000], help="rows: table sizes (default 10000)")
    ap.add_argument("--rules", type=int, nargs="+", default=[0, 1, 10, 100], help="rules: active rules on the table")
    ap.add_argument("--tenants", type=int, nargs="+", default=[1, 100, 1000], help="tenants: checkpoints")
    ap.add_argument("--max-minutes", type=float, default=40, help="tenants: stop installing after this long (per database)")
    ap.add_argument("--sample", type=int, default=0, help="tenants: sample orders per tenant (default 0: none)")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50], help="concurrency: client counts")
    ap.add_argument("--servers", nargs="+", choices=["serve", "gunicorn"], default=["serve", "gunicorn"])
    ap.add_argument("--workloads", nargs="+", choices=["read", "write", "mixed"], default=["read", "write", "mixed"])
    ap.add_argument("--duration", type=float, default=8, help="concurrency: seconds per run")
    ap.add_argument("--client-procs", type=int, default=2, help="concurrency: client processes (threads inside)")
    ap.add_argument("--base-rows", type=int, default=10_000, help="rules/concurrency: orders loaded first")
    ap.add_argument("--single", type=int, default=200, help="single creates/updates per run (rules; rows passes it on)")
    ap.add_argument("--reps", type=int, default=50, help="timed repetitions of each read")
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--quick", action="store_true", help="small sizes for run_all.py (minutes, not hours)")
    ap.add_argument("--pg-url", default=os.environ.get("ZHONGSHU_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    ap.add_argument("--pg-db", default="zs_bench_growth")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zs_bench_growth"))
    ap.add_argument("--report", nargs="+", metavar="JSON", help="print one Markdown report from earlier --json files and exit")
    args = ap.parse_args(argv)
    if args.report:
        merged: dict = {}
        for f in args.report:
            data = json.loads(Path(f).read_text("utf-8"))
            for k, v in data.items():
                merged[k] = merged.get(k, []) + v if isinstance(v, list) else v
        print(markdown(merged))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so servers are stopped and databases dropped
    if os.nice(0) < 10:
        os.nice(10 - os.nice(0))  # the servers started below inherit it
    dims = args.dims or list(DIMENSIONS)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        ap.error(f"unknown dimension {', '.join(unknown)}: choose from {', '.join(DIMENSIONS)}")
    args.db = args.db or ["sqlite", "postgresql"]
    args.pg_suffixes = set()
    if args.quick:
        args.rows, args.rules, args.tenants, args.clients = [2000], [0, 10], [1, 5], [1, 10]
        args.runs, args.single, args.reps, args.duration, args.base_rows, args.max_minutes = 1, 50, 20, 3, 2000, 5
        args.workloads = ["read", "write"]
    report = {"machine": machine(), "load": load_average(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "argv": sys.argv[1:]}
    log(f"machine: {json.dumps(report['machine'], ensure_ascii=False)}; load {report['load']}")

    def save(_partial=None):
        if args.json:
            Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), "utf-8")

    args.on_progress = lambda dim, partial: (report.__setitem__(dim, list(partial)), save())  # long runs keep what they measured
    measures = {"rows": measure_rows, "rules": measure_rules, "tenants": measure_tenants, "concurrency": measure_concurrency}
    try:
        for dim in dims:
            report[dim] = measures[dim](args)
            report["load_after_" + dim] = load_average()
            save()
    finally:
        save()
        if "postgresql" in args.db:
            pg_drop(args)
        shutil.rmtree(args.workdir, ignore_errors=True)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark (not a test): orders per second through create → 10 rules → commit.

Ten rules of the kind the order hub runs (status on payment, global id, VIP rush, risk hold,
routing by region with fallback, gift tiers, stock reservation per item, SLA timer,
notification to the outbox, status stamp) on an orders table with an items sub-table, on
SQLite and PostgreSQL, with one or more writer threads. Prints orders/s (median of runs),
outbox jobs queued, and the process RSS.

The notification goes to a DingTalk group robot: the ``dingtalk`` connector is installed as
``dingtalk_ops`` and points at a robot stub on 127.0.0.1 that checks the token and the 加签
signature like tests/connectors/test_notifications.py. After each database's runs a real
``zhongshu worker`` process drains the outbox (``--no-drain`` skips it): jobs drained,
jobs/s from the first claim to the last finish, failed jobs, messages the robot received,
and the worker's RSS against the 150 MB goal.

    .venv/bin/python bench/bench_rules.py --orders 1000 --runs 3 --threads 1 2
    .venv/bin/python bench/bench_rules.py --db postgresql --threads 1 --procs 2 --no-drain   # + 2 writer processes
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from connectors.conftest import LocalServer, json_response  # noqa: E402  (the connector tests' loopback server)
from outbox_drain import drain_with_worker  # noqa: E402
from zhongshu.connectors.service.installs import create_install  # noqa: E402
from zhongshu.platform.core import Platform  # noqa: E402
from zhongshu.platform.storage.access import Actor  # noqa: E402
from zhongshu.runtime.models import OutboxJob, Rule  # noqa: E402
from zhongshu.runtime.rules.api import save_rule  # noqa: E402

PG = os.environ.get("ZHONGSHU_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/zs_bench_rules")

TABLES = [
    {"api_name": "warehouses", "fields": [{"api_name": "code", "type": "text"}, {"api_name": "region", "type": "text"},
                                          {"api_name": "enabled", "type": "boolean", "default": True},
                                          {"api_name": "temporary", "type": "boolean"}]},
    {"api_name": "inventory", "fields": [{"api_name": "sku", "type": "text", "unique": True}, {"api_name": "on_hand", "type": "number"},
                                         {"api_name": "reserved", "type": "number", "default": 0},
                                         {"api_name": "available", "type": "formula", "options": {"expression": "on_hand - reserved"}}]},
    {"api_name": "gift_rules", "fields": [{"api_name": "threshold", "type": "currency"}, {"api_name": "gift_sku", "type": "text"}]},
    {"api_name": "orders", "fields": [
        {"api_name": "order_no", "type": "autonumber", "options": {"pattern": "SO{YYYYMMDD}{seq:06}"}},
        {"api_name": "channel", "type": "single_select", "options": {"choices": [{"label": c} for c in ["天猫", "抖音", "拼多多", "小程序"]]}},
        {"api_name": "external_id", "type": "text"}, {"api_name": "global_id", "type": "text", "indexed": True},
        {"api_name": "amount", "type": "currency"}, {"api_name": "paid", "type": "currency"},
        {"api_name": "status", "type": "single_select", "default": "待付款",
         "options": {"choices": [{"label": s} for s in ["待付款", "已付款", "备货中", "已发货", "已完成", "已取消", "异常中"]]}},
        {"api_name": "region", "type": "text"}, {"api_name": "address", "type": "address"},
        {"api_name": "vip", "type": "boolean"}, {"api_name": "risk_hold", "type": "boolean"},
        {"api_name": "warehouse", "type": "text"}, {"api_name": "status_changed_at", "type": "datetime"},
        {"api_name": "tracking_no", "type": "text"},
        {"api_name": "items", "type": "sub_table", "options": {"fields": [
            {"api_name": "sku", "type": "text"}, {"api_name": "qty", "type": "number"}, {"api_name": "unit_price", "type": "currency"},
            {"api_name": "is_gift", "type": "boolean"},
            {"api_name": "subtotal", "type": "formula", "options": {"expression": "qty * unit_price", "result_type": "currency"}}]}},
        {"api_name": "total", "type": "rollup", "options": {"through": "items", "field": "subtotal", "fn": "sum", "result_type": "currency"}},
    ]},
]

RULES = [
    {"api_name": "paid", "table": "orders", "trigger": {"type": "record_created"}, "condition": "paid > 0 and status == '待付款'",
     "actions": [{"type": "update_record", "values": {"status": "'已付款'"}}]},
    {"api_name": "gid", "table": "orders", "trigger": {"type": "record_created"},
     "actions": [{"type": "update_record", "values": {"global_id": "SHA256(CONCAT(channel, ':', external_id))"}}]},
    {"api_name": "vip", "table": "orders", "trigger": {"type": "record_created"}, "condition": "channel == '小程序' and paid > 0",
     "actions": [{"type": "update_record", "values": {"vip": True}}]},
    {"api_name": "risk", "table": "orders", "trigger": {"type": "record_created"},
     "condition": "amount > 500 and (CONTAINS(address.text, '新疆') or CONTAINS(address.text, '西藏'))",
     "actions": [{"type": "update_record", "values": {"risk_hold": True}}]},
    {"api_name": "route", "table": "orders", "trigger": {"type": "record_created"}, "actions": [{
        "type": "pick_row", "table": "warehouses",
        "filter": {"and": [{"field": "region", "op": "=", "value": {"$expr": "region"}}, {"field": "enabled", "op": "=", "value": True}]},
        "set": {"warehouse": "row.code"},
        "else": [{"type": "pick_row", "table": "warehouses", "filter": {"field": "temporary", "op": "=", "value": True}, "set": {"warehouse": "row.code"}}]}]},
    {"api_name": "gifts", "table": "orders", "trigger": {"type": "record_created"}, "condition": "paid >= 299", "actions": [{
        "type": "pick_row", "table": "gift_rules", "sorts": [{"field": "threshold", "direction": "desc"}],
        "filter": {"field": "threshold", "op": "<=", "value": {"$expr": "paid"}},
        "then": [{"type": "create_record", "table": "orders_items", "parent": "id",
                  "values": {"sku": "row.gift_sku", "qty": 1, "unit_price": 0, "is_gift": True}}]}]},
    {"api_name": "reserve", "table": "orders", "trigger": {"type": "record_created"}, "actions": [{
        "type": "for_each", "items": "items", "actions": [{
            "type": "adjust_number", "table": "inventory", "field": "reserved", "delta": "item.qty",
            "filter": {"field": "sku", "op": "=", "value": {"$expr": "item.sku"}},
            "guard": {"field": "available", "op": ">=", "value": {"$expr": "item.qty"}},
            "else": [{"type": "update_record", "values": {"status": "'异常中'"}}]}]}]},
    {"api_name": "stamp", "table": "orders", "trigger": {"type": "record_updated", "fields": ["status"]},
     "actions": [{"type": "update_record", "values": {"status_changed_at": "NOW()"}}]},
    {"api_name": "sla", "table": "orders", "trigger": {"type": "time_after", "field": "status_changed_at", "offset": "30 minutes"},
     "condition": "status == '已付款' and ISBLANK(tracking_no)", "actions": [{"type": "update_record", "values": {"status": "'异常中'"}}]},
    {"api_name": "notify", "table": "orders", "trigger": {"type": "record_created"}, "condition": "amount > 1500",
     "actions": [{"type": "notify", "connector": "dingtalk_ops", "action": "send_message",
                  "input": {"msgtype": "text", "content": "大单 {{ record.order_no }}: {{ record.amount }}"}}]},
]

DING_TOKEN, DING_SECRET = "bench-robot", "SECbench0123456789abcdef"
WORKER_RSS_GOAL_MB = 150


class DingTalkRobot:
    """oapi.dingtalk.com/robot/send on 127.0.0.1: checks the access token, the timestamp and
    the 加签 signature as the connector tests do, and counts the text messages it accepted."""

    def __init__(self):
        self.accepted = 0
        self.refused: list[str] = []
        self._lock = threading.Lock()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        self.server = LocalServer(self._handle).__enter__()
        # the bench sends thousands of messages: keep counts, not every request
        self.server.requests = _Discard()

    def _handle(self, req):
        a = req.args
        if req.path != "/robot/send" or a.get("access_token") != DING_TOKEN:
            return self._refuse(300001, "token is not exist")
        ts = a.get("timestamp", "")
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600_000:
            return self._refuse(310000, "invalid timestamp")
        expect = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(),
                                           hashlib.sha256).digest()).decode()
        if a.get("sign") != expect:  # werkzeug has already url-decoded the query
            return self._refuse(310000, "sign not match")
        msg = req.get_json(silent=True) or {}
        if msg.get("msgtype") != "text" or not (msg.get("text") or {}).get("content", "").startswith("大单 "):
            return self._refuse(40035, "unexpected message")
        with self._lock:
            self.accepted += 1
        return json_response({"errcode": 0, "errmsg": "ok"})

    def _refuse(self, code: int, why: str):
        with self._lock:
            self.refused.append(why)
        return json_response({"errcode": code, "errmsg": why})

    @property
    def webhook_url(self) -> str:
        return f"{self.server.url}/robot/send?access_token={DING_TOKEN}"

    def close(self):
        self.server.__exit__(None, None, None)


class _Discard(list):
    def append(self, _item):
        pass


def setup(url: str, data_dir: str, robot: DingTalkRobot) -> tuple[Platform, object]:
    if url.startswith("postgresql"):
        admin = create_engine(url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        name = url.rsplit("/", 1)[1]
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    zs = Platform({"DATABASE_URL": url, "DATA_DIR": data_dir, "SECRET_KEY": "bench"})
    zs.migrate()
    tenant = zs.create_tenant("bench", "Bench")
    actor = Actor(None, "owner", is_system=True)
    with zs.tenant_session(tenant.id, write=True) as s:
        md = zs.metadata(s, tenant, actor)
        for t in TABLES:
            md.create_table(t)
        recs = zs.records(s, tenant, actor)
        recs.create_many(recs.schema("warehouses"), [{"code": "HD", "region": "华东"}, {"code": "HN", "region": "华南"},
                                                     {"code": "TMP", "region": "-", "temporary": True}])
        recs.create_many(recs.schema("inventory"), [{"sku": f"SKU{i}", "on_hand": 10**7} for i in range(50)])
        recs.create_many(recs.schema("gift_rules"), [{"threshold": 299, "gift_sku": "BAG"}, {"threshold": 599, "gift_sku": "TASTE"}])
        create_install(zs, s, {"connector": "dingtalk", "api_name": "dingtalk_ops",
                               "credentials": {"webhook_url": robot.webhook_url, "secret": DING_SECRET}})
        for r in RULES:
            save_rule(s, recs, r, tenant_id=tenant.id)
    return zs, tenant


def order(i: int, rnd) -> dict:
    amount = rnd.choice([59, 129, 299, 520, 600, 1200, 1800])
    return {"channel": rnd.choice(["天猫", "抖音", "拼多多", "小程序"]), "external_id": f"E{i}", "amount": amount,
            "paid": amount if rnd.random() < 0.7 else 0, "region": rnd.choice(["华东", "华南", "西北"]),
            "address": {"province": rnd.choice(["浙江省", "广东省", "新疆维吾尔自治区"]), "detail": "某路 1 号"},
            "items": [{"sku": f"SKU{rnd.randrange(50)}", "qty": rnd.randint(1, 3), "unit_price": amount / 2} for _ in range(2)]}


def run(zs, tenant, n: int, threads: int, offset: int) -> float:
    import random

    actor = Actor(None, "owner", is_system=True)
    per = n // threads

    def work(k):
        rnd = random.Random(k)
        for i in range(per):
            with zs.tenant_session(tenant.id, write=True) as s:
                recs = zs.records(s, tenant, actor)
                recs.create(recs.schema("orders"), order(offset + k * per + i, rnd))

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    started, cpu = time.perf_counter(), time.process_time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    CPU_MS.append((time.process_time() - cpu) * 1000 / (per * threads))  # this process's CPU (PostgreSQL's is not in it)
    return per * threads / (time.perf_counter() - started)


CPU_MS: list[float] = []


def _proc_work(url: str, data_dir: str, tenant_id: int, first: int, count: int, seed: int, go, out) -> None:
    """One writer process (as a worker-pool process runs orders): its own Platform on the
    same database; waits for ``go``, creates ``count`` orders, reports its CPU time."""
    import random

    zs = Platform({"DATABASE_URL": url, "DATA_DIR": data_dir, "SECRET_KEY": "bench"})
    actor = Actor(None, "owner", is_system=True)
    with zs.tenant_session(None) as s:
        from zhongshu.platform.models import Tenant

        tenant = s.get(Tenant, tenant_id)
        s.expunge(tenant)
    rnd = random.Random(seed)
    for i in range(20):  # warm the caches (compiled rules, schemas) before the clock starts
        with zs.tenant_session(tenant.id, write=True) as s:
            recs = zs.records(s, tenant, actor)
            recs.create(recs.schema("orders"), order(10**8 + seed * 1000 + i, rnd))
    out.put(("ready", 0.0))
    go.wait()
    cpu = time.process_time()
    for i in range(count):
        with zs.tenant_session(tenant.id, write=True) as s:
            recs = zs.records(s, tenant, actor)
            recs.create(recs.schema("orders"), order(first + i, rnd))
    out.put(("done", time.process_time() - cpu))
    zs.close()


def run_procs(url: str, data_dir: str, tenant, n: int, procs: int, offset: int) -> float:
    """Orders/s with ``procs`` writer processes (the deployment's worker pool): wall time from
    the common start to the last order; CPU per order of the writer processes only."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    per = n // procs
    ps = [ctx.Process(target=_proc_work, args=(url, data_dir, tenant.id, offset + k * per, per, offset + k, go, out))
          for k in range(procs)]
    for p in ps:
        p.start()
    for _ in ps:
        out.get()  # ready
    started = time.perf_counter()
    go.set()
    cpu = sum(out.get()[1] for _ in ps)
    elapsed = time.perf_counter() - started
    for p in ps:
        p.join()
    CPU_MS.append(cpu * 1000 / (per * procs))
    return per * procs / elapsed


def drain(zs, url: str, data_dir: str, robot: DingTalkRobot, db: str, concurrency: int) -> dict:
    """Drains this database's outbox with a ``zhongshu worker`` process; one result row."""
    received_before, refused_before = robot.accepted, len(robot.refused)
    figures = drain_with_worker(zs, url, data_dir, concurrency=concurrency)
    with zs.tenant_session(None) as s:
        by_kind = dict(s.execute(select(OutboxJob.kind, func.count()).group_by(OutboxJob.kind)).all())
        errors = s.scalars(select(OutboxJob.last_error).where(OutboxJob.last_error.is_not(None)).limit(3)).all()
    return {"db": db, "case": "drain", **figures, "jobs_by_kind": by_kind,
            "notify_jobs": by_kind.get("connector.action", 0), "robot_received": robot.accepted - received_before,
            "robot_refused": len(robot.refused) - refused_before, "worker_rss_goal_mb": WORKER_RSS_GOAL_MB,
            "worker_rss_within_goal": figures["worker_rss_mb"] is not None and figures["worker_rss_mb"] <= WORKER_RSS_GOAL_MB,
            "sample_errors": [e[:300] for e in errors]}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--procs", type=int, nargs="*", default=[],
                    help="also run with this many writer processes (each its own Platform, as worker-pool processes)")
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--no-drain", action="store_true", help="do not drain the outbox with a worker process afterwards")
    ap.add_argument("--worker-concurrency", type=int, default=1, help="threads of the draining worker process")
    args = ap.parse_args()
    results, drains = [], []
    robot = DingTalkRobot()
    for db in args.db:
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/bench.db" if db == "sqlite" else PG
            zs, tenant = setup(url, d, robot)
            run(zs, tenant, 50, 1, 10**6)  # warm-up (compiles rules, fills caches)
            offset = 0
            for threads in [*args.threads, *[-p for p in args.procs]]:
                rates = []
                CPU_MS.clear()
                for _ in range(args.runs):
                    if threads > 0:
                        rates.append(run(zs, tenant, args.orders, threads, offset))
                    else:
                        rates.append(run_procs(url, d, tenant, args.orders, -threads, offset))
                    offset += args.orders
                with zs.tenant_session(None) as s:
                    jobs = s.scalar(select(func.count()).select_from(OutboxJob))
                    rules = s.scalar(select(func.count()).select_from(Rule))
                results.append({"db": db, "threads": threads if threads > 0 else f"{-threads} processes", "orders": args.orders, "rules": rules,
                                "orders_per_s_median": round(statistics.median(rates), 1),
                                "runs": [round(r, 1) for r in rates], "cpu_ms_per_order_median": round(statistics.median(CPU_MS), 2),
                                "outbox_jobs": jobs, "rss_mb": round(rss_mb(), 1)})
                print(json.dumps(results[-1], ensure_ascii=False), flush=True)
            if not args.no_drain:
                drains.append(drain(zs, url, d, robot, db, args.worker_concurrency))
                print(json.dumps(drains[-1], ensure_ascii=False), flush=True)
            zs.close()
    robot.close()
    print("\n| db | writers (threads, or processes) | rules | orders/s (median) | runs | CPU ms/order (this process) | RSS MB |\n|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['db']} | {r['threads']} | {r['rules']} | {r['orders_per_s_median']} | {r['runs']} | "
              f"{r['cpu_ms_per_order_median']} | {r['rss_mb']} |")
    print("\ngoal: ≥ 500 orders/s on the 2-core machine with PostgreSQL")
    if drains:
        print("\n| db | jobs drained | jobs/s (after the first) | done | dead | retried | robot got / notify jobs | "
              "worker RSS MB (peak) |\n|---|---|---|---|---|---|---|---|")
        for r in drains:
            print(f"| {r['db']} | {r['jobs_drained']} | {r['jobs_per_s']} ({r['jobs_per_s_after_first']}) | {r['done']} | "
                  f"{r['dead']} | {r['retried']} | "
                  f"{r['robot_received']} / {r['notify_jobs']} | {r['worker_rss_mb']} ({r['worker_peak_rss_mb']}) |")
        print(f"\ngoal: worker RSS ≤ {WORKER_RSS_GOAL_MB} MB after the run; 0 dead; every notification received once")
    if args.json:
        Path(args.json).write_text(json.dumps(results + drains, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark (not a test): orders per second through create → 10 rules → commit.

Ten rules of the kind the order hub runs (status on payment, global id, VIP rush, risk hold,
routing by region with fallback, gift tiers, stock reservation per item, SLA timer,
notification to the outbox, status stamp) on an orders table with an items sub-table, on
SQLite and PostgreSQL, with one or more writer threads. Prints orders/s (median of runs),
outbox jobs queued, and the process RSS.

    .venv/bin/python bench/bench_rules.py --orders 1000 --runs 3 --threads 1 2
"""
from __future__ import annotations

import argparse
import json
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
     "actions": [{"type": "notify", "connector": "dingtalk_ops", "action": "send_text", "input": {"content": "大单 {{ record.order_no }}: {{ record.amount }}"}}]},
]


def setup(url: str, data_dir: str) -> tuple[Platform, object]:
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
    started = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - started)


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
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    results = []
    for db in args.db:
        with tempfile.TemporaryDirectory() as d:
            url = f"sqlite:///{d}/bench.db" if db == "sqlite" else PG
            zs, tenant = setup(url, d)
            run(zs, tenant, 50, 1, 10**6)  # warm-up (compiles rules, fills caches)
            offset = 0
            for threads in args.threads:
                rates = []
                for _ in range(args.runs):
                    rates.append(run(zs, tenant, args.orders, threads, offset))
                    offset += args.orders
                with zs.tenant_session(None) as s:
                    jobs = s.scalar(select(func.count()).select_from(OutboxJob))
                    rules = s.scalar(select(func.count()).select_from(Rule))
                results.append({"db": db, "threads": threads, "orders": args.orders, "rules": rules,
                                "orders_per_s_median": round(statistics.median(rates), 1),
                                "runs": [round(r, 1) for r in rates], "outbox_jobs": jobs, "rss_mb": round(rss_mb(), 1)})
                print(json.dumps(results[-1], ensure_ascii=False), flush=True)
            zs.close()
    print("\n| db | threads | rules | orders/s (median) | runs | RSS MB |\n|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['db']} | {r['threads']} | {r['rules']} | {r['orders_per_s_median']} | {r['runs']} | {r['rss_mb']} |")
    print("\ngoal: ≥ 500 orders/s on the 2-core machine with PostgreSQL")
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Benchmark: the data engine through the HTTP API, on SQLite and on PostgreSQL.

For an orders-like table (autonumber order no, channel, customer, amount, paid, status with
7 options, tracking no, created, weight, address) it starts a real ``zhongshu serve``
process on 127.0.0.1 and measures with ONE client over one keep-alive connection:

  * bulk insert rows/s (batches of 5000, ``?return=ids``; per-record history is written)
  * single create and single update (PATCH): rows/s, p50/p95 ms
  * a filtered page -- status = '已付款' AND amount > 300, 50 rows, created descending --
    via ``GET .../records?filter=`` before any view exists, then via a saved grid view with
    that filter/sort (creating the view builds a composite index on (status, created)),
    and via ``GET ?filter=`` again once that index exists
  * a count with that filter, and a group-by status (count, sum amount) with that filter,
    both on the aggregate endpoint
  * the server's RSS at the end (and its peak, VmHWM)

Data comes from a fixed random seed: skewed channels and statuses like a real shop,
amounts 10-2000 (log-normal), order times spread over the last 90 days.

    .venv/bin/python bench/bench_data.py --rows 100000                 # SQLite and PostgreSQL
    .venv/bin/python bench/bench_data.py --rows 1000000 --db postgresql --json out.json

PostgreSQL: a database ``zs_bench`` (dropped and created again) on
``postgresql+psycopg://postgres@127.0.0.1:5432`` (change with --pg-url). Not a test.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform as _platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server  # noqa: E402

TENANT = "/api/v1/tenants/demo"
SEED = 20240611

CHANNELS = [("天猫", 40), ("抖音", 30), ("拼多多", 20), ("小程序", 10)]
STATUSES = [("已完成", 45), ("已发货", 20), ("已付款", 12), ("待付款", 8), ("备货中", 8), ("已取消", 6), ("异常中", 1)]
PAID_STATUSES = {"已完成", "已发货", "已付款", "备货中", "异常中"}

TABLE = {
    "api_name": "orders",
    "label": {"zh-CN": "订单", "en": "Orders"},
    "fields": [
        {"api_name": "order_no", "type": "autonumber", "label": "订单编号", "options": {"pattern": "SO{YYYYMMDD}{seq:07}"}},
        {"api_name": "channel", "type": "single_select", "label": "渠道",
         "options": {"choices": [{"label": c} for c, _ in CHANNELS]}},
        {"api_name": "customer_name", "type": "text", "label": "客户"},
        {"api_name": "amount", "type": "currency", "label": "应收", "options": {"decimals": 2}},
        {"api_name": "paid", "type": "currency", "label": "实收", "options": {"decimals": 2}},
        {"api_name": "status", "type": "single_select", "label": "订单状态", "default": "待付款",
         "options": {"choices": [{"label": s} for s in ["待付款", "已付款", "备货中", "已发货", "已完成", "已取消", "异常中"]]}},
        {"api_name": "tracking_no", "type": "text", "label": "物流单号"},
        {"api_name": "created", "type": "datetime", "label": "下单时间"},
        {"api_name": "weight", "type": "number", "label": "重量", "options": {"decimals": 2}},
        {"api_name": "address", "type": "address", "label": "地址"},
    ],
}

FILTER = {"and": [{"field": "status", "op": "=", "value": "已付款"}, {"field": "amount", "op": ">", "value": 300}]}
SORT = "-created"
VIEW = {"api_name": "paid_over_300", "type": "grid", "filter": FILTER, "sorts": [{"field": "created", "direction": "desc"}]}

#: A well-known peer (NocoDB on SQLite, 100k rows, this machine), for the table.
REFERENCE = {"bulk_rows_s": 944, "create_rows_s": 76, "create_p50_ms": 12.8, "update_rows_s": 60,
             "page_p95_ms": 65, "count_p50_ms": 25, "group_p50_ms": 134, "rss_mb": 819}
GOALS_100K = {"bulk_rows_s": (">=", 20000), "create_rows_s": (">=", 500), "page_p95_ms": ("<=", 5),
              "count_p50_ms": ("<=", 5), "group_p50_ms": ("<=", 30), "rss_mb": ("<=", 150)}
GOALS_1M_PG = {"page_p95_ms": ("<=", 20), "group_p50_ms": ("<=", 300)}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
PLACES = [("广东省", "广州市", ["天河区", "越秀区", "海珠区", "白云区"]), ("广东省", "深圳市", ["南山区", "福田区", "宝安区", "龙岗区"]),
          ("浙江省", "杭州市", ["西湖区", "余杭区", "滨江区"]), ("江苏省", "南京市", ["鼓楼区", "玄武区", "江宁区"]),
          ("上海市", "上海市", ["浦东新区", "徐汇区", "静安区", "闵行区"]), ("北京市", "北京市", ["朝阳区", "海淀区", "丰台区"]),
          ("四川省", "成都市", ["武侯区", "锦江区", "高新区"]), ("湖北省", "武汉市", ["洪山区", "江汉区", "武昌区"]),
          ("山东省", "济南市", ["历下区", "市中区"]), ("福建省", "厦门市", ["思明区", "湖里区"])]
ROADS = ["中山路", "人民路", "建设路", "解放路", "长江路", "南京路", "和平路", "新华路", "文化路", "科技路"]


def _weighted(rng: random.Random, pairs):
    labels = [p[0] for p in pairs]
    cum, acc = [], 0
    for _, w in pairs:
        acc += w
        cum.append(acc)
    return lambda: labels[min(len(labels) - 1, _bisect(cum, rng.random() * acc))]


def _bisect(cum, x):
    lo, hi = 0, len(cum)
    while lo < hi:
        mid = (lo + hi) // 2
        if cum[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


class DataGen:
    """Realistic orders from a fixed seed."""

    def __init__(self, seed: int = SEED, now: datetime | None = None):
        self.rng = random.Random(seed)
        self.channel = _weighted(self.rng, CHANNELS)
        self.status = _weighted(self.rng, STATUSES)
        self.now = (now or datetime.now(timezone(timedelta(hours=8)))).replace(microsecond=0)

    def amount(self) -> float:
        # log-normal around ~190 yuan, clipped to 10-2000
        return round(min(2000.0, max(10.0, self.rng.lognormvariate(math.log(190), 0.85))), 2)

    def row(self) -> dict:
        r = self.rng
        status = self.status()
        amount = self.amount()
        prov, city, districts = PLACES[r.randrange(len(PLACES))]
        shipped = status in ("已发货", "已完成", "异常中")
        created = self.now - timedelta(seconds=r.randrange(90 * 86400))
        return {
            "channel": self.channel(),
            "customer_name": SURNAMES[r.randrange(len(SURNAMES))] + "".join(GIVEN[r.randrange(len(GIVEN))] for _ in range(r.choice((1, 2, 2)))),
            "amount": amount,
            "paid": amount if status in PAID_STATUSES else 0,
            "status": status,
            "tracking_no": f"SF{r.randrange(10**11, 10**12)}" if shipped else None,
            "created": created.isoformat(),
            "weight": round(r.uniform(0.1, 20.0), 2),
            "address": {"province": prov, "city": city, "district": districts[r.randrange(len(districts))],
                        "detail": f"{ROADS[r.randrange(len(ROADS))]}{r.randrange(1, 999)}号{r.randrange(1, 30)}栋{r.randrange(101, 2505)}室"},
        }


# -- measuring -------------------------------------------------------------------------------

def pct(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(samples)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def timed(client, method, path, body: bytes | None = None, expect=(200, 201)) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    status, data = client.raw(method, path, body)
    dt = time.perf_counter() - t0
    if status not in expect:
        raise RuntimeError(f"{method} {path} -> {status}: {data[:400].decode('utf-8', 'replace')}")
    return dt, data


def latency(client, method, path, body=None, *, reps: int, warmup: int) -> dict:
    for _ in range(warmup):
        timed(client, method, path, body)
    xs = []
    for _ in range(reps):
        dt, _ = timed(client, method, path, body)
        xs.append(dt * 1000)
    return {"p50_ms": round(pct(xs, 50), 2), "p95_ms": round(pct(xs, 95), 2), "mean_ms": round(statistics.fmean(xs), 2), "n": reps}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pg_recreate(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    e = create_engine(admin_url.rstrip("/") + "/postgres", isolation_level="AUTOCOMMIT")
    with e.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    e.dispose()
    return admin_url.rstrip("/") + "/" + name


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _db_cpu_s(db: str, args) -> float:
    """PostgreSQL: CPU seconds so far of the server's backends on the bench database (they
    live as long as its connection pool), 0 for SQLite (its work is in the server's CPU)."""
    if db != "postgresql":
        return 0.0
    import psycopg

    url = args.pg_url.replace("postgresql+psycopg://", "postgresql://").rstrip("/") + "/" + args.pg_db
    with psycopg.connect(url, autocommit=True) as c:
        pids = [r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                        (args.pg_db,))]
    return sum(_cpu_s(p) for p in pids)


def run_one(db: str, rows: int, args) -> dict:
    work = Path(args.workdir) / f"{db}_{rows}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if db == "sqlite":
        url = f"sqlite:///{work / 'zhongshu.db'}"
    else:
        url = pg_recreate(args.pg_url, args.pg_db)
    log(f"{db} {rows:,} rows: starting server ({work})")
    res: dict = {"db": db, "rows": rows}
    with Server(work, url) as srv:
        res["rss_start_mb"] = round(srv.rss_mb() or 0, 1)
        c = srv.client()
        cred = srv.credentials()
        c.login(cred["email"], cred["password"])
        token = c.call("POST", f"{TENANT}/tokens", {"name": "bench"})["token"]
        c.close()
        c = srv.client(token=token)
        c.call("POST", f"{TENANT}/tables", TABLE)
        base = f"{TENANT}/tables/orders"
        gen = DataGen(args.seed)

        # bulk insert
        ids: list[int] = []
        spent = 0.0
        cpu0 = _cpu_s(srv.pid), _db_cpu_s(db, args)
        t_wall = time.perf_counter()
        done = 0
        while done < rows:
            n = min(args.batch, rows - done)
            body = json.dumps({"records": [gen.row() for _ in range(n)]}, ensure_ascii=False).encode()
            dt, data = timed(c, "POST", f"{base}/records?return=ids", body)
            spent += dt
            ids.extend(json.loads(data)["ids"])
            done += n
            if done % (args.batch * 20) == 0 or done == rows:
                log(f"  bulk {done:,}/{rows:,}: {done / spent:,.0f} rows/s (server time)")
        res["bulk_rows_s"] = round(rows / spent)
        # CPU per row: steadier than the wall clock on a loaded machine (PostgreSQL's backends apart)
        res["bulk_server_cpu_us_row"] = round((_cpu_s(srv.pid) - cpu0[0]) / rows * 1e6, 1)
        if db == "postgresql":
            res["bulk_db_cpu_us_row"] = round((_db_cpu_s(db, args) - cpu0[1]) / rows * 1e6, 1)
        log(f"  bulk CPU per row: server {res['bulk_server_cpu_us_row']} µs"
            + (f", PostgreSQL backends {res['bulk_db_cpu_us_row']} µs" if db == "postgresql" else ""))
        res["bulk_wall_s"] = round(time.perf_counter() - t_wall, 1)
        assert len(ids) == rows

        # single creates
        xs = []
        for _ in range(args.single):
            body = json.dumps(gen.row(), ensure_ascii=False).encode()
            dt, data = timed(c, "POST", f"{base}/records", body)
            xs.append(dt)
            ids.append(json.loads(data)["id"])
        res["create_rows_s"] = round(len(xs) / sum(xs))
        res["create_p50_ms"] = round(pct(xs, 50) * 1000, 2)
        res["create_p95_ms"] = round(pct(xs, 95) * 1000, 2)
        log(f"  single create: {res['create_rows_s']}/s, p50 {res['create_p50_ms']} ms, p95 {res['create_p95_ms']} ms")

        # single updates
        rng = random.Random(args.seed + 1)
        xs = []
        for _ in range(args.single):
            rid = ids[rng.randrange(len(ids))]
            st = _weighted(rng, STATUSES)()
            body = json.dumps({"status": st, "paid": gen.amount()}, ensure_ascii=False).encode()
            dt, _ = timed(c, "PATCH", f"{base}/records/{rid}", body)
            xs.append(dt)
        res["update_rows_s"] = round(len(xs) / sum(xs))
        res["update_p50_ms"] = round(pct(xs, 50) * 1000, 2)
        res["update_p95_ms"] = round(pct(xs, 95) * 1000, 2)
        log(f"  single update: {res['update_rows_s']}/s, p50 {res['update_p50_ms']} ms, p95 {res['update_p95_ms']} ms")

        # floors: the HTTP stack alone (health, no auth), and one record by id (auth + tenant + schema + 1 row)
        kw = {"reps": args.reps, "warmup": args.warmup}
        res["health"] = latency(c, "GET", "/api/v1/health", **kw)
        res["get_one"] = latency(c, "GET", f"{base}/records/{ids[len(ids) // 2]}", **kw)
        log(f"  floors: health {res['health']}, get one record {res['get_one']}")

        # reads
        qs = urllib.parse.urlencode({"filter": json.dumps(FILTER, ensure_ascii=False, separators=(",", ":")),
                                     "sort": SORT, "limit": 50})
        page_path = f"{base}/records?{qs}"
        sample = c.call("GET", page_path)
        assert len(sample["records"]) == 50, len(sample["records"])
        res["page"] = latency(c, "GET", page_path, **kw)
        log(f"  page GET ?filter (no view yet): {res['page']}")
        cnt_body = json.dumps({"filter": FILTER, "metrics": [{"fn": "count"}]}, ensure_ascii=False).encode()
        res["matching_rows"] = json.loads(c.raw("POST", f"{base}/aggregate", cnt_body)[1])["rows"][0]["count"]
        res["count"] = latency(c, "POST", f"{base}/aggregate", cnt_body, **kw)
        log(f"  count ({res['matching_rows']:,} rows match): {res['count']}")
        grp_body = json.dumps({"filter": FILTER, "group_by": [{"field": "status"}],
                               "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}, ensure_ascii=False).encode()
        res["group"] = latency(c, "POST", f"{base}/aggregate", grp_body, **kw)
        log(f"  group-by status: {res['group']}")
        cpage = urllib.parse.urlencode({"filter": json.dumps(FILTER, ensure_ascii=False, separators=(",", ":")),
                                        "sort": SORT, "limit": 50, "count": "true"})
        res["page_count"] = latency(c, "GET", f"{base}/records?{cpage}", **kw)
        log(f"  page + count=true: {res['page_count']}")

        t0 = time.perf_counter()
        c.call("POST", f"{base}/views", VIEW)
        res["view_create_s"] = round(time.perf_counter() - t0, 2)
        vpath = f"{base}/views/{VIEW['api_name']}/records?limit=50"
        vs = c.call("GET", vpath)
        assert [r["id"] for r in vs["records"]] == [r["id"] for r in sample["records"]], "view and ad-hoc filter disagree"
        res["view_page"] = latency(c, "GET", vpath, **kw)
        log(f"  page via view (index built in {res['view_create_s']} s): {res['view_page']}")
        res["page_indexed"] = latency(c, "GET", page_path, **kw)
        log(f"  page GET ?filter with the view's index: {res['page_indexed']}")
        res["group_indexed"] = latency(c, "POST", f"{base}/aggregate", grp_body, **kw)
        res["count_indexed"] = latency(c, "POST", f"{base}/aggregate", cnt_body, **kw)
        log(f"  count / group-by with the view's index: {res['count_indexed']} / {res['group_indexed']}")

        res["rss_mb"] = round(srv.rss_mb() or 0, 1)
        res["peak_rss_mb"] = round(srv.peak_rss_mb() or 0, 1)
        log(f"  RSS {res['rss_mb']} MB (peak {res['peak_rss_mb']} MB)")
        c.close()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


# -- report ----------------------------------------------------------------------------------

def _flat(r: dict) -> dict:
    return {
        "bulk_rows_s": r["bulk_rows_s"], "create_rows_s": r["create_rows_s"], "create_p50_ms": r["create_p50_ms"],
        "create_p95_ms": r["create_p95_ms"], "update_rows_s": r["update_rows_s"], "update_p50_ms": r["update_p50_ms"],
        "update_p95_ms": r["update_p95_ms"],
        "page_p50_ms": r["page"]["p50_ms"], "page_p95_ms": r["page"]["p95_ms"],
        "view_p50_ms": r["view_page"]["p50_ms"], "view_p95_ms": r["view_page"]["p95_ms"],
        "pagei_p50_ms": r["page_indexed"]["p50_ms"], "pagei_p95_ms": r["page_indexed"]["p95_ms"],
        "count_p50_ms": r["count"]["p50_ms"], "count_p95_ms": r["count"]["p95_ms"],
        "group_p50_ms": r["group"]["p50_ms"], "group_p95_ms": r["group"]["p95_ms"],
        "pagecount_p50_ms": r["page_count"]["p50_ms"],
        "rss_mb": r["rss_mb"], "peak_rss_mb": r["peak_rss_mb"],
        "health_p50_ms": r.get("health", {}).get("p50_ms", float("nan")),
        "getone_p50_ms": r.get("get_one", {}).get("p50_ms", float("nan")),
        "getone_p95_ms": r.get("get_one", {}).get("p95_ms", float("nan")),
    }


# (label, key, second key, format, goal name, key checked against the goal)
ROWS = [
    ("bulk insert, rows/s (5000/batch)", "bulk_rows_s", None, "{:,.0f}", "bulk_rows_s", "bulk_rows_s"),
    ("single create, rows/s", "create_rows_s", None, "{:,.0f}", "create_rows_s", "create_rows_s"),
    ("single create p50 / p95, ms", "create_p50_ms", "create_p95_ms", "{:.1f}", None, None),
    ("single update, rows/s", "update_rows_s", None, "{:,.0f}", None, None),
    ("single update p50 / p95, ms", "update_p50_ms", "update_p95_ms", "{:.1f}", None, None),
    ("filtered page GET ?filter, no view index, p50 / p95 ms", "page_p50_ms", "page_p95_ms", "{:.1f}", "page_p95_ms", "page_p95_ms"),
    ("filtered page via saved view, p50 / p95 ms", "view_p50_ms", "view_p95_ms", "{:.1f}", "page_p95_ms", "view_p95_ms"),
    ("filtered page GET ?filter, view index present, p50 / p95 ms", "pagei_p50_ms", "pagei_p95_ms", "{:.1f}", "page_p95_ms", "pagei_p95_ms"),
    ("count with the filter, p50 / p95 ms", "count_p50_ms", "count_p95_ms", "{:.1f}", "count_p50_ms", "count_p50_ms"),
    ("group-by status with the filter, p50 / p95 ms", "group_p50_ms", "group_p95_ms", "{:.1f}", "group_p50_ms", "group_p50_ms"),
    ("page + count=true, p50 ms", "pagecount_p50_ms", None, "{:.1f}", None, None),
    ("floor: GET /api/v1/health (no auth), p50 ms", "health_p50_ms", None, "{:.1f}", None, None),
    ("floor: GET one record by id, p50 / p95 ms", "getone_p50_ms", "getone_p95_ms", "{:.1f}", None, None),
    ("server RSS at end (peak), MB", "rss_mb", "peak_rss_mb", "{:.0f}", "rss_mb", "rss_mb"),
]
REF_CELL = {"bulk_rows_s": "944", "create_rows_s": "76", "create_p50_ms": "12.8 / –", "update_rows_s": "60",
            "page_p50_ms": "– / 65", "view_p50_ms": "– / 65", "count_p50_ms": "25 / –", "group_p50_ms": "134 / –", "rss_mb": "819"}


def _cell(f: dict, key, key2, fmt, goal_name, check_key, rows, db) -> str:
    show = lambda v: "–" if isinstance(v, float) and math.isnan(v) else fmt.format(v)  # noqa: E731
    s = show(f[key]) + (" / " + show(f[key2]) if key2 else "")
    g = None
    if goal_name:
        g = GOALS_100K.get(goal_name) if rows <= 100_000 else (GOALS_1M_PG.get(goal_name) if db == "postgresql" else None)
    if g:
        op, target = g
        v = f[check_key]
        s += " ✓" if (v >= target if op == ">=" else v <= target) else " ✗"
    return s


def markdown(results: list[dict]) -> str:
    heads = [f"{r['db']} {r['rows']:,}" for r in results]
    out = ["| measure | " + " | ".join(heads) + " | NocoDB, SQLite 100k | goal 100k (1M PG) |",
           "|---|" + "---|" * len(results) + "---|---|"]
    goal_txt = {"bulk_rows_s": "≥ 20,000", "create_rows_s": "≥ 500", "page_p50_ms": "p95 ≤ 5 (≤ 20)",
                "view_p50_ms": "p95 ≤ 5 (≤ 20)", "pagei_p50_ms": "p95 ≤ 5 (≤ 20)", "count_p50_ms": "p50 ≤ 5",
                "group_p50_ms": "p50 ≤ 30 (≤ 300)", "rss_mb": "≤ 150"}
    flats = [_flat(r) for r in results]
    for label, k1, k2, fmt, goal_name, check_key in ROWS:
        cells = [_cell(f, k1, k2, fmt, goal_name, check_key, r["rows"], r["db"]) for f, r in zip(flats, results)]
        out.append(f"| {label} | " + " | ".join(cells) + f" | {REF_CELL.get(k1, '')} | {goal_txt.get(k1, '')} |")
    extra = ", ".join(f"{r['db']} {r['rows']:,}: {r['matching_rows']:,} rows match, view index built in {r['view_create_s']} s, "
                      f"bulk wall {r['bulk_wall_s']} s" for r in results)
    out.append("")
    out.append(f"Filter: status = 已付款 AND amount > 300, sorted by created desc, 50 rows. {extra}.")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, action="append", help="rows to load (repeatable; default 100000)")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], action="append", help="database (repeatable; default both)")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--reps", type=int, default=200, help="timed repetitions of each read (default 200)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--single", type=int, default=500, help="single creates and single updates (default 500 each)")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--pg-url", default=os.environ.get("ZHONGSHU_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432"))
    ap.add_argument("--pg-db", default="zs_bench")
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "zs_bench_data"))
    ap.add_argument("--keep", action="store_true", help="keep the instance folder (and the PostgreSQL database)")
    ap.add_argument("--report", nargs="+", metavar="JSON", help="print one table from earlier --json files and exit")
    args = ap.parse_args(argv)
    if args.report:
        print(markdown([r for f in args.report for r in json.loads(Path(f).read_text("utf-8"))["results"]]))
        return 0
    rows_list = args.rows or [100_000]
    dbs = args.db or ["sqlite", "postgresql"]
    results = []
    for rows in rows_list:
        for db in dbs:
            results.append(run_one(db, rows, args))
            if args.json:  # write as we go: long runs keep what they measured
                _write_json(args.json, results)
    print(markdown(results))
    return 0


def _write_json(path, results):
    meta = {"python": sys.version.split()[0], "machine": _platform.machine(), "cpus": os.cpu_count(),
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "reference_nocodb_sqlite_100k": REFERENCE}
    Path(path).write_text(json.dumps({"meta": meta, "results": results}, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Benchmark: the builder UI's grid in headless Chromium over a 100,000-row orders table.

Starts a real ``zhongshu serve`` on 127.0.0.1 with SQLite (the embedded default), creates an
orders table with an items sub-table through the API (batches of 5000) and one order with
5 sub-table lines, then drives Debian's Chromium with Playwright and measures:

  * first rows: from navigation (a full page load of ``/#/table/orders``) to the first grid
    rows painted with data
  * scroll to row 50,000: from setting the grid's scrollTop to that row painted with data
  * apply a filter: from clicking "apply" in the filter builder to the filtered rows painted
  * open a record with 5 sub-table rows: from the click to the 5th line's input rendered
  * the page's JS heap (CDP Runtime.getHeapUsage, after a forced GC) after all of the above

Each interaction is timed inside the page (performance.now(), polled every animation frame)
so the CDP round trip is not counted; first rows are timed from Python around page.goto.
Prints the medians. Goals: first rows <= 1 s, each interaction <= 200 ms, heap <= 100 MB.

    .venv/bin/python bench/bench_ui.py                 # 100,000 rows, 5 repetitions
    .venv/bin/python bench/bench_ui.py --rows 20000 --reps 3 --keep /tmp/zs_ui_bench

Not a test. Needs /usr/bin/chromium (apt-get install chromium) and the test extras.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server  # noqa: E402

CHROMIUM = os.environ.get("ZHONGSHU_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--enable-precise-memory-info"]
TENANT = "/api/v1/tenants/demo"
TABLE = {
    "api_name": "orders", "label": {"zh-CN": "订单", "en": "Orders"},
    "fields": [
        {"api_name": "customer_name", "type": "text", "label": "客户", "indexed": True},
        {"api_name": "channel", "type": "single_select", "label": "渠道",
         "options": {"choices": [{"label": x, "color": c} for x, c in [("天猫", "red"), ("抖音", "blue"), ("拼多多", "orange"), ("小程序", "green")]]}},
        {"api_name": "amount", "type": "currency", "label": "金额", "options": {"decimals": 2}},
        {"api_name": "status", "type": "single_select", "label": "状态",
         "options": {"choices": [{"label": x} for x in ["待付款", "已付款", "已发货", "已完成", "已取消"]]}},
        {"api_name": "created", "type": "datetime", "label": "下单时间"},
        {"api_name": "remark", "type": "text", "label": "备注"},
        {"api_name": "items", "type": "sub_table", "label": "商品明细", "options": {"fields": [
            {"api_name": "sku", "type": "text", "label": "SKU"},
            {"api_name": "qty", "type": "number", "label": "数量", "options": {"decimals": 0}},
            {"api_name": "unit_price", "type": "currency", "label": "单价"}]}},
    ],
}
NAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林罗高"


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load(srv: Server, rows: int) -> tuple[dict, int]:
    c = srv.client()
    cred = srv.credentials()
    c.login(cred["email"], cred["password"])
    token = c.call("POST", f"{TENANT}/tokens", {"name": "bench-ui"})["token"]
    c.close()
    api = srv.client(token=token)
    api.call("POST", f"{TENANT}/tables", TABLE)
    rnd = random.Random(7)
    first = api.call("POST", f"{TENANT}/tables/orders/records", {
        "customer_name": "样例客户", "channel": "抖音", "amount": 520, "status": "已付款", "created": "2026-11-20 10:00",
        "items": [{"sku": f"SKU-{i}", "qty": i + 1, "unit_price": 19.9 + i} for i in range(5)]})
    t0, done = time.perf_counter(), 1
    while done < rows:
        n = min(5000, rows - done)
        batch = [{"customer_name": rnd.choice(NAMES) + rnd.choice(NAMES), "channel": rnd.choice(["天猫", "天猫", "抖音", "拼多多", "小程序"]),
                  "amount": round(rnd.lognormvariate(5, 0.8), 2), "status": rnd.choice(["待付款", "已付款", "已发货", "已完成", "已完成", "已取消"]),
                  "created": f"2026-{rnd.randint(8, 11):02d}-{rnd.randint(1, 28):02d} {rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}",
                  "remark": None} for _ in range(n)]
        api.call("POST", f"{TENANT}/tables/orders/records?return=ids", {"records": batch}, expect=(201,))
        done += n
    log(f"loaded {rows:,} rows in {time.perf_counter() - t0:.1f}s")
    api.close()
    return cred, first["id"]


# In-page timers: run an action, then poll every frame until a condition holds.
# (Inlined, not eval'd in the page: the page's CSP forbids eval.)
def timed(page, action: str, until: str) -> float:
    return page.evaluate(f"""async () => {{
  const cond = () => {{ {until} }};
  const t0 = performance.now();
  {action}
  return await new Promise((resolve, reject) => {{
    const deadline = t0 + 20000;
    const tick = () => {{ try {{ if (cond()) return resolve(performance.now() - t0); }} catch (e) {{}}
      if (performance.now() > deadline) return reject(new Error('timed out')); requestAnimationFrame(tick); }};
    tick();
  }});
}}""")


def median(xs):
    return round(statistics.median(xs), 1)


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="zs_ui_bench_"))
    fresh = not (work / "zhongshu.db").exists()
    work.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{work / 'zhongshu.db'}"
    res: dict = {"rows": args.rows, "reps": args.reps}
    with Server(work, url) as srv:
        if fresh:
            cred, rec_id = load(srv, args.rows)
            (work / "bench_ui.json").write_text(json.dumps({"record": rec_id}))
        else:
            cred, rec_id = srv.credentials(), json.loads((work / "bench_ui.json").read_text())["record"]
        base = f"http://127.0.0.1:{srv.port}"
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page(viewport={"width": 1440, "height": 900})
            page.goto(base + "/")
            page.fill("#login-email", cred["email"])
            page.fill("#login-password", cred["password"])
            page.click("button[type=submit]")
            page.wait_for_selector(".mainnav")
            first_sel = "[data-row='0'] [data-field=customer_name]"

            firsts = []
            for i in range(args.reps + 1):  # the first load warms the HTTP cache; not counted
                page.goto("about:blank")
                t0 = time.perf_counter()
                page.goto(base + "/#/table/orders")
                page.wait_for_function(f"() => {{ const c = document.querySelector(\"{first_sel}\"); return c && c.textContent.trim().length > 0; }}", polling="raf")
                if i:
                    firsts.append((time.perf_counter() - t0) * 1000)
            res["first_rows_ms"] = median(firsts)
            log(f"first rows: {firsts}")
            page.wait_for_function("() => /\\d/.test(document.querySelector('[data-test=grid-count]').textContent)")  # counted

            scrolls = []
            for i in range(args.reps):
                target = 50000 + i * 7 if args.rows > 60000 else args.rows // 2 + i * 7
                page.evaluate("() => { document.querySelector('[data-test=grid]').scrollTop = 0; }")
                page.wait_for_timeout(300)
                ms = timed(page, *[
                    f"document.querySelector('[data-test=grid]').scrollTop = {target} * 34;",
                    f"const c = document.querySelector(\"[data-row='{target}'] [data-field=customer_name]\"); return !!c && c.textContent.trim().length > 0;"])
                scrolls.append(ms)
            res["scroll_to_50000_ms"] = median(scrolls)
            res["scroll_target_row"] = 50000 if args.rows > 60000 else args.rows // 2
            log(f"scroll: {[round(x, 1) for x in scrolls]}")

            filters = []
            for i in range(args.reps):
                value = ["抖音", "拼多多", "小程序"][i % 3]
                if not page.locator("[data-test=filter-builder]").count():
                    page.click("[data-test=filter-toggle]")
                page.select_option("[data-test=cond-field-0]", "channel")
                page.select_option("[data-test=cond-op-0]", "=")
                page.select_option("[data-test=cond-value-0]", value)
                ms = timed(page, *[
                    # the grid is rebuilt for a new filter: mark the old one to tell them apart
                    "document.querySelector('[data-test=grid]').dataset.stale = '1'; document.querySelector('[data-test=filter-apply]').click();",
                    f"const g = document.querySelector('[data-test=grid]'); const c = g && g.querySelector(\"[data-row='0'] [data-field=channel]\");"
                    f" return !!c && !g.dataset.stale && c.textContent.includes('{value}');"])
                filters.append(ms)
            res["apply_filter_ms"] = median(filters)
            log(f"filter: {[round(x, 1) for x in filters]}")
            page.click("[data-test=filter-clear]")
            page.wait_for_selector(f"[data-test=open-{rec_id}]")

            opens = []
            for i in range(args.reps):
                ms = timed(page, *[
                    f"document.querySelector('[data-test=open-{rec_id}]').click();",
                    "return !!document.querySelector('[data-test=line-items-4-sku]');"])
                opens.append(ms)
                page.keyboard.press("Escape")
                page.wait_for_selector(".record-form", state="detached")
            res["open_record_5_lines_ms"] = median(opens)
            log(f"open record: {[round(x, 1) for x in opens]}")

            cdp = page.context.new_cdp_session(page)
            cdp.send("HeapProfiler.collectGarbage")
            heap = cdp.send("Runtime.getHeapUsage")
            res["js_heap_used_mb"] = round(heap["usedSize"] / 1048576, 1)
            res["js_heap_total_mb"] = round(heap["totalSize"] / 1048576, 1)
            b.close()
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--keep", help="work directory to keep (and reuse on the next run: the data is loaded once)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    res = run(args)
    goals = {"first_rows_ms": 1000, "scroll_to_50000_ms": 200, "apply_filter_ms": 200, "open_record_5_lines_ms": 200, "js_heap_used_mb": 100}
    print(f"builder UI grid, {res['rows']:,} rows on SQLite, medians of {res['reps']}:")
    for k, goal in goals.items():
        v = res[k]
        print(f"  {k:<26} {v:>8}   goal <= {goal}  {'ok' if v <= goal else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

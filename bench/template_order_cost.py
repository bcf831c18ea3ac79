#!/usr/bin/env python
"""Statements and CPU one order costs through the order-management template's rules.

Installs the template into a fresh SQLite tenant with the master data of the template tests
(warehouses, products, stock, routing and gift rules, customers), creates a few orders
through the API to warm the caches, then counts the statements of one more order (most
frequent shapes first) and the CPU per order over ``--orders`` more. ``--history N`` creates
N orders first (the same warehouse and products), to see what grows with the data (a
rollup over all of a warehouse's orders did). Not a test.

    .venv/bin/python bench/template_order_cost.py --orders 30
    .venv/bin/python bench/template_order_cost.py --orders 30 --history 500
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import login  # noqa: E402
from tests.template.conftest import install, order, seed  # noqa: E402
from zhongshu.platform.app import create_app  # noqa: E402

ITEMS = (("STEAK", 1, 260), ("BABY-01", 2, 129))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=30)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--history", type=int, default=0, help="orders created before measuring")
    args = ap.parse_args()
    d = tempfile.mkdtemp()
    app = create_app({"DATABASE_URL": f"sqlite:///{d}/z.db", "DATA_DIR": d, "SECRET_KEY": "bench", "TESTING": True})
    zs = app.extensions["zhongshu"]
    zs.migrate()
    u = zs.create_user("owner@acme.test", "owner-password", name="Owner")
    zs.create_tenant("acme", "Acme", owner_email=u.email)
    api = login(app, "owner@acme.test", "owner-password", "acme")
    install(zs, "acme")
    seed(api)
    for _ in range(5 + args.history):
        order(api, items=ITEMS)
    seen: list[str] = []

    def listener(c, cur, st, p, ctx, many):
        seen.append(st)

    event.listen(zs.engine, "before_cursor_execute", listener)
    order(api, items=ITEMS)
    event.remove(zs.engine, "before_cursor_execute", listener)
    print(f"{len(seen)} statements for one order through the template's rules ({5 + args.history} orders before)")
    for shape, n in collections.Counter(re.sub(r"\s+", " ", s)[:70] for s in seen).most_common(args.top):
        print(f"{n:4d}  {shape}")
    t = time.process_time()
    for _ in range(args.orders):
        order(api, items=ITEMS)
    print(f"CPU per order: {(time.process_time() - t) * 1000 / args.orders:.1f} ms ({args.orders} orders, in-process, SQLite)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

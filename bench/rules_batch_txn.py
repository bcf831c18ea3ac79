#!/usr/bin/env python
"""What committing a batch of orders in one transaction would save (a measurement for the
intake worker, which today processes each inbox row in a transaction of its own).

Sets up ``bench_rules.py``'s tenant (ten rules), then creates the same number of orders
through the records service with 1, 10 and 50 orders per transaction (each order in its own
savepoint, as ``process_inbox`` does per event), alternating, and prints CPU per order (this
process) and wall time per order. Not a test.

    .venv/bin/python bench/rules_batch_txn.py --orders 200 --db sqlite
    ZHONGSHU_BENCH_POSTGRES=postgresql+psycopg://postgres@127.0.0.1:5432/zs_mine \\
      .venv/bin/python bench/rules_batch_txn.py --orders 200 --db postgresql
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_rules as br  # noqa: E402

from zhongshu.platform.storage.access import Actor  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    d = tempfile.mkdtemp()
    url = f"sqlite:///{d}/bench.db" if args.db == "sqlite" else br.PG
    zs, tenant = br.setup(url, d, br.DingTalkRobot())
    actor = Actor(None, "owner", is_system=True)
    br.run(zs, tenant, 30, 1, 10**6)  # warm-up
    offset = 0
    figures: dict[int, list] = {b: [] for b in args.batches}
    for _ in range(args.rounds):
        for batch in args.batches:
            rnd = random.Random(batch)
            cpu, wall = time.process_time(), time.perf_counter()
            for start in range(0, args.orders, batch):
                with zs.tenant_session(tenant.id, write=True) as s:
                    recs = zs.records(s, tenant, actor)
                    for i in range(start, min(start + batch, args.orders)):
                        with s.begin_nested():  # one order's writes, or none
                            recs.create(recs.schema("orders"), br.order(offset + i, rnd))
            offset += args.orders
            figures[batch].append(((time.process_time() - cpu) * 1000 / args.orders,
                                   (time.perf_counter() - wall) * 1000 / args.orders))
    print(f"| orders per transaction | CPU ms/order (this process) | wall ms/order | ({args.db}, {args.orders} orders x {args.rounds} rounds) |")
    print("|---|---|---|---|")
    for batch, runs in figures.items():
        print(f"| {batch} | {min(c for c, _ in runs):.2f} | {min(w for _, w in runs):.2f} | best of {len(runs)} |")
    zs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

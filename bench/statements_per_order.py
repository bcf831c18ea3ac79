#!/usr/bin/env python
"""Counts the SQL statements one order costs through ``bench_rules.py``'s ten rules.

Sets up the rules benchmark's tenant (tables, rules, DingTalk stub), creates a few orders to
warm the caches, then creates one more with a ``before_cursor_execute`` listener on the
engine and prints every statement and the count. Not a test.

    .venv/bin/python bench/statements_per_order.py --db sqlite
    .venv/bin/python bench/statements_per_order.py --db postgresql --quiet
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
from pathlib import Path

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_rules as br  # noqa: E402

from zhongshu.platform.storage.access import Actor  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--quiet", action="store_true", help="print the count only")
    args = ap.parse_args()
    d = tempfile.mkdtemp()
    url = f"sqlite:///{d}/bench.db" if args.db == "sqlite" else br.PG
    zs, tenant = br.setup(url, d, br.DingTalkRobot())
    actor = Actor(None, "owner", is_system=True)

    def one(i: int) -> None:
        with zs.tenant_session(tenant.id, write=True) as s:
            recs = zs.records(s, tenant, actor)
            recs.create(recs.schema("orders"), br.order(i, random.Random(i)))

    for i in range(5):
        one(10**6 + i)
    seen: list[str] = []
    event.listen(zs.engine, "before_cursor_execute", lambda c, cur, st, p, ctx, many: seen.append(st))
    one(5)
    if not args.quiet:
        for st in seen:
            print(re.sub(r"\s+", " ", st)[:200])
    print(f"{len(seen)} statements for one order ({args.db})")
    zs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

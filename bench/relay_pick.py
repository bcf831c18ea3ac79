#!/usr/bin/env python
"""Benchmark (not a test): the relay's pick with a deep outbox backlog on PostgreSQL.

Fills a fresh database with ``--backlog`` pending, due jobs (and a few running ones with an
expired lease), then times ``Relay.mark()`` (pick, mark, return the batch) ``--reps``
times with a batch of 200, putting the jobs back between reps. Prints the median ms per
pick and the statements' plans. For A/B: ``bench/run_tree.py <tree> bench/relay_pick.py``.

    .venv/bin/python bench/relay_pick.py --backlog 75000
"""
from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import create_engine, text, update

from zhongshu.platform.core import Platform
from zhongshu.runtime.distributed.relay import Relay
from zhongshu.runtime.models import OutboxJob

T = OutboxJob.__table__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backlog", type=int, default=75000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    ap.add_argument("--db", default="zs_bench_relay")
    args = ap.parse_args()
    admin = create_engine(f"{args.pg}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{args.db}"'))
    zs = Platform({"DATABASE_URL": f"{args.pg}/{args.db}", "DATA_DIR": "/tmp/zs_bench_relay", "SECRET_KEY": "bench"})
    zs.migrate()
    tenant = zs.create_tenant("relay", "Relay")
    with zs.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO outbox (tenant_id, kind, payload, idempotency_key, status, priority, attempts, max_attempts,"
            " run_at, created_at) SELECT :t, 'bench.relay', '{}', 'k' || g, 'pending', (g % 3) * 3, 0, 8,"
            " now() at time zone 'utc' - interval '10 minutes' + g * interval '1 ms', now() at time zone 'utc'"
            " FROM generate_series(1, :n) g"), {"t": tenant.id, "n": args.backlog})
        conn.execute(text("ANALYZE outbox"))
    relay = Relay(zs, publish=lambda jobs: None, batch=200, max_inflight=200)
    times = []
    for _ in range(args.reps):
        started = time.perf_counter()
        jobs = relay.mark()
        times.append((time.perf_counter() - started) * 1000)
        with zs.engine.begin() as conn:  # put them back: the backlog stays as deep
            conn.execute(update(T).where(T.c.id.in_([j for j, _ in jobs])).values(locked_by=None, locked_until=None))
    print(f"backlog {args.backlog}: Relay.mark() median {statistics.median(times):.2f} ms "
          f"(min {min(times):.2f}, max {max(times):.2f}) over {args.reps} picks of {len(jobs)} jobs")
    zs.close()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)'))


if __name__ == "__main__":
    main()

"""``bench_peak.py --resume-from JSON``: go on processing the backlog of a peak run that
stopped before it drained (``--stop-after``, a PostgreSQL restart, SIGTERM).

The orders the earlier run sent are in its database (``--pg-db``) as inbox rows with their
``inbox.process`` jobs; this starts the worker node, relay and scheduler again on it (same
``--workdir``, same queues) and waits for the drain as the full run does: processed
orders/s of this part, progress every 30 s, and the proof against the number of orders the
earlier run saw accepted (its JSON) — complete once drained, else the partial proof. No new
orders and no payments are sent (the web node is not started).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import bench_peak as bp
from bench._peak_stages import order_proof, partial_proof
from tests.scale import cluster as cl


def resume(args) -> int:
    prev = json.loads(Path(args.resume_from).read_text("utf-8"))
    accepted = prev["day"]["accepted"] + prev["burst"]["accepted"]
    t_run = time.perf_counter()
    url = cl.PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + args.pg_db
    engine = create_engine(url, pool_pre_ping=True)
    with engine.connect() as c:
        tenant_id = c.execute(text("select id from tenants where slug = 'acme'")).scalar()
    queue_prefix = args.pg_db.replace("_", "-") + "-"
    result: dict = {"resumed_from": {"json": args.resume_from, "started_utc": prev.get("started_utc"),
                                     "stopped_early": prev.get("stopped_early"), "day": prev["day"],
                                     "burst": prev["burst"]},
                    "args": vars(args), "accepted_orders": accepted, "load_before": os.getloadavg(),
                    "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "progress": []}
    c = cl.Cluster(Path(args.workdir), url, args.broker, queue_prefix=queue_prefix, extra_env={
        "ZHONGSHU_OVERLOAD_OUTBOX_THRESHOLD": "0", "ZHONGSHU_OVERLOAD_INBOX_THRESHOLD": "0",
        "ZHONGSHU_OUTBOX_NOTIFY": "false" if args.no_notify else "true"})
    try:
        before = bp.inbox_counts(engine)
        already = sum(v for k, v in before.items() if k != "received")
        result["inbox_before"] = before
        print("resuming:", json.dumps({"accepted_orders": accepted, "inbox": before}), flush=True)
        c.celery_worker("worker", concurrency=args.worker_concurrency, lease=bp.LEASE, imports=())
        c.relay(republish_after=bp.REPUBLISH_AFTER, poll=args.relay_poll)
        c.scheduler("scheduler")
        c.wait_log("worker", "ready")
        t0 = time.perf_counter()
        timeout = args.drain_timeout
        if args.stop_after is not None:
            timeout = max(0.0, min(timeout, args.stop_after - (t0 - t_run)))
        try:
            done_at = bp.wait_drained(engine, accepted, timeout, "processing (resumed)", since=t0,
                                      progress=result["progress"], already=already)
        except RuntimeError as e:
            result["stopped_early"] = str(e)[:300]
            done_at = None
        c.stop_all()  # the workers finish their jobs first, so the counts are at rest
        after = bp.inbox_counts(engine)
        done = sum(v for k, v in after.items() if k != "received")
        secs = (done_at or time.perf_counter()) - t0
        result["processing"] = {"drained": done_at is not None, "seconds": round(secs, 1),
                                "processed_in_this_part": done - already,
                                "processed_orders_per_s": round((done - already) / secs, 2) if secs else None,
                                "inbox_after": after}
        print("processing:", json.dumps(result["processing"]), flush=True)
        if done_at is not None:
            orders = order_proof(engine, tenant_id)
            ok = orders["orders_in_table"] == orders["distinct_global_ids"] == accepted \
                and orders["global_ids_with_more_than_one_order"] == 0
            result["proof"] = {"accepted_orders": accepted, **orders, "lost": accepted - orders["distinct_global_ids"],
                               "ok": ok}
        else:
            result["partial_proof"] = partial_proof(engine, tenant_id, accepted)
        print("proof:", json.dumps(result.get("proof") or result["partial_proof"]), flush=True)
    finally:
        c.stop_all()
        engine.dispose()
        result["load_after"] = os.getloadavg()
        result["ended_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        if args.json:
            Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), "utf-8")
        try:
            from zhongshu.runtime.distributed import QUEUES
            cl.purge_queues(args.broker, [queue_prefix + q for q in QUEUES])
        except Exception:  # noqa: BLE001
            pass
    return 0

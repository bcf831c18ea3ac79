"""Crash safety with real processes and SIGKILL, on PostgreSQL.

1. Webhook intake: `zhongshu serve` takes signed webhooks from a sender thread; it is
   killed with SIGKILL in the middle, restarted, the sender re-sends everything not
   acknowledged; the outbox is drained. Every acknowledged (2xx) webhook exists exactly
   once as an inbox row and as an order; nothing is duplicated.
2. Outbox delivery: `zhongshu worker` delivers http.request jobs to a local HTTP server
   that records Idempotency-Key headers; it is SIGKILLed mid-run and restarted. Every job's
   effect happens at least once, every job ends `done`, and the effect keyed by the
   idempotency key is applied once.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from zhongshu.connectors.webhook.connector import sign as webhook_sign
from zhongshu.runtime.models import InboxEvent, OutboxJob
from zhongshu.runtime.outbox import enqueue

from tests.conftest import login
from tests.connectors.test_service_intake import GENERIC_MAPPING, ORDERS_TABLE
from tests.reliability.conftest import Instance, free_port, post_json, write_figures

SECRET = "whsec-crash-test-secret-1"
N_WEBHOOKS = 80
N_JOBS = 40


def _setup_intake(inst: Instance) -> str:
    from zhongshu.platform.app import create_app

    zs = inst.platform
    zs.create_user("owner@acme.test", "owner-password")
    zs.create_tenant("acme", "Acme", owner_email="owner@acme.test")
    app = create_app(inst.config, platform=zs)
    owner = login(app, "owner@acme.test", "owner-password", "acme")
    owner.ok(owner.post("/tables", json=ORDERS_TABLE), 201)
    inst_ = owner.ok(owner.post("/connectors", json={"connector": "webhook", "api_name": "miniapp",
                                                     "config": {"channel": "小程序", "mappings": [GENERIC_MAPPING]},
                                                     "credentials": {"secret": SECRET}}), 201)["install"]
    return inst_["webhook_url"].split("localhost", 1)[-1].split("://", 1)[-1]


def _order(i: int) -> bytes:
    return json.dumps({"id": f"MP-CRASH-{i:04d}", "total": f"{i}.50", "status": "已付款",
                       "items": [{"sku": f"S{i}", "qty": 1, "price": f"{i}.50"}]}, ensure_ascii=False).encode()


def _send(port: int, path: str, i: int) -> int:
    body = _order(i)
    try:
        return post_json(f"http://127.0.0.1:{port}{path}", body, {"X-Zhongshu-Signature": webhook_sign(SECRET, body)}, timeout=5)
    except OSError:
        return 0  # connection refused / reset: not acknowledged, the sender will retry


def test_sigkill_of_the_web_process_during_webhook_intake_loses_and_duplicates_nothing(pg_instance):
    from zhongshu.runtime.worker import drain
    import zhongshu.connectors.service  # noqa: F401  (registers the inbox handlers)

    path = _setup_intake(pg_instance)
    if not path.startswith("/"):
        path = "/" + path.split("/", 1)[1]
    port = free_port()
    server = pg_instance.serve(port)
    acked, status_of = set(), {}
    killed = threading.Event()

    def sender():
        for i in range(N_WEBHOOKS):
            code = _send(port, path, i)
            status_of[i] = code
            if 200 <= code < 300:
                acked.add(i)
            if killed.is_set() and code == 0:
                return

    t = threading.Thread(target=sender)
    t.start()
    while len(acked) < N_WEBHOOKS // 3:
        time.sleep(0.01)
    Instance.kill9(server)         # in the middle of intake: requests are in flight
    killed.set()
    t.join(30)
    acked_before_kill = set(acked)
    assert 0 < len(acked_before_kill) < N_WEBHOOKS

    server = pg_instance.serve(port)
    retried = 0
    for i in range(N_WEBHOOKS):
        if i not in acked:          # the sender re-sends what was not acknowledged
            retried += 1
            code = _send(port, path, i)
            assert 200 <= code < 300, (i, code)
            acked.add(i)
    # a sender may also re-send one it did get an answer for (lost ack): still one order
    for i in sorted(acked_before_kill)[:3]:
        assert 200 <= _send(port, path, i) < 300
    Instance.kill9(server)

    zs = pg_instance.platform
    drain(zs, timeout=120)
    with zs.tenant_session(None) as s:
        rows = s.scalars(select(InboxEvent)).all()
    kept = Counter(r.external_id for r in rows if r.status != "duplicate")
    from zhongshu.platform.models import Tenant
    with zs.tenant_session(None) as s:
        tenant = s.scalar(select(Tenant).where(Tenant.slug == "acme"))
    from zhongshu.platform.storage.access import Actor
    from zhongshu.platform.storage.query import Query
    with zs.tenant_session(tenant.id) as s:
        recs = zs.records(s, tenant, Actor(None, "owner", is_system=True))
        orders = recs.list(recs.schema("orders"), Query(limit=1000))["records"]
    per_order = Counter(o["external_id"] for o in orders)
    expected = {f"MP-CRASH-{i:04d}" for i in acked}
    assert set(per_order) == expected and all(n == 1 for n in per_order.values()), per_order.most_common(3)
    assert set(kept) == expected and all(n == 1 for n in kept.values()), kept.most_common(3)
    assert all(r.status in ("processed", "duplicate") for r in rows), Counter(r.status for r in rows)
    write_figures(web_sigkill={"webhooks": N_WEBHOOKS, "acknowledged_before_kill": len(acked_before_kill),
                               "resent_after_restart": retried, "faults_injected": 1, "orders": len(orders),
                               "inbox_rows": len(rows), "duplicates_marked": sum(r.status == "duplicate" for r in rows),
                               "records_lost": len(expected - set(per_order)), "orders_duplicated": sum(n - 1 for n in per_order.values())})


class _Effects(BaseHTTPRequestHandler):
    seen: Counter = Counter()
    applied: set = set()
    lock = threading.Lock()

    def do_POST(self):
        key = self.headers.get("Idempotency-Key")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.05)  # slow enough for the kill to land mid-delivery
        with self.lock:
            type(self).seen[key] += 1
            type(self).applied.add(key)   # the effect, keyed: applied once however often it arrives
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *a):
        pass


def test_sigkill_of_a_worker_during_outbox_delivery_delivers_every_effect_at_least_once(pg_instance):
    _Effects.seen, _Effects.applied = Counter(), set()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Effects)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/effect"
    zs = pg_instance.platform
    zs.create_tenant("acme", "Acme")
    tid = zs.tenant_by_slug("acme").id
    keys = [f"crash-effect-{i}" for i in range(N_JOBS)]
    with zs.engine.begin() as conn:
        for k in keys:
            enqueue(conn, tenant_id=tid, kind="http.request", key=k, priority=0,
                    payload={"method": "POST", "url": url, "body": json.dumps({"k": k}), "timeout_seconds": 5})
    try:
        worker = pg_instance.start("worker", "--batch", "1", "--lease", "5", "--poll", "0.05", log="worker.log")
        deadline = time.monotonic() + 60
        while sum(_Effects.seen.values()) < N_JOBS // 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        Instance.kill9(worker)                       # mid-delivery
        delivered_before_kill = sum(_Effects.seen.values())
        with zs.engine.connect() as c:
            running = c.execute(select(OutboxJob.__table__.c.id).where(OutboxJob.__table__.c.status == "running")).all()
        worker = pg_instance.start("worker", "--batch", "5", "--lease", "5", "--poll", "0.05", log="worker.log")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with zs.engine.connect() as c:
                left = c.execute(select(OutboxJob.__table__.c.status)).scalars().all()
            if all(s in ("done", "dead") for s in left):
                break
            time.sleep(0.2)
        Instance.kill9(worker)
    finally:
        httpd.shutdown()
    assert Counter(left) == Counter({"done": N_JOBS}), Counter(left)
    assert set(_Effects.seen) == set(keys)                       # every effect at least once
    assert _Effects.applied == set(keys)                          # applied once per key
    redelivered = sum(n - 1 for n in _Effects.seen.values())
    assert redelivered <= len(running) + 1                        # only the jobs in flight at the kill
    write_figures(worker_sigkill={"jobs": N_JOBS, "delivered_before_kill": delivered_before_kill,
                                  "in_flight_at_kill": len(running), "redelivered": redelivered,
                                  "faults_injected": 1, "effects_lost": len(set(keys) - set(_Effects.seen))})

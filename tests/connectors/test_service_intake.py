"""Inbound intake end to end: signed webhooks → durable inbox → inbox.process → orders.

Real HTTP requests through the Flask app on SQLite and PostgreSQL; the outbox is drained by
the real worker (``zhongshu.runtime.worker.drain``)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from zhongshu.connectors.douyin.connector import push_sign
from zhongshu.connectors.service import intake
from zhongshu.connectors.webhook.connector import sign as webhook_sign
from zhongshu.runtime.models import InboxEvent, OutboxJob
from zhongshu.runtime.outbox import HANDLERS, JobContext

from tests.conftest import login

SECRET = "whsec-super-secret-value-123"
SHOP_SECRET = "shopify-app-client-secret"
DY_KEY, DY_SECRET = "7100000000000000001", "douyin-app-secret"

ORDERS_TABLE = {
    "api_name": "orders",
    "label": {"zh-CN": "订单", "en": "Orders"},
    "fields": [
        {"api_name": "channel", "type": "text", "label": "渠道"},
        {"api_name": "external_id", "type": "text", "label": "平台订单号"},
        {"api_name": "global_id", "type": "text", "label": "全局ID", "unique": True},
        {"api_name": "amount", "type": "currency", "label": "金额"},
        {"api_name": "status", "type": "single_select", "label": "状态", "default": "待付款",
         "options": {"choices": [{"label": s} for s in ["待付款", "已付款", "已发货", "已取消"]]}},
        {"api_name": "items", "type": "sub_table", "label": "商品明细", "options": {"fields": [
            {"api_name": "sku", "type": "text", "required": True},
            {"api_name": "qty", "type": "number"},
            {"api_name": "price", "type": "currency"},
        ]}},
    ],
}

GENERIC_MAPPING = {
    "table": "orders", "key": ["global_id"],
    "fields": {"amount": {"path": "$.total", "transform": "to_number"},
               "status": {"path": "$.status", "default": "待付款"}},
    "subtables": {"items": {"path": "$.items[*]", "fields": {
        "sku": "@.sku", "qty": {"path": "@.qty", "transform": "to_integer"},
        "price": {"path": "@.price", "transform": "to_number"}}}},
}
SHOPIFY_MAPPING = {
    "table": "orders", "key": ["global_id"],
    "fields": {"amount": {"path": "$.total_price", "transform": "to_number"},
               "status": {"path": "$.financial_status", "transform": {
                   "op": "lookup", "map": {"paid": "已付款", "pending": "待付款", "voided": "已取消"}, "default": "待付款"}}},
    "subtables": {"items": {"path": "$.line_items[*]", "fields": {
        "sku": "@.sku", "qty": {"path": "@.quantity", "transform": "to_integer"},
        "price": {"path": "@.price", "transform": "to_number"}}}},
}
# 抖店 trade messages carry order status and amounts (fen); the shop's mapping adds the
# item list its message subscription includes.
DOUYIN_MAPPING = {
    "table": "orders", "key": ["global_id"],
    "fields": {"amount": {"path": "$.pay_amount", "transform": {"op": "to_number", "scale": 0.01}},
               "status": {"path": "$.order_status", "transform": {
                   "op": "lookup", "map": {"1": "待付款", "2": "已付款", "3": "已发货", "4": "已取消"}}}},
    "subtables": {"items": {"path": "$.sku_order_list[*]", "fields": {
        "sku": "@.code", "qty": {"path": "@.item_num", "transform": "to_integer"},
        "price": {"path": "@.origin_amount", "transform": {"op": "to_number", "scale": 0.01}}}}},
}


# -- helpers -----------------------------------------------------------------------------------

def drain(platform) -> int:
    try:
        from zhongshu.runtime.worker import drain as worker_drain
    except ImportError:  # pragma: no cover - the worker ships in runtime/worker.py
        return _run_handlers(platform)
    return worker_drain(platform)


def _run_handlers(platform) -> int:
    n = 0
    while True:
        with platform.tenant_session(None, write=True) as s:
            job = s.scalar(select(OutboxJob).where(OutboxJob.status == "pending")
                           .order_by(OutboxJob.priority, OutboxJob.id).limit(1))
            if job is None:
                return n
            job.status = "running"
            jid, kind, tid, key, payload = job.id, job.kind, job.tenant_id, job.idempotency_key, job.payload
        HANDLERS[kind](JobContext(platform, jid, tid, 1, key), payload)
        with platform.tenant_session(None, write=True) as s:
            s.get(OutboxJob, jid).status = "done"
        n += 1


@pytest.fixture
def orders(owner):
    return owner.ok(owner.post("/tables", json=ORDERS_TABLE), 201)["table"]


def install(owner, connector, api_name, config, credentials):
    inst = owner.ok(owner.post("/connectors", json={"connector": connector, "api_name": api_name,
                                                    "config": config, "credentials": credentials}), 201)["install"]
    return inst["webhook_url"].replace("http://localhost", "")


@pytest.fixture
def generic(owner, orders):
    return install(owner, "webhook", "miniapp", {"channel": "小程序", "mappings": [GENERIC_MAPPING]},
                   {"secret": SECRET})


def post_generic(client, url, data, *, secret=SECRET, request_id=None, raw=None):
    body = raw if raw is not None else json.dumps(data, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Zhongshu-Signature": webhook_sign(secret, body)}
    if request_id:
        headers["X-Request-Id"] = request_id
    return client.post(url, data=body, headers=headers)


def shopify_order(oid=820982911946154508, **kw):
    order = {"id": oid, "name": "#1001", "total_price": "259.00", "financial_status": "paid",
             "created_at": "2024-06-18T10:05:00+08:00", "updated_at": "2024-06-18T10:05:02+08:00",
             "line_items": [{"sku": "KID-TEE-110", "title": "儿童T恤", "quantity": 2, "price": "79.50"},
                            {"sku": "KID-HAT-01", "title": "遮阳帽", "quantity": 1, "price": "100.00"}]}
    order.update(kw)
    return order


def post_shopify(client, url, order, *, topic="orders/create", event_id=None, secret=SHOP_SECRET,
                 shop="kidswear.myshopify.com"):
    body = json.dumps(order).encode()
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return client.post(url, data=body, headers={
        "Content-Type": "application/json", "X-Shopify-Hmac-Sha256": digest, "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": shop, "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2024-06-18T02:05:03Z"})


def douyin_message(tag, p_id, data, msg_id=None):
    return {"tag": str(tag), "msg_id": msg_id or uuid.uuid4().hex, "data": json.dumps({"p_id": p_id, **data})}


def post_douyin(client, url, messages, *, secret=DY_SECRET):
    body = json.dumps(messages, ensure_ascii=False).encode()
    return client.post(url, data=body, headers={"Content-Type": "application/json", "app-id": DY_KEY,
                                                "event-sign": push_sign(DY_KEY, body, secret)})


def inbox(platform, **where):
    with platform.tenant_session(None) as s:
        q = select(InboxEvent).order_by(InboxEvent.id)
        for k, v in where.items():
            q = q.where(getattr(InboxEvent, k) == v)
        return s.scalars(q).all()


def jobs(platform, kind="inbox.process"):
    with platform.tenant_session(None) as s:
        return s.scalars(select(OutboxJob).where(OutboxJob.kind == kind).order_by(OutboxJob.id)).all()


def order_list(owner):
    return owner.ok(owner.get("/tables/orders/records?expand=true&sort=id"))["records"]


GENERIC_ORDER = {"id": "MP-20240618-0001", "total": "128.50", "status": "已付款",
                 "items": [{"sku": "A-1", "qty": 1, "price": "100.00"}, {"sku": "B-2", "qty": 3, "price": "9.50"}]}


# -- generic webhook ---------------------------------------------------------------------------

def test_signed_webhook_is_stored_then_processed_into_an_order_with_items(owner, platform, generic):
    r = post_generic(owner.client, generic, GENERIC_ORDER, request_id="req-1")
    assert r.status_code == 200 and r.get_json() == {"ok": True}
    [row] = inbox(platform)
    assert row.status == "received" and row.external_id == "MP-20240618-0001"
    assert row.payload["payload"] == GENERIC_ORDER and json.loads(row.body) == GENERIC_ORDER
    assert "X-Zhongshu-Signature" in row.headers
    [job] = jobs(platform)
    assert job.priority == 0 and job.payload == {"inbox_id": row.id} and job.status == "pending"

    assert drain(platform) == 1
    [order] = order_list(owner)
    assert order["channel"] == "小程序" and order["external_id"] == "MP-20240618-0001"
    assert order["global_id"] == hashlib.sha256("小程序:MP-20240618-0001".encode()).hexdigest()
    assert float(order["amount"]) == 128.5 and order["status"] == "已付款"
    assert [(i["sku"], i["qty"]) for i in order["items"]] == [("A-1", 1), ("B-2", 3)]
    [row] = inbox(platform)
    assert row.status == "processed" and row.record_id == order["id"] and row.processed_at is not None
    assert jobs(platform)[0].status == "done"


def test_wrong_or_missing_signature_is_401_and_stores_nothing(owner, platform, generic):
    assert post_generic(owner.client, generic, GENERIC_ORDER, secret="not-the-secret-at-all").status_code == 401
    r = owner.client.post(generic, data=json.dumps(GENERIC_ORDER), headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    # a signed body that was tampered with afterwards
    body = json.dumps(GENERIC_ORDER).encode()
    r = owner.client.post(generic, data=body.replace(b"128.50", b"1.00"),
                          headers={"X-Zhongshu-Signature": webhook_sign(SECRET, body)})
    assert r.status_code == 401
    assert inbox(platform) == [] and jobs(platform) == []


def test_resent_webhook_is_acknowledged_once_and_a_second_delivery_is_marked_duplicate(owner, platform, generic):
    for _ in range(2):  # the very same delivery twice: one inbox row
        assert post_generic(owner.client, generic, GENERIC_ORDER, request_id="req-1").status_code == 200
    assert len(inbox(platform)) == 1 and len(jobs(platform)) == 1
    # the channel pushes the same order again as a new delivery
    assert post_generic(owner.client, generic, GENERIC_ORDER, request_id="req-2").status_code == 200
    assert drain(platform) == 2
    assert len(order_list(owner)) == 1
    first, second = inbox(platform)
    assert first.status == "processed"
    assert second.status == "duplicate" and second.error == "重复推送" and second.record_id == first.record_id
    dupes = owner.ok(owner.get("/connectors/miniapp/inbox?status=duplicate"))["entries"]
    assert [(e["id"], e["error"]) for e in dupes] == [(second.id, "重复推送")]


def test_status_events_update_the_existing_order(owner, platform, orders):
    url = install(owner, "webhook", "mp", {"channel": "小程序", "event_type_path": "$.event",
                                           "mappings": [GENERIC_MAPPING]}, {"secret": SECRET})
    post_generic(owner.client, url, {**GENERIC_ORDER, "event": "order.created", "status": "待付款"}, request_id="1")
    post_generic(owner.client, url, {"id": GENERIC_ORDER["id"], "event": "order.status_changed", "status": "已发货"},
                 request_id="2")
    drain(platform)
    [order] = order_list(owner)
    assert order["status"] == "已发货" and float(order["amount"]) == 128.5 and len(order["items"]) == 2
    assert [r.status for r in inbox(platform)] == ["processed", "processed"]
    assert inbox(platform)[1].record_id == order["id"]


def test_malformed_payloads_land_in_the_error_list_and_never_500(owner, platform, generic):
    garbage = b"\x00\x01 this is <xml>not json</xml>"
    r = post_generic(owner.client, generic, None, raw=garbage)
    assert r.status_code == 400
    r = post_generic(owner.client, generic, None, raw=b'[1, 2, "x"]')  # JSON, but not events
    assert r.status_code == 400
    r = post_generic(owner.client, generic, {"no_id_here": True})
    assert r.status_code == 400
    assert post_generic(owner.client, generic, None, raw=garbage).status_code == 400  # same garbage again: kept once
    rows = inbox(platform)
    assert len(rows) == 3 and all(r.status == "error" for r in rows) and jobs(platform) == []
    errors = owner.ok(owner.get("/connectors/miniapp/inbox?status=error"))["entries"]
    assert len(errors) == 3
    by_body = {e["body"]: e for e in errors}
    g = by_body[garbage.decode("utf-8", errors="replace")]
    assert "not valid JSON" in g["error"] and g["body_bytes"] == len(garbage)
    assert "X-Zhongshu-Signature" in g["headers"]
    assert any("no external id" in e["error"] for e in errors)
    assert owner.get("/connectors/miniapp/inbox?status=bogus").status_code == 400
    # the tenant-wide list shows them too
    assert len(owner.ok(owner.get("/inbox?status=error"))["entries"]) == 3


def test_mapping_errors_are_reviewable_and_retried_after_a_fix(owner, platform, orders):
    bad = {**GENERIC_MAPPING, "fields": {**GENERIC_MAPPING["fields"], "weight": "$.weight"}}  # no such field
    url = install(owner, "webhook", "mp", {"channel": "小程序", "mappings": [bad]}, {"secret": SECRET})
    post_generic(owner.client, url, GENERIC_ORDER, request_id="1")
    drain(platform)
    [row] = inbox(platform)
    assert row.status == "error" and "weight" in row.error
    assert order_list(owner) == []
    assert jobs(platform)[0].status == "done"  # not retried forever
    [entry] = owner.ok(owner.get("/connectors/mp/inbox?status=error"))["entries"]
    assert entry["id"] == row.id and "unknown field 'weight'" in entry["error"]
    # only errors can be retried
    assert owner.post(f"/inbox/{row.id + 1000}/retry").status_code == 404
    owner.ok(owner.patch("/connectors/mp", json={"config": {"mappings": [GENERIC_MAPPING]}}))
    entry = owner.ok(owner.post(f"/inbox/{row.id}/retry"))["entry"]
    assert entry["status"] == "received"
    assert owner.post(f"/inbox/{row.id}/retry").status_code == 409
    drain(platform)
    assert inbox(platform)[0].status == "processed"
    assert len(order_list(owner)) == 1


def test_a_garbage_entry_can_be_retried_after_the_parser_config_is_fixed(owner, platform, orders):
    url = install(owner, "webhook", "mp", {"channel": "小程序", "mappings": [GENERIC_MAPPING]}, {"secret": SECRET})
    wrapped = {"data": {"orders": [GENERIC_ORDER]}}
    assert post_generic(owner.client, url, wrapped).status_code == 400  # no id at $.id
    [row] = inbox(platform)
    owner.ok(owner.patch("/connectors/mp", json={"config": {"events_path": "$.data.orders"}}))
    owner.ok(owner.post(f"/inbox/{row.id}/retry"))
    drain(platform)
    raw, event = inbox(platform)
    assert raw.status == "processed" and "1 event" in raw.error
    assert event.status == "processed" and event.external_id == GENERIC_ORDER["id"]
    assert len(order_list(owner)) == 1


def test_unknown_and_disabled_installs_are_404(owner, platform, generic):
    assert post_generic(owner.client, "/api/v1/hooks/nope", GENERIC_ORDER).status_code == 404
    owner.ok(owner.patch("/connectors/miniapp", json={"enabled": False}))
    r = post_generic(owner.client, generic, GENERIC_ORDER)
    assert r.status_code == 404
    assert inbox(platform) == []
    owner.ok(owner.patch("/connectors/miniapp", json={"enabled": True}))
    assert post_generic(owner.client, generic, GENERIC_ORDER).status_code == 200


def test_webhooks_need_no_login_and_ignore_cookies_of_other_clients(app, owner, platform, generic):
    anonymous = app.test_client()
    assert post_generic(anonymous, generic, GENERIC_ORDER).status_code == 200
    assert len(inbox(platform)) == 1


def test_oversized_body_is_413(owner, platform, generic):
    platform.config["WEBHOOK_MAX_BYTES"] = 2048
    big = {**GENERIC_ORDER, "remarks": "x" * 5000}
    assert post_generic(owner.client, generic, big).status_code == 413
    assert post_generic(owner.client, generic, GENERIC_ORDER).status_code == 200
    assert len(inbox(platform)) == 1


def test_database_down_gives_503_and_the_resent_event_is_then_accepted(owner, platform, generic, tmp_path):
    good_read, good_write = platform.Session, platform.WriteSession
    from zhongshu.platform.db import make_engine
    dead = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none") if platform.dialect == "postgresql" \
        else make_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")
    platform.Session = platform.WriteSession = sessionmaker(bind=dead)
    try:
        r = post_generic(owner.client, generic, GENERIC_ORDER, request_id="r1")
        assert r.status_code == 503 and r.headers["Retry-After"]
    finally:
        platform.Session, platform.WriteSession = good_read, good_write
        dead.dispose()
    # the database is up again but the transaction fails after the inbox row was written
    # (here: recording the install's last event time): still 503, nothing half-stored
    real = intake.touch_last_event

    def broken(*a, **kw):
        from sqlalchemy.exc import OperationalError
        raise OperationalError("UPDATE connector_installs", {}, Exception("database is locked"))
    intake.touch_last_event = broken
    try:
        assert post_generic(owner.client, generic, GENERIC_ORDER, request_id="r1").status_code == 503
    finally:
        intake.touch_last_event = real
    assert inbox(platform) == [] and jobs(platform) == []
    assert post_generic(owner.client, generic, GENERIC_ORDER, request_id="r1").status_code == 200
    drain(platform)
    assert len(order_list(owner)) == 1


def test_two_concurrent_deliveries_of_one_order_make_one_order(owner, platform, generic, monkeypatch):
    """Both deliveries looked for the order before either created it: the unique global id
    makes the second insert fail, and it is treated as a duplicate."""
    post_generic(owner.client, generic, GENERIC_ORDER, request_id="a")
    post_generic(owner.client, generic, GENERIC_ORDER, request_id="b")
    real_find = intake._find
    calls = {"n": 0}

    def racy_find(recs, schema, key_values):
        calls["n"] += 1
        return None if calls["n"] <= 2 else real_find(recs, schema, key_values)  # both lookups miss
    monkeypatch.setattr(intake, "_find", racy_find)
    drain(platform)
    assert len(order_list(owner)) == 1
    statuses = sorted((r.status, r.error) for r in inbox(platform))
    assert statuses == [("duplicate", "重复推送"), ("processed", None)]


# -- Shopify and Douyin for the same shop ------------------------------------------------------

def test_end_to_end_shopify_and_douyin_orders_with_items_and_no_duplicates(owner, platform, orders):
    shop_url = install(owner, "shopify", "shopify_kidswear",
                       {"shop_domain": "kidswear.myshopify.com", "mappings": [SHOPIFY_MAPPING]},
                       {"api_secret": SHOP_SECRET, "access_token": "shpat_x"})
    dy_url = install(owner, "douyin", "douyin_kidswear", {"shop_id": "88990", "mappings": [DOUYIN_MAPPING]},
                     {"app_key": DY_KEY, "app_secret": DY_SECRET})
    c = owner.client

    r = post_shopify(c, shop_url, shopify_order(), event_id="evt-1")
    assert r.status_code == 200
    r = post_douyin(c, dy_url, [douyin_message(100, "6912345678901234567", {
        "order_status": 1, "pay_amount": 15800, "create_time": 1718676300, "shop_id": 88990,
        "sku_order_list": [{"code": "KID-DRESS-120", "item_num": 1, "origin_amount": 15800}]})])
    assert r.status_code == 200 and r.get_json() == {"code": 0, "msg": "success"}  # 抖店's own acknowledgement
    # a wrong 抖店 signature is refused like any other
    assert post_douyin(c, dy_url, [douyin_message(100, "1", {})], secret="wrong").status_code == 401
    # a wrong Shopify HMAC, and a webhook of another shop
    assert post_shopify(c, shop_url, shopify_order(), secret="nope").status_code == 401
    assert post_shopify(c, shop_url, shopify_order(), shop="evil.myshopify.com").status_code == 401
    drain(platform)

    orders_ = {o["channel"]: o for o in order_list(owner)}
    assert set(orders_) == {"Shopify", "抖音"}
    sh = orders_["Shopify"]
    assert sh["external_id"] == "820982911946154508" and sh["status"] == "已付款" and float(sh["amount"]) == 259
    assert [(i["sku"], i["qty"], float(i["price"])) for i in sh["items"]] == [("KID-TEE-110", 2, 79.5),
                                                                             ("KID-HAT-01", 1, 100.0)]
    dy = orders_["抖音"]
    assert dy["external_id"] == "6912345678901234567" and dy["status"] == "待付款" and float(dy["amount"]) == 158
    assert [(i["sku"], i["qty"]) for i in dy["items"]] == [("KID-DRESS-120", 1)]

    # Shopify retries the same delivery (same event id): acknowledged, not stored again
    n_before = len(inbox(platform))
    assert post_shopify(c, shop_url, shopify_order(), event_id="evt-1").status_code == 200
    assert len(inbox(platform)) == n_before
    # ... and pushes the same order again as a new delivery: 重复推送, dropped
    assert post_shopify(c, shop_url, shopify_order(), event_id="evt-2").status_code == 200
    # 抖店 re-pushes the creation message, then the payment message for the same order
    post_douyin(c, dy_url, [douyin_message(100, "6912345678901234567", {"order_status": 1, "pay_amount": 15800}),
                            douyin_message(101, "6912345678901234567", {"order_status": 2, "pay_amount": 15800,
                                                                        "pay_time": 1718676400})])
    drain(platform)
    after = order_list(owner)
    assert len(after) == 2
    dy = next(o for o in after if o["channel"] == "抖音")
    assert dy["status"] == "已付款" and len(dy["items"]) == 1  # updated in place, items kept
    dupes = inbox(platform, status="duplicate")
    assert len(dupes) == 2 and {d.error for d in dupes} == {"重复推送"}
    assert {d.event_type for d in dupes} == {"order.created"}
    assert inbox(platform, status="error") == []


def test_inbox_and_installs_are_isolated_between_tenants(owner, app, platform, generic):
    post_generic(owner.client, generic, {**GENERIC_ORDER, "total": "oops"}, request_id="x")  # mapping error later
    drain(platform)
    [row] = inbox(platform)
    assert row.status == "error"
    u = platform.create_user("owner@beta.test", "beta-password")
    platform.create_tenant("beta", "Beta", owner_email=u.email)
    beta = login(app, "owner@beta.test", "beta-password", "beta")
    assert beta.ok(beta.get("/inbox"))["entries"] == []
    assert beta.get("/connectors/miniapp/inbox").status_code == 404
    assert beta.post(f"/inbox/{row.id}/retry").status_code == 404
    assert owner.ok(owner.get("/inbox"))["entries"][0]["id"] == row.id
    # beta's own install with the same name gets its own token and its own inbox
    beta.ok(beta.post("/tables", json=ORDERS_TABLE), 201)
    beta_url = install(beta, "webhook", "miniapp", {"channel": "小程序", "mappings": [GENERIC_MAPPING]},
                       {"secret": "beta-secret-0000"})
    assert beta_url != generic
    # acme's secret does not open beta's hook
    assert post_generic(owner.client, beta_url, GENERIC_ORDER).status_code == 401
    assert post_generic(beta.client, beta_url, GENERIC_ORDER, secret="beta-secret-0000").status_code == 200
    drain(platform)
    assert len(order_list(beta)) == 1 and order_list(owner) == []
    assert len(beta.ok(beta.get("/inbox"))["entries"]) == 1


def test_another_unique_value_taken_is_an_error_not_a_duplicate(owner, platform):
    table = {**ORDERS_TABLE, "fields": ORDERS_TABLE["fields"] + [{"api_name": "ref", "type": "text", "unique": True}]}
    owner.ok(owner.post("/tables", json=table), 201)
    mapping = {**GENERIC_MAPPING, "fields": {**GENERIC_MAPPING["fields"], "ref": "$.ref"}}
    url = install(owner, "webhook", "mp", {"channel": "小程序", "mappings": [mapping]}, {"secret": SECRET})
    post_generic(owner.client, url, {**GENERIC_ORDER, "id": "A", "ref": "R-1"}, request_id="1")
    post_generic(owner.client, url, {**GENERIC_ORDER, "id": "B", "ref": "R-1"}, request_id="2")
    drain(platform)
    first, second = inbox(platform)
    assert first.status == "processed"
    assert second.status == "error" and "unique value is already taken" in second.error
    assert len(order_list(owner)) == 1


def test_two_threads_processing_the_same_order_at_once_make_one_order(owner, platform, generic):
    import threading
    post_generic(owner.client, generic, GENERIC_ORDER, request_id="a")
    post_generic(owner.client, generic, GENERIC_ORDER, request_id="b")
    tenant_id = platform.tenant_by_slug("acme").id
    ids = [r.id for r in inbox(platform)]
    barrier, results, errors = threading.Barrier(2), [], []

    def work(inbox_id):
        barrier.wait()
        try:
            results.append(intake.process_inbox(platform, tenant_id, inbox_id))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(r["status"] for r in results) == ["duplicate", "processed"]
    assert len(order_list(owner)) == 1


def test_an_accepted_webhook_sets_the_install_s_last_event_time(owner, platform, generic):
    from datetime import datetime, timedelta, timezone

    assert owner.ok(owner.get("/connectors/miniapp"))["install"]["last_event_at"] is None
    assert post_generic(owner.client, generic, GENERIC_ORDER, secret="wrong-secret").status_code == 401
    assert owner.ok(owner.get("/connectors/miniapp"))["install"]["last_event_at"] is None  # not accepted
    assert post_generic(owner.client, generic, GENERIC_ORDER).status_code == 200
    at = owner.ok(owner.get("/connectors/miniapp"))["install"]["last_event_at"]
    seen = datetime.fromisoformat(at.replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - seen) < timedelta(minutes=5)

"""The spec's automations as rules, through the API."""
import threading

import pytest
from sqlalchemy import select

from zhongshu.runtime.models import OutboxJob, RuleRun

from .conftest import rule


def test_paid_moves_status_from_pending_to_paid(owner, orders, clock):
    rule(owner, {"api_name": "paid_to_status", "table": "orders", "label": "已付款",
                 "trigger": {"type": "record_updated", "fields": ["paid"]},
                 "condition": "paid > 0 and status == '待付款'",
                 "actions": [{"type": "update_record", "values": {"status": "'已付款'"}}]})
    o = owner.ok(owner.post("/tables/orders/records", json={"amount": 520}), 201)
    assert o["status"] == "待付款"
    o = owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"paid": 520}))
    assert o["status"] == "已付款"
    runs = owner.ok(owner.get("/rules/paid_to_status/runs"))["runs"]
    assert runs[0]["status"] == "ok" and runs[0]["actions"][0]["changed"] == {"status": "已付款"}
    assert owner.ok(owner.get(f"/tables/orders/records/{o['id']}/runs"))["runs"][0]["rule_id"] == runs[0]["rule_id"]
    # switched off, it does nothing
    owner.ok(owner.patch("/rules/paid_to_status", json={"enabled": False}))
    o2 = owner.ok(owner.post("/tables/orders/records", json={"amount": 1}), 201)
    assert owner.ok(owner.patch(f"/tables/orders/records/{o2['id']}", json={"paid": 1}))["status"] == "待付款"


def test_tracking_number_ships_the_order_and_queues_a_group_message(owner, orders, platform, clock):
    rule(owner, {"api_name": "shipped", "table": "orders", "trigger": {"type": "condition_true"},
                 "condition": "not ISBLANK(tracking_no)",
                 "actions": [
                     {"type": "update_record", "values": {"status": "'已发货'"}},
                     {"type": "notify", "connector": "dingtalk_ops", "action": "send_markdown", "input": {
                         "title": "发货通知",
                         "text": "订单 {{ record.order_no }} 已发货,客户 {{ record.customer_name }},预计 {{ (record.created | string)[:10] }} 后 3 天内送达"}}]})
    o = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "张三", "created": "2026-11-21 10:00"}), 201)
    o = owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"tracking_no": "SF123"}))
    assert o["status"] == "已发货"
    owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"remark": None} if False else {"weight": 1}))  # still true: no second message
    with platform.tenant_session(None) as s:
        jobs = s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()
    assert len(jobs) == 1
    text = jobs[0].payload["input"]["text"]
    assert o["order_no"] in text and "张三" in text and "2026-11-21" in text
    assert jobs[0].payload["install"] == "dingtalk_ops"


def test_a_seven_day_return_after_seven_days_is_refused_with_the_reason(owner, orders, clock):
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "signed_at", "type": "datetime"}), 201)
    owner.ok(owner.post("/tables", json={"api_name": "returns", "fields": [
        {"api_name": "order", "type": "link", "options": {"target": "orders"}},
        {"api_name": "type", "type": "single_select", "options": {"choices": [{"label": "退货"}, {"label": "换货"}, {"label": "仅退款"}]}},
        {"api_name": "reason", "type": "single_select", "options": {"choices": [{"label": "七天无理由"}, {"label": "质量问题"}]}},
        {"api_name": "status", "type": "single_select", "options": {"choices": [{"label": "待处理"}, {"label": "已拒绝"}]}, "default": "待处理"},
        {"api_name": "note", "type": "text"}]}), 201)
    rule(owner, {"api_name": "seven_days", "table": "returns", "trigger": {"type": "record_created"},
                 "condition": "type == '退货' and reason == '七天无理由' and HOURS_BETWEEN(order.signed_at, NOW()) > 7 * 24",
                 "actions": [{"type": "update_record", "values": {"status": "'已拒绝'", "note": "'超过签收后7天,不支持七天无理由退货'"}}]})
    signed = owner.ok(owner.post("/tables/orders/records", json={"signed_at": "2026-11-10 10:00"}), 201)
    fresh = owner.ok(owner.post("/tables/orders/records", json={"signed_at": "2026-11-20 10:00"}), 201)
    late = owner.ok(owner.post("/tables/returns/records", json={"order": signed["id"], "type": "退货", "reason": "七天无理由"}), 201)
    ok = owner.ok(owner.post("/tables/returns/records", json={"order": fresh["id"], "type": "退货", "reason": "七天无理由"}), 201)
    quality = owner.ok(owner.post("/tables/returns/records", json={"order": signed["id"], "type": "退货", "reason": "质量问题"}), 201)
    assert (late["status"], late["note"]) == ("已拒绝", "超过签收后7天,不支持七天无理由退货")
    assert ok["status"] == "待处理" and quality["status"] == "待处理"


@pytest.fixture
def gifts(owner, orders):
    owner.ok(owner.post("/tables/orders_items/fields", json={"api_name": "is_gift", "type": "boolean"}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "gift_note", "type": "text"}), 201)
    owner.ok(owner.post("/tables", json={"api_name": "gift_rules", "fields": [
        {"api_name": "threshold", "type": "currency"}, {"api_name": "gift_sku", "type": "text"}, {"api_name": "gift_name", "type": "text"},
        {"api_name": "valid_from", "type": "date"}, {"api_name": "valid_to", "type": "date"}]}), 201)
    owner.ok(owner.post("/tables/gift_rules/records", json={"records": [
        {"threshold": 299, "gift_sku": "BAG", "gift_name": "保温袋", "valid_from": "2026-11-01", "valid_to": "2026-12-31"},
        {"threshold": 599, "gift_sku": "TASTE", "gift_name": "试吃装", "valid_from": "2026-11-01", "valid_to": "2026-12-31"},
        {"threshold": 99, "gift_sku": "OLD", "gift_name": "过期赠品", "valid_from": "2025-01-01", "valid_to": "2025-12-31"}]}), 201)
    valid = [{"field": "valid_from", "op": "<=", "value": {"$expr": "TODAY()"}},
             {"field": "valid_to", "op": ">=", "value": {"$expr": "TODAY()"}}]
    rule(owner, {"api_name": "gift_tiers", "table": "orders", "trigger": {"type": "record_updated", "fields": ["paid"]},
                 "condition": "paid > 0",
                 "actions": [
                     {"type": "for_each", "table": "gift_rules", "as": "tier",
                      "filter": {"and": [{"field": "threshold", "op": "<=", "value": {"$expr": "paid"}}, *valid]},
                      "actions": [{"type": "create_record", "table": "orders_items", "parent": "id",
                                   "values": {"sku": "tier.gift_sku", "qty": 1, "unit_price": 0, "is_gift": True}}]},
                     {"type": "pick_row", "table": "gift_rules", "sorts": [{"field": "threshold"}],
                      "filter": {"and": [{"field": "threshold", "op": ">", "value": {"$expr": "paid"}}, *valid]},
                      "set": {"gift_note": "CONCAT('未达', TEXT(row.threshold, '0'), '门槛, ', row.gift_name, '暂不发放')"},
                      "else": [{"type": "update_record", "values": {"gift_note": "''"}}]}]})
    return owner


def test_gift_tiers_by_paid_amount_and_date_range(gifts, clock):
    o = gifts.ok(gifts.post("/tables/orders/records", json={"amount": 520, "items": [{"sku": "MEAT", "qty": 1}]}), 201)
    o = gifts.ok(gifts.patch(f"/tables/orders/records/{o['id']}", json={"paid": 520}))
    assert sorted(i["sku"] for i in o["items"] if i["is_gift"]) == ["BAG"]
    assert o["gift_note"] == "未达599门槛, 试吃装暂不发放"
    o2 = gifts.ok(gifts.post("/tables/orders/records", json={"amount": 600}), 201)
    o2 = gifts.ok(gifts.patch(f"/tables/orders/records/{o2['id']}", json={"paid": 600}))
    assert sorted(i["sku"] for i in o2["items"] if i["is_gift"]) == ["BAG", "TASTE"]
    assert o2["gift_note"] in ("", None)


def test_sla_timers_escalate_at_30_and_60_minutes(owner, orders, platform, clock):
    from zhongshu.runtime.rules import fire_timers

    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "status_changed_at", "type": "datetime"}), 201)
    rule(owner, {"api_name": "stamp_status", "table": "orders", "trigger": {"type": "record_updated", "fields": ["status"]},
                 "actions": [{"type": "update_record", "values": {"status_changed_at": "NOW()"}}]})
    stuck = "status == '已付款' and ISBLANK(tracking_no)"
    rule(owner, {"api_name": "sla_30", "table": "orders", "condition": stuck,
                 "trigger": {"type": "time_after", "field": "status_changed_at", "offset": "30 minutes"},
                 "actions": [{"type": "notify", "connector": "wecom_wh", "action": "send_text", "input": {"content": "订单 {{ record.order_no }} 超过30分钟未处理"}}]})
    rule(owner, {"api_name": "sla_60", "table": "orders", "condition": stuck,
                 "trigger": {"type": "time_after", "field": "status_changed_at", "offset": "60 minutes"},
                 "actions": [{"type": "update_record", "values": {"status": "'异常中'"}}]})
    a = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "A"}), 201)
    b = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "B"}), 201)
    owner.ok(owner.patch(f"/tables/orders/records/{a['id']}", json={"status": "已付款"}))
    owner.ok(owner.patch(f"/tables/orders/records/{b['id']}", json={"status": "已付款"}))
    clock.advance(minutes=20)
    owner.ok(owner.patch(f"/tables/orders/records/{b['id']}", json={"tracking_no": "SF1"}))  # b is handled in time
    assert fire_timers(platform) == 0
    clock.advance(minutes=11)
    fire_timers(platform)
    with platform.tenant_session(None) as s:
        msgs = s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()
    assert [m.payload["input"]["content"] for m in msgs] == [f"订单 {a['order_no']} 超过30分钟未处理"]
    fire_timers(platform)  # fires once, not again
    clock.advance(minutes=30)
    fire_timers(platform)
    assert owner.ok(owner.get(f"/tables/orders/records/{a['id']}"))["status"] == "异常中"
    assert owner.ok(owner.get(f"/tables/orders/records/{b['id']}"))["status"] == "已付款"


@pytest.fixture
def stock(owner, orders):
    owner.ok(owner.post("/tables", json={"api_name": "inventory", "fields": [
        {"api_name": "sku", "type": "text", "unique": True}, {"api_name": "on_hand", "type": "number"},
        {"api_name": "reserved", "type": "number", "default": 0},
        {"api_name": "available", "type": "formula", "options": {"expression": "on_hand - reserved"}}]}), 201)
    owner.ok(owner.post("/tables/inventory/records", json={"sku": "LAST", "on_hand": 5}), 201)
    rule(owner, {"api_name": "reserve", "table": "orders", "trigger": {"type": "record_created"},
                 "actions": [{"type": "for_each", "items": "items", "actions": [{
                     "type": "adjust_number", "table": "inventory", "field": "reserved", "delta": "item.qty",
                     "filter": {"field": "sku", "op": "=", "value": {"$expr": "item.sku"}},
                     "guard": {"field": "available", "op": ">=", "value": {"$expr": "item.qty"}},
                     "reject": "库存不足: {{ item.sku }}"}]}]})
    return owner


def test_reservation_and_refusal_when_stock_runs_out(stock):
    stock.ok(stock.post("/tables/orders/records", json={"items": [{"sku": "LAST", "qty": 3}]}), 201)
    inv = stock.ok(stock.get("/tables/inventory/records"))["records"][0]
    assert (inv["reserved"], inv["available"]) == (3, 2)
    r = stock.post("/tables/orders/records", json={"items": [{"sku": "LAST", "qty": 3}]})
    assert r.status_code == 400 and r.get_json()["error"]["message"] == "库存不足: LAST"
    assert stock.ok(stock.get("/tables/orders/records?count=true"))["total"] == 1  # the refused order is not kept
    assert stock.ok(stock.get("/tables/inventory/records"))["records"][0]["reserved"] == 3


def test_concurrent_orders_for_the_last_units_never_oversell(stock, app):
    results = []

    def buy():
        c = app.test_client()
        c.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
        csrf = c.get("/api/v1/auth/me").get_json()["csrf_token"]
        r = c.post("/api/v1/tenants/acme/tables/orders/records", json={"items": [{"sku": "LAST", "qty": 1}]},
                   headers={"X-CSRF-Token": csrf})
        results.append(r.status_code)

    threads = [threading.Thread(target=buy) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(201) == 5 and results.count(400) == 7, results
    inv = stock.ok(stock.get("/tables/inventory/records"))["records"][0]
    assert (inv["reserved"], inv["available"]) == (5, 0)


def test_rules_are_checked_when_saved(owner, orders):
    r = owner.post("/rules", json={"api_name": "bad", "table": "orders", "trigger": {"type": "record_updated", "fields": ["nope"]},
                                   "condition": "amount >", "actions": [{"type": "update_record", "values": {"stat": "1"}},
                                                                        {"type": "notify", "connector": "x", "action": "y", "input": {"t": "{{ record.order_no "}}]})
    assert r.status_code == 400
    pointers = {e["pointer"] for e in r.get_json()["error"]["errors"]}
    assert {"/trigger/fields/0", "/condition", "/actions/0/values/stat", "/actions/1/input/t"} <= pointers


def test_dry_run_shows_what_would_happen_and_changes_nothing(owner, orders):
    rule(owner, {"api_name": "vip", "table": "orders", "trigger": {"type": "record_updated"}, "condition": "amount > 500",
                 "actions": [{"type": "update_record", "values": {"vip": True}},
                             {"type": "notify", "connector": "ding", "action": "send_text", "input": {"content": "大单 {{ record.amount }}"}}]})
    o = owner.ok(owner.post("/tables/orders/records", json={"amount": 900}), 201)
    res = owner.ok(owner.post("/rules/vip/dry-run", json={"record_id": o["id"]}))
    assert res["status"] == "dry_run" and res["condition"] is True
    assert res["actions"][0]["changed"] == {"vip": True}
    assert res["actions"][1]["would_send"]["input"]["content"] == "大单 900.0"
    assert owner.ok(owner.get(f"/tables/orders/records/{o['id']}"))["vip"] is False
    assert owner.ok(owner.get("/rules/vip/runs"))["runs"] == []


def test_cascades_are_bounded_and_cycles_reported(owner, orders, platform):
    rule(owner, {"api_name": "ping", "table": "orders", "trigger": {"type": "record_updated", "fields": ["weight"]},
                 "actions": [{"type": "update_record", "values": {"amount": "COALESCE(amount, 0) + 1"}}]})
    rule(owner, {"api_name": "pong", "table": "orders", "trigger": {"type": "record_updated", "fields": ["amount"]},
                 "actions": [{"type": "update_record", "values": {"weight": "COALESCE(weight, 0) + 1"}}]})
    o = owner.ok(owner.post("/tables/orders/records", json={}), 201)
    o = owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"weight": 1}))
    assert o["amount"] == 1 and o["weight"] == 2  # one round, then the cycle is cut
    with platform.tenant_session(None) as s:
        errors = [r.error for r in s.scalars(select(RuleRun).where(RuleRun.status == "error"))]
    assert any("cycle" in e for e in errors)


def test_locked_address_refuses_edits_until_an_approval_unlocks_it(owner, orders, make_member):
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "waybill_printed", "type": "boolean"}), 201)
    owner.ok(owner.post("/tables", json={"api_name": "address_changes", "fields": [
        {"api_name": "order", "type": "link", "options": {"target": "orders"}}, {"api_name": "new_address", "type": "text"}]}), 201)
    rule(owner, {"api_name": "lock_on_print", "table": "orders", "trigger": {"type": "condition_true"}, "condition": "waybill_printed",
                 "actions": [{"type": "lock_fields", "fields": ["address"], "message": "运单已打印,地址已锁定,请提交地址变更申请"}]})
    rule(owner, {"api_name": "approve_change", "table": "address_changes", "trigger": {"type": "record_created"},
                 "actions": [{"type": "start_approval", "title": "修改订单地址为 {{ record.new_address }}", "approvers": {"roles": ["admin"]},
                              "on_approve": [
                                  {"type": "unlock_fields", "table": "orders", "record": "order.id", "fields": ["address"]},
                                  {"type": "update_records", "table": "orders", "filter": {"field": "id", "op": "=", "value": {"$expr": "order.id"}},
                                   "values": {"address": "new_address"}},
                                  {"type": "lock_fields", "table": "orders", "record": "order.id", "fields": ["address"], "message": "地址已锁定"}]}]})
    o = owner.ok(owner.post("/tables/orders/records", json={"address": "杭州市西湖区 1 号"}), 201)
    owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"waybill_printed": True}))
    r = owner.patch(f"/tables/orders/records/{o['id']}", json={"address": "上海市"})
    assert r.status_code == 400 and "地址已锁定" in r.get_json()["error"]["message"]
    assert r.get_json()["error"]["errors"][0]["pointer"] == "/address"
    owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"weight": 2}))  # other fields still editable
    owner.ok(owner.post("/tables/address_changes/records", json={"order": o["id"], "new_address": "上海市浦东新区 2 号"}), 201)
    member = make_member("member")
    pending = member.ok(member.get("/approvals?status=pending"))["approvals"]
    assert member.post(f"/approvals/{pending[0]['id']}/decide", json={"decision": "approve"}).status_code == 403
    admin = make_member("admin")
    assert [a["title"] for a in admin.ok(admin.get("/approvals?mine=true&status=pending"))["approvals"]] == ["修改订单地址为 上海市浦东新区 2 号"]
    admin.ok(admin.post(f"/approvals/{pending[0]['id']}/decide", json={"decision": "approve", "comment": "客户来电确认"}))
    assert owner.ok(owner.get(f"/tables/orders/records/{o['id']}"))["address"]["detail"] == "上海市浦东新区 2 号"
    assert owner.patch(f"/tables/orders/records/{o['id']}", json={"address": "北京"}).status_code == 400  # locked again


def test_routing_picks_the_nearest_store_with_capacity_and_falls_back(owner, orders):
    owner.ok(owner.post("/tables", json={"api_name": "stores", "fields": [
        {"api_name": "name", "type": "text"}, {"api_name": "lat", "type": "number"}, {"api_name": "lng", "type": "number"},
        {"api_name": "enabled", "type": "boolean", "default": True}, {"api_name": "capacity", "type": "number"},
        {"api_name": "temporary", "type": "boolean"}]}), 201)
    owner.ok(owner.post("/tables/stores/records", json={"records": [
        {"name": "西湖店", "lat": 30.259, "lng": 120.130, "capacity": 10},
        {"name": "滨江店", "lat": 30.208, "lng": 120.211, "capacity": 10},
        {"name": "满了", "lat": 30.2741, "lng": 120.1552, "capacity": 0},
        {"name": "临时仓", "lat": 0, "lng": 0, "capacity": 5000, "temporary": True}]}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "store", "type": "text"}), 201)
    rule(owner, {"api_name": "route", "table": "orders", "trigger": {"type": "record_created"}, "actions": [{
        "type": "pick_row", "table": "stores", "bind": "s",
        "filter": {"and": [{"field": "enabled", "op": "=", "value": True}, {"field": "temporary", "op": "!=", "value": True},
                           {"field": "capacity", "op": ">", "value": 0}]},
        "where": "DISTANCE_KM(s.lat, s.lng, address.lat, address.lng) <= 3",
        "order_by": "DISTANCE_KM(s.lat, s.lng, address.lat, address.lng)",
        "set": {"store": "s.name"},
        "else": [{"type": "pick_row", "table": "stores", "filter": {"field": "temporary", "op": "=", "value": True},
                  "set": {"store": "row.name"}}]}]})
    near = owner.ok(owner.post("/tables/orders/records", json={"address": {"city": "杭州", "lat": 30.2741, "lng": 120.1551}}), 201)
    far = owner.ok(owner.post("/tables/orders/records", json={"address": {"city": "北京", "lat": 39.9, "lng": 116.4}}), 201)
    assert near["store"] == "西湖店"  # 满了 is closer but has no capacity; 滨江店 is farther
    assert far["store"] == "临时仓"


def test_count_records_holds_a_burst_of_similar_orders(owner, orders, clock):
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "hold", "type": "boolean"}), 201)
    rule(owner, {"api_name": "burst", "table": "orders", "trigger": {"type": "record_created"}, "actions": [{
        "type": "count_records", "table": "orders", "as": "same",
        "filter": {"and": [{"field": "phone", "op": "=", "value": {"$expr": "phone"}},
                           {"field": "created_at", "op": "within_last", "value": "10 minutes"}]},
        "then": [{"type": "branch", "if": "same.count >= 3", "then": [{"type": "update_record", "values": {"hold": True}}]}]}]})
    holds = [owner.ok(owner.post("/tables/orders/records", json={"phone": "13800000000"}), 201)["hold"] for _ in range(4)]
    assert holds == [False, False, True, True]
    assert owner.ok(owner.post("/tables/orders/records", json={"phone": "13911111111"}), 201)["hold"] is False

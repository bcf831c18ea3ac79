import pytest
"""The spec's scenarios, end to end through the API, on the installed template."""
import json
import threading

from zhongshu.runtime.rules import fire_timers

from .conftest import BEIJING, HANGZHOU, get, install, inventory, jobs, order, patch, seed


def test_install_report_names_everything_and_leaves_unconfigured_notifications_off(platform, owner, clock):
    r = install(platform, "acme", connectors=None)
    c = r["created"]
    assert len(c["tables"]) >= 12 and {"orders", "customers", "products", "warehouses", "inventory", "gift_rules", "returns",
                                        "address_change_requests", "logistics_events", "stock_counts"} <= set(c["tables"])
    assert "track" in c["pages"] and len(c["dashboards"]) == 6 and len(c["views"]) >= 10
    off = {d["rule"] for d in r["disabled_rules"]}
    assert "notify_shipped" in off and "shipped_on_tracking" not in off and "reserve_stock" not in off
    rules = {x["api_name"]: x for x in owner.ok(owner.get("/rules"))["rules"]}
    assert rules["notify_shipped"]["enabled"] is False and rules["paid_to_status"]["enabled"] is True


def test_paid_amount_moves_the_order_to_paid_and_rules_switch_off(shop):
    o = order(shop)
    assert o["status"] == "待付款" and o["order_no"].startswith("SO20261121")
    o = patch(shop, o["id"], amount_paid=260)
    assert o["status"] == "已付款" and o["paid"] is True and o["pay_time"]
    shop.ok(shop.patch("/rules/paid_to_status", json={"enabled": False}))
    o2 = patch(shop, order(shop)["id"], amount_paid=260)
    assert o2["status"] == "待付款"


def test_global_id_is_the_hash_of_channel_and_external_id_and_unique(shop):
    import hashlib

    o = order(shop, channel="拼多多", external_id="PDD-1")
    assert o["global_id"] == hashlib.sha256("拼多多:PDD-1".encode()).hexdigest()
    r = shop.post("/tables/orders/records", json={"channel": "拼多多", "external_id": "PDD-1", "items": [{"sku": "STEAK", "qty": 1}]})
    assert r.status_code in (400, 409)
    assert order(shop, channel="天猫", external_id="PDD-1")["global_id"] != o["global_id"]


def test_gift_tiers_by_paid_amount_and_date_and_the_douyin_sku_promo(shop):
    o = patch(shop, order(shop, items=(("STEAK", 2, 260),))["id"], amount_paid=520)
    gifts = sorted(i["sku"] for i in o["items"] if i["is_gift"])
    assert gifts == ["BAG"] and o["gift_note"] == "未达599门槛, 试吃装暂不发放" and o["promo_version"] == "2026.11-v1"
    o = patch(shop, order(shop, items=(("STEAK", 3, 200),))["id"], amount_paid=600)
    assert sorted(i["sku"] for i in o["items"] if i["is_gift"]) == ["BAG", "TASTE"] and not o["gift_note"]
    dy = order(shop, channel="抖音", items=(("STEAK", 1, 260),))
    assert [i["sku"] for i in dy["items"] if i["is_gift"]] == ["FUDAI"]
    tm = order(shop, channel="天猫", items=(("STEAK", 1, 260),))
    assert [i["sku"] for i in tm["items"] if i["is_gift"]] == []
    # paying again does not add the gifts twice
    o = patch(shop, o["id"], amount_paid=610)
    assert sorted(i["sku"] for i in o["items"] if i["is_gift"]) == ["BAG", "TASTE"]


def test_tracking_number_ships_and_queues_a_dingtalk_message(shop, platform):
    o = order(shop, customer=shop.ids["cu"]["张三"])
    patch(shop, o["id"], amount_paid=260)
    o = patch(shop, o["id"], tracking_no="SF1001", carrier="顺丰")
    assert o["status"] == "已发货" and o["shipped_at"] and o["estimated_delivery"].startswith("2026-11-24")
    msgs = jobs(platform, "dingtalk_ops")
    assert len(msgs) == 1 and msgs[0]["action"] == "send_message"
    text = msgs[0]["input"]["text"]
    assert o["order_no"] in text and "张三" in text and "2026-11-24" in text
    patch(shop, o["id"], remarks="再次保存")
    assert len(jobs(platform, "dingtalk_ops")) == 1


def test_printed_waybill_locks_the_address_until_an_approved_change(shop, platform, make_member):
    o = order(shop)
    patch(shop, o["id"], amount_paid=260)
    o = patch(shop, o["id"], waybill_printed=True)
    assert o["address_locked"] is True and o["stage"] == "已打单"
    r = shop.patch(f"/tables/orders/records/{o['id']}", json={"address": BEIJING})
    assert r.status_code == 400 and "地址已锁定" in r.get_json()["error"]["message"]
    patch(shop, o["id"], remarks="其他字段可以改")
    req = shop.ok(shop.post("/tables/address_change_requests/records",
                            json={"order": o["id"], "new_address": {"province": "浙江", "city": "杭州市", "detail": "滨江区 9 号"}, "reason": "客户来电"}), 201)
    admin = make_member("admin")
    pending = admin.ok(admin.get("/approvals?status=pending"))["approvals"]
    assert len(pending) == 1 and o["order_no"] in pending[0]["title"]
    admin.ok(admin.post(f"/approvals/{pending[0]['id']}/decide", json={"decision": "approve", "comment": "已核实"}))
    o = get(shop, o["id"])
    assert o["address"]["detail"] == "滨江区 9 号"
    assert get(shop, req["id"], "address_change_requests")["decision"] == "已批准"
    assert shop.patch(f"/tables/orders/records/{o['id']}", json={"address": BEIJING}).status_code == 400  # locked again
    sms = jobs(platform, "sms_customers")
    assert len(sms) == 1 and sms[0]["action"] == "send_sms" and sms[0]["input"]["phone"] == "13812345678"


def test_seven_day_returns_after_seven_days_are_refused_with_the_reason(shop, clock):
    o = order(shop)
    patch(shop, o["id"], amount_paid=260)
    patch(shop, o["id"], tracking_no="SF1")
    shop.ok(shop.post("/tables/logistics_events/records", json={"order": o["id"], "kind": "签收", "time": "2026-11-10 10:00", "status_text": "已签收"}), 201)
    assert get(shop, o["id"])["status"] == "已完成"
    late = shop.ok(shop.post("/tables/returns/records", json={"order": o["id"], "type": "退货", "reason": "七天无理由"}), 201)
    assert late["status"] == "已拒绝" and "超过签收后7天" in late["reject_reason"] and "2026-11-10" in late["reject_reason"]
    quality = shop.ok(shop.post("/tables/returns/records", json={"order": o["id"], "type": "退货", "reason": "质量问题"}), 201)
    assert quality["status"] == "待审核" and quality["priority"] == "高"
    o2 = order(shop)
    patch(shop, o2["id"], amount_paid=260)
    patch(shop, o2["id"], tracking_no="SF2")
    shop.ok(shop.post("/tables/logistics_events/records", json={"order": o2["id"], "kind": "签收", "time": "2026-11-19 10:00"}), 201)
    fresh = shop.ok(shop.post("/tables/returns/records", json={"order": o2["id"], "type": "退货", "reason": "七天无理由", "qty": 1}), 201)
    assert fresh["status"] == "待审核"
    patch(shop, fresh["id"], "returns", status="已退款", refund_amount=260)
    assert get(shop, o2["id"])["status"] == "已退货"


def test_routing_by_region_category_channel_zone_and_capacity_fallback(shop):
    wh = {v: k for k, v in shop.ids["wh"].items()}

    def routed(**kw):
        o = order(shop, **kw)
        return wh.get((o["warehouse"] or {}).get("id") if isinstance(o["warehouse"], dict) else o["warehouse"]), o

    assert routed(address=HANGZHOU)[0] == "HD"
    assert routed(address={"province": "广东", "city": "深圳市"})[0] == "HN"
    assert routed(address=BEIJING)[0] == "YW"
    assert routed(channel="抖音", items=(("BABY-01", 1, 129),))[0] == "HZ"
    assert routed(channel="天猫", items=(("BABY-01", 1, 129),))[0] == "HD"
    assert routed(channel="Shopee", ship_zone="东南亚", address={"country": "Singapore", "detail": "1 Orchard Rd"} if False else {"detail": "Singapore 1 Orchard Rd"},
                  items=(("BABY-01", 2, 129),))[0] == "SHOPEE"
    assert routed(channel="Amazon", ship_zone="欧美", address={"detail": "London"}, items=(("SOFA", 1, 2999),))[0] == "OVS"
    # 义乌仓 full, then disabled: the temporary warehouse takes over
    shop.ok(shop.patch(f"/tables/warehouses/records/{shop.ids['wh']['YW']}", json={"max_daily_orders": 1}))
    code, o = routed(address=BEIJING)
    assert code == "TMP" and "临时仓" in o["route_note"]
    shop.ok(shop.patch(f"/tables/warehouses/records/{shop.ids['wh']['YW']}", json={"max_daily_orders": 10000, "enabled": False}))
    assert routed(address=BEIJING)[0] == "TMP"
    yw = get(shop, shop.ids["wh"]["TMP"], "warehouses")
    assert yw["orders_today"] == 2


def test_nearest_store_within_3_km_with_enough_stock(shop):
    wh = {v: k for k, v in shop.ids["wh"].items()}
    near = {**HANGZHOU, "lat": 30.2741, "lng": 120.1551}
    o = order(shop, address=near, items=(("BABY-01", 2, 129),))
    assert wh[o["warehouse"]["id"] if isinstance(o["warehouse"], dict) else o["warehouse"]] == "XH" and "西湖门店" in o["route_note"]
    too_many = order(shop, address=near, items=(("BABY-01", 9, 129),))  # the store has 5
    assert wh[too_many["warehouse"]["id"] if isinstance(too_many["warehouse"], dict) else too_many["warehouse"]] == "HD"
    far = order(shop, address={**BEIJING, "lat": 39.9, "lng": 116.4}, items=(("BABY-01", 1, 129),))
    assert wh[far["warehouse"]["id"] if isinstance(far["warehouse"], dict) else far["warehouse"]] == "YW"


def test_vip_rush_orders_come_first_in_the_warehouse_to_do(shop, clock):
    a = order(shop)
    vip = order(shop, customer=shop.ids["cu"]["王VIP"])
    mini = order(shop, channel="小程序")
    for o in (a, vip, mini):
        patch(shop, o["id"], amount_paid=260)
    assert get(shop, vip["id"])["vip_rush"] is True and get(shop, mini["id"])["vip_rush"] is True  # 10:00 < 16:00 cut-off
    assert get(shop, a["id"])["vip_rush"] is False
    clock.advance(hours=7)  # 17:00: after the cut-off
    late = order(shop, channel="小程序")
    assert patch(shop, late["id"], amount_paid=260)["vip_rush"] is False
    rows = shop.ok(shop.get("/tables/orders/views/warehouse_todo/records"))["records"]
    assert [r["id"] for r in rows] == [vip["id"], mini["id"], a["id"], late["id"]]
    assert {"order_no", "address", "items", "total_weight", "remarks"} <= set(rows[0])


def test_risk_holds_large_remote_orders_and_bursts_and_warns_on_remote_addresses(shop, make_member):
    xj = {"province": "新疆", "city": "乌鲁木齐市", "detail": "1 号"}
    big = order(shop, address=xj, items=(("STEAK", 3, 200),))
    assert big["risk_hold"] is True and "新疆" in big["remote_warning"]
    r = shop.patch(f"/tables/orders/records/{big['id']}", json={"tracking_no": "SF9"})
    assert r.status_code == 400 and "风控审核中" in r.get_json()["error"]["message"]
    admin = make_member("admin")
    ap = [a for a in admin.ok(admin.get("/approvals?status=pending"))["approvals"] if big["order_no"] in a["title"]]
    admin.ok(admin.post(f"/approvals/{ap[0]['id']}/decide", json={"decision": "approve"}))
    assert get(shop, big["id"])["risk_hold"] is False
    assert patch(shop, big["id"], amount_paid=600, tracking_no="SF9")["status"] == "已发货"
    small = order(shop, address=xj, items=(("STEAK", 1, 260),))
    assert small["risk_hold"] is False and small["remote_warning"]
    holds = [order(shop, receiver_phone="13655556666")["risk_hold"] for _ in range(4)]
    assert holds == [False, False, True, True]
    ex = shop.ok(shop.get("/tables/orders/views/exceptions/records"))["records"]
    assert {o["risk_hold"] for o in ex} == {True}


def test_reservation_release_and_shipping_conversion(shop):
    o = order(shop, address=BEIJING, items=(("LAST", 2, 99),))
    inv = inventory(shop, "YW", "LAST")
    assert (inv["reserved"], inv["available"]) == (2, 3)
    patch(shop, o["id"], status="已取消")
    assert inventory(shop, "YW", "LAST")["reserved"] == 0
    s = order(shop, address=BEIJING, items=(("LAST", 1, 99),))
    patch(shop, s["id"], amount_paid=99)
    patch(shop, s["id"], tracking_no="YT1")
    inv = inventory(shop, "YW", "LAST")
    assert (inv["on_hand"], inv["reserved"], inv["shipped"], inv["available"]) == (4, 0, 1, 4)
    patch(shop, s["id"], status="已完成")
    assert inventory(shop, "YW", "LAST")["on_hand"] == 4  # converted once


def test_payment_timeout_cancels_and_releases(shop, platform, clock):
    o = order(shop, address=BEIJING, items=(("LAST", 2, 99),))
    assert inventory(shop, "YW", "LAST")["reserved"] == 2
    clock.advance(minutes=31)
    fire_timers(platform)
    o = get(shop, o["id"])
    assert o["status"] == "已取消" and "超时未付款" in o["cancel_reason"]
    assert inventory(shop, "YW", "LAST")["reserved"] == 0


def test_concurrent_orders_never_oversell_and_nothing_is_lost(shop, app):
    results = []

    def buy():
        c = app.test_client()
        c.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
        csrf = c.get("/api/v1/auth/me").get_json()["csrf_token"]
        r = c.post("/api/v1/tenants/acme/tables/orders/records", headers={"X-CSRF-Token": csrf},
                   json={"channel": "抖音", "address": BEIJING, "items": [{"sku": "LAST", "qty": 1, "unit_price": 99}]})
        results.append((r.status_code, r.get_json().get("stock_short")))

    threads = [threading.Thread(target=buy) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s for s, _ in results].count(201) == 8
    assert sorted(short for _, short in results) == [False] * 5 + [True] * 3
    inv = inventory(shop, "YW", "LAST")
    assert (inv["reserved"], inv["available"]) == (5, 0)


def test_low_stock_alerts_and_hides_the_listing(shop, platform):
    order(shop, address=BEIJING, items=(("LAST", 1, 99),))
    assert jobs(platform, "dingtalk_ops") == []
    order(shop, address=BEIJING, items=(("LAST", 1, 99),))  # available 3 = threshold
    msgs = jobs(platform, "dingtalk_ops")
    assert len(msgs) == 1 and "LAST" in msgs[0]["input"]["text"] and "YW" in msgs[0]["input"]["text"]
    assert get(shop, shop.ids["pr"]["LAST"], "products")["listed"] is False
    low = shop.ok(shop.get("/tables/inventory/views/low_stock/records"))["records"]
    assert [(r["warehouse_code"], r["sku"]) for r in low] == [("YW", "LAST")]


def test_stock_count_differences_create_adjustment_tickets(shop):
    c = shop.ok(shop.post("/tables/stock_counts/records", json={"warehouse_code": "HD", "sku": "STEAK", "counted_qty": 97}), 201)
    assert (c["system_qty"], c["difference"], c["status"]) == (100, -3, "已生成调整单")
    same = shop.ok(shop.post("/tables/stock_counts/records", json={"warehouse_code": "HN", "sku": "STEAK", "counted_qty": 100}), 201)
    assert same["status"] == "无差异"
    adj = shop.ok(shop.get("/tables/stock_adjustments/views/pending_adjustments/records"))["records"]
    assert len(adj) == 1 and adj[0]["delta"] == -3
    patch(shop, adj[0]["id"], "stock_adjustments", status="已过账")
    assert inventory(shop, "HD", "STEAK")["on_hand"] == 97


def test_sla_30_and_60_minutes_and_the_exceptions_view(shop, platform, clock):
    a = order(shop)
    b = order(shop)
    patch(shop, a["id"], amount_paid=260)
    patch(shop, b["id"], amount_paid=260)
    clock.advance(minutes=20)
    patch(shop, b["id"], tracking_no="SF-B")
    fire_timers(platform)
    assert jobs(platform, "wecom_warehouse") == []
    clock.advance(minutes=11)
    fire_timers(platform)
    card = jobs(platform, "wecom_warehouse")
    mail = jobs(platform, "email_ops")
    assert len(card) == 1 and card[0]["input"]["msgtype"] == "template_card" and a["order_no"] in card[0]["input"]["desc"]
    assert str(a["id"]) in card[0]["input"]["url"]
    assert len(mail) == 1 and a["order_no"] in mail[0]["input"]["subject"] and mail[0]["input"]["to"] == ["ops-lead@example.com"]
    assert get(shop, a["id"])["sla_level"] == "30分钟预警"
    ov = shop.ok(shop.get("/dashboards/operations/data"))["widgets"]
    assert {w["id"]: w for w in ov}["overdue_30m"]["rows"][0]["count"] == 1 and {w["id"]: w for w in ov}["overdue_30m"]["alert"] is True
    clock.advance(minutes=30)
    fire_timers(platform)
    a2 = get(shop, a["id"])
    assert a2["status"] == "待人工核查" and a2["stage"] == "异常拦截" and get(shop, b["id"])["status"] == "已发货"
    c = order(shop)
    patch(shop, c["id"], status="异常中")
    ex = shop.ok(shop.get("/tables/orders/views/exceptions/records"))["records"]
    assert ex[0]["id"] == a["id"] and c["id"] in [r["id"] for r in ex]
    clock.advance(minutes=65)  # 2 h after payment, still not picked
    fire_timers(platform)
    assert get(shop, a["id"])["stuck"] is True


def test_logistics_silence_24_hours_pauses_and_7_days_reminds_customer_service(shop, platform, clock):
    o = order(shop)
    patch(shop, o["id"], amount_paid=260)
    patch(shop, o["id"], tracking_no="ZT1", carrier="中通")
    clock.advance(hours=2)
    shop.ok(shop.post("/tables/logistics_events/records", json={"order": o["id"], "time": "2026-11-21 12:00", "kind": "揽收", "status_text": "已揽收", "location": "杭州"}), 201)
    clock.advance(hours=23)
    fire_timers(platform)
    assert get(shop, o["id"])["logistics_paused"] is False
    clock.advance(hours=2)
    fire_timers(platform)
    assert get(shop, o["id"])["logistics_paused"] is True
    assert any("24小时无物流更新" in (m["input"].get("content") or "") for m in jobs(platform, "dingtalk_ops"))
    clock.advance(days=6)
    fire_timers(platform)
    assert any("物流7天无更新" in m["input"]["title"] for m in jobs(platform, "wecom_warehouse"))


def test_kanban_drag_changes_status(shop):
    o = order(shop)
    patch(shop, o["id"], amount_paid=260)
    assert get(shop, o["id"])["stage"] == "待处理"
    assert patch(shop, o["id"], stage="异常拦截")["status"] == "异常中"
    o2 = patch(shop, o["id"], stage="待处理")
    assert o2["status"] == "已付款"
    assert patch(shop, o["id"], stage="已打单")["waybill_printed"] is True
    r = shop.patch(f"/tables/orders/records/{o['id']}", json={"stage": "已发货"})
    assert r.status_code == 400 and "物流单号" in r.get_json()["error"]["message"]
    cols = shop.ok(shop.get("/tables/orders/views/status_board"))["view"]["kanban"]["columns"]
    assert cols == ["待处理", "已打单", "已发货", "异常拦截"]


def test_cod_streak_and_high_return_rate_tag_the_customer_and_text_a_coupon(shop, platform):
    cid = shop.ids["cu"]["李四"]
    orders = [order(shop, customer=cid, payment_method="货到付款", address={"province": "广东"}) for _ in range(3)]
    for o in orders[:2]:
        shop.ok(shop.post("/tables/returns/records", json={"order": o["id"], "type": "退货", "reason": "颜色不符"}), 201)
    c = get(shop, cid, "customers")
    assert c["cod_streak"] == 3 and round(c["return_rate"], 2) == 0.67
    assert "价格敏感型流失风险" in (c["tags"] or [])
    sms = jobs(platform, "sms_customers")
    assert len(sms) == 1 and sms[0]["input"]["phone"] == "13700002222"
    order(shop, customer=cid, payment_method="在线支付")
    assert get(shop, cid, "customers")["cod_streak"] == 0

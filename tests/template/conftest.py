"""Fixtures for the order-management template: the template installed (with the notification
connectors configured) into a fresh tenant, master data entered through the API, and a
controllable clock."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from zhongshu.platform.templates_engine.installer import install_template
from zhongshu.runtime.models import OutboxJob

from tests.conftest import login

TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "order_management"

CONNECTORS = {
    "dingtalk_ops": {"credentials": {"webhook_url": "http://127.0.0.1:9/robot/send?access_token=test", "secret": "SECtest"}},
    "wecom_warehouse": {"credentials": {"key": "wecom-test-key-123"}},
    "sms_customers": {"config": {"gateway_url": "http://127.0.0.1:9/sms", "sign_name": "中枢商城"},
                      "credentials": {"api_key": "k", "api_secret": "s"}},
    "email_ops": {"config": {"host": "127.0.0.1", "from_address": "hub@example.com"}, "credentials": {}},
}


def install(platform, slug: str, *, connectors=CONNECTORS, **kw) -> dict:
    t = platform.tenant_by_slug(slug)
    return install_template(platform, t.id, TEMPLATE, connectors=connectors, **kw)


def jobs(platform, install_name: str | None = None) -> list:
    """Queued connector actions (the outbox), oldest first."""
    with platform.tenant_session(None) as s:
        q = select(OutboxJob).where(OutboxJob.kind == "connector.action").order_by(OutboxJob.id)
        rows = s.scalars(q).all()
        out = [(j.tenant_id, j.payload) for j in rows]
    return [p for _, p in out if install_name is None or p["install"] == install_name]


WAREHOUSES = [
    {"code": "HD", "name": "华东仓", "kind": "自营仓", "region_served": "华东", "lat": 31.23, "lng": 121.47, "max_daily_orders": 10000},
    {"code": "HN", "name": "华南仓", "kind": "自营仓", "region_served": "华南", "lat": 23.13, "lng": 113.26, "max_daily_orders": 10000},
    {"code": "YW", "name": "义乌仓", "kind": "自营仓", "region_served": "全国", "lat": 29.31, "lng": 120.07, "max_daily_orders": 10000},
    {"code": "HZ", "name": "杭州仓", "kind": "自营仓", "region_served": "抖音连体衣", "lat": 30.27, "lng": 120.15, "max_daily_orders": 10000},
    {"code": "SHOPEE", "name": "Shopee本地仓", "kind": "平台本地仓", "region_served": "东南亚", "lat": 1.35, "lng": 103.82, "max_daily_orders": 10000},
    {"code": "OVS", "name": "海外合作仓", "kind": "海外合作仓", "region_served": "欧美", "lat": 51.5, "lng": -0.12, "max_daily_orders": 10000},
    {"code": "TMP", "name": "临时仓", "kind": "临时仓", "region_served": "应急", "lat": 30.0, "lng": 120.0, "max_daily_orders": 5000},
    {"code": "XH", "name": "西湖门店", "kind": "门店", "region_served": "杭州西湖", "lat": 30.259, "lng": 120.130, "max_daily_orders": 200},
]
PRODUCTS = [
    {"sku": "BABY-01", "name": "婴儿连体衣", "category": "连体衣", "weight": 0.3, "size_class": "轻小件", "price": 129},
    {"sku": "STEAK", "name": "冷冻牛排", "category": "冻品", "weight": 1.5, "size_class": "标准件", "price": 260},
    {"sku": "SOFA", "name": "布艺沙发", "category": "家居", "weight": 30, "size_class": "大件", "price": 2999},
    {"sku": "LAST", "name": "限量款", "category": "女装", "weight": 0.5, "price": 99, "low_stock_action": "下架"},
    {"sku": "BAG", "name": "保温袋", "category": "赠品", "weight": 0.1, "price": 0},
    {"sku": "TASTE", "name": "试吃装", "category": "赠品", "weight": 0.2, "price": 0},
    {"sku": "FUDAI", "name": "新年福袋", "category": "赠品", "weight": 0.2, "price": 0},
]
ROUTING = [
    {"name": "抖音连体衣→杭州仓", "priority": 1, "channel": "抖音", "category": "连体衣", "wh": "HZ"},
    {"name": "东南亚轻小件→Shopee本地仓", "priority": 2, "zone": "东南亚", "parcel_class": "轻小件", "wh": "SHOPEE"},
    {"name": "欧美大件→海外合作仓", "priority": 3, "zone": "欧美", "parcel_class": "大件", "wh": "OVS"},
    {"name": "华东→华东仓", "priority": 10, "zone": "国内", "provinces": "上海,浙江,江苏,安徽", "wh": "HD"},
    {"name": "华南→华南仓", "priority": 11, "zone": "国内", "provinces": "广东,广西,福建,海南", "wh": "HN"},
    {"name": "国内其他→义乌仓", "priority": 100, "zone": "国内", "wh": "YW"},
]
GIFTS = [
    {"name": "满299送保温袋", "kind": "满额赠", "threshold": 299, "gift_sku": "BAG", "gift_name": "保温袋",
     "valid_from": "2026-11-01 00:00", "valid_to": "2026-12-31 23:59", "rule_version": "2026.11-v1"},
    {"name": "满599加赠试吃装", "kind": "满额赠", "threshold": 599, "gift_sku": "TASTE", "gift_name": "试吃装",
     "valid_from": "2026-11-01 00:00", "valid_to": "2026-12-31 23:59", "rule_version": "2026.11-v1"},
    {"name": "去年的满99赠品", "kind": "满额赠", "threshold": 99, "gift_sku": "OLD", "gift_name": "过期赠品",
     "valid_from": "2025-01-01 00:00", "valid_to": "2025-12-31 23:59", "rule_version": "2025-v3"},
    {"name": "抖音新年福袋", "kind": "指定商品赠", "trigger_sku": "STEAK", "channel": "抖音", "gift_sku": "FUDAI", "gift_name": "新年福袋",
     "valid_from": "2026-11-01 00:00", "valid_to": "2027-02-28 23:59", "rule_version": "dy-2027"},
]


def seed(api) -> dict:
    """Master data through the API; returns ids by code/sku/name."""
    wh = api.ok(api.post("/tables/warehouses/records", json={"records": WAREHOUSES}), 201)["records"]
    wh_ids = {w["code"]: w["id"] for w in wh}
    pr = api.ok(api.post("/tables/products/records", json={"records": PRODUCTS}), 201)["records"]
    pr_ids = {p["sku"]: p["id"] for p in pr}
    inv = []
    for w in WAREHOUSES:
        for p in PRODUCTS:
            if w["code"] == "XH" and p["sku"] != "BABY-01":
                continue
            on_hand = 5 if p["sku"] == "LAST" or w["code"] == "XH" else 100
            inv.append({"warehouse_code": w["code"], "sku": p["sku"], "warehouse": wh_ids[w["code"]], "product": pr_ids[p["sku"]],
                        "on_hand": on_hand, "safety_threshold": 3 if p["sku"] == "LAST" else 1})
    api.ok(api.post("/tables/inventory/records", json={"records": inv}), 201)
    rules = [{**{k: v for k, v in r.items() if k != "wh"}, "warehouse": wh_ids[r["wh"]]} for r in ROUTING]
    api.ok(api.post("/tables/routing_rules/records", json={"records": rules}), 201)
    api.ok(api.post("/tables/gift_rules/records", json={"records": GIFTS}), 201)
    cu = api.ok(api.post("/tables/customers/records", json={"records": [
        {"name": "张三", "phone": "13812345678", "level": "普通", "region": "浙江"},
        {"name": "王VIP", "phone": "13900001111", "level": "VIP", "region": "上海"},
        {"name": "李四", "phone": "13700002222", "level": "普通", "region": "广东"}]}), 201)["records"]
    return {"wh": wh_ids, "pr": pr_ids, "cu": {c["name"]: c["id"] for c in cu}}


@pytest.fixture
def shop(platform, owner, clock):
    """Tenant 'acme' with the template installed and master data entered."""
    report = install(platform, "acme")
    owner.report = report
    owner.ids = seed(owner)
    return owner


HANGZHOU = {"province": "浙江", "city": "杭州市", "district": "西湖区", "detail": "文三路 1 号"}
BEIJING = {"province": "北京", "city": "北京市", "district": "朝阳区", "detail": "建国路 2 号"}


def order(api, *, items=(("STEAK", 1, 260),), status=201, **values) -> dict:
    body = {"channel": "天猫", "receiver_name": "张三", "receiver_phone": "13812345678", "address": HANGZHOU,
            "items": [{"sku": s, "qty": q, "unit_price": p} for s, q, p in items]}
    body["amount_due"] = sum(q * p for _, q, p in items)
    body.update(values)
    r = api.post("/tables/orders/records", json=body)
    assert r.status_code == status, r.get_data(as_text=True)
    return r.get_json()


def get(api, rid: int, table: str = "orders") -> dict:
    return api.ok(api.get(f"/tables/{table}/records/{rid}"))


def patch(api, rid: int, table: str = "orders", expect: int = 200, **values) -> dict:
    r = api.patch(f"/tables/{table}/records/{rid}", json=values)
    assert r.status_code == expect, r.get_data(as_text=True)
    return r.get_json()


def inventory(api, wh: str, sku: str) -> dict:
    import json

    f = json.dumps({"and": [{"field": "warehouse_code", "op": "=", "value": wh}, {"field": "sku", "op": "=", "value": sku}]})
    return api.ok(api.get("/tables/inventory/records", query_string={"filter": f}))["records"][0]


__all__ = ["login"]

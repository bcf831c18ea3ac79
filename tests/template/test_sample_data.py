"""The template's sample data: consistent as if the automations had run, without running them."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from zhongshu.runtime.models import OutboxJob, RuleRun, RuleTimer

from .conftest import install

OPEN = {"待付款", "已付款", "备货中", "异常中", "待人工核查"}


def _all(api, table: str) -> list[dict]:
    out, offset = [], 0
    while True:
        page = api.ok(api.get(f"/tables/{table}/records", query_string={"limit": 200, "offset": offset}))["records"]
        out += page
        offset += len(page)
        if len(page) < 200:
            return out


def test_sample_orders_items_stock_and_dashboards_are_consistent(platform, owner, clock):
    report = install(platform, "acme", with_sample_data=True, sample_size=120)
    assert report["sample_data"]["records"]["orders"] == 120
    orders = _all(owner, "orders")
    assert len(orders) == 120 and len({o["global_id"] for o in orders}) == 120
    full = [owner.ok(owner.get(f"/tables/orders/records/{o['id']}")) for o in orders]
    for o in full:  # totals are the sums of the items; gifts are free lines
        assert float(o["goods_total"]) == float(o["amount_due"]) == sum(i["qty"] * float(i["unit_price"]) for i in o["items"])
        assert all(i["product_name"] and i["subtotal"] is not None for i in o["items"])
        assert o["customer_name"] and o["warehouse_code"]
    reserved = Counter()
    for o in full:
        if o["status"] in OPEN:
            for i in o["items"]:
                if not i["is_gift"]:
                    reserved[(o["warehouse_code"], i["sku"])] += i["qty"]
    inventory = _all(owner, "inventory")
    assert sum(reserved.values()) > 0
    for x in inventory:  # reservations are exactly the open orders' lines; nothing oversold
        assert x["reserved"] == reserved.get((x["warehouse_code"], x["sku"]), 0), x
        assert x["available"] >= 0 and x["available"] == x["on_hand"] - x["reserved"] - (x["samples"] or 0)
    customers = _all(owner, "customers")
    per_customer = Counter(o["customer"] for o in orders)
    assert all(c["order_count"] == per_customer[c["id"]] for c in customers)
    returned = {r["order"] for r in _all(owner, "returns")}
    assert {o["id"] for o in orders if o["has_return"]} == returned
    ops = {w["id"]: w for w in owner.ok(owner.get("/dashboards/operations/data"))["widgets"]}
    assert {r["status"]: r["count"] for r in ops["by_status"]["rows"]} == dict(Counter(o["status"] for o in orders))
    # historical rows ran no automation: no rule runs, timers or messages
    t = platform.tenant_by_slug("acme")
    with platform.tenant_session(None) as s:
        for model in (RuleRun, RuleTimer, OutboxJob):
            assert s.scalar(select(func.count()).select_from(model).where(model.tenant_id == t.id)) == 0, model.__name__

    # the same size gives the same data in another tenant
    u = platform.create_user("owner@beta.test", "pw-beta-123456")
    platform.create_tenant("beta", "Beta", owner_email=u.email)
    again = install(platform, "beta", with_sample_data=True, sample_size=120)
    assert again["sample_data"]["records"] == report["sample_data"]["records"]

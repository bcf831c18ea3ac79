"""Two tenants with the template side by side see nothing of each other; dashboard numbers
agree with counts computed independently from the records API."""
from __future__ import annotations

import io
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import openpyxl

from tests.conftest import login

from .conftest import get, install, order, patch, seed

MARK = "BETA-ONLY"          # in every beta order: must never show in an acme response
BETA_PHONE = "13600009999"  # beta's receiver phone


def _beta(app, platform):
    u = platform.create_user("owner@beta.test", "owner-password", name="Beta owner")
    platform.create_tenant("beta", "Beta 商贸", owner_email=u.email)
    install(platform, "beta")
    api = login(app, "owner@beta.test", "owner-password", "beta")
    api.ids = seed(api)
    return api


def _all(api, table: str, **query) -> list[dict]:
    return api.ok(api.get(f"/tables/{table}/records", query_string={"limit": 500, **query}))["records"]


def _widgets(api, dashboard: str) -> dict:
    return {w["id"]: w for w in api.ok(api.get(f"/dashboards/{dashboard}/data"))["widgets"]}


def test_two_tenants_with_the_template_see_nothing_of_each_other(app, platform, owner, clock):
    install(platform, "acme")
    owner.ids = seed(owner)
    beta = _beta(app, platform)

    # orders flow in both tenants: acme 2, beta 4 (paid, shipped, returned, cancelled)
    a1 = order(owner, customer=owner.ids["cu"]["张三"])
    a2 = order(owner, customer=owner.ids["cu"]["张三"], items=(("BABY-01", 2, 129),))
    patch(owner, a1["id"], amount_paid=260)
    b = [order(beta, customer=beta.ids["cu"]["张三"], receiver_name=MARK, receiver_phone=BETA_PHONE, remarks=MARK,
               channel="抖音", items=(("SOFA", 1, 2999),)) for _ in range(4)]
    for o in b[:3]:
        patch(beta, o["id"], amount_paid=2999)
    patch(beta, b[0]["id"], tracking_no="SF-BETA-1", carrier="顺丰")
    beta.ok(beta.post("/tables/returns/records", json={"order": b[1]["id"], "type": "退货", "reason": "质量问题"}), 201)
    patch(beta, b[3]["id"], status="已取消")

    # every read of acme: its own two orders and nothing of beta's
    reads = [
        owner.get("/tables/orders/records", query_string={"limit": 500}),
        owner.get("/tables/orders/records", query_string={"q": BETA_PHONE}),
        owner.get("/tables/orders/records", query_string={"filter": json.dumps({"field": "channel", "op": "=", "value": "抖音"})}),
        owner.get("/tables/orders/views/cs_search/records", query_string={"q": BETA_PHONE}),
        owner.get("/tables/orders/views/warehouse_todo/records"),
        owner.get("/tables/orders/views/status_kanban/records"),
        owner.get("/tables/returns/records"),
        owner.get("/tables/logistics_events/records"),
        owner.get("/tables/customers/records"),
        owner.post("/tables/orders/aggregate", json={"group_by": [{"field": "channel"}], "metrics": [{"fn": "count"}]}),
    ] + [owner.get(f"/dashboards/{d}/data") for d in ("operations", "after_sales", "logistics", "health", "finance", "consistency")]
    for r in reads:
        assert r.status_code == 200, (r.request.path, r.get_data(as_text=True)[:300])
        body = r.get_data(as_text=True)
        assert MARK not in body and BETA_PHONE not in body and "SF-BETA-1" not in body, r.request.path
    assert {o["id"] for o in _all(owner, "orders")} == {a1["id"], a2["id"]}
    xlsx = owner.get("/tables/orders/export", query_string={"view": "finance_costs", "format": "xlsx"})
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    in_view = owner.ok(owner.get("/tables/orders/views/finance_costs/records"))["records"]
    assert sheet.max_row == 1 + len(in_view) and {r["id"] for r in in_view} <= {a1["id"], a2["id"]}
    assert not any(MARK in c or "SF-BETA-1" in c for c in cells)
    assert _all(owner, "orders", q=BETA_PHONE) == [] and _all(owner, "returns") == []

    # numbers: acme's dashboards count acme's orders only (beta has more, of other statuses)
    ops = _widgets(owner, "operations")
    assert {r["status"]: r["count"] for r in ops["by_status"]["rows"]} == {"已付款": 1, "待付款": 1}
    assert {r["channel"]: r["count"] for r in ops["by_channel"]["rows"]} == {"天猫": 2}
    assert ops["orders_today"]["rows"][0]["count"] == 2
    assert get(owner, owner.ids["cu"]["张三"], "customers")["order_count"] == 2  # rollups stay in the tenant
    beta_ops = _widgets(beta, "operations")
    assert {r["status"]: r["count"] for r in beta_ops["by_status"]["rows"]} == {"已发货": 1, "已付款": 2, "已取消": 1}
    assert beta_ops["orders_today"]["rows"][0]["count"] == 4

    # stock moved only in the tenant that sold: acme's SOFA untouched, beta's reserved
    sofa = lambda api: [x for x in _all(api, "inventory") if x["sku"] == "SOFA"]  # noqa: E731
    assert all(x["reserved"] == 0 and x["shipped"] in (0, None) for x in sofa(owner))
    assert sum(x["reserved"] or 0 for x in sofa(beta)) + sum(x["shipped"] or 0 for x in sofa(beta)) == 3

    # the other tenant's API is closed to acme's owner
    for path in ("/api/v1/tenants/beta/tables/orders/records", f"/api/v1/tenants/beta/tables/orders/records/{b[0]['id']}",
                 "/api/v1/tenants/beta/dashboards/operations/data"):
        r = owner.get(path)
        assert r.status_code in (403, 404) and MARK not in r.get_data(as_text=True), path

    # public tracking pages: beta's order is found on beta's page only
    c = app.test_client()
    values = {"receiver_phone": BETA_PHONE, "order_no": b[0]["order_no"]}
    assert c.post("/api/v1/public/acme/track/lookup", json={"values": values}).status_code == 404
    found = c.post("/api/v1/public/beta/track/lookup", json={"values": values})
    assert found.status_code == 200 and "SF-BETA-1" in found.get_data(as_text=True)


def _local_date(value: str, tz: str = "Asia/Shanghai"):
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo(tz)).date()


def test_dashboard_numbers_match_counts_from_the_records_api(shop, clock):
    yesterday = (clock.now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    phones = iter(f"1391234{i:04d}" for i in range(100))  # one buyer each: no burst hold
    old = [order(shop, created=yesterday, receiver_phone=next(phones)) for _ in range(2)]
    today = [order(shop, receiver_phone=next(phones)) for _ in range(5)]
    patch(shop, today[0]["id"], amount_paid=260)
    patch(shop, today[1]["id"], amount_paid=260)
    patch(shop, today[1]["id"], tracking_no="SF-1", carrier="顺丰")
    patch(shop, today[2]["id"], status="已取消")
    patch(shop, today[3]["id"], status="待人工核查")
    patch(shop, old[0]["id"], amount_paid=260)
    # the limited SKU (5 on hand, threshold 3) drops below its threshold in two warehouses
    for _ in range(2):
        order(shop, items=(("LAST", 2, 99),), address={"province": "上海", "city": "上海市"}, receiver_phone=next(phones))
    order(shop, items=(("LAST", 2, 99),), address={"province": "广东", "city": "深圳市"}, receiver_phone=next(phones))

    orders = _all(shop, "orders")
    inventory = _all(shop, "inventory")
    by_status = Counter(o["status"] for o in orders)
    today_local = _local_date(clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    n_today = sum(1 for o in orders if _local_date(o["created"]) == today_local)
    n_low = sum(1 for x in inventory if (x["on_hand"] or 0) - (x["reserved"] or 0) - (x["samples"] or 0) <= (x["safety_threshold"] or 0))
    assert n_today == 8 and len(orders) == 10 and n_low >= 2  # the scenario did what it meant to

    ops = _widgets(shop, "operations")
    assert ops["orders_today"]["rows"][0]["count"] == n_today
    assert {r["status"]: r["count"] for r in ops["by_status"]["rows"]} == dict(by_status)
    assert {r["channel"]: r["count"] for r in ops["by_channel"]["rows"]} == dict(Counter(o["channel"] for o in orders))
    assert ops["manual_review"]["rows"][0]["count"] == by_status["待人工核查"] == 1
    assert ops["low_stock"]["rows"][0]["count"] == n_low and ops["low_stock"]["alert"] is True
    low_view = shop.ok(shop.get("/tables/inventory/views/low_stock/records", query_string={"limit": 500}))["records"]
    assert len(low_view) == n_low
    # the aggregate API gives the same numbers as the dashboard
    agg = shop.ok(shop.post("/tables/orders/aggregate", json={"group_by": [{"field": "status"}], "metrics": [{"fn": "count"}]}))
    assert {r["status"]: r["count"] for r in agg["rows"]} == dict(by_status)
    # paid, untouched for 30 minutes: yesterday's paid order now, today's paid one too 31 minutes later
    def overdue():
        cut = clock.now - timedelta(minutes=30)
        return sum(1 for o in _all(shop, "orders") if o["status"] == "已付款"
                   and datetime.fromisoformat(o["created"].replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None) < cut)
    assert ops["overdue_30m"]["rows"][0]["count"] == overdue() == 1
    clock.advance(minutes=31)
    assert _widgets(shop, "operations")["overdue_30m"]["rows"][0]["count"] == overdue() == 2

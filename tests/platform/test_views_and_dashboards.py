"""Saved views (grid, kanban, form, calendar) and dashboards with their live numbers."""
from __future__ import annotations

import json

import pytest


@pytest.fixture
def sample(owner, orders):
    """Six orders across statuses and channels."""
    rows = [
        ("张三", "天猫", "已付款", 100), ("李四", "抖音", "已付款", 300), ("王五", "天猫", "待付款", 50),
        ("赵六", "拼多多", "已发货", 200), ("钱七", "抖音", "已付款", 20), ("孙八", "天猫", "已取消", 999),
    ]
    return owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": c, "channel": ch, "status": s, "amount": a, "phone": "13812345678",
         "created": f"2026-11-{10 + i:02d} 09:00"} for i, (c, ch, s, a) in enumerate(rows)]}), 201)["records"]


def _error(resp, status=400) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()["error"]


def _pointers(resp) -> list[str]:
    return [e["pointer"] for e in _error(resp)["errors"]]


# -- views ---------------------------------------------------------------------------------

PAID_VIEW = {
    "api_name": "paid", "type": "grid", "label": {"zh-CN": "已付款", "en": "Paid"},
    "filter": {"field": "status", "op": "=", "value": "已付款"},
    "sorts": [{"field": "amount", "direction": "desc"}],
    "fields": ["customer_name", "amount"],
}


def test_each_view_type_can_be_saved_and_listed(owner, orders):
    owner.ok(owner.post("/tables/orders/views", json=PAID_VIEW), 201)
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "board", "type": "kanban",
                                                      "kanban": {"field": "status", "card_fields": ["customer_name"]}}), 201)
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "intake", "type": "form",
                                                      "form": {"title": "下单", "submit_label": "提交"},
                                                      "fields": ["customer_name", "phone"]}), 201)
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "agenda", "type": "calendar",
                                                      "calendar": {"field": "created"}}), 201)
    views = owner.ok(owner.get("/tables/orders/views"))["views"]
    assert [(v["api_name"], v["type"]) for v in views] == [
        ("paid", "grid"), ("board", "kanban"), ("intake", "form"), ("agenda", "calendar")]
    one = owner.ok(owner.get(f"/tables/orders/views/{views[1]['id']}"))["view"]  # by id as well as by name
    assert one["kanban"]["field"] == "status"


def test_view_definitions_are_checked_with_pointers(owner, orders):
    r = owner.post("/tables/orders/views", json={"api_name": "k", "type": "kanban", "kanban": {"field": "customer_name"}})
    err = _error(r)
    assert err["errors"][0]["pointer"] == "/kanban/field" and "single_select" in err["message"]
    assert _pointers(owner.post("/tables/orders/views", json={"api_name": "c", "type": "calendar",
                                                              "calendar": {"field": "amount"}})) == ["/calendar/field"]
    assert _pointers(owner.post("/tables/orders/views", json={"api_name": "k2", "type": "kanban",
                                                              "kanban": {"field": "nope"}})) == ["/kanban/field"]
    r = owner.post("/tables/orders/views", json={"api_name": "k3", "type": "kanban"})  # kanban needs its field
    assert r.status_code == 400
    r = owner.post("/tables/orders/views", json={"api_name": "f", "type": "grid",
                                                 "filter": {"field": "nope", "op": "=", "value": 1}})
    err = _error(r)
    assert err["errors"][0]["pointer"] == "/filter" and "nope" in err["message"]
    r = owner.post("/tables/orders/views", json={"api_name": "f2", "type": "grid",
                                                 "filter": {"field": "amount", "op": "contains_everything", "value": 1}})
    assert r.status_code == 400
    assert _pointers(owner.post("/tables/orders/views", json={"api_name": "f3", "type": "grid", "fields": ["amount", "nope"]})) == ["/fields/1"]
    r = owner.post("/tables/orders/views", json={"api_name": "s", "type": "grid", "sorts": [{"field": "nope"}]})
    assert r.status_code == 400
    assert owner.post("/tables/orders/views", json={"api_name": "t", "type": "gantt"}).status_code == 400
    owner.ok(owner.post("/tables/orders/views", json=PAID_VIEW), 201)
    assert _error(owner.post("/tables/orders/views", json=PAID_VIEW))["errors"][0]["pointer"] == "/api_name"
    assert [v["api_name"] for v in owner.ok(owner.get("/tables/orders/views"))["views"]] == ["paid"]


def test_view_records_apply_its_filter_sorts_and_fields(owner, sample):
    owner.ok(owner.post("/tables/orders/views", json=PAID_VIEW), 201)
    page = owner.ok(owner.get("/tables/orders/views/paid/records?count=true"))
    assert page["total"] == 3
    assert [(r["customer_name"], r["amount"]) for r in page["records"]] == [("李四", 300), ("张三", 100), ("钱七", 20)]
    assert all("phone" not in r and "status" not in r for r in page["records"])  # only the view's columns
    assert page["view"]["api_name"] == "paid"


def test_view_records_combine_with_an_extra_filter_and_sort(owner, sample):
    owner.ok(owner.post("/tables/orders/views", json=PAID_VIEW), 201)
    extra = json.dumps({"field": "channel", "op": "=", "value": "抖音"})
    page = owner.ok(owner.get(f"/tables/orders/views/paid/records?count=true&filter={extra}"))
    assert [r["customer_name"] for r in page["records"]] == ["李四", "钱七"] and page["total"] == 2
    # an extra filter can only narrow the view, never widen it
    wide = json.dumps({"field": "status", "op": "=", "value": "已取消"})
    assert owner.ok(owner.get(f"/tables/orders/views/paid/records?count=true&filter={wide}"))["total"] == 0
    resorted = owner.ok(owner.get("/tables/orders/views/paid/records?sort=amount&fields=customer_name,channel"))
    assert [r["customer_name"] for r in resorted["records"]] == ["钱七", "张三", "李四"]
    assert set(resorted["records"][0]) >= {"customer_name", "channel"} and "amount" not in resorted["records"][0]


def test_a_view_can_be_changed_and_deleted(owner, sample):
    owner.ok(owner.post("/tables/orders/views", json=PAID_VIEW), 201)
    changed = owner.ok(owner.patch("/tables/orders/views/paid", json={"filter": {"field": "status", "op": "=", "value": "待付款"}}))
    assert changed["view"]["sorts"] == PAID_VIEW["sorts"]  # the rest is kept
    assert [r["customer_name"] for r in owner.ok(owner.get("/tables/orders/views/paid/records"))["records"]] == ["王五"]
    assert _pointers(owner.patch("/tables/orders/views/paid", json={"fields": ["nope"]})) == ["/fields/0"]
    owner.ok(owner.delete("/tables/orders/views/paid"))
    assert owner.get("/tables/orders/views/paid").status_code == 404
    assert owner.get("/tables/orders/views/paid/records").status_code == 404


def test_a_view_for_admins_is_invisible_to_members(owner, make_member, sample):
    owner.ok(owner.post("/tables/orders/views", json={**PAID_VIEW, "api_name": "finance", "roles": ["admin"]}), 201)
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "everyone", "type": "grid"}), 201)
    member = make_member("member")
    assert [v["api_name"] for v in member.ok(member.get("/tables/orders/views"))["views"]] == ["everyone"]
    for r in (member.get("/tables/orders/views/finance"),
              member.get("/tables/orders/views/finance/records"),
              member.get("/tables/orders/export?format=csv&view=finance")):
        assert r.status_code == 404, r.get_data(as_text=True)
    admin = make_member("admin")
    assert admin.ok(admin.get("/tables/orders/views/finance/records?count=true"))["total"] == 3
    assert {v["api_name"] for v in owner.ok(owner.get("/tables/orders/views"))["views"]} == {"finance", "everyone"}


def test_a_view_listing_a_role_is_visible_to_that_role(owner, make_member, sample):
    owner.ok(owner.post("/tables/orders/views", json={**PAID_VIEW, "roles": ["viewer"]}), 201)
    viewer, member = make_member("viewer"), make_member("member")
    assert viewer.ok(viewer.get("/tables/orders/views/paid/records?count=true"))["total"] == 3
    assert member.get("/tables/orders/views/paid/records").status_code == 404


def test_members_cannot_change_views(owner, make_member, orders):
    owner.ok(owner.post("/tables/orders/views", json=PAID_VIEW), 201)
    member = make_member("member")
    assert member.patch("/tables/orders/views/paid", json={"filter": None}).status_code == 403
    assert member.delete("/tables/orders/views/paid").status_code == 403


# -- dashboards ----------------------------------------------------------------------------

SALES = {
    "api_name": "sales", "label": "销售看板", "refresh_seconds": 60,
    "widgets": [
        {"id": "paid_count", "type": "number", "table": "orders", "title": "已付款订单",
         "filter": {"field": "status", "op": "=", "value": "已付款"}, "metrics": [{"fn": "count"}],
         "threshold": {"op": ">", "value": 2, "color": "red"}},
        {"id": "pending_amount", "type": "number", "table": "orders",
         "filter": {"field": "status", "op": "=", "value": "待付款"}, "metrics": [{"fn": "sum", "field": "amount"}],
         "threshold": {"op": ">=", "value": 100}},
        {"id": "by_channel", "type": "bar", "table": "orders", "group_by": [{"field": "channel"}],
         "metrics": [{"fn": "sum", "field": "amount", "as": "total"}], "threshold": {"op": ">", "value": 1000}},
    ],
}


def test_dashboard_data_returns_each_widgets_numbers_and_alerts(owner, sample):
    owner.ok(owner.post("/dashboards", json=SALES), 201)
    data = owner.ok(owner.get("/dashboards/sales/data"))
    assert data["dashboard"] == "sales" and data["refresh_seconds"] == 60
    w = {x["id"]: x for x in data["widgets"]}
    assert w["paid_count"]["rows"] == [{"count": 3}] and w["paid_count"]["alert"] is True  # 3 > 2
    assert w["pending_amount"]["rows"] == [{"sum_amount": 50}] and w["pending_amount"]["alert"] is False  # 50 < 100
    assert w["by_channel"]["type"] == "bar"
    assert {r["channel"]: r["total"] for r in w["by_channel"]["rows"]} == {"天猫": 1149, "抖音": 320, "拼多多": 200}
    assert w["by_channel"]["alert"] is True  # the largest bar (1149) crosses 1000


def test_dashboard_alerts_follow_the_data(owner, sample):
    owner.ok(owner.post("/dashboards", json=SALES), 201)
    cancelled = next(r for r in sample if r["status"] == "已取消")
    owner.ok(owner.delete(f"/tables/orders/records/{cancelled['id']}"))
    owner.ok(owner.post("/tables/orders/records", json={"status": "待付款", "amount": 60}), 201)
    w = {x["id"]: x for x in owner.ok(owner.get("/dashboards/sales/data"))["widgets"]}
    assert w["pending_amount"]["rows"] == [{"sum_amount": 110}] and w["pending_amount"]["alert"] is True
    assert w["by_channel"]["alert"] is False  # 天猫 is down to 150


def test_a_threshold_on_an_empty_sum_does_not_alert(owner, orders):
    owner.ok(owner.post("/dashboards", json=SALES), 201)
    w = {x["id"]: x for x in owner.ok(owner.get("/dashboards/sales/data"))["widgets"]}
    assert w["paid_count"]["rows"] == [{"count": 0}] and w["paid_count"]["alert"] is False
    assert w["pending_amount"]["rows"] == [{"sum_amount": None}] and w["pending_amount"]["alert"] is False


def test_a_widget_can_use_a_view(owner, sample):
    owner.ok(owner.post("/tables/orders/views", json=PAID_VIEW), 201)
    owner.ok(owner.post("/dashboards", json={"api_name": "v", "widgets": [
        {"id": "tmall_paid", "type": "number", "table": "orders", "view": "paid",
         "filter": {"field": "channel", "op": "=", "value": "天猫"}, "metrics": [{"fn": "sum", "field": "amount"}]}]}), 201)
    assert owner.ok(owner.get("/dashboards/v/data"))["widgets"][0]["rows"] == [{"sum_amount": 100}]


def test_invalid_widgets_are_refused_with_pointers(owner, orders):
    r = owner.post("/dashboards", json={"api_name": "bad", "widgets": [
        {"id": "ok", "type": "number", "table": "orders", "metrics": [{"fn": "count"}]},
        {"id": "w", "type": "number", "table": "orders", "metrics": [{"fn": "sum", "field": "customer_name"}]}]})
    err = _error(r)
    assert err["errors"][0]["pointer"].startswith("/widgets/1")
    assert "customer_name" in err["message"] and "number" in err["message"]
    assert _pointers(owner.post("/dashboards", json={"api_name": "bad", "widgets": [
        {"id": "w", "type": "number", "table": "nope", "metrics": [{"fn": "count"}]}]})) == ["/widgets/0/table"]
    r = owner.post("/dashboards", json={"api_name": "bad", "widgets": [
        {"id": "w", "type": "bar", "table": "orders", "group_by": [{"field": "customer_name", "bucket": "day"}]}]})
    assert _error(r)["errors"][0]["pointer"].startswith("/widgets/0")
    assert owner.post("/dashboards", json={"api_name": "bad", "widgets": [
        {"id": "w", "type": "donut", "table": "orders"}]}).status_code == 400
    assert owner.ok(owner.get("/dashboards"))["dashboards"] == []


def test_an_invalid_widget_metric_points_at_the_metric(owner, orders):
    r = owner.post("/dashboards", json={"api_name": "bad", "widgets": [
        {"id": "w", "type": "number", "table": "orders", "metrics": [{"fn": "sum", "field": "customer_name"}]}]})
    assert _pointers(r) == ["/widgets/0/metrics/0/field"]


def test_a_dashboard_can_be_read_changed_and_deleted(owner, make_member, sample):
    created = owner.ok(owner.post("/dashboards", json=SALES), 201)["dashboard"]
    assert owner.ok(owner.get(f"/dashboards/{created['id']}"))["dashboard"]["api_name"] == "sales"
    assert _error(owner.post("/dashboards", json=SALES))["errors"][0]["pointer"] == "/api_name"
    changed = owner.ok(owner.patch("/dashboards/sales", json={"widgets": SALES["widgets"][:1]}))["dashboard"]
    assert [w["id"] for w in changed["widgets"]] == ["paid_count"] and changed["label"] == "销售看板"
    r = owner.patch("/dashboards/sales", json={"widgets": [
        {"id": "w", "type": "number", "table": "orders", "metrics": [{"fn": "avg", "field": "status"}]}]})
    assert r.status_code == 400
    assert [w["id"] for w in owner.ok(owner.get("/dashboards/sales"))["dashboard"]["widgets"]] == ["paid_count"]
    member = make_member("member")
    assert member.ok(member.get("/dashboards/sales/data"))["widgets"][0]["rows"] == [{"count": 3}]
    assert member.patch("/dashboards/sales", json={"label": "x"}).status_code == 403
    assert member.delete("/dashboards/sales").status_code == 403
    owner.ok(owner.delete("/dashboards/sales"))
    assert owner.get("/dashboards/sales").status_code == 404
    assert owner.get("/dashboards/sales/data").status_code == 404

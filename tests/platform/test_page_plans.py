"""A page's compiled statement is kept between requests (storage/pages.py). What a caller
sees must not depend on it: each member their own rows through the same view, a changed
view or permission at once, and conditions relative to the clock moving with it."""
from __future__ import annotations

import json

VIEW = {"api_name": "paid", "type": "grid", "filter": {"field": "status", "op": "=", "value": "已付款"},
        "sorts": [{"field": "amount", "direction": "desc"}]}


def _names(api, path="/tables/orders/views/paid/records"):
    return [r["customer_name"] for r in api.ok(api.get(path))["records"]]


def _permissions(owner, permissions: dict):
    owner.ok(owner.patch("/tables/orders", json={"permissions": permissions}))


def test_members_with_their_own_row_scope_each_see_their_rows_through_one_view(owner, make_member, orders):
    owner.ok(owner.post("/tables/orders/views", json=VIEW), 201)
    _permissions(owner, {"member": {"rows": {"field": "created_by", "op": "=", "value": "$me"}}})
    alice, bob = make_member("member"), make_member("member")
    alice.ok(alice.post("/tables/orders/records", json={"customer_name": "Alice 的", "status": "已付款", "amount": 1}), 201)
    bob.ok(bob.post("/tables/orders/records", json={"customer_name": "Bob 的", "status": "已付款", "amount": 2}), 201)
    for _ in range(3):  # asked again and again, in turns
        assert _names(alice) == ["Alice 的"]
        assert _names(bob) == ["Bob 的"]
    assert _names(owner) == ["Bob 的", "Alice 的"]


def test_members_scoped_by_an_attribute_see_their_region_through_one_view(owner, make_member, orders):
    owner.ok(owner.post("/tables/orders/fields", json={
        "api_name": "region", "type": "single_select", "options": {"choices": [{"label": "华东"}, {"label": "华北"}]}}), 201)
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "上海", "region": "华东", "status": "已付款", "amount": 10},
        {"customer_name": "北京", "region": "华北", "status": "已付款", "amount": 20}]}), 201)
    owner.ok(owner.post("/tables/orders/views", json=VIEW), 201)
    _permissions(owner, {"member": {"rows": {"field": "region", "op": "=", "value": "$user.region"}}})
    east, north = make_member("member", attributes={"region": "华东"}), make_member("member", attributes={"region": "华北"})
    for _ in range(2):
        assert _names(east) == ["上海"]
        assert _names(north) == ["北京"]


def test_a_changed_view_or_permission_shows_on_the_next_page(owner, make_member, orders):
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "甲", "status": "已付款", "amount": 10},
        {"customer_name": "乙", "status": "待付款", "amount": 20}]}), 201)
    owner.ok(owner.post("/tables/orders/views", json=VIEW), 201)
    member = make_member("member")
    assert _names(member) == ["甲"]
    owner.ok(owner.patch("/tables/orders/views/paid", json={"filter": {"field": "status", "op": "=", "value": "待付款"}}))
    assert _names(member) == ["乙"]
    _permissions(owner, {"member": {"rows": {"field": "amount", "op": ">", "value": 100}}})
    assert _names(member) == []
    _permissions(owner, {"member": {"fields": {"amount": "hidden"}}})  # no row scope now; the view's sort is left out
    page = member.ok(member.get("/tables/orders/views/paid/records"))
    assert [r["customer_name"] for r in page["records"]] == ["乙"] and "amount" not in page["records"][0]
    assert page["view"]["sorts"] == []
    r = member.get("/tables/orders/records?sort=-amount")
    assert r.status_code == 400, r.get_data(as_text=True)


def test_a_page_relative_to_the_clock_moves_with_it(owner, orders, clock):
    owner.ok(owner.post("/tables/orders/records", json={"customer_name": "刚下单", "status": "已付款"}), 201)
    flt = json.dumps({"field": "created_at", "op": "within_last", "value": "1 hour"})
    path = f"/tables/orders/records?filter={flt}"
    assert _names(owner, path) == ["刚下单"]
    clock.advance(hours=2)
    assert _names(owner, path) == []


def test_the_next_page_and_the_count_use_the_same_condition(owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": f"客户{i}", "status": "已付款" if i % 2 else "待付款", "amount": i} for i in range(10)]}), 201)
    owner.ok(owner.post("/tables/orders/views", json=VIEW), 201)
    first = owner.ok(owner.get("/tables/orders/views/paid/records?limit=3&count=true"))
    assert first["total"] == 5 and [r["amount"] for r in first["records"]] == [9, 7, 5]
    nxt = owner.ok(owner.get(f"/tables/orders/views/paid/records?limit=3&cursor={first['next_cursor']}"))
    assert [r["amount"] for r in nxt["records"]] == [3, 1] and not nxt["has_more"]
    again = owner.ok(owner.get("/tables/orders/views/paid/records?limit=3&offset=3"))
    assert [r["amount"] for r in again["records"]] == [3, 1]

"""A table's ``permissions`` document: checked when it is saved, and shown only to builders.

A row scope is compiled for every read of its role, so a scope naming a field the table does
not have (or one hidden from that role, or an operator the field does not take) would lock
the role out with a 400 on every read. Such a document is refused when it is saved, with a
pointer into it. The document itself tells who may see what, so only builders and above see
it; so are the definitions around it (views, dashboards, rules) trimmed for lower roles.
"""
from __future__ import annotations

import pytest

from tests.conftest import ORDERS


def _error(resp, status=400) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()["error"]


def _set(owner, permissions: dict, table="orders"):
    return owner.patch(f"/tables/{table}", json={"permissions": permissions})


@pytest.fixture
def shop(owner, orders):
    """orders (with a region and a customer link) and customers (with a level)."""
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [
        {"api_name": "name", "type": "text"},
        {"api_name": "level", "type": "single_select", "options": {"choices": [{"label": "普通"}, {"label": "VIP"}]}}]}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer", "type": "link", "options": {"target": "customers"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={
        "api_name": "region", "type": "single_select", "options": {"choices": [{"label": "华东"}, {"label": "华北"}]}}), 201)
    vip = owner.ok(owner.post("/tables/customers/records", json={"name": "大客户", "level": "VIP"}), 201)
    plain = owner.ok(owner.post("/tables/customers/records", json={"name": "小客户", "level": "普通"}), 201)
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "甲", "region": "华东", "customer": vip["id"], "amount": 100},
        {"customer_name": "乙", "region": "华北", "customer": plain["id"], "amount": 50}]}), 201)
    return owner


# -- 1. row scopes and field names are checked when saved --------------------------------

@pytest.mark.parametrize("rows, pointer, words", [
    ({"field": "regoin", "op": "=", "value": "$user.region"}, "/permissions/member/rows/field", "regoin"),
    ({"and": [{"field": "status", "op": "=", "value": "已付款"}, {"field": "nope", "op": "is_empty"}]},
     "/permissions/member/rows/and/1/field", "nope"),
    ({"or": [{"not": {"field": "customer.tier", "op": "=", "value": "VIP"}}]},
     "/permissions/member/rows/or/0/not/field", "tier"),
    ({"field": "amount.value", "op": "=", "value": 1}, "/permissions/member/rows/field", "not a link"),
    ({"field": "region", "op": "contains", "value": "$user.region"}, "/permissions/member/rows/op", "contains"),
    ({"field": "amount", "op": ">", "value": "很多"}, "/permissions/member/rows/value", "amount"),
    ({"field": "region", "op": "=", "value": "华西"}, "/permissions/member/rows/value", "华西"),
    ({"field": "region", "op": "in", "value": "华东"}, "/permissions/member/rows/value", "list"),
    ({"field": "region", "op": "=", "value": "$user."}, "/permissions/member/rows/value", "attribute name"),
    ({"field": "region", "op": "=="}, "/permissions/member/rows", ""),
])
def test_a_bad_row_scope_is_refused_at_its_pointer(shop, rows, pointer, words):
    owner = shop
    err = _error(_set(owner, {"member": {"access": "write", "rows": rows}}))
    assert err["code"] == "validation_failed"
    assert err["errors"][0]["pointer"].startswith(pointer), err
    assert words in err["errors"][0]["message"] and err["errors"][0]["message_zh"]
    assert err["errors"][0]["pointer"] in err["message"]
    # nothing was saved: members still read every row
    assert "permissions" not in owner.ok(owner.get("/tables/orders"))["table"]


def test_a_row_scope_on_a_field_hidden_from_that_role_is_refused(shop, make_member):
    owner = shop
    err = _error(_set(owner, {"member": {"fields": {"region": "hidden"},
                                         "rows": {"field": "region", "op": "=", "value": "$user.region"}}}))
    assert err["errors"][0]["pointer"] == "/permissions/member/rows/field"
    assert "hidden from member" in err["errors"][0]["message"]
    # hidden in the linked table counts too
    owner.ok(_set(owner, {"member": {"fields": {"level": "hidden"}}}, table="customers"))
    err = _error(_set(owner, {"member": {"rows": {"field": "customer.level", "op": "=", "value": "VIP"}}}))
    assert err["errors"][0]["pointer"] == "/permissions/member/rows/field"
    assert "hidden from member" in err["errors"][0]["message"]
    # the same scope for viewers (who see level) is fine, and works
    owner.ok(_set(owner, {"viewer": {"rows": {"field": "customer.level", "op": "=", "value": "VIP"}}}))
    viewer = make_member("viewer")
    assert [r["customer_name"] for r in viewer.ok(viewer.get("/tables/orders/records"))["records"]] == ["甲"]


def test_every_problem_of_the_document_is_listed(shop):
    err = _error(_set(shop, {"member": {"fields": {"nope": "hidden"}, "rows": {"field": "gone", "op": "=", "value": 1}},
                             "viewer": {"rows": {"field": "amount", "op": "has_any", "value": [1]}}}))
    assert [e["pointer"] for e in err["errors"]] == [
        "/permissions/member/fields/nope", "/permissions/member/rows/field", "/permissions/viewer/rows/op"]


@pytest.mark.parametrize("rows", [
    {"field": "region", "op": "=", "value": "$user.region"},
    {"field": "region", "op": "in", "value": "$user.regions"},  # the attribute holds a list
    {"field": "created_by", "op": "=", "value": "$me"},
    {"field": "amount", "op": "between", "value": ["$user.min_amount", "$user.max_amount"]},
    {"field": "customer.level", "op": "=", "value": "VIP"},
    {"field": "items.category", "op": "in", "value": ["连体衣", "$user.category"]},
    {"and": [{"field": "status", "op": "!=", "value": "已取消"}, {"not": {"field": "tags", "op": "has_any", "value": ["风险"]}}]},
])
def test_good_row_scopes_are_saved(shop, rows):
    table = shop.ok(_set(shop, {"member": {"rows": rows}}))["table"]
    assert table["permissions"]["member"]["rows"] == rows


def test_a_saved_scope_with_user_attributes_works_for_members(shop, make_member):
    owner = shop
    owner.ok(_set(owner, {"member": {"rows": {"field": "region", "op": "in", "value": "$user.regions"}}}))
    east = make_member("member", attributes={"regions": ["华东"]})
    both = make_member("member", attributes={"regions": ["华东", "华北"]})
    assert [r["customer_name"] for r in east.ok(east.get("/tables/orders/records"))["records"]] == ["甲"]
    assert [r["customer_name"] for r in both.ok(both.get("/tables/orders/records"))["records"]] == ["甲", "乙"]


def test_permissions_in_a_new_table_are_checked_too(owner):
    bad = {**ORDERS, "permissions": {"member": {"rows": {"field": "region", "op": "=", "value": "$user.region"}}}}
    err = _error(owner.post("/tables", json=bad))
    assert err["errors"][0]["pointer"] == "/permissions/member/rows/field"
    err = _error(owner.post("/tables", json={**ORDERS, "permissions": {"member": {"fields": {"cost": "hidden"}}}}))
    assert err["errors"][0]["pointer"] == "/permissions/member/fields/cost"
    assert owner.ok(owner.get("/tables"))["tables"] == []  # nothing half-created
    good = {**ORDERS, "permissions": {"member": {"fields": {"phone": "hidden"},
                                                 "rows": {"field": "items.category", "op": "=", "value": "$user.category"}}}}
    created = owner.ok(owner.post("/tables", json=good), 201)["table"]
    assert created["permissions"]["member"]["fields"] == {"phone": "hidden"}

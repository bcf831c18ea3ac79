"""A table's ``permissions`` document: checked when it is saved, and shown only to builders.

A row scope is compiled for every read of its role, so a scope naming a field the table does
not have (or one hidden from that role, or an operator the field does not take) would lock
the role out with a 400 on every read. Such a document is refused when it is saved, with a
pointer into it. The document itself tells who may see what, so only builders and above see
it; so are the definitions around it (views, dashboards, rules) trimmed for lower roles.
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import ORDERS, Api


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


# -- 2. the permissions document is shown to builders and above only ---------------------

PERMISSIONS = {"member": {"fields": {"phone": "hidden", "amount": "read_only"},
                          "rows": {"field": "region", "op": "=", "value": "$user.region"}},
               "viewer": {"access": "read", "fields": {"paid": "hidden"}}}


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_lower_roles_do_not_see_the_permissions_document(shop, make_member, role):
    owner = shop
    owner.ok(_set(owner, PERMISSIONS))
    other = make_member(role, attributes={"region": "华东"})
    one = other.ok(other.get("/tables/orders"))["table"]
    listed = {t["api_name"]: t for t in other.ok(other.get("/tables"))["tables"]}
    for table in (one, listed["orders"]):
        assert "permissions" not in table
        assert table["api_name"] == "orders" and table["fields"]  # the rest of the table is still there
    hidden = "phone" if role == "member" else "paid"
    assert hidden not in [f["api_name"] for f in one["fields"]]
    text = other.get("/tables/orders").get_data(as_text=True) + other.get("/tables").get_data(as_text=True)
    for word in ("read_only", "$user.region", '"hidden"'):
        assert word not in text


@pytest.mark.parametrize("role", ["builder", "admin"])
def test_builders_and_admins_see_it(shop, make_member, role):
    shop.ok(_set(shop, PERMISSIONS))
    other = make_member(role)
    assert other.ok(other.get("/tables/orders"))["table"]["permissions"] == PERMISSIONS
    listed = {t["api_name"]: t for t in other.ok(other.get("/tables"))["tables"]}
    assert listed["orders"]["permissions"] == PERMISSIONS


def test_the_template_export_keeps_the_permissions_document(shop, make_member):
    owner = shop
    owner.ok(_set(owner, PERMISSIONS))
    admin = make_member("admin")
    r = admin.get("/export?app=all")
    body = r.get_data(as_text=True)
    assert r.status_code == 200, body
    tables = [d for d in _dicts(json.loads(body)) if d.get("api_name") == "orders" and "fields" in d]
    assert tables and tables[0]["permissions"] == PERMISSIONS
    member = make_member("member")
    assert member.get("/export?app=all").status_code == 403


def _dicts(node):
    """Every object inside a JSON document (a bundle keeps its files as nested documents)."""
    if isinstance(node, str) and node.lstrip().startswith("{"):
        try:
            node = json.loads(node)
        except ValueError:
            return
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _dicts(v)


# -- 3. views, dashboards and rules, as lower roles see them ------------------------------

def _view(owner, **d):
    return owner.ok(owner.post("/tables/orders/views", json={"type": "grid", **d}), 201)["view"]


def test_views_of_a_table_a_role_cannot_read_are_refused(shop, make_member):
    owner = shop
    _view(owner, api_name="big", filter={"field": "amount", "op": ">", "value": 80})
    owner.ok(_set(owner, {"member": {"access": "none"}}))
    member = make_member("member")
    for r in (member.get("/tables/orders/views"), member.get("/tables/orders/views/big"),
              member.get("/tables/orders/views/big/records")):
        assert r.status_code == 403, r.get_data(as_text=True)
        assert "amount" not in r.get_data(as_text=True)
    viewer = make_member("viewer")  # still reads the table and its views
    assert [v["api_name"] for v in viewer.ok(viewer.get("/tables/orders/views"))["views"]] == ["big"]


def test_a_view_shows_a_role_only_fields_it_may_see(shop, make_member):
    owner = shop
    owner.ok(_set(owner, {"member": {"fields": {"phone": "hidden"}}}))
    owner.ok(_set(owner, {"member": {"fields": {"level": "hidden"}}}, table="customers"))
    _view(owner, api_name="calls", fields=["customer_name", "phone", "amount"], group_by=["phone"],
          sorts=[{"field": "phone", "direction": "asc"}, {"field": "amount", "direction": "desc"}],
          filter={"field": "region", "op": "=", "value": "华东"})
    _view(owner, api_name="mobiles", filter={"field": "phone", "op": "starts_with", "value": "138"})
    _view(owner, api_name="vip", filter={"field": "customer.level", "op": "=", "value": "VIP"})
    member = make_member("member")
    views = {v["api_name"]: v for v in member.ok(member.get("/tables/orders/views"))["views"]}
    calls = views["calls"]
    assert calls["fields"] == ["customer_name", "amount"] and calls["group_by"] == []
    assert calls["sorts"] == [{"field": "amount", "direction": "desc"}]
    assert calls["filter"] == {"field": "region", "op": "=", "value": "华东"}  # names nothing hidden: kept
    assert "filter" not in views["mobiles"] and "filter" not in views["vip"]
    assert member.ok(member.get("/tables/orders/views/mobiles"))["view"] == views["mobiles"]
    page = member.ok(member.get("/tables/orders/views/calls/records"))
    assert page["view"]["fields"] == ["customer_name", "amount"]
    assert [r["customer_name"] for r in page["records"]] == ["甲"] and "phone" not in page["records"][0]
    text = member.get("/tables/orders/views").get_data(as_text=True)
    assert "phone" not in text and "138" not in text and "level" not in text
    # builders see the views as saved
    builder = make_member("builder")
    full = {v["api_name"]: v for v in builder.ok(builder.get("/tables/orders/views"))["views"]}
    assert full["calls"]["fields"] == ["customer_name", "phone", "amount"] and full["calls"]["group_by"] == ["phone"]
    assert full["mobiles"]["filter"]["field"] == "phone" and full["vip"]["filter"]["field"] == "customer.level"
    assert builder.ok(builder.get("/tables/orders/views/calls/records"))["view"]["fields"] == ["customer_name", "phone", "amount"]


DASH = {"api_name": "ops", "label": "运营", "widgets": [
    {"id": "orders", "type": "number", "table": "orders", "metrics": [{"fn": "count"}]},
    {"id": "vips", "type": "number", "table": "customers", "filter": {"field": "level", "op": "=", "value": "VIP"},
     "metrics": [{"fn": "count"}]},
    {"id": "takings", "type": "number", "table": "orders", "metrics": [{"fn": "sum", "field": "paid"}]},
    {"id": "by_phone", "type": "bar", "table": "orders", "group_by": [{"field": "phone"}], "metrics": [{"fn": "count"}]},
    {"id": "vip_orders", "type": "number", "table": "orders", "filter": {"field": "customer.name", "op": "=", "value": "大客户"},
     "metrics": [{"fn": "count"}]},
]}


def test_a_dashboard_shows_a_role_only_widgets_it_may_compute(shop, make_member):
    owner = shop
    owner.ok(owner.post("/dashboards", json=DASH), 201)
    owner.ok(_set(owner, {"member": {"access": "none"}}, table="customers"))
    owner.ok(_set(owner, {"member": {"fields": {"paid": "hidden", "phone": "hidden"}}}))
    member = make_member("member")
    listed = member.ok(member.get("/dashboards"))["dashboards"][0]
    one = member.ok(member.get("/dashboards/ops"))["dashboard"]
    for d in (listed, one):
        assert [w["id"] for w in d["widgets"]] == ["orders"] and d["label"] == "运营"
    data = member.ok(member.get("/dashboards/ops/data"))  # the others no longer fail the whole dashboard
    assert [(w["id"], w["rows"]) for w in data["widgets"]] == [("orders", [{"count": 2}])]
    text = member.get("/dashboards").get_data(as_text=True)
    for word in ("customers", "VIP", "paid", "phone", "大客户"):
        assert word not in text
    # a viewer, who may read customers and sees every field, gets every widget
    viewer = make_member("viewer")
    assert [w["id"] for w in viewer.ok(viewer.get("/dashboards/ops"))["dashboard"]["widgets"]] == [w["id"] for w in DASH["widgets"]]
    assert [w["id"] for w in viewer.ok(viewer.get("/dashboards/ops/data"))["widgets"]] == [w["id"] for w in DASH["widgets"]]
    # builders see and compute the dashboard as saved
    builder = make_member("builder")
    assert builder.ok(builder.get("/dashboards/ops"))["dashboard"]["widgets"] == DASH["widgets"]


def test_rules_and_their_run_logs_are_for_builders(shop, make_member):
    owner = shop
    owner.ok(owner.post("/rules", json={
        "api_name": "flag_paid", "table": "orders", "trigger": {"type": "record_updated", "fields": ["paid"]},
        "condition": "paid > 0", "actions": [{"type": "update_record", "values": {"status": "'已付款'"}}]}), 201)
    rec = owner.ok(owner.get("/tables/orders/records"))["records"][0]
    owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"paid": 99}))
    for role in ("member", "viewer"):
        other = make_member(role)
        for r in (other.get("/rules"), other.get("/rules?table=orders"), other.get("/rules/flag_paid"),
                  other.get("/rules/flag_paid/runs")):
            assert r.status_code == 403, r.get_data(as_text=True)
            assert "paid > 0" not in r.get_data(as_text=True)
    builder = make_member("builder")
    assert [r["api_name"] for r in builder.ok(builder.get("/rules"))["rules"]] == ["flag_paid"]
    assert builder.ok(builder.get("/rules/flag_paid"))["rule"]["condition"] == "paid > 0"
    assert builder.ok(builder.get("/rules/flag_paid/runs"))["runs"][0]["status"] == "ok"


# -- renaming and deleting fields that the permissions name -------------------------------

def test_a_renamed_field_keeps_its_permissions(shop, make_member):
    owner = shop
    owner.ok(_set(owner, {"member": {"fields": {"phone": "hidden", "amount": "read_only"},
                                     "rows": {"and": [{"field": "region", "op": "=", "value": "$user.region"}]}}}))
    owner.ok(owner.patch("/tables/orders/fields/phone", json={"api_name": "mobile"}))
    owner.ok(owner.patch("/tables/orders/fields/region", json={"api_name": "area"}))
    perms = owner.ok(owner.get("/tables/orders"))["table"]["permissions"]["member"]
    assert perms["fields"] == {"mobile": "hidden", "amount": "read_only"}
    assert perms["rows"] == {"and": [{"field": "area", "op": "=", "value": "$user.region"}]}
    member = make_member("member", attributes={"region": "华东"})
    page = member.ok(member.get("/tables/orders/records"))
    assert [r["customer_name"] for r in page["records"]] == ["甲"] and "mobile" not in page["records"][0]


def test_a_field_a_row_scope_uses_cannot_be_deleted(shop, make_member):
    owner = shop
    owner.ok(_set(owner, {"member": {"rows": {"field": "region", "op": "=", "value": "$user.region"}}}))
    err = _error(owner.delete("/tables/orders/fields/region"), 409)
    assert "member" in err["message"] and "region" in err["message"]
    member = make_member("member", attributes={"region": "华北"})
    assert [r["customer_name"] for r in member.ok(member.get("/tables/orders/records"))["records"]] == ["乙"]
    owner.ok(_set(owner, {"member": {}}))
    owner.ok(owner.delete("/tables/orders/fields/region"))


# -- templates: permissions are checked once the template's links exist -------------------

def test_an_exported_tenant_with_scopes_through_links_imports_elsewhere(shop, app, platform):
    owner = shop
    owner.ok(_set(owner, {"member": {"fields": {"customer": "read_only"},
                                     "rows": {"field": "customer.level", "op": "=", "value": "$user.level"}}}))
    bundle = owner.ok(owner.get("/export?app=all&name=shop&version=1.0.0"))
    platform.create_tenant("copy", "副本", owner_email="owner@acme.test")
    other = Api(owner.client, "copy", owner.csrf)
    other.ok(other.post("/templates/import", json=bundle), 201)
    perms = other.ok(other.get("/tables/orders"))["table"]["permissions"]
    assert perms["member"]["rows"]["field"] == "customer.level"
    # and a bundle with a bad scope is refused, leaving the tenant as it was
    bad = json.loads(json.dumps(bundle).replace("customer.level", "customer.tier"))
    platform.create_tenant("copy2", "副本2", owner_email="owner@acme.test")
    third = Api(owner.client, "copy2", owner.csrf)
    r = third.post("/templates/import", json=bad)
    assert r.status_code == 400 and "tier" in r.get_data(as_text=True), r.get_data(as_text=True)
    assert third.ok(third.get("/tables"))["tables"] == []

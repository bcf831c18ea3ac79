"""Permissions on every path through links: filters, sorts, aggregates, views and run logs.

A member may not learn anything through a link that they could not read directly: a filter
or sort that steps into a table they have ``access: none`` on, or onto a field hidden from
them there, is refused with the same 400 as a field hidden on the table itself (so the
reply cannot be used to probe the hidden values). Owners and readable links still work.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest


def _url(path: str, flt=None, sort: str | None = None) -> str:
    parts = []
    if flt is not None:
        parts.append("filter=" + quote(json.dumps(flt, ensure_ascii=False)))
    if sort:
        parts.append("sort=" + sort)
    return path + ("?" + "&".join(parts) if parts else "")


def _names(api, flt=None, sort=None, path="/tables/orders/records") -> list[str]:
    return [r["customer_name"] for r in api.ok(api.get(_url(path, flt, sort)))["records"]]


def _refused(resp) -> str:
    """The error message of a 400 'unknown field' reply."""
    assert resp.status_code == 400, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert "unknown field" in err["message"], err
    return err["message"]


def _permissions(owner, table: str, permissions: dict):
    owner.ok(owner.patch(f"/tables/{table}", json={"permissions": permissions}))


@pytest.fixture
def shop(owner, orders):
    """customers (name, level, credit) and three orders linked to them."""
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [
        {"api_name": "name", "type": "text"},
        {"api_name": "level", "type": "single_select", "options": {"choices": [{"label": "普通"}, {"label": "VIP"}]}},
        {"api_name": "credit", "type": "number"}]}), 201)
    vip = owner.ok(owner.post("/tables/customers/records", json={"name": "大客户", "level": "VIP", "credit": 900}), 201)
    plain = owner.ok(owner.post("/tables/customers/records", json={"name": "小客户", "level": "普通", "credit": 10}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer", "type": "link", "options": {"target": "customers"}}), 201)
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "甲", "customer": vip["id"], "amount": 100, "status": "已付款", "items": [{"sku": "A1", "category": "T恤"}]},
        {"customer_name": "乙", "customer": plain["id"], "amount": 50, "status": "待付款"},
        {"customer_name": "丙", "customer": plain["id"], "amount": 70, "status": "已付款"}]}), 201)
    return owner


# -- filters and sorts through a link into a table the caller cannot read ------------------

def test_owner_filters_and_sorts_through_links(shop):
    owner = shop
    assert _names(owner, {"field": "customer.level", "op": "=", "value": "VIP"}) == ["甲"]
    assert _names(owner, {"field": "customer.credit", "op": ">", "value": 100}) == ["甲"]
    assert _names(owner, sort="-customer.credit,customer_name") == ["甲", "丙", "乙"]
    assert _names(owner, {"field": "items.category", "op": "=", "value": "T恤"}) == ["甲"]


def test_a_filter_cannot_step_into_a_table_the_member_cannot_read(shop, make_member):
    owner = shop
    _permissions(owner, "customers", {"member": {"access": "none"}})
    member = make_member("member")
    assert _names(member) == ["甲", "乙", "丙"]  # the orders themselves are readable
    assert _names(member, {"field": "items.category", "op": "=", "value": "T恤"}) == ["甲"]  # sub-tables follow orders
    # whatever the value, the same refusal: nothing to tell matching from not matching
    for value in (900, 10, 0):
        flt = {"field": "customer.credit", "op": "=", "value": value}
        assert _refused(member.get(_url("/tables/orders/records", flt))) == "unknown field 'credit'"
    # a field that does not exist there answers the same, without listing the table's fields
    msg = _refused(member.get(_url("/tables/orders/records", {"field": "customer.nope", "op": "is_empty"})))
    assert msg == "unknown field 'nope'"
    # every way in: query body, nested groups, views, aggregates, exports
    flt = {"or": [{"field": "status", "op": "=", "value": "待付款"}, {"field": "customer.level", "op": "=", "value": "VIP"}]}
    _refused(member.post("/tables/orders/records/query", json={"filter": flt}))
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "all", "type": "grid"}), 201)
    _refused(member.get(_url("/tables/orders/views/all/records", flt)))
    _refused(member.post("/tables/orders/aggregate", json={"filter": flt}))
    _refused(member.get(_url("/tables/orders/export", flt) + "&format=csv"))
    # the owner's same filter still works
    assert _names(owner, flt) == ["甲", "乙"]


def test_a_filter_cannot_use_a_field_hidden_in_the_linked_table(shop, make_member):
    owner = shop
    _permissions(owner, "customers", {"member": {"fields": {"credit": "hidden"}}})
    member = make_member("member")
    assert _names(member, {"field": "customer.level", "op": "=", "value": "VIP"}) == ["甲"]  # readable fields still work
    for value in (900, 10):
        assert _refused(member.get(_url("/tables/orders/records", {"field": "customer.credit", "op": ">=", "value": value}))) \
            == "unknown field 'credit'"
    r = member.post("/tables/orders/aggregate", json={"filter": {"field": "customer.credit", "op": ">", "value": 100}})
    assert _refused(r) == "unknown field 'credit'"


def test_an_unknown_field_error_does_not_list_hidden_fields(shop, make_member):
    owner = shop
    _permissions(owner, "orders", {"member": {"fields": {"phone": "hidden"}}})
    _permissions(owner, "customers", {"member": {"fields": {"credit": "hidden"}}})
    member = make_member("member")
    for resp in (member.get(_url("/tables/orders/records", {"field": "nope", "op": "is_empty"})),
                 member.get(_url("/tables/orders/records", {"field": "customer.nope", "op": "is_empty"})),
                 member.get(_url("/tables/orders/records", sort="customer.nope")),
                 member.post("/tables/orders/aggregate", json={"group_by": [{"field": "nope"}]}),
                 member.post("/tables/orders/aggregate", json={"metrics": [{"fn": "max", "field": "nope"}]})):
        msg = _refused(resp)
        assert "phone" not in msg and "credit" not in msg, msg
    # the list still helps: it names the fields the member may use
    assert "customer_name" in _refused(member.get(_url("/tables/orders/records", {"field": "nope", "op": "is_empty"})))


def test_a_sort_cannot_use_a_hidden_linked_field_or_an_unreadable_table(shop, make_member):
    owner = shop
    _permissions(owner, "customers", {"member": {"fields": {"credit": "hidden"}}})
    member = make_member("member")
    assert _names(member, sort="customer.name,customer_name") == ["甲", "丙", "乙"]  # 大客户 < 小客户
    assert _refused(member.get("/tables/orders/records?sort=customer.credit")) == "unknown field 'credit'"
    _refused(member.post("/tables/orders/records/query", json={"sorts": [{"field": "customer.credit", "direction": "desc"}]}))
    _permissions(owner, "customers", {"member": {"access": "none"}})
    assert _refused(member.get("/tables/orders/records?sort=customer.name")) == "unknown field 'name'"
    assert _names(owner, sort="-customer.credit,customer_name") == ["甲", "丙", "乙"]


def test_a_row_scope_may_go_through_a_table_the_role_cannot_read(shop, make_member):
    """The scope is the builder's condition, not a probe of the member's: it applies."""
    owner = shop
    _permissions(owner, "customers", {"member": {"access": "none"}})
    _permissions(owner, "orders", {"member": {"rows": {"field": "customer.level", "op": "=", "value": "VIP"}}})
    member = make_member("member")
    assert _names(member) == ["甲"]
    _refused(member.get(_url("/tables/orders/records", {"field": "customer.level", "op": "=", "value": "VIP"})))


def test_a_rollup_filter_through_an_unreadable_table_still_counts_a_members_write(owner, orders, make_member):
    """A rollup's filter is the builder's definition of a value stored for everyone: a
    member's write recomputes it whatever the member may read."""
    owner.ok(owner.post("/tables", json={"api_name": "products", "fields": [{"api_name": "name", "type": "text"},
                                                                           {"api_name": "cost", "type": "currency"}]}), 201)
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [{"api_name": "name", "type": "text"}]}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer", "type": "link", "options": {"target": "customers"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "product", "type": "link", "options": {"target": "products"}}), 201)
    owner.ok(owner.post("/tables/customers/fields", json={"api_name": "orders", "type": "link", "options": {
        "target": "orders", "relationship": "one_to_many", "via": "customer"}}), 201)
    owner.ok(owner.post("/tables/customers/fields", json={"api_name": "costly", "type": "rollup", "options": {
        "through": "orders", "field": "amount", "fn": "sum", "filter": {"field": "product.cost", "op": ">", "value": 10}}}), 201)
    cheap = owner.ok(owner.post("/tables/products/records", json={"name": "袜子", "cost": 2}), 201)
    dear = owner.ok(owner.post("/tables/products/records", json={"name": "大衣", "cost": 300}), 201)
    c = owner.ok(owner.post("/tables/customers/records", json={"name": "王"}), 201)
    _permissions(owner, "products", {"member": {"access": "none"}})
    member = make_member("member")
    for p, amount in ((cheap, 5), (dear, 500)):
        member.ok(member.post("/tables/orders/records", json={"customer": c["id"], "product": p["id"], "amount": amount}), 201)
    assert owner.ok(owner.get(f"/tables/customers/records/{c['id']}"))["costly"] == 500
    _refused(member.get(_url("/tables/orders/records", {"field": "product.cost", "op": ">", "value": 10})))


# -- aggregates with a view ----------------------------------------------------------------

def test_an_aggregate_over_a_view_checks_the_views_roles(shop, make_member):
    owner = shop
    paid = {"field": "status", "op": "=", "value": "已付款"}
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "finance", "type": "grid", "filter": paid, "roles": ["admin"]}), 201)
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "team", "type": "grid", "filter": paid, "roles": ["member"]}), 201)
    member, admin = make_member("member"), make_member("admin")
    for ref in ("finance", owner.ok(owner.get("/tables/orders/views/finance"))["view"]["id"], "nope"):
        r = member.post("/tables/orders/aggregate", json={"view": ref, "metrics": [{"fn": "sum", "field": "amount"}]})
        assert r.status_code == 404, r.get_data(as_text=True)
        assert "170" not in r.get_data(as_text=True)
    assert admin.ok(admin.post("/tables/orders/aggregate", json={"view": "finance", "metrics": [{"fn": "sum", "field": "amount"}]}))["rows"] \
        == [{"sum_amount": 170}]
    assert member.ok(member.post("/tables/orders/aggregate", json={"view": "team"}))["rows"] == [{"count": 2}]
    r = member.post("/tables/orders/aggregate", json={"view": {"api_name": "team"}})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/view"


def test_an_aggregate_cannot_group_by_a_linked_field(shop, make_member):
    _permissions(shop, "orders", {"member": {"fields": {"phone": "hidden"}}})
    member = make_member("member")
    r = member.post("/tables/orders/aggregate", json={"group_by": [{"field": "customer.credit"}]})
    assert r.status_code == 400 and "phone" not in r.get_data(as_text=True)


# -- run logs of a record ------------------------------------------------------------------

@pytest.fixture
def costed(owner, orders):
    """orders with a cost hidden from members, set by a rule from the amount."""
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "cost", "type": "currency"}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "note", "type": "text"}), 201)
    _permissions(owner, "orders", {"member": {"fields": {"cost": "hidden"}}})
    owner.ok(owner.post("/rules", json={
        "api_name": "costing", "table": "orders", "trigger": {"type": "record_created"},
        "actions": [{"type": "update_record", "values": {"cost": "amount * 0.37", "note": "'核算完成'"}}]}), 201)
    return owner


def test_run_logs_keep_hidden_values_from_roles_below_builder(costed, make_member):
    owner = costed
    member = make_member("member")
    rec = member.ok(member.post("/tables/orders/records", json={"customer_name": "甲", "amount": 1234}), 201)
    assert "cost" not in rec and rec["note"] == "核算完成"
    full = owner.ok(owner.get(f"/tables/orders/records/{rec['id']}/runs"))["runs"]
    assert full[0]["status"] == "ok" and full[0]["actions"][0]["changed"]["cost"] == pytest.approx(456.58)
    builder = make_member("builder")
    assert builder.ok(builder.get(f"/tables/orders/records/{rec['id']}/runs"))["runs"][0]["actions"] == full[0]["actions"]
    resp = member.get(f"/tables/orders/records/{rec['id']}/runs")
    runs = member.ok(resp)["runs"]
    assert [(r["rule_id"], r["status"], r["at"]) for r in runs] == [(r["rule_id"], r["status"], r["at"]) for r in full]
    assert runs[0]["actions"] == [{"type": "update_record", "ok": True}] and runs[0]["summary"] is True
    text = resp.get_data(as_text=True)
    assert "456.58" not in text and "cost" not in text
    # a record the member cannot read has no run log for them either
    _permissions(owner, "orders", {"member": {"access": "none"}})
    assert member.get(f"/tables/orders/records/{rec['id']}/runs").status_code == 403


def test_run_log_errors_are_summarised_below_builder(owner, orders, make_member):
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "cost", "type": "currency"}), 201)
    _permissions(owner, "orders", {"member": {"fields": {"cost": "hidden"}}})
    owner.ok(owner.post("/rules", json={
        "api_name": "check_cost", "table": "orders", "trigger": {"type": "record_updated"},
        "actions": [{"type": "update_records", "table": "orders",
                     "filter": {"field": "id", "op": "=", "value": {"$expr": "TEXT(cost) + '元'"}},
                     "values": {"status": "'异常中'"}}]}), 201)
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "甲", "cost": 987.65}), 201)
    member = make_member("member")
    member.ok(member.patch(f"/tables/orders/records/{rec['id']}", json={"customer_name": "乙"}))
    full = owner.ok(owner.get(f"/tables/orders/records/{rec['id']}/runs"))["runs"]
    assert full[0]["status"] == "error" and "987.65" in full[0]["error"], full
    resp = member.get(f"/tables/orders/records/{rec['id']}/runs")
    run = member.ok(resp)["runs"][0]
    assert run["status"] == "error" and run["error"] and run["actions"] == [{"type": "update_records", "ok": False}]
    assert "987.65" not in resp.get_data(as_text=True)

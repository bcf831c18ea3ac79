"""Who may do what: tenant roles, then per-table access, field rules and row scopes.

Roles rank owner > admin > builder > member > viewer. A table's ``permissions`` can lower a
role's access (none / read / write), hide, lock or mask fields, and limit the rows a role
sees with a filter that may use ``$me`` and ``$user.<attribute>`` (membership attributes).
"""
from __future__ import annotations

import csv
import io
import json

import pytest

NEW_TABLE = {"api_name": "notes", "fields": [{"api_name": "text", "type": "text"}]}


def _order(owner, **values) -> dict:
    return owner.ok(owner.post("/tables/orders/records", json=values), 201)


def _permissions(owner, permissions: dict):
    return owner.ok(owner.patch("/tables/orders", json={"permissions": permissions}))


def _csv(resp) -> list[list[str]]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))


# -- tenant roles --------------------------------------------------------------------------

def test_viewer_reads_but_cannot_change_records_or_tables(owner, make_member, orders):
    rec = _order(owner, customer_name="张三")
    viewer = make_member("viewer")
    assert viewer.ok(viewer.get("/tables/orders/records"))["records"][0]["customer_name"] == "张三"
    assert viewer.ok(viewer.get(f"/tables/orders/records/{rec['id']}"))["id"] == rec["id"]
    assert viewer.ok(viewer.post("/tables/orders/aggregate", json={}))["rows"] == [{"count": 1}]
    for r in (viewer.post("/tables/orders/records", json={"customer_name": "李四"}),
              viewer.patch(f"/tables/orders/records/{rec['id']}", json={"customer_name": "李四"}),
              viewer.delete(f"/tables/orders/records/{rec['id']}"),
              viewer.post("/tables", json=NEW_TABLE),
              viewer.post("/tables/orders/fields", json={"api_name": "note", "type": "text"}),
              viewer.post("/tables/orders/views", json={"api_name": "mine", "type": "grid"})):
        assert r.status_code == 403, r.get_data(as_text=True)
        assert r.get_json()["error"]["code"] == "forbidden"
    owner.ok(owner.delete(f"/tables/orders/records/{rec['id']}"))
    assert viewer.post(f"/tables/orders/records/{rec['id']}/restore").status_code == 403
    assert owner.ok(owner.get(f"/tables/orders/records/{rec['id']}?deleted=include"))["customer_name"] == "张三"


def test_a_table_cannot_give_a_viewer_write_access(owner, make_member, orders):
    _permissions(owner, {"viewer": {"access": "write"}})
    viewer = make_member("viewer")
    assert viewer.post("/tables/orders/records", json={"customer_name": "李四"}).status_code == 403


def test_member_writes_records_but_cannot_define_tables(owner, make_member, orders):
    member = make_member("member")
    rec = member.ok(member.post("/tables/orders/records", json={"customer_name": "李四"}), 201)
    member.ok(member.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已付款"}))
    member.ok(member.delete(f"/tables/orders/records/{rec['id']}"))
    for r in (member.post("/tables", json=NEW_TABLE),
              member.patch("/tables/orders", json={"label": "我的订单"}),
              member.delete("/tables/orders"),
              member.post("/tables/orders/fields", json={"api_name": "note", "type": "text"}),
              member.delete("/tables/orders/fields/phone"),
              member.post("/tables/orders/views", json={"api_name": "mine", "type": "grid"}),
              member.post("/dashboards", json={"api_name": "d", "widgets": []})):
        assert r.status_code == 403, r.get_data(as_text=True)
    assert [t["api_name"] for t in owner.ok(owner.get("/tables"))["tables"]] == ["orders", "orders_items"]


def test_builder_defines_tables_but_cannot_manage_members(owner, make_member, orders):
    builder = make_member("builder")
    builder.ok(builder.post("/tables", json=NEW_TABLE), 201)
    builder.ok(builder.post("/tables/orders/fields", json={"api_name": "note", "type": "text"}), 201)
    builder.ok(builder.post("/tables/orders/views", json={"api_name": "paid", "type": "grid"}), 201)
    assert builder.post("/members", json={"email": "new@acme.test", "role": "member"}).status_code == 403
    members = builder.ok(builder.get("/members"))["members"]
    assert builder.patch(f"/members/{members[0]['id']}", json={"role": "viewer"}).status_code == 403
    assert builder.delete(f"/members/{members[0]['id']}").status_code == 403
    assert builder.get("/audit").status_code == 403
    assert builder.patch("", json={"name": "改名"}).status_code == 403


def test_admin_manages_members_but_only_an_owner_adds_or_changes_an_owner(owner, make_member):
    admin = make_member("admin")
    added = admin.ok(admin.post("/members", json={"email": "new@acme.test", "role": "member",
                                                  "attributes": {"region": "华东"}}), 201)["member"]
    assert added["role"] == "member" and added["attributes"] == {"region": "华东"}
    admin.ok(admin.patch(f"/members/{added['id']}", json={"role": "builder"}))
    r = admin.post("/members", json={"email": "boss@acme.test", "role": "owner"})
    assert r.status_code == 403
    assert admin.patch(f"/members/{added['id']}", json={"role": "owner"}).status_code == 403
    owner_id = owner.ok(owner.get("~/auth/me"))["user"]["id"]
    assert admin.patch(f"/members/{owner_id}", json={"role": "viewer"}).status_code == 403
    assert admin.delete(f"/members/{owner_id}").status_code == 403
    roles = {m["email"]: m["role"] for m in owner.ok(owner.get("/members"))["members"]}
    assert roles["owner@acme.test"] == "owner" and roles["new@acme.test"] == "builder" and "boss@acme.test" not in roles
    # the owner can
    owner.ok(owner.post("/members", json={"email": "boss@acme.test", "role": "owner"}), 201)
    admin.ok(admin.delete(f"/members/{added['id']}"))
    assert "new@acme.test" not in {m["email"] for m in owner.ok(owner.get("/members"))["members"]}


def test_member_requests_are_checked(owner):
    assert owner.post("/members", json={"email": "not-an-email"}).get_json()["error"]["errors"][0]["pointer"] == "/email"
    assert owner.post("/members", json={"email": "a@acme.test", "role": "boss"}).get_json()["error"]["errors"][0]["pointer"] == "/role"
    owner.ok(owner.post("/members", json={"email": "a@acme.test"}), 201)
    assert owner.post("/members", json={"email": "a@acme.test"}).status_code == 409


# -- table access --------------------------------------------------------------------------

def test_access_none_hides_the_table_and_refuses_its_records(owner, make_member, orders):
    rec = _order(owner, customer_name="张三")
    _permissions(owner, {"member": {"access": "none"}})
    member = make_member("member")
    assert "orders" not in [t["api_name"] for t in member.ok(member.get("/tables"))["tables"]]
    for r in (member.get("/tables/orders"),
              member.get("/tables/orders/records"),
              member.get(f"/tables/orders/records/{rec['id']}"),
              member.get(f"/tables/orders/records/{rec['id']}/history"),
              member.post("/tables/orders/records/query", json={}),
              member.post("/tables/orders/records", json={"customer_name": "李四"}),
              member.patch(f"/tables/orders/records/{rec['id']}", json={"customer_name": "李四"}),
              member.delete(f"/tables/orders/records/{rec['id']}"),
              member.post("/tables/orders/aggregate", json={}),
              member.get("/tables/orders/export?format=csv")):
        assert r.status_code == 403, r.get_data(as_text=True)
        assert "张三" not in r.get_data(as_text=True)
    # the sub-table follows its parent
    assert member.get("/tables/orders_items/records").status_code == 403
    # other roles keep their default access
    viewer = make_member("viewer")
    assert viewer.ok(viewer.get("/tables/orders/records?count=true"))["total"] == 1


def test_access_read_lets_a_member_read_but_not_write(owner, make_member, orders):
    rec = _order(owner, customer_name="张三")
    _permissions(owner, {"member": {"access": "read"}})
    member = make_member("member")
    assert member.ok(member.get(f"/tables/orders/records/{rec['id']}"))["customer_name"] == "张三"
    assert member.post("/tables/orders/records", json={"customer_name": "李四"}).status_code == 403
    assert member.patch(f"/tables/orders/records/{rec['id']}", json={"customer_name": "李四"}).status_code == 403


def test_permissions_must_name_real_fields_and_valid_roles(owner, orders):
    r = owner.patch("/tables/orders", json={"permissions": {"member": {"fields": {"nope": "hidden"}}}})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/permissions/member/fields/nope"
    r = owner.patch("/tables/orders", json={"permissions": {"member": {"access": "everything"}}})
    assert r.status_code == 400
    r = owner.patch("/tables/orders", json={"permissions": {"member": {"rows": {"field": "region", "op": "=="}}}})
    assert r.status_code == 400


# -- field rules ---------------------------------------------------------------------------

@pytest.fixture
def hidden_phone(owner, make_member, orders):
    """Two orders with phone numbers; the phone field is hidden from members."""
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "张三", "phone": "13812345678", "amount": 100, "status": "已付款"},
        {"customer_name": "李四", "phone": "13987654321", "amount": 50, "status": "待付款"}]}), 201)
    _permissions(owner, {"member": {"fields": {"phone": "hidden"}}})
    return make_member("member")


def test_a_hidden_field_is_left_out_of_records_and_the_table(hidden_phone):
    member = hidden_phone
    page = member.ok(member.get("/tables/orders/records?expand=true"))
    assert [r["customer_name"] for r in page["records"]] == ["张三", "李四"]
    assert all("phone" not in r for r in page["records"])
    one = member.ok(member.get(f"/tables/orders/records/{page['records'][0]['id']}?fields=phone,customer_name"))
    assert "phone" not in one
    assert "phone" not in [f["api_name"] for f in member.ok(member.get("/tables/orders"))["table"]["fields"]]
    listed = next(t for t in member.ok(member.get("/tables"))["tables"] if t["api_name"] == "orders")
    assert "phone" not in [f["api_name"] for f in listed["fields"]]
    assert "13812345678" not in member.get("/tables/orders/records?fields=phone").get_data(as_text=True)


def test_a_hidden_field_cannot_be_filtered_sorted_searched_or_aggregated(hidden_phone):
    member = hidden_phone
    flt = json.dumps({"field": "phone", "op": "=", "value": "13812345678"})
    assert member.get(f"/tables/orders/records?filter={flt}").status_code == 400  # no probing by filter
    assert member.get("/tables/orders/records?sort=phone").status_code == 400
    assert member.ok(member.get("/tables/orders/records?count=true&q=13812345678"))["total"] == 0
    for spec in ({"group_by": [{"field": "phone"}]},
                 {"metrics": [{"fn": "count_distinct", "field": "phone"}]},
                 {"filter": {"field": "phone", "op": "contains", "value": "138"}}):
        r = member.post("/tables/orders/aggregate", json=spec)
        assert r.status_code == 400, (spec, r.get_data(as_text=True))
        assert "13812345678" not in r.get_data(as_text=True)


def test_a_hidden_field_cannot_be_written(hidden_phone):
    member = hidden_phone
    r = member.post("/tables/orders/records", json={"customer_name": "王五", "phone": "13700000000"})
    assert r.status_code == 400
    err = r.get_json()["error"]["errors"][0]
    assert err["pointer"] == "/phone" and "phone" not in err["message"].split("fields:")[-1]


def test_a_hidden_field_is_left_out_of_history(owner, hidden_phone):
    member = hidden_phone
    rec = member.ok(member.get("/tables/orders/records"))["records"][0]
    owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"phone": "13811112222", "status": "已发货"}))
    history = member.ok(member.get(f"/tables/orders/records/{rec['id']}/history"))["history"]
    assert [h["action"] for h in history] == ["update", "create"]
    assert history[0]["changes"]["status"] == ["已付款", "已发货"]
    text = json.dumps(history, ensure_ascii=False)
    assert "1381" not in text and "phone" not in text
    assert "13811112222" in json.dumps(owner.ok(owner.get(f"/tables/orders/records/{rec['id']}/history")))


def test_history_of_an_update_lists_only_the_fields_that_changed(owner, orders):
    rec = _order(owner, customer_name="张三", items=[{"sku": "A1", "qty": 1}])
    owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已付款"}))
    history = owner.ok(owner.get(f"/tables/orders/records/{rec['id']}/history"))["history"]
    assert history[0]["changes"] == {"status": ["待付款", "已付款"]}


def test_a_hidden_field_is_left_out_of_the_export(hidden_phone):
    rows = _csv(hidden_phone.get("/tables/orders/export?format=csv&header=api_name"))
    assert "phone" not in rows[0] and "customer_name" in rows[0]
    assert len(rows) == 3
    assert "13812345678" not in str(rows)
    # asking for the column explicitly does not bring it back
    r = hidden_phone.get("/tables/orders/export?format=csv&header=api_name&fields=customer_name,phone")
    assert r.status_code == 400 or "13812345678" not in r.get_data(as_text=True)


def test_a_read_only_field_is_shown_but_writing_it_points_at_the_field(owner, make_member, orders):
    rec = _order(owner, customer_name="张三", phone="13812345678")
    _permissions(owner, {"member": {"fields": {"phone": "read_only"}}})
    member = make_member("member")
    assert member.ok(member.get(f"/tables/orders/records/{rec['id']}"))["phone"] == "13812345678"
    r = member.patch(f"/tables/orders/records/{rec['id']}", json={"phone": "13700000000"})
    assert r.status_code == 400
    assert r.get_json()["error"]["errors"] == [
        {"pointer": "/phone", "message": "you may not change 'phone'", "message_zh": "你没有修改 'phone' 的权限", "code": "read_only"}]
    r = member.post("/tables/orders/records", json={"records": [{"customer_name": "李四"}, {"phone": "13700000000"}]})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/records/1/phone"
    member.ok(member.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已付款"}))  # other fields are fine
    assert owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))["phone"] == "13812345678"
    owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"phone": "13700000000"}))  # not for the owner


@pytest.fixture
def masked_phone(owner, make_member, orders):
    rec = _order(owner, customer_name="张三", phone="13812345678")
    _permissions(owner, {"member": {"fields": {"phone": "masked"}}})
    return rec, make_member("member")


def test_a_masked_phone_shows_only_its_ends(owner, masked_phone):
    rec, member = masked_phone
    assert member.ok(member.get(f"/tables/orders/records/{rec['id']}"))["phone"] == "138****5678"
    assert member.ok(member.get("/tables/orders/records"))["records"][0]["phone"] == "138****5678"
    assert owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))["phone"] == "13812345678"
    updated = member.ok(member.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已付款"}))
    assert updated["phone"] == "138****5678"
    rows = _csv(member.get("/tables/orders/export?format=csv&header=api_name"))
    assert rows[1][rows[0].index("phone")] == "138****5678"


def test_a_masked_phone_stays_masked_in_a_conflict_reply(owner, masked_phone):
    rec, member = masked_phone
    owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已付款"}))
    r = member.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已发货", "version": 1})
    assert r.status_code == 409
    assert r.get_json()["error"]["current"]["phone"] == "138****5678"


def test_a_masked_phone_stays_masked_in_history(owner, masked_phone):
    rec, member = masked_phone
    owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"phone": "13811112222"}))
    text = json.dumps(member.ok(member.get(f"/tables/orders/records/{rec['id']}/history")), ensure_ascii=False)
    assert "13812345678" not in text and "13811112222" not in text


# -- row scopes ----------------------------------------------------------------------------

@pytest.fixture
def regions(owner, make_member, orders):
    """Five orders in two regions; members see only the rows of their own region."""
    owner.ok(owner.post("/tables/orders/fields", json={
        "api_name": "region", "type": "single_select",
        "options": {"choices": [{"label": "华东"}, {"label": "华北"}, {"label": "华南"}]}}), 201)
    recs = owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "上海客户", "region": "华东", "amount": 100, "status": "已付款"},
        {"customer_name": "杭州客户", "region": "华东", "amount": 50, "status": "待付款"},
        {"customer_name": "南京客户", "region": "华东", "amount": 25, "status": "已付款"},
        {"customer_name": "北京客户", "region": "华北", "amount": 1000, "status": "已付款"},
        {"customer_name": "天津客户", "region": "华北", "amount": 2000, "status": "待付款"},
    ]}), 201)["records"]
    _permissions(owner, {"member": {"rows": {"field": "region", "op": "=", "value": "$user.region"}}})
    east = [r for r in recs if r["region"] == "华东"]
    north = [r for r in recs if r["region"] == "华北"]
    return make_member("member", attributes={"region": "华东"}), east, north


def test_a_row_scope_limits_lists_counts_and_searches(regions):
    member, east, north = regions
    page = member.ok(member.get("/tables/orders/records?count=true"))
    assert page["total"] == 3
    assert {r["region"] for r in page["records"]} == {"华东"}
    q = member.ok(member.post("/tables/orders/records/query", json={"filter": {"field": "amount", "op": ">", "value": 10},
                                                                    "count": True}))
    assert q["total"] == 3
    assert member.ok(member.get("/tables/orders/records?count=true&q=北京"))["total"] == 0
    paid = member.ok(member.get("/tables/orders/records?count=true&filter=" + json.dumps({"field": "status", "op": "=", "value": "已付款"})))
    assert paid["total"] == 2
    rows = _csv(member.get("/tables/orders/export?format=csv&header=api_name"))
    assert sorted(r[rows[0].index("customer_name")] for r in rows[1:]) == ["上海客户", "南京客户", "杭州客户"]


def test_a_row_scope_hides_other_rows_behind_404(regions):
    member, east, north = regions
    assert member.ok(member.get(f"/tables/orders/records/{east[0]['id']}"))["customer_name"] == "上海客户"
    for rec in north:
        for r in (member.get(f"/tables/orders/records/{rec['id']}"),
                  member.get(f"/tables/orders/records/{rec['id']}/history"),
                  member.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已取消"}),
                  member.delete(f"/tables/orders/records/{rec['id']}")):
            assert r.status_code == 404, r.get_data(as_text=True)
            assert "北京" not in r.get_data(as_text=True) and "天津" not in r.get_data(as_text=True)


def test_a_row_scope_keeps_other_rows_unchanged(owner, regions):
    member, east, north = regions
    member.patch(f"/tables/orders/records/{north[0]['id']}", json={"status": "已取消"})
    member.delete(f"/tables/orders/records/{north[1]['id']}")
    after = {r["id"]: r for r in owner.ok(owner.get("/tables/orders/records"))["records"]}
    assert after[north[0]["id"]]["status"] == "已付款" and after[north[0]["id"]]["version"] == 1
    assert north[1]["id"] in after


def test_a_row_scope_limits_aggregates(owner, regions):
    member, east, north = regions
    agg = member.ok(member.post("/tables/orders/aggregate", json={
        "group_by": [{"field": "region"}], "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}))
    assert agg["rows"] == [{"region": "华东", "count": 3, "sum_amount": 175}]
    total = member.ok(member.post("/tables/orders/aggregate", json={"metrics": [{"fn": "max", "field": "amount"}]}))
    assert total["rows"] == [{"max_amount": 100}]
    everything = owner.ok(owner.post("/tables/orders/aggregate", json={"metrics": [{"fn": "count"}]}))
    assert everything["rows"] == [{"count": 5}]


def test_a_row_scope_applies_inside_views_and_dashboards(owner, regions):
    member, east, north = regions
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "paid", "type": "grid",
                                                      "filter": {"field": "status", "op": "=", "value": "已付款"}}), 201)
    view = member.ok(member.get("/tables/orders/views/paid/records?count=true"))
    assert [r["customer_name"] for r in view["records"]] == ["上海客户", "南京客户"]
    owner.ok(owner.post("/dashboards", json={"api_name": "sales", "widgets": [
        {"id": "total", "type": "number", "table": "orders", "metrics": [{"fn": "sum", "field": "amount"}]}]}), 201)
    data = member.ok(member.get("/dashboards/sales/data"))
    assert data["widgets"][0]["rows"] == [{"sum_amount": 175}]


def test_a_member_without_the_attribute_sees_no_scoped_rows(make_member, regions):
    stranger = make_member("member")  # no region attribute
    assert stranger.ok(stranger.get("/tables/orders/records?count=true"))["total"] == 0


def test_a_row_scope_with_me_shows_each_member_their_own_records(owner, make_member, orders):
    _order(owner, customer_name="老板的")
    _permissions(owner, {"member": {"rows": {"field": "created_by", "op": "=", "value": "$me"}}})
    alice, bob = make_member("member"), make_member("member")
    a = alice.ok(alice.post("/tables/orders/records", json={"customer_name": "Alice 的"}), 201)
    bob.ok(bob.post("/tables/orders/records", json={"customer_name": "Bob 的"}), 201)
    assert [r["customer_name"] for r in alice.ok(alice.get("/tables/orders/records"))["records"]] == ["Alice 的"]
    assert [r["customer_name"] for r in bob.ok(bob.get("/tables/orders/records"))["records"]] == ["Bob 的"]
    assert bob.get(f"/tables/orders/records/{a['id']}").status_code == 404
    assert owner.ok(owner.get("/tables/orders/records?count=true"))["total"] == 3

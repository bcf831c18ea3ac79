"""POST …/tables/<t>/formula-preview: a formula checked and computed on one record, read-only,
within the caller's permissions and tenant."""
from __future__ import annotations

import pytest

PREVIEW = "/tables/orders/formula-preview"


@pytest.fixture
def shop(owner, orders):
    """Orders with items, a customers table linked from orders; returns the two order ids."""
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [
        {"api_name": "name", "type": "text"}, {"api_name": "credit", "type": "number"},
        {"api_name": "level", "type": "single_select", "options": {"choices": [{"label": "金牌"}, {"label": "普通"}]}}]}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer", "type": "link", "options": {"target": "customers"}}), 201)
    cust = owner.ok(owner.post("/tables/customers/records", json={"name": "张三", "credit": 900, "level": "金牌"}), 201)
    recs = owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "张三", "phone": "13812345678", "amount": 100, "paid": 40, "status": "已付款", "channel": "天猫",
         "customer": cust["id"], "created": "2026-11-20T09:30:00+08:00",
         "items": [{"sku": "A", "qty": 2, "unit_price": 10}, {"sku": "B", "qty": 1, "unit_price": 5.5}]},
        {"customer_name": "李四", "amount": 50, "paid": 0, "status": "待付款", "channel": "抖音"}]}), 201)["records"]
    return [r["id"] for r in recs]


def _counts(owner):
    """Records and history rows now: a preview must change neither."""
    page = owner.ok(owner.get("/tables/orders/records?count=true&expand=true"))
    return page["total"], [(r["id"], r["version"]) for r in page["records"]]


def test_a_formula_is_computed_on_the_first_record_by_default_and_nothing_changes(owner, shop):
    before = _counts(owner)
    out = owner.ok(owner.post(PREVIEW, json={"expression": "amount - paid"}))
    assert out["value"] == 60 and out["type"] == "number" and out["record_id"] == shop[0]
    assert out["references"] == ["amount", "paid"]
    out = owner.ok(owner.post(PREVIEW, json={"expression": "amount - paid", "record_id": shop[1]}))
    assert out["value"] == 50 and out["record_id"] == shop[1]
    assert _counts(owner) == before
    assert owner.ok(owner.get(f"/tables/orders/records/{shop[0]}/history"))["history"][0]["version"] == 1


def test_text_dates_sub_tables_and_links_are_reached_like_computed_fields(owner, shop):
    rid = shop[0]
    cases = {
        'CONCAT(customer_name, " / ", status)': ("张三 / 已付款", "text"),
        "SUM(items.qty)": (3, "number"),
        "customer.level": ("金牌", "any"),
        "paid > 0 and channel == '天猫'": (True, "boolean"),
        "DATEADD(created, 1, 'days')": ("2026-11-21T09:30:00+08:00", "datetime"),
    }
    for expression, (value, _kind) in cases.items():
        out = owner.ok(owner.post(PREVIEW, json={"expression": expression, "record_id": rid}))
        assert out["value"] == value, (expression, out)
    assert owner.ok(owner.post(PREVIEW, json={"expression": "paid > 0", "record_id": rid}))["type"] == "boolean"


def test_a_wrong_formula_gets_the_checkers_message_and_position(owner, shop):
    r = owner.post(PREVIEW, json={"expression": "amount + amout"})
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == "bad_expression"
    detail = err["errors"][0]
    assert detail["pointer"] == "/expression" and detail["expression_code"] == "unknown_field"
    assert (detail["line"], detail["col"]) == (1, 9) and "amout" in detail["message"] and "amount" in detail.get("suggestion", "amount")
    r = owner.post(PREVIEW, json={"expression": "(amount + 1"})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["expression_code"] == "syntax"


def test_a_value_that_cannot_be_computed_for_this_record_is_explained_not_a_failure(owner, shop):
    assert owner.ok(owner.post(PREVIEW, json={"expression": "amount / paid", "record_id": shop[1]}))["value"] is None  # ÷0 is empty
    out = owner.ok(owner.post(PREVIEW, json={"expression": "ROUND(amount, customer_name)", "record_id": shop[1]}))
    assert out["value"] is None and out["error"]["code"] == "type_mismatch" and "ROUND" in out["error"]["message"]


def test_an_empty_table_gives_the_check_alone(owner, orders):
    out = owner.ok(owner.post(PREVIEW, json={"expression": "amount * 2"}))
    assert out == {"type": "number", "references": ["amount"], "record_id": None, "value": None, "empty": True}


@pytest.mark.parametrize("body, pointer", [
    ({}, "/expression"), ({"expression": "  "}, "/expression"), ({"expression": 3}, "/expression"),
    ({"expression": "1", "record_id": "x"}, "/record_id"), ({"expression": "1", "record_id": True}, "/record_id"),
    ({"expression": "1", "record_id": -4}, "/record_id"), ({"expression": "1", "limit": 2}, "/limit"),
])
def test_bad_requests_are_400_at_the_part_that_is_wrong(owner, shop, body, pointer):
    r = owner.post(PREVIEW, json=body)
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == pointer
    assert owner.post(PREVIEW, data="nope", headers={"Content-Type": "application/json"}).status_code == 400


def test_unknown_deleted_or_foreign_records_and_tables_are_404(owner, shop, platform, app):
    assert owner.post(PREVIEW, json={"expression": "amount", "record_id": 999999}).status_code == 404
    owner.ok(owner.delete(f"/tables/orders/records/{shop[1]}"))
    assert owner.post(PREVIEW, json={"expression": "amount", "record_id": shop[1]}).status_code == 404
    assert owner.post("/tables/nope/formula-preview", json={"expression": "1"}).status_code == 404
    # another tenant's owner cannot reach acme, nor acme's records through their own tenant
    from tests.conftest import login
    platform.create_user("other@b.test", "other-password")
    platform.create_tenant("bravo", "B", owner_email="other@b.test")
    other = login(app, "other@b.test", "other-password", "acme")
    assert other.post(PREVIEW, json={"expression": "amount"}).status_code == 404
    other.tenant = "bravo"
    assert other.post(PREVIEW, json={"expression": "amount", "record_id": shop[0]}).status_code == 404


def test_hidden_and_masked_fields_are_unknown_to_a_member(owner, shop, make_member):
    owner.ok(owner.patch("/tables/orders", json={"permissions": {"member": {"fields": {"phone": "hidden", "customer_name": "masked"}}}}))
    member = make_member("member")
    for expression in ("phone", "MID(phone, 4, 4)", "LEFT(customer_name, 1)"):
        r = member.post(PREVIEW, json={"expression": expression, "record_id": shop[0]})
        assert r.status_code == 400, expression
        body = r.get_data(as_text=True)
        assert r.get_json()["error"]["errors"][0]["expression_code"] == "unknown_field" and "1381234" not in body and "张" not in body
    assert member.ok(member.post(PREVIEW, json={"expression": "amount", "record_id": shop[0]}))["value"] == 100
    # the owner still sees everything
    assert owner.ok(owner.post(PREVIEW, json={"expression": "MID(phone, 4, 4)", "record_id": shop[0]}))["value"] == "1234"


def test_linked_tables_follow_their_own_permissions(owner, shop, make_member):
    member = make_member("member")
    owner.ok(owner.patch("/tables/customers", json={"permissions": {"member": {"fields": {"credit": "hidden"}}}}))
    assert member.ok(member.post(PREVIEW, json={"expression": "customer.name", "record_id": shop[0]}))["value"] == "张三"
    assert member.post(PREVIEW, json={"expression": "customer.credit", "record_id": shop[0]}).status_code == 400
    owner.ok(owner.patch("/tables/customers", json={"permissions": {"member": {"access": "none"}}}))
    assert member.post(PREVIEW, json={"expression": "customer.name", "record_id": shop[0]}).status_code == 400


def test_row_scopes_and_table_access_apply(owner, shop, make_member):
    owner.ok(owner.patch("/tables/orders", json={"permissions": {"member": {"rows": {"field": "channel", "op": "=", "value": "抖音"}}}}))
    member = make_member("member")
    assert member.post(PREVIEW, json={"expression": "amount", "record_id": shop[0]}).status_code == 404
    out = member.ok(member.post(PREVIEW, json={"expression": "amount"}))
    assert out["record_id"] == shop[1] and out["value"] == 50  # the first record *the member* may read
    owner.ok(owner.patch("/tables/orders", json={"permissions": {"member": {"access": "none"}}}))
    assert member.post(PREVIEW, json={"expression": "amount"}).status_code == 403
    viewer = make_member("viewer")
    assert viewer.ok(viewer.post(PREVIEW, json={"expression": "amount", "record_id": shop[0]}))["value"] == 100


def test_the_operation_is_described_in_the_openapi_document(owner):
    doc = owner.client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/tenants/{tenant}/tables/{table}/formula-preview"]["post"]
    assert "x-undocumented" not in op and op["requestBody"]["content"]["application/json"]["schema"]["required"] == ["expression"]

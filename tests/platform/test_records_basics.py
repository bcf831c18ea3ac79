"""Records through the REST API: what an operations team does with an orders table."""


def test_create_read_update_delete_restore(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={
        "channel": "抖音", "customer_name": "张三", "phone": "13812345678", "amount": "520.00", "paid": 0,
        "created": "2026-11-21 10:00", "items": [{"sku": "A1", "category": "连体衣", "qty": 2, "unit_price": 99.5}],
    }), 201)
    assert rec["order_no"].startswith("SO") and rec["order_no"].endswith("00001")
    assert rec["status"] == "待付款"  # the default
    assert rec["amount"] == 520.0
    assert rec["created"] == "2026-11-21T10:00:00+08:00"  # shown in the tenant's timezone
    assert [i["sku"] for i in rec["items"]] == ["A1"]
    assert rec["version"] == 1

    upd = owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已付款", "version": 1}))
    assert upd["status"] == "已付款" and upd["version"] == 2

    stale = owner.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已发货", "version": 1})
    assert stale.status_code == 409
    assert stale.get_json()["error"]["current"]["status"] == "已付款"

    owner.ok(owner.delete(f"/tables/orders/records/{rec['id']}"))
    assert owner.get(f"/tables/orders/records/{rec['id']}").status_code == 404
    owner.ok(owner.post(f"/tables/orders/records/{rec['id']}/restore"))
    assert owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))["status"] == "已付款"

    history = owner.ok(owner.get(f"/tables/orders/records/{rec['id']}/history"))["history"]
    assert [h["action"] for h in history] == ["restore", "delete", "update", "create"]
    assert history[2]["changes"]["status"] == ["待付款", "已付款"]


def test_bad_values_are_reported_with_pointers_and_nothing_is_saved(owner, orders):
    r = owner.post("/tables/orders/records", json={"records": [
        {"channel": "天猫", "amount": 10},
        {"channel": "京东", "amount": "abc", "nope": 1},
    ]})
    assert r.status_code == 400
    errs = r.get_json()["error"]["errors"]
    pointers = {e["pointer"] for e in errs}
    assert pointers == {"/records/1/channel", "/records/1/amount", "/records/1/nope"}
    assert any("天猫" in e["message"] for e in errs if e["pointer"] == "/records/1/channel")  # lists the options
    assert owner.ok(owner.get("/tables/orders/records?count=true"))["total"] == 0  # all-or-nothing


def test_batch_with_skip_invalid_saves_good_rows_and_reports_bad_ones(owner, orders):
    r = owner.ok(owner.post("/tables/orders/records?skip_invalid=true", json={"records": [
        {"channel": "天猫"}, {"channel": "火星"}, {"channel": "抖音"}]}), 201)
    assert len(r["created"]) == 2 and r["skipped"] == [1]
    assert r["errors"][0]["pointer"] == "/records/1/channel"


def test_sub_table_rows_are_added_updated_reordered_and_removed(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"items": [
        {"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}), 201)
    a, b = rec["items"]
    upd = owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"items": [
        {"id": b["id"], "qty": 5}, {"sku": "C", "qty": 1}]}))
    assert [(i["sku"], i["qty"]) for i in upd["items"]] == [("B", 5), ("C", 1)]
    bad = owner.patch(f"/tables/orders/records/{rec['id']}", json={"items": [{"qty": 1}]})
    assert bad.status_code == 400 and bad.get_json()["error"]["errors"][0]["pointer"] == "/items/0/sku"
    foreign = owner.patch(f"/tables/orders/records/{rec['id']}", json={"items": [{"id": 999999, "qty": 1}]})
    assert foreign.status_code == 400


def test_a_bad_sub_table_line_makes_only_its_record_skippable(owner, orders):
    r = owner.ok(owner.post("/tables/orders/records?skip_invalid=true", json={"records": [
        {"items": [{"qty": 1}]}, {"channel": "天猫", "items": [{"sku": "OK"}]}]}), 201)
    assert r["skipped"] == [0] and len(r["created"]) == 1
    assert r["errors"][0]["pointer"] == "/records/0/items/0/sku"


def test_routing_errors_and_bodies_answer_json(owner, app):
    r = owner.client.put("/api/v1/tenants/acme/tables")
    assert r.status_code == 405 and r.get_json()["error"]["code"] == "method_not_allowed"
    assert owner.client.get("/api/v1/nope").get_json()["error"]["code"] == "not_found"
    r = owner.client.post("/api/v1/tenants/acme/tables", data="{broken", content_type="application/json",
                          headers={"X-CSRF-Token": owner.csrf})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_json"
    big = "x" * (app.config["JSON_MAX_BYTES"] + 1)
    r = owner.client.post("/api/v1/tenants/acme/tables", data=big, content_type="application/json", headers={"X-CSRF-Token": owner.csrf})
    assert r.status_code == 413
    # public routes ignore a wrong token instead of refusing
    assert app.test_client().get("/api/v1/schemas", headers={"Authorization": "Bearer wrong"}).status_code == 200

"""Formula, lookup and rollup fields stay current inside the write's transaction."""


def test_order_total_follows_its_items(owner, orders):
    owner.ok(owner.post("/tables/orders_items/fields", json={
        "api_name": "subtotal", "type": "formula", "options": {"expression": "qty * unit_price", "result_type": "currency"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={
        "api_name": "total", "type": "rollup", "options": {"through": "items", "field": "subtotal", "fn": "sum", "result_type": "currency"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={
        "api_name": "lines", "type": "rollup", "options": {"through": "items", "fn": "count"}}), 201)
    rec = owner.ok(owner.post("/tables/orders/records", json={"items": [
        {"sku": "A", "qty": 2, "unit_price": 99.5}, {"sku": "B", "qty": 1, "unit_price": 10}]}), 201)
    assert rec["total"] == 209.0 and rec["lines"] == 2
    assert [i["subtotal"] for i in rec["items"]] == [199.0, 10.0]
    a = rec["items"][0]
    rec = owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"items": [{"id": a["id"], "qty": 3}]}))
    assert rec["total"] == 298.5 and rec["lines"] == 1  # B removed, A now 3 × 99.5
    # the child row edited through its own table also updates the parent
    owner.ok(owner.patch(f"/tables/orders_items/records/{a['id']}", json={"qty": 1}))
    assert owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))["total"] == 99.5
    # computed values filter and sort like any column
    page = owner.ok(owner.get('/tables/orders/records?filter={"field":"total","op":">","value":50}'))
    assert [r["id"] for r in page["records"]] == [rec["id"]]


def test_lookup_through_a_link_and_a_rollup_back(owner, orders):
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [
        {"api_name": "name", "type": "text"},
        {"api_name": "level", "type": "single_select", "options": {"choices": [{"label": "普通"}, {"label": "VIP"}]}}]}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer", "type": "link", "options": {"target": "customers"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer_level", "type": "lookup",
                                                      "options": {"through": "customer", "field": "level"}}), 201)
    owner.ok(owner.post("/tables/customers/fields", json={"api_name": "orders", "type": "link",
                                                         "options": {"target": "orders", "relationship": "one_to_many", "via": "customer"}}), 201)
    owner.ok(owner.post("/tables/customers/fields", json={"api_name": "spent", "type": "rollup",
                                                         "options": {"through": "orders", "field": "amount", "fn": "sum"}}), 201)
    c = owner.ok(owner.post("/tables/customers/records", json={"name": "王", "level": "普通"}), 201)
    o = owner.ok(owner.post("/tables/orders/records", json={"customer": c["id"], "amount": 300}), 201)
    assert o["customer_level"] == "普通"
    owner.ok(owner.post("/tables/orders/records", json={"customer": c["id"], "amount": 200}), 201)
    assert owner.ok(owner.get(f"/tables/customers/records/{c['id']}"))["spent"] == 500
    owner.ok(owner.patch(f"/tables/customers/records/{c['id']}", json={"level": "VIP"}))
    assert owner.ok(owner.get(f"/tables/orders/records/{o['id']}"))["customer_level"] == "VIP"  # pushed to linked orders


def test_formulas_are_checked_when_saved_and_existing_rows_are_recomputed(owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"records": [{"amount": 100, "paid": 40}, {"amount": 50}]}), 201)
    bad = owner.post("/tables/orders/fields", json={"api_name": "due", "type": "formula", "options": {"expression": "amount - payd"}})
    assert bad.status_code == 400
    err = bad.get_json()["error"]["errors"][0]
    assert err["pointer"] == "/options/expression" and "payd" in err["message"] and "column 10" in err["message"]
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "due", "type": "formula",
                                                      "options": {"expression": "amount - paid", "result_type": "currency"}}), 201)
    assert [r["due"] for r in owner.ok(owner.get("/tables/orders/records?sort=id"))["records"]] == [60.0, 50.0]
    owner.ok(owner.patch("/tables/orders/fields/due", json={"options": {"expression": "ROUND((amount - paid) / 3, 2)"}}))
    assert [r["due"] for r in owner.ok(owner.get("/tables/orders/records?sort=id"))["records"]] == [20.0, 16.67]


def test_formula_cycles_are_refused(owner, orders):
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "a", "type": "formula", "options": {"expression": "amount + 1"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "b", "type": "formula", "options": {"expression": "a + 1"}}), 201)
    r = owner.patch("/tables/orders/fields/a", json={"options": {"expression": "b + 1"}})
    assert r.status_code == 400 and "cycle" in r.get_json()["error"]["message"]

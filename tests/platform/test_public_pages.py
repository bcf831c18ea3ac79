"""The customer order-tracking page: phone + order no must both match; masked; rate-limited."""
import pytest

PAGE = {
    "slug": "track", "type": "record_lookup", "table": "orders", "title": {"zh-CN": "订单追踪", "en": "Track your order"},
    "match": [{"field": "phone", "label": "手机号", "normalise": "digits"}, {"field": "order_no", "label": "订单号", "normalise": "trim"}],
    "show": [{"field": "order_no"}, {"field": "status"}, {"field": "customer_name", "mask": "name"}, {"field": "phone"},
             {"field": "created", "countdown": True}],
    "timeline": {"field": "status"},
    "related": [{"table": "events", "via": "order", "fields": ["at", "text"], "sort": "-at"}],
    "rate_limit": {"per_address_per_hour": 20, "misses_per_value_per_hour": 3},
}


@pytest.fixture
def tracked(owner, orders):
    owner.ok(owner.post("/tables", json={"api_name": "events", "fields": [
        {"api_name": "order", "type": "link", "options": {"target": "orders"}}, {"api_name": "at", "type": "datetime"},
        {"api_name": "text", "type": "text"}, {"api_name": "secret", "type": "text"}]}), 201)
    a = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "张三丰", "phone": "13812345678", "amount": 99}), 201)
    b = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "李四", "phone": "13900000000"}), 201)
    owner.ok(owner.patch(f"/tables/orders/records/{a['id']}", json={"status": "已付款"}))
    owner.ok(owner.patch(f"/tables/orders/records/{a['id']}", json={"status": "已发货"}))
    owner.ok(owner.post("/tables/events/records", json={"order": a["id"], "at": "2026-11-21 12:00", "text": "已揽收 杭州", "secret": "x"}), 201)
    owner.ok(owner.post("/pages", json=PAGE), 201)
    return a, b


def test_both_values_must_match_and_personal_data_is_masked(app, tracked):
    a, b = tracked
    c = app.test_client()  # no login
    page = c.get("/api/v1/public/acme/track").get_json()
    assert [m["label"] for m in page["match"]] == ["手机号", "订单号"]
    r = c.post("/api/v1/public/acme/track/lookup", json={"values": {"phone": "138 1234 5678", "order_no": a["order_no"]}})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    shown = {f["field"]: f["value"] for f in body["fields"]}
    assert shown == {"order_no": a["order_no"], "status": "已发货", "customer_name": "张**", "phone": "138****5678", "created": None}
    assert [t["value"] for t in body["timeline"]] == ["待付款", "已付款", "已发货"]
    assert body["related"][0]["rows"] == [{"at": "2026-11-21T12:00:00+08:00", "text": "已揽收 杭州"}]
    assert "secret" not in r.get_data(as_text=True) and "amount" not in r.get_data(as_text=True)
    # another order's number with this phone, or this number with another phone: the same miss
    for values in ({"phone": "13812345678", "order_no": b["order_no"]}, {"phone": "13900000000", "order_no": a["order_no"]}):
        miss = c.post("/api/v1/public/acme/track/lookup", json={"values": values})
        assert miss.status_code == 404 and "李四" not in miss.get_data(as_text=True)


def test_guessing_is_rate_limited(app, tracked):
    a, _ = tracked
    c = app.test_client()
    codes = [c.post("/api/v1/public/acme/track/lookup", json={"values": {"phone": f"1380000{i:04d}", "order_no": a["order_no"]}}).status_code
             for i in range(5)]
    assert codes[:3] == [404, 404, 404] and codes[3] == 429
    r = c.post("/api/v1/public/acme/track/lookup", json={"values": {"phone": "13812345678", "order_no": a["order_no"]}})
    assert r.status_code == 429 and r.headers["Retry-After"]  # even the right answer waits now


def test_pages_of_unknown_tenants_or_disabled_pages_are_404_and_the_html_has_a_strict_csp(app, owner, tracked):
    c = app.test_client()
    assert c.get("/api/v1/public/nope/track").status_code == 404
    owner.ok(owner.patch("/pages/track", json={"enabled": False}))
    assert c.get("/api/v1/public/acme/track").status_code == 404
    html = c.get("/p/acme/track")
    assert html.status_code == 200 and "script-src 'self'" in html.headers["Content-Security-Policy"]
    assert c.get("/p-static/page.js").status_code == 200 and c.get("/p-static/../core.py").status_code == 404


def test_page_definitions_are_checked(owner, orders):
    bad = dict(PAGE, show=[{"field": "cost"}], related=[])
    r = owner.post("/pages", json=bad)
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/show/0/field"

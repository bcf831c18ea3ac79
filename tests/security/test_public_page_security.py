"""The public order-tracking page under attack: enumeration from many values and from one
address, data beyond the one order, masking by default, other tenants' pages.
(Functional tests: tests/platform/test_public_pages.py, whose fixture this reuses.)"""
from __future__ import annotations

import pytest

from tests.platform.test_public_pages import PAGE, tracked  # noqa: F401  (fixture)


def _lookup(c, values, addr="203.0.113.5", slug="track", tenant="acme"):
    return c.post(f"/api/v1/public/{tenant}/{slug}/lookup", json={"values": values}, environ_base={"REMOTE_ADDR": addr})


def test_one_address_cannot_sweep_order_numbers(app, tracked):
    a, _ = tracked
    c = app.test_client()
    codes = [_lookup(c, {"phone": "13812345678", "order_no": f"SO{i:013d}"}).status_code for i in range(30)]
    # per_address_per_hour = 20 in the page definition; guesses for many values hit it
    assert codes.count(404) <= 20 and codes[-1] == 429
    # the right answer from that address now waits too; another address is not blocked
    assert _lookup(c, {"phone": "13812345678", "order_no": a["order_no"]}).status_code == 429
    assert _lookup(c, {"phone": "13812345678", "order_no": a["order_no"]}, addr="198.51.100.1").status_code == 200


def test_many_addresses_guessing_one_order_are_stopped_by_the_per_value_limit(app, tracked):
    a, _ = tracked
    c = app.test_client()
    codes = [_lookup(c, {"phone": f"1390000{i:04d}", "order_no": a["order_no"]}, addr=f"10.0.{i}.1").status_code
             for i in range(6)]
    assert codes[:3] == [404] * 3 and set(codes[3:]) == {429}   # misses_per_value_per_hour = 3


def test_a_miss_says_nothing_about_which_value_was_wrong(app, tracked):
    a, b = tracked
    c = app.test_client()
    wrong_phone = _lookup(c, {"phone": "13900000001", "order_no": a["order_no"]}, addr="1.1.1.1")
    wrong_no = _lookup(c, {"phone": "13812345678", "order_no": "SO-NOPE"}, addr="1.1.1.2")
    assert wrong_phone.status_code == wrong_no.status_code == 404
    assert wrong_phone.get_json()["error"]["message"] == wrong_no.get_json()["error"]["message"]


def test_only_the_one_order_and_only_the_listed_fields_are_returned(app, owner, tracked):
    a, b = tracked
    c = app.test_client()
    r = _lookup(c, {"phone": "13812345678", "order_no": a["order_no"]})
    body = r.get_json()
    assert set(body) == {"title", "fields", "timeline", "related"}
    assert [f["field"] for f in body["fields"]] == [s["field"] for s in PAGE["show"]]
    text = r.get_data(as_text=True)
    for leak in ("李四", "13900000000", b["order_no"], "13812345678", "张三丰", "secret", '"amount"', '"id"', "tenant"):
        assert leak not in text, leak
    assert all(set(row) <= {"at", "text"} for rel in body["related"] for row in rel["rows"])


def test_filter_operators_and_wildcards_in_values_match_nothing(app, tracked):
    a, _ = tracked
    c = app.test_client()
    for values in ({"phone": "%", "order_no": "%"}, {"phone": {"op": "!=", "value": ""}, "order_no": a["order_no"]},
                   {"phone": ["13812345678"], "order_no": a["order_no"]}, {"phone": "1381234567*", "order_no": a["order_no"]},
                   {"phone": "13812345678", "order_no": a["order_no"][:-2] + "%"},
                   {"phone": "13812345678' OR '1'='1", "order_no": a["order_no"]}):
        r = _lookup(c, values, addr="192.0.2.44")
        assert r.status_code in (400, 404), (values, r.status_code)
        assert "张" not in r.get_data(as_text=True)


def test_masking_is_on_by_default_for_phones(app, owner, tracked):
    a, _ = tracked
    page = dict(PAGE, slug="track2", show=[{"field": "phone"}, {"field": "order_no"}], related=[], timeline=None)
    page.pop("timeline")
    owner.ok(owner.post("/pages", json=page), 201)
    r = _lookup(app.test_client(), {"phone": "13812345678", "order_no": a["order_no"]}, slug="track2")
    shown = {f["field"]: f["value"] for f in r.get_json()["fields"]}
    assert shown["phone"] == "138****5678"


def test_another_tenants_slug_does_not_reach_this_page(app, platform, tracked):
    a, _ = tracked
    u = platform.create_user("o@beta.test", "beta-password")
    platform.create_tenant("beta", "Beta", owner_email=u.email)
    r = _lookup(app.test_client(), {"phone": "13812345678", "order_no": a["order_no"]}, tenant="beta")
    assert r.status_code == 404


def test_the_page_html_is_not_cached_and_not_frameable(app, tracked):
    r = app.test_client().get("/p/acme/track")
    assert r.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert "form-action 'none'" in r.headers["Content-Security-Policy"]

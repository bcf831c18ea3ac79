"""Filters, sorts, search and pages — all compiled to SQL."""
import json
from urllib.parse import quote

import pytest


@pytest.fixture
def shop(owner, orders):
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [
        {"api_name": "name", "type": "text"},
        {"api_name": "level", "type": "single_select", "options": {"choices": [{"label": "普通"}, {"label": "VIP"}]}}]}), 201)
    vip = owner.ok(owner.post("/tables/customers/records", json={"name": "王VIP", "level": "VIP"}), 201)
    plain = owner.ok(owner.post("/tables/customers/records", json={"name": "李普通", "level": "普通"}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer", "type": "link", "options": {"target": "customers"}}), 201)
    rows = [
        {"channel": "抖音", "amount": 520, "status": "已付款", "created": "2026-11-20 09:00", "customer": vip["id"], "tags": ["加急"],
         "items": [{"sku": "R1", "category": "连体衣", "qty": 1}], "customer_name": "王VIP", "address": "新疆乌鲁木齐市"},
        {"channel": "天猫", "amount": 100, "status": "已付款", "created": "2026-11-20 10:00", "customer": plain["id"],
         "items": [{"sku": "T1", "category": "T恤", "qty": 2}], "customer_name": "李普通"},
        {"channel": "抖音", "amount": 800, "status": "待付款", "created": "2026-11-21 08:00", "customer": plain["id"], "tags": ["赠品", "风险"],
         "items": [{"sku": "T2", "category": "T恤", "qty": 1}], "customer_name": "李普通"},
        {"channel": "拼多多", "amount": None, "status": "已发货", "created": None, "customer_name": "无名 100%_"},
    ]
    owner.ok(owner.post("/tables/orders/records", json={"records": rows}), 201)
    return owner


def find(api, flt, sort=None):
    url = "/tables/orders/records?filter=" + quote(json.dumps(flt, ensure_ascii=False))
    if sort:
        url += "&sort=" + sort
    return [r["customer_name"] for r in api.ok(api.get(url))["records"]]


@pytest.mark.parametrize("flt, expected", [
    ({"field": "status", "op": "=", "value": "已付款"}, ["王VIP", "李普通"]),
    ({"field": "status", "op": "!=", "value": "已付款"}, ["李普通", "无名 100%_"]),
    ({"and": [{"field": "status", "op": "=", "value": "已付款"}, {"field": "amount", "op": ">", "value": 300}]}, ["王VIP"]),
    ({"or": [{"field": "amount", "op": ">=", "value": 800}, {"field": "channel", "op": "=", "value": "天猫"}]}, ["李普通", "李普通"]),
    ({"not": {"field": "channel", "op": "in", "value": ["抖音", "天猫"]}}, ["无名 100%_"]),
    ({"field": "amount", "op": "between", "value": [100, 520]}, ["王VIP", "李普通"]),
    ({"field": "amount", "op": "is_empty"}, ["无名 100%_"]),
    ({"field": "customer_name", "op": "contains", "value": "100%_"}, ["无名 100%_"]),  # LIKE wildcards are literal
    ({"field": "customer_name", "op": "starts_with", "value": "李"}, ["李普通", "李普通"]),
    ({"field": "tags", "op": "has_any", "value": ["风险", "加急"]}, ["王VIP", "李普通"]),
    ({"field": "tags", "op": "has_all", "value": ["风险", "赠品"]}, ["李普通"]),
    ({"field": "address", "op": "contains", "value": "新疆"}, ["王VIP"]),
    ({"field": "items.category", "op": "=", "value": "连体衣"}, ["王VIP"]),           # through the sub-table
    ({"field": "items", "op": "is_empty"}, ["无名 100%_"]),
    ({"field": "customer.level", "op": "=", "value": "VIP"}, ["王VIP"]),            # through a link
    ({"and": [{"field": "channel", "op": "=", "value": "抖音"}, {"field": "items.category", "op": "=", "value": "连体衣"}]}, ["王VIP"]),
    ({"field": "created", "op": "before", "value": "2026-11-20T09:30:00+08:00"}, ["王VIP"]),
])
def test_filter_operators(shop, flt, expected):
    assert find(shop, flt, sort="id") == expected


def test_relative_dates_use_the_clock(owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": "old", "created": "2020-01-01 00:00"}, {"customer_name": "new", "created": "2999-01-01 00:00"}]}), 201)
    assert find(owner, {"field": "created", "op": "older_than", "value": "30 minutes"}) == ["old"]
    assert find(owner, {"field": "created_at", "op": "within_last", "value": {"amount": 1, "unit": "hours"}}) == ["old", "new"]


@pytest.mark.parametrize("flt, words", [
    ({"field": "nope", "op": "=", "value": 1}, "unknown field 'nope'"),
    ({"field": "status", "op": "contains", "value": "x"}, "cannot be used on status"),
    ({"field": "status", "op": "=", "value": "火星"}, "not an option"),
    ({"field": "amount", "op": ">", "value": "lots"}, "not a number"),
    ({"field": "amount", "op": "~", "value": 1}, "must be one of"),
    ({"field": "channel.name", "op": "=", "value": 1}, "not a link or sub-table"),
    ({"field": "created", "op": "older_than", "value": "soon"}, "duration"),
])
def test_bad_filters_get_a_400_that_says_why(owner, orders, flt, words):
    r = owner.get("/tables/orders/records?filter=" + quote(json.dumps(flt, ensure_ascii=False)))
    assert r.status_code == 400
    assert words in r.get_json()["error"]["message"]


def test_select_sorts_by_option_order_and_nulls_sort_last(shop):
    assert find(shop, None, sort="status,id") == ["李普通", "王VIP", "李普通", "无名 100%_"]  # 待付款 < 已付款 < 已发货
    assert find(shop, None, sort="-amount")[0] == "无名 100%_"  # NULL is the largest either way
    assert find(shop, None, sort="amount")[-1] == "无名 100%_"


def test_sort_by_a_field_of_a_linked_record(shop):
    assert find(shop, {"field": "customer", "op": "is_not_empty"}, sort="customer.name,id") == ["李普通", "李普通", "王VIP"]


def test_keyset_pages_visit_every_record_once(owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": f"c{i}", "amount": i % 7 if i % 5 else None} for i in range(53)]}), 201)
    for sort in ["-amount", "amount", "customer_name", "-created_at"]:
        seen, cursor = [], None
        while True:
            url = f"/tables/orders/records?limit=10&sort={sort}" + (f"&cursor={cursor}" if cursor else "")
            page = owner.ok(owner.get(url))
            seen += [r["id"] for r in page["records"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert len(seen) == 53 and len(set(seen)) == 53, sort
    assert owner.get("/tables/orders/records?cursor=garbage").status_code == 400


def test_search_count_field_selection_and_json_query(shop):
    page = shop.ok(shop.get("/tables/orders/records?q=李&count=true&fields=customer_name,amount"))
    assert page["total"] == 2 and set(page["records"][0]) >= {"customer_name", "amount"} and "status" not in page["records"][0]
    body = {"filter": {"field": "items.qty", "op": ">=", "value": 2}, "sorts": [{"field": "amount", "direction": "desc"}], "count": True}
    res = shop.ok(shop.post("/tables/orders/records/query", json=body))
    assert res["total"] == 1 and res["records"][0]["customer_name"] == "李普通"

"""A saved view and the index advisor do not build two indexes for the same page: the
second would only slow every write (storage/schema.py covering_index)."""
import json

from sqlalchemy import inspect

FILTER = {"and": [{"field": "status", "op": "=", "value": "已付款"}, {"field": "amount", "op": ">", "value": 300}]}
VIEW = {"api_name": "paid", "type": "grid", "filter": FILTER, "sorts": [{"field": "created", "direction": "desc"}]}
PAGE = "/tables/orders/records?" + "&".join([f"filter={json.dumps(FILTER, ensure_ascii=False)}", "sort=-created", "limit=5"])


def _indexes(platform, table_id):
    return {ix["name"]: ix["column_names"] for ix in inspect(platform.engine).get_indexes(f"t_{table_id}")}


def _load(owner, n=30):
    rows = [{"status": "已付款" if i % 3 else "待付款", "amount": 100 + i * 20, "created": f"2026-11-{1 + i % 28:02d} 10:00"}
            for i in range(n)]
    owner.ok(owner.post("/tables/orders/records?return=ids", json={"records": rows}), 201)


def _cols(orders, *names):
    spec = {s["api_name"]: s for s in orders["fields"]}
    return [f"f_{spec[n]['id']}" for n in names]


def test_a_view_saved_after_the_advisor_indexed_its_page_adds_no_second_index(owner, orders, platform):
    platform.cache.advisor.min_rows = 10
    _load(owner)
    before = _indexes(platform, orders["id"])
    pages = [owner.ok(owner.get(PAGE)) for _ in range(4)]
    platform.cache.advisor.drain()
    built = {k: v for k, v in _indexes(platform, orders["id"]).items() if k not in before}
    assert list(built.values()) == [_cols(orders, "status", "created")]
    owner.ok(owner.post("/tables/orders/views", json=VIEW), 201)
    assert {k: v for k, v in _indexes(platform, orders["id"]).items() if k not in before} == built
    # the view's page is the ad-hoc page
    view_page = owner.ok(owner.get("/tables/orders/views/paid/records?limit=5"))
    assert [r["id"] for r in view_page["records"]] == [r["id"] for r in pages[0]["records"]]


def test_pages_repeating_a_saved_views_shape_build_no_second_index(owner, orders, platform):
    platform.cache.advisor.min_rows = 10
    _load(owner)
    before = _indexes(platform, orders["id"])
    owner.ok(owner.post("/tables/orders/views", json=VIEW), 201)
    with_view = _indexes(platform, orders["id"])
    assert [v for k, v in with_view.items() if k not in before] == [_cols(orders, "status", "created")]
    for _ in range(4):
        owner.ok(owner.get(PAGE))
    platform.cache.advisor.drain()
    assert _indexes(platform, orders["id"]) == with_view

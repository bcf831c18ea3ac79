"""Ad-hoc queries that come back get their own index (storage/advisor.py)."""
import json

from sqlalchemy import inspect

from zhongshu.platform.storage.advisor import IndexAdvisor

FILTER = {"and": [{"field": "status", "op": "=", "value": "已付款"}, {"field": "amount", "op": ">", "value": 300}]}


def _indexes(platform, table_id):
    return {ix["name"]: ix["column_names"] for ix in inspect(platform.engine).get_indexes(f"t_{table_id}")}


def _load(owner, n=30):
    rows = [{"status": "已付款" if i % 3 else "待付款", "amount": 100 + i * 20, "created": f"2026-11-{1 + i % 28:02d} 10:00"}
            for i in range(n)]
    owner.ok(owner.post("/tables/orders/records?return=ids", json={"records": rows}), 201)


def test_a_repeated_filtered_page_gets_an_index_on_its_filter_and_sort(owner, orders, platform):
    platform.cache.advisor.min_rows = 10
    _load(owner)
    t = orders["id"]
    spec = {s["api_name"]: s for s in orders["fields"]}
    before = _indexes(platform, t)
    url = "/tables/orders/records?" + "&".join([f"filter={json.dumps(FILTER, ensure_ascii=False)}", "sort=-created", "limit=5"])
    pages = [owner.ok(owner.get(url)) for _ in range(4)]
    platform.cache.advisor.drain()
    after = _indexes(platform, t)
    new = {k: v for k, v in after.items() if k not in before}
    assert list(new.values()) == [[f"f_{spec['status']['id']}", f"f_{spec['created']['id']}"]]
    # the same answer before and after the index
    assert [r["id"] for r in owner.ok(owner.get(url))["records"]] == [r["id"] for r in pages[0]["records"]]


def test_a_repeated_count_gets_a_covering_index_and_a_small_table_gets_none(owner, orders, platform):
    _load(owner, 12)
    t = orders["id"]
    body = {"filter": FILTER, "group_by": [{"field": "status"}], "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}
    platform.cache.advisor.min_rows = 1000  # too small a table: nothing is built
    before = _indexes(platform, t)
    for _ in range(4):
        owner.ok(owner.post("/tables/orders/aggregate", json=body))
    platform.cache.advisor.drain()
    assert _indexes(platform, t) == before
    platform.cache.advisor.min_rows = 10  # the same shape asked again once the table is large enough
    first = owner.ok(owner.post("/tables/orders/aggregate", json=body))
    for _ in range(3):
        owner.ok(owner.post("/tables/orders/aggregate", json=body))
    platform.cache.advisor.drain()
    new = [v for k, v in _indexes(platform, t).items() if k not in before]
    assert len(new) == 1 and len(new[0]) == 2  # (status, amount): the count and the sum read only the index
    assert owner.ok(owner.post("/tables/orders/aggregate", json=body)) == first


def test_the_advisor_can_be_switched_off(owner, orders, platform):
    platform.cache.advisor.enabled = False
    platform.cache.advisor.min_rows = 1
    _load(owner, 5)
    before = _indexes(platform, orders["id"])
    for _ in range(5):
        owner.ok(owner.post("/tables/orders/aggregate", json={"filter": FILTER, "metrics": [{"fn": "count"}]}))
    platform.cache.advisor.drain()
    assert _indexes(platform, orders["id"]) == before


def test_index_names_are_stable_and_short():
    a = IndexAdvisor.index_name("t_12", ["f_1", "f_2"])
    assert a == IndexAdvisor.index_name("t_12", ["f_1", "f_2"]) and len(a) < 63 and a != IndexAdvisor.index_name("t_12", ["f_2", "f_1"])


def test_a_saved_view_gets_the_same_index_at_once(owner, orders, platform):
    spec = {s["api_name"]: s for s in orders["fields"]}
    before = _indexes(platform, orders["id"])
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "paid", "type": "grid", "filter": FILTER,
                                                      "sorts": [{"field": "created", "direction": "desc"}]}), 201)
    new = [v for k, v in _indexes(platform, orders["id"]).items() if k not in before]
    assert new == [[f"f_{spec['status']['id']}", f"f_{spec['created']['id']}"]]

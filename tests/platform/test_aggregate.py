"""POST /tables/<t>/aggregate: the numbers behind dashboards, computed by the database.

Group by up to two fields or a date bucket (in the tenant's time zone), with count, sum,
avg, min, max and count_distinct, over the records a filter selects.
"""
from __future__ import annotations

import pytest

ROWS = [
    # customer, channel, status, amount, created (tenant time, Asia/Shanghai)
    ("张三", "天猫", "已付款", "100.50", "2026-11-21 09:00"),
    ("李四", "天猫", "已付款", "200.25", "2026-11-21 23:30"),  # 15:30 UTC, still the 21st in Shanghai
    ("王五", "抖音", "已付款", "50", "2026-11-22 00:30"),  # 16:30 UTC on the 21st, the 22nd in Shanghai
    ("赵六", "抖音", "待付款", "10", "2026-11-30 23:30"),
    ("钱七", "天猫", "待付款", "5", "2026-12-01 00:30"),  # 16:30 UTC on Nov 30th, December in Shanghai
    ("张三", "拼多多", "已取消", "0.25", "2026-12-02 12:00"),
]


@pytest.fixture
def sample(owner, orders):
    return owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"customer_name": c, "channel": ch, "status": s, "amount": a, "created": t} for c, ch, s, a, t in ROWS]}), 201)["records"]


def agg(api, spec, table="orders"):
    return api.ok(api.post(f"/tables/{table}/aggregate", json=spec))


def bad(api, spec) -> list[str]:
    r = api.post("/tables/orders/aggregate", json=spec)
    assert r.status_code == 400, r.get_data(as_text=True)
    err = r.get_json()["error"]
    assert err["message"] and err["message_zh"]
    return [e["pointer"] for e in err.get("errors", [])]


def test_without_groups_one_row_counts_everything(owner, sample):
    out = agg(owner, {})
    assert out == {"group_by": [], "metrics": ["count"], "rows": [{"count": 6}]}


def test_group_by_status_counts_and_sums_exactly(owner, sample):
    out = agg(owner, {"group_by": [{"field": "status"}],
                      "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}, {"fn": "avg", "field": "amount", "as": "mean"}]})
    assert out["group_by"] == ["status"] and out["metrics"] == ["count", "sum_amount", "mean"]
    by = {r["status"]: r for r in out["rows"]}
    assert set(by) == {"已付款", "待付款", "已取消"}
    assert (by["已付款"]["count"], by["已付款"]["sum_amount"]) == (3, 350.75)
    assert (by["待付款"]["count"], by["待付款"]["sum_amount"]) == (2, 15)
    assert (by["已取消"]["count"], by["已取消"]["sum_amount"]) == (1, 0.25)
    assert by["已付款"]["mean"] == pytest.approx(350.75 / 3)


def test_two_group_fields(owner, sample):
    out = agg(owner, {"group_by": [{"field": "channel"}, {"field": "status"}],
                      "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]})
    got = {(r["channel"], r["status"]): (r["count"], r["sum_amount"]) for r in out["rows"]}
    assert got == {("天猫", "已付款"): (2, 300.75), ("天猫", "待付款"): (1, 5), ("抖音", "已付款"): (1, 50),
                   ("抖音", "待付款"): (1, 10), ("拼多多", "已取消"): (1, 0.25)}


def test_day_buckets_follow_the_tenant_time_zone(owner, sample):
    out = agg(owner, {"group_by": [{"field": "created", "bucket": "day"}], "metrics": [{"fn": "count"}]})
    assert out["rows"] == [
        {"created": "2026-11-21", "count": 2},  # 23:30 in Shanghai is 15:30 UTC: still the 21st
        {"created": "2026-11-22", "count": 1},
        {"created": "2026-11-30", "count": 1},
        {"created": "2026-12-01", "count": 1},
        {"created": "2026-12-02", "count": 1},
    ]


def test_month_buckets_follow_the_tenant_time_zone(owner, sample):
    out = agg(owner, {"group_by": [{"field": "created", "bucket": "month"}],
                      "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]})
    assert out["rows"] == [{"created": "2026-11", "count": 4, "sum_amount": 360.75},
                           {"created": "2026-12", "count": 2, "sum_amount": 5.25}]


def test_buckets_use_the_tenants_own_time_zone(owner, orders):
    owner.ok(owner.patch("", json={"timezone": "Asia/Tokyo"}))
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"created": "2026-11-21T14:30:00Z"},  # 23:30 in Tokyo
        {"created": "2026-11-21T15:30:00Z"}]}), 201)  # 00:30 on the 22nd in Tokyo
    out = agg(owner, {"group_by": [{"field": "created", "bucket": "day"}]})
    assert out["rows"] == [{"created": "2026-11-21", "count": 1}, {"created": "2026-11-22", "count": 1}]


def test_a_bucket_combines_with_a_second_group(owner, sample):
    out = agg(owner, {"group_by": [{"field": "created", "bucket": "month"}, {"field": "channel"}]})
    got = {(r["created"], r["channel"]): r["count"] for r in out["rows"]}
    assert got == {("2026-11", "天猫"): 2, ("2026-11", "抖音"): 2, ("2026-12", "天猫"): 1, ("2026-12", "拼多多"): 1}


def test_count_distinct(owner, sample):
    out = agg(owner, {"metrics": [{"fn": "count_distinct", "field": "customer_name"},
                                  {"fn": "count_distinct", "field": "channel", "as": "channels"}]})
    assert out["rows"] == [{"count_distinct_customer_name": 5, "channels": 3}]


def test_min_and_max_of_a_datetime_are_shown_in_the_tenant_time_zone(owner, sample):
    out = agg(owner, {"metrics": [{"fn": "min", "field": "created"}, {"fn": "max", "field": "created"},
                                  {"fn": "min", "field": "amount"}, {"fn": "max", "field": "amount"}]})
    assert out["rows"] == [{"min_created": "2026-11-21T09:00:00+08:00", "max_created": "2026-12-02T12:00:00+08:00",
                            "min_amount": 0.25, "max_amount": 200.25}]
    per_day = agg(owner, {"group_by": [{"field": "created", "bucket": "day"}],
                          "metrics": [{"fn": "max", "field": "created"}], "filter": {"field": "channel", "op": "=", "value": "天猫"}})
    assert per_day["rows"][0] == {"created": "2026-11-21", "max_created": "2026-11-21T23:30:00+08:00"}


def test_filters_narrow_what_is_aggregated(owner, sample):
    out = agg(owner, {"filter": {"and": [{"field": "channel", "op": "=", "value": "天猫"},
                                         {"field": "amount", "op": ">", "value": 50}]},
                      "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]})
    assert out["rows"] == [{"count": 2, "sum_amount": 300.75}]
    none = agg(owner, {"filter": {"field": "channel", "op": "=", "value": "小程序"},
                       "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]})
    assert none["rows"] == [{"count": 0, "sum_amount": None}]


def test_deleted_records_are_not_counted(owner, sample):
    owner.ok(owner.delete(f"/tables/orders/records/{sample[0]['id']}"))
    out = agg(owner, {"group_by": [{"field": "status"}], "metrics": [{"fn": "sum", "field": "amount"}]})
    assert {r["status"]: r["sum_amount"] for r in out["rows"]}["已付款"] == 250.25


def test_order_and_limit_give_a_top_n(owner, sample):
    out = agg(owner, {"group_by": [{"field": "channel"}], "metrics": [{"fn": "sum", "field": "amount"}],
                      "order": "desc", "limit": 2})
    assert out["rows"] == [{"channel": "天猫", "sum_amount": 305.75}, {"channel": "抖音", "sum_amount": 60}]


def test_a_view_filter_applies(owner, sample):
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "paid", "type": "grid",
                                                      "filter": {"field": "status", "op": "=", "value": "已付款"}}), 201)
    out = agg(owner, {"view": "paid", "filter": {"field": "channel", "op": "=", "value": "天猫"}})
    assert out["rows"] == [{"count": 2}]
    assert owner.post("/tables/orders/aggregate", json={"view": "nope"}).status_code == 404


def test_sub_table_rows_can_be_aggregated(owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"records": [
        {"items": [{"sku": "A", "category": "连体衣", "qty": 2}, {"sku": "B", "category": "袜子", "qty": 5}]},
        {"items": [{"sku": "C", "category": "连体衣", "qty": 1}]}]}), 201)
    out = agg(owner, {"group_by": [{"field": "category"}], "metrics": [{"fn": "sum", "field": "qty"}]}, table="orders_items")
    assert {r["category"]: r["sum_qty"] for r in out["rows"]} == {"连体衣": 3, "袜子": 5}


def test_bad_requests_point_at_the_problem(owner, orders):
    assert bad(owner, {"group_by": [{"field": "nope"}]}) == ["/group_by/0/field"]
    assert bad(owner, {"group_by": [{"field": "status"}, {"field": "customer_name", "bucket": "day"}]}) == ["/group_by/1/bucket"]
    assert bad(owner, {"group_by": [{"field": "items"}]}) == ["/group_by/0/field"]  # a sub-table has no single value
    assert bad(owner, {"metrics": [{"fn": "sum", "field": "customer_name"}]}) == ["/metrics/0/field"]
    assert bad(owner, {"metrics": [{"fn": "count"}, {"fn": "avg"}]}) == ["/metrics/1/field"]
    assert bad(owner, {"metrics": [{"fn": "max", "field": "nope"}]}) == ["/metrics/0/field"]
    assert bad(owner, {"metrics": [{"fn": "median", "field": "amount"}]})[0].startswith("/metrics/0")
    assert bad(owner, {"metrics": []})[0].startswith("/metrics")
    assert bad(owner, {"group_by": [{"field": "created", "bucket": "fortnight"}]})[0].startswith("/group_by/0")
    assert bad(owner, {"group_by": [{"field": "a"}, {"field": "b"}, {"field": "c"}]})[0].startswith("/group_by")
    assert bad(owner, {"grouping": "status"}) == ["/grouping"]
    r = owner.post("/tables/orders/aggregate", json={"filter": {"field": "amount", "op": "~~", "value": 1}})
    assert r.status_code == 400
    assert owner.post("/tables/nope/aggregate", json={}).status_code == 404

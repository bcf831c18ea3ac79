"""Read paths of records: a sorted, filtered page walks its index (SQLite) and keeps its
order; record reads on PostgreSQL run without a transaction of their own while writes keep
theirs; a view's records follow the view as soon as it changes."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import event

FILTER = {"field": "status", "op": "=", "value": "已付款"}


def _load(owner):
    rows = [{"status": "已付款" if i % 3 else "待付款", "amount": 100 + i, "created": f"2026-11-{1 + i % 28:02d} 10:{i % 60:02d}"}
            for i in range(40)]
    rows.append({"status": "已付款", "amount": 5})  # no created: sorts as the largest value
    return owner.ok(owner.post("/tables/orders/records?return=ids", json={"records": rows}), 201)["ids"]


def _page_url(sort="-created", limit=10):
    return f"/tables/orders/records?filter={json.dumps(FILTER, ensure_ascii=False)}&sort={sort}&limit={limit}"


def _statements(platform):
    seen = []

    def grab(conn, _cursor, statement, params, _context, _many):
        if "FROM t_" in statement and "ORDER BY" in statement:
            seen.append((statement, params, conn.connection.dbapi_connection))
    event.listen(platform.engine, "before_cursor_execute", grab)
    return seen


def test_a_filtered_sorted_page_walks_the_view_index_and_keeps_its_order(owner, orders, platform):
    ids = _load(owner)
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "paid", "type": "grid", "filter": FILTER,
                                                         "sorts": [{"field": "created", "direction": "desc"}]}), 201)
    seen = _statements(platform)
    page = owner.ok(owner.get(_page_url()))
    got = page["records"]
    # empty first in descending order, then newest first, ties by id descending
    assert got[0]["id"] == ids[-1] and got[0]["created"] is None
    created = [r["created"] for r in got[1:]]
    assert created == sorted(created, reverse=True)
    # the next page continues where the first stopped
    nxt = owner.ok(owner.get(_page_url() + f"&cursor={page['next_cursor']}"))["records"]
    assert not {r["id"] for r in got} & {r["id"] for r in nxt}
    assert nxt[0]["created"] <= created[-1]
    if platform.dialect == "sqlite":
        statement, params, _ = seen[0]
        with platform.engine.connect() as c:
            plan = " | ".join(r[3] for r in c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params))
        assert "USING INDEX" in plan and "TEMP B-TREE" not in plan, plan


def test_record_reads_on_postgresql_have_no_transaction_of_their_own_and_writes_do(owner, orders, platform):
    if platform.dialect != "postgresql":
        pytest.skip("SQLite keeps its BEGIN for reads (no round trip to save)")
    ids = _load(owner)
    seen = []

    def grab(conn, _cursor, statement, _params, _context, _many):
        if "FROM t_" in statement or "UPDATE t_" in statement:
            seen.append((statement.split()[0], conn.connection.dbapi_connection.autocommit))
    event.listen(platform.engine, "before_cursor_execute", grab)
    owner.ok(owner.get(_page_url()))
    owner.ok(owner.get(f"/tables/orders/records/{ids[0]}"))
    owner.ok(owner.post("/tables/orders/aggregate", json={"filter": FILTER, "metrics": [{"fn": "count"}]}))
    assert seen and all(auto for verb, auto in seen if verb == "SELECT"), seen
    seen.clear()
    owner.ok(owner.patch(f"/tables/orders/records/{ids[0]}", json={"amount": 1}))
    assert seen and not any(auto for _, auto in seen), seen
    # and a read right after sees the write
    assert owner.ok(owner.get(f"/tables/orders/records/{ids[0]}"))["amount"] == 1


def test_a_changed_view_filter_applies_to_its_records_at_once(owner, orders, platform):
    _load(owner)
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "paid", "type": "grid", "filter": FILTER}), 201)
    first = owner.ok(owner.get("/tables/orders/views/paid/records?limit=100"))["records"]
    assert first and all(r["status"] == "已付款" for r in first)
    owner.ok(owner.patch("/tables/orders/views/paid", json={"filter": {"field": "status", "op": "=", "value": "待付款"}}))
    after = owner.ok(owner.get("/tables/orders/views/paid/records?limit=100"))["records"]
    assert after and all(r["status"] == "待付款" for r in after)
    owner.ok(owner.delete("/tables/orders/views/paid"))
    assert owner.get("/tables/orders/views/paid/records").status_code == 404

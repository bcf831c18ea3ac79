"""A table bulk-loaded a moment ago gets planner statistics on its first reads (PostgreSQL),
instead of waiting for autovacuum (storage/advisor.py, "Statistics")."""
import json
import time

import pytest
from sqlalchemy import text

FILTER = {"and": [{"field": "status", "op": "=", "value": "已付款"}, {"field": "amount", "op": ">", "value": 300}]}
PAGE = "/tables/orders/records?" + "&".join([f"filter={json.dumps(FILTER, ensure_ascii=False)}", "sort=-created", "limit=5"])


def _reltuples(platform, table_id) -> float:
    with platform.engine.connect() as c:
        return c.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": f"t_{table_id}"}).scalar()


def _load(owner, n):
    rows = [{"status": "已付款" if i % 3 else "待付款", "amount": 100 + i * 20, "created": f"2026-11-{1 + i % 28:02d} 10:00"}
            for i in range(n)]
    owner.ok(owner.post("/tables/orders/records?return=ids", json={"records": rows}), 201)


def _read_until_analyzed(owner, platform, table_id, read) -> list:
    """Reads until the table has statistics; PostgreSQL publishes a backend's row counts
    within about a second of its commit, so a read may have to come again."""
    adv = platform.cache.advisor
    answers = []
    for _ in range(40):
        adv._stats_next.clear()  # each read may look again
        answers.append(read())
        adv.drain()
        if _reltuples(platform, table_id) >= 0:
            break
        time.sleep(0.25)
    return answers


@pytest.fixture
def pg_only(platform):
    if platform.dialect != "postgresql":
        pytest.skip("SQLite plans these pages without sqlite_stat1")


def test_a_freshly_loaded_table_gets_statistics_from_its_first_pages(pg_only, owner, orders, platform):
    platform.cache.advisor.stats_min_changes = 10  # autovacuum would wait for 50 rows and a minute
    _load(owner, 40)
    assert _reltuples(platform, orders["id"]) < 0  # never analyzed: the planner guesses
    pages = _read_until_analyzed(owner, platform, orders["id"], lambda: owner.ok(owner.get(PAGE)))
    assert _reltuples(platform, orders["id"]) == 40
    # the answer does not change with the statistics
    assert [r["id"] for r in owner.ok(owner.get(PAGE))["records"]] == [r["id"] for r in pages[0]["records"]]


def test_an_aggregate_also_brings_statistics(pg_only, owner, orders, platform):
    platform.cache.advisor.stats_min_changes = 10
    _load(owner, 40)
    body = {"filter": FILTER, "metrics": [{"fn": "count"}]}
    answers = _read_until_analyzed(owner, platform, orders["id"], lambda: owner.ok(owner.post("/tables/orders/aggregate", json=body)))
    assert _reltuples(platform, orders["id"]) == 40
    assert answers[0]["rows"][0]["count"] == 19


def test_a_few_changed_rows_do_not_trigger_analyze(pg_only, owner, orders, platform):
    _load(owner, 40)  # below the default 1000 changed rows
    adv = platform.cache.advisor
    for _ in range(3):
        adv._stats_next.clear()
        owner.ok(owner.get(PAGE))
    adv.drain()
    assert _reltuples(platform, orders["id"]) < 0


def test_switched_off_with_the_advisor(pg_only, owner, orders, platform):
    platform.cache.advisor.enabled = False
    platform.cache.advisor.stats_min_changes = 10
    _load(owner, 40)
    time.sleep(1.2)  # the row counts are published
    owner.ok(owner.get(PAGE))
    platform.cache.advisor.drain()
    assert _reltuples(platform, orders["id"]) < 0


def test_statistics_that_grew_stale_are_refreshed(pg_only, owner, orders, platform):
    platform.cache.advisor.stats_min_changes = 10
    _load(owner, 40)
    with platform.engine.connect() as c:
        c.execute(text(f"ANALYZE t_{orders['id']}"))
        c.commit()
    assert _reltuples(platform, orders["id"]) == 40
    _load(owner, 40)  # doubled since the last ANALYZE
    _read_until_analyzed_to(owner, platform, orders["id"], 80)
    assert _reltuples(platform, orders["id"]) == 80


def _read_until_analyzed_to(owner, platform, table_id, n):
    adv = platform.cache.advisor
    for _ in range(40):
        adv._stats_next.clear()
        owner.ok(owner.get(PAGE))
        adv.drain()
        if _reltuples(platform, table_id) == n:
            return
        time.sleep(0.25)

"""What a process keeps and does per tenant must not grow with tenants nobody uses.

A server with hundreds of tenants of the order hub ran, every 10 s, a read of every rule of
every tenant (the schedule provider) and, every minute, a write transaction per dashboard
of every tenant (threshold alerts) — whether or not any tenant had a scheduled rule or an
alert configured. These tests count statements and cached objects (not time): the
periodic work reads only what can matter, and a tenant that is never requested leaves
nothing in the process's caches."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from zhongshu.platform.app import create_app
from zhongshu.runtime.tasks import dashboard_alerts, scheduled_rules

from ..conftest import login

TABLE = {"api_name": "orders", "fields": [{"api_name": "status", "type": "text"}, {"api_name": "amount", "type": "number"}]}
SCHEDULED = {"api_name": "nightly", "table": "orders", "trigger": {"type": "schedule", "cron": "1 0 * * *"},
             "actions": [{"type": "recompute", "table": "orders"}]}
EVERY = {"api_name": "hourly", "table": "orders", "trigger": {"type": "schedule", "every": "2 hours"},
         "actions": [{"type": "recompute", "table": "orders"}]}
#: mentions "schedule" in its name and label but is triggered by a create: no job
ON_CREATE = {"api_name": "schedule_check", "label": "schedule check", "table": "orders", "trigger": {"type": "record_created"},
             "actions": [{"type": "update_record", "values": {"status": "'new'"}}]}
BOARD = {"api_name": "ops", "widgets": [{"id": "n", "type": "number", "table": "orders", "metrics": [{"fn": "count"}],
                                         "threshold": {"op": ">", "value": 0, "notify": "ding"}}]}


def add_tenant(app, platform, slug: str):
    email = f"owner@{slug}.test"
    platform.create_user(email, "owner-password")
    platform.create_tenant(slug, slug, owner_email=email)
    api = login(app, email, "owner-password", slug)
    api.ok(api.post("/tables", json=TABLE), 201)
    api.ok(api.post("/dashboards", json=BOARD), 201)  # a threshold that names an install nobody made
    api.ok(api.post("/tables/orders/records", json={"status": "x", "amount": 1}), 201)
    return api


class Statements:
    def __init__(self, engine):
        self.engine, self.n = engine, 0

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def _count(self, *_a):
        self.n += 1

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._count)


def test_scheduled_rules_become_jobs_and_nothing_else_does(app, platform):
    a = add_tenant(app, platform, "acme")
    b = add_tenant(app, platform, "beta")
    rules = {}
    for api, rule in ((a, SCHEDULED), (a, ON_CREATE), (b, EVERY), (b, ON_CREATE),
                      (b, dict(SCHEDULED, api_name="off", enabled=False))):
        rules[(api.tenant, rule["api_name"])] = api.ok(api.post("/rules", json=rule), 201)["rule"]["id"]
    jobs = {job_id: spec for job_id, spec, _fn in scheduled_rules(platform)}
    rules = {name: rid for (_t, name), rid in rules.items() if name in ("nightly", "hourly")}
    assert jobs == {f"rule:{rules['nightly']}": {"cron": "1 0 * * *"},
                    f"rule:{rules['hourly']}": {"every_seconds": 7200}}


def test_periodic_work_costs_the_same_for_2_or_6_idle_tenants(app, platform):
    """Idle tenants (no scheduled rule, no enabled connector install) add no statement to
    the schedule provider's or the alerts' round."""
    def round_statements():
        with Statements(platform.engine) as st:
            assert scheduled_rules(platform) == []
            assert dashboard_alerts(platform) == 0
        return st.n

    for slug in ("t1", "t2"):
        add_tenant(app, platform, slug)
    two = round_statements()
    for slug in ("t3", "t4", "t5", "t6"):
        add_tenant(app, platform, slug)
    assert round_statements() == two


def test_a_new_process_keeps_nothing_for_tenants_nobody_requested(platform, config):
    """After start-up and the periodic work, a new process (a fresh Platform on the same
    database) has compiled no table and derived no tenant metadata; one request compiles
    that tenant's tables only."""
    from zhongshu.platform.core import Platform

    setup_app = create_app(config, platform=platform)
    apis = [add_tenant(setup_app, platform, f"t{i}") for i in range(4)]
    zs = Platform(config)
    try:
        app = create_app(config, platform=zs)
        scheduled_rules(zs)
        dashboard_alerts(zs)
        assert len(zs.cache) == 0 and len(zs.cache.meta) == 0
        client = app.test_client()
        client.post("/api/v1/auth/login", json={"email": "owner@t2.test", "password": "owner-password"})
        r = client.get("/api/v1/tenants/t2/tables/orders/records")
        assert r.status_code == 200 and r.get_json()["records"][0]["status"] == "x"
        t2 = zs.tenant_by_slug("t2").id
        assert len(zs.cache.meta) == 1 and len(zs.cache) >= 1
        assert {s.tenant_id for s in zs.cache._by_table._data.values()} == {t2}
    finally:
        zs.close()
    assert apis


@pytest.mark.parametrize("bound", [2])
def test_schema_and_metadata_caches_stay_within_their_bounds(platform, config, bound):
    """Touching more tenants than the caches hold keeps at most the configured number."""
    from zhongshu.platform.core import Platform

    setup_app = create_app(config, platform=platform)
    for i in range(4):
        add_tenant(setup_app, platform, f"t{i}")
    zs = Platform(dict(config, SCHEMA_CACHE_TABLES=bound, METADATA_CACHE_TENANTS=bound))
    try:
        client = create_app(config, platform=zs).test_client()
        for i in range(4):
            client.post("/api/v1/auth/login", json={"email": f"owner@t{i}.test", "password": "owner-password"})
            r = client.get(f"/api/v1/tenants/t{i}/tables/orders/records")
            assert r.status_code == 200 and len(r.get_json()["records"]) == 1
        assert len(zs.cache) <= bound and len(zs.cache.meta) <= bound
    finally:
        zs.close()


def test_the_schema_cache_holds_at_most_its_column_budget(platform, config):
    """The compiled-table cache is bounded by columns too (a wide table costs more memory
    than a narrow one): with room for about one orders table, touching four tenants keeps
    one, and each tenant still reads its own data."""
    from zhongshu.platform.core import Platform

    setup_app = create_app(config, platform=platform)
    for i in range(4):
        add_tenant(setup_app, platform, f"t{i}")
    zs = Platform(dict(config, SCHEMA_CACHE_COLUMNS=12))  # orders: 7 system columns + 2 fields = 9
    try:
        client = create_app(config, platform=zs).test_client()
        for i in range(4):
            client.post("/api/v1/auth/login", json={"email": f"owner@t{i}.test", "password": "owner-password"})
            r = client.get(f"/api/v1/tenants/t{i}/tables/orders/records")
            assert r.status_code == 200 and r.get_json()["records"][0]["status"] == "x"
            assert zs.cache.columns <= 12 and len(zs.cache) == 1
        assert zs.cache.columns == 9
    finally:
        zs.close()


def test_weighted_lru_keeps_the_newest_and_tracks_its_weight():
    from zhongshu.platform.lru import LruCache

    c = LruCache(10, weigh=len, maxweight=6)
    c.put("a", "xx")
    c.put("b", "xxx")
    assert c.weight == 5 and len(c) == 2
    c.put("c", "xxxx")  # 9 > 6: a and b go (oldest first)
    assert c.get("a") is None and c.get("b") is None and c.get("c") == "xxxx" and c.weight == 4
    c.put("c", "x")  # replacing an entry replaces its weight
    assert c.weight == 1
    c.put("d", "xxxxxxxxxx")  # heavier than the budget alone: the newest entry still stays
    assert c.get("d") and len(c) == 1 and c.weight == 10
    c.pop_if("d", lambda v: True)
    assert c.weight == 0 and len(c) == 0
    c.get_or_put("e", lambda v: True, lambda: "xxx")
    assert c.weight == 3
    c.maxweight = 2
    assert c.weight == 3 and len(c) == 1  # the only entry stays
    c.clear()
    assert c.weight == 0


def test_evicted_schemas_are_freed_with_everything_built_for_them(platform, config):
    """A schema that leaves the cache is garbage: nothing built for it (prebuilt statements,
    the computed-field plan, row-cache statements) keeps it alive. These used to live in
    WeakKeyDictionaries whose values referred to their keys, so every evicted or superseded
    schema stayed in memory for good."""
    import gc
    import weakref

    from zhongshu.platform.core import Platform

    setup_app = create_app(config, platform=platform)
    for i in range(4):
        api = add_tenant(setup_app, platform, f"t{i}")
        api.ok(api.post("/tables/orders/fields", json={"api_name": "double", "type": "formula",
                                                       "options": {"expression": "amount * 2", "result_type": "number"}}), 201)
    zs = Platform(dict(config, SCHEMA_CACHE_TABLES=1, METADATA_CACHE_TENANTS=1))  # the metadata of a tenant refers to its schemas
    seen: list[weakref.ref] = []
    try:
        client = create_app(config, platform=zs).test_client()
        for i in range(4):
            r = client.post("/api/v1/auth/login", json={"email": f"owner@t{i}.test", "password": "owner-password"})
            h = {"X-CSRF-Token": r.get_json()["csrf_token"]}
            created = client.post(f"/api/v1/tenants/t{i}/tables/orders/records", json={"status": "y", "amount": 4}, headers=h)
            assert created.status_code == 201 and created.get_json()["double"] == 8
            rid = created.get_json()["id"]
            assert client.patch(f"/api/v1/tenants/t{i}/tables/orders/records/{rid}", json={"amount": 5},
                                headers=h).get_json()["double"] == 10
            assert len(client.get(f"/api/v1/tenants/t{i}/tables/orders/records").get_json()["records"]) == 2
            seen += [weakref.ref(s) for s in zs.cache._by_table._data.values()]
        gc.collect()  # (SQLAlchemy's statement cache still holds tables, not schemas)
        kept = {id(s) for s in zs.cache._by_table._data.values()}
        alive = [r() for r in seen if r() is not None and id(r()) not in kept]
        assert alive == [], f"{len(alive)} evicted schemas still in memory"
    finally:
        zs.close()


def test_a_tenants_metadata_does_not_keep_evicted_schemas_alive(platform, config):
    """Pages read in 4 tenants through a schema cache of one table, the metadata cache large
    enough for all 4: only the cached schema stays in memory (the tenant's metadata entry,
    which hands schemas to requests, lets go of an evicted one), and every tenant still
    reads its own data on the next round."""
    import gc
    import weakref

    from zhongshu.platform.core import Platform

    setup_app = create_app(config, platform=platform)
    for i in range(4):
        add_tenant(setup_app, platform, f"t{i}")
    zs = Platform(dict(config, SCHEMA_CACHE_TABLES=1, METADATA_CACHE_TENANTS=10))
    seen: list[weakref.ref] = []
    try:
        client = create_app(config, platform=zs).test_client()
        for _round in range(2):
            for i in range(4):
                client.post("/api/v1/auth/login", json={"email": f"owner@t{i}.test", "password": "owner-password"})
                r = client.get(f"/api/v1/tenants/t{i}/tables/orders/records")
                assert r.status_code == 200 and [x["status"] for x in r.get_json()["records"]] == ["x"]
                seen += [weakref.ref(s) for s in zs.cache._by_table._data.values()]
        assert len(zs.cache.meta) == 4
        gc.collect()
        kept = {id(s) for s in zs.cache._by_table._data.values()}
        assert [r() for r in seen if r() is not None and id(r()) not in kept] == []
    finally:
        zs.close()

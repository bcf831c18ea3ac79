"""Per-process metadata caches are bounded: a server that serves more tenants (or tables)
than its caps keeps only the most recently used ones, and an evicted tenant is simply read
again, correctly, on its next request (SCHEMA_CACHE_TABLES, METADATA_CACHE_TENANTS)."""
import gc
import threading
import weakref

import pytest

from zhongshu.platform.app import create_app
from zhongshu.platform.config import load_config
from zhongshu.platform.core import Platform

from ..conftest import login

TENANTS = ["t1", "t2", "t3", "t4", "t5"]
NOTES = {"api_name": "notes", "fields": [{"api_name": "body", "type": "text"}]}


@pytest.fixture
def small(platform, config):
    """A server process with room for 3 table schemas and 2 tenants, and an owner of 5 tenants
    with one notes table and one note each."""
    server = Platform(dict(config, SCHEMA_CACHE_TABLES=3, METADATA_CACHE_TENANTS=2))
    app = create_app(config, platform=server)
    u = platform.create_user("owner@many.test", "owner-password")
    apis = {}
    for slug in TENANTS:
        platform.create_tenant(slug, slug, owner_email=u.email)
        api = apis[slug] = login(app, "owner@many.test", "owner-password", slug)
        api.ok(api.post("/tables", json=NOTES), 201)
        api.ok(api.post("/tables/notes/records", json={"body": f"note of {slug}"}), 201)
    yield server, app, apis
    server.close()


def bodies(api):
    return [r["body"] for r in api.ok(api.get("/tables/notes/records"))["records"]]


def test_reading_more_tenants_than_the_caps_keeps_the_caches_at_the_caps(small):
    server, _, apis = small
    for slug in TENANTS:
        assert bodies(apis[slug]) == [f"note of {slug}"]
    assert len(server.cache) == 3
    assert len(server.cache.meta) == 2
    # t1 was evicted long ago: read and written again, with its own data.
    assert bodies(apis["t1"]) == ["note of t1"]
    apis["t1"].ok(apis["t1"].post("/tables/notes/records", json={"body": "second"}), 201)
    assert sorted(bodies(apis["t1"])) == ["note of t1", "second"]
    assert len(server.cache) == 3 and len(server.cache.meta) == 2


def test_a_change_made_elsewhere_while_a_tenant_was_evicted_is_seen(small, platform, config):
    server, _, apis = small
    assert bodies(apis["t1"]) == ["note of t1"]  # cached in the server
    # Another process adds a field to t1 while the server evicts t1 by serving the others.
    other_app = create_app(config, platform=platform)
    other = login(other_app, "owner@many.test", "owner-password", "t1")
    other.ok(other.post("/tables/notes/fields", json={"api_name": "remark", "type": "text"}), 201)
    for slug in TENANTS[1:]:
        bodies(apis[slug])
    rec = apis["t1"].ok(apis["t1"].post("/tables/notes/records", json={"body": "x", "remark": "加急"}), 201)
    assert rec["remark"] == "加急"
    # ...and a change made while t1 is cached is seen too (the stamp logic is unchanged).
    other.ok(other.post("/tables/notes/fields", json={"api_name": "extra", "type": "number"}), 201)
    assert apis["t1"].ok(apis["t1"].post("/tables/notes/records", json={"extra": 3}), 201)["extra"] == 3


def test_threads_serving_many_tenants_through_small_caches_read_their_own_data(small):
    server, app, _ = small
    errors = []

    def serve(slug):
        try:
            api = login(app, "owner@many.test", "owner-password", slug)  # one client per thread
            for _ in range(8):
                assert bodies(api) == [f"note of {slug}"]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{slug}: {e!r}")

    threads = [threading.Thread(target=serve, args=(slug,)) for slug in TENANTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(server.cache) <= 3 and len(server.cache.meta) <= 2


def test_the_caps_are_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("ZHONGSHU_SCHEMA_CACHE_TABLES", "50")
    monkeypatch.setenv("ZHONGSHU_METADATA_CACHE_TENANTS", "7")
    cfg = load_config({"DATA_DIR": str(tmp_path), "SECRET_KEY": "x"})
    assert (cfg["SCHEMA_CACHE_TABLES"], cfg["METADATA_CACHE_TENANTS"]) == (50, 7)
    monkeypatch.delenv("ZHONGSHU_SCHEMA_CACHE_TABLES")
    monkeypatch.delenv("ZHONGSHU_METADATA_CACHE_TENANTS")
    defaults = load_config({"DATA_DIR": str(tmp_path / "d"), "SECRET_KEY": "x"})
    assert (defaults["SCHEMA_CACHE_TABLES"], defaults["METADATA_CACHE_TENANTS"]) == (2000, 200)


def _alive(refs) -> int:
    gc.collect()
    return len({id(r()) for r in refs if r() is not None})


def test_a_schema_the_cache_lets_go_is_freed_with_its_cached_sql(small):
    """SQLAlchemy caches compiled statements by the Table object they name: unless they
    leave with the schema, every re-read of an evicted tenant adds a Table (≈ 0.3 MB for a
    wide table) that the statement cache keeps alive, and a web process serving many tenants
    in turn grows by hundreds of MB. Counted here: the user Table objects still alive."""
    server, _, apis = small
    refs, compiled = [], 0
    for _ in range(4):  # 5 tenants through a 3-table cache: every read compiles again
        for slug in TENANTS:
            assert bodies(apis[slug]) == [f"note of {slug}"]
            for s in server.cache.schemas():
                if not any(r() is s.table for r in refs):
                    refs.append(weakref.ref(s.table))
                    compiled += 1
    assert compiled >= 4 * len(TENANTS)  # the test did evict and compile again
    assert _alive(refs) <= 3  # only what the schema cache holds
    # Still served from cached statements while cached: the same page, the same answer.
    assert bodies(apis["t5"]) == ["note of t5"]


def test_a_changed_table_frees_its_previous_schema(small):
    server, _, apis = small
    api = apis["t1"]
    assert bodies(api) == ["note of t1"]
    tid = server.tenant_by_slug("t1").id
    old = [weakref.ref(s.table) for s in server.cache.schemas() if s.tenant_id == tid]
    assert len(old) == 1
    api.ok(api.post("/tables/notes/fields", json={"api_name": "remark", "type": "text"}), 201)
    assert api.ok(api.post("/tables/notes/records", json={"body": "b", "remark": "加急"}), 201)["remark"] == "加急"
    assert sorted(bodies(api)) == ["b", "note of t1"]
    assert _alive(old) == 0

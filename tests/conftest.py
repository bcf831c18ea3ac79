"""Shared fixtures. Data-layer tests run on SQLite and on PostgreSQL.

Which databases: ``ZHONGSHU_TEST_DATABASES`` (default ``sqlite,postgresql``) and
``ZHONGSHU_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
Each test gets an empty database: a fresh SQLite file, or on PostgreSQL a fresh schema in a
database of its own per test worker. When PostgreSQL cannot be reached the PostgreSQL runs
are skipped with the reason, except under ``CI=true`` where that is a failure.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

os.environ.setdefault("ZHONGSHU_ARGON2_PROFILE", "test")  # cheap password hashes in tests only
os.environ.setdefault("ZHONGSHU_INIT_TEMPLATE", "none")  # `zhongshu init/serve` in tests: no template unless asked

from sqlalchemy import create_engine, text

from zhongshu.platform.app import create_app
from zhongshu.platform.core import Platform

PG_ADMIN_URL = os.environ.get("ZHONGSHU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = [b.strip() for b in os.environ.get("ZHONGSHU_TEST_DATABASES", "sqlite,postgresql").split(",") if b.strip()]


def _pg_reachable() -> str | None:
    try:
        e = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(text("select 1"))
        e.dispose()
        return None
    except Exception as exc:  # pragma: no cover - depends on the machine
        return str(exc).splitlines()[0]


_PG_PROBLEM = _pg_reachable() if "postgresql" in BACKENDS else "not selected"


@pytest.fixture(scope="session")
def pg_database(worker_id="master"):
    """A database of this test worker's own on the PostgreSQL server."""
    if _PG_PROBLEM:
        if os.environ.get("CI") == "true" and "postgresql" in BACKENDS:
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL unavailable: {_PG_PROBLEM}")
    name = f"zs_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    admin.dispose()  # a fresh connection: the server may have been restarted meanwhile
    try:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception as exc:  # pragma: no cover - cleanup only; the next run drops it first
        print(f"could not drop the test database {name}: {exc}")
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'zhongshu.db'}"
    url = request.getfixturevalue("pg_database")
    e = create_engine(url, isolation_level="AUTOCOMMIT")
    with e.connect() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    e.dispose()
    return url


@pytest.fixture
def config(database_url, tmp_path):
    return {"DATABASE_URL": database_url, "DATA_DIR": str(tmp_path / "instance"), "SECRET_KEY": "test-secret",
            "RUN_WORKER": False, "RUN_SCHEDULER": False}


@pytest.fixture
def platform(config):
    Path(config["DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    zs = Platform(config)
    zs.create_all()
    yield zs
    zs.close()


@pytest.fixture
def app(platform, config):
    return create_app(config, platform=platform)


class Api:
    """A logged-in browser-like client: JSON in and out, CSRF header set, tenant paths."""

    def __init__(self, client, tenant: str | None = None, csrf: str | None = None, token: str | None = None):
        self.client, self.tenant, self.csrf, self.token = client, tenant, csrf, token

    def url(self, path: str) -> str:
        if path.startswith("/api/"):
            return path
        if path.startswith("~"):
            return "/api/v1" + path[1:]
        return f"/api/v1/tenants/{self.tenant}{path}"

    def _headers(self, extra=None):
        h = {}
        if self.csrf:
            h["X-CSRF-Token"] = self.csrf
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(extra or {})
        return h

    def get(self, path, **kw):
        return self.client.get(self.url(path), headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path, json=None, **kw):
        return self.client.post(self.url(path), json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, path, json=None, **kw):
        return self.client.patch(self.url(path), json=json, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path, **kw):
        return self.client.delete(self.url(path), headers=self._headers(kw.pop("headers", None)), **kw)

    def ok(self, resp, status=None):
        assert resp.status_code < 400 if status is None else resp.status_code == status, resp.get_data(as_text=True)
        return resp.get_json()


def login(app, email, password, tenant=None) -> Api:
    client = app.test_client()
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.get_data(as_text=True)
    return Api(client, tenant, r.get_json()["csrf_token"])


@pytest.fixture
def owner(app, platform) -> Api:
    """The owner of tenant 'acme', logged in."""
    u = platform.create_user("owner@acme.test", "owner-password", name="Owner")
    platform.create_tenant("acme", "Acme 商贸", owner_email=u.email)
    return login(app, "owner@acme.test", "owner-password", "acme")


@pytest.fixture
def make_member(app, platform):
    """make_member(role, tenant='acme', attributes=None) -> a logged-in Api of a new user."""
    counter = {"n": 0}

    def make(role: str, tenant: str = "acme", attributes: dict | None = None) -> Api:
        counter["n"] += 1
        email = f"{role}{counter['n']}@{tenant}.test"
        u = platform.create_user(email, "member-password")
        t = platform.tenant_by_slug(tenant)
        platform.add_member(t.id, u.id, role, attributes)
        return login(app, email, "member-password", tenant)

    return make


ORDERS = {
    "api_name": "orders",
    "label": {"zh-CN": "订单", "en": "Orders"},
    "fields": [
        {"api_name": "order_no", "type": "autonumber", "label": "订单编号", "options": {"pattern": "SO{YYYYMMDD}{seq:05}"}},
        {"api_name": "channel", "type": "single_select", "label": "渠道",
         "options": {"choices": [{"label": "天猫"}, {"label": "抖音"}, {"label": "拼多多"}, {"label": "小程序"}]}},
        {"api_name": "customer_name", "type": "text", "label": "客户", "indexed": True},
        {"api_name": "phone", "type": "phone", "label": "电话"},
        {"api_name": "amount", "type": "currency", "label": "应收", "options": {"decimals": 2}},
        {"api_name": "paid", "type": "currency", "label": "实收"},
        {"api_name": "status", "type": "single_select", "label": "订单状态", "default": "待付款",
         "options": {"choices": [{"label": s} for s in ["待付款", "已付款", "备货中", "已发货", "已完成", "已取消", "异常中"]]}},
        {"api_name": "tracking_no", "type": "text", "label": "物流单号"},
        {"api_name": "created", "type": "datetime", "label": "下单时间"},
        {"api_name": "weight", "type": "number", "label": "重量"},
        {"api_name": "address", "type": "address", "label": "地址"},
        {"api_name": "vip", "type": "boolean", "label": "VIP"},
        {"api_name": "tags", "type": "multi_select", "label": "标签",
         "options": {"choices": [{"label": "加急"}, {"label": "赠品"}, {"label": "风险"}]}},
        {"api_name": "items", "type": "sub_table", "label": "商品明细", "options": {"fields": [
            {"api_name": "sku", "type": "text", "required": True},
            {"api_name": "category", "type": "text", "indexed": True},
            {"api_name": "qty", "type": "number", "options": {"decimals": 0, "min": 0}},
            {"api_name": "unit_price", "type": "currency"},
        ]}},
    ],
}


@pytest.fixture
def orders(owner):
    """An orders table with a sub-table of items in tenant 'acme'."""
    return owner.ok(owner.post("/tables", json=ORDERS), 201)["table"]


class Clock:
    """The platform's clock, moved by hand (naive UTC)."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


@pytest.fixture
def clock(platform):
    c = Clock(datetime(2026, 11, 21, 2, 0, 0))  # 10:00 in Asia/Shanghai
    platform.clock = c
    return c

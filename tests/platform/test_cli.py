"""The ``zhongshu`` command line, run the way an operator runs it: configured through
ZHONGSHU_* environment variables, against a fresh SQLite instance folder."""
from __future__ import annotations

import json
import re
import stat

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from zhongshu.platform.app import create_app
from zhongshu.platform.cli import main
from zhongshu.platform.core import Platform
from zhongshu.platform.models import Membership, Tenant, User
from zhongshu.platform.validation import all_schema_names


@pytest.fixture
def instance(tmp_path):
    data = tmp_path / "instance"
    data.mkdir()
    return {"ZHONGSHU_DATA_DIR": str(data), "ZHONGSHU_DATABASE_URL": f"sqlite:///{data / 'zhongshu.db'}",
            "ZHONGSHU_RUN_WORKER": "false", "ZHONGSHU_RUN_SCHEDULER": "false"}


@pytest.fixture
def run(instance):
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, list(args), env=instance, input=input)

    return run


@pytest.fixture
def inspect(instance):
    """Opens the instance's database the way the server would."""
    platforms = []

    def open_():
        zs = Platform({"DATA_DIR": instance["ZHONGSHU_DATA_DIR"], "DATABASE_URL": instance["ZHONGSHU_DATABASE_URL"],
                       "RUN_WORKER": False, "RUN_SCHEDULER": False})
        platforms.append(zs)
        return zs

    yield open_
    for zs in platforms:
        zs.close()


def ok(result):
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def refused(result) -> str:
    """A clean refusal: a non-zero exit with a message, not a crash with a traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), f"crashed with {result.exception!r}"
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ") or "Error: " in result.output
    return result.output


def _password(output: str) -> str:
    m = re.search(r"log in as (\S+) with password (\S+)", output)
    assert m, output
    return m.group(2)


def test_init_prepares_the_instance_and_prints_how_to_log_in(run, instance, inspect):
    out = ok(run("init"))
    assert "tenant: demo" in out
    assert "log in as admin@example.com with password " in out
    password = _password(out)
    creds = instance["ZHONGSHU_DATA_DIR"] + "/admin_credentials.json"
    assert json.loads(open(creds, encoding="utf-8").read()) == {"email": "admin@example.com", "password": password}
    assert stat.S_IMODE(__import__("os").stat(creds).st_mode) == 0o600
    app = create_app(platform=inspect(), config={"DATA_DIR": instance["ZHONGSHU_DATA_DIR"],
                                                  "DATABASE_URL": instance["ZHONGSHU_DATABASE_URL"]})
    r = app.test_client().post("/api/v1/auth/login", json={"email": "admin@example.com", "password": password})
    assert r.status_code == 200
    assert [(t["slug"], t["role"]) for t in r.get_json()["tenants"]] == [("demo", "owner")]
    assert r.get_json()["user"]["is_superuser"] is True


def test_init_twice_changes_nothing(run, inspect):
    first = ok(run("init"))
    second = ok(run("init"))
    assert _password(second) == _password(first)  # the same login details, not a new admin
    with inspect().tenant_session(None) as s:
        assert [u.email for u in s.scalars(select(User))] == ["admin@example.com"]
        assert [t.slug for t in s.scalars(select(Tenant))] == ["demo"]
        assert len(s.scalars(select(Membership)).all()) == 1


def test_init_with_options(run, inspect):
    out = ok(run("init", "--admin-email", "boss@shop.test", "--tenant", "shop", "--tenant-name", "小店"))
    assert "tenant: shop" in out and "log in as boss@shop.test" in out
    with inspect().tenant_session(None) as s:
        assert s.scalar(select(Tenant.name).where(Tenant.slug == "shop")) == "小店"


def test_user_create_adds_a_user_to_a_tenant_with_a_role(run, instance, inspect):
    ok(run("init"))
    out = ok(run("user", "create", "Clerk@Shop.test", "--password", "clerk-password", "--name", "店员",
                 "--tenant", "demo", "--role", "builder"))
    assert "created user clerk@shop.test" in out
    zs = inspect()
    with zs.tenant_session(None) as s:
        u = s.scalar(select(User).where(User.email == "clerk@shop.test"))
        assert u.name == "店员" and not u.is_superuser
        assert s.scalar(select(Membership.role).where(Membership.user_id == u.id)) == "builder"
    app = create_app(platform=zs, config={"DATA_DIR": instance["ZHONGSHU_DATA_DIR"],
                                          "DATABASE_URL": instance["ZHONGSHU_DATABASE_URL"]})
    r = app.test_client().post("/api/v1/auth/login", json={"email": "clerk@shop.test", "password": "clerk-password"})
    assert [(t["slug"], t["role"]) for t in r.get_json()["tenants"]] == [("demo", "builder")]


def test_user_create_asks_for_the_password_twice(run, inspect):
    ok(run("init"))
    ok(run("user", "create", "typed@shop.test", input="typed-password\ntyped-password\n"))
    with inspect().tenant_session(None) as s:
        assert s.scalar(select(User).where(User.email == "typed@shop.test")) is not None


def test_user_create_refuses_bad_input_cleanly(run):
    ok(run("init"))
    assert "email" in refused(run("user", "create", "not-an-email", "--password", "long-enough-pw"))
    assert "8 to 256" in refused(run("user", "create", "a@shop.test", "--password", "short"))
    refused(run("user", "create", "b@shop.test", "--password", "long-enough-pw", "--role", "god"))


def test_user_create_for_an_unknown_tenant_is_refused(run):
    ok(run("init"))
    assert "no tenant nope" in refused(run("user", "create", "c@shop.test", "--password", "long-enough-pw", "--tenant", "nope"))


def test_user_create_for_an_unknown_tenant_creates_nothing(run, inspect):
    ok(run("init"))
    refused(run("user", "create", "c@shop.test", "--password", "long-enough-pw", "--tenant", "nope"))
    with inspect().tenant_session(None) as s:
        assert s.scalar(select(User).where(User.email == "c@shop.test")) is None


def test_user_create_with_a_taken_email_is_refused_cleanly(run):
    ok(run("init"))
    assert "already" in refused(run("user", "create", "admin@example.com", "--password", "long-enough-pw"))


def test_tenant_create_and_list(run, inspect):
    ok(run("init"))
    ok(run("user", "create", "boss@north.test", "--password", "long-enough-pw"))
    out = ok(run("tenant", "create", "north-shop", "--name", "北方店", "--owner", "boss@north.test", "--timezone", "Asia/Tokyo"))
    assert re.search(r"created tenant north-shop \(id \d+\)", out)
    ok(run("tenant", "create", "south"))
    lines = ok(run("tenant", "list")).strip().splitlines()
    assert [line.split("\t")[1:] for line in lines] == [
        ["demo", "演示公司 Demo Co.", "Asia/Shanghai"], ["north-shop", "北方店", "Asia/Tokyo"], ["south", "south", "Asia/Shanghai"]]
    with inspect().tenant_session(None) as s:
        north = s.scalar(select(Tenant).where(Tenant.slug == "north-shop"))
        owner_id = s.scalar(select(User.id).where(User.email == "boss@north.test"))
        assert s.scalar(select(Membership.role).where(Membership.tenant_id == north.id, Membership.user_id == owner_id)) == "owner"


def test_tenant_create_refuses_a_bad_slug_with_a_clear_error(run, inspect):
    ok(run("init"))
    for slug in ("Bad Slug", "x", "UPPER", "under_score", "a" * 64):
        out = refused(run("tenant", "create", slug))
        assert "lower-case letters, digits or '-'" in out
    out = refused(run("tenant", "create", "ghost-owned", "--owner", "nobody@shop.test"))
    assert "nobody@shop.test" in out
    with inspect().tenant_session(None) as s:
        assert [t.slug for t in s.scalars(select(Tenant))] == ["demo"]  # nothing half-made


def test_tenant_create_refuses_a_taken_slug_cleanly(run):
    ok(run("init"))
    assert "demo" in refused(run("tenant", "create", "demo"))


def test_tenant_create_refuses_an_unknown_time_zone(run):
    ok(run("init"))
    refused(run("tenant", "create", "mars", "--timezone", "Mars/Olympus_Mons"))


def test_schemas_writes_every_published_schema(run, tmp_path):
    out_dir = tmp_path / "published" / "schemas"
    out = ok(run("schemas", str(out_dir)))
    names = all_schema_names()
    assert f"wrote {len(names)} schemas" in out
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{n}.json" for n in names)
    for n in names:
        doc = json.loads((out_dir / f"{n}.json").read_text("utf-8"))
        assert doc["$schema"].startswith("https://json-schema.org/draft/2020-12")
    assert {"table", "view", "dashboard", "filter", "permissions"} <= set(names)


def test_migrate_and_help(run):
    assert "database at head" in ok(run("migrate"))
    helptext = ok(run("--help"))
    for cmd in ("init", "serve", "migrate", "user", "tenant", "schemas"):
        assert cmd in helptext

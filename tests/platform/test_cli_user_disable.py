"""``zhongshu user disable / enable`` as an operator runs them, against a fresh instance folder:
the account (everywhere) or, with --tenant, one membership."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from zhongshu.platform.app import create_app
from zhongshu.platform.models import AuditLog, Membership, User, UserSession

from tests.conftest import Api
from tests.platform.test_cli import inspect, instance, ok, refused, run  # noqa: F401  (fixtures)


@pytest.fixture
def demo(run):
    """`init` (admin@example.com, tenant demo) plus a clerk, logged in with a token in demo."""
    ok(run("init"))
    ok(run("user", "create", "clerk@demo.test", "--password", "clerk-password", "--tenant", "demo", "--role", "member"))


def _login(zs, email="clerk@demo.test", password="clerk-password"):
    app = create_app(platform=zs, config=zs.config)
    c = app.test_client()
    r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
    return app, c, r


def _clerk_with_session_and_token(zs):
    app, c, r = _login(zs)
    assert r.status_code == 200, r.get_data(as_text=True)
    session = Api(c, "demo", r.get_json()["csrf_token"])
    token = session.ok(session.post("/tokens", json={"name": "scanner"}), 201)["token"]
    return app, session, Api(app.test_client(), "demo", token=token)


def _rows(zs, model, **where):
    with zs.tenant_session(None) as s:
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return s.scalars(q).all()


def test_user_disable_ends_sessions_refuses_tokens_and_logins_and_enable_undoes_it(run, demo, inspect):
    zs = inspect()
    app, session, bearer = _clerk_with_session_and_token(zs)
    out = ok(run("user", "disable", "Clerk@demo.test", "--reason", "离职"))
    assert "disabled clerk@demo.test" in out and "sessions ended: 1" in out
    assert session.get("~/auth/me").status_code == 401 and bearer.get("/tables").status_code == 401
    assert all(s.revoked_at is not None for s in _rows(zs, UserSession))
    _, _, r = _login(zs)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "account_disabled"
    [entry] = _rows(zs, AuditLog, action="disable_user")
    assert entry.user_id is None and entry.detail == {"via": "cli", "reason": "离职"}
    [u] = _rows(zs, User, email="clerk@demo.test")
    assert u.disabled and len(_rows(zs, Membership, user_id=u.id)) == 1  # nothing deleted

    assert "already disabled" in ok(run("user", "disable", "clerk@demo.test"))
    assert "enabled clerk@demo.test" in ok(run("user", "enable", "clerk@demo.test"))
    assert bearer.get("/tables").status_code == 200
    assert _login(zs)[2].status_code == 200
    assert [e.action for e in _rows(zs, AuditLog, object_id=u.id) if e.object_type == "user"] == ["disable_user", "enable_user"]


def test_user_disable_with_tenant_disables_only_the_membership(run, demo, inspect):
    zs = inspect()
    app, session, bearer = _clerk_with_session_and_token(zs)
    assert "disabled clerk@demo.test in demo" in ok(run("user", "disable", "clerk@demo.test", "--tenant", "demo"))
    r = bearer.get("/tables")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "member_disabled"
    assert session.get("~/auth/me").status_code == 401  # demo was their only workspace
    [m] = _rows(zs, Membership, role="member")
    assert m.disabled_at is not None
    assert not _rows(zs, User, email="clerk@demo.test")[0].disabled
    assert [e.action for e in _rows(zs, AuditLog, object_type="member")][-1] == "disable_member"
    ok(run("user", "enable", "clerk@demo.test", "--tenant", "demo"))
    assert bearer.get("/tables").status_code == 200


def test_user_disable_refuses_what_would_lock_people_out_cleanly(run, demo, inspect):
    assert "last active instance administrator" in refused(run("user", "disable", "admin@example.com"))
    assert "instance administrator" in refused(run("user", "disable", "admin@example.com", "--tenant", "demo"))
    ok(run("tenant", "create", "solo", "--owner", "clerk@demo.test"))
    assert "last active owner" in refused(run("user", "disable", "clerk@demo.test", "--tenant", "solo"))
    assert "no user" in refused(run("user", "disable", "nobody@demo.test"))
    assert "no tenant" in refused(run("user", "disable", "clerk@demo.test", "--tenant", "nope"))
    assert "not a member" in refused(run("user", "enable", "admin@example.com", "--tenant", "solo"))
    assert "500 characters" in refused(run("user", "disable", "clerk@demo.test", "--reason", "x" * 501))
    zs = inspect()
    assert not any(u.disabled for u in _rows(zs, User)) and not any(m.disabled_at for m in _rows(zs, Membership))


def test_disabling_a_workspaces_only_owner_account_warns(run, demo):
    ok(run("tenant", "create", "solo", "--owner", "clerk@demo.test"))
    out = ok(run("user", "disable", "clerk@demo.test"))
    assert "no active owner is left in solo" in out

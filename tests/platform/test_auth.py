"""Logging in and out, the CSRF guard, login throttling and API tokens."""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from zhongshu.platform.models import ApiToken, User, utcnow

from tests.conftest import Api, login


@pytest.fixture
def acme(platform, owner):
    """Tenant 'acme' (made by the owner fixture)."""
    return platform.tenant_by_slug("acme")


def _token(owner: Api, **body) -> dict:
    return owner.ok(owner.post("/tokens", json={"name": "integration", **body}), 201)


def _bearer(app, raw: str, tenant: str = "acme") -> Api:
    """A client that sends only the token: no cookie, no CSRF header."""
    return Api(app.test_client(), tenant, token=raw)


def _set_user(platform, email: str, **values):
    with platform.tenant_session(None, write=True) as s:
        s.execute(update(User).where(User.email == email).values(**values))


# -- sessions ------------------------------------------------------------------------------

def test_login_returns_the_user_the_csrf_token_and_the_tenants(app, owner):
    client = app.test_client()
    r = client.post("/api/v1/auth/login", json={"email": "OWNER@acme.test", "password": "owner-password"})
    assert r.status_code == 200
    data = r.get_json()
    assert data["user"]["email"] == "owner@acme.test"  # e-mail addresses are case-insensitive
    assert data["csrf_token"]
    assert [(t["slug"], t["role"]) for t in data["tenants"]] == [("acme", "owner")]
    assert "password" not in r.get_data(as_text=True) and "argon2" not in r.get_data(as_text=True)


def test_me_shows_who_is_logged_in_and_logout_ends_the_session(owner):
    me = owner.ok(owner.get("~/auth/me"))
    assert me["user"]["email"] == "owner@acme.test"
    assert me["csrf_token"] == owner.csrf
    owner.ok(owner.post("~/auth/logout"))
    r = owner.get("~/auth/me")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"
    assert owner.get("/tables").status_code == 401


def test_anonymous_requests_get_401(app, owner):
    anon = Api(app.test_client(), "acme")
    assert anon.get("~/auth/me").status_code == 401
    assert anon.get("/tables").status_code == 401
    assert anon.post("/tables", json={"api_name": "x"}).status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_401(app, owner):
    client = app.test_client()
    wrong = client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "not-the-password"})
    unknown = client.post("/api/v1/auth/login", json={"email": "nobody@acme.test", "password": "not-the-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()  # nothing tells whether the account exists
    assert wrong.get_json()["error"]["message"] == "wrong email or password"


def test_login_needs_email_and_password(app, owner):
    r = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test"})
    assert r.status_code == 400
    assert r.get_json()["error"]["errors"][0]["pointer"] == "/email"


def test_session_cookie_is_http_only_and_same_site(app, owner):
    r = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
    cookies = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("zhongshu_session=")]
    assert len(cookies) == 1
    flags = [p.strip().lower() for p in cookies[0].split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags


def test_disabled_user_cannot_log_in_and_their_session_stops_working(app, platform, owner):
    _set_user(platform, "owner@acme.test", disabled=True)
    r = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "account_disabled"  # said only with the right password
    r = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "wrong-password"})
    assert r.status_code == 401 and r.get_json()["error"]["message"] == "wrong email or password"
    assert owner.get("/tables").status_code == 401  # the session opened before is no longer accepted


def test_a_changed_password_hash_logs_out_existing_sessions(platform, owner):
    from zhongshu.platform.auth import hash_password

    assert owner.get("/tables").status_code == 200
    _set_user(platform, "owner@acme.test", password_hash=hash_password("a-brand-new-password"))
    assert owner.get("/tables").status_code == 401


# Changing the password through the API (POST /api/v1/auth/password): see
# tests/security/test_browser_sessions.py::test_changing_the_password_ends_the_other_sessions_and_keeps_this_one


# -- CSRF ----------------------------------------------------------------------------------

def test_session_writes_need_the_csrf_header(owner):
    bare = Api(owner.client, "acme")  # the same logged-in browser, without the header
    r = bare.post("/tables", json={"api_name": "notes", "fields": [{"api_name": "text", "type": "text"}]})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "csrf"
    wrong = Api(owner.client, "acme", csrf="forged-token")
    assert wrong.post("/tables", json={"api_name": "notes"}).get_json()["error"]["code"] == "csrf"
    assert bare.get("/tables").status_code == 200  # reads need no header
    assert owner.ok(owner.get("/tables"))["tables"] == []  # nothing was created


def test_csrf_token_changes_with_every_login(app, owner):
    again = login(app, "owner@acme.test", "owner-password", "acme")
    assert again.csrf != owner.csrf
    stale = Api(again.client, "acme", csrf=owner.csrf)
    assert stale.post("/tables", json={"api_name": "notes"}).status_code == 403


# -- throttling ----------------------------------------------------------------------------

def test_failed_logins_are_throttled_with_retry_after(app, platform, owner):
    app.config["LOGIN_MAX_ATTEMPTS"] = 3
    client = app.test_client()
    for _ in range(3):
        r = client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "guess"})
        assert r.status_code == 401
    blocked = client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
    assert blocked.status_code == 429  # even the right password waits now
    assert blocked.get_json()["error"]["code"] == "too_many_requests"
    assert int(blocked.headers["Retry-After"]) > 0
    # other accounts are not locked out by someone guessing this one
    platform.create_user("other@acme.test", "other-password")
    assert client.post("/api/v1/auth/login", json={"email": "other@acme.test", "password": "other-password"}).status_code == 200


def test_a_successful_login_clears_earlier_failures(app, owner):
    app.config["LOGIN_MAX_ATTEMPTS"] = 3
    client = app.test_client()
    for _ in range(2):
        client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "guess"})
    assert client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"}).status_code == 200
    for _ in range(2):
        client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "guess"})
    assert client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"}).status_code == 200


def test_unknown_accounts_are_throttled_too(app, owner):
    app.config["LOGIN_MAX_ATTEMPTS"] = 2
    client = app.test_client()
    statuses = [client.post("/api/v1/auth/login", json={"email": "ghost@acme.test", "password": "x"}).status_code
                for _ in range(3)]
    assert statuses == [401, 401, 429]


# -- API tokens ----------------------------------------------------------------------------

def test_a_token_is_shown_once_and_stored_only_as_its_hash(platform, owner):
    created = _token(owner)
    raw = created["token"]
    assert raw.startswith("zs_") and created["prefix"] == raw[:10]
    listed = owner.ok(owner.get("/tokens"))["tokens"]
    assert [t["name"] for t in listed] == ["integration"]
    assert "token" not in listed[0] and raw not in str(listed)  # never shown again
    with platform.tenant_session(None) as s:
        row = s.scalar(select(ApiToken).where(ApiToken.id == created["id"]))
        stored = {c.name: getattr(row, c.name) for c in ApiToken.__table__.columns}
    assert stored["token_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert all(raw not in str(v) for v in stored.values())


def test_a_token_works_without_cookie_or_csrf(app, owner, orders):
    api = _bearer(app, _token(owner)["token"])
    rec = api.ok(api.post("/tables/orders/records", json={"customer_name": "张三"}), 201)
    assert rec["created_by"] == owner.ok(owner.get("~/auth/me"))["user"]["id"]  # acts as its user
    assert api.ok(api.get("/tables/orders/records?count=true"))["total"] == 1


def test_a_revoked_token_gets_401(app, owner, orders):
    created = _token(owner)
    api = _bearer(app, created["token"])
    assert api.get("/tables").status_code == 200
    owner.ok(owner.delete(f"/tokens/{created['id']}"))
    r = api.get("/tables")
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"
    assert owner.ok(owner.get("/tokens"))["tokens"][0]["revoked"] is True


def test_an_expired_token_gets_401(app, platform, owner):
    created = _token(owner, expires_in_days=1)
    api = _bearer(app, created["token"])
    assert api.get("/tables").status_code == 200
    with platform.tenant_session(None, write=True) as s:
        s.execute(update(ApiToken).where(ApiToken.id == created["id"]).values(expires_at=utcnow() - timedelta(minutes=1)))
    assert api.get("/tables").status_code == 401


def test_a_made_up_token_gets_401(app, owner):
    assert _bearer(app, "zs_not-a-real-token").get("/tables").status_code == 401


def test_a_viewer_token_reads_but_cannot_write(app, owner, orders):
    owner.ok(owner.post("/tables/orders/records", json={"customer_name": "张三"}), 201)
    api = _bearer(app, _token(owner, role="viewer")["token"])
    assert api.ok(api.get("/tables/orders/records?count=true"))["total"] == 1
    r = api.post("/tables/orders/records", json={"customer_name": "李四"})
    assert r.status_code == 403
    assert api.post("/tables", json={"api_name": "notes"}).status_code == 403
    assert owner.ok(owner.get("/tables/orders/records?count=true"))["total"] == 1


def test_a_token_role_never_raises_the_users_role(app, owner, make_member, orders):
    member = make_member("member")
    raw = member.ok(member.post("/tokens", json={"name": "mine", "role": "owner"}), 201)["token"]
    api = _bearer(app, raw)
    assert api.post("/tables", json={"api_name": "notes"}).status_code == 403  # still a member
    assert api.post("/members", json={"email": "x@acme.test"}).status_code == 403


def test_a_token_cannot_create_tokens(app, owner):
    api = _bearer(app, _token(owner)["token"])
    r = api.post("/tokens", json={"name": "another"})
    assert r.status_code == 403
    assert len(owner.ok(owner.get("/tokens"))["tokens"]) == 1


def test_token_requests_are_checked(owner):
    assert owner.post("/tokens", json={}).get_json()["error"]["errors"][0]["pointer"] == "/name"
    assert owner.post("/tokens", json={"name": "t", "role": "god"}).get_json()["error"]["errors"][0]["pointer"] == "/role"
    r = owner.post("/tokens", json={"name": "t", "expires_in_days": 0})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/expires_in_days"


def test_members_see_and_revoke_only_their_own_tokens(app, owner, make_member):
    owners = _token(owner)
    member = make_member("member")
    mine = member.ok(member.post("/tokens", json={"name": "mine"}), 201)
    assert [t["id"] for t in member.ok(member.get("/tokens"))["tokens"]] == [mine["id"]]
    assert member.delete(f"/tokens/{owners['id']}").status_code == 404
    assert _bearer(app, owners["token"]).get("/tables").status_code == 200  # still valid
    assert {t["id"] for t in owner.ok(owner.get("/tokens"))["tokens"]} == {owners["id"], mine["id"]}  # admins see all


def test_a_disabled_users_token_stops_working(app, platform, owner):
    api = _bearer(app, _token(owner)["token"])
    _set_user(platform, "owner@acme.test", disabled=True)
    assert api.get("/tables").status_code == 401

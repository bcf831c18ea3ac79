"""Server-side browser sessions (table user_sessions) and login throttling per address.

The cookie carries only a random token whose SHA-256 is stored; every request looks it up,
so logout, revoking a session from another device, disabling the user and a password change
end a session even for a copy of the cookie taken before."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from zhongshu.platform.models import User, UserSession, utcnow

from tests.conftest import Api, login


def _cookie_value(api: Api) -> str:
    return api.client.get_cookie("zhongshu_session").value


def _cookie_data(app, api: Api) -> dict:
    return app.session_interface.get_signing_serializer(app).loads(_cookie_value(api))


def _replay(app, raw_cookie: str) -> Api:
    """Another machine holding a copy of the cookie (no CSRF header needed for reads)."""
    c = app.test_client()
    c.set_cookie("zhongshu_session", raw_cookie, domain="localhost")
    return Api(c, "acme")


def _rows(platform, email="owner@acme.test") -> list[UserSession]:
    with platform.tenant_session(None) as s:
        uid = s.scalar(select(User.id).where(User.email == email))
        return list(s.scalars(select(UserSession).where(UserSession.user_id == uid).order_by(UserSession.id)))


def _set_user(platform, email: str, **values):
    with platform.tenant_session(None, write=True) as s:
        s.execute(update(User).where(User.email == email).values(**values))


def _set_session(platform, session_id: int, **values):
    with platform.tenant_session(None, write=True) as s:
        s.execute(update(UserSession).where(UserSession.id == session_id).values(**values))


# -- what is stored ----------------------------------------------------------------------------

def test_the_cookie_holds_a_random_token_and_the_database_only_its_hash(app, platform, owner):
    data = _cookie_data(app, owner)
    assert "uid" not in data and set(data) - {"_permanent"} == {"sid", "pw", "csrf"}
    [row] = _rows(platform)
    assert row.token_hash == hashlib.sha256(data["sid"].encode()).hexdigest() and data["sid"] != row.token_hash
    with platform.tenant_session(None) as s:
        stored = s.scalar(select(User.password_hash).where(User.email == "owner@acme.test"))
    assert data["pw"] not in stored  # the password fingerprint is a digest, no part of the hash
    assert row.revoked_at is None and row.expires_at - row.created_at == timedelta(days=7)
    assert row.ip == "127.0.0.1" and row.user_agent.startswith("Werkzeug")


# -- ending sessions ---------------------------------------------------------------------------

def test_logging_in_again_in_the_same_browser_ends_its_previous_session_and_needs_no_csrf(app, platform, owner):
    before = _cookie_value(owner)
    r = owner.client.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
    assert r.status_code == 200
    assert _replay(app, before).get("/tables").status_code == 401
    assert Api(owner.client, "acme").get("/tables").status_code == 200
    assert [r.revoked_at is not None for r in _rows(platform)] == [True, False]


def test_an_expired_session_is_refused(platform, owner):
    [row] = _rows(platform)
    _set_session(platform, row.id, expires_at=utcnow() - timedelta(seconds=1))
    assert owner.get("/tables").status_code == 401


def test_disabling_a_user_ends_their_sessions_for_good(app, platform, owner):
    copy = _cookie_value(owner)
    _set_user(platform, "owner@acme.test", disabled=True)
    assert owner.get("/tables").status_code == 401
    assert all(r.revoked_at is not None for r in _rows(platform))
    _set_user(platform, "owner@acme.test", disabled=False)  # enabled again: the old sessions stay ended
    assert owner.get("/tables").status_code == 401 and _replay(app, copy).get("/tables").status_code == 401
    assert login(app, "owner@acme.test", "owner-password", "acme").get("/tables").status_code == 200


def test_a_password_changed_outside_the_api_ends_existing_sessions(platform, owner):
    from zhongshu.platform.auth import hash_password

    _set_user(platform, "owner@acme.test", password_hash=hash_password("changed-by-the-cli"))
    assert owner.get("/tables").status_code == 401
    assert _rows(platform)[0].revoked_at is not None


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(app, platform, owner):
    laptop = login(app, "owner@acme.test", "owner-password", "acme")
    copy_of_laptop = _cookie_value(laptop)
    r = owner.post("~/auth/password", json={"current_password": "owner-password", "new_password": "a-new-password-1"})
    assert owner.ok(r) == {"ok": True, "ended_sessions": 1}
    assert owner.get("/tables").status_code == 200  # this session goes on
    assert owner.ok(owner.post("/tables", json={"api_name": "notes"}), 201)  # and its CSRF token still works
    assert laptop.get("/tables").status_code == 401 and _replay(app, copy_of_laptop).get("/tables").status_code == 401
    old = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
    assert old.status_code == 401
    assert login(app, "owner@acme.test", "a-new-password-1", "acme").get("/tables").status_code == 200


def test_a_password_change_needs_the_current_password_a_valid_new_one_and_csrf(app, owner):
    wrong = owner.post("~/auth/password", json={"current_password": "guess", "new_password": "a-new-password-1"})
    assert wrong.status_code == 400 and wrong.get_json()["error"]["errors"][0]["pointer"] == "/current_password"
    short = owner.post("~/auth/password", json={"current_password": "owner-password", "new_password": "short"})
    assert short.status_code == 400 and short.get_json()["error"]["errors"][0]["pointer"] == "/new_password"
    for bad in ({}, {"current_password": 1, "new_password": "a-new-password-1"}, {"current_password": "owner-password"}):
        assert owner.post("~/auth/password", json=bad).status_code == 400, bad
    no_csrf = Api(owner.client).post("~/auth/password", json={"current_password": "owner-password", "new_password": "a-new-password-1"})
    assert no_csrf.status_code == 403 and no_csrf.get_json()["error"]["code"] == "csrf"
    assert login(app, "owner@acme.test", "owner-password").client  # still the old password


def test_guessing_the_current_password_is_throttled(app, owner):
    app.config["LOGIN_MAX_ATTEMPTS"] = 3
    codes = [owner.post("~/auth/password", json={"current_password": f"guess{i}", "new_password": "a-new-password-1"}).status_code
             for i in range(4)]
    assert codes == [400, 400, 400, 429]


# -- listing and revoking one's own sessions -----------------------------------------------------

def test_a_user_lists_their_live_sessions_and_revokes_another_device(app, platform, owner, make_member):
    phone = login(app, "owner@acme.test", "owner-password", "acme")
    ended = login(app, "owner@acme.test", "owner-password", "acme")
    ended.ok(ended.post("~/auth/logout"))
    member = make_member("member")
    listed = owner.ok(owner.get("~/auth/sessions"))["sessions"]
    assert len(listed) == 2  # not the logged-out one, not the member's
    mine = next(s for s in listed if s["current"])
    other = next(s for s in listed if not s["current"])
    assert {"id", "created_at", "last_seen_at", "expires_at", "ip", "user_agent"} <= set(mine) and mine["ip"] == "127.0.0.1"
    assert Api(owner.client).delete(f"~/auth/sessions/{other['id']}").status_code == 403  # CSRF still guards it
    assert owner.ok(owner.delete(f"~/auth/sessions/{other['id']}")) == {"ok": True}
    assert phone.get("/tables").status_code == 401
    assert [s["id"] for s in owner.ok(owner.get("~/auth/sessions"))["sessions"]] == [mine["id"]]
    assert member.get("/tables").status_code == 200


def test_another_users_session_cannot_be_seen_or_revoked(app, platform, owner, make_member):
    member = make_member("member")
    theirs = member.ok(member.get("~/auth/sessions"))["sessions"][0]["id"]
    for sid in (theirs, 10**6, 10**30):
        r = owner.delete(f"~/auth/sessions/{sid}")
        assert r.status_code == 404, (sid, r.status_code)
    assert member.get("/tables").status_code == 200


def test_revoking_the_current_session_logs_this_browser_out(app, owner):
    copy = _cookie_value(owner)
    me = next(s for s in owner.ok(owner.get("~/auth/sessions"))["sessions"] if s["current"])
    assert owner.ok(owner.delete(f"~/auth/sessions/{me['id']}"))
    assert owner.get("/tables").status_code == 401 and _replay(app, copy).get("/tables").status_code == 401


def test_api_tokens_cannot_list_or_revoke_browser_sessions(app, owner):
    raw = owner.ok(owner.post("/tokens", json={"name": "ci"}), 201)["token"]
    bearer = Api(app.test_client(), "acme", token=raw)
    me = owner.ok(owner.get("~/auth/sessions"))["sessions"][0]["id"]
    assert bearer.get("~/auth/sessions").status_code == 403
    assert bearer.delete(f"~/auth/sessions/{me}").status_code == 403
    assert bearer.post("~/auth/password", json={"current_password": "owner-password", "new_password": "x" * 12}).status_code == 403
    assert owner.get("/tables").status_code == 200


def test_sessions_need_a_login(app):
    assert app.test_client().get("/api/v1/auth/sessions").status_code == 401


# -- cost per request ---------------------------------------------------------------------------

def test_a_request_reads_the_session_with_one_query_and_writes_last_seen_at_most_once_a_minute(platform, owner):
    statements: list[str] = []

    def seen(conn, cursor, statement, *a):
        statements.append(statement)

    [row] = _rows(platform)
    two_minutes_ago = utcnow() - timedelta(minutes=2)
    _set_session(platform, row.id, last_seen_at=two_minutes_ago)
    event.listen(platform.engine, "before_cursor_execute", seen)
    try:
        assert owner.get("/tables").status_code == 200
        touched = _rows(platform)[0].last_seen_at
        statements.clear()
        assert owner.get("/tables").status_code == 200
    finally:
        event.remove(platform.engine, "before_cursor_execute", seen)
    assert touched > two_minutes_ago  # a minute had passed: last_seen_at was written
    about_sessions = [s for s in statements if "user_sessions" in s]
    assert len(about_sessions) == 1 and about_sessions[0].lstrip().upper().startswith("SELECT")  # no write this time
    assert not [s for s in statements if re.search(r"\bFROM users\b", s) and "user_sessions" not in s]
    assert _rows(platform)[0].last_seen_at == touched


# -- throttling per address across accounts -------------------------------------------------------

def _try(app, email, password, addr):
    return app.test_client().post("/api/v1/auth/login", json={"email": email, "password": password},
                                  environ_base={"REMOTE_ADDR": addr})


def test_one_address_trying_many_accounts_is_stopped(app, platform, owner):
    app.config["LOGIN_MAX_ATTEMPTS_PER_ADDRESS"] = 5
    spray = "203.0.113.50"
    codes = [_try(app, f"user{i}@acme.test", "Password1", spray).status_code for i in range(5)]
    assert codes == [401] * 5  # one guess per account: the per-account limit never trips
    blocked = _try(app, "owner@acme.test", "owner-password", spray)  # even a right password waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert blocked.get_json()["error"]["code"] == "too_many_requests"
    assert _try(app, "owner@acme.test", "owner-password", "198.51.100.8").status_code == 200  # the owner elsewhere


def test_a_good_login_does_not_reset_the_address_count(app, platform, owner):
    app.config["LOGIN_MAX_ATTEMPTS_PER_ADDRESS"] = 4
    addr = "203.0.113.51"
    for i in range(2):
        assert _try(app, f"a{i}@acme.test", "x", addr).status_code == 401
    assert _try(app, "owner@acme.test", "owner-password", addr).status_code == 200
    for i in range(2):
        assert _try(app, f"b{i}@acme.test", "x", addr).status_code == 401
    assert _try(app, "owner@acme.test", "owner-password", addr).status_code == 429


@pytest.mark.parametrize("limit", [1, 3])
def test_the_per_address_limit_is_configurable(app, owner, limit):
    app.config["LOGIN_MAX_ATTEMPTS_PER_ADDRESS"] = limit
    codes = [_try(app, f"c{i}@acme.test", "x", "203.0.113.52").status_code for i in range(limit + 1)]
    assert codes == [401] * limit + [429]


def test_the_per_address_limit_comes_from_the_environment(monkeypatch, tmp_path):
    from zhongshu.platform.config import load_config

    assert load_config({"DATA_DIR": str(tmp_path)})["LOGIN_MAX_ATTEMPTS_PER_ADDRESS"] == 50
    monkeypatch.setenv("ZHONGSHU_LOGIN_MAX_ATTEMPTS_PER_ADDRESS", "20")
    assert load_config({"DATA_DIR": str(tmp_path)})["LOGIN_MAX_ATTEMPTS_PER_ADDRESS"] == 20


# -- the OpenAPI document describes the session endpoints -----------------------------------------

def test_the_openapi_document_describes_the_session_endpoints(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    ops = {(p, m): op for p, item in doc["paths"].items() for m, op in item.items()}
    for key in (("/api/v1/auth/sessions", "get"), ("/api/v1/auth/sessions/{session_id}", "delete"),
                ("/api/v1/auth/password", "post")):
        assert key in ops and not ops[key].get("x-undocumented"), key
    assert "LOGIN_MAX_ATTEMPTS_PER_ADDRESS" in ops[("/api/v1/auth/login", "post")]["description"]



def test_sessions_long_expired_are_deleted_at_the_next_login(app, platform, owner):
    recent = login(app, "owner@acme.test", "owner-password")
    old, recent_row = _rows(platform)
    _set_session(platform, old.id, expires_at=utcnow() - timedelta(days=31))
    _set_session(platform, recent_row.id, expires_at=utcnow() - timedelta(days=1))
    login(app, "owner@acme.test", "owner-password")
    ids = [r.id for r in _rows(platform)]
    assert old.id not in ids and recent_row.id in ids and len(ids) == 2
    assert recent.get("~/auth/me").status_code == 401

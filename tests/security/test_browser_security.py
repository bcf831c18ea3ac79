"""Browser security beyond tests/platform/test_auth.py: CSRF on every kind of session write,
the Secure cookie flag, Argon2id parameters, CSP of the builder, throttling per address,
token revocation taking effect at once, and logout."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from zhongshu.platform.models import ApiToken, User

from tests.conftest import Api, login


def _cookie(resp, name="zhongshu_session"):
    found = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith(name + "=")]
    assert len(found) == 1, resp.headers.getlist("Set-Cookie")
    return [p.strip().lower() for p in found[0].split(";")]


# -- CSRF ------------------------------------------------------------------------------------

def test_every_write_method_needs_the_csrf_header_with_a_session(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "甲"}), 201)
    bare = Api(owner.client, "acme")
    attempts = {
        "POST record": bare.post("/tables/orders/records", json={"customer_name": "乙"}),
        "PATCH record": bare.patch(f"/tables/orders/records/{rec['id']}", json={"customer_name": "丙"}),
        "DELETE record": bare.delete(f"/tables/orders/records/{rec['id']}"),
        "PATCH table": bare.patch("/tables/orders", json={"label": "X"}),
        "POST token": bare.post("/tokens", json={"name": "stolen"}),
        "POST logout-less member": bare.post("/members", json={"email": "x@y.test", "role": "admin"}),
        "PUT via override": owner.client.put(f"/api/v1/tenants/acme/tables/orders/records/{rec['id']}",
                                             json={"customer_name": "丁"}),
    }
    for what, r in attempts.items():
        assert r.status_code in (403, 405), (what, r.status_code)
        if r.status_code == 403:
            assert r.get_json()["error"]["code"] == "csrf", what
    after = owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))
    assert after["customer_name"] == "甲" and after["version"] == rec["version"]
    assert owner.ok(owner.get("/tokens"))["tokens"] == []


def test_a_cross_site_form_post_cannot_write(owner, orders):
    """A form post from another site carries the cookie (SameSite=Lax blocks it on POST in
    browsers; the CSRF header is the second wall) but never the header."""
    r = owner.client.post("/api/v1/tenants/acme/tables/orders/records", data={"customer_name": "x"},
                          headers={"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403
    assert owner.ok(owner.get("/tables/orders/records"))["records"] == []


def test_the_csrf_token_of_another_session_is_refused(app, owner, make_member):
    other = make_member("admin")
    forged = Api(owner.client, "acme", csrf=other.csrf)
    assert forged.post("/tokens", json={"name": "x"}).status_code == 403


def test_the_login_endpoint_is_not_a_csrf_login_vector_for_writes(app, owner):
    """Logging in returns a fresh CSRF token bound to that session only."""
    a = login(app, "owner@acme.test", "owner-password", "acme")
    b = login(app, "owner@acme.test", "owner-password", "acme")
    assert a.csrf != b.csrf
    assert Api(a.client, "acme", csrf=b.csrf).post("/tables", json={"api_name": "n1"}).status_code == 403


# -- cookie flags ----------------------------------------------------------------------------

def test_the_session_cookie_is_secure_when_configured(platform, config, owner):
    from zhongshu.platform.app import create_app

    app = create_app(dict(config, SESSION_COOKIE_SECURE=True), platform=platform)
    r = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
    flags = _cookie(r)
    assert {"secure", "httponly", "samesite=lax", "path=/"} <= set(flags)
    assert any(f.startswith("expires=") for f in flags)  # permanent: 7 days, not forever


def test_secure_cookie_flag_can_come_from_the_environment(monkeypatch, tmp_path):
    from zhongshu.platform.config import load_config

    monkeypatch.setenv("ZHONGSHU_SESSION_COOKIE_SECURE", "true")
    assert load_config({"DATA_DIR": str(tmp_path)})["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("ZHONGSHU_SESSION_COOKIE_SECURE", "0")
    assert load_config({"DATA_DIR": str(tmp_path)})["SESSION_COOKIE_SECURE"] is False


def test_the_session_cookie_is_signed_and_tampering_is_refused(app, owner):
    r = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"})
    raw = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("zhongshu_session=")][0].split(";")[0].split("=", 1)[1]
    c = app.test_client()
    tampered = raw[:-3] + ("AAA" if not raw.endswith("AAA") else "BBB")
    c.set_cookie("zhongshu_session", tampered, domain="localhost")
    assert c.get("/api/v1/tenants/acme/tables").status_code == 401


def test_a_session_cookie_captured_before_logout_is_refused_after_logout(app, owner):
    stolen = owner.client.get_cookie("zhongshu_session").value
    assert owner.ok(owner.post("~/auth/logout"))
    replay = app.test_client()
    replay.set_cookie("zhongshu_session", stolen, domain="localhost")
    assert replay.get("/api/v1/tenants/acme/tables").status_code == 401


# -- headers ---------------------------------------------------------------------------------

def test_the_builder_shell_has_a_strict_csp_and_framing_is_denied(app):
    r = app.test_client().get("/")
    assert r.status_code == 200
    csp = {d.split()[0]: d for d in (p.strip() for p in r.headers["Content-Security-Policy"].split(";")) if d}
    assert csp["script-src"] == "script-src 'self'"  # no inline scripts, no eval
    assert "unsafe-inline" not in r.headers["Content-Security-Policy"] and "unsafe-eval" not in r.headers["Content-Security-Policy"]
    assert csp["object-src"] == "object-src 'none'" and csp["frame-ancestors"] == "frame-ancestors 'none'"
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"


def test_api_errors_are_json_with_nosniff(app):
    r = app.test_client().get("/api/v1/tenants/acme/tables")
    assert r.status_code == 401 and r.is_json and r.headers["X-Content-Type-Options"] == "nosniff"


# -- passwords -------------------------------------------------------------------------------

def test_passwords_are_argon2id_with_the_recommended_parameters(platform, owner, monkeypatch):
    with platform.tenant_session(None) as s:
        stored = s.scalar(select(User.password_hash).where(User.email == "owner@acme.test"))
    assert stored.startswith("$argon2id$v=19$") and "owner-password" not in stored
    # production profile (tests use the cheap one): RFC 9106 low-memory, >= 64 MiB, t >= 3
    monkeypatch.delenv("ZHONGSHU_ARGON2_PROFILE", raising=False)
    from zhongshu.platform import auth

    h = auth._make_hasher()
    assert h.type.name == "ID" and h.memory_cost >= 64 * 1024 and h.time_cost >= 3
    encoded = h.hash("x" * 12)
    assert encoded.startswith("$argon2id$") and "m=65536" in encoded


def test_password_hashes_are_salted(platform):
    from zhongshu.platform.auth import hash_password, verify_password

    a, b = hash_password("same-password"), hash_password("same-password")
    assert a != b and verify_password(a, "same-password") and verify_password(b, "same-password")
    assert not verify_password(a, "same-password ") and not verify_password(None, "")


def test_password_hashes_never_leave_the_api(app, owner, make_member):
    make_member("member")
    for path in ("~/auth/me", "/members", "/audit"):
        r = owner.get(path)
        if r.status_code == 200:
            text = r.get_data(as_text=True)
            assert "argon2" not in text and "password_hash" not in text


# -- throttling ------------------------------------------------------------------------------

def test_throttling_is_per_address_so_one_attacker_does_not_lock_out_the_owner(app, owner):
    app.config["LOGIN_MAX_ATTEMPTS"] = 3
    attacker = app.test_client()
    for _ in range(4):
        attacker.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "guess"},
                      environ_base={"REMOTE_ADDR": "203.0.113.9"})
    r = attacker.post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"},
                      environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    r = app.test_client().post("/api/v1/auth/login", json={"email": "owner@acme.test", "password": "owner-password"},
                               environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert r.status_code == 200


def test_email_case_does_not_bypass_the_throttle(app, owner):
    app.config["LOGIN_MAX_ATTEMPTS"] = 3
    c = app.test_client()
    for email in ("owner@acme.test", "OWNER@acme.test", "Owner@Acme.Test"):
        c.post("/api/v1/auth/login", json={"email": email, "password": "guess"})
    assert c.post("/api/v1/auth/login", json={"email": "oWnEr@acme.test", "password": "owner-password"}).status_code == 429


# -- token revocation ------------------------------------------------------------------------

def test_revocation_takes_effect_on_the_very_next_request_and_cannot_be_undone(app, platform, owner, orders):
    tok = owner.ok(owner.post("/tokens", json={"name": "ci"}), 201)
    raw = tok["token"]
    bearer = Api(app.test_client(), "acme", token=raw)
    assert bearer.get("/tables/orders/records").status_code == 200
    owner.ok(owner.delete(f"/tokens/{tok['id'] if 'id' in tok else tok['token_info']['id']}"))
    for method in ("get", "post"):
        r = getattr(bearer, method)("/tables/orders/records", **({"json": {}} if method == "post" else {}))
        assert r.status_code == 401, method
    with platform.tenant_session(None) as s:
        row = s.scalar(select(ApiToken).where(ApiToken.prefix == raw[:10]))
        assert row.revoked_at is not None and raw not in (row.token_hash, row.prefix)
    # revoking again is harmless, and the token stays revoked
    owner.delete(f"/tokens/{row.id}")
    assert bearer.get("/tables").status_code == 401


def test_a_bearer_token_ignores_a_session_cookie_and_needs_no_csrf(app, owner, orders):
    tok = owner.ok(owner.post("/tokens", json={"name": "ci", "role": "viewer"}), 201)
    # same client as the owner's browser (cookie present) but with the viewer token: the token wins
    both = Api(owner.client, "acme", token=tok["token"])
    assert both.post("/tables/orders/records", json={"customer_name": "x"}).status_code == 403

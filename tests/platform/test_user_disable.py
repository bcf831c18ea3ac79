"""Disabling people, through the API: a membership (the workspace's owners and admins) or a
whole account (instance administrators). Access, sessions and tokens stop; nothing is deleted;
it is in the audit log; it can be undone."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from zhongshu.platform.models import AuditLog, Membership, User, UserSession

from tests.conftest import Api, login


def _id(platform, email: str) -> int:
    with platform.tenant_session(None) as s:
        return s.scalar(select(User.id).where(User.email == email))


def _sessions(platform, email: str) -> list[UserSession]:
    with platform.tenant_session(None) as s:
        return s.scalars(select(UserSession).where(UserSession.user_id == _id(platform, email))).all()


def _audit(platform, action: str) -> list[AuditLog]:
    with platform.tenant_session(None) as s:
        return s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()


def _login_status(app, email, password) -> tuple[int, str | None]:
    r = app.test_client().post("/api/v1/auth/login", json={"email": email, "password": password})
    return r.status_code, (r.get_json().get("error") or {}).get("code")


@pytest.fixture
def clerk(app, platform, owner, orders):
    """A member of acme with a record, a comment and an API token of their own."""
    u = platform.create_user("clerk@acme.test", "clerk-password", name="小王")
    platform.add_member(platform.tenant_by_slug("acme").id, u.id, "member")
    api = login(app, "clerk@acme.test", "clerk-password", "acme")
    rec = api.ok(api.post("/tables/orders/records", json={"customer_name": "张三", "amount": 88}), 201)
    api.ok(api.post(f"/tables/orders/records/{rec['id']}/comments", json={"body": "已联系客户"}), 201)
    api.token = api.ok(api.post("/tokens", json={"name": "phone"}), 201)["token"]
    bearer = Api(app.test_client(), "acme", token=api.token)
    assert bearer.get("/tables").status_code == 200
    api.id, api.record, api.bearer = u.id, rec, bearer
    api.csrf_session = Api(api.client, "acme", api.csrf)  # the browser session, without the token
    return api


# -- one membership ------------------------------------------------------------------------

def test_disabling_a_member_stops_their_session_token_and_login_and_keeps_their_data(app, platform, owner, clerk):
    r = owner.ok(owner.post(f"/members/{clerk.id}/disable", json={"reason": "离职交接中"}))
    assert r["member"]["disabled"] is True and r["member"]["disabled_at"] and r["member"]["account_disabled"] is False

    # the browser session ended on the server (acme was their only workspace); the token is refused
    assert clerk.csrf_session.get("~/auth/me").status_code == 401
    assert all(s.revoked_at is not None for s in _sessions(platform, "clerk@acme.test"))
    r = clerk.bearer.get("/tables")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "member_disabled"
    assert "disabled" in r.get_json()["error"]["message"]
    # a new login is refused with words that say why (the right password only)
    assert _login_status(app, "clerk@acme.test", "clerk-password") == (403, "member_disabled")
    assert _login_status(app, "clerk@acme.test", "not-the-password") == (401, "unauthorized")

    # nothing is deleted: the record, its history and the comment, the membership and the token
    rec = owner.ok(owner.get(f"/tables/orders/records/{clerk.record['id']}"))
    assert rec["created_by"] == clerk.id and rec["customer_name"] == "张三"
    assert owner.ok(owner.get(f"/tables/orders/records/{clerk.record['id']}/history"))["history"][0]["user_id"] == clerk.id
    assert [c["body"] for c in owner.ok(owner.get(f"/tables/orders/records/{clerk.record['id']}/comments"))["comments"]] == ["已联系客户"]
    members = {m["email"]: m for m in owner.ok(owner.get("/members"))["members"]}
    assert members["clerk@acme.test"]["disabled"] is True and members["clerk@acme.test"]["role"] == "member"
    assert [t["name"] for t in owner.ok(owner.get("/tokens"))["tokens"] if not t["revoked"]] == ["phone"]

    # in the audit log, with who, whom and why
    [entry] = _audit(platform, "disable_member")
    assert (entry.user_id, entry.object_id, entry.detail["reason"]) == (_id(platform, "owner@acme.test"), clerk.id, "离职交接中")
    assert any(e["action"] == "disable_member" for e in owner.ok(owner.get("/audit"))["entries"])

    # reversible: the token works again, they log in again (the ended session stays ended)
    r = owner.ok(owner.post(f"/members/{clerk.id}/enable"))
    assert r["member"]["disabled"] is False
    assert clerk.bearer.get("/tables").status_code == 200
    assert clerk.csrf_session.get("~/auth/me").status_code == 401
    again = login(app, "clerk@acme.test", "clerk-password", "acme")
    assert again.ok(again.get(f"/tables/orders/records/{clerk.record['id']}"))["amount"] == 88
    assert [e.action for e in _audit(platform, "enable_member")] == ["enable_member"]


def test_members_builders_and_viewers_cannot_disable_or_enable_anyone(owner, make_member, clerk):
    for role in ("member", "builder", "viewer"):
        api = make_member(role)
        for verb in ("disable", "enable"):
            r = api.post(f"/members/{clerk.id}/{verb}")
            assert r.status_code == 403, (role, verb, r.get_data(as_text=True))
    assert clerk.bearer.get("/tables").status_code == 200  # nothing happened


def test_an_admin_disables_members_but_not_owners(app, platform, owner, make_member, clerk):
    admin = make_member("admin")
    admin.ok(admin.post(f"/members/{clerk.id}/disable"))
    owner_id = _id(platform, "owner@acme.test")
    r = admin.post(f"/members/{owner_id}/disable")
    assert r.status_code == 403 and "owner" in r.get_json()["error"]["message"]
    assert owner.get("/tables").status_code == 200


def test_nobody_disables_themselves(owner, platform, make_member):
    admin = make_member("admin")
    me = admin.ok(admin.get("~/auth/me"))["user"]["id"]
    for api, uid in ((owner, _id(platform, "owner@acme.test")), (admin, me)):
        r = api.post(f"/members/{uid}/disable")
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "cannot_disable_self"
    assert admin.get("/tables").status_code == 200


def test_the_last_active_owner_stays(app, platform, owner, make_member):
    owner_id = _id(platform, "owner@acme.test")
    second = make_member("owner")
    second_id = second.ok(second.get("~/auth/me"))["user"]["id"]
    owner.ok(owner.post(f"/members/{second_id}/disable"))  # two owners: one may go
    # now the first is the last active owner: an instance administrator acting as owner cannot disable,
    # demote or remove them either
    platform.create_user("root@example.com", "root-password", superuser=True)
    root = login(app, "root@example.com", "root-password", "acme")
    for r in (root.post(f"/members/{owner_id}/disable"), root.patch(f"/members/{owner_id}", json={"role": "admin"}),
              root.delete(f"/members/{owner_id}")):
        assert r.status_code == 409 and r.get_json()["error"]["code"] == "last_owner", r.get_data(as_text=True)
    assert owner.get("/tables").status_code == 200
    # with the second owner enabled again, the first may be demoted
    owner.ok(owner.post(f"/members/{second_id}/enable"))
    root.ok(root.patch(f"/members/{owner_id}", json={"role": "admin"}))


def test_a_member_of_two_workspaces_keeps_the_other(app, platform, owner, clerk):
    platform.create_user("boss@beta.test", "boss-password")
    platform.create_tenant("beta", "Beta", owner_email="boss@beta.test")
    platform.add_member(platform.tenant_by_slug("beta").id, clerk.id, "member")
    owner.ok(owner.post(f"/members/{clerk.id}/disable"))
    in_beta = Api(clerk.client, "beta", clerk.csrf)
    assert in_beta.get("/tables").status_code == 200  # the session goes on for beta ...
    r = clerk.csrf_session.get("/tables")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "member_disabled"  # ... but not into acme
    me = in_beta.ok(in_beta.get("~/auth/me"))
    assert [t["slug"] for t in me["tenants"]] == ["beta"]
    assert _login_status(app, "clerk@acme.test", "clerk-password") == (200, None)


def test_disabling_twice_or_enabling_an_active_member_changes_nothing(platform, owner, clerk):
    owner.ok(owner.post(f"/members/{clerk.id}/disable"))
    owner.ok(owner.post(f"/members/{clerk.id}/disable"))
    owner.ok(owner.post(f"/members/{clerk.id}/enable"))
    owner.ok(owner.post(f"/members/{clerk.id}/enable"))
    assert len(_audit(platform, "disable_member")) == 1 and len(_audit(platform, "enable_member")) == 1


def test_bad_requests_are_clear_4xx(owner, clerk):
    assert owner.post("/members/999999/disable").status_code == 404
    assert owner.post(f"/members/{'9' * 30}/disable").status_code == 404
    for body, pointer in (({"reason": 5}, "/reason"), ({"reason": "x" * 501}, "/reason"), ({"why": "x"}, "/why")):
        r = owner.post(f"/members/{clerk.id}/disable", json=body)
        assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == pointer
    r = owner.client.post(f"/api/v1/tenants/acme/members/{clerk.id}/disable", data="[1]",
                          headers={"X-CSRF-Token": owner.csrf, "Content-Type": "application/json"})
    assert r.status_code == 400
    assert clerk.bearer.get("/tables").status_code == 200


def test_an_instance_administrators_membership_is_not_disabled_their_account_is(app, platform, owner):
    root = platform.create_user("root@example.com", "root-password", superuser=True)
    platform.add_member(platform.tenant_by_slug("acme").id, root.id, "admin")
    r = owner.post(f"/members/{root.id}/disable")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "instance_admin"


# -- the whole account (instance administrators) -------------------------------------------

@pytest.fixture
def root(app, platform, owner):
    platform.create_user("root@example.com", "root-password", superuser=True)
    return login(app, "root@example.com", "root-password", "acme")


def test_an_instance_administrator_disables_an_account_everywhere_and_enables_it_again(app, platform, owner, root, clerk):
    platform.create_user("boss@beta.test", "boss-password")
    platform.create_tenant("beta", "Beta", owner_email="boss@beta.test")
    platform.add_member(platform.tenant_by_slug("beta").id, clerk.id, "builder")
    second_browser = login(app, "clerk@acme.test", "clerk-password", "beta")

    r = root.ok(root.post(f"~/users/{clerk.id}/disable", json={"reason": "账号被盗"}))
    assert r["user"]["disabled"] is True and r["ended_sessions"] == 2 and r["workspaces_without_owner"] == []
    assert all(s.revoked_at is not None for s in _sessions(platform, "clerk@acme.test"))
    assert clerk.csrf_session.get("~/auth/me").status_code == 401 and second_browser.get("/tables").status_code == 401
    assert clerk.bearer.get("/tables").status_code == 401
    assert _login_status(app, "clerk@acme.test", "clerk-password") == (403, "account_disabled")
    members = {m["email"]: m for m in owner.ok(owner.get("/members"))["members"]}
    assert members["clerk@acme.test"]["account_disabled"] is True and members["clerk@acme.test"]["disabled"] is False
    # one audit entry in each of their workspaces
    entries = _audit(platform, "disable_user")
    assert sorted(e.tenant_id for e in entries) == sorted(t.id for t in (platform.tenant_by_slug("acme"), platform.tenant_by_slug("beta")))
    assert {e.detail["reason"] for e in entries} == {"账号被盗"} and {e.object_id for e in entries} == {clerk.id}
    # kept: their record, their membership rows
    assert owner.ok(owner.get(f"/tables/orders/records/{clerk.record['id']}"))["created_by"] == clerk.id
    with platform.tenant_session(None) as s:
        assert len(s.scalars(select(Membership).where(Membership.user_id == clerk.id)).all()) == 2

    listed = root.ok(root.get("~/users?q=clerk"))["users"]
    assert [(u["email"], u["disabled"]) for u in listed] == [("clerk@acme.test", True)]

    r = root.ok(root.post(f"~/users/{clerk.id}/enable"))
    assert r["user"]["disabled"] is False
    assert clerk.bearer.get("/tables").status_code == 200
    assert login(app, "clerk@acme.test", "clerk-password", "beta").get("/tables").status_code == 200
    assert len(_audit(platform, "enable_user")) == 2


def test_only_instance_administrators_manage_accounts(owner, make_member, clerk):
    admin = make_member("admin")
    for api in (owner, admin, clerk):
        assert api.get("~/users").status_code == 403
        assert api.post(f"~/users/{clerk.id}/disable").status_code == 403
        assert api.post(f"~/users/{clerk.id}/enable").status_code == 403
    assert clerk.bearer.post(f"~/users/{clerk.id}/disable").status_code == 403
    assert clerk.bearer.get("/tables").status_code == 200


def test_an_instance_administrator_cannot_disable_themselves_or_the_last_one(app, platform, root):
    root_id = _id(platform, "root@example.com")
    r = root.post(f"~/users/{root_id}/disable")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "cannot_disable_self"
    assert root.post("~/users/999999/disable").status_code == 404
    assert root.post(f"~/users/{'9' * 30}/enable").status_code == 404


def test_disabling_a_workspaces_only_owner_account_says_so(platform, owner, root):
    r = root.ok(root.post(f"~/users/{_id(platform, 'owner@acme.test')}/disable"))
    assert r["workspaces_without_owner"] == ["acme"]

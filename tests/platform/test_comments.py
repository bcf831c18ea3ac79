"""Comments on a record: who reads, adds, edits and deletes them; bad input; tenants."""
from __future__ import annotations

import pytest

from tests.conftest import login


@pytest.fixture
def order(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "张三", "channel": "天猫", "amount": 10}), 201)
    return rec["id"]


def url(rid, cid=None):
    return f"/tables/orders/records/{rid}/comments" + (f"/{cid}" if cid else "")


def test_members_comment_and_everyone_who_reads_the_record_sees_the_conversation(owner, order, make_member):
    member, viewer = make_member("member"), make_member("viewer")
    first = member.ok(member.post(url(order), json={"body": "  客户要求周五前发货 "}), 201)["comment"]
    assert first["body"] == "客户要求周五前发货" and first["user_name"] and first["can_edit"] and first["can_delete"]
    owner.ok(owner.post(url(order), json={"body": "好的，已安排"}), 201)
    seen = viewer.ok(viewer.get(url(order)))
    assert [c["body"] for c in seen["comments"]] == ["客户要求周五前发货", "好的，已安排"] and seen["has_more"] is False
    assert not any(c["can_edit"] or c["can_delete"] for c in seen["comments"])
    r = viewer.post(url(order), json={"body": "我也想说"})
    assert r.status_code == 403 and "查看者" in r.get_json()["error"]["message_zh"]
    assert len(owner.ok(owner.get(url(order)))["comments"]) == 2
    latest = owner.ok(owner.get(url(order) + "?limit=1"))
    assert [c["body"] for c in latest["comments"]] == ["好的，已安排"] and latest["has_more"] is True


def test_authors_edit_and_delete_their_own_comments_admins_delete_any(owner, order, make_member):
    alice, bob, admin = make_member("member"), make_member("member"), make_member("admin")
    a = alice.ok(alice.post(url(order), json={"body": "first"}), 201)["comment"]
    assert bob.patch(url(order, a["id"]), json={"body": "hijack"}).status_code == 403
    assert bob.delete(url(order, a["id"])).status_code == 403
    assert admin.patch(url(order, a["id"]), json={"body": "admin edit"}).status_code == 403  # admins delete, not rewrite
    edited = alice.ok(alice.patch(url(order, a["id"]), json={"body": "first, corrected"}))["comment"]
    assert edited["body"] == "first, corrected" and edited["edited_at"]
    alice.ok(alice.delete(url(order, a["id"])))
    assert owner.ok(owner.get(url(order)))["comments"] == []
    assert alice.patch(url(order, a["id"]), json={"body": "back"}).status_code == 404
    b = bob.ok(bob.post(url(order), json={"body": "spam"}), 201)["comment"]
    admin.ok(admin.delete(url(order, b["id"])))
    assert owner.ok(owner.get(url(order)))["comments"] == []


@pytest.mark.parametrize("body, status, pointer", [
    ({"body": ""}, 400, "/body"), ({"body": "   "}, 400, "/body"), ({"body": 5}, 400, "/body"), ({}, 400, "/body"),
    ({"body": "x" * 5001}, 400, "/body"), ({"body": "hi", "pinned": True}, 400, "/pinned"),
])
def test_bad_comments_are_400_at_the_body(owner, order, body, status, pointer):
    r = owner.post(url(order), json=body)
    assert r.status_code == status and r.get_json()["error"]["errors"][0]["pointer"] == pointer
    assert owner.ok(owner.get(url(order)))["comments"] == []


def test_the_longest_comment_allowed_is_kept_whole_and_bad_json_is_400(owner, order):
    long = "长" * 5000
    assert owner.ok(owner.post(url(order), json={"body": long}), 201)["comment"]["body"] == long
    r = owner.post(url(order), data="{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "bad_json"


def test_a_record_the_caller_cannot_read_has_no_comments(owner, order, make_member):
    owner.ok(owner.post(url(order), json={"body": "内部备注"}), 201)
    owner.ok(owner.patch("/tables/orders", json={"permissions": {"member": {"rows": {"field": "channel", "op": "=", "value": "抖音"}}}}))
    member = make_member("member")
    for r in (member.get(url(order)), member.post(url(order), json={"body": "x"})):
        assert r.status_code == 404 and "内部备注" not in r.get_data(as_text=True)
    assert owner.get(url(999999)).status_code == 404 and owner.get("/tables/orders/records/abc/comments").status_code == 404
    owner.ok(owner.delete(f"/tables/orders/records/{order}"))
    assert owner.get(url(order)).status_code == 404
    assert owner.get("/tables/nope/records/1/comments").status_code == 404


def test_comments_stay_in_their_tenant_and_on_their_record(owner, order, platform, app):
    c = owner.ok(owner.post(url(order), json={"body": "acme only"}), 201)["comment"]
    other_rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "李四"}), 201)["id"]
    assert owner.patch(url(other_rec, c["id"]), json={"body": "moved"}).status_code == 404  # the id belongs to another record
    platform.create_user("b@b.test", "b-password")
    platform.create_tenant("bravo", "B", owner_email="b@b.test")
    stranger = login(app, "b@b.test", "b-password", "acme")
    assert stranger.get(url(order)).status_code == 404
    stranger.tenant = "bravo"
    stranger.ok(stranger.post("/tables", json={"api_name": "orders", "fields": [{"api_name": "customer_name", "type": "text"}]}), 201)
    theirs = stranger.ok(stranger.post("/tables/orders/records", json={"customer_name": "x"}), 201)["id"]
    assert stranger.ok(stranger.get(url(theirs)))["comments"] == []  # same table name and maybe the same id: nothing leaks
    assert stranger.delete(url(theirs, c["id"])).status_code == 404
    assert [x["body"] for x in owner.ok(owner.get(url(order)))["comments"]] == ["acme only"]


def test_the_operations_are_described_in_the_openapi_document(owner):
    doc = owner.client.get("/api/v1/openapi.json").get_json()
    item = doc["paths"]["/api/v1/tenants/{tenant}/tables/{table}/records/{record_id}/comments"]
    assert set(item) == {"get", "post"} and not any("x-undocumented" in op for op in item.values())
    one = doc["paths"]["/api/v1/tenants/{tenant}/tables/{table}/records/{record_id}/comments/{comment_id}"]
    assert set(one) == {"patch", "delete"} and not any("x-undocumented" in op for op in one.values())
    assert "Comment" in doc["components"]["schemas"]

"""Who sees what of the member list."""


def test_members_and_viewers_see_names_and_roles_but_no_emails_or_attributes(owner, make_member):
    member = make_member("member", attributes={"region": "华东"})
    viewer = make_member("viewer")
    builder = make_member("builder")
    for api in (member, viewer):
        rows = api.ok(api.get("/members"))["members"]
        assert {r["role"] for r in rows} >= {"owner", "member", "viewer"}
        assert all(set(r) == {"id", "name", "role"} for r in rows)
    full = builder.ok(builder.get("/members"))["members"]
    assert "owner@acme.test" in {r["email"] for r in full}
    assert any(r.get("attributes") == {"region": "华东"} for r in full)

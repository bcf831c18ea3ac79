"""A view's row grouping (``group_by``): saved, checked against the table, and cleared."""
from __future__ import annotations


def test_a_grid_view_keeps_its_grouping_and_names_real_single_value_fields(owner, orders):
    v = owner.ok(owner.post("/tables/orders/views", json={"api_name": "by_status", "type": "grid", "group_by": ["status"]}), 201)["view"]
    assert v["group_by"] == ["status"]
    assert owner.ok(owner.get("/tables/orders/views/by_status"))["view"]["group_by"] == ["status"]
    for bad in (["nope"], ["items"], ["status", "tags_x"]):
        r = owner.post("/tables/orders/views", json={"api_name": "bad", "type": "grid", "group_by": bad})
        assert r.status_code == 400, bad
        assert r.get_json()["error"]["errors"][0]["pointer"] == f"/group_by/{len(bad) - 1}"
    r = owner.patch("/tables/orders/views/by_status", json={"group_by": ["items"]})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/group_by/0"
    assert owner.ok(owner.patch("/tables/orders/views/by_status", json={"group_by": []}))["view"]["group_by"] == []


def test_null_in_a_view_patch_removes_the_property(owner, orders):
    owner.ok(owner.post("/tables/orders/views", json={
        "api_name": "paid", "type": "grid", "filter": {"field": "status", "op": "=", "value": "已付款"}, "roles": ["member"]}), 201)
    v = owner.ok(owner.patch("/tables/orders/views/paid", json={"filter": None, "roles": None, "group_by": ["channel"]}))["view"]
    assert "filter" not in v and "roles" not in v and v["group_by"] == ["channel"]

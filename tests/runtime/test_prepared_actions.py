"""Stock reservation and routing rules give the same answers whether their SQL is prebuilt
(plain comparisons: runtime/rules/prepared.py) or built from the filter each time (the
general path). Every case runs on both paths."""
import pytest

from zhongshu.runtime.rules import prepared

from .conftest import rule


@pytest.fixture(params=["prebuilt", "general"])
def hub(request, owner, monkeypatch):
    if request.param == "general":
        monkeypatch.setattr(prepared, "filter_shape", lambda *a, **k: None)
    owner.ok(owner.post("/tables", json={"api_name": "stock", "fields": [
        {"api_name": "sku", "type": "text"}, {"api_name": "bin", "type": "text"},
        {"api_name": "on_hand", "type": "number"}, {"api_name": "reserved", "type": "number", "default": 0},
        {"api_name": "available", "type": "formula", "options": {"expression": "on_hand - reserved"}}]}), 201)
    owner.ok(owner.post("/tables", json={"api_name": "depots", "fields": [
        {"api_name": "code", "type": "text"}, {"api_name": "region", "type": "text"},
        {"api_name": "enabled", "type": "boolean"}, {"api_name": "priority", "type": "number"}]}), 201)
    owner.ok(owner.post("/tables", json={"api_name": "picks", "fields": [
        {"api_name": "sku", "type": "text"}, {"api_name": "bin", "type": "text"}, {"api_name": "qty", "type": "number"},
        {"api_name": "region", "type": "text"}, {"api_name": "depot", "type": "text"}, {"api_name": "note", "type": "text"}]}), 201)
    owner.ok(owner.post("/tables/stock/records?return=ids", json={"records": [
        {"sku": "LAST", "on_hand": 5}, {"sku": "LAST", "bin": "B2", "on_hand": 100}]}), 201)
    owner.ok(owner.post("/tables/depots/records?return=ids", json={"records": [
        {"code": "HD1", "region": "华东", "enabled": True, "priority": 1},
        {"code": "HD2", "region": "华东", "enabled": True, "priority": 5},
        {"code": "HD3", "region": "华东", "enabled": False, "priority": 9},
        {"code": "HN1", "region": "华南", "enabled": True}]}), 201)
    rule(owner, {"api_name": "reserve", "table": "picks", "trigger": {"type": "record_created"}, "actions": [{
        "type": "adjust_number", "table": "stock", "field": "reserved", "delta": "qty",
        "filter": {"and": [{"field": "sku", "op": "=", "value": {"$expr": "sku"}},
                           {"field": "bin", "op": "=", "value": {"$expr": "bin"}}]},
        "guard": {"field": "available", "op": ">=", "value": {"$expr": "qty"}},
        "else": [{"type": "update_record", "values": {"note": "'short'"}}]}]})
    rule(owner, {"api_name": "route", "table": "picks", "trigger": {"type": "record_created"}, "actions": [{
        "type": "pick_row", "table": "depots",
        "filter": {"and": [{"field": "region", "op": "=", "value": {"$expr": "region"}},
                           {"field": "enabled", "op": "=", "value": True}]},
        "sorts": [{"field": "priority", "direction": "desc"}],
        "set": {"depot": "row.code"}, "else": [{"type": "update_record", "values": {"depot": "'NONE'"}}]}]})
    return owner


def _pick(api, **values):
    rec = api.ok(api.post("/tables/picks/records", json=values), 201)
    return api.ok(api.get(f"/tables/picks/records/{rec['id']}"))


def _stock(api):
    return {(r["sku"], r["bin"]): (r["reserved"], r["available"]) for r in api.ok(api.get("/tables/stock/records"))["records"]}


def test_reservations_take_the_matching_bin_and_respect_the_guard(hub):
    assert _pick(hub, sku="LAST", qty=2)["note"] is None  # no bin: the row whose bin is blank
    assert _stock(hub) == {("LAST", None): (2, 3), ("LAST", "B2"): (0, 100)}
    assert _pick(hub, sku="LAST", qty=4)["note"] == "short"  # 3 left in that bin
    assert _pick(hub, sku="LAST", bin="B2", qty=4)["note"] is None
    assert _pick(hub, sku="NOPE", qty=1)["note"] == "short"  # no such row
    assert _stock(hub) == {("LAST", None): (2, 3), ("LAST", "B2"): (4, 96)}


def test_routing_picks_the_first_enabled_depot_in_sort_order(hub):
    assert _pick(hub, sku="X", qty=0, region="华东")["depot"] == "HD2"  # HD3 has a higher priority but is off
    assert _pick(hub, sku="X", qty=0, region="西北")["depot"] == "NONE"
    # a blank priority sorts as the largest value, as on a page of the records API
    hub.ok(hub.post("/tables/depots/records", json={"code": "HD0", "region": "华东", "enabled": True}), 201)
    assert _pick(hub, sku="X", qty=0, region="华东")["depot"] == "HD0"
    page = hub.ok(hub.get('/tables/depots/records?filter={"field":"region","op":"=","value":"华东"}&sort=-priority'))
    assert [r["code"] for r in page["records"]][:2] == ["HD0", "HD3"]


def test_a_filter_value_of_the_wrong_kind_is_reported_on_both_paths(hub):
    rule(hub, {"api_name": "bad", "table": "picks", "trigger": {"type": "record_created"}, "actions": [{
        "type": "adjust_number", "table": "stock", "field": "reserved", "delta": 1,
        "filter": {"field": "on_hand", "op": ">", "value": {"$expr": "sku"}}}]})
    _pick(hub, sku="not a number", qty=1)
    runs = hub.ok(hub.get("/rules/bad/runs"))["runs"]
    assert runs[0]["status"] == "error" and "on_hand" in runs[0]["error"]
    assert _stock(hub)[("LAST", None)] == (0, 5)

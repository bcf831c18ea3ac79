"""Process caches of metadata stay right when another process changes the metadata.

Two ``Platform`` objects on one database stand for two server processes: each keeps its
own caches (table schemas, active rules); a change made through one is seen by the other
on its next request, because every metadata change gives the tenant a new stamp."""
from zhongshu.platform.app import create_app

from ..conftest import login


def _second_process(platform, config):
    from zhongshu.platform.core import Platform

    other = Platform(config)
    return other, create_app(config, platform=other)


def test_a_field_added_in_one_process_is_writable_in_another_at_once(owner, orders, platform, config):
    other, app2 = _second_process(platform, config)
    try:
        second = login(app2, "owner@acme.test", "owner-password", "acme")
        second.ok(second.get("/tables/orders/records"))  # process 2 has cached the schema
        owner.ok(owner.post("/tables/orders/fields", json={"api_name": "remark", "type": "text"}), 201)
        rec = second.ok(second.post("/tables/orders/records", json={"remark": "加急"}), 201)
        assert rec["remark"] == "加急"
    finally:
        other.close()


def test_a_rule_switched_off_in_one_process_stops_running_in_another(owner, orders, platform, config, clock):
    other, app2 = _second_process(platform, config)
    try:
        owner.ok(owner.post("/rules", json={
            "api_name": "vip_tag", "table": "orders", "trigger": {"type": "record_created"},
            "condition": "amount > 1000", "actions": [{"type": "update_record", "values": {"vip": "True"}}]}), 201)
        second = login(app2, "owner@acme.test", "owner-password", "acme")
        assert second.ok(second.post("/tables/orders/records", json={"amount": 2000}), 201)["vip"] is True
        owner.ok(owner.patch("/rules/vip_tag", json={"enabled": False}))
        assert second.ok(second.post("/tables/orders/records", json={"amount": 2000}), 201)["vip"] is not True
        owner.ok(owner.patch("/rules/vip_tag", json={"enabled": True}))
        assert second.ok(second.post("/tables/orders/records", json={"amount": 2000}), 201)["vip"] is True
    finally:
        other.close()


def test_a_metadata_change_that_rolls_back_leaves_no_trace_in_the_caches(owner, orders, platform):
    # A table definition with an error is refused as a whole; the next writes see the old schema.
    bad = owner.post("/tables/orders/fields", json={"api_name": "total", "type": "formula",
                                                    "options": {"expression": "amount +* 2"}})
    assert bad.status_code == 400
    owner.ok(owner.post("/tables/orders/records", json={"amount": 5}), 201)
    assert "total" not in owner.ok(owner.get("/tables/orders/records"))["records"][0]

"""A rollup over the items that match a filter stays right when the items change inside one
transaction (computed.py keeps which items matched while the filtered columns are unchanged)."""
from zhongshu.platform.storage.access import Actor

SYSTEM = Actor(None, "owner", is_system=True)


def _setup(owner):
    owner.ok(owner.post("/tables/orders/fields", json={
        "api_name": "paid_units", "type": "rollup", "options": {
            "through": "items", "field": "qty", "fn": "sum",
            "filter": {"field": "category", "op": "!=", "value": "赠品"}}}), 201)
    return owner.ok(owner.post("/tables/orders/records", json={"items": [
        {"sku": "A", "qty": 2, "category": "食品"}, {"sku": "B", "qty": 5, "category": "赠品"},
        {"sku": "C", "qty": 1, "category": "食品"}]}), 201)


def test_the_filtered_rollup_follows_item_changes_in_one_transaction(platform, owner, orders):
    rec = _setup(owner)
    assert rec["paid_units"] == 3
    a, b, _ = rec["items"]
    tenant = platform.tenant_by_slug("acme")
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, SYSTEM)
        items, orders_t = recs.schema("orders_items"), recs.schema("orders")
        get = lambda: recs.get_unchecked(orders_t, rec["id"], recs.access(orders_t))["paid_units"]  # noqa: E731
        recs.update(items, a["id"], {"qty": 4})  # a matching item's value: same items match
        assert get() == 5
        recs.update(items, b["id"], {"category": "食品"})  # the gift now counts
        assert get() == 10
        recs.update(items, a["id"], {"category": "赠品"})  # and this one no longer does
        assert get() == 6
    assert owner.ok(owner.get(f"/tables/orders/records/{rec['id']}"))["paid_units"] == 6

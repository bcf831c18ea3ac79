"""One transaction reads a record's rows once (platform/storage/rowcache.py) and still always
sees the rows as they are: after its own writes, whoever made them, and after a rolled-back
savepoint (a dry run)."""
from sqlalchemy import event, update

from zhongshu.platform.storage.access import Actor

SYSTEM = Actor(None, "owner", is_system=True)


def _session(platform):
    tenant = platform.tenant_by_slug("acme")
    return tenant, platform.tenant_session(tenant.id, write=True)


def test_a_raw_write_to_the_table_is_seen_by_the_next_read(platform, owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "张三", "items": [{"sku": "A", "qty": 1}]}), 201)
    tenant, cm = _session(platform)
    with cm as s:
        recs = platform.records(s, tenant, SYSTEM)
        schema = recs.schema("orders")
        access = recs.access(schema)
        assert recs.get_unchecked(schema, rec["id"], access)["customer_name"] == "张三"
        # what computed fields and rule actions do: a plain UPDATE on the physical table
        col = schema.table.c[schema.fields["customer_name"].column_name]
        s.connection().execute(update(schema.table).where(schema.table.c.id == rec["id"]).values({col: "李四"}))
        assert recs.get_unchecked(schema, rec["id"], access)["customer_name"] == "李四"
        # an item written the same way is seen through its parent
        items = recs.schema(schema.fields["items"].options["table"])
        icol = items.table.c[items.fields["qty"].column_name]
        s.connection().execute(update(items.table).where(items.table.c.parent_id == rec["id"]).values({icol: 7}))
        assert [i["qty"] for i in recs.get_unchecked(schema, rec["id"], access)["items"]] == [7]


def test_a_rolled_back_savepoint_leaves_no_cached_row_behind(platform, owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "张三"}), 201)
    tenant, cm = _session(platform)
    with cm as s:
        recs = platform.records(s, tenant, SYSTEM)
        schema = recs.schema("orders")
        access = recs.access(schema)
        assert recs.get_unchecked(schema, rec["id"], access)["customer_name"] == "张三"
        sp = s.begin_nested()
        recs.update(schema, rec["id"], {"customer_name": "王五"})
        assert recs.get_unchecked(schema, rec["id"], access)["customer_name"] == "王五"
        sp.rollback()
        assert recs.get_unchecked(schema, rec["id"], access)["customer_name"] == "张三"


def test_reads_after_a_write_cost_no_statement_and_a_new_transaction_reads_again(platform, owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "张三", "items": [{"sku": "A", "qty": 1}]}), 201)
    tenant = platform.tenant_by_slug("acme")
    seen: list[str] = []
    listener = lambda c, cur, st, p, ctx, many: seen.append(st)  # noqa: E731
    event.listen(platform.engine, "before_cursor_execute", listener)
    try:
        with platform.tenant_session(tenant.id, write=True) as s:
            recs = platform.records(s, tenant, SYSTEM)
            schema = recs.schema("orders")
            after = recs.update(schema, rec["id"], {"customer_name": "李四"})
            seen.clear()
            again = recs.get_unchecked(schema, rec["id"], recs.access(schema))
            assert again == after and again["customer_name"] == "李四"
            assert not [st for st in seen if st.lstrip().upper().startswith("SELECT")]  # served from the write's own rows
        seen.clear()
        with platform.tenant_session(tenant.id) as s:
            recs = platform.records(s, tenant, SYSTEM)
            schema = recs.schema("orders")
            assert recs.get_unchecked(schema, rec["id"], recs.access(schema))["customer_name"] == "李四"
            assert any(st.lstrip().upper().startswith("SELECT") for st in seen)  # nothing carried over
    finally:
        event.remove(platform.engine, "before_cursor_execute", listener)

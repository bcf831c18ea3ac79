"""The row cache stays valid per row (platform/storage/rowcache.py): after a single-row write
whose rows it is shown, the table's other cached rows are served without a query; after a
write whose rows it is not shown (an UPDATE by filter, a DELETE, a read put in between) every
row of the table is read again; a child that is added, changed or moved is seen in its
parents' item lists."""
from sqlalchemy import delete, event, insert, update

from zhongshu.platform.storage import rowcache
from zhongshu.platform.storage.access import Actor

SYSTEM = Actor(None, "owner", is_system=True)


def _orders(owner, n=3):
    return [owner.ok(owner.post("/tables/orders/records", json={
        "customer_name": f"客户{i}", "items": [{"sku": f"S{i}", "qty": i + 1}, {"sku": f"T{i}", "qty": 1}]}), 201)
        for i in range(n)]


class _Selects:
    """Counts the SELECTs the engine runs while listening."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def _on(self, c, cur, st, p, ctx, many):
        self.seen.append(st)

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._on)

    @property
    def selects(self):
        return [s for s in self.seen if s.lstrip().upper().startswith("SELECT")]


def _setup(platform, owner):
    recs_made = _orders(owner)
    tenant = platform.tenant_by_slug("acme")
    return recs_made, tenant


def _tables(recs):
    orders = recs.schema("orders")
    items = recs.schema(orders.fields["items"].options["table"])
    return orders, items


def test_a_single_row_write_keeps_the_other_rows_valid(platform, owner, orders):
    made, tenant = _setup(platform, owner)
    ids = [r["id"] for r in made]
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, SYSTEM)
        schema, _ = _tables(recs)
        t, conn = schema.table, s.connection()
        col = t.c[schema.fields["customer_name"].column_name]
        rowcache.rows_by_id(conn, t, ids)
        written = conn.execute(update(t).where(t.c.id == ids[0]).values({col: "改名"}).returning(*t.c)).all()
        rowcache.put(conn, t, written, written=True)
        with _Selects(platform.engine) as q:
            rows = rowcache.rows_by_id(conn, t, ids)
        assert not q.selects  # the other two rows were not read again
        assert rows[ids[0]]._mapping[col.name] == "改名"
        assert rows[ids[1]]._mapping[col.name] == "客户1"
        # and what a user sees through the records service is the written value
        assert recs.get_unchecked(schema, ids[0], recs.access(schema))["customer_name"] == "改名"


def test_a_write_by_filter_makes_every_row_read_again(platform, owner, orders):
    made, tenant = _setup(platform, owner)
    ids = [r["id"] for r in made]
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, SYSTEM)
        schema, _ = _tables(recs)
        t, conn = schema.table, s.connection()
        col = t.c[schema.fields["customer_name"].column_name]
        rowcache.rows_by_id(conn, t, ids)
        conn.execute(update(t).where(t.c.id.in_(ids[1:])).values({col: "批量"}))
        with _Selects(platform.engine) as q:
            rows = rowcache.rows_by_id(conn, t, ids)
        assert q.selects
        assert [rows[i]._mapping[col.name] for i in ids] == ["客户0", "批量", "批量"]


def test_rows_shown_after_an_unreported_write_do_not_vouch_for_the_others(platform, owner, orders):
    made, tenant = _setup(platform, owner)
    ids = [r["id"] for r in made]
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, SYSTEM)
        schema, _ = _tables(recs)
        t, conn = schema.table, s.connection()
        col = t.c[schema.fields["customer_name"].column_name]
        rowcache.rows_by_id(conn, t, ids)
        conn.execute(update(t).where(t.c.id.in_(ids[1:])).values({col: "批量"}))  # not shown
        written = conn.execute(update(t).where(t.c.id == ids[0]).values({col: "单条"}).returning(*t.c)).all()
        rowcache.put(conn, t, written, written=True)  # two writes since we looked: not accounted for
        rows = rowcache.rows_by_id(conn, t, ids)
        assert [rows[i]._mapping[col.name] for i in ids] == ["单条", "批量", "批量"]
        # rows just read (written=False) after a write do not vouch for the others either
        conn.execute(update(t).where(t.c.id == ids[2]).values({col: "再改"}))
        rowcache.put(conn, t, conn.execute(t.select().where(t.c.id == ids[0])).all())
        assert rowcache.rows_by_id(conn, t, [ids[2]])[ids[2]]._mapping[col.name] == "再改"


def test_a_deleted_row_is_not_served(platform, owner, orders):
    made, tenant = _setup(platform, owner)
    ids = [r["id"] for r in made]
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, SYSTEM)
        _, items = _tables(recs)
        t, conn = items.table, s.connection()
        kids = rowcache.children_of(conn, t, ids)
        gone = kids[ids[0]][0].id
        conn.execute(delete(t).where(t.c.id == gone))
        assert gone not in rowcache.rows_by_id(conn, t, [gone])
        assert [r.id for r in rowcache.children_of(conn, t, [ids[0]])[ids[0]]] == [kids[ids[0]][1].id]


def test_items_added_changed_and_moved_show_in_their_parents_lists(platform, owner, orders):
    made, tenant = _setup(platform, owner)
    ids = [r["id"] for r in made]
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, SYSTEM)
        _, items = _tables(recs)
        t, conn = items.table, s.connection()
        qty = t.c[items.fields["qty"].column_name]
        sku = t.c[items.fields["sku"].column_name]
        before = rowcache.children_of(conn, t, ids)
        # changed: the parent's list shows the new value
        first = before[ids[0]][0]
        rowcache.put(conn, t, conn.execute(update(t).where(t.c.id == first.id).values({qty: 9}).returning(*t.c)).all(),
                     written=True)
        assert [r._mapping[qty.name] for r in rowcache.children_of(conn, t, [ids[0]])[ids[0]]] == [9, 1]
        # moved: it leaves the old parent's list and joins the new one's
        rowcache.put(conn, t, conn.execute(update(t).where(t.c.id == first.id).values(
            parent_id=ids[1], position=5).returning(*t.c)).all(), written=True)
        lists = rowcache.children_of(conn, t, ids)
        assert first.id not in [r.id for r in lists[ids[0]]]
        assert [r.id for r in lists[ids[1]]][-1] == first.id
        # added: a new item of the third order is in its list
        row = {c.name: v for c, v in zip(t.c, before[ids[2]][0]) if c.name != "id"}
        row.update({"position": 9, sku.name: "NEW"})
        new = conn.execute(insert(t).values(row).returning(*t.c)).all()
        rowcache.put(conn, t, new, written=True)
        assert [r._mapping[sku.name] for r in rowcache.children_of(conn, t, [ids[2]])[ids[2]]] == ["S2", "T2", "NEW"]
        # the untouched order's list was never read again in between? it is right in any case
        assert [r.id for r in rowcache.children_of(conn, t, [ids[1]])[ids[1]]][:2] == [r.id for r in before[ids[1]]]


def test_an_item_changed_in_place_is_served_in_its_parents_list_without_a_query(platform, owner, orders):
    made, tenant = _setup(platform, owner)
    ids = [r["id"] for r in made]
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, SYSTEM)
        _, items = _tables(recs)
        t, conn = items.table, s.connection()
        qty = t.c[items.fields["qty"].column_name]
        first = rowcache.children_of(conn, t, ids)[ids[0]][1]
        rowcache.put(conn, t, conn.execute(update(t).where(t.c.id == first.id).values({qty: 4}).returning(*t.c)).all(),
                     written=True)
        with _Selects(platform.engine) as q:
            lists = rowcache.children_of(conn, t, ids)
        assert not q.selects
        assert [r._mapping[qty.name] for r in lists[ids[0]]] == [1, 4]
        assert [r._mapping[qty.name] for r in lists[ids[1]]] == [2, 1]
        # deleting it (soft) takes it out of the list
        rowcache.put(conn, t, conn.execute(update(t).where(t.c.id == first.id).values(
            deleted_at=t.c.created_at).returning(*t.c)).all(), written=True)
        assert [r.id for r in rowcache.children_of(conn, t, [ids[0]])[ids[0]]] == [lists[ids[0]][0].id]

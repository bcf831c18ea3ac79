"""Rows of user tables read once per transaction, until the table is written again.

A write with its rules and computed fields reads the same order row and its item rows many
times (the records service, the computed fields, each rule's loader, the timers). Those reads
go through here: a row (or a parent's sub-table rows) is kept on the connection, tagged with
the table's current *epoch*, and served again while that epoch is current.

* Every statement that writes a user table bumps that table's write count
  (``platform/db.py`` watches the cursor). A count we have not accounted for starts a new
  epoch: every cached row and children list of the table is out of date (a bulk UPDATE by
  filter, a DELETE, an INSERT whose rows we were not shown). A statement that changes schemas
  (ALTER/CREATE/DROP), a rollback to a savepoint and the end of the transaction drop everything.
* A write whose rows we are shown (``put(..., written=True)`` right after an
  ``INSERT/UPDATE … RETURNING *``) is accounted for when it is the table's only write since
  we last looked: the other rows stay valid, the written rows are replaced, and so are they
  in their parent's children list when changed in place; the lists of their parents (old
  and new) are dropped when a child was added, moved, reordered or deleted.
  The next item's recompute then reads nothing again.
* Reads that lock (``FOR UPDATE``) or that must see other transactions' latest commits do not
  come through here.
"""
from __future__ import annotations


from sqlalchemy import bindparam, select

from ..db import table_writes

_KEY = "zs_rowcache"


#: rows kept per transaction at most (a bulk import or a long job must not hold them all)
MAX_ROWS = 2000
#: a write returning more rows than this is a bulk write: its rows are not kept
MAX_PUT = 200


def _cache(conn) -> dict:
    c = conn.info.get(_KEY)
    if c is None or len(c) > MAX_ROWS:
        c = conn.info[_KEY] = {"next": 0}
    return c


def _new_epoch(cache) -> int:
    cache["next"] += 1
    return cache["next"]


def _epochs(conn, cache, name: str) -> list:
    """[write count seen, row epoch, list epoch] of this table, brought up to date: a write
    we were not told about (the count moved) makes both epochs new."""
    count = table_writes(conn, name)
    st = cache.get(("epoch", name))
    if st is None:
        st = cache[("epoch", name)] = [count, _new_epoch(cache), _new_epoch(cache)]
    elif st[0] != count:
        st[:] = [count, _new_epoch(cache), _new_epoch(cache)]
    return st


def put(conn, table, rows, written: bool = False) -> None:
    """Rows of ``table`` as they are now (RETURNING * of a write, or rows just read).

    ``written``: the rows were returned by the statement that just wrote ``table`` (call it
    right after that statement, nothing in between), and they are all the rows it wrote. If
    it was the table's only write since we last looked, the table's other cached rows stay
    valid; a written item's parent's children list gets the new row (changed in place) or is
    dropped (added, moved, reordered, deleted)."""
    name = table.name
    if len(rows) > MAX_PUT:
        return  # the count moved without being accounted for: the next read starts a new epoch
    cache = _cache(conn)
    st = cache.get(("epoch", name))
    count = table_writes(conn, name)
    if written and st is not None and st[0] == count - 1:
        st[0] = count
        lists_ok = True
        for r in rows:
            old = cache.get((name, r.id))
            parent = getattr(r, "parent_id", None)
            if old is not None and old[0] == st[1]:
                if parent is not None and _replace_in_list(cache, name, st[2], old[1], r):
                    continue
                old_parent = getattr(old[1], "parent_id", None)
                if old_parent is not None:
                    cache.pop((name, "children", old_parent), None)
            elif parent is not None or hasattr(r, "parent_id"):
                lists_ok = False  # a child whose former parent we do not know: drop every list
            if parent is not None:
                cache.pop((name, "children", parent), None)
        if not lists_ok:
            st[2] = _new_epoch(cache)
    else:
        st = _epochs(conn, cache, name)
    for r in rows:
        cache[(name, r.id)] = (st[1], r)
    if written:
        for r in rows:
            cache[("own", name, r.id)] = True


def own_row(conn, table, rid):
    """The row as this transaction wrote it (``put(..., written=True)``), if still known and
    valid; None otherwise. On PostgreSQL the writer holds the row's lock until the
    transaction ends (a rolled-back savepoint, which may release it, drops the whole cache),
    so this row needs no ``SELECT … FOR UPDATE``."""
    cache = _cache(conn)
    if ("own", table.name, rid) not in cache:
        return None
    hit = cache.get((table.name, rid))
    return hit[1] if hit is not None and hit[0] == _epochs(conn, cache, table.name)[1] else None


def _replace_in_list(cache, name, lstamp, old, new) -> bool:
    """An item changed in place (same parent, same position, still live): its parent's cached
    list, if valid, gets the new row where the old one was (a new list: callers may hold the
    old one). False when the list must be dropped instead."""
    if (old.parent_id != new.parent_id or old.position != new.position
            or old.deleted_at is not None or new.deleted_at is not None):
        return False
    key = (name, "children", new.parent_id)
    hit = cache.get(key)
    if hit is None or hit[0] != lstamp:
        return True  # nothing valid to keep up to date
    items = hit[1]
    for k, row in enumerate(items):
        if row.id == new.id:
            cache[key] = (lstamp, [*items[:k], new, *items[k + 1:]])
            return True
    return False


# Statements built once per table object, kept in the table's own ``info`` dict (a schema
# change or a cache eviction makes new table objects; the old ones and their statements then
# go away together: a WeakKeyDictionary keyed by the table never let go, the statement refers
# to its table).


def _by_id_stmt(table):
    stmt = table.info.get("zs_by_id")
    if stmt is None:
        stmt = table.info["zs_by_id"] = select(table).where(table.c.id.in_(bindparam("ids", expanding=True)))
    return stmt


def _children_stmt(table):
    stmt = table.info.get("zs_children")
    if stmt is None:
        stmt = table.info["zs_children"] = (select(table).where(table.c.parent_id.in_(bindparam("pids", expanding=True)),
                                                                table.c.deleted_at.is_(None))
                                            .order_by(table.c.parent_id, table.c.position, table.c.id))
    return stmt


def _cached(cache, keys, stamp) -> tuple[dict, list]:
    """({key: cached value} valid at this write stamp, [keys missing or out of date])."""
    out, missing = {}, []
    for key, ckey in keys:
        hit = cache.get(ckey)
        if hit is not None and hit[0] == stamp:
            out[key] = hit[1]
        else:
            missing.append(key)
    return out, missing


def rows_by_id(conn, table, ids) -> dict:
    """{id: row} of these rows (deleted ones included), from the cache where valid."""
    cache = _cache(conn)
    stamp = _epochs(conn, cache, table.name)[1]
    out, missing = _cached(cache, ((i, (table.name, i)) for i in ids), stamp)
    for k in range(0, len(missing), 900):
        for row in conn.execute(_by_id_stmt(table), {"ids": missing[k:k + 900]}):
            out[row.id] = row
            cache[(table.name, row.id)] = (stamp, row)
    return out


def children_of(conn, table, parent_ids) -> dict:
    """{parent id: [its live sub-table rows in position order]} for these parents."""
    cache = _cache(conn)
    st = _epochs(conn, cache, table.name)
    stamp, lstamp = st[1], st[2]
    out, missing = _cached(cache, ((p, (table.name, "children", p)) for p in parent_ids), lstamp)
    for p in missing:
        out[p] = []
    for k in range(0, len(missing), 900):
        for row in conn.execute(_children_stmt(table), {"pids": missing[k:k + 900]}):
            out[row.parent_id].append(row)
            cache[(table.name, row.id)] = (stamp, row)
    for p in missing:
        cache[(table.name, "children", p)] = (lstamp, out[p])
    return out


def mapping_of(conn, row):
    """The row's mapping, the same object each time for the same cached row (so that what is
    worked out from it can be kept with ``memo_put``)."""
    cache = _cache(conn)
    key = ("mapping", id(row))
    hit = cache.get(key)
    if hit is not None and hit[0] is row:
        return hit[1]
    m = row._mapping
    cache[key] = (row, m)
    return m


def memo_get(conn, kind, obj):
    """What was kept for this very object (by identity) in this transaction, or None."""
    hit = _cache(conn).get((kind, id(obj)))
    return hit[1] if hit is not None and hit[0] is obj else None


def memo_put(conn, kind, obj, value) -> None:
    _cache(conn)[(kind, id(obj))] = (obj, value)


_ABSENT = object()


def lookup(conn, key, default=_ABSENT):
    """A value kept for this transaction under ``key`` (see ``keep``), or ``default``."""
    hit = _cache(conn).get(("value", key))
    return default if hit is None else hit[1]


def keep(conn, key, value) -> None:
    """Keeps a value for the rest of this transaction; dropped with the cached rows (end of
    the transaction, a rolled-back savepoint)."""
    _cache(conn)[("value", key)] = (None, value)

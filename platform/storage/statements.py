"""Statements on user tables built once per table and shape, with their values bound at
execution. Building a SQLAlchemy statement and its cache key costs more than running it on
SQLite; a write with its rules runs the same few shapes again and again."""
from __future__ import annotations

from sqlalchemy import bindparam, insert, update


def _for(table) -> dict:
    # Kept in the table's own ``info`` dict, so they go away with the table object. (A
    # WeakKeyDictionary keyed by the table never let go: its statements refer to the table.)
    d = table.info.get("zs_statements")
    if d is None:
        d = table.info["zs_statements"] = {}
    return d


def insert_returning(table, *, whole: bool = True):
    """INSERT … RETURNING every column (or only the id), rows returned in the order given."""
    d = _for(table)
    key = "insert" if whole else "insert_ids"
    stmt = d.get(key)
    if stmt is None:
        cols = table.c if whole else [table.c.id]
        stmt = d[key] = insert(table).returning(*cols, sort_by_parameter_order=True)
    return stmt


def set_by_id(table, columns, *, versioned: bool = False):
    """UPDATE table SET <columns> WHERE id = :_id [AND version = :_v, version + 1] RETURNING *.
    Parameters: ``_id``, ``_v`` when versioned, and ``v_<column>`` for each column."""
    key = ("set", tuple(columns), versioned)
    d = _for(table)
    stmt = d.get(key)
    if stmt is None:
        values = {c: bindparam(f"v_{c}") for c in columns}
        where = [table.c.id == bindparam("_id")]
        if versioned:
            where.append(table.c.version == bindparam("_v"))
            values["version"] = table.c.version + 1
        stmt = d[key] = update(table).where(*where).values(values).returning(*table.c)
    return stmt


def set_params(record_id: int, values: dict, version: int | None = None) -> dict:
    params = {f"v_{c}": v for c, v in values.items()}
    params["_id"] = record_id
    if version is not None:
        params["_v"] = version
    return params


#: the history columns an ``insert_with_history`` statement fills (``record_id`` comes from the new row)
HISTORY_PARAMS = ("tenant_id", "table_id", "version", "action", "changes", "user_id", "at")


def insert_with_history(table, history, columns: tuple, autonumbers: tuple = (), counters=None):
    """PostgreSQL: one record and its history row in one statement (round trips saved for a
    single create)::

        WITH zs_an0 AS (INSERT INTO autonumber_counters … ON CONFLICT … DO UPDATE … RETURNING value),
             zs_new AS (INSERT INTO t (<columns>, <autonumber columns>)
                        VALUES (…, :a0_head || <(SELECT value FROM zs_an0), zero-padded> || :a0_tail) RETURNING *),
             zs_hist AS (INSERT INTO record_history (…) SELECT :h_tenant_id, …, zs_new.id, … FROM zs_new)
        SELECT * FROM zs_new

    ``autonumbers``: ((column, width), ...) of the autonumber fields numbered here, from their
    counter rows (``counters``: the autonumber_counters table), as ``allocate_sequence`` and
    the field's renderer would (a head, the number zero-padded to ``width``, a tail); the
    history's changes text then carries ``a<k>_ph`` (a quoted placeholder) where the number
    goes. Parameters: ``v_<column>`` for each column, ``h_<name>`` for each of
    ``HISTORY_PARAMS`` (``h_changes`` as JSON text), ``a<k>_field``, ``a<k>_period``,
    ``a<k>_head``, ``a<k>_tail``, ``a<k>_ph`` per autonumber.
    The statement does not start with ``INSERT INTO``: its caller counts it as a write of
    ``table`` for the row cache (``db._count_user_writes``)."""
    from sqlalchemy import JSON, Text, case, cast, func, literal, select
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    d = _for(table)
    key = ("insert_hist", columns, autonumbers)
    stmt = d.get(key)
    if stmt is None:
        h = history.c
        values = {c: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns}
        changes = bindparam("h_changes", type_=Text)
        numbered = []
        for k, (column, width) in enumerate(autonumbers):
            up = pg_insert(counters).values(field_id=bindparam(f"a{k}_field", type_=counters.c.field_id.type),
                                            period=bindparam(f"a{k}_period", type_=counters.c.period.type), value=1)
            up = up.on_conflict_do_update(index_elements=[counters.c.field_id, counters.c.period],
                                          set_={"value": counters.c.value + up.excluded.value}).returning(counters.c.value)
            an = up.cte(f"zs_an{k}")
            n = cast(select(an.c.value).scalar_subquery(), Text)
            padded = case((func.length(n) >= width, n), else_=func.lpad(n, literal(width), literal("0")))
            values[column] = bindparam(f"a{k}_head", type_=Text) + padded + bindparam(f"a{k}_tail", type_=Text)
            numbered.append(column)
        new = insert(table).values(values).returning(*table.c).cte("zs_new")
        for k, column in enumerate(numbered):
            changes = func.replace(changes, bindparam(f"a{k}_ph", type_=Text), cast(func.to_json(new.c[column]), Text))
        hp = {n: bindparam(f"h_{n}", type_=h[n].type) for n in HISTORY_PARAMS if n != "changes"}
        src = select(hp["tenant_id"], hp["table_id"], new.c.id, hp["version"], hp["action"], cast(changes, JSON),
                     hp["user_id"], hp["at"])
        hist = insert(history).from_select(
            ["tenant_id", "table_id", "record_id", "version", "action", "changes", "user_id", "at"], src).cte("zs_hist")
        stmt = d[key] = select(*new.c).add_cte(hist)
    return stmt

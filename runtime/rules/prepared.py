"""Statements of the rule actions that run for every order, built once per table and filter shape.

``adjust_number`` (reserve stock per item line) and ``pick_row`` (route to a warehouse, pick a
gift tier) run their SQL for every order. Built from the filter each time, the statement
costs more Python than the database takes to run it (SQLAlchemy constructs and hashes the
expression on every call). Their filters are nearly always field-versus-value comparisons,
``{"field": "sku", "op": "=", "value": {"$expr": "item.sku"}}``: the *shape* (fields,
operators, which values are blank) is fixed by the rule, only the values change. So the
statement is built once per shape with bind parameters, kept on the table object (a schema
change makes a new table object and the old statements go with it), and run with the values.

Anything else (paths through links, text and list operators, dates, a non-system actor) is
left to the general path, which gives the same rows: this module only changes how the SQL is
made, never which SQL. ``tests/runtime/test_prepared_actions.py`` checks both paths agree.
"""
from __future__ import annotations

import operator

from sqlalchemy import bindparam, func, or_, select, update

from zhongshu.platform.storage.query import order_by

#: field types whose comparisons are the plain column-versus-value of ``FieldType.filter``
PLAIN_TYPES = {"text", "long_text", "number", "currency", "percent", "boolean", "single_select", "email", "phone",
               "url", "autonumber"}
OPS = {"=", "!=", "<", "<=", ">", ">="}
_CACHE = "zs_rule_statements"


def _plain(spec) -> bool:
    t = spec.type
    base = t.delegate(spec) if hasattr(t, "delegate") else t
    return base.name in PLAIN_TYPES and t.has_column(spec)


def filter_shape(schema, node, ctx, prefix: str):
    """(shape, params) of a filter that is only comparisons of fields with values, joined by
    ``and``; None for anything else. Values are converted to their stored form exactly as
    the general path does (a bad value raises the same ``FilterError``)."""
    if isinstance(node, dict) and set(node) == {"and"} and isinstance(node["and"], list):
        items = node["and"]
    elif isinstance(node, list):
        items = node
    else:
        items = [node]
    shape, params = [], {}
    for i, c in enumerate(items):
        if not isinstance(c, dict) or not {"field", "op"} <= set(c) or set(c) - {"field", "op", "value"}:
            return None
        name, op = c["field"], c["op"]
        spec = schema.fields.get(name) if isinstance(name, str) else None
        if spec is None or op not in OPS or op not in spec.type.operators or not _plain(spec):
            return None
        value = spec.type.filter_value(c.get("value"), spec, ctx)
        if value is None:
            if op not in ("=", "!="):
                return None  # the general path reports "needs a value"
            shape.append((name, "null" if op == "=" else "not_null"))
        else:
            key = f"{prefix}{i}"
            shape.append((name, op))
            params[key] = value
    return tuple(shape), params


def _where(schema, shape, prefix: str):
    t = schema.table
    out = []
    for i, (name, op) in enumerate(shape):
        col = t.c[schema.fields[name].column_name]
        if op == "null":
            out.append(col.is_(None))
            continue
        if op == "not_null":
            out.append(col.is_not(None))
            continue
        b = bindparam(f"{prefix}{i}", type_=col.type)
        out.append(or_(col != b, col.is_(None)) if op == "!=" else _COMPARE[op](col, b))
    return out


_COMPARE = {"=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _statements(schema) -> dict:
    return schema.table.info.setdefault(_CACHE, {})


def adjust(schema, field: str, shape, guard_shape):
    """(update, first) for adjust_number: the UPDATE that adds ``:delta`` to the first row
    matching the filter (lowest id) when the guard holds, returning the row; and the SELECT
    of that first row's id (to tell "no matching row" from "guard did not hold")."""
    cache = _statements(schema)
    key = ("adjust", field, shape, guard_shape)
    hit = cache.get(key)
    if hit is None:
        t = schema.table
        col = t.c[schema.fields[field].column_name]
        match = [t.c.deleted_at.is_(None), *_where(schema, shape, "f")]
        first = select(t.c.id).where(*match).order_by(t.c.id).limit(1)
        guard = _where(schema, guard_shape, "g") if guard_shape else []
        stmt = (update(t).where(t.c.id == first.scalar_subquery(), *match, *guard)
                .values({col.name: func.coalesce(col, 0) + bindparam("delta", type_=col.type), "version": t.c.version + 1,
                         "updated_at": bindparam("now", type_=t.c.updated_at.type)})
                .returning(*t.c))
        hit = cache[key] = (stmt, first)
    return hit


def pick(compiler, schema, shape, sorts: list):
    """The SELECT of the first live row matching the filter in the given order (the same
    order as a page of the records API: ``sort_columns`` + ``order_by``)."""
    cache = _statements(schema)
    key = ("pick", shape, tuple((s.get("field"), s.get("direction", "asc")) for s in sorts))
    hit = cache.get(key)
    if hit is None:
        t = schema.table
        cols = compiler.sort_columns(schema, sorts)
        hit = cache[key] = (select(t).where(t.c.deleted_at.is_(None), *_where(schema, shape, "f"))
                            .order_by(*order_by(cols)).limit(1))
    return hit

"""Filters, sorts, search and keyset pagination, compiled to SQL (never filtered in Python).

A filter is nested groups ``{"and": [...]}`` / ``{"or": [...]}`` / ``{"not": ...}`` of
conditions ``{"field": "status", "op": "=", "value": "已付款"}``. A field may be a path
through links and sub-tables: ``items.category`` (an order with such an item) or
``customer.level``; these become EXISTS / IN sub-queries that use the child indexes.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Callable

from sqlalchemy import Column, and_, exists, false, not_, or_, select, true

from ..fields.base import Ctx, FieldSpec, FilterError
from ..validation import errors_for, validator
from .schema import TableSchema, junction_table

if TYPE_CHECKING:
    from .access import Access

MAX_PAGE = 1000


@dataclass
class Query:
    filter: dict | list | None = None
    sorts: list[dict] = field(default_factory=list)
    search: str | None = None
    limit: int = 50
    cursor: str | None = None
    offset: int | None = None
    fields: list[str] | None = None
    include_deleted: bool = False
    only_deleted: bool = False
    #: the filter's shape was validated when the definition holding it was saved (a rule's
    #: action); the runtime only filled in values, which the filter schema leaves open
    checked: bool = False


_VALID_FILTERS: dict[str, bool] = {}  # canonical JSON of filters that passed; a page asks again and again


def validate_filter(node, pointer: str = "/filter") -> None:
    if node is None:
        return
    try:
        key = json.dumps(node, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        key = None
    if key is not None and len(key) < 4096 and key in _VALID_FILTERS:
        return
    if validator("filter").is_valid(node):  # the common case: no error list to build
        if key is not None and len(key) < 4096:
            if len(_VALID_FILTERS) > 2048:
                _VALID_FILTERS.clear()
            _VALID_FILTERS[key] = True
        return
    errs = errors_for("filter", node, pointer)
    if errs:
        first = errs[0]
        raise FilterError(f"bad filter at {first['pointer']}: {first['message']}",
                          f"筛选条件有误 {first['pointer']}: {first['message_zh']}")


def substitute_user(node, ctx: Ctx):
    """Replaces $me and $user.<attribute> in a filter (row scopes of roles)."""
    if isinstance(node, dict):
        return {k: substitute_user(v, ctx) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute_user(v, ctx) for v in node]
    if node == "$me":
        return ctx.user_id
    if isinstance(node, str) and node.startswith("$user."):
        return ctx.user_attributes.get(node[6:])
    return node


class Compiler:
    """Compiles filters against a table. ``resolve(api_name)`` returns the schema of a
    linked or child table of the same tenant.

    What the caller may use: ``access(schema)`` (the caller's ``Access`` to a table) makes
    every step of a path check it — a field hidden from the caller, or a step into a table
    they cannot read, is an ``unknown field`` exactly like a field that does not exist, so
    filters and sorts cannot probe data the caller may not see. ``hidden(schema)`` alone
    checks hidden fields only (row scopes: the builder's condition, which may go through a
    table the role cannot read)."""

    def __init__(self, resolve: Callable[[str], TableSchema], ctx: Ctx, *, hidden: Callable[[TableSchema], set] | None = None,
                 access: Callable[[TableSchema], "Access"] | None = None):
        self.resolve = resolve
        self.ctx = ctx
        if access is not None:
            self.hidden = hidden or (lambda schema: access(schema).hidden)
            self.readable = lambda schema: access(schema).read
        else:
            self.hidden = hidden or (lambda schema: set())
            self.readable = lambda schema: True
        self._depth = 0

    def field(self, schema: TableSchema, name: str) -> FieldSpec:
        """A field of ``schema`` the caller may use; hidden ones are unknown, and the list
        of fields in the error names only the others."""
        hidden = self.hidden(schema)
        if name in hidden:
            raise _unknown(name)
        if not hidden:
            return schema.field(name)
        spec = schema.fields.get(name) or schema.system_specs.get(name)
        if spec is None:
            names = ", ".join([n for n in schema.fields if n not in hidden][:40])
            raise FilterError(f"unknown field '{name}' in table {schema.api_name}; fields: {names}",
                              f"表 {schema.api_name} 中没有字段 '{name}';现有字段: {names}")
        return spec

    def related(self, ref, path: list[str]) -> TableSchema:
        """The linked or child table a path steps into; one the caller cannot read answers
        as if the next field of the path did not exist (the same error as a hidden one)."""
        target = self.resolve(ref)
        if not self.readable(target):
            raise _unknown(path[1] if len(path) > 1 else path[0])
        return target

    # -- filters -------------------------------------------------------------------
    def where(self, schema: TableSchema, node, table=None):
        table = schema.table if table is None else table
        if node is None:
            return true()
        if isinstance(node, list):
            node = {"and": node}
        if "and" in node:
            parts = [self.where(schema, n, table) for n in node["and"]]
            return and_(true(), *parts) if parts else true()
        if "or" in node:
            parts = [self.where(schema, n, table) for n in node["or"]]
            return or_(false(), *parts) if parts else false()
        if "not" in node:
            return not_(self.where(schema, node["not"], table))
        return self.condition(schema, table, node["field"].split("."), node["op"], node.get("value"))

    def condition(self, schema: TableSchema, table, path: list[str], op: str, value):
        spec = self.field(schema, path[0])
        tname = spec.type.name
        if len(path) == 1:
            if tname == "sub_table":
                child = self.resolve(spec.options["table"])
                any_row = exists().where(child.table.c.parent_id == table.c.id, child.table.c.deleted_at.is_(None))
                if op == "is_empty":
                    return not_(any_row)
                if op == "is_not_empty":
                    return any_row
            if tname == "link" and spec.type.relationship(spec) != "many_to_one" and op in ("is_empty", "is_not_empty"):
                sub = self._link_exists(spec, table, true())
                return not_(sub) if op == "is_empty" else sub
            return spec.type.filter(table.c[spec.column_name], op, value, spec, self.ctx)
        # Following a link or a sub-table: the rest of the path is a condition over the
        # related rows, true when any related row matches.
        if tname not in ("sub_table", "link"):
            raise FilterError(f"'{path[0]}' is not a link or sub-table, so '{'.'.join(path)}' cannot be followed",
                              f"'{path[0]}' 不是关联或子表,无法使用 '{'.'.join(path)}'")
        self._depth += 1
        try:
            if self._depth > 3:
                raise FilterError("a filter may follow at most 3 links", "筛选最多跨 3 层关联")
            if tname == "sub_table":
                child = self.related(spec.options["table"], path)
                inner = self.condition(child, child.table, path[1:], op, value)
                return exists().where(child.table.c.parent_id == table.c.id, child.table.c.deleted_at.is_(None), inner)
            target = self.related(spec.options["target"], path)
            inner = self.condition(target, target.table, path[1:], op, value)
            return self._link_exists(spec, table, inner, target)
        finally:
            self._depth -= 1

    def _link_exists(self, spec: FieldSpec, table, inner, target: TableSchema | None = None):
        target = target or self.resolve(spec.options["target"])
        tt = target.table
        rel = spec.type.relationship(spec)
        live = tt.c.deleted_at.is_(None)
        if rel == "many_to_one":
            return table.c[spec.column_name].in_(select(tt.c.id).where(live, inner))
        if rel == "one_to_many":
            via = target.field(spec.options["via"])
            return exists().where(tt.c[via.column_name] == table.c.id, live, inner)
        j = junction_table(spec)
        return exists().where(j.c.src_id == table.c.id, j.c.dst_id.in_(select(tt.c.id).where(live, inner)))

    # -- search --------------------------------------------------------------------
    def search(self, schema: TableSchema, term: str, hidden: set):
        term = term.strip()[:200]
        if not term:
            return true()
        parts = []
        for spec in schema.stored_fields():
            if spec.api_name in hidden:
                continue
            if getattr(spec.type, "searchable", False) is True:
                parts.append(spec.type.search_clause(schema.table.c[spec.column_name], term, self.ctx.dialect))
        if term.isdigit():
            parts.append(schema.table.c.id == int(term))
        return or_(false(), *parts)

    # -- sorts ---------------------------------------------------------------------
    def sort_columns(self, schema: TableSchema, sorts: list[dict]):
        """Returns [(expression, descending)], always ending with id for a stable order."""
        out = []
        for s in sorts or []:
            fname = s.get("field", "")
            desc = s.get("direction", "asc") == "desc"
            path = fname.split(".")
            spec = self.field(schema, path[0])
            if len(path) == 2 and spec.type.name == "link" and spec.type.relationship(spec) == "many_to_one":
                # the linked table and its field are checked as a filter through the link is
                target = self.related(spec.options["target"], path)
                tspec = self.field(target, path[1])
                expr = (select(tspec.type.sort_expression(target.table.c[tspec.column_name], tspec))
                        .where(target.table.c.id == schema.table.c[spec.column_name]).scalar_subquery())
            elif len(path) == 1:
                if not spec.type.sortable or (spec.type.storage == "none"):
                    raise FilterError(f"cannot sort by '{fname}' ({spec.type.name})", f"不能按 '{fname}'({spec.type.name})排序")
                expr = spec.type.sort_expression(schema.table.c[spec.column_name], spec)
            else:
                raise FilterError(f"cannot sort by '{fname}'", f"不能按 '{fname}' 排序")
            out.append((expr, desc))
        if not any(e is schema.table.c.id for e, _ in out):
            desc_id = out[-1][1] if out else False
            out.append((schema.table.c.id, desc_id))
        return out


def _unknown(name: str) -> FilterError:
    return FilterError(f"unknown field '{name}'", f"没有字段 '{name}'")


def order_by(cols):
    # NULLs sort as the largest value in both directions on both databases. A column that
    # cannot hold NULL (id, created_at) says nothing about them: SQLite can then walk an
    # index for the whole ORDER BY. With "id DESC NULLS FIRST" after "created DESC NULLS
    # FIRST" it could not, and sorted every matching row to return 50 (9 ms instead of 0.5
    # for 3,500 matches of 100k rows; its index scan handles NULLS FIRST on the first sort
    # column after the equality columns, not on a second one).
    return [(e.desc() if desc else e.asc()) if _never_null(e) else (e.desc().nulls_first() if desc else e.asc().nulls_last())
            for e, desc in cols]


def _never_null(expr) -> bool:
    return isinstance(expr, Column) and (expr.primary_key or not expr.nullable)


def keyset_after(cols, values):
    """Rows strictly after the cursor row in the order given by ``order_by(cols)``."""
    ors = []
    for i, (expr, desc) in enumerate(cols):
        eqs = []
        for (e2, _), v2 in zip(cols[:i], values[:i]):
            eqs.append(e2.is_(None) if v2 is None else e2 == v2)
        v = values[i]
        if desc:
            after = expr.is_not(None) if v is None else expr < v
        else:
            after = false() if v is None else or_(expr > v, expr.is_(None))
        ors.append(and_(*eqs, after))
    return or_(*ors)


def _enc(v):
    if isinstance(v, datetime):
        return {"dt": v.isoformat()}
    if isinstance(v, date):
        return {"d": v.isoformat()}
    if isinstance(v, Decimal):
        return {"dec": str(v)}
    return v


def _dec(v):
    if isinstance(v, dict):
        if "dt" in v:
            return datetime.fromisoformat(v["dt"])
        if "d" in v:
            return date.fromisoformat(v["d"])
        if "dec" in v:
            return Decimal(v["dec"])
    return v


def encode_cursor(values) -> str:
    raw = json.dumps([_enc(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, n: int):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        vals = [_dec(v) for v in json.loads(raw)]
    except Exception:
        raise FilterError("the cursor is not valid; start again from the first page", "分页游标无效,请从第一页重新开始") from None
    if not isinstance(vals, list) or len(vals) != n:
        raise FilterError("the cursor does not belong to this sort order", "分页游标与排序不符")
    return vals

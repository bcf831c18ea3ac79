"""Between the storage engine and the expression language.

* ``expression_schema(records, table)``: what an expression may reference in a table —
  its fields, system fields, and through links and sub-tables the fields over there
  (two hops deep: ``items.product.category``).
* ``Loader``: builds the plain values an expression is evaluated against (numbers,
  text, dates, aware datetimes, dicts for links, lists of dicts for sub-tables), loading
  only the paths the expressions reference.
"""
from __future__ import annotations

import json
import weakref
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import bindparam, select

from zhongshu.platform.db import table_writes

from zhongshu.platform.fields.base import FieldSpec
from zhongshu.platform.storage import rowcache
from zhongshu.platform.storage.schema import TableSchema, junction_table

from .expressions import FieldInfo, Schema

RESULT_MAP = {"text": "text", "number": "number", "currency": "number", "percent": "number", "boolean": "boolean",
              "date": "date", "datetime": "datetime", "json": "any"}
SYSTEM_INFO = {"id": "number", "version": "number", "created_at": "datetime", "updated_at": "datetime",
               "created_by": "number", "updated_by": "number"}


ADDRESS_SCHEMA = Schema({**{k: FieldInfo("text") for k in ("country", "province", "city", "district", "detail", "postcode", "text", "map_url")},
                         "lat": FieldInfo("number"), "lng": FieldInfo("number")})


def _info(records, spec: FieldSpec, depth: int) -> FieldInfo:
    t = spec.type.name
    label = spec.label if isinstance(spec.label, str) else (spec.label or {}).get("zh-CN") or spec.api_name
    if t in ("formula", "lookup", "rollup"):
        rt = spec.options.get("result_type", "number" if t != "lookup" else "text")
        return FieldInfo(t, result_type=RESULT_MAP.get(rt, "any"), label=label)
    if t == "autonumber":
        return FieldInfo("text", label=label)
    if t in ("created_time", "modified_time"):
        return FieldInfo("datetime", label=label)
    if t in ("created_by", "modified_by"):
        return FieldInfo("number", label=label)
    if t == "address":
        # An address is a small record: address.province, address.text, address.lat ...
        return FieldInfo("link", schema=ADDRESS_SCHEMA, label=label)
    if t in ("single_select", "multi_select"):
        return FieldInfo(t, options=[c["label"] for c in spec.options.get("choices", [])], label=label)
    if t == "sub_table":
        sub = expression_schema(records, records.schema(spec.options["table"]), depth + 1) if depth < 2 else Schema({})
        return FieldInfo("sub_table", schema=sub, label=label)
    if t == "link":
        target = records.schema(spec.options["target"])
        sub = expression_schema(records, target, depth + 1) if depth < 2 else Schema({})
        many = spec.type.relationship(spec) != "many_to_one"
        return FieldInfo("link", schema=sub, many=many, label=label)
    return FieldInfo(t, label=label)


def expression_schema(records, table: TableSchema, depth: int = 0) -> Schema:
    # Built once per table version until the tenant's metadata changes (rules and formulas
    # ask for it on every write); per transaction while metadata is being changed.
    cache = records.cache.meta.for_tenant(records.session, records.tenant_id)
    if cache is None:
        cache = records.session.info.setdefault("zs_expr_schemas", {})
    key = ("expression_schema", table.id, table.schema_version, depth)
    hit = cache.get(key)
    if hit is not None:
        return hit
    fields = {name: FieldInfo(kind) for name, kind in SYSTEM_INFO.items()}
    for spec in table.fields.values():
        fields[spec.api_name] = _info(records, spec, depth)
    cache[key] = Schema(fields)
    return cache[key]


def plain(spec: FieldSpec, stored, ctx):
    """A stored column value as the expression language sees it."""
    if stored is None:
        return [] if spec.type.name in ("multi_select", "attachment") else None
    t = spec.type.name
    if t in ("formula", "lookup", "rollup"):
        rt = spec.options.get("result_type", "number" if t != "lookup" else "text")
        t = {"json": "json", "currency": "currency"}.get(rt, rt)
    if t in ("datetime", "created_time", "modified_time"):
        if isinstance(stored, str):
            stored = datetime.fromisoformat(stored)
        return stored.replace(tzinfo=timezone.utc)
    if t == "date":
        return stored if isinstance(stored, date) else date.fromisoformat(str(stored)[:10])
    if t == "currency":
        return stored if isinstance(stored, Decimal) else Decimal(str(stored))
    if t in ("number", "percent"):
        return float(stored)
    if t in ("single_select", "multi_select", "address", "attachment"):
        return spec.type.from_storage(stored, spec, ctx)
    if t == "json":
        return json.loads(stored) if isinstance(stored, str) else stored
    return stored


def _plain_conv(spec: FieldSpec):
    """``plain`` for one field, decided once: (converter or None for as stored, value of None)."""
    t = spec.type.name
    empty = t in ("multi_select", "attachment")
    if t in ("formula", "lookup", "rollup"):
        rt = spec.options.get("result_type", "number" if t != "lookup" else "text")
        t = {"json": "json", "currency": "currency"}.get(rt, rt)
    if t in ("datetime", "created_time", "modified_time"):
        def conv(v, ctx):
            if isinstance(v, str):
                v = datetime.fromisoformat(v)
            return v.replace(tzinfo=timezone.utc)
    elif t == "date":
        def conv(v, ctx):
            return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])
    elif t == "currency":
        def conv(v, ctx):
            return v if isinstance(v, Decimal) else Decimal(str(v))
    elif t in ("number", "percent"):
        def conv(v, ctx):
            return float(v)
    elif t in ("single_select", "multi_select", "address", "attachment"):
        from_storage = spec.type.from_storage

        def conv(v, ctx):
            return from_storage(v, spec, ctx)
    elif t == "json":
        def conv(v, ctx):
            return json.loads(v) if isinstance(v, str) else v
    else:
        conv = None
    return conv, empty


class _Plan:
    """What ``Loader`` needs of a table, worked out once per compiled table schema: its own
    columns with their converters, and its links and sub-tables."""

    __slots__ = ("columns", "relations", "__weakref__")

    def __init__(self, table: TableSchema):
        self.columns = []
        self.relations = []
        for spec in table.fields.values():
            t = spec.type.name
            if spec.type.has_column(spec) and t != "link":
                conv, empty = _plain_conv(spec)
                self.columns.append((spec.api_name, spec.column_name, conv, empty))
            if t == "link":
                self.relations.append((spec, "m2o" if spec.type.relationship(spec) == "many_to_one" else "many"))
            elif t == "sub_table":
                self.relations.append((spec, "sub"))


_PLANS: "weakref.WeakKeyDictionary[TableSchema, _Plan]" = weakref.WeakKeyDictionary()


def _plan(table: TableSchema) -> _Plan:
    plan = _PLANS.get(table)
    if plan is None:
        plan = _PLANS[table] = _Plan(table)
    return plan


def _one_to_many_stmt(tt, column: str):
    """The live rows of ``tt`` whose ``column`` points at ``:src``, built once per table
    object (kept in its ``info``, so it goes away with it)."""
    by_col = tt.info.setdefault("zs_one_to_many", {})
    stmt = by_col.get(column)
    if stmt is None:
        stmt = by_col[column] = (select(tt).where(tt.c[column] == bindparam("src"), tt.c.deleted_at.is_(None))
                                 .order_by(tt.c.id))
    return stmt


class Loader:
    """Loads plain records for evaluation, following only the referenced paths."""

    def __init__(self, records):
        self.records = records

    @staticmethod
    def needs(paths) -> dict:
        """{"items.product.category", "amount"} -> {"items": {"product": {"category": {}}}, "amount": {}}"""
        tree: dict = {}
        for p in paths:
            node = tree
            for part in p.split("."):
                node = node.setdefault(part, {})
        return tree

    def rows(self, table: TableSchema, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        conn = self.records.conn
        return {i: rowcache.mapping_of(conn, r) for i, r in rowcache.rows_by_id(conn, table.table, ids).items()}

    def prefetch(self, table: TableSchema, ids: list[int], tree: dict | None) -> None:
        """Reads these rows and the rows their many-to-one links in ``tree`` lead to, one
        statement per table and level, into the transaction's row cache: ``load`` of each
        of them then reads nothing (the candidates of a pick_row and their warehouses)."""
        rows = self.rows(table, ids)
        if not tree or not rows:
            return
        for spec, kind in _plan(table).relations:
            sub = tree.get(spec.api_name)
            if kind == "m2o" and sub:
                tids = sorted({m[spec.column_name] for m in rows.values() if m[spec.column_name]})
                if tids:
                    self.prefetch(self.records.schema(spec.options["target"]), tids, sub)

    def build(self, table: TableSchema, mapping, tree: dict | None) -> dict:
        """A plain dict of one row; ``tree`` says which relations to follow (None = none)."""
        rec = dict(self._columns(table, mapping))
        tree = tree or {}
        for spec, kind in _plan(table).relations:
            name = spec.api_name
            sub = tree.get(name)
            if kind == "m2o":
                tid = mapping[spec.column_name]
                if sub and tid:
                    target = self.records.schema(spec.options["target"])
                    rows = self.rows(target, [tid])
                    rec[name] = self.build(target, rows[tid], sub) if tid in rows else None
                else:
                    rec[name] = {"id": tid} if tid else None
            elif kind == "many":
                rec[name] = self.many(spec, mapping["id"], sub) if sub is not None else []
            else:
                rec[name] = self.children(spec, mapping["id"], sub) if sub is not None else []
        return rec

    def _columns(self, table: TableSchema, mapping) -> dict:
        """The row's own values as plain values; worked out once per row and transaction
        (a write's rules and computed fields build the same cached rows many times)."""
        conn = self.records.conn
        kind = ("plain", table.id)
        known = rowcache.memo_get(conn, kind, mapping)
        if known is not None:
            return known
        ctx = self.records.ctx
        created, updated = mapping["created_at"], mapping["updated_at"]
        rec = {"id": mapping["id"], "version": mapping["version"], "created_by": mapping["created_by"],
               "updated_by": mapping["updated_by"],
               "created_at": created.replace(tzinfo=timezone.utc) if created else None,
               "updated_at": updated.replace(tzinfo=timezone.utc) if updated else None}
        for name, column, conv, empty in _plan(table).columns:
            v = mapping[column]
            if v is None:
                rec[name] = [] if empty else None
            else:
                rec[name] = conv(v, ctx) if conv is not None else v
        rowcache.memo_put(conn, kind, mapping, rec)
        return rec

    def children(self, spec: FieldSpec, parent_id: int, tree: dict) -> list[dict]:
        child = self.records.schema(spec.options["table"])
        conn = self.records.conn
        rows = rowcache.children_of(conn, child.table, [parent_id])[parent_id]
        return [self.build(child, rowcache.mapping_of(conn, r), tree) for r in rows]

    def many(self, spec: FieldSpec, src_id: int, tree: dict) -> list[dict]:
        target = self.records.schema(spec.options["target"])
        tt = target.table
        conn = self.records.conn
        if spec.type.relationship(spec) == "one_to_many":
            # Kept for the transaction until the target table is written again (an order's
            # computed fields and rules read its shipments several times per write).
            via = target.field(spec.options["via"])
            key = ("one_to_many", tt.name, via.column_name, src_id)
            stamp = table_writes(conn, tt.name)
            hit = rowcache.lookup(conn, key, None)
            if hit is not None and hit[0] == stamp:
                rows = hit[1]
            else:
                rows = conn.execute(_one_to_many_stmt(tt, via.column_name), {"src": src_id}).all()
                rowcache.keep(conn, key, (stamp, rows))
        else:
            j = junction_table(spec)
            rows = conn.execute(select(tt).join(j, j.c.dst_id == tt.c.id).where(
                j.c.src_id == src_id, tt.c.deleted_at.is_(None)).order_by(tt.c.id)).all()
        return [self.build(target, rowcache.mapping_of(conn, r), tree) for r in rows]

    def load(self, table: TableSchema, record_id: int, paths) -> dict | None:
        rows = self.rows(table, [record_id])
        if record_id not in rows:
            return None
        return self.build(table, rows[record_id], self.needs(paths))

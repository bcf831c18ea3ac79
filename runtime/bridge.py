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
from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from zhongshu.platform.fields.base import FieldSpec
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
    # Built once per transaction and table version (rules and formulas ask for it often).
    cache = records.session.info.setdefault("zs_expr_schemas", {})
    key = (table.id, table.schema_version, depth)
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
        out = {}
        t = table.table
        for i in range(0, len(ids), 900):
            for row in self.records.conn.execute(select(t).where(t.c.id.in_(ids[i:i + 900]))):
                out[row.id] = row._mapping
        return out

    def build(self, table: TableSchema, mapping, tree: dict | None) -> dict:
        """A plain dict of one row; ``tree`` says which relations to follow (None = none)."""
        ctx = self.records.ctx
        rec = {"id": mapping["id"], "version": mapping["version"], "created_by": mapping["created_by"],
               "updated_by": mapping["updated_by"],
               "created_at": mapping["created_at"].replace(tzinfo=timezone.utc) if mapping["created_at"] else None,
               "updated_at": mapping["updated_at"].replace(tzinfo=timezone.utc) if mapping["updated_at"] else None}
        for spec in table.fields.values():
            if spec.type.has_column(spec) and spec.type.name != "link":
                rec[spec.api_name] = plain(spec, mapping[spec.column_name], ctx)
        tree = tree or {}
        for spec in table.fields.values():
            t = spec.type.name
            if t == "link":
                rel = spec.type.relationship(spec)
                sub = tree.get(spec.api_name)
                if rel == "many_to_one":
                    tid = mapping[spec.column_name]
                    if sub and tid:
                        target = self.records.schema(spec.options["target"])
                        rows = self.rows(target, [tid])
                        rec[spec.api_name] = self.build(target, rows[tid], sub) if tid in rows else None
                    else:
                        rec[spec.api_name] = {"id": tid} if tid else None
                elif sub is not None:
                    rec[spec.api_name] = self.many(spec, mapping["id"], sub)
                else:
                    rec[spec.api_name] = []
            elif t == "sub_table":
                sub = tree.get(spec.api_name)
                rec[spec.api_name] = self.children(spec, mapping["id"], sub) if sub is not None else []
        return rec

    def children(self, spec: FieldSpec, parent_id: int, tree: dict) -> list[dict]:
        child = self.records.schema(spec.options["table"])
        ct = child.table
        rows = self.records.conn.execute(select(ct).where(ct.c.parent_id == parent_id, ct.c.deleted_at.is_(None))
                                         .order_by(ct.c.position, ct.c.id)).all()
        return [self.build(child, r._mapping, tree) for r in rows]

    def many(self, spec: FieldSpec, src_id: int, tree: dict) -> list[dict]:
        target = self.records.schema(spec.options["target"])
        tt = target.table
        if spec.type.relationship(spec) == "one_to_many":
            via = target.field(spec.options["via"])
            rows = self.records.conn.execute(select(tt).where(tt.c[via.column_name] == src_id, tt.c.deleted_at.is_(None))
                                             .order_by(tt.c.id)).all()
        else:
            j = junction_table(spec)
            rows = self.records.conn.execute(select(tt).join(j, j.c.dst_id == tt.c.id).where(
                j.c.src_id == src_id, tt.c.deleted_at.is_(None)).order_by(tt.c.id)).all()
        return [self.build(target, r._mapping, tree) for r in rows]

    def load(self, table: TableSchema, record_id: int, paths) -> dict | None:
        rows = self.rows(table, [record_id])
        if record_id not in rows:
            return None
        return self.build(table, rows[record_id], self.needs(paths))

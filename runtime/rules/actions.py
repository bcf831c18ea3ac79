"""Rule actions: one class per action type, each with its parameter schema, a save-time
``check`` and a ``run``. Adding an action type touches this file only.

Values in actions are expressions evaluated against the triggering record (``status``,
``customer.level``, ``SUM(items.subtotal)``); ``{"value": ...}`` gives a literal. Filters
in actions may use ``{"$expr": "..."}`` as a value. Message texts are sandboxed Jinja2
templates with the record as ``record`` (``{{ record.order_no }}``).
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import and_, func, select, update

from zhongshu.platform.errors import ValidationFailed, field_error
from zhongshu.platform.fields.base import FieldValueError, FilterError
from zhongshu.platform.models import utcnow
from zhongshu.platform.storage import rowcache
from zhongshu.platform.storage.query import validate_filter

from ..bridge import Loader, expression_schema
from . import prepared
from ..expressions import FieldInfo, Schema
from ..models import Approval, FieldLock
from ..outbox import PRIORITY_NOTIFY, PRIORITY_ORDER, enqueue

ACTIONS: dict[str, "Action"] = {}
_COUNT_SCHEMA = Schema({"count": FieldInfo("number")})
API_NAME = {"$ref": "table.json#/$defs/api_name"}
EXPR = {"description": "an expression; {\"value\": ...} for a literal",
        "oneOf": [{"type": "string", "maxLength": 4000}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
                  {"type": "object", "required": ["value"], "additionalProperties": False, "properties": {"value": {}}}]}
VALUES = {"type": "object", "maxProperties": 200, "propertyNames": {"pattern": "^[a-z][a-z0-9_]{0,62}$"}, "additionalProperties": EXPR}
ACTION_LIST = {"type": "array", "items": {"$ref": "#/$defs/action"}, "maxItems": 50}
TEMPLATE = {"type": "string", "maxLength": 20000}


def register(cls):
    ACTIONS[cls.type] = cls()
    return cls


class ActionFailed(Exception):
    """An action could not do its work; the rule run is logged as an error."""


def plain_json(v):
    """Expression values -> JSON-able values for storage and templates."""
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: plain_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain_json(x) for x in v]
    return v


class Action:
    type: ClassVar[str]
    label: ClassVar[dict] = {}
    params: ClassVar[dict] = {}
    required: ClassVar[list] = []

    def check(self, rc, a: dict, scope, ptr: str) -> None:
        pass

    def run(self, rx, a: dict, scope) -> dict:
        raise NotImplementedError

    # helpers -------------------------------------------------------------------
    @staticmethod
    def check_values(rc, values: dict, table, scope, ptr: str):
        for k, v in (values or {}).items():
            if table is not None and k not in table.fields:
                rc.fail(f"{ptr}/{k}", f"no field '{k}' in {table.api_name}", f"{table.api_name} 中没有字段 '{k}'")
                continue
            if table is not None and table.fields[k].type.computed:
                rc.fail(f"{ptr}/{k}", f"'{k}' is computed and cannot be set", f"'{k}' 是计算字段,不能赋值")
            if isinstance(v, str):
                rc.expr(v, scope, f"{ptr}/{k}")

    @staticmethod
    def check_filter(rc, flt, table, scope, ptr: str):
        if flt is None or table is None:
            return
        try:
            validate_filter(resolve_filter(flt, lambda src: _check_dummy(rc, src, scope, ptr)), ptr)
        except FilterError as e:
            rc.fail(ptr, e.message, e.message_zh)

    @staticmethod
    def check_actions(rc, actions, scope, ptr: str):
        for i, a in enumerate(actions or []):
            ACTIONS[a["type"]].check(rc, a, scope, f"{ptr}/{i}")


def _check_dummy(rc, src, scope, ptr):
    rc.expr(src, scope, ptr)
    return None


def resolve_filter(node, evaluate):
    """Replaces {"$expr": "..."} values in a filter by their values."""
    if isinstance(node, dict):
        if set(node) == {"$expr"}:
            return evaluate(node["$expr"])
        return {k: resolve_filter(v, evaluate) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_filter(v, evaluate) for v in node]
    return node


def evaluate_values(rx, values: dict, scope) -> dict:
    out = {}
    for k, v in (values or {}).items():
        if isinstance(v, dict) and "value" in v:
            out[k] = v["value"]
        elif isinstance(v, str):
            out[k] = plain_json(rx.evaluate(v, scope))
        else:
            out[k] = v
    return out


_BOUND: dict = {}


def bound_scope(scope, name: str, schema):
    """``scope.with_binding(name, schema)`` at run time, its schema shared by every run with
    the same schemas: a fresh one would have its fingerprint worked out again (nested
    schemas included) by every expression compiled against it."""
    key = (scope.schema.fingerprint, name, schema.fingerprint)
    hit = _BOUND.get(key)
    if hit is None:
        if len(_BOUND) > 2000:
            _BOUND.clear()
        hit = _BOUND[key] = scope.with_binding(name, schema).schema
    return type(scope)(scope.table, hit, {**scope.extras, name: schema})


@register
class UpdateRecord(Action):
    type = "update_record"
    label = {"zh-CN": "更新本记录字段", "en": "Update fields of the record"}
    params = {"values": VALUES}
    required = ["values"]

    def check(self, rc, a, scope, ptr):
        self.check_values(rc, a["values"], scope.table, scope, f"{ptr}/values")

    def run(self, rx, a, scope):
        raw = {}
        for k, v in (a["values"] or {}).items():
            if isinstance(v, dict) and "value" in v:
                raw[k] = v["value"]
            elif isinstance(v, str):
                raw[k] = rx.evaluate(v, scope)
            else:
                raw[k] = v
        return {"changed": rx.set_fields(raw)}


@register
class CreateRecord(Action):
    type = "create_record"
    label = {"zh-CN": "新建记录", "en": "Create a record"}
    params = {"table": API_NAME, "values": VALUES,
              "parent": {"type": "string", "maxLength": 4000, "description": "sub-table rows: the parent record id (an expression, e.g. id)"}}
    required = ["table", "values"]

    def check(self, rc, a, scope, ptr):
        target = rc.table_named(a["table"], f"{ptr}/table")
        self.check_values(rc, a["values"], target, scope, f"{ptr}/values")
        if target is not None and target.is_child and not a.get("parent"):
            rc.fail(f"{ptr}/parent", f"{a['table']} is a sub-table: say which record the row belongs to ('parent': 'id')",
                    f"{a['table']} 是子表,需要 'parent'(例如 'id')")
        if a.get("parent"):
            rc.expr(a["parent"], scope, f"{ptr}/parent")

    def run(self, rx, a, scope):
        target = rx.records.schema(a["table"])
        values = evaluate_values(rx, a["values"], scope)
        if a.get("parent"):
            from sqlalchemy import func as _f

            parent = rx.evaluate(a["parent"], scope)
            parent = parent.get("id") if isinstance(parent, dict) else parent
            t = target.table
            pos = rx.records.conn.execute(select(_f.coalesce(_f.max(t.c.position), -1)).where(t.c.parent_id == parent)).scalar() + 1
            rec = rx.records.create_many(target, [values], parent_ids=[(parent, pos)])[0]
            parent_schema = rx.records.root_of(target)
            if parent_schema is not None and parent == rx.record_id and parent_schema.id == (rx.table.id if rx.table else None):
                rx.refresh()
        else:
            rec = rx.records.create(target, values)
        return {"created": {"table": a["table"], "id": rec["id"]}}


@register
class UpdateRecords(Action):
    type = "update_records"
    label = {"zh-CN": "更新其他记录", "en": "Update records found by a filter"}
    params = {"table": API_NAME, "filter": {"type": "object"}, "values": VALUES, "limit": {"type": "integer", "minimum": 1, "maximum": 1000}}
    required = ["table", "filter", "values"]

    def check(self, rc, a, scope, ptr):
        target = rc.table_named(a["table"], f"{ptr}/table")
        self.check_filter(rc, a["filter"], target, scope, f"{ptr}/filter")
        if target is not None:
            inner = scope.with_binding("row", rc.scope_for(target).schema)
            self.check_values(rc, a["values"], target, inner, f"{ptr}/values")

    def run(self, rx, a, scope):
        from zhongshu.platform.storage.query import Query

        target = rx.records.schema(a["table"])
        flt = resolve_filter(a["filter"], lambda src: plain_json(rx.evaluate(src, scope)))
        rows = rx.records.list(target, Query(filter=flt, limit=a.get("limit", 100), checked=True, fields=["id"]))["records"]
        inner = bound_scope(scope, "row", expression_schema(rx.records, target))
        loader = Loader(rx.records)
        loader.prefetch(target, [r["id"] for r in rows], loader.needs(rx.paths_of(a, "row")))  # in one statement, not one per row
        done = []
        for r in rows:
            row_plain = loader.load(target, r["id"], rx.paths_of(a, "row"))
            values = {}
            for k, v in a["values"].items():
                if isinstance(v, dict) and "value" in v:
                    values[k] = v["value"]
                elif isinstance(v, str):
                    values[k] = plain_json(rx.evaluate(v, inner, extra={"row": row_plain}))
                else:
                    values[k] = v
            rx.records.update(target, r["id"], values)
            done.append(r["id"])
        return {"updated": {"table": a["table"], "ids": done}}


@register
class AdjustNumber(Action):
    """Atomic guarded adjustment: ``reserved += qty`` only where the guard holds, in one
    UPDATE statement (the row lock makes concurrent reservations queue, so the last units
    are never sold twice). When no row qualifies the ``else`` actions run (or the write is
    refused with ``reject``)."""

    type = "adjust_number"
    label = {"zh-CN": "原子增减数值(库存)", "en": "Adjust a number atomically (inventory)"}
    params = {"table": API_NAME, "filter": {"type": "object"}, "field": API_NAME, "delta": EXPR,
              "guard": {"type": "object"}, "else": ACTION_LIST, "reject": TEMPLATE}
    required = ["table", "filter", "field", "delta"]

    def check(self, rc, a, scope, ptr):
        target = rc.table_named(a["table"], f"{ptr}/table")
        self.check_filter(rc, a["filter"], target, scope, f"{ptr}/filter")
        self.check_filter(rc, a.get("guard"), target, scope, f"{ptr}/guard")
        if target is not None:
            spec = target.fields.get(a["field"])
            if spec is None or spec.type.name not in ("number", "currency"):
                rc.fail(f"{ptr}/field", f"'{a['field']}' is not a number field of {a['table']}", f"'{a['field']}' 不是 {a['table']} 的数字字段")
        if isinstance(a["delta"], str):
            rc.expr(a["delta"], scope, f"{ptr}/delta")
        self.check_actions(rc, a.get("else"), scope, f"{ptr}/else")
        if a.get("reject"):
            rc.template(a["reject"], f"{ptr}/reject")

    def run(self, rx, a, scope):
        target = rx.records.schema(a["table"])
        ev = lambda src: plain_json(rx.evaluate(src, scope))  # noqa: E731
        delta = a["delta"]["value"] if isinstance(a["delta"], dict) else (ev(a["delta"]) if isinstance(a["delta"], str) else a["delta"])
        if delta is None:
            return {"skipped": "delta is empty"}
        t = target.table
        flt = resolve_filter(a["filter"], ev)
        guard = resolve_filter(a["guard"], ev) if a.get("guard") else None
        now = rx.records.ctx.now or utcnow()
        fast = self._prepared(rx, target, a["field"], flt, guard) if not rx.dry_run else None
        if fast is not None:
            stmt, first, params = fast
            written = rx.records.conn.execute(stmt, {**params, "delta": delta, "now": now}).all()
            if len(written) != 1:
                found = rx.records.conn.execute(first, params).first() is not None
                return self._failed(rx, a, scope, "guard did not hold" if found else "no matching row", delta)
            return self._adjusted(rx, a, target, written, delta, now)
        comp = rx.records.compiler()
        where = [t.c.deleted_at.is_(None), comp.where(target, flt)]
        if guard is not None:
            where.append(comp.where(target, guard))
        spec = target.fields[a["field"]]
        col = t.c[spec.column_name]
        first = select(t.c.id).where(*where[:2]).order_by(t.c.id).limit(1)
        if rx.dry_run:
            rid = rx.records.conn.execute(first).scalar()
            if rid is None:
                return self._failed(rx, a, scope, "no matching row", delta)
            ok_row = rx.records.conn.execute(select(t.c.id).where(t.c.id == rid, *where)).first()
            return {"would_adjust": {"table": a["table"], "id": rid, "field": a["field"], "delta": delta, "guard_holds": ok_row is not None}}
        # The first matching row is found and adjusted, guard checked, in one statement.
        written = rx.records.conn.execute(update(t).where(t.c.id == first.scalar_subquery(), *where).values(
            {spec.column_name: func.coalesce(col, 0) + delta, "version": t.c.version + 1, "updated_at": now}).returning(*t.c)).all()
        if len(written) != 1:
            found = rx.records.conn.execute(first).first() is not None
            return self._failed(rx, a, scope, "guard did not hold" if found else "no matching row", delta)
        return self._adjusted(rx, a, target, written, delta, now)

    @staticmethod
    def _prepared(rx, target, field, flt, guard):
        """The prebuilt statements and their values when filter and guard are plain
        comparisons and the rule writes as the platform; None: build them here."""
        if not rx.records.actor.is_system:
            return None
        ctx = rx.records.ctx
        f = prepared.filter_shape(target, flt, ctx, "f")
        g = prepared.filter_shape(target, guard, ctx, "g") if guard is not None else ((), {})
        if f is None or g is None:
            return None
        stmt, first = prepared.adjust(target, field, f[0], g[0])
        return stmt, first, {**f[1], **g[1]}

    def _adjusted(self, rx, a, target, written, delta, now):
        t = target.table
        rowcache.put(rx.records.conn, t, written, written=True)  # right after the adjusting UPDATE
        rid = written[0].id
        rx.records.add_history([{
            "tenant_id": rx.records.tenant_id, "table_id": target.id, "record_id": rid, "version": 0, "action": "adjust",
            "changes": {a["field"]: {"delta": delta, "rule": rx.rule.api_name}}, "user_id": None, "at": now}])
        from zhongshu.platform.storage.records import WriteEvent

        # The adjusted row is an ordinary update for what depends on it: computed fields
        # (available) and its table's rules (a low-stock alert when available drops).
        after = rx.records.get_unchecked(target, rid, rx.records.access(target), with_children=False)
        event = WriteEvent(rx.records, target, "update", rid, None, after, {a["field"]}, rx.records.depth)
        for hook in rx.records.hooks.after_write:
            hook(event)
        return {"adjusted": {"table": a["table"], "id": rid, "field": a["field"], "delta": delta}}

    def _failed(self, rx, a, scope, why, delta):
        if a.get("reject"):
            msg = rx.render(a["reject"])
            raise ValidationFailed(msg, message_zh=msg, code="rejected_by_rule")
        outcomes = rx.run_actions(a.get("else") or [], scope, "else")
        return {"not_adjusted": why, "delta": delta, "else": outcomes}


@register
class PickRow(Action):
    """The first row of a rules table matching a filter (routing, gift tiers), its values
    written into the record: ``set: {"warehouse": "row.id"}``.

    ``filter`` and ``sorts`` run in SQL. For what SQL cannot say — distance to the customer,
    a capacity computed from several fields — ``where`` (an expression over ``row`` and the
    record) keeps candidates and ``order_by`` (an expression, smallest first) ranks them;
    then at most ``candidates`` rows (default 500) are read and ranked in the runtime."""

    type = "pick_row"
    label = {"zh-CN": "从规则表选取一行", "en": "Pick the first matching row of a rules table"}
    params = {"table": API_NAME, "filter": {"type": "object"}, "sorts": {"type": "array", "maxItems": 5},
              "where": {"type": "string", "maxLength": 4000}, "order_by": {"type": "string", "maxLength": 4000},
              "candidates": {"type": "integer", "minimum": 1, "maximum": 5000},
              "set": VALUES, "else": ACTION_LIST, "then": ACTION_LIST, "bind": API_NAME}
    required = ["table", "filter"]

    def check(self, rc, a, scope, ptr):
        target = rc.table_named(a["table"], f"{ptr}/table")
        self.check_filter(rc, a["filter"], target, scope, f"{ptr}/filter")
        if target is None:
            return
        inner = scope.with_binding(a.get("bind", "row"), rc.scope_for(target).schema)
        for key in ("where", "order_by"):
            if a.get(key):
                rc.expr(a[key], inner, f"{ptr}/{key}")
        self.check_values(rc, a.get("set"), scope.table, inner, f"{ptr}/set")
        self.check_actions(rc, a.get("then"), inner, f"{ptr}/then")
        self.check_actions(rc, a.get("else"), scope, f"{ptr}/else")

    def run(self, rx, a, scope):
        from zhongshu.platform.storage.query import Query

        target = rx.records.schema(a["table"])
        flt = resolve_filter(a["filter"], lambda src: plain_json(rx.evaluate(src, scope)))
        name = a.get("bind", "row")
        inner = bound_scope(scope, name, expression_schema(rx.records, target))
        loader = Loader(rx.records)
        ranked = bool(a.get("where") or a.get("order_by"))
        fast = None if ranked else self._prepared(rx, target, flt, a.get("sorts") or [])
        if fast is not None:
            found = rx.records.conn.execute(*fast).all()
            rowcache.put(rx.records.conn, target.table, found)
            rows = [{"id": r.id} for r in found]
        else:
            # only the ids: the rows themselves come from the transaction's row cache (list puts them there)
            rows = rx.records.list(target, Query(filter=flt, sorts=a.get("sorts", []), checked=True, fields=["id"],
                                                 limit=a.get("candidates", 500) if ranked else 1))["records"]
        chosen = None
        if ranked:
            if a.get("order_by"):  # every candidate is read: in one statement (and one per link followed)
                loader.prefetch(target, [r["id"] for r in rows], loader.needs(rx.paths_of(a, name)))
            best = None
            for r in rows:
                plain = loader.load(target, r["id"], rx.paths_of(a, name))
                if a.get("where") and not rx.evaluate(a["where"], inner, extra={name: plain}):
                    continue
                key = rx.evaluate(a["order_by"], inner, extra={name: plain}) if a.get("order_by") else 0
                if key is None:
                    continue
                if best is None or key < best[0]:
                    best = (key, r, plain)
                    if not a.get("order_by"):
                        break
            if best is not None:
                chosen, row_plain = best[1], best[2]
        elif rows:
            chosen = rows[0]
            row_plain = loader.load(target, chosen["id"], rx.paths_of(a, name))
        if chosen is None:
            return {"picked": None, "else": rx.run_actions(a.get("else") or [], scope, "else")}
        rx.bind(name, row_plain)
        out = {"picked": {"table": a["table"], "id": chosen["id"]}}
        if a.get("set"):
            raw = {k: (v["value"] if isinstance(v, dict) else rx.evaluate(v, inner) if isinstance(v, str) else v)
                   for k, v in a["set"].items()}
            out["changed"] = rx.set_fields(raw)
        if a.get("then"):
            out["then"] = rx.run_actions(a["then"], inner, "then")
        return out


    @staticmethod
    def _prepared(rx, target, flt, sorts):
        """(statement, values) of the first matching row when the filter is plain comparisons
        and the rule reads as the platform (no row scope); None: the records service's page."""
        records = rx.records
        if not records.actor.is_system:
            return None
        shape = prepared.filter_shape(target, flt, records.ctx, "f")
        if shape is None or any(not isinstance(s, dict) or "." in str(s.get("field", "")) for s in sorts):
            return None
        records.cache.advisor.note_page(records, target, flt, sorts)  # a large rules table still gets its index
        return prepared.pick(records.compiler(), target, shape[0], sorts), shape[1]


@register
class CountRecords(Action):
    """Counts records matching a filter and runs ``then`` with the number bound as
    ``<as>.count`` (e.g. the same buyer's orders in the last 10 minutes)."""

    type = "count_records"
    label = {"zh-CN": "统计记录数", "en": "Count records"}
    params = {"table": API_NAME, "filter": {"type": "object"}, "as": API_NAME, "then": ACTION_LIST}
    required = ["table", "filter", "then"]

    def _schema(self):
        return _COUNT_SCHEMA

    def check(self, rc, a, scope, ptr):
        target = rc.table_named(a["table"], f"{ptr}/table")
        self.check_filter(rc, a["filter"], target, scope, f"{ptr}/filter")
        self.check_actions(rc, a["then"], scope.with_binding(a.get("as", "found"), self._schema()), f"{ptr}/then")

    def run(self, rx, a, scope):
        target = rx.records.schema(a["table"])
        flt = resolve_filter(a["filter"], lambda src: plain_json(rx.evaluate(src, scope)))
        n = rx.records.count(target, flt)
        name = a.get("as", "found")
        rx.bind(name, {"count": n})
        out = {"count": n, "then": rx.run_actions(a["then"], bound_scope(scope, name, _COUNT_SCHEMA), "then")}
        rx.unbind(name)
        return out


@register
class Recompute(Action):
    """Recomputes the computed fields of records matching a filter (e.g. a daily rollup of
    "orders today" right after midnight)."""

    type = "recompute"
    label = {"zh-CN": "重新计算", "en": "Recompute computed fields"}
    params = {"table": API_NAME, "filter": {"type": "object"}}
    required = ["table"]

    def check(self, rc, a, scope, ptr):
        target = rc.table_named(a["table"], f"{ptr}/table")
        self.check_filter(rc, a.get("filter"), target, scope, f"{ptr}/filter")

    def run(self, rx, a, scope):
        from zhongshu.platform.storage.query import Query

        from ..computed import recompute

        target = rx.records.schema(a["table"])
        flt = resolve_filter(a.get("filter"), lambda src: plain_json(rx.evaluate(src, scope))) if a.get("filter") else None
        ids = [r["id"] for r in rx.records.list(target, Query(filter=flt, limit=1000, fields=["id"], checked=True))["records"]]
        changed = recompute(rx.records, target, ids) if not rx.dry_run else {}
        return {"recomputed": len(ids), "changed": len(changed)}


@register
class LockFields(Action):
    type = "lock_fields"
    label = {"zh-CN": "锁定字段", "en": "Lock fields"}
    params = {"fields": {"type": "array", "items": API_NAME, "minItems": 1}, "message": TEMPLATE,
              "table": API_NAME, "record": {"type": "string", "maxLength": 4000}}
    required = ["fields"]

    def check(self, rc, a, scope, ptr):
        table = rc.table_named(a["table"], f"{ptr}/table") if a.get("table") else scope.table
        for i, f in enumerate(a["fields"]):
            if table is not None and f not in table.fields:
                rc.fail(f"{ptr}/fields/{i}", f"no field '{f}'", f"没有字段 '{f}'")
        if a.get("record"):
            rc.expr(a["record"], scope, f"{ptr}/record")
        if a.get("message"):
            rc.template(a["message"], f"{ptr}/message")

    def target(self, rx, a, scope):
        table = rx.records.schema(a["table"]) if a.get("table") else rx.table
        rid = rx.evaluate(a["record"], scope) if a.get("record") else rx.record_id
        if isinstance(rid, dict):
            rid = rid.get("id")
        return table, rid

    def run(self, rx, a, scope):
        table, rid = self.target(rx, a, scope)
        msg = rx.render(a["message"]) if a.get("message") else f"字段已锁定 / locked: {', '.join(a['fields'])}"
        for f in a["fields"]:
            exists = rx.records.session.scalar(select(FieldLock).where(
                FieldLock.table_id == table.id, FieldLock.record_id == rid, FieldLock.field == f))
            if exists is None:
                rx.records.session.add(FieldLock(tenant_id=rx.records.tenant_id, table_id=table.id, record_id=rid,
                                                 field=f, message=msg[:500], rule_id=rx.rule.id))
        rx.records.session.flush()
        from .engine import forget_locks

        forget_locks(rx.records, table.id, rid)
        return {"locked": a["fields"], "record": rid}


@register
class UnlockFields(LockFields):
    type = "unlock_fields"
    label = {"zh-CN": "解锁字段", "en": "Unlock fields"}

    def run(self, rx, a, scope):
        table, rid = self.target(rx, a, scope)
        for lock in rx.records.session.scalars(select(FieldLock).where(
                FieldLock.table_id == table.id, FieldLock.record_id == rid, FieldLock.field.in_(a["fields"]))):
            rx.records.session.delete(lock)
        rx.records.session.flush()
        from .engine import forget_locks

        forget_locks(rx.records, table.id, rid)
        return {"unlocked": a["fields"], "record": rid}


@register
class Reject(Action):
    """Refuses the write with a message (a validation rule)."""

    type = "reject"
    label = {"zh-CN": "拒绝保存并提示", "en": "Refuse the change with a message"}
    params = {"message": TEMPLATE, "field": API_NAME}
    required = ["message"]

    def check(self, rc, a, scope, ptr):
        rc.template(a["message"], f"{ptr}/message")

    def run(self, rx, a, scope):
        msg = rx.render(a["message"])
        if rx.dry_run:
            return {"would_reject": msg}
        ptr = f"/{a['field']}" if a.get("field") else ""
        raise ValidationFailed(msg, message_zh=msg, code="rejected_by_rule",
                               errors=[field_error(ptr, msg, msg, rule=rx.rule.api_name)])


@register
class StartApproval(Action):
    type = "start_approval"
    label = {"zh-CN": "发起审批", "en": "Start an approval"}
    params = {"title": TEMPLATE, "approvers": {"type": "object", "additionalProperties": False, "properties": {
        "roles": {"type": "array", "items": {"enum": ["owner", "admin", "builder", "member", "viewer"]}},
        "users": {"type": "array", "items": {"type": "integer"}}}},
        "on_approve": ACTION_LIST, "on_reject": ACTION_LIST}
    required = ["title", "approvers"]

    def check(self, rc, a, scope, ptr):
        rc.template(a["title"], f"{ptr}/title")
        self.check_actions(rc, a.get("on_approve"), scope, f"{ptr}/on_approve")
        self.check_actions(rc, a.get("on_reject"), scope, f"{ptr}/on_reject")

    def run(self, rx, a, scope):
        title = rx.render(a["title"])
        if rx.dry_run:
            return {"would_start_approval": title}
        ap = Approval(tenant_id=rx.records.tenant_id, rule_id=rx.rule.id, table_id=rx.table.id, record_id=rx.record_id,
                      title=title[:500], approvers=a["approvers"], status="pending",
                      payload={"rule": rx.rule.api_name, "on_approve": a.get("on_approve", []), "on_reject": a.get("on_reject", [])})
        rx.records.session.add(ap)
        rx.records.session.flush()
        return {"approval": ap.id}


def _idempotency_key(rx, a, kind: str) -> str:
    base = f"{kind}:{rx.rule.id}:{rx.table.id if rx.table else 0}:{rx.record_id}:{rx.occasion}:{rx.path}"
    return hashlib.sha256(base.encode()).hexdigest()[:40] + ":" + kind


@register
class Notify(Action):
    """Sends a message through a connector install (DingTalk, WeCom, SMS, email...). The texts
    are rendered here, once, with the record; the sending happens in the outbox with retries.
    The connector gets final text and no ``input.data`` (with data it would render the texts
    again, running any ``{{ }}`` a customer typed into the record).

    Texts the connector says are markup (``Connector.text_formats``: the e-mail's ``html``,
    a robot's markdown) have the record values escaped for it: a customer's ``<script>``,
    ``[link](url)`` or ``<@mention>`` arrives as text, not as markup. The other texts are
    plain text (SMS, text messages, the e-mail's text part) and are sent unescaped."""

    type = "notify"
    #: input fields whose text is HTML
    html_inputs = frozenset({"html"})
    label = {"zh-CN": "发送通知", "en": "Send a notification"}
    params = {"connector": API_NAME, "action": {"type": "string", "maxLength": 100},
              "input": {"type": "object", "additionalProperties": {"oneOf": [TEMPLATE, {"type": ["number", "boolean", "array", "object", "null"]}]}},
              "priority": {"type": "integer", "minimum": 0, "maximum": 9}}
    required = ["connector", "action", "input"]

    def check(self, rc, a, scope, ptr):
        def walk(v, p):
            if isinstance(v, str):
                rc.template(v, p)
            elif isinstance(v, dict):
                for k, x in v.items():
                    walk(x, f"{p}/{k}")
            elif isinstance(v, list):
                for i, x in enumerate(v):
                    walk(x, f"{p}/{i}")

        walk(a["input"], f"{ptr}/input")
        if "data" in a["input"]:
            rc.fail(f"{ptr}/input/data", "a rule renders its texts itself: write {{ record.<field> }} in them; input.data is not used",
                    "规则自己渲染文本：请在文本中写 {{ record.<字段> }}；不使用 input.data")

    def run(self, rx, a, scope):
        # input.data of a rule saved before it was refused is left out: the texts are final
        from zhongshu.connectors.service.actions import text_escapes  # which texts are HTML / markdown

        escapes = text_escapes(rx.records, a["connector"], a["action"], a["input"], self.html_inputs)
        rendered = {k: rx.render(v, html=escapes[k]) if k in escapes and isinstance(v, str) else rx.render_value(v)
                    for k, v in a["input"].items() if k != "data"}
        payload = {"install": a["connector"], "action": a["action"], "input": rendered}
        if rx.dry_run:
            return {"would_send": payload}
        key = _idempotency_key(rx, a, "notify")
        job = enqueue(rx.records.conn, tenant_id=rx.records.tenant_id, kind="connector.action", payload=payload, key=key,
                      priority=a.get("priority", PRIORITY_NOTIFY))
        return {"queued": job, "install": a["connector"], "action": a["action"]}


@register
class CallConnector(Notify):
    type = "call_connector"
    label = {"zh-CN": "调用连接器动作", "en": "Call a connector action"}


#: Jinja statements and comments (and whitespace) before a body template's first text
_LEADING_TAGS = re.compile(r"\A(?:\s*(?:\{%.*?%\}|\{#.*?#\}))*\s*", re.S)


@register
class HttpRequest(Action):
    type = "http"
    label = {"zh-CN": "调用 HTTP 接口", "en": "Call an HTTP endpoint"}
    params = {"method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]}, "url": TEMPLATE,
              "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 2000}},
              "body": TEMPLATE, "timeout_seconds": {"type": "number", "minimum": 1, "maximum": 60}}
    required = ["method", "url"]

    def check(self, rc, a, scope, ptr):
        rc.template(a["url"], f"{ptr}/url")
        if a.get("body"):
            rc.template(a["body"], f"{ptr}/body")

    @staticmethod
    def json_body(a) -> bool:
        """Whether the body is JSON: a JSON Content-Type (``application/json``, ``…+json``), or
        none given (the worker then sends ``application/json``) and a template whose text starts
        with ``{`` or ``[`` (after any leading ``{% %}`` / ``{# #}``; ``{{ record.x }}: …`` is not
        JSON). A form or text body is not."""
        ctype = next((v for k, v in (a.get("headers") or {}).items() if k.lower() == "content-type"), None)
        if ctype is not None:
            media = ctype.split(";", 1)[0].strip().lower()
            return media == "application/json" or media.endswith("+json")
        text = _LEADING_TAGS.sub("", a["body"])
        return text.startswith("[") or (text.startswith("{") and not text.startswith("{{"))

    def run(self, rx, a, scope):
        # a JSON body: record values are escaped as the inside of a JSON string (the connector's
        # body template does the same), so '", "status": "refunded' typed by a customer cannot add
        # a key and a newline cannot break the JSON; |tojson (and |safe) output is left as is
        from zhongshu.connectors.api.textformat import escape_json_string

        url = rx.render(a["url"]).strip()
        if not url.lower().startswith(("http://", "https://")):
            raise ActionFailed(f"not an http(s) address: {url[:100]}")
        body = rx.render(a["body"], html=escape_json_string if self.json_body(a) else False) if a.get("body") else None
        payload = {"method": a["method"], "url": url, "headers": a.get("headers", {}), "body": body,
                   "timeout_seconds": a.get("timeout_seconds", 10)}
        if rx.dry_run:
            return {"would_call": payload}
        job = enqueue(rx.records.conn, tenant_id=rx.records.tenant_id, kind="http.request", payload=payload,
                      key=_idempotency_key(rx, a, "http"), priority=PRIORITY_NOTIFY)
        return {"queued": job, "url": url}


@register
class Branch(Action):
    type = "branch"
    label = {"zh-CN": "条件分支", "en": "If / else"}
    params = {"if": {"type": "string", "maxLength": 4000}, "then": ACTION_LIST, "else": ACTION_LIST}
    required = ["if"]

    def check(self, rc, a, scope, ptr):
        rc.expr(a["if"], scope, f"{ptr}/if")
        self.check_actions(rc, a.get("then"), scope, f"{ptr}/then")
        self.check_actions(rc, a.get("else"), scope, f"{ptr}/else")

    def run(self, rx, a, scope):
        cond = bool(rx.evaluate(a["if"], scope))
        branch = "then" if cond else "else"
        return {"if": cond, branch: rx.run_actions(a.get(branch) or [], scope, branch)}


@register
class ForEach(Action):
    """Runs actions once per row: of a sub-table or link of the record (``items``), or of
    any table matching a filter (``table`` + ``filter``, e.g. every gift tier reached)."""

    type = "for_each"
    label = {"zh-CN": "逐行执行", "en": "For each row"}
    params = {"items": API_NAME, "table": API_NAME, "filter": {"type": "object"}, "sorts": {"type": "array", "maxItems": 5},
              "limit": {"type": "integer", "minimum": 1, "maximum": 1000}, "as": API_NAME, "actions": ACTION_LIST}
    required = ["actions"]

    def _target(self, records, scope, a):
        if a.get("table"):
            return records.schema(a["table"])
        spec = scope.table.fields[a["items"]]
        return records.schema(spec.options["table"] if spec.type.name == "sub_table" else spec.options["target"])

    def check(self, rc, a, scope, ptr):
        if bool(a.get("items")) == bool(a.get("table")):
            rc.fail(ptr, "for_each needs either 'items' (a sub-table or link) or 'table' with a 'filter'",
                    "for_each 需要 'items'(子表或关联)或 'table' 加 'filter'")
            return
        if a.get("table"):
            target = rc.table_named(a["table"], f"{ptr}/table")
            self.check_filter(rc, a.get("filter") or {"and": []}, target, scope, f"{ptr}/filter")
            if target is None:
                return
        else:
            table = scope.table
            spec = table.fields.get(a["items"]) if table is not None else None
            if spec is None or spec.type.name not in ("sub_table", "link"):
                rc.fail(f"{ptr}/items", f"'{a['items']}' is not a sub-table or link", f"'{a['items']}' 不是子表或关联字段")
                return
            target = self._target(rc.records, scope, a)
        inner = scope.with_binding(a.get("as", "item"), rc.scope_for(target).schema)
        self.check_actions(rc, a["actions"], inner, f"{ptr}/actions")

    def run(self, rx, a, scope):
        from zhongshu.platform.storage.query import Query

        target = self._target(rx.records, scope, a)
        name = a.get("as", "item")
        inner = bound_scope(scope, name, expression_schema(rx.records, target))
        loader = Loader(rx.records)
        if a.get("table"):
            flt = resolve_filter(a.get("filter") or {"and": []}, lambda src: plain_json(rx.evaluate(src, scope)))
            rows = rx.records.list(target, Query(filter=flt, sorts=a.get("sorts", []), limit=a.get("limit", 100), checked=True,
                                                 fields=["id"]))["records"]
            loader.prefetch(target, [r["id"] for r in rows], loader.needs(rx.paths_of(a, name)))  # in one statement, not one per row
        else:
            rows = rx.load_relation(a["items"])
        out = []
        for i, row in enumerate(rows):
            row_plain = loader.load(target, row["id"], rx.paths_of(a, name))
            rx.bind(name, row_plain)
            out.append(rx.run_actions(a["actions"], inner, f"{name}[{i}]"))
        rx.unbind(name)
        return {"rows": len(rows), "results": out}


@register
class Wait(Action):
    """Runs the actions later (the rest of the rule continues from the outbox)."""

    type = "wait"
    label = {"zh-CN": "等待后执行", "en": "Wait, then run"}
    params = {"duration": {"type": "string", "maxLength": 40}, "actions": ACTION_LIST}
    required = ["duration", "actions"]

    def check(self, rc, a, scope, ptr):
        from zhongshu.platform.fields.time import parse_duration

        try:
            parse_duration(a["duration"])
        except FilterError as e:
            rc.fail(f"{ptr}/duration", e.message, e.message_zh)
        self.check_actions(rc, a["actions"], scope, f"{ptr}/actions")

    def run(self, rx, a, scope):
        from zhongshu.platform.fields.time import parse_duration

        when = (rx.records.ctx.now or utcnow()) + parse_duration(a["duration"])
        payload = {"rule": rx.rule.id, "table": rx.table.id if rx.table else None, "record": rx.record_id,
                   "actions": a["actions"], "path": rx.path}
        if rx.dry_run:
            return {"would_wait_until": when.isoformat() + "Z"}
        job = enqueue(rx.records.conn, tenant_id=rx.records.tenant_id, kind="rules.continue", payload=payload,
                      key=_idempotency_key(rx, a, "wait"), run_at=when, priority=PRIORITY_ORDER)
        return {"continues_at": when.isoformat() + "Z", "job": job}


def action_catalogue() -> list[dict]:
    return [{"type": n, "label": a.label, "params": a.params, "required": a.required} for n, a in ACTIONS.items()]


__all__ = ["ACTIONS", "Action", "ActionFailed", "action_catalogue", "plain_json", "resolve_filter"]

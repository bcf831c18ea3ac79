"""Apps, tables, fields, views and dashboards; JSON Schemas and field types."""
from __future__ import annotations

import copy

from flask import g, request
from sqlalchemy import select

from .. import fields as ft
from ..errors import NotFound
from ..fields.base import FilterError
from ..models import App, Dashboard, Field, UserTable, View
from ..storage.query import Compiler, substitute_user
from ..storage.schema import TableSchema
from ..validation import all_schema_names, schema
from .base import api, body_object, metadata, ok, platform, records, require_role


def label_json(label, api_name):
    return label if label else api_name


def field_json(spec) -> dict:
    d = {"id": spec.id, "api_name": spec.api_name, "type": spec.type.name, **{k: v for k, v in spec.definition.items() if k not in ("api_name", "type")}}
    d["position"] = spec.position
    return d


def table_json(s: TableSchema, *, hidden: set | None = None, permissions: bool = True) -> dict:
    """``permissions=False`` leaves out the permissions document: it says what every role
    may see, so roles below builder only learn what their records show them."""
    hidden = hidden or set()
    return {
        "id": s.id, "api_name": s.api_name, "schema_version": s.schema_version,
        **{k: v for k, v in s.definition.items() if k != "api_name" and (permissions or k != "permissions")},
        "parent_table": s.parent_table_id,
        "fields": [field_json(f) for f in s.fields.values() if f.api_name not in hidden],
    }


def defines() -> bool:
    """Builders and above see definitions whole; lower roles see them trimmed to what
    they may read (no permissions, no hidden fields, no tables they cannot read)."""
    return g.actor.at_least("builder")


# -- schemas and types (public) -----------------------------------------------------------

@api.get("/schemas/<name>.json")
def schema_doc(name):
    if name not in all_schema_names():
        raise NotFound(f"schema '{name}'", f"模式 '{name}'")
    return ok(schema(name))


@api.get("/schemas")
def schema_index():
    return ok({"schemas": {n: request.host_url.rstrip("/") + f"/api/v1/schemas/{n}.json" for n in all_schema_names()}})


@api.get("/field-types")
def field_types():
    return ok({"field_types": [
        {"type": name, "label": t.label, "operators": list(t.operators), "computed": t.computed, "sortable": t.sortable,
         "options_schema": t.options_schema}
        for name, t in ft.all_types().items()]})


# -- apps ---------------------------------------------------------------------------------

@api.get("/tenants/<tenant>/apps")
def list_apps():
    return ok({"apps": [{"id": a.id, "api_name": a.api_name, **a.definition} for a in g.db.scalars(select(App).order_by(App.id))]})


@api.post("/tenants/<tenant>/apps")
def create_app_route():
    require_role("builder")
    a = metadata().create_app(body_object())
    return ok({"app": {"id": a.id, **a.definition}}, 201)


# -- tables -------------------------------------------------------------------------------

@api.get("/tenants/<tenant>/tables")
def list_tables():
    recs = records()
    out = []
    for row in g.db.scalars(select(UserTable).where(UserTable.deleted_at.is_(None)).order_by(UserTable.id)):
        s = recs.schema(row.id)
        acc = recs.access(s)
        if acc.read:
            out.append(table_json(s, hidden=acc.hidden, permissions=defines()))
    return ok({"tables": out})


@api.post("/tenants/<tenant>/tables")
def create_table():
    require_role("builder")
    s = metadata().create_table(body_object())
    return ok({"table": table_json(s)}, 201)


@api.get("/tenants/<tenant>/tables/<table>")
def get_table(table):
    recs = records()
    s = recs.schema(table)
    acc = recs.access(s)
    acc.require_read(s)
    return ok({"table": table_json(s, hidden=acc.hidden, permissions=defines())})


@api.patch("/tenants/<tenant>/tables/<table>")
def update_table(table):
    require_role("builder")
    return ok({"table": table_json(metadata().update_table(table, body_object()))})


@api.delete("/tenants/<tenant>/tables/<table>")
def delete_table(table):
    require_role("builder")
    metadata().delete_table(table)
    return ok({"ok": True, "restorable": True})


@api.post("/tenants/<tenant>/tables/<int:table_id>/restore")
def restore_table(table_id):
    require_role("builder")
    return ok({"table": table_json(metadata().restore_table(table_id))})


@api.get("/tenants/<tenant>/deleted-tables")
def deleted_tables():
    rows = g.db.scalars(select(UserTable).where(UserTable.deleted_at.is_not(None), UserTable.parent_table_id.is_(None)))
    return ok({"tables": [{"id": r.id, "api_name": r.api_name, "deleted_at": r.deleted_at.isoformat() + "Z"} for r in rows]})


# -- fields -------------------------------------------------------------------------------

@api.post("/tenants/<tenant>/tables/<table>/fields")
def add_field(table):
    require_role("builder")
    data = body_object()
    s = metadata().add_field(table, data)
    return ok({"field": field_json(s.fields[data["api_name"]]), "table": table_json(s)}, 201)


@api.patch("/tenants/<tenant>/tables/<table>/fields/<field>")
def update_field(table, field):
    """Rename, reconfigure or change the type. A type change converts existing values and
    returns a report; ``?dry_run=true`` returns the report without changing anything."""
    require_role("builder")
    data = body_object()
    report: dict = {}
    dry = request.args.get("dry_run") in ("1", "true")
    s = metadata().update_field(table, field, data, dry_run=dry, convert_report=report)
    new_name = data.get("api_name", field)
    out = {"table": table_json(s)}
    if not dry and new_name in s.fields:
        out["field"] = field_json(s.fields[new_name])
    if report:
        out["conversion"] = {k: v for k, v in report.items() if k != "column"}
    if dry:
        g.db.rollback()
    return ok(out)


@api.delete("/tenants/<tenant>/tables/<table>/fields/<field>")
def delete_field(table, field):
    require_role("builder")
    s = metadata().delete_field(table, field)
    return ok({"ok": True, "restorable": True, "table": table_json(s)})


@api.get("/tenants/<tenant>/tables/<table>/deleted-fields")
def deleted_fields(table):
    s = records().schema(table)
    rows = g.db.scalars(select(Field).where(Field.table_id == s.id, Field.deleted_at.is_not(None)))
    return ok({"fields": [{"id": f.id, "api_name": f.api_name, "type": f.type, "deleted_at": f.deleted_at.isoformat() + "Z"} for f in rows]})


@api.post("/tenants/<tenant>/tables/<table>/fields/<int:field_id>/restore")
def restore_field(table, field_id):
    require_role("builder")
    return ok({"table": table_json(metadata().restore_field(table, field_id))})


# -- views --------------------------------------------------------------------------------

def view_json(v: View, schema: TableSchema | None = None) -> dict:
    """A view; given its table's ``schema``, trimmed for roles below builder."""
    d = {"id": v.id, "table_id": v.table_id, **copy.deepcopy(v.definition)}
    return d if schema is None or defines() else _trimmed_view(d, schema)


def _trimmed_view(d: dict, schema: TableSchema) -> dict:
    """Without the fields hidden from the caller (columns, grouping, sorts, cards), and
    without a filter that names one: its conditions and values are the builder's, not
    something the role may read. (Such a view's records answer 400 for the role anyway.)"""
    recs = records()
    hidden = recs.access(schema).hidden
    shown = lambda name: name.split(".")[0] not in hidden  # noqa: E731
    for key in ("fields", "group_by"):
        if isinstance(d.get(key), list):
            d[key] = [f for f in d[key] if shown(f)]
    if isinstance(d.get("sorts"), list):
        d["sorts"] = [x for x in d["sorts"] if shown(x.get("field", ""))]
    if isinstance(d.get("kanban"), dict) and isinstance(d["kanban"].get("card_fields"), list):
        d["kanban"]["card_fields"] = [f for f in d["kanban"]["card_fields"] if shown(f)]
    if d.get("filter") is not None and not _readable_filter(recs, schema, d["filter"]):
        del d["filter"]
    return d


def _readable_filter(recs, schema: TableSchema, flt) -> bool:
    """True when the filter names only what the caller may read: no field hidden from them
    and no path into a table they cannot read (compiled as the records API compiles it)."""
    def readable(ref) -> TableSchema:
        s = recs.schema(ref)
        if not recs.access(s).read:
            raise FilterError(f"table {s.api_name} cannot be read", f"无权查看表 {s.api_name}")
        return s

    try:
        Compiler(readable, recs.ctx, hidden=lambda s: recs.access(s).hidden).where(schema, substitute_user(flt, recs.ctx))
        return True
    except FilterError:
        return False


def visible_view(v: View) -> bool:
    roles = v.definition.get("roles")
    return not roles or g.actor.role in roles or g.actor.at_least("admin")


def _readable_table(table) -> TableSchema:
    """The table, when the caller may read it (builders always see its definitions)."""
    recs = records()
    s = recs.schema(table)
    if not defines():
        recs.access(s).require_read(s)
    return s


@api.get("/tenants/<tenant>/tables/<table>/views")
def list_views(table):
    s = _readable_table(table)
    rows = g.db.scalars(select(View).where(View.table_id == s.id).order_by(View.position, View.id))
    return ok({"views": [view_json(v, s) for v in rows if visible_view(v)]})


@api.post("/tenants/<tenant>/tables/<table>/views")
def create_view(table):
    require_role("builder")
    return ok({"view": view_json(metadata().create_view(table, body_object()))}, 201)


def _view(table, view) -> tuple[TableSchema, View]:
    s = _readable_table(table)
    v = _view_row(s, view)
    if not visible_view(v):
        raise NotFound(f"view '{view}'", f"视图 '{view}'")
    return s, v


class ViewSnapshot:
    """What the view routes read of a view row (id, table, name, type, definition), kept in
    the tenant's metadata cache: a view's records cost no ORM query for the view itself. Any
    change to a view gives the tenant a new metadata stamp, and so a new cache (metagen.py)."""

    __slots__ = ("id", "table_id", "api_name", "type", "definition")

    def __init__(self, v: View):
        self.id, self.table_id, self.api_name, self.type = v.id, v.table_id, v.api_name, v.type
        self.definition = copy.deepcopy(v.definition)


def _view_row(schema: TableSchema, ref) -> "ViewSnapshot":
    shared = platform().cache.meta.for_tenant(g.db, g.tenant.id)
    key = ("view", schema.id, schema.schema_version, str(ref))
    hit = shared.get(key) if shared is not None else None
    if hit is None:
        hit = ViewSnapshot(metadata().view_row(schema, ref))
        if shared is not None:
            shared[key] = hit
    return hit


@api.get("/tenants/<tenant>/tables/<table>/views/<view>")
def get_view(table, view):
    s, v = _view(table, view)
    return ok({"view": view_json(v, s)})


@api.patch("/tenants/<tenant>/tables/<table>/views/<view>")
def update_view(table, view):
    require_role("builder")
    _view(table, view)
    return ok({"view": view_json(metadata().update_view(table, view, body_object()))})


@api.delete("/tenants/<tenant>/tables/<table>/views/<view>")
def delete_view(table, view):
    require_role("builder")
    _view(table, view)
    metadata().delete_view(table, view)
    return ok({"ok": True})


# -- dashboards ---------------------------------------------------------------------------

def dashboard_json(d: Dashboard, *, trim: bool = False) -> dict:
    """A dashboard; with ``trim`` (roles below builder) only the widgets the caller can
    compute — a widget on a table they cannot read, or naming a field hidden from them,
    is left out, definition and numbers alike."""
    out = {"id": d.id, **d.definition}
    if trim and not defines():
        recs = records()
        out["widgets"] = [w for w in d.definition.get("widgets", []) if _readable_widget(recs, w)]
    return out


def _readable_widget(recs, w: dict) -> bool:
    try:
        s = recs.schema(w["table"])
    except NotFound:
        return False
    acc = recs.access(s)
    if not acc.read:
        return False
    named = [g_["field"] for g_ in w.get("group_by", [])] + [m["field"] for m in w.get("metrics", []) if "field" in m]
    if any(f in acc.hidden for f in named):
        return False
    return w.get("filter") is None or _readable_filter(recs, s, w["filter"])


def _dashboard(ref) -> Dashboard:
    q = select(Dashboard)
    q = q.where(Dashboard.id == int(ref)) if str(ref).isdigit() else q.where(Dashboard.api_name == ref)
    d = g.db.scalar(q)
    if d is None:
        raise NotFound(f"dashboard '{ref}'", f"仪表盘 '{ref}'")
    return d


@api.get("/tenants/<tenant>/dashboards")
def list_dashboards():
    return ok({"dashboards": [dashboard_json(d, trim=True) for d in g.db.scalars(select(Dashboard).order_by(Dashboard.id))]})


@api.post("/tenants/<tenant>/dashboards")
def create_dashboard():
    require_role("builder")
    return ok({"dashboard": dashboard_json(metadata().create_dashboard(body_object()))}, 201)


@api.get("/tenants/<tenant>/dashboards/<ref>")
def get_dashboard(ref):
    return ok({"dashboard": dashboard_json(_dashboard(ref), trim=True)})


@api.patch("/tenants/<tenant>/dashboards/<ref>")
def update_dashboard(ref):
    require_role("builder")
    d = _dashboard(ref)
    new = {**d.definition, **body_object()}
    metadata().check_dashboard(new)
    d.definition, d.api_name = new, new["api_name"]
    metadata().audit("update", "dashboard", d.id, {})
    return ok({"dashboard": dashboard_json(d)})


@api.delete("/tenants/<tenant>/dashboards/<ref>")
def delete_dashboard(ref):
    require_role("builder")
    d = _dashboard(ref)
    metadata().audit("delete", "dashboard", d.id, {"definition": d.definition})
    g.db.delete(d)
    return ok({"ok": True})


@api.get("/tenants/<tenant>/dashboards/<ref>/data")
def dashboard_data(ref):
    """Every widget's numbers, with the threshold state ("alert": true when crossed)."""
    from ..storage.aggregate import aggregate

    d = _dashboard(ref)
    recs = records()
    out = []
    for w in dashboard_json(d, trim=True)["widgets"]:
        schema_ = recs.schema(w["table"])
        flt = w.get("filter")
        if w.get("view"):
            v = metadata().view_row(schema_, w["view"])
            vf = v.definition.get("filter")
            flt = {"and": [x for x in (vf, flt) if x]} if (vf or flt) else None
        spec = {k: w[k] for k in ("group_by", "metrics", "limit", "order") if k in w}
        if flt:
            spec["filter"] = flt
        data = aggregate(recs, schema_, spec)
        item = {"id": w["id"], "type": w["type"], **data}
        th = w.get("threshold")
        if th and data["rows"]:
            first_metric = data["metrics"][0]
            value = data["rows"][0].get(first_metric) if not data["group_by"] else max((r.get(first_metric) or 0) for r in data["rows"])
            op = th["op"]
            item["alert"] = bool(value is not None and {">": value > th["value"], ">=": value >= th["value"],
                                                         "<": value < th["value"], "<=": value <= th["value"]}[op])
        out.append(item)
    return ok({"dashboard": d.api_name, "refresh_seconds": d.definition.get("refresh_seconds", 300), "widgets": out})

"""Export: a tenant's definitions (one app or everything) written back in the template format,
and the flat object model (one entry per table, field, view, rule, dashboard, page) that
the installer and the three-way merge of upgrades compare.

Ids, schema versions and other internal keys are left out; links name their target by api
name; select choices keep their ids so that records exported alongside import into the same
options; sub-tables are written inline (``options.fields``) as the table schema expects.
"""
from __future__ import annotations

import copy
import re

from sqlalchemy import select

from zhongshu.platform.errors import NotFound
from zhongshu.platform.models import App, Dashboard, Field, PublicPage, Tenant, UserTable, View

from .loader import Template, child_table_name, connector_uses, platform_version, walk_tables

INTERNAL_TABLE_KEYS = {"id", "schema_version", "parent_field", "created_at", "deleted_at", "tenant_id"}
INTERNAL_FIELD_KEYS = {"id", "position", "physical", "table_id", "created_at", "deleted_at", "tenant_id"}
INTERNAL_VIEW_KEYS = {"id", "position", "table_id", "created_at", "tenant_id"}


# -- the flat object model ----------------------------------------------------------------

def flatten(t: Template) -> dict[str, dict]:
    """{"table:orders": {...table without fields}, "field:orders.amount": {...},
    "field:orders_items.sku": {...}, "view:orders.all": {...}, "rule:paid": {...},
    "dashboard:ops": {...}, "page:track": {...}} — each value also knows its file and
    pointer (``_file``/``_ptr`` are not part of the comparison: see ``objects``)."""
    return {k: v["doc"] for k, v in objects(t).items()}


def objects(t: Template) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for rel, doc in t.files.items():
        kind = rel.split("/")[0]
        if not isinstance(doc, dict):
            continue
        if kind == "tables":
            out[f"table:{doc['api_name']}"] = {"doc": {k: v for k, v in doc.items() if k != "fields"}, "file": rel, "ptr": ""}
            for table, f, ptr, parent in walk_tables(doc, rel):
                out[f"field:{table}.{f['api_name']}"] = {"doc": field_object(table, f), "file": rel, "ptr": ptr,
                                                         "table": table, "parent": parent}
        elif kind == "views":
            out[f"view:{doc['table']}.{doc['api_name']}"] = {"doc": doc, "file": rel, "ptr": ""}
        elif kind == "rules":
            out[f"rule:{doc['api_name']}"] = {"doc": doc, "file": rel, "ptr": ""}
        elif kind == "dashboards":
            out[f"dashboard:{doc['api_name']}"] = {"doc": doc, "file": rel, "ptr": ""}
        elif kind == "pages":
            out[f"page:{doc['slug']}"] = {"doc": doc, "file": rel, "ptr": ""}
    return out


def field_object(table: str, f: dict) -> dict:
    """A field as one object: a sub-table field without its child fields (those are objects
    of their own) and with its child table named."""
    d = copy.deepcopy(f)
    if d.get("type") == "sub_table":
        opts = dict(d.get("options") or {})
        opts.pop("fields", None)
        opts["table"] = child_table_name(table, f)
        d["options"] = opts
    return d


# -- export ------------------------------------------------------------------------------

def _clean(d: dict, drop: set) -> dict:
    return {k: copy.deepcopy(v) for k, v in (d or {}).items() if k not in drop}


def _fields(session, table: UserTable, children: dict[int, list[UserTable]]) -> list[dict]:
    rows = session.scalars(select(Field).where(Field.table_id == table.id, Field.deleted_at.is_(None))
                           .order_by(Field.position, Field.id)).all()
    kids = {c.api_name: c for c in children.get(table.id, [])}
    out = []
    for f in rows:
        d = _clean(f.definition, INTERNAL_FIELD_KEYS)
        d["api_name"], d["type"] = f.api_name, f.type
        if f.type == "sub_table":
            opts = dict(d.get("options") or {})
            name = child_table_name(table.api_name, d)
            child = kids.get(name)
            opts["table"] = name
            opts["fields"] = _fields(session, child, children) if child is not None else []
            d["options"] = opts
        out.append(d)
    return out


def rule_document(r) -> dict:
    d = copy.deepcopy(r.definition or {})
    d["api_name"] = r.api_name
    d.pop("enabled", None)
    if not r.enabled and not r.disabled_reason:
        d["enabled"] = False  # switched off by a person (not for a missing connector)
    return d


def page_document(p: PublicPage) -> dict:
    d = copy.deepcopy(p.definition or {})
    d["slug"] = p.slug
    d.pop("enabled", None)
    if not p.enabled:
        d["enabled"] = False
    return d


def export_template(session, tenant: Tenant, app: str | None = None, *, name: str | None = None,
                    version: str = "1.0.0", label=None, description=None) -> Template:
    """The tenant's definitions as a Template (``app``: only that app's tables, their views,
    rules and pages, and the app's dashboards; None: everything)."""
    from zhongshu.runtime.models import ConnectorInstall, Rule
    from zhongshu.platform.models import TemplateInstall

    apps = {a.id: a for a in session.scalars(select(App).order_by(App.id))}
    app_row = None
    if app:
        app_row = next((a for a in apps.values() if a.api_name == app), None)
        if app_row is None:
            raise NotFound(f"app '{app}'", f"应用 '{app}'")
    all_tables = session.scalars(select(UserTable).where(UserTable.deleted_at.is_(None)).order_by(UserTable.id)).all()
    children: dict[int, list[UserTable]] = {}
    for t in all_tables:
        if t.parent_table_id:
            children.setdefault(t.parent_table_id, []).append(t)
    roots = [t for t in all_tables if not t.parent_table_id and (app_row is None or t.app_id == app_row.id)]
    ids, names = set(), set()

    def mark(t):
        ids.add(t.id)
        names.add(t.api_name)
        for c in children.get(t.id, []):
            mark(c)

    for t in roots:
        mark(t)
    by_id = {t.id: t for t in all_tables}
    files: dict[str, dict] = {}
    used_apps = set()
    for t in roots:
        d = _clean(t.definition, INTERNAL_TABLE_KEYS | {"fields"})
        d["api_name"] = t.api_name
        d.pop("app", None)
        if t.app_id and t.app_id in apps:
            d["app"] = apps[t.app_id].api_name
            used_apps.add(t.app_id)
        d["fields"] = _fields(session, t, children)
        files[f"tables/{t.api_name}.json"] = d
    for v in session.scalars(select(View).order_by(View.table_id, View.position, View.id)):
        if v.table_id in ids:
            d = {"table": by_id[v.table_id].api_name, **_clean(v.definition, INTERNAL_VIEW_KEYS | {"table"})}
            d["api_name"], d["type"] = v.api_name, v.type
            files[f"views/{d['table']}.{v.api_name}.json"] = d
    rules = session.scalars(select(Rule).order_by(Rule.table_id, Rule.position, Rule.id)).all()
    for r in rules:
        if r.table_id in ids or (r.table_id is None and app_row is None):
            files[f"rules/{r.api_name}.json"] = rule_document(r)
    for db in session.scalars(select(Dashboard).order_by(Dashboard.id)):
        if app_row is None or db.app_id == app_row.id:
            d = copy.deepcopy(db.definition)
            d["api_name"] = db.api_name
            d.pop("app", None)
            if db.app_id and db.app_id in apps:
                d["app"] = apps[db.app_id].api_name
                used_apps.add(db.app_id)
            files[f"dashboards/{db.api_name}.json"] = d
    for p in session.scalars(select(PublicPage).order_by(PublicPage.id)):
        if app_row is None or (p.definition or {}).get("table") in names:
            files[f"pages/{p.slug}.json"] = page_document(p)
    # connectors the rules name: the install's connector, or what an installed template declared
    installs = {i.api_name: i.connector for i in session.scalars(select(ConnectorInstall))}
    declared = {}
    for ti in session.scalars(select(TemplateInstall).order_by(TemplateInstall.id)):
        for c in (ti.manifest or {}).get("connectors", []):
            declared.setdefault(c["api_name"], c)
    connectors = {}
    for rel, doc in files.items():
        if rel.startswith("rules/"):
            for n, _ in connector_uses(doc):
                if n not in connectors:
                    c = dict(declared.get(n) or {"api_name": n})
                    c["connector"] = installs.get(n) or c.get("connector") or "unknown"
                    connectors[n] = c
    default_name = app_row.api_name if app_row else re.sub(r"[^a-z0-9_]", "_", tenant.slug.lower())
    if not re.match(r"^[a-z]", default_name):
        default_name = "t_" + default_name
    manifest = {
        "name": name or default_name[:63],
        "version": version,
        "label": label or (app_row.definition.get("label") if app_row and app_row.definition.get("label") else
                           {"zh-CN": f"{tenant.name} 导出", "en": f"Export of {tenant.name}"}),
        "description": description or {"zh-CN": f"从租户 {tenant.slug} 导出", "en": f"Exported from tenant {tenant.slug}"},
        "locales": sorted({tenant.locale or "zh-CN", "zh-CN", "en"}),
        "default_locale": tenant.locale or "zh-CN",
        "platform": ">=" + ".".join(platform_version().split(".")[:2]),
    }
    if used_apps:
        manifest["apps"] = [{**_clean(apps[i].definition, {"id"}), "api_name": apps[i].api_name} for i in sorted(used_apps)]
    if connectors:
        manifest["connectors"] = list(connectors.values())
    return Template(manifest, files, None, f"tenant {tenant.slug}")


def export_app(platform, tenant_id: int, app: str | None = None, **kw) -> dict:
    """The bundle (JSON) of a tenant's app, or of everything when ``app`` is None/"all"."""
    with platform.tenant_session(tenant_id) as s:
        tenant = s.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("tenant", "租户")
        return export_template(s, tenant, None if app in (None, "", "all") else app, **kw).to_bundle()


def current_objects(session, tenant: Tenant) -> dict[str, dict]:
    """Every definition of the tenant in the flat object model (what an upgrade merges into)."""
    return flatten(export_template(session, tenant))

"""Installing a template into a tenant, in one transaction.

Order: apps, connector installs given by the admin, tables (two passes), views, rules,
dashboards, public pages, then the ``TemplateInstall`` row and (if asked) sample data.
Any error rolls everything back and is reported with the template file and JSON pointer.

Tables are created in two passes so that tables may reference each other in any order:
the first pass creates every table (sub-tables included) with the fields that do not need
another table of the template; the second adds the rest with ``Metadata.add_field`` — links
to other template tables, lookups and rollups through them, and formulas that use those —
ordered so that what a field needs exists before it. Fields then get their positions of the
template file back.
"""
from __future__ import annotations

import copy
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select

from zhongshu.platform.errors import ApiError, Conflict, NotFound
from zhongshu.platform.fields.base import FieldValueError, FilterError
from zhongshu.platform.models import App, Field, PublicPage, Tenant, TemplateInstall, UserTable, utcnow
from zhongshu.platform.storage.access import Actor

from .exporter import current_objects, field_object, objects
from .loader import Template, TemplateInvalid, child_table_name, connector_uses, load, problem, walk_tables, wrap_error

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def system_actor(user_id: int | None = None) -> Actor:
    return Actor(user_id=user_id, role="owner", is_system=True)


@contextmanager
def at(file: str, base: str = "", translate=None):
    """Errors raised inside become TemplateInvalid naming FILE and the pointer."""
    try:
        yield
    except TemplateInvalid:
        raise
    except ApiError as e:
        if translate and e.errors:
            for x in e.errors:
                x["pointer"] = translate(x.get("pointer") or "")
        raise wrap_error(e, file, base) from None
    except (FieldValueError, FilterError) as e:
        raise TemplateInvalid([problem(file, base, e.message, e.message_zh)]) from None


# -- the table plan ---------------------------------------------------------------------------

@dataclass
class FieldItem:
    table: str
    fdef: dict
    file: str
    ptr: str
    parent: str | None
    deps: set = field(default_factory=set)


def plan_tables(table_docs: list[tuple[str, dict]], template_tables: set[str]):
    """-> (first-pass table documents, kept-index maps per document, deferred FieldItems in
    the order they can be added)."""
    defs: dict[tuple, FieldItem] = {}
    order: dict[str, list[str]] = {}
    for rel, doc in table_docs:
        order.setdefault(doc["api_name"], [])
        for table, f, ptr, parent in walk_tables(doc, rel):
            defs[(table, f["api_name"])] = FieldItem(table, f, rel, ptr, parent)
            order.setdefault(table, []).append(f["api_name"])

    def target_of(table, name):
        it = defs.get((table, name))
        if it is None:
            return None
        if it.fdef.get("type") == "link":
            return (it.fdef.get("options") or {}).get("target")
        if it.fdef.get("type") == "sub_table":
            return child_table_name(table, it.fdef)
        return None

    deferred: set[tuple] = set()
    for key, it in defs.items():
        f = it.fdef
        if f.get("type") == "link":
            tgt = (f.get("options") or {}).get("target")
            if tgt in template_tables and tgt not in (it.table, it.parent):
                deferred.add(key)
    changed = True
    while changed:
        changed = False
        for key, it in defs.items():
            if key in deferred:
                continue
            f, opts = it.fdef, it.fdef.get("options") or {}
            need = set()
            if f.get("type") in ("lookup", "rollup"):
                need.add((it.table, opts.get("through")))
                tgt = target_of(it.table, opts.get("through"))
                if tgt and opts.get("field"):
                    need.add((tgt, opts["field"]))
            expr = opts.get("expression")
            if isinstance(expr, str):
                for w in set(_WORD.findall(expr)):
                    need.add((it.table, w))
                    tgt = target_of(it.table, w)
                    if tgt and any(d[0] == tgt for d in deferred):
                        need.add(next(d for d in deferred if d[0] == tgt))
            if need & deferred:
                deferred.add(key)
                changed = True
    # first-pass documents without the deferred fields, and where each kept field was
    kept: dict[str, dict[str, list[int]]] = {}
    first = []
    for rel, doc in table_docs:
        maps: dict[str, list[int]] = {}

        def strip(table, fields, base):
            out, idx = [], []
            for i, f in enumerate(fields or []):
                if (table, f.get("api_name")) in deferred:
                    continue
                f = copy.deepcopy(f)
                if f.get("type") == "sub_table":
                    opts = f.setdefault("options", {})
                    opts["fields"] = strip(child_table_name(table, f), opts.get("fields"), f"{base}/{i}/options/fields")
                out.append(f)
                idx.append(i)
            maps[base] = idx
            return out

        d = copy.deepcopy(doc)
        d["fields"] = strip(doc["api_name"], doc.get("fields"), "/fields")
        first.append((rel, d))
        kept[rel] = maps
    items = [defs[k] for k in defs if k in deferred]
    for it in items:
        f, opts = it.fdef, it.fdef.get("options") or {}
        if f.get("type") == "link" and opts.get("via"):
            it.deps.add((opts.get("target"), opts["via"]))
        if f.get("type") in ("lookup", "rollup"):
            it.deps.add((it.table, opts.get("through")))
            tgt = target_of(it.table, opts.get("through"))
            if tgt and opts.get("field"):
                it.deps.add((tgt, opts["field"]))
        if isinstance(opts.get("expression"), str):
            for w in set(_WORD.findall(opts["expression"])):
                it.deps.add((it.table, w))
        it.deps &= deferred
        it.deps.discard((it.table, f.get("api_name")))
    return first, kept, sort_items(items), order


def sort_items(items: list[FieldItem]) -> list[FieldItem]:
    """Dependencies first, otherwise in file order (cycles are left in file order)."""
    done: set[tuple] = set()
    out: list[FieldItem] = []
    pending = list(items)
    while pending:
        progress = False
        for it in list(pending):
            if it.deps <= done:
                out.append(it)
                done.add((it.table, it.fdef["api_name"]))
                pending.remove(it)
                progress = True
        if not progress:
            out.extend(pending)
            break
    return out


def extra_deps(extra: list[FieldItem], deferred: list[FieldItem]) -> list[FieldItem]:
    """Dependencies between fields added to existing tables (upgrades) and the others."""
    items = {(i.table, i.fdef["api_name"]): i for i in [*deferred, *extra]}
    out = []
    for it in extra:
        opts = it.fdef.get("options") or {}
        deps = set()
        if it.fdef.get("type") in ("lookup", "rollup"):
            deps.add((it.table, opts.get("through")))
            thr = items.get((it.table, opts.get("through")))
            if thr is not None and opts.get("field"):
                tgt = (thr.fdef.get("options") or {}).get("target") if thr.fdef.get("type") == "link" \
                    else child_table_name(it.table, thr.fdef)
                deps.add((tgt, opts["field"]))
        if isinstance(opts.get("expression"), str):
            deps |= {(it.table, w) for w in _WORD.findall(opts["expression"])}
        deps.discard((it.table, it.fdef["api_name"]))
        out.append(FieldItem(it.table, it.fdef, it.file, it.ptr, it.parent, {d for d in deps if d in items}))
    return out


def translator(maps: dict[str, list[int]]):
    """Pointers of a first-pass document back to the template file (fields left out for the
    second pass shift the indexes)."""
    def tr(ptr: str) -> str:
        segs = ptr.split("/")[1:] if ptr else []
        out, i = "", 0
        while i < len(segs):
            if segs[i] == "fields" and i + 1 < len(segs) and segs[i + 1].isdigit() and (out + "/fields") in maps:
                idx = maps[out + "/fields"]
                n = int(segs[i + 1])
                out += f"/fields/{idx[n] if n < len(idx) else n}"
                i += 2
            else:
                out += "/" + segs[i]
                i += 1
        return out
    return tr


# -- the installer ----------------------------------------------------------------------------

class Installer:
    """Applies template objects to one tenant inside the caller's session."""

    def __init__(self, platform, session, tenant: Tenant, template: Template, *, actor_user_id: int | None = None):
        self.platform = platform
        self.session = session
        self.tenant = tenant
        self.template = template
        self.actor = system_actor(actor_user_id)
        self.md = platform.metadata(session, tenant, self.actor)
        self.report: dict = {"template": template.name, "version": template.version,
                             "created": {"apps": [], "connectors": [], "tables": [], "fields": 0, "views": [], "rules": [],
                                         "dashboards": [], "pages": []},
                             "disabled_rules": [], "connectors": {}}
        self.declared = {c["api_name"]: c for c in template.manifest.get("connectors", [])}

    def records(self):
        return self.platform.records(self.session, self.tenant, self.actor)

    # apps and connectors ---------------------------------------------------------------
    def ensure_apps(self):
        for i, a in enumerate(self.template.manifest.get("apps", [])):
            if self.session.scalar(select(App).where(App.api_name == a["api_name"])) is None:
                with at("manifest.json", f"/apps/{i}"):
                    self.md.create_app(copy.deepcopy(a))
                self.report["created"]["apps"].append(a["api_name"])

    def create_connectors(self, connectors: dict | None):
        if not connectors:
            return
        from zhongshu.connectors.service.installs import create_install

        if not isinstance(connectors, dict):
            raise TemplateInvalid([problem("connectors", "", "must be an object {api_name: {config, credentials}}",
                                           "应为对象 {api_name: {config, credentials}}")])
        for name, conf in connectors.items():
            if name not in self.declared:
                raise TemplateInvalid([problem("connectors", f"/{name}", f"the template declares no connector '{name}'",
                                               f"模板没有声明连接器 '{name}'")])
            conf = dict(conf or {})
            data = {"connector": conf.get("connector") or self.declared[name]["connector"], "api_name": name,
                    "config": conf.get("config") or {}, "credentials": conf.get("credentials") or {}}
            if "enabled" in conf:
                data["enabled"] = conf["enabled"]
            with at("connectors", f"/{name}"):
                create_install(self.platform, self.session, data)
            self.report["created"]["connectors"].append(name)

    def connector_block(self, rule_doc: dict) -> str | None:
        from zhongshu.runtime.models import ConnectorInstall

        for name, _ in connector_uses(rule_doc):
            inst = self.session.scalar(select(ConnectorInstall).where(ConnectorInstall.api_name == name))
            if inst is None:
                return f"connector {name} not configured"
            if not inst.enabled:
                return f"connector {name} is disabled"
            want = (self.declared.get(name) or {}).get("connector")
            if want and want != "unknown" and inst.connector != want:
                return f"connector {name} is a {inst.connector} install; the template expects {want}"
        return None

    def connector_report(self):
        from zhongshu.runtime.models import ConnectorInstall

        for name, c in self.declared.items():
            inst = self.session.scalar(select(ConnectorInstall).where(ConnectorInstall.api_name == name))
            state = "configured" if inst is not None and inst.enabled else ("disabled" if inst is not None else "not configured")
            self.report["connectors"][name] = {"connector": c["connector"], "state": state, "required": bool(c.get("required"))}

    # tables -------------------------------------------------------------------------------
    def create_tables(self, table_docs: list[tuple[str, dict]], extra_fields: list[FieldItem] = ()):
        """Creates tables (two passes) and adds extra fields to existing tables (upgrades)."""
        template_tables = set()
        for rel, doc in table_docs:
            for t, f, ptr, parent in walk_tables(doc, rel):
                template_tables.add(t)
            template_tables.add(doc["api_name"])
        first, kept, deferred, order = plan_tables(table_docs, template_tables)
        for rel, doc in first:
            with at(rel, "", translator(kept[rel])):
                self.md.create_table(doc, check_permissions=False)  # checked below, once its links exist
            self.report["created"]["tables"].append(doc["api_name"])
            self.report["created"]["fields"] += sum(1 for _ in walk_tables(doc, rel))
        items = sort_items(list(deferred) + extra_deps(list(extra_fields), deferred)) if extra_fields else deferred
        for it in items:
            fdef = copy.deepcopy(it.fdef)
            with at(it.file, it.ptr):
                self.md.add_field(it.table, fdef)
            self.report["created"]["fields"] += sum(1 for _ in walk_tables({"api_name": it.table, "fields": [it.fdef]}, it.file))
        # positions as in the template file
        for table, names in order.items():
            row = self.session.scalar(select(UserTable).where(UserTable.api_name == table, UserTable.deleted_at.is_(None)))
            if row is None:
                continue
            rows = {f.api_name: f for f in self.session.scalars(select(Field).where(Field.table_id == row.id, Field.deleted_at.is_(None)))}
            moved = False
            for i, n in enumerate(names):
                if n in rows and rows[n].position != i:
                    rows[n].position = i
                    moved = True
            if moved:
                self.md.bump(row)
        for rel, doc in first:
            with at(rel):
                self.md.check_permissions(self.md.schema(doc["api_name"]))

    # views, rules, dashboards, pages -------------------------------------------------------
    def create_view(self, rel: str, doc: dict):
        view = {k: v for k, v in doc.items() if k != "table"}
        with at(rel):
            try:
                self.md.schema(doc["table"])
            except NotFound:
                raise TemplateInvalid([problem(rel, "/table", f"no table named {doc['table']}", f"没有名为 {doc['table']} 的表")]) from None
            self.md.create_view(doc["table"], view)
        self.report["created"]["views"].append(f"{doc['table']}.{view['api_name']}")

    def save_rule(self, rel: str, doc: dict, existing=None):
        from zhongshu.runtime.rules.api import save_rule

        with at(rel):
            r = save_rule(self.session, self.records(), copy.deepcopy(doc), existing, owner_id=self.actor.user_id,
                          tenant_id=self.tenant.id)
        reason = self.connector_block(doc)
        if reason:
            r.enabled = False
            r.disabled_reason = reason
            self.report["disabled_rules"].append({"rule": r.api_name, "file": rel, "reason": reason})
        elif existing is not None and not r.enabled and (r.disabled_reason or "").startswith("connector ") \
                and doc.get("enabled", True):
            r.enabled, r.disabled_reason = True, None
        self.session.flush()
        if existing is None:
            self.report["created"]["rules"].append(r.api_name)
        return r

    def create_dashboard(self, rel: str, doc: dict):
        with at(rel):
            self.md.create_dashboard(copy.deepcopy(doc))
        self.report["created"]["dashboards"].append(doc["api_name"])

    def check_page(self, rel: str, doc: dict):
        try:
            from zhongshu.platform.public_pages import check_page
        except ImportError:  # pragma: no cover - the public page feature is not there
            return
        with at(rel):
            check_page(self.records(), doc)

    def create_page(self, rel: str, doc: dict):
        if self.session.scalar(select(PublicPage).where(PublicPage.slug == doc["slug"])) is not None:
            raise TemplateInvalid([problem(rel, "/slug", f"a public page '{doc['slug']}' already exists", f"公开页面 '{doc['slug']}' 已存在")])
        self.check_page(rel, doc)
        d = copy.deepcopy(doc)
        self.session.add(PublicPage(tenant_id=self.tenant.id, slug=d["slug"], definition=d, enabled=d.get("enabled", True)))
        self.session.flush()
        self.md.audit("create", "public_page", None, {"slug": d["slug"], "template": self.template.name})
        self.report["created"]["pages"].append(d["slug"])

    # the whole template ----------------------------------------------------------------------
    def install(self, *, connectors: dict | None = None):
        t = self.template
        self.ensure_apps()
        self.create_connectors(connectors)
        self.create_tables(t.docs("tables"))
        for rel, doc in t.docs("views"):
            self.create_view(rel, doc)
        for rel, doc in t.docs("rules"):
            self.save_rule(rel, doc)
        for rel, doc in t.docs("dashboards"):
            self.create_dashboard(rel, doc)
        for rel, doc in t.docs("pages"):
            self.create_page(rel, doc)
        self.connector_report()


def installed_record(t: Template, snapshot: dict) -> dict:
    """What TemplateInstall.installed keeps: the template's definitions by kind (the base of
    the next three-way merge) and the tenant's objects as they were right after (to tell
    later what the tenant changed)."""
    out: dict = {"tables": {}, "views": {}, "rules": {}, "dashboards": {}, "pages": {},
                 "apps": copy.deepcopy(t.manifest.get("apps", [])), "snapshot": snapshot}
    for rel, doc in t.files.items():
        kind = rel.split("/")[0]
        key = {"tables": lambda d: d["api_name"], "views": lambda d: f"{d['table']}.{d['api_name']}",
               "rules": lambda d: d["api_name"], "dashboards": lambda d: d["api_name"], "pages": lambda d: d["slug"]}[kind](doc)
        out[kind][key] = copy.deepcopy(doc)
    return out


def template_from_installed(ti: TemplateInstall) -> Template:
    inst = ti.installed or {}
    files = {}
    for kind in ("tables", "views", "rules", "dashboards", "pages"):
        for key, doc in (inst.get(kind) or {}).items():
            files[f"{kind}/{key}.json"] = doc
    return Template(copy.deepcopy(ti.manifest or {}), files, None, f"installed {ti.name} {ti.version}")


def snapshot_of(session, tenant: Tenant, t: Template) -> dict:
    cur = current_objects(session, tenant)
    return {k: cur[k] for k in objects(t) if k in cur}


def install_into(platform, session, tenant: Tenant, source, *, actor_user_id: int | None = None, connectors: dict | None = None,
                 with_sample_data: bool = False, sample_size: int | None = None, trusted_code: bool = True) -> dict:
    """Installs into the caller's session (the API's request transaction, or the CLI's)."""
    t = load(source)
    existing = session.scalar(select(TemplateInstall).where(TemplateInstall.name == t.name))
    if existing is not None:
        raise Conflict(f"template {t.name} is already installed (version {existing.version}); upgrade it instead",
                       message_zh=f"模板 {t.name} 已安装(版本 {existing.version}),请使用升级")
    inst = Installer(platform, session, tenant, t, actor_user_id=actor_user_id)
    inst.install(connectors=connectors)
    session.flush()
    row = TemplateInstall(tenant_id=tenant.id, name=t.name, version=t.version, manifest=copy.deepcopy(t.manifest),
                          installed=installed_record(t, snapshot_of(session, tenant, t)), conflicts=[],
                          installed_at=utcnow(), updated_at=utcnow())
    session.add(row)
    session.flush()
    inst.md.audit("install", "template", row.id, {"name": t.name, "version": t.version})
    report = inst.report
    if with_sample_data:
        from .sampledata import run_sample_data

        report["sample_data"] = run_sample_data(platform, session, tenant, t, size=sample_size, actor=inst.actor,
                                                trusted_code=trusted_code)
    return report


def install_template(platform, tenant_id: int, path_or_bundle, *, actor_user_id: int | None = None, connectors: dict | None = None,
                     with_sample_data: bool = False, sample_size: int | None = None) -> dict:
    """Installs a template (built-in name, folder, zip, JSON bundle or Template) into a tenant
    in one transaction and returns the report. Raises TemplateInvalid (400, each problem
    naming the file and JSON pointer) or Conflict (409: already installed); either way the
    tenant is left as it was."""
    with platform.tenant_session(tenant_id, write=True) as s:
        tenant = s.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("tenant", "租户")
        return install_into(platform, s, tenant, path_or_bundle, actor_user_id=actor_user_id, connectors=connectors,
                            with_sample_data=with_sample_data, sample_size=sample_size)


def recheck_connector_rules(platform, session, tenant: Tenant) -> list[str]:
    """Switches on the rules that were left off for a connector that is now configured; the
    others keep a reason that says what is missing now (e.g. configured but disabled)."""
    from zhongshu.runtime.models import Rule

    t = Template({"name": "recheck", "version": "0.0.0", "label": "recheck", "connectors": []}, {})
    for ti in session.scalars(select(TemplateInstall)):
        t.manifest["connectors"] += (ti.manifest or {}).get("connectors", [])
    inst = Installer(platform, session, tenant, t)
    enabled = []
    for r in session.scalars(select(Rule).where(Rule.enabled.is_(False))):
        if not (r.disabled_reason or "").startswith("connector "):
            continue
        reason = inst.connector_block(r.definition)
        if reason is None:
            r.enabled, r.disabled_reason = True, None
            enabled.append(r.api_name)
        elif reason != r.disabled_reason:
            r.disabled_reason = reason
    session.flush()
    return enabled

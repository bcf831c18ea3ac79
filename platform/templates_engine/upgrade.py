"""Applying a newer template version to a tenant that installed an older one: a three-way
merge per object (table, field, view, rule, dashboard, public page) between

* base — the template version the tenant installed (``TemplateInstall.installed``),
* mine — the tenant's definitions now, compared with how they were right after the
  install (``installed["snapshot"]``) to tell what the tenant changed,
* theirs — the new template version.

Policy (docs/templates-guide.md): objects new in the template are added; objects the
tenant did not change are updated to the new version (select options are merged so that
no option in use disappears); objects the tenant changed keep the tenant's version — when
the template changed them too, a conflict is listed (what changed on each side and the
template's new definition); objects removed from the template are kept. Nothing is deleted
and no record is touched except by the field conversions an update needs.
"""
from __future__ import annotations

import copy

from sqlalchemy import select

from zhongshu.platform.errors import Conflict, NotFound
from zhongshu.platform.models import Dashboard, PublicPage, Tenant, TemplateInstall, View, utcnow

from .exporter import current_objects, flatten, objects
from .installer import FieldItem, Installer, at, installed_record, template_from_installed
from .loader import _semver, child_table_name, load, walk_tables

KIND_ORDER = ("table", "field", "view", "rule", "dashboard", "page")
TABLE_PATCHABLE = {"label", "description", "icon", "primary_field", "sections", "permissions", "app"}
SELECTS = ("single_select", "multi_select")


def diff_paths(a, b, ptr: str = "", limit: int = 20) -> list[str]:
    """JSON pointers where a and b differ (at most ``limit``)."""
    out: list[str] = []

    def walk(x, y, p):
        if len(out) >= limit or x == y:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                walk(x.get(k), y.get(k), f"{p}/{k}")
        elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{p}/{i}")
        else:
            out.append(p or "/")

    walk(a, b, ptr)
    return out


def _without_choices(d: dict | None) -> dict | None:
    if d is None:
        return None
    d = copy.deepcopy(d)
    (d.get("options") or {}).pop("choices", None)
    return d


def _labels(d: dict | None) -> list[str]:
    return [c.get("label") for c in ((d or {}).get("options") or {}).get("choices", [])]


class Upgrade:
    def __init__(self, platform, session, tenant: Tenant, ti: TemplateInstall, new, *, actor_user_id=None):
        self.platform, self.session, self.tenant, self.ti, self.new = platform, session, tenant, ti, new
        self.inst = Installer(platform, session, tenant, new, actor_user_id=actor_user_id)
        self.md = self.inst.md
        self.report = {"template": new.name, "from_version": ti.version, "to_version": new.version,
                       "added": [], "updated": [], "merged": [], "kept_customised": [], "conflicts": [],
                       "removed_from_template_kept": [], "disabled_rules": self.inst.report["disabled_rules"]}
        self.to_snapshot: set[str] = set()

    def conflict(self, key: str, o: dict, why: str, mine, base, theirs):
        kind, name = key.split(":", 1)
        self.report["conflicts"].append({
            "object": key, "kind": kind, "name": name, "file": o["file"], "pointer": o["ptr"], "version": self.new.version,
            "reason": why,
            "tenant_changed": diff_paths(base if mine is not None else None, mine) if base is not None else [],
            "template_changed": diff_paths(base, theirs) if base is not None else [],
            "resolution": "kept the tenant's version", "template_definition": theirs})

    # -- applying one object -----------------------------------------------------------------
    def update(self, key: str, o: dict, theirs: dict, mine: dict):
        kind, name = key.split(":", 1)
        rel, ptr = o["file"], o["ptr"]
        if kind == "table":
            patch = {k: v for k, v in theirs.items() if k in TABLE_PATCHABLE and mine.get(k) != v}
            with at(rel):
                if patch:
                    self.md.update_table(name, patch)
                gone = [k for k in mine if k in TABLE_PATCHABLE and k not in theirs]
                if gone:
                    from zhongshu.platform.storage.schema import find_table_row

                    row = find_table_row(self.session, name)
                    row.definition = {k: v for k, v in row.definition.items() if k not in gone}
                    self.md.bump(row)
        elif kind == "field":
            table, fname = o["table"], theirs["api_name"]
            patch = copy.deepcopy(theirs)
            if patch.get("type") == "sub_table":
                patch["options"] = {k: v for k, v in (patch.get("options") or {}).items() if k != "fields"}
            if patch.get("type") in SELECTS and (mine or {}).get("type") == patch["type"]:
                have = [c["label"] for c in patch.get("options", {}).get("choices", [])]
                extra = [c for c in mine.get("options", {}).get("choices", []) if c["label"] not in have]
                patch.setdefault("options", {})["choices"] = patch["options"].get("choices", []) + extra
            with at(rel, ptr):
                self.md.update_field(table, fname, patch)
        elif kind == "view":
            table, vname = name.split(".", 1)
            view = {k: v for k, v in theirs.items() if k != "table"}
            with at(rel):
                v = self.md.update_view(table, vname, view)
                v.definition = view
        elif kind == "rule":
            from zhongshu.runtime.models import Rule

            row = self.session.scalar(select(Rule).where(Rule.api_name == name))
            self.inst.save_rule(rel, theirs, existing=row)
        elif kind == "dashboard":
            row = self.session.scalar(select(Dashboard).where(Dashboard.api_name == name))
            with at(rel):
                self.md.check_dashboard(theirs)
                row.definition = copy.deepcopy(theirs)
                row.app_id = self.md.app_id(theirs.get("app"))
                self.md.audit("update", "dashboard", row.id, {"template": self.new.name})
        elif kind == "page":
            row = self.session.scalar(select(PublicPage).where(PublicPage.slug == name))
            self.inst.check_page(rel, theirs)
            row.definition = copy.deepcopy(theirs)
            row.enabled = theirs.get("enabled", True)
            self.md.audit("update", "public_page", row.id, {"template": self.new.name})
        self.session.flush()

    def create(self, key: str, o: dict, theirs: dict):
        kind = key.split(":", 1)[0]
        if kind == "view":
            self.inst.create_view(o["file"], theirs)
        elif kind == "rule":
            self.inst.save_rule(o["file"], theirs)
        elif kind == "dashboard":
            self.inst.create_dashboard(o["file"], theirs)
        elif kind == "page":
            self.inst.create_page(o["file"], theirs)

    # -- the merge ------------------------------------------------------------------------------
    def run(self, connectors: dict | None = None) -> dict:
        base = flatten(template_from_installed(self.ti))
        snap = dict((self.ti.installed or {}).get("snapshot") or {})
        cur = current_objects(self.session, self.tenant)
        new_objs = objects(self.new)
        self.inst.ensure_apps()
        self.inst.create_connectors(connectors)

        # whole new tables (and everything inside them) are created like at install
        new_tables, created = [], set()
        for rel, doc in self.new.docs("tables"):
            key = f"table:{doc['api_name']}"
            if key in base:
                continue
            if key in cur:
                o = new_objs[key]
                self.conflict(key, o, "the tenant already has a table with this name", cur[key], None, o["doc"])
                continue
            new_tables.append((rel, doc))
            created.add(doc["api_name"])
            for t, f, ptr, parent in walk_tables(doc, rel):
                created.add(t)
        extra: list[FieldItem] = []
        raw_fields = {}
        for rel, doc in self.new.docs("tables"):
            for t, f, ptr, parent in walk_tables(doc, rel):
                raw_fields[f"field:{t}.{f['api_name']}"] = f
        later: list[tuple[str, dict]] = []
        keys = sorted(new_objs, key=lambda k: KIND_ORDER.index(k.split(":")[0]))
        for key in keys:
            o = new_objs[key]
            kind = key.split(":")[0]
            theirs, b, s, mine = o["doc"], base.get(key), snap.get(key), cur.get(key)
            if kind == "table" and o["doc"]["api_name"] in created:
                continue
            if kind == "field" and o["table"] in created:
                continue
            if b is None:
                if mine is None:
                    if kind == "field":
                        f = raw_fields[key]
                        extra.append(FieldItem(o["table"], f, o["file"], o["ptr"], o.get("parent")))
                        if f.get("type") == "sub_table":
                            created.add(child_table_name(o["table"], f))
                    else:
                        later.append((key, o))
                else:
                    self.conflict(key, o, "new in the template, but the tenant already has one with this name", mine, None, theirs)
                continue
            if b == theirs:
                continue  # the template did not change it: whatever the tenant did stays
            if mine is None:
                self.conflict(key, o, "changed in the template, but the tenant deleted it", None, b, theirs)
                continue
            if s is not None and mine == s:
                self.update(key, o, theirs, mine)
                self.report["updated"].append(key)
                self.to_snapshot.add(key)
                continue
            if kind == "field" and theirs.get("type") in SELECTS and mine.get("type") == theirs.get("type") \
                    and _without_choices(mine) == _without_choices(s) and _without_choices(theirs) == _without_choices(b):
                base_labels, mine_labels = set(_labels(b)), set(_labels(mine))
                added = [c for c in theirs["options"]["choices"] if c["label"] not in mine_labels and c["label"] not in base_labels]
                if added:
                    with at(o["file"], o["ptr"]):
                        self.md.update_field(o["table"], theirs["api_name"],
                                             {"options": {"choices": mine["options"]["choices"] + copy.deepcopy(added)}})
                self.report["merged"].append(key)
                continue
            self.conflict(key, o, "changed both in the template and by the tenant", mine, s if s is not None else b, theirs)
            self.report["kept_customised"].append(key)
        if new_tables or extra:
            self.inst.create_tables(new_tables, extra)
        for key, o in later:
            self.create(key, o, o["doc"])
        for rel, doc in new_tables:
            self.report["added"].append(f"table:{doc['api_name']}")
        self.report["added"] += [f"field:{it.table}.{it.fdef['api_name']}" for it in extra] + [k for k, _ in later]
        self.report["removed_from_template_kept"] = sorted(k for k in base if k not in new_objs and k in cur)
        # what the tenant now has for the objects that follow the template
        after = current_objects(self.session, self.tenant)
        for key in new_objs:
            kind = key.split(":")[0]
            o = new_objs[key]
            is_new = (kind == "table" and o["doc"]["api_name"] in created) or (kind == "field" and o["table"] in created) \
                or key in self.report["added"]
            if (is_new or key in self.to_snapshot) and key in after:
                snap[key] = after[key]
        self.inst.connector_report()
        self.report["connectors"] = self.inst.report["connectors"]
        return snap


def upgrade_into(platform, session, tenant: Tenant, source, *, actor_user_id: int | None = None,
                 connectors: dict | None = None) -> dict:
    new = load(source)
    ti = session.scalar(select(TemplateInstall).where(TemplateInstall.name == new.name))
    if ti is None:
        raise NotFound(f"an installed template {new.name} (install it first)", f"已安装的模板 {new.name}(请先安装)")
    if _semver(new.version) <= _semver(ti.version):
        raise Conflict(f"template {new.name} {ti.version} is installed; {new.version} is not newer",
                       message_zh=f"已安装模板 {new.name} {ti.version},{new.version} 不是更新的版本")
    up = Upgrade(platform, session, tenant, ti, new, actor_user_id=actor_user_id)
    snap = up.run(connectors)
    keep = {k: v for k, v in snap.items() if k in objects(new) or k in (ti.installed or {}).get("snapshot", {})}
    conflicts = [c for c in (ti.conflicts or []) if c["object"] not in {x["object"] for x in up.report["conflicts"]}]
    ti.conflicts = conflicts + up.report["conflicts"]
    ti.version, ti.manifest = new.version, copy.deepcopy(new.manifest)
    ti.installed = installed_record(new, keep)
    ti.updated_at = utcnow()
    session.flush()
    up.md.audit("upgrade", "template", ti.id, {"name": new.name, "from": up.report["from_version"], "to": new.version,
                                               "conflicts": len(up.report["conflicts"])})
    return up.report


def upgrade_template(platform, tenant_id: int, new_template, *, actor_user_id: int | None = None,
                     connectors: dict | None = None) -> dict:
    """Applies a newer version of an installed template (one transaction) and returns the
    report: added, updated, merged, kept_customised, conflicts, removed_from_template_kept."""
    with platform.tenant_session(tenant_id, write=True) as s:
        tenant = s.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("tenant", "租户")
        return upgrade_into(platform, s, tenant, new_template, actor_user_id=actor_user_id, connectors=connectors)

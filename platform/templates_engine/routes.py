"""REST routes of templates (registered on the platform's /api/v1 blueprint).

    GET  /templates                                 the gallery of built-in templates
    GET  /tenants/<t>/templates                     installed templates, with conflicts
    POST /tenants/<t>/templates/install             {name, with_sample_data, sample_size, connectors}
    POST /tenants/<t>/templates/upgrade             {name} or {bundle}
    POST /tenants/<t>/templates/import              a bundle (or {bundle, connectors})
    GET  /tenants/<t>/export?app=                   the tenant's definitions as a bundle
    POST /tenants/<t>/templates/recheck-connectors  switch on rules whose connector is now configured
    DELETE /tenants/<t>/templates/<name>/conflicts  the admin has dealt with the listed conflicts

Everything but the gallery needs the admin role; each install runs in the request's one
transaction, so a failure leaves the tenant as it was.
"""
from __future__ import annotations

from flask import g, request
from sqlalchemy import select

from zhongshu.platform.api.base import api, body_object, ok, platform, require_role
from zhongshu.platform.errors import ApiError, NotFound, ValidationFailed, field_error
from zhongshu.platform.models import TemplateInstall

from .exporter import export_template
from .installer import install_into, recheck_connector_rules
from .loader import TemplateInvalid, builtin_templates, ensure_schemas, load
from .upgrade import upgrade_into

ensure_schemas()  # publishes /api/v1/schemas/template_manifest.json


def gallery_entry(path) -> dict:
    t = load(path, check=False)
    m = t.manifest
    return {"name": m.get("name", path.name), "version": m.get("version"), "label": m.get("label"),
            "description": m.get("description"), "locales": m.get("locales", []), "default_locale": m.get("default_locale"),
            "platform": m.get("platform"), "connectors": m.get("connectors", []), "sample_data": bool(m.get("sample_data")),
            "counts": {k: len(t.docs(k)) for k in ("tables", "views", "rules", "dashboards", "pages")},
            "problems": len(t.problems)}


def _builtin(name) -> object:
    if not isinstance(name, str) or not name:
        raise ValidationFailed("'name' is required: a template of the gallery", message_zh="需要 'name': 模板库中的模板名",
                               errors=[field_error("/name", "required", "必填")])
    found = builtin_templates()
    if name not in found:
        raise NotFound(f"template '{name}'", f"模板 '{name}'")
    return found[name]


def _bool(data: dict, key: str) -> bool:
    v = data.get(key, False)
    if not isinstance(v, bool):
        raise ValidationFailed(f"{key} must be true or false", message_zh=f"{key} 应为 true 或 false",
                               errors=[field_error(f"/{key}", "true or false", "true 或 false")])
    return v


def _size(data: dict):
    v = data.get("sample_size")
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1_000_000):
        raise ValidationFailed("sample_size must be a whole number from 1 to 1000000", message_zh="sample_size 应为 1 到 1000000 的整数",
                               errors=[field_error("/sample_size", "1..1000000", "1..1000000")])
    return v


def _connectors(data: dict):
    v = data.get("connectors")
    if v is not None and not isinstance(v, dict):
        raise ValidationFailed("connectors must be an object {api_name: {config, credentials}}",
                               message_zh="connectors 应为对象 {api_name: {config, credentials}}",
                               errors=[field_error("/connectors", "must be an object", "应为对象")])
    return v


def installed_json(ti: TemplateInstall) -> dict:
    return {"name": ti.name, "version": ti.version, "label": (ti.manifest or {}).get("label"),
            "connectors": (ti.manifest or {}).get("connectors", []), "conflicts": ti.conflicts or [],
            "installed_at": ti.installed_at.isoformat() + "Z" if ti.installed_at else None,
            "updated_at": ti.updated_at.isoformat() + "Z" if ti.updated_at else None}


@api.get("/templates")
def template_gallery():
    return ok({"templates": [gallery_entry(p) for p in builtin_templates().values()]})


@api.get("/tenants/<tenant>/templates")
def installed_templates():
    require_role("admin")
    gallery = {}
    for name, p in builtin_templates().items():
        try:
            gallery[name] = load(p, check=False).manifest.get("version")
        except ApiError:
            pass
    out = []
    for ti in g.db.scalars(select(TemplateInstall).order_by(TemplateInstall.id)):
        d = installed_json(ti)
        d["available_version"] = gallery.get(ti.name)
        out.append(d)
    return ok({"templates": out})


@api.post("/tenants/<tenant>/templates/install")
def install_builtin():
    require_role("admin")
    data = body_object()
    path = _builtin(data.get("name"))
    report = install_into(platform(), g.db, g.tenant, path, actor_user_id=g.user.id, connectors=_connectors(data),
                          with_sample_data=_bool(data, "with_sample_data"), sample_size=_size(data))
    return ok({"report": report}, 201)


@api.post("/tenants/<tenant>/templates/import")
def import_bundle():
    """A bundle (as GET /export returns it) installed like a template; it never runs code."""
    require_role("admin")
    data = body_object()
    bundle, connectors = (data["bundle"], _connectors(data)) if "bundle" in data and "files" not in data else (data, None)
    if not isinstance(bundle, dict):
        raise TemplateInvalid([{"file": "bundle", "pointer": "", "message": "must be a JSON object", "message_zh": "应为 JSON 对象",
                                "where": "bundle /"}], what="bundle")
    report = install_into(platform(), g.db, g.tenant, bundle, actor_user_id=g.user.id, connectors=connectors, trusted_code=False)
    return ok({"report": report}, 201)


@api.post("/tenants/<tenant>/templates/upgrade")
def upgrade_installed():
    require_role("admin")
    data = body_object()
    source = data["bundle"] if isinstance(data.get("bundle"), dict) else _builtin(data.get("name"))
    report = upgrade_into(platform(), g.db, g.tenant, source, actor_user_id=g.user.id, connectors=_connectors(data))
    return ok({"report": report})


@api.get("/tenants/<tenant>/export")
def export_tenant():
    require_role("admin")
    app = request.args.get("app") or None
    t = export_template(g.db, g.tenant, None if app == "all" else app, name=request.args.get("name") or None,
                        version=request.args.get("version") or "1.0.0")
    return ok(t.to_bundle())


@api.post("/tenants/<tenant>/templates/recheck-connectors")
def recheck_connectors():
    require_role("admin")
    return ok({"enabled_rules": recheck_connector_rules(platform(), g.db, g.tenant)})


@api.delete("/tenants/<tenant>/templates/<name>/conflicts")
def clear_conflicts(name):
    require_role("admin")
    ti = g.db.scalar(select(TemplateInstall).where(TemplateInstall.name == name))
    if ti is None:
        raise NotFound(f"installed template '{name}'", f"已安装的模板 '{name}'")
    ti.conflicts = []
    return ok({"template": installed_json(ti)})


def _describe_in_openapi() -> None:
    """The template endpoints in the OpenAPI document (platform/api/openapi.py OPERATIONS)."""
    from zhongshu.platform.api.openapi import OPERATIONS, obj, ref

    report = obj({"report": {"type": "object", "description": "what was created / changed; see docs/templates-guide.md"}}, ["report"])
    bundle = obj({"format": {"const": "zhongshu-template"}, "format_version": {"const": 1},
                  "manifest": ref("template_manifest"), "files": {"type": "object"}}, ["manifest", "files"])
    tags = ["templates"]
    OPERATIONS.update({
        "api_v1.template_gallery": {"summary": "The gallery of built-in templates", "tags": tags,
                                    "response": obj({"templates": {"type": "array", "items": {"type": "object"}}})},
        "api_v1.installed_templates": {"summary": "Templates installed in the tenant, with upgrade conflicts (admin)", "tags": tags,
                                       "response": obj({"templates": {"type": "array", "items": {"type": "object"}}})},
        "api_v1.install_builtin": {
            "summary": "Install a gallery template in one transaction (admin)", "tags": tags, "status": 201,
            "description": "A template with any problem is refused as a whole (400 template_invalid; each error names "
                           "`file` and `pointer`); installed already: 409.",
            "body": obj({"name": {"type": "string"}, "with_sample_data": {"type": "boolean"},
                         "sample_size": {"type": "integer", "minimum": 1}, "connectors": {"type": "object"}}, ["name"]),
            "response": report},
        "api_v1.import_bundle": {"summary": "Install a template bundle (an export); never runs code (admin)", "tags": tags,
                                 "status": 201, "body": bundle, "response": report},
        "api_v1.upgrade_installed": {
            "summary": "Apply a newer template version: additions merged, customisations kept, conflicts listed (admin)",
            "tags": tags, "body": obj({"name": {"type": "string"}, "bundle": bundle, "connectors": {"type": "object"}}),
            "response": report},
        "api_v1.export_tenant": {"summary": "The tenant's definitions (?app=<api_name> or all) as a template bundle (admin)",
                                 "tags": tags, "response": bundle},
        "api_v1.recheck_connectors": {"summary": "Switch on rules left off for a connector that is now configured (admin)",
                                      "tags": tags, "response": obj({"enabled_rules": {"type": "array", "items": {"type": "string"}}})},
        "api_v1.clear_conflicts": {"summary": "Clear the upgrade conflicts listed for an installed template (admin)", "tags": tags,
                                   "response": obj({"template": {"type": "object"}})},
    })


_describe_in_openapi()

"""Public pages: pages reachable without login, each configured by a JSON definition that
says exactly which record a visitor may reach and which fields they see.

The one page type today is ``record_lookup`` — the customer's order tracking page (订单追踪):
the visitor gives the values of the ``match`` fields (phone + order no); only when all of
them match one record is anything shown: the ``show`` fields (phones and names masked by
default), a timeline from the record's history of one field, related rows (logistics events)
and a countdown to a date. Guessing is rate-limited per address and per looked-up value, and
a miss never says which value was wrong.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, render_template_string, request
from jsonschema import Draft202012Validator
from sqlalchemy import and_, func, select

from .errors import ApiError, NotFound, TooManyRequests, ValidationFailed, field_error
from .fields.text import mask_phone
from .models import LoginAttempt, PublicPage, RecordHistory, Tenant, utcnow
from .storage.access import Actor

public = Blueprint("public", __name__)

PAGE_SCHEMA = {
    "type": "object", "required": ["slug", "type", "table", "match", "show"], "additionalProperties": False,
    "properties": {
        "slug": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"},
        "type": {"const": "record_lookup"},
        "title": {"$ref": "#/$defs/label"}, "intro": {"$ref": "#/$defs/label"},
        "table": {"type": "string"},
        "enabled": {"type": "boolean"},
        "match": {"type": "array", "minItems": 2, "maxItems": 3, "items": {
            "type": "object", "required": ["field"], "additionalProperties": False,
            "properties": {"field": {"type": "string"}, "label": {"$ref": "#/$defs/label"},
                           "normalise": {"enum": ["digits", "trim", "upper"]}}}},
        "show": {"type": "array", "minItems": 1, "maxItems": 30, "items": {
            "type": "object", "required": ["field"], "additionalProperties": False,
            "properties": {"field": {"type": "string"}, "label": {"$ref": "#/$defs/label"},
                           "mask": {"enum": ["phone", "name", "none"]}, "countdown": {"type": "boolean"}}}},
        "timeline": {"type": "object", "required": ["field"], "additionalProperties": False,
                     "properties": {"field": {"type": "string"}, "label": {"$ref": "#/$defs/label"}}},
        "related": {"type": "array", "maxItems": 3, "items": {
            "type": "object", "required": ["table", "via", "fields"], "additionalProperties": False,
            "properties": {"table": {"type": "string"}, "via": {"type": "string"}, "label": {"$ref": "#/$defs/label"},
                           "fields": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 10},
                           "sort": {"type": "string"}, "limit": {"type": "integer", "minimum": 1, "maximum": 200}}}},
        "rate_limit": {"type": "object", "additionalProperties": False, "properties": {
            "per_address_per_hour": {"type": "integer", "minimum": 1, "maximum": 10000},
            "misses_per_value_per_hour": {"type": "integer", "minimum": 1, "maximum": 1000}}},
    },
    "$defs": {"label": {"oneOf": [{"type": "string", "maxLength": 500},
                                  {"type": "object", "additionalProperties": {"type": "string", "maxLength": 500}}]}},
}
_VALIDATOR = Draft202012Validator(PAGE_SCHEMA)


def mask_name(value: str | None) -> str | None:
    if not value:
        return value
    value = str(value)
    return value[0] + "*" * max(1, len(value) - 1)


def check_page(records, definition: dict) -> None:
    """Save-time check: schema, and that every field named exists (so nothing leaks by typo)."""
    errs = sorted(_VALIDATOR.iter_errors(definition), key=lambda e: list(e.absolute_path))
    if errs:
        e = errs[0]
        ptr = "".join(f"/{p}" for p in e.absolute_path)
        raise ValidationFailed(f"public page {ptr or '/'}: {e.message}", message_zh=f"公开页面 {ptr or '/'}: {e.message}",
                               errors=[field_error(ptr, e.message, e.message)])
    table = records.schema(definition["table"])
    for key in ("match", "show"):
        for i, item in enumerate(definition[key]):
            if item["field"] not in table.fields and item["field"] not in table.system_specs:
                raise ValidationFailed(f"public page /{key}/{i}/field: no field '{item['field']}'",
                                       message_zh=f"公开页面 /{key}/{i}/field: 没有字段 '{item['field']}'",
                                       errors=[field_error(f"/{key}/{i}/field", "unknown field", "未知字段")])
    if definition.get("timeline") and definition["timeline"]["field"] not in table.fields:
        raise ValidationFailed("public page /timeline/field: unknown field", message_zh="公开页面 /timeline/field: 未知字段",
                               errors=[field_error("/timeline/field", "unknown field", "未知字段")])
    for i, rel in enumerate(definition.get("related", [])):
        rt = records.schema(rel["table"])
        for f in [rel["via"], *rel["fields"]]:
            if f not in rt.fields and f not in rt.system_specs:
                raise ValidationFailed(f"public page /related/{i}: no field '{f}' in {rel['table']}",
                                       message_zh=f"公开页面 /related/{i}: {rel['table']} 中没有字段 '{f}'",
                                       errors=[field_error(f"/related/{i}", "unknown field", "未知字段")])


def _norm(value: str, how: str | None) -> str:
    value = str(value).strip()
    if how == "digits":
        return "".join(ch for ch in value if ch.isdigit())
    if how == "upper":
        return value.upper()
    return value


def _limited(session, key: str, limit: int) -> bool:
    since = utcnow() - timedelta(hours=1)
    n = session.scalar(select(func.count()).select_from(LoginAttempt).where(LoginAttempt.key == key, LoginAttempt.at >= since))
    return n >= limit


def _note(session, key: str) -> None:
    session.add(LoginAttempt(key=key[:320]))


def _platform():
    return current_app.extensions["zhongshu"]


def _page(session, tenant_slug: str, slug: str):
    tenant = session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
    if tenant is None:
        raise NotFound("page", "页面")
    page = session.scalar(select(PublicPage).where(PublicPage.tenant_id == tenant.id, PublicPage.slug == slug,
                                                   PublicPage.enabled.is_(True)))
    if page is None:
        raise NotFound("page", "页面")
    return tenant, page


def lookup(zs, tenant_slug: str, slug: str, values: dict, address: str) -> dict:
    from .storage.query import Query

    with zs.tenant_session(None, write=True) as s:
        tenant, page = _page(s, tenant_slug, slug)
        d = page.definition
        limits = d.get("rate_limit") or {}
        addr_key = f"pub:{tenant.id}:{slug}:addr:{address}"
        if _limited(s, addr_key, limits.get("per_address_per_hour", 30)):
            raise TooManyRequests("too many lookups from your address; try again later", message_zh="查询过于频繁,请稍后再试", retry_after=600)
        _note(s, addr_key)
        if not isinstance(values, dict):
            raise ValidationFailed("values must be an object", message_zh="请填写查询信息")
        given = []
        for m in d["match"]:
            v = values.get(m["field"])
            if not isinstance(v, (str, int)) or not str(v).strip() or len(str(v)) > 100:
                raise ValidationFailed(f"please fill in {m['field']}", message_zh="请填写完整的查询信息",
                                       errors=[field_error(f"/{m['field']}", "required", "必填")])
            given.append((m, _norm(v, m.get("normalise"))))
        first_key = f"pub:{tenant.id}:{slug}:val:{given[-1][1]}"
        if _limited(s, first_key, limits.get("misses_per_value_per_hour", 10)):
            raise TooManyRequests("too many failed lookups for this order; try again later", message_zh="该订单查询失败次数过多,请稍后再试",
                                  retry_after=900)
    with zs.tenant_session(tenant.id) as s:
        records = zs.records(s, tenant, Actor(None, "owner", is_system=True))
        table = records.schema(d["table"])
        # Every match value must equal the record's; compared in SQL, exact after normalising.
        conds = [{"field": m["field"], "op": "=", "value": v} for m, v in given]
        try:
            found = records.list(table, Query(filter={"and": conds}, limit=2))["records"]
        except Exception:
            found = []
        if len(found) != 1:
            with zs.tenant_session(None, write=True) as w:
                _note(w, first_key)
            raise NotFound("matching order", "匹配的订单")
        rec = found[0]
        shown = []
        for item in d["show"]:
            spec = table.fields.get(item["field"]) or table.system_specs.get(item["field"])
            value = rec.get(item["field"])
            mask = item.get("mask") or ("phone" if spec.type.name == "phone" else "none")
            if mask == "phone":
                value = mask_phone(value) if isinstance(value, str) else value
            elif mask == "name":
                value = mask_name(value) if isinstance(value, str) else value
            if isinstance(value, dict) and "text" in value:  # addresses: the text only, never coordinates
                value = value["text"]
            shown.append({"field": item["field"], "label": item.get("label") or spec.label, "value": value,
                          "countdown": bool(item.get("countdown"))})
        out = {"title": d.get("title"), "fields": shown, "timeline": [], "related": []}
        if d.get("timeline"):
            f = d["timeline"]["field"]
            h = RecordHistory.__table__.c
            rows = s.execute(select(h.changes, h.at).where(h.tenant_id == tenant.id, h.table_id == table.id,
                                                            h.record_id == rec["id"]).order_by(h.id)).all()
            ts = table.system_specs["created_at"]
            for changes, at in rows:
                if changes and f in changes:
                    out["timeline"].append({"value": changes[f][1], "at": ts.type.from_storage(at, ts, records.ctx)})
        for rel in d.get("related", []):
            rt = records.schema(rel["table"])
            sort = rel.get("sort")
            sorts = [{"field": sort.lstrip("-"), "direction": "desc" if sort.startswith("-") else "asc"}] if sort else []
            rows = records.list(rt, Query(filter={"field": rel["via"], "op": "=", "value": rec["id"]}, sorts=sorts,
                                          limit=rel.get("limit", 50), fields=rel["fields"]))["records"]
            out["related"].append({"label": rel.get("label") or rt.label, "rows": [{k: r.get(k) for k in rel["fields"]} for r in rows]})
        return out


@public.post("/api/v1/public/<tenant>/<slug>/lookup")
def lookup_route(tenant, slug):
    try:
        data = json.loads(request.data or b"{}")
    except ValueError:
        return _err(ApiError("the body is not valid JSON", message_zh="请求内容不是有效的 JSON", code="bad_json"))
    try:
        return jsonify(lookup(_platform(), tenant, slug, data.get("values") if isinstance(data, dict) else None,
                              request.remote_addr or "-"))
    except ApiError as e:
        return _err(e)


def _err(e: ApiError):
    resp = jsonify(e.to_dict())
    resp.status_code = e.status
    if e.status == 429:
        resp.headers["Retry-After"] = str(e.extra.get("retry_after", 60))
    return resp


@public.get("/api/v1/public/<tenant>/<slug>")
def page_definition(tenant, slug):
    """What the page asks for (labels of the match fields) — nothing about any record."""
    zs = _platform()
    try:
        with zs.tenant_session(None) as s:
            t, page = _page(s, tenant, slug)
            d = page.definition
            return jsonify({"title": d.get("title"), "intro": d.get("intro"),
                            "match": [{"field": m["field"], "label": m.get("label") or m["field"]} for m in d["match"]]})
    except ApiError as e:
        return _err(e)


PAGE_HTML = (Path(__file__).parent / "public_static" / "page.html")


@public.get("/p/<tenant>/<slug>")
def page_html(tenant, slug):
    html = PAGE_HTML.read_text("utf-8")
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@public.get("/p-static/<name>")
def page_static(name):
    if name not in ("page.js", "page.css"):
        return _err(NotFound("file", "文件"))
    path = Path(__file__).parent / "public_static" / name
    return Response(path.read_text("utf-8"), mimetype="text/javascript" if name.endswith(".js") else "text/css")

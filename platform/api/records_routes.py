"""Records: CRUD, batch, query, views' records, history, aggregates and attachments."""
from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from flask import current_app, g, request, send_file

from ..errors import ApiError, NotFound, ValidationFailed, field_error
from ..models import Attachment
from ..storage.aggregate import aggregate
from ..storage.query import Query
from .base import api, body, body_object, int_arg, json_arg, ok, records, version_arg


def _sorts_arg(raw: str | None) -> list[dict]:
    """?sort=-created_at,amount  ->  [{"field": "created_at", "direction": "desc"}, ...]"""
    if not raw:
        return []
    out = []
    for part in raw.split(",")[:10]:
        part = part.strip()
        if part:
            out.append({"field": part.lstrip("-+"), "direction": "desc" if part.startswith("-") else "asc"})
    return out


def _query_from_args() -> Query:
    deleted = request.args.get("deleted")
    fields = request.args.get("fields")
    return Query(
        filter=json_arg("filter"),
        sorts=_sorts_arg(request.args.get("sort")),
        search=request.args.get("q"),
        limit=int_arg("limit", 50, 1, 1000),
        cursor=request.args.get("cursor") or None,
        offset=int_arg("offset", None, 0, 10_000_000),
        fields=[f for f in fields.split(",") if f] if fields else None,
        include_deleted=deleted == "include",
        only_deleted=deleted == "only",
    )


def _query_from_body(data: dict) -> Query:
    allowed = {"filter", "sort", "sorts", "q", "limit", "cursor", "offset", "fields", "count", "deleted", "expand"}
    unknown = set(data) - allowed
    if unknown:
        k = sorted(unknown)[0]
        raise ValidationFailed(f"unknown query option '{k}'", message_zh=f"未知的查询选项 '{k}'", errors=[field_error(f"/{k}", "unknown option", "未知选项")])
    sorts = data.get("sorts", data.get("sort", []))
    if isinstance(sorts, str):
        sorts = _sorts_arg(sorts)
    if not isinstance(sorts, list) or not all(isinstance(s, dict) and isinstance(s.get("field"), str) for s in sorts):
        raise ValidationFailed("sorts must be a list of {field, direction}", message_zh="sorts 应为 {field, direction} 列表",
                               errors=[field_error("/sorts", "a list of {field, direction}", "{field, direction} 列表")])
    limit = data.get("limit", 50)
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise ValidationFailed("limit must be 1-1000", message_zh="limit 应为 1-1000", errors=[field_error("/limit", "1-1000", "1-1000")])
    fields = data.get("fields")
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise ValidationFailed("fields must be a list of field names", message_zh="fields 应为字段名列表",
                               errors=[field_error("/fields", "a list of names", "字段名列表")])
    offset = data.get("offset")
    if offset is not None and (not isinstance(offset, int) or offset < 0):
        raise ValidationFailed("offset must be ≥ 0", message_zh="offset 应 ≥ 0", errors=[field_error("/offset", "≥ 0", "≥ 0")])
    return Query(filter=data.get("filter"), sorts=sorts, search=data.get("q"), limit=limit, cursor=data.get("cursor"),
                 offset=offset, fields=fields, include_deleted=data.get("deleted") == "include", only_deleted=data.get("deleted") == "only")


@api.get("/tenants/<tenant>/tables/<table>/records")
def list_records(table):
    recs = records()
    schema = recs.schema(table)
    page = recs.list(schema, _query_from_args(), count=request.args.get("count") in ("1", "true"),
                     with_children=request.args.get("expand") in ("1", "true", "all"))
    return ok(page)


@api.post("/tenants/<tenant>/tables/<table>/records/query")
def query_records(table):
    data = body_object()
    recs = records()
    schema = recs.schema(table)
    return ok(recs.list(schema, _query_from_body(data), count=bool(data.get("count")), with_children=bool(data.get("expand"))))


@api.get("/tenants/<tenant>/tables/<table>/views/<view>/records")
def view_records(table, view):
    """A view's records: its filter AND the caller's extra filter, its sorts unless overridden."""
    from .meta_routes import _view, view_json

    schema, v = _view(table, view)
    shown = {k: x for k, x in view_json(v, schema).items() if k != "table_id"}  # columns and sorts the caller may see
    q = _query_from_args()
    vf = v.definition.get("filter")  # applied as saved, even where the caller is shown less
    if vf and q.filter:
        q.filter = {"and": [vf, q.filter]}
    elif vf:
        q.filter = vf
    if not q.sorts:
        q.sorts = shown.get("sorts", [])
    if q.fields is None and shown.get("fields"):
        q.fields = shown["fields"]
    recs = records()
    page = recs.list(schema, q, count=request.args.get("count") in ("1", "true"),
                     with_children=request.args.get("expand") in ("1", "true", "all"))
    page["view"] = shown
    return ok(page)


@api.post("/tenants/<tenant>/tables/<table>/records")
def create_records(table):
    """One record ``{...}`` or a batch ``{"records": [...]}`` (all-or-nothing unless
    ``?skip_invalid=true``, which saves the good rows and reports the others)."""
    data = body()
    recs = records()
    schema = recs.schema(table)
    if isinstance(data, dict) and "records" in data and isinstance(data["records"], list):
        rows = data["records"]
        limit = current_app.config["MAX_BATCH_SIZE"]
        if len(rows) > limit:
            raise ApiError(f"at most {limit} records per request", message_zh=f"每次最多 {limit} 条记录", code="too_many_records", status=413)
        if not rows:
            raise ValidationFailed("records is empty", message_zh="records 为空", errors=[field_error("/records", "empty", "为空")])
        skip = request.args.get("skip_invalid") in ("1", "true")
        quiet = request.args.get("return") == "ids"
        result = recs.create_many(schema, rows, skip_invalid=skip, return_records=not quiet)
        if skip:
            if quiet:
                result["created"] = [r["id"] if isinstance(r, dict) else r for r in result["created"]]
            return ok(result, 201 if result["created"] else 400)
        if quiet:
            return ok({"ids": [r["id"] if isinstance(r, dict) else r for r in result]}, 201)
        return ok({"records": result}, 201)
    if not isinstance(data, dict):
        raise ApiError("the body must be a record object or {\"records\": [...]}", message_zh="请求内容应为记录对象或 {\"records\": [...]}", code="bad_json")
    return ok(recs.create(schema, data), 201)


def _record_id(record_id: str) -> int:
    if not record_id.isdigit() or len(record_id) > 18:
        raise NotFound(f"record {record_id}", f"记录 {record_id}")
    return int(record_id)


@api.get("/tenants/<tenant>/tables/<table>/records/<record_id>")
def get_record(table, record_id):
    recs = records()
    schema = recs.schema(table)
    fields = request.args.get("fields")
    rec = recs.get(schema, _record_id(record_id), fields=fields.split(",") if fields else None,
                   deleted=None if request.args.get("deleted") == "include" else False)
    resp = ok(rec)
    resp.headers["ETag"] = f'"{rec["version"]}"'
    return resp


@api.patch("/tenants/<tenant>/tables/<table>/records/<record_id>")
def update_record(table, record_id):
    data = body_object()
    expected = version_arg(data)
    recs = records()
    schema = recs.schema(table)
    rec = recs.update(schema, _record_id(record_id), {k: v for k, v in data.items() if k != "version"}, expected_version=expected)
    resp = ok(rec)
    resp.headers["ETag"] = f'"{rec["version"]}"'
    return resp


@api.delete("/tenants/<tenant>/tables/<table>/records/<record_id>")
def delete_record(table, record_id):
    recs = records()
    schema = recs.schema(table)
    rec = recs.delete(schema, _record_id(record_id), expected_version=version_arg())
    return ok({"ok": True, "restorable": True, "record": rec})


@api.post("/tenants/<tenant>/tables/<table>/records/<record_id>/restore")
def restore_record(table, record_id):
    recs = records()
    return ok(recs.restore(recs.schema(table), _record_id(record_id)))


@api.get("/tenants/<tenant>/tables/<table>/records/<record_id>/history")
def record_history(table, record_id):
    recs = records()
    return ok({"history": recs.history(recs.schema(table), _record_id(record_id))})


@api.post("/tenants/<tenant>/tables/<table>/aggregate")
def aggregate_records(table):
    """``{"filter": ..., "group_by": [{"field": "status"}, {"field": "created_at", "bucket": "day"}],
    "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}``"""
    data = body_object()
    unknown = set(data) - {"filter", "group_by", "metrics", "limit", "order", "view"}
    if unknown:
        k = sorted(unknown)[0]
        raise ValidationFailed(f"unknown option '{k}'", message_zh=f"未知选项 '{k}'", errors=[field_error(f"/{k}", "unknown", "未知")])
    recs = records()
    schema = recs.schema(table)
    if data.get("view") is not None:
        from .meta_routes import _view

        ref = data.pop("view")
        if not isinstance(ref, (str, int)) or isinstance(ref, bool):
            raise ValidationFailed("view must be a view's api_name or id", message_zh="view 应为视图的 api_name 或 id",
                                   errors=[field_error("/view", "a view's api_name or id", "视图的 api_name 或 id")])
        _, v = _view(table, ref)  # a view shared with other roles only is a 404, as on the view routes
        vf = v.definition.get("filter")
        if vf:
            data["filter"] = {"and": [vf, data["filter"]]} if data.get("filter") else vf
    return ok(aggregate(recs, schema, data))


# -- attachments ---------------------------------------------------------------------------

def _attachment_dir() -> Path:
    p = Path(current_app.config["DATA_DIR"]) / "attachments" / str(g.tenant.id)
    p.mkdir(parents=True, exist_ok=True)
    return p


@api.post("/tenants/<tenant>/attachments")
def upload_attachment():
    f = request.files.get("file")
    if f is None or not f.filename:
        raise ValidationFailed("send the file as multipart form field 'file'", message_zh="请以表单字段 'file' 上传文件",
                               errors=[field_error("/file", "required", "必填")])
    token = secrets.token_hex(16)
    path = _attachment_dir() / token
    h = hashlib.sha256()
    size = 0
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    with open(path, "wb") as out:
        while chunk := f.stream.read(65536):
            size += len(chunk)
            if size > limit:
                out.close()
                os.unlink(path)
                raise ApiError(f"the file is larger than {limit // (1024 * 1024)} MB", message_zh=f"文件超过 {limit // (1024 * 1024)} MB", status=413, code="too_large")
            h.update(chunk)
            out.write(chunk)
    name = os.path.basename(f.filename)[:255]
    a = Attachment(tenant_id=g.tenant.id, token=token, filename=name, content_type=(f.mimetype or "application/octet-stream")[:128],
                   size=size, sha256=h.hexdigest(), uploaded_by=g.user.id)
    g.db.add(a)
    return ok({"token": token, "filename": name, "size": size, "content_type": a.content_type}, 201)


@api.get("/tenants/<tenant>/attachments/<token>")
def download_attachment(token):
    from sqlalchemy import select

    a = g.db.scalar(select(Attachment).where(Attachment.token == token))
    if a is None or not token.isalnum():
        raise NotFound("attachment", "附件")
    # Served as a download with its recorded type; never rendered inline as HTML.
    return send_file(_attachment_dir() / token, mimetype=a.content_type, as_attachment=True, download_name=a.filename)

"""Spreadsheet export and import of a table or view (HTTP only; the logic is in
``zhongshu.platform.importexport``; the formats are described in docs/import-export.md)."""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from urllib.parse import quote

from flask import Response, current_app, g, request, send_file, stream_with_context

from ..errors import ApiError, ValidationFailed, field_error
from ..importexport import (
    CSV_MIME,
    XLSX_MAX_ROWS,
    XLSX_MIME,
    ImportOptions,
    csv_chunks,
    export_columns,
    import_records,
    iter_records,
    label_text,
    read_spreadsheet,
    write_xlsx,
)
from ..storage.query import Query
from .base import api, json_arg, ok, platform, records
from .records_routes import _sorts_arg

log = logging.getLogger("zhongshu.api.io")
TRUE = ("1", "true", "yes", "on")


def _locale() -> str:
    return request.args.get("locale") or getattr(g.user, "locale", None) or g.tenant.locale or "zh-CN"


def content_disposition(filename: str, fallback: str) -> str:
    """attachment; filename="<ASCII fallback>"; filename*=UTF-8''<RFC 5987 encoded name>"""
    ascii_name = "".join(ch for ch in fallback if 32 <= ord(ch) < 127 and ch not in '"\\') or "export"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@api.get("/tenants/<tenant>/tables/<table>/export")
def export_records(table):
    """``?format=csv|xlsx&view=<view>&filter=<json>&q=<search>&sort=-a,b&fields=a,b&header=label|api_name``"""
    fmt = (request.args.get("format") or "csv").lower()
    if fmt not in ("csv", "xlsx"):
        raise ApiError("format must be csv or xlsx", message_zh="format 应为 csv 或 xlsx", code="bad_parameter")
    locale = _locale()
    recs = records()
    q = Query(filter=json_arg("filter"), sorts=_sorts_arg(request.args.get("sort")), search=request.args.get("q") or None)
    fields = [f.strip() for f in request.args["fields"].split(",") if f.strip()] if request.args.get("fields") else None
    view_label = ""
    if request.args.get("view"):
        from .meta_routes import _view

        schema, v = _view(table, request.args["view"])
        vf = v.definition.get("filter")
        q.filter = {"and": [vf, q.filter]} if vf and q.filter else (vf or q.filter)
        q.sorts = q.sorts or v.definition.get("sorts", [])
        if fields is None and v.definition.get("fields"):
            hidden = recs.access(schema).hidden
            fields = [f for f in v.definition["fields"] if f in schema.fields and f not in hidden]
        view_label = label_text(v.definition.get("label"), locale, v.api_name)
    else:
        schema = recs.schema(table)
    columns = export_columns(recs, schema, fields, header=request.args.get("header") or "label", locale=locale)
    # Bad filters, sorts and missing permissions fail here, as JSON, before any byte is sent.
    probe = recs.list(schema, replace(q, limit=1, fields=[c.name for c in columns]), count=fmt == "xlsx")
    name = label_text(schema.label, locale, schema.api_name) + (f"-{view_label}" if view_label else "")
    fallback = schema.api_name + (f"-{request.args['view']}" if view_label else "")
    filename, fallback = f"{name}.{fmt}", f"{fallback}.{fmt}"

    if fmt == "xlsx":
        if probe["total"] >= XLSX_MAX_ROWS:
            raise ApiError(f"{probe['total']:,} records do not fit in one Excel sheet; export as CSV or filter first",
                           message_zh=f"{probe['total']:,} 条记录超出 Excel 单表上限,请导出 CSV 或先筛选", code="too_many_rows", status=413)
        out = tempfile.TemporaryFile()
        try:
            write_xlsx(out, columns, iter_records(recs, schema, q, columns), sheet_name=name, locale=locale)
            out.seek(0)
        except BaseException:
            out.close()
            raise
        resp = send_file(out, mimetype=XLSX_MIME, as_attachment=True, download_name=fallback)
        resp.headers["Content-Disposition"] = content_disposition(filename, fallback)
        return resp

    # CSV streams: its own read session, pages of 1,000 records, never the whole table in memory.
    zs, tenant, actor, table_id = platform(), g.tenant, g.actor, schema.id

    def generate():
        session = zs.open_session(tenant.id)
        try:
            r = zs.records(session, tenant, actor)
            yield from csv_chunks(columns, iter_records(r, r.schema(table_id), q, columns), locale=locale)
        except Exception:
            log.exception("CSV export of table %s broke off", table_id)
            raise
        finally:
            session.rollback()
            session.close()

    resp = Response(stream_with_context(generate()), mimetype=CSV_MIME)
    resp.headers["Content-Disposition"] = content_disposition(filename, fallback)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _flag(name: str) -> bool:
    v = request.form.get(name, request.args.get(name, ""))
    return str(v).strip().lower() in TRUE


@api.post("/tenants/<tenant>/tables/<table>/import")
def import_file(table):
    """multipart/form-data: ``file`` (.csv or .xlsx), optional ``mapping`` (JSON {column: field}),
    ``skip_invalid`` (true/false), ``dry_run`` (true/false)."""
    recs = records()
    schema = recs.schema(table)
    recs.access(schema).require_write(schema)  # before reading a byte of the file
    f = request.files.get("file")
    if f is None or not f.filename:
        raise ValidationFailed("send the spreadsheet as multipart form field 'file' (.csv or .xlsx)",
                               message_zh="请以表单字段 'file' 上传表格文件(.csv 或 .xlsx)",
                               errors=[field_error("/file", "required", "必填")])
    limit = current_app.config["ATTACHMENT_MAX_BYTES"]
    chunks, size = [], 0
    while chunk := f.stream.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise ApiError(f"the file is larger than the limit of {limit // (1024 * 1024) or limit} {'MB' if limit >= 1024 * 1024 else 'bytes'}",
                           message_zh=f"文件超过上限 {limit // (1024 * 1024) or limit} {'MB' if limit >= 1024 * 1024 else '字节'}",
                           status=413, code="too_large")
        chunks.append(chunk)
    data = b"".join(chunks)
    raw_mapping = request.form.get("mapping", request.args.get("mapping"))
    mapping = None
    if raw_mapping:
        try:
            mapping = json.loads(raw_mapping)
        except ValueError:
            raise ValidationFailed("mapping must be JSON such as {\"客户\": \"customer_name\"}",
                                   message_zh="mapping 应为 JSON,例如 {\"客户\": \"customer_name\"}", code="bad_mapping",
                                   errors=[field_error("/mapping", "not JSON", "不是 JSON")]) from None
    options = ImportOptions(mapping=mapping, skip_invalid=_flag("skip_invalid"), dry_run=_flag("dry_run"),
                            max_rows=current_app.config.get("IMPORT_MAX_ROWS", ImportOptions.max_rows),
                            chunk_rows=current_app.config.get("IMPORT_CHUNK_ROWS"))
    sheet = read_spreadsheet(data, f.filename)
    report = import_records(recs, schema, sheet, options)
    if options.dry_run:
        return ok(report)
    if not report["ok"]:
        n = report["invalid"]
        first = report["errors"][0] if report["errors"] else {"row": "?", "message": "", "message_zh": ""}
        detail = {k: v for k, v in report.items() if k != "errors"}
        raise ValidationFailed(
            f"{n} row(s) have errors, so nothing was imported; first: row {first['row']}: {first['message']}",
            message_zh=f"{n} 行有错误,未导入任何数据;第一个: 第 {first['row']} 行: {first['message_zh']}",
            code="import_failed", errors=report["errors"], **detail)
    return ok(report, 201 if report["created"] else 200)

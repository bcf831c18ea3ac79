"""``POST /tenants/<t>/tables/<table>/formula-preview``: what a formula gives on one record.

The table designer calls it while a formula is typed. It checks the expression with the
runtime's compiler (the same check as on save, with a position) and evaluates it on a
sample record the caller can read, exactly as computed fields are evaluated (``Loader`` +
``EvalContext``). Nothing is written: the request runs in a read-only session.

Permissions: the expression only sees what the caller may see. Hidden and masked fields
(a masked value could be unmasked with MID() & co.) are left out of the names the checker
knows, so using one is an "unknown field" error; links into a table the caller cannot read,
or whose rows are scoped for the caller's role, are left out too. The sample record must be
readable (row scope, not deleted) like ``GET …/records/<id>``.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from zhongshu.platform.api.base import READ_ONLY_POSTS, api, body_object, ok, records
from zhongshu.platform.errors import ValidationFailed, field_error
from zhongshu.platform.storage.query import Query
from zhongshu.platform.storage.schema import TableSchema

from .bridge import Loader, expression_schema
from .expressions import EvalContext, ExpressionError, FieldInfo, Schema, compile_expression

ENDPOINT = "api_v1.formula_preview"
READ_ONLY_POSTS.add(ENDPOINT)  # a read-only session: no write lock, nothing to commit
RELATIONS = ("link", "sub_table")


def visible_schema(recs, table: TableSchema, depth: int = 0) -> Schema:
    """The expression schema of ``table`` without what the caller may not read."""
    full = expression_schema(recs, table, depth)
    access = recs.access(table)
    out = {}
    for name, info in full.items():
        if name in access.hidden or name in access.masked:
            continue
        spec = table.fields.get(name)
        if spec is not None and spec.type.name in RELATIONS and info.schema is not None:
            target = recs.schema(spec.options["table"] if spec.type.name == "sub_table" else spec.options["target"])
            if spec.type.name == "link":
                t_access = recs.access(target)
                if not t_access.read or t_access.rows:
                    continue  # rows the caller may not (all) see: not reachable from a preview
            sub = visible_schema(recs, target, depth + 1) if depth < 2 else Schema({})
            info = FieldInfo(info.type, options=info.options, schema=sub, result_type=info.result_type, many=info.many,
                             label=info.label)
        out[name] = info
    return Schema(out)


def jsonable(value, tz):
    """A plain expression value as JSON: money and numbers as numbers, times in the tenant's zone."""
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(tz).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, tz) for v in value]
    return value


def _bad(pointer: str, en: str, zh: str, **extra):
    raise ValidationFailed(en, message_zh=zh, errors=[field_error(pointer, en, zh, **extra)])


def _arguments(data: dict) -> tuple[str, int | None]:
    unknown = set(data) - {"expression", "record_id"}
    if unknown:
        k = sorted(unknown)[0]
        _bad(f"/{k}", f"unknown option '{k}'", f"未知选项 '{k}'")
    expression = data.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        _bad("/expression", "expression must be a non-empty text", "expression 应为非空文本")
    record_id = data.get("record_id")
    if record_id is not None and (isinstance(record_id, bool) or not isinstance(record_id, int) or not 0 < record_id < 2**63):
        _bad("/record_id", "record_id must be a record id (a whole number)", "record_id 应为记录编号(整数)")
    return expression, record_id


def _compile(recs, table: TableSchema, source: str):
    try:
        return compile_expression(source, visible_schema(recs, table))
    except ExpressionError as e:
        line, col = e.position if e.position else (1, 0)
        where_en, where_zh = f" (line {line}, column {col + 1})", f"(第 {line} 行第 {col + 1} 列)"
        detail = {k: v for k, v in e.to_dict("en").items() if k not in ("message",)}
        detail["expression_code"] = detail.pop("code")
        raise ValidationFailed(f"the formula is not valid: {e.message_en}{where_en}",
                               message_zh=f"公式有误:{e.message_zh}{where_zh}", code="bad_expression",
                               errors=[field_error("/expression", f"{e.message_en}{where_en}", f"{e.message_zh}{where_zh}",
                                                   **detail)]) from None


@api.post("/tenants/<tenant>/tables/<table>/formula-preview")
def formula_preview(table):
    """Checks a formula and evaluates it on one record (the given one, else the first); writes nothing."""
    source, record_id = _arguments(body_object())
    recs = records()
    schema = recs.schema(table)
    recs.access(schema).require_read(schema)
    expr = _compile(recs, schema, source)
    if record_id is not None:
        recs.get(schema, record_id, fields=[])  # 404 unless the caller can read it (row scope, not deleted)
    else:
        first = recs.list(schema, Query(limit=1, fields=[]))["records"]
        record_id = first[0]["id"] if first else None
    out = {"type": expr.result_type, "references": sorted(expr.references), "record_id": record_id, "value": None}
    if record_id is None:
        return ok({**out, "empty": True})  # no record yet: the check alone
    plain = Loader(recs).load(schema, record_id, expr.references)
    ctx = recs.ctx
    eval_ctx = EvalContext(now=ctx.now.replace(tzinfo=timezone.utc) if ctx.now else None, tz=str(ctx.tz.key))
    try:
        out["value"] = jsonable(expr.evaluate(plain, eval_ctx), ctx.tz)
    except ExpressionError as e:
        # A valid formula that cannot be computed for this record (e.g. a division by zero)
        # is stored as empty; the preview says why.
        out["error"] = {"code": e.code, "message": e.message_en, "message_zh": e.message_zh}
    return ok(out)

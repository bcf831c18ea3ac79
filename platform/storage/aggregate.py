"""Aggregates for dashboards: group by up to two fields (or a date bucket in the tenant
timezone) with count / sum / avg / min / max / count_distinct, compiled to one SQL query."""
from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import and_, distinct, func, literal_column, select

from ..errors import ValidationFailed, field_error
from ..fields.base import Ctx, FilterError
from ..validation import errors_for, validator
from .query import Compiler, validate_filter
from .schema import TableSchema

NUMERIC = {"number", "currency", "percent", "rollup", "formula", "lookup"}
MAX_GROUPS = 1000


def _bad(pointer, en, zh):
    raise ValidationFailed(en, message_zh=zh, errors=[field_error(pointer, en, zh)])


_VALID_SHAPES: dict = {}


def _check_shape(table: str, part: dict) -> None:
    """The request against the dashboard widget schema. A dashboard asks the same few
    aggregates again and again: a shape that passed once is known good (up to 2,048 of them),
    and the error list is built only when the quick check fails."""
    try:
        key = json.dumps(part, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _VALID_SHAPES:
        return
    doc = {"api_name": "x", "widgets": [{"id": "x", "type": "table", "table": table, **part}]}
    if validator("dashboard").is_valid(doc):
        if key is not None and len(key) < 4096:
            if len(_VALID_SHAPES) > 2048:
                _VALID_SHAPES.clear()
            _VALID_SHAPES[key] = True
        return
    errs = errors_for("dashboard", doc)
    if errs:
        e = errs[0]
        ptr = e["pointer"].replace("/widgets/0", "")
        _bad(ptr, e["message"], e["message_zh"])


def check_aggregate(schema: TableSchema, resolve, ctx: Ctx, spec: dict, field=None):
    """Validates an aggregate request (also used for dashboard widgets). ``field(name)``
    looks a field up as the caller may see it (``Compiler.field``: hidden ones are unknown)."""
    field = field or schema.field
    _check_shape(schema.api_name, {k: v for k, v in spec.items() if k in ("group_by", "metrics", "filter", "limit", "order")})
    for i, g in enumerate(spec.get("group_by", [])):
        try:
            f = field(g["field"].split(".")[0])
        except FilterError as e:
            _bad(f"/group_by/{i}/field", e.message, e.message_zh)
        if g.get("bucket") and f.type.name not in ("date", "datetime", "created_time", "modified_time") and not (
                f.type.name in ("formula", "lookup", "rollup") and f.options.get("result_type") in ("date", "datetime")):
            _bad(f"/group_by/{i}/bucket", f"'{g['field']}' is not a date, so it has no {g['bucket']} bucket",
                 f"'{g['field']}' 不是日期字段,不能按{g['bucket']}分组")
        if f.type.storage == "none":
            _bad(f"/group_by/{i}/field", f"cannot group by '{g['field']}' ({f.type.name})", f"不能按 '{g['field']}' 分组")
    for i, m in enumerate(spec.get("metrics", [{"fn": "count"}])):
        if m["fn"] != "count" and "field" not in m:
            _bad(f"/metrics/{i}/field", f"{m['fn']} needs a field", f"{m['fn']} 需要指定字段")
        if "field" in m:
            try:
                f = field(m["field"])
            except FilterError as e:
                _bad(f"/metrics/{i}/field", e.message, e.message_zh)
            if m["fn"] in ("sum", "avg") and f.type.name not in NUMERIC and f.api_name not in ("id",):
                _bad(f"/metrics/{i}/field", f"{m['fn']} needs a number field; '{m['field']}' is {f.type.name}",
                     f"{m['fn']} 需要数字字段,'{m['field']}' 是 {f.type.name}")


def _tz_offset_hours(ctx: Ctx) -> float:
    # SQLite has no time zones: the tenant's current UTC offset is applied (exact for zones
    # without daylight saving, such as Asia/Shanghai; documented for the others).
    off = datetime.now(timezone.utc).astimezone(ctx.tz).utcoffset()
    return off.total_seconds() / 3600 if off else 0.0


def bucket_expr(col, bucket: str, ctx: Ctx, is_date: bool):
    if ctx.dialect == "postgresql":
        local = col if is_date else func.timezone(str(ctx.tz.key), func.timezone("UTC", col))
        trunc = func.date_trunc(bucket, local)
        fmt = {"hour": "YYYY-MM-DD HH24:00", "day": "YYYY-MM-DD", "week": "IYYY-\"W\"IW", "month": "YYYY-MM", "year": "YYYY"}[bucket]
        return func.to_char(trunc, fmt)
    local = col if is_date else func.datetime(col, f"{_tz_offset_hours(ctx):+.2f} hours")
    if bucket == "week":
        return func.strftime("%Y-W%W", local)
    fmt = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[bucket]
    return func.strftime(fmt, local)


def aggregate(records, schema: TableSchema, spec: dict) -> dict:
    """``records`` is a Records service (for access, scope and link resolution)."""
    access = records.access(schema)
    access.require_read(schema)
    ctx = records.ctx
    comp: Compiler = records.compiler()  # the caller's fields only, here and in the filter
    check_aggregate(schema, records.schema, ctx, spec, field=lambda name: comp.field(schema, name))
    validate_filter(spec.get("filter"))
    t = schema.table
    conds = [comp.where(schema, spec.get("filter")), t.c.deleted_at.is_(None)]
    scope = records.scope(schema, access)
    if scope is not None:
        conds.append(scope)
    groups, labels, specs = [], [], []
    for i, g in enumerate(spec.get("group_by", [])):
        try:
            f = comp.field(schema, g["field"])
        except FilterError as e:
            _bad(f"/group_by/{i}/field", e.message, e.message_zh)
        col = t.c[f.column_name]
        if g.get("bucket"):
            is_date = f.type.name == "date" or f.options.get("result_type") == "date"
            col = bucket_expr(col, g["bucket"], ctx, is_date)
        groups.append(col.label(f"g{i}"))
        labels.append(g["field"])
        specs.append((f, bool(g.get("bucket"))))
    metrics = spec.get("metrics") or [{"fn": "count"}]
    mcols, mnames = [], []
    for i, m in enumerate(metrics):
        name = m.get("as") or (m["fn"] if "field" not in m else f"{m['fn']}_{m['field']}")
        col = t.c[comp.field(schema, m["field"]).column_name] if "field" in m else None  # checked above
        fn = m["fn"]
        expr = {"count": lambda: func.count() if col is None else func.count(col),
                "sum": lambda: func.sum(col), "avg": lambda: func.avg(col), "min": lambda: func.min(col),
                "max": lambda: func.max(col), "count_distinct": lambda: func.count(distinct(col))}[fn]()
        mcols.append(expr.label(f"m{i}"))
        mnames.append((name, m))
    records.cache.advisor.note_aggregate(records, schema, spec.get("filter"),
                                         [g["field"] for g in spec.get("group_by", []) if not g.get("bucket")],
                                         [m["field"] for m in metrics if "field" in m])
    stmt = select(*groups, *mcols).select_from(t).where(and_(*conds))
    if groups:
        stmt = stmt.group_by(*[g.element if hasattr(g, "element") else g for g in groups])
        order = spec.get("order")
        if order:
            first = mcols[0]
            stmt = stmt.order_by(first.desc() if order == "desc" else first.asc())
        else:
            stmt = stmt.order_by(*[literal_column(f"g{i}") for i in range(len(groups))])
        stmt = stmt.limit(min(int(spec.get("limit") or MAX_GROUPS), MAX_GROUPS))
    rows = records.conn.execute(stmt).all()
    out_rows = []
    for r in rows:
        m = r._mapping
        item = {}
        for i, (f, bucketed) in enumerate(specs):
            v = m[f"g{i}"]
            item[labels[i]] = v if bucketed else f.type.from_storage(v, f, ctx)
        for i, (name, mdef) in enumerate(mnames):
            v = m[f"m{i}"]
            if v is not None and mdef["fn"] in ("min", "max") and "field" in mdef:
                f = schema.field(mdef["field"])
                v = f.type.from_storage(v, f, ctx)
            elif v is not None and not isinstance(v, (int, str)):
                v = round(float(v), 6)
            item[name] = v
        out_rows.append(item)
    return {"group_by": labels, "metrics": [n for n, _ in mnames], "rows": out_rows}

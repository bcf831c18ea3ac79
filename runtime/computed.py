"""Computed fields — formula, lookup, rollup — kept current inside the write's transaction.

Each computed field is an expression: a formula is its own; ``lookup(through=L, field=X)``
is ``L.X`` and ``rollup(fn, through=L, field=X)`` is ``SUM(L.X)`` (COUNT, AVG, MIN, MAX,
COUNT_DISTINCT), optionally over the related rows matching a filter. After a write:

1. the written record's computed fields are recomputed in dependency order;
2. records that reach the written table through a link or sub-table (an order whose item
   changed, a customer whose return was filed) are found with one query per relation and
   recomputed too, transitively, up to ``MAX_HOPS`` relations away;
3. the records reached through a link whose computed values changed are announced to the
   other write hooks as updates of those fields, so rules on them fire (churn tagging when a
   return changes the customer's return rate, two links away).

Cycles are refused when a field is defined (``check_field``), so recomputation terminates.
"""
from __future__ import annotations

from datetime import timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy import Column
from sqlalchemy.sql import visitors
from sqlalchemy.sql.util import find_tables

from zhongshu.platform.db import table_writes
from zhongshu.platform.fields.base import FieldSpec, FieldValueError
from zhongshu.platform.storage import rowcache, statements
from zhongshu.platform.storage.records import PARENTS_BEING_WRITTEN
from zhongshu.platform.storage.schema import TableSchema, junction_table

from .bridge import Loader, expression_schema, plain
from .expressions import EvalContext, ExpressionError, compile_expression

COMPUTED = ("formula", "lookup", "rollup")
MAX_HOPS = 4
ROLLUP_FN = {"sum": "SUM", "count": "COUNT", "avg": "AVERAGE", "min": "MIN", "max": "MAX"}


def source_of(spec: FieldSpec) -> str:
    o = spec.options
    t = spec.type.name
    if t == "formula":
        return o["expression"]
    if t == "lookup":
        return f"{o['through']}.{o['field']}"
    fn = o["fn"]
    if fn == "count" and not o.get("field"):
        return f"COUNT({o['through']})"
    if fn == "count_distinct":
        return f"LEN(UNIQUE({o['through']}.{o['field']}))"
    return f"{ROLLUP_FN[fn]}({o['through']}.{o['field']})"


class Computer:
    """Compiled computed fields of one table, in dependency order (cached per schema version)."""

    def __init__(self, records, table: TableSchema):
        self.table = table
        schema = expression_schema(records, table)
        self.items: list[tuple[FieldSpec, object]] = []
        compiled = {}
        for spec in table.fields.values():
            if spec.type.name in COMPUTED:
                src = source_of(spec)
                if spec.type.name == "rollup" and spec.options["fn"] == "count_distinct":
                    src = f"COUNT({spec.options['through']})"  # refined below in python
                compiled[spec.api_name] = (spec, compile_expression(src, schema))
        order = _topological(compiled)
        self.items = [compiled[n] for n in order]
        self.paths = set().union(*[e.references for _, e in self.items]) if self.items else set()
        # Rollups counting or summing over a one-to-many link (a warehouse's orders today, a
        # product's order lines) are worked out by the database, not by loading every related
        # row, which grows with the data (``_aggregate``).
        self.aggregated = {spec.api_name for spec, _ in self.items if _aggregatable(table, spec)}
        rest = [e.references for spec, e in self.items if spec.api_name not in self.aggregated]
        self.row_paths = set().union(*rest) if rest else set()

    def relation_fields(self) -> set[str]:
        """Links and sub-tables the computed fields read through (COUNT(orders) reads the
        relation itself, orders.amount a field over there)."""
        firsts = {p.split(".")[0] for p in self.paths}
        return {f for f in firsts if f in self.table.fields and self.table.fields[f].type.name in ("link", "sub_table")}


def _aggregatable(table: TableSchema, spec: FieldSpec) -> bool:
    o = spec.options
    if spec.type.name != "rollup" or o.get("fn") not in ("count", "sum"):
        return False
    rel = table.fields.get(o.get("through"))
    return (rel is not None and rel.type.name == "link" and rel.type.relationship(rel) == "one_to_many"
            and bool(rel.options.get("via")) and (o["fn"] == "count" or bool(o.get("field"))))


def _aggregate(records, table: TableSchema, spec: FieldSpec, expr, rid: int, ctx):
    """The value of a count or sum rollup over a one-to-many link, the rows chosen by the
    database: the same rows ``Loader.many`` reads (live, pointing at the record, matching the
    rollup's filter). ``COUNT`` is counted there; ``SUM`` reads the one column, in id order,
    and adds it up with the expression (blanks, number types and limits as before)."""
    o = spec.options
    rel = table.fields[o["through"]]
    target = records.schema(rel.options["target"])
    via = target.field(rel.options["via"])
    tt = target.table
    conn = records.conn
    # kept for the transaction until the related table is written again
    key = ("rollup", spec.id, target.id, rid, records.ctx.now)
    stamp = table_writes(conn, tt.name)
    hit = rowcache.lookup(conn, key, None)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    conds = [tt.c[via.column_name] == rid, tt.c.deleted_at.is_(None)]
    if o.get("filter"):
        conds.append(records.definition_compiler().where(target, o["filter"]))
    if o["fn"] == "count":
        value = conn.execute(select(func.count()).select_from(tt).where(*conds)).scalar_one()
    else:
        fspec = target.fields.get(o["field"])
        if fspec is None or not fspec.type.has_column(fspec) or fspec.type.name == "link":
            raise TypeError(f"{o['field']} cannot be summed")  # shows as empty, like any value that cannot be computed
        values = conn.execute(select(tt.c[fspec.column_name]).where(*conds).order_by(tt.c.id)).scalars().all()
        rc = records.ctx
        value = expr.evaluate({o["through"]: [{o["field"]: plain(fspec, v, rc)} for v in values]}, ctx)
    rowcache.keep(conn, key, (stamp, value))
    return value


def _topological(compiled: dict) -> list[str]:
    deps = {n: {r.split(".")[0] for r in e.references if r.split(".")[0] in compiled and r.split(".")[0] != n}
            for n, (_, e) in compiled.items()}
    out, seen, stack = [], set(), set()

    def visit(n):
        if n in seen:
            return
        if n in stack:
            raise ValueError(f"computed fields depend on each other in a cycle: {n}")
        stack.add(n)
        for d in sorted(deps[n]):
            visit(d)
        stack.discard(n)
        seen.add(n)
        out.append(n)

    for n in compiled:
        visit(n)
    return out


def computer_for(records, table: TableSchema) -> Computer | None:
    """Compiled once per compiled table schema (a new schema version is a new object). Kept
    on the schema object itself, so it goes away with the schema: a WeakKeyDictionary keyed
    by the schema never let go (the Computer refers to its schema), which kept every evicted
    or superseded schema alive. (Not in ``table.table.info``: SQLAlchemy's statement cache
    keeps tables alive for a while, and through it the whole schema.)"""
    if not any(s.type.name in COMPUTED for s in table.fields.values()):
        return None
    c = table.__dict__.get("_zs_computer")
    if c is None:
        c = table._zs_computer = Computer(records, table)
    return c


def _rollup_filter_ids(records, spec: FieldSpec, rows: list[dict]) -> set | None:
    """Ids among these related rows that match the rollup's filter (None: no filter)."""
    flt = spec.options.get("filter") if spec.type.name == "rollup" else None
    if not flt:
        return None
    if not rows:
        return set()
    through = spec.options["through"]
    owner = records.schema(spec.table_id)
    rel = owner.fields[through]
    target = records.schema(rel.options["table"] if rel.type.name == "sub_table" else rel.options["target"])
    where = records.definition_compiler().where(target, flt)  # the same stored value whoever writes
    ids = sorted({r["id"] for r in rows})
    # The answer only depends on these rows when the filter reads their table alone: kept for
    # the transaction while the columns it reads hold the same values in each row (the rows
    # come from the row cache, just read to build the records), for the same clock (a filter
    # may be relative to today).
    conn = records.conn
    memo = len(ids) <= 50 and set(find_tables(where)) <= {target.table}
    if memo:
        cols = sorted({e.name for e in visitors.iterate(where) if isinstance(e, Column) and e.table is target.table})
        key = ("rollup_ids", spec.id, target.id, tuple(ids), records.ctx.now)
        now_rows = rowcache.rows_by_id(conn, target.table, ids)
        current = tuple(None if now_rows.get(i) is None else tuple(now_rows[i]._mapping[c] for c in cols) for i in ids)
        hit = rowcache.lookup(conn, key, None)
        if hit is not None and hit[0] == current:
            return set(hit[1])
    keep: set = set()
    for i in range(0, len(ids), 900):  # one query per batch of records, not one per record
        q = select(target.table.c.id).where(target.table.c.id.in_(ids[i:i + 900]), where)
        keep.update(conn.execute(q).scalars())
    if memo:
        rowcache.keep(conn, key, (current, frozenset(keep)))
    return keep


def recompute(records, table: TableSchema, record_ids: list[int]) -> dict[int, dict]:
    """Recomputes the computed fields of these records; returns {id: {column: new value}}."""
    return {rid: new for rid, (new, _old) in _recompute(records, table, record_ids).items()}


def _recompute(records, table: TableSchema, record_ids: list[int]) -> dict[int, tuple[dict, dict]]:
    """Like ``recompute``, with the values the changed columns had: {id: (new, old)}."""
    comp = computer_for(records, table)
    if comp is None or not record_ids:
        return {}
    loader = Loader(records)
    tree = loader.needs(comp.row_paths)
    rows = loader.rows(table, record_ids)
    changes: dict[int, tuple[dict, dict]] = {}
    ctx = EvalContext(now=records.ctx.now.replace(tzinfo=timezone.utc) if records.ctx.now else None,
                      tz=str(records.ctx.tz.key))
    built = {rid: loader.build(table, mapping, tree) for rid, mapping in rows.items()}
    filtered = [spec for spec, _ in comp.items if spec.type.name == "rollup" and spec.options.get("filter")
                and spec.api_name not in comp.aggregated]
    keeps = {spec.api_name: _rollup_filter_ids(records, spec, [r for rec in built.values()
                                                              for r in rec.get(spec.options["through"]) or []])
             for spec in filtered}
    for rid, mapping in rows.items():
        rec = built[rid]
        values = {}
        for spec, expr in comp.items:
            data = rec
            if spec.api_name in keeps:
                through, keep = spec.options["through"], keeps[spec.api_name]
                data = {**rec, through: [r for r in rec.get(through) or [] if r["id"] in keep]}
            try:
                if spec.api_name in comp.aggregated:
                    value = _aggregate(records, table, spec, expr, rid, ctx)
                else:
                    value = expr.evaluate(data, ctx)
                if spec.type.name == "rollup" and spec.options["fn"] == "count_distinct":
                    vals = [r.get(spec.options["field"]) for r in data.get(spec.options["through"]) or []]
                    value = len({repr(v) for v in vals if v is not None})
                if isinstance(value, list) and spec.options.get("result_type", "text") not in ("json",):
                    value = ", ".join("" if v is None else str(v) for v in value)
                stored = spec.type.to_storage(value, spec, records.ctx)
            except (ExpressionError, FieldValueError, TypeError, ValueError):
                stored = None  # a value that cannot be computed shows as empty, never blocks the write
            rec[spec.api_name] = value
            if mapping[spec.column_name] != stored and not _same(mapping[spec.column_name], stored):
                values[spec.column_name] = stored
        if values:
            rowcache.put(records.conn, table.table, records.conn.execute(
                statements.set_by_id(table.table, sorted(values)), statements.set_params(rid, values)).all(),
                written=True)
            changes[rid] = (values, {c: mapping[c] for c in values})
    return changes


def _same(a, b) -> bool:
    try:
        if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)):
            return abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return False
    return a == b


# -- propagation ---------------------------------------------------------------------

def _reaches(records, owner: TableSchema, rel: FieldSpec, changed) -> bool:
    """Whether the owner's computed fields read one of the changed fields through ``rel``
    (a changed link column itself also counts: the related record may be another one now)."""
    comp = computer_for(records, owner)
    if comp is None:
        return False
    used = {p.split(".")[1] for p in comp.paths if p.startswith(rel.api_name + ".") and p.count(".") >= 1}
    for spec, _ in comp.items:  # a rollup's filter reads fields over there too
        if spec.type.name == "rollup" and spec.options.get("through") == rel.api_name and spec.options.get("filter"):
            used |= _filter_fields(spec.options["filter"])
    via = rel.options.get("via") if rel.type.name == "link" else None
    return bool(set(changed) & (used | ({via} if via else set()) | {"deleted_at"})) or not used


def _filter_fields(flt) -> set[str]:
    """Field names a stored filter compares (``{"field": ...}`` at any depth)."""
    out: set[str] = set()
    stack = [flt]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if isinstance(x.get("field"), str):
                out.add(x["field"].split(".")[0])
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return out


def dependents(records, table: TableSchema) -> list[tuple[TableSchema, FieldSpec]]:
    """(table, relation field) pairs whose computed fields reach ``table`` through that field;
    computed once per table until the tenant's metadata changes (or once per transaction
    while it is being changed)."""
    cache = records.cache.meta.for_tenant(records.session, records.tenant_id)
    if cache is None:
        cache = records.session.info.setdefault("zs_dependents", {})
    key = ("dependents", table.id, table.schema_version)
    if key not in cache:
        cache[key] = _dependents(records, table)
    return cache[key]


def _dependents(records, table: TableSchema) -> list[tuple[TableSchema, FieldSpec]]:
    out = []
    from zhongshu.platform.models import Field

    rows = records.session.execute(select(Field.table_id, Field.definition, Field.type, Field.api_name).where(
        Field.deleted_at.is_(None), Field.type.in_(("sub_table", "link")))).all()
    for table_id, definition, ftype, api_name in rows:
        opts = (definition or {}).get("options") or {}
        target = opts.get("table") if ftype == "sub_table" else opts.get("target")
        if target != table.api_name:
            continue
        try:
            owner = records.schema(table_id)
        except Exception:
            continue
        comp = computer_for(records, owner)
        if comp is None or api_name not in comp.relation_fields():
            continue
        out.append((owner, owner.fields[api_name]))
    return out


def affected_ids(records, owner: TableSchema, rel: FieldSpec, changed: TableSchema, before: dict | None, after: dict | None) -> set[int]:
    ids: set[int] = set()
    recs = [r for r in (before, after) if r]
    t = rel.type.name
    if t == "sub_table":
        ids |= {r.get("parent_id") for r in recs if r.get("parent_id")}
    elif rel.type.relationship(rel) == "many_to_one":
        col = owner.table.c[rel.column_name]
        rid = (after or before)["id"]
        ids |= set(records.conn.execute(select(owner.table.c.id).where(col == rid, owner.table.c.deleted_at.is_(None))).scalars())
    elif rel.type.relationship(rel) == "one_to_many":
        via = rel.options["via"]
        for r in recs:
            v = r.get(via)
            if v:
                ids.add(v if isinstance(v, int) else v.get("id"))
    else:
        j = junction_table(rel)
        rid = (after or before)["id"]
        ids |= set(records.conn.execute(select(j.c.src_id).where(j.c.dst_id == rid)).scalars())
    return {i for i in ids if i}


def on_write(event) -> None:
    """After-write hook: own computed fields, then everything that depends on this record,
    then the other write hooks (rules) of the records whose computed values changed."""
    records, table = event.records, event.schema
    if event.action in ("create", "restore"):
        recompute(records, table, [event.record_id])
    changed = None
    if event.action == "update":
        changed = set(event.changed or ())
        comp = computer_for(records, table)
        if comp is not None:
            inputs = {p.split(".")[0] for p in comp.paths}
            if not event.changed or (changed & inputs):
                done = recompute(records, table, [event.record_id]).get(event.record_id, {})
                changed |= _api_names(table, done)
    touched: dict = {}
    _propagate(records, table, event.before, event.after, hops=0, changed=changed, touched=touched)
    touched.pop((table.id, event.record_id), None)  # its own hooks run right after this one
    _announce(records, touched)


def _api_names(table: TableSchema, columns) -> set[str]:
    by_column = {s.column_name: s.api_name for s in table.fields.values()}
    return {by_column[c] for c in columns if c in by_column}


def _propagate(records, table, before, after, hops, changed, touched):
    """Recomputes the rows that read ``table`` through a relation, then the rows that read
    those, up to MAX_HOPS relations away (returns -> orders -> customers). Rows reached
    through a link are noted in ``touched`` {(table id, id): (schema, changed fields, old
    columns)}; a parent reached through its sub-table is not: the parent's own write is
    under way and runs its hooks itself."""
    if hops >= MAX_HOPS:
        return
    for owner, rel in dependents(records, table):
        if changed is not None and not _reaches(records, owner, rel, changed):
            continue
        ids = affected_ids(records, owner, rel, table, before, after)
        if rel.type.name == "sub_table" and ids:
            # A parent whose write is under way (its items are being saved with it) is
            # recomputed by its own hooks once all its items are written.
            writing = records.session.info.get(PARENTS_BEING_WRITTEN)
            if writing:
                ids = {i for i in ids if (owner.id, i) not in writing}
        if not ids:
            continue
        for rid, (new, old) in _recompute(records, owner, sorted(ids)).items():
            names = _api_names(owner, new)
            if rel.type.name != "sub_table":
                seen = touched.setdefault((owner.id, rid), (owner, set(), {}))
                seen[1].update(names)
                for col, value in old.items():
                    seen[2].setdefault(col, value)  # the value before this whole write
            rec = {"id": rid}
            if owner.is_child:
                row = rowcache.rows_by_id(records.conn, owner.table, [rid]).get(rid)
                rec["parent_id"] = row.parent_id if row else None
            _propagate(records, owner, None, _with_links(records, owner, rid, rec), hops + 1, names, touched)


def _announce(records, touched: dict) -> None:
    """A computed value that changed because a related row changed is an update of its
    record for everything else on the write path: rules see it like any edit (a customer's
    return rate crossing 60 % makes a condition_true rule fire). Records whose rules are
    running right now are left to those rules (they reload what actions changed)."""
    hooks = [h for h in records.hooks.after_write if h is not on_write]
    if not hooks or not touched:
        return
    from zhongshu.platform.storage.records import WriteEvent

    running = records.session.info.get("zs_pending", {})
    for (table_id, rid), (owner, names, old) in touched.items():
        if not names or (table_id, rid) in running:
            continue
        row = rowcache.rows_by_id(records.conn, owner.table, [rid]).get(rid)
        if row is None or row.deleted_at is not None:
            continue
        access = records.access(owner)
        before_row = {**row._mapping, **old}
        event = WriteEvent(records, owner, "update", rid, records.serialize(owner, before_row, access),
                           records.serialize(owner, row, access), set(names), records.depth, before_row)
        for hook in hooks:
            hook(event)


def _with_links(records, table: TableSchema, rid: int, rec: dict) -> dict:
    row = rowcache.rows_by_id(records.conn, table.table, [rid]).get(rid)
    if row is None:
        return rec
    for spec in table.fields.values():
        if spec.type.name == "link" and spec.type.relationship(spec) == "many_to_one":
            rec[spec.api_name] = row._mapping[spec.column_name]
    return rec


def recompute_all(records, table: TableSchema, batch: int = 500) -> int:
    """After a formula changes: every row, in batches. Returns how many rows changed."""
    t = table.table
    last, changed = 0, 0
    while True:
        ids = list(records.conn.execute(select(t.c.id).where(t.c.id > last, t.c.deleted_at.is_(None)).order_by(t.c.id).limit(batch)).scalars())
        if not ids:
            return changed
        changed += len(recompute(records, table, ids))
        last = ids[-1]


def recompute_tables(records, tables: list[TableSchema], batch: int = 500) -> dict[str, int]:
    """Every row of these tables, each table after the tables whose computed fields it reads
    (items before orders before customers): the bulk counterpart of write-time propagation,
    for rows inserted without hooks (sample data, imports). Returns changed rows per table."""
    out = {}
    for table in _by_dependency(records, tables):
        out[table.api_name] = recompute_all(records, table, batch)
    return out


def _by_dependency(records, tables: list[TableSchema]) -> list[TableSchema]:
    by_id = {t.id: t for t in tables}
    needs: dict[int, set[int]] = {}
    for t in tables:
        comp = computer_for(records, t)
        needs[t.id] = set()
        for spec, _ in (comp.items if comp else []):
            for dt, dn in _deps(records, t, spec.api_name):
                src = dt.fields.get(dn)
                if dt.id != t.id and dt.id in by_id and src is not None and src.type.name in COMPUTED:
                    needs[t.id].add(dt.id)
    out, done = [], set()

    def visit(tid, path):
        if tid in done or tid in path:  # a cycle between tables: the given order decides
            return
        for dep in sorted(needs[tid]):
            visit(dep, path | {tid})
        done.add(tid)
        out.append(by_id[tid])

    for t in tables:
        visit(t.id, frozenset())
    return out


def check_field(metadata, table_row, spec: FieldSpec, pending) -> list[tuple[str, str, str]]:
    """Save-time check of a computed field (registered in platform.metadata.CHECKERS)."""
    if spec.type.name not in COMPUTED:
        return []
    from zhongshu.platform.storage.records import Records
    from zhongshu.platform.storage.access import Actor

    records = Records(metadata.session, tenant_id=metadata.tenant_id, actor=Actor(None, "owner", is_system=True),
                      ctx=metadata.ctx, cache=metadata.cache)
    # Build the schema as it will be, including fields defined in the same request.
    try:
        current = metadata.cache.get(metadata.session, table_row)
    except Exception:
        return []
    if spec.type.name == "formula" and not spec.options.get("expression"):
        return [("/options/expression", "a formula needs an expression", "公式需要表达式")]
    pending_names = {d["api_name"]: d for d in (pending or [])}
    schema = expression_schema(records, current)
    missing_in_schema = [n for n in pending_names if n not in schema and n != spec.api_name]
    if missing_in_schema:
        from .expressions import FieldInfo, Schema
        extra = {}
        for n in missing_in_schema:
            d = pending_names[n]
            t = d["type"]
            if t in COMPUTED:
                extra[n] = FieldInfo(t, result_type={"currency": "number", "percent": "number", "json": "any"}.get(
                    (d.get("options") or {}).get("result_type", "number"), (d.get("options") or {}).get("result_type", "number")))
            elif t in ("sub_table", "link"):
                continue  # checked once created
            else:
                from .bridge import _info
                from zhongshu.platform.fields.base import FieldSpec as FS
                from zhongshu.platform import fields as ft
                extra[n] = _info(records, FS(id=0, api_name=n, type=ft.get(t), definition=d, table_id=table_row.id), 0)
        schema = Schema({**dict(schema), **extra})
    ptr = "/options/expression" if spec.type.name == "formula" else "/options"
    try:
        compile_expression(source_of(spec), schema)
    except ExpressionError as e:
        line, col = e.position if e.position else (1, 0)
        return [(ptr, f"{e.message_en} (line {line}, column {col + 1})", f"{e.message_zh}(第 {line} 行第 {col + 1} 列)")]
    cycle = find_cycle(records, current, spec.api_name)
    if cycle:
        path = " → ".join(cycle)
        return [(ptr, f"computed fields would depend on each other in a cycle: {path}", f"计算字段之间形成循环依赖: {path}")]
    return []


def _deps(records, table: TableSchema, name: str) -> list[tuple[TableSchema, str]]:
    spec = table.fields.get(name)
    if spec is None or spec.type.name not in COMPUTED:
        return []
    try:
        refs = compile_expression(source_of(spec), expression_schema(records, table)).references
    except ExpressionError:
        return []
    out = []
    for ref in refs:
        parts = ref.split(".")
        t, ok = table, True
        for part in parts[:-1]:
            rel = t.fields.get(part)
            if rel is None or rel.type.name not in ("sub_table", "link"):
                ok = False
                break
            t = records.schema(rel.options["table"] if rel.type.name == "sub_table" else rel.options["target"])
        if ok and parts[-1] in t.fields:
            out.append((t, parts[-1]))
    return out


def find_cycle(records, table: TableSchema, name: str) -> list[str] | None:
    """A path of computed fields leading back to (table, name), if there is one."""
    start = (table.id, name)
    stack = [(table, name, [f"{table.api_name}.{name}"])]
    seen = set()
    while stack:
        t, n, path = stack.pop()
        for dt, dn in _deps(records, t, n):
            key = (dt.id, dn)
            if key == start:
                return path + [f"{dt.api_name}.{dn}"]
            if key not in seen and len(path) < 50:
                seen.add(key)
                stack.append((dt, dn, path + [f"{dt.api_name}.{dn}"]))
    return None

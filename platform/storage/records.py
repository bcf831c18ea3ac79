"""Records: create, read, update, soft delete, restore, history, list — on the physical tables.

Everything for one request runs on the connection of one tenant-scoped ORM session, in one
transaction: the row, its sub-table rows, link rows, autonumbers, the history entries and
whatever the runtime's write hooks do (computed fields, rules, outbox). A value that cannot
be stored is reported with a pointer to it; nothing is silently dropped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..db import user_writes
from ..errors import Conflict, NotFound, ValidationFailed, field_error
from ..fields.base import Ctx, FieldSpec, FieldValueError, FilterError
from ..fields.number import Autonumber, autonumber_period, render_autonumber
from ..models import Attachment, AutonumberCounter, RecordHistory, utcnow
from .access import Access, Actor, access_for
from .query import MAX_PAGE, Compiler, Query, decode_cursor, encode_cursor, keyset_after, order_by, substitute_user, validate_filter
from .schema import SchemaCache, TableSchema, find_table_row, junction_table

SYSTEM_OUT = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
WRITABLE_META = {"id", "version"}


@dataclass
class WriteEvent:
    """What the runtime's hooks see of a write, inside its transaction."""

    records: "Records"
    schema: TableSchema
    action: str  # create / update / delete / restore
    record_id: int
    before: dict | None
    after: dict | None
    changed: set = field(default_factory=set)
    depth: int = 0
    before_row: Any = None  # the stored row before an update (raw column values)


class Hooks:
    """Extension points of the write path (the runtime registers computed fields and rules).

    An after-write hook may carry ``hook.wants(records, schema) -> bool``: when it says no
    for a table (no computed fields, no rules), a bulk insert skips reading the new rows
    back for it."""

    def __init__(self):
        self.before_write: list[Callable[[WriteEvent, dict], None]] = []
        self.after_write: list[Callable[[WriteEvent], None]] = []

    def after_write_for(self, records: "Records", schema: "TableSchema") -> list:
        return [h for h in self.after_write if getattr(h, "wants", None) is None or h.wants(records, schema)]


class Records:
    def __init__(self, session, *, tenant_id: int, actor: Actor, ctx: Ctx, cache: SchemaCache, hooks: Hooks | None = None,
                 depth: int = 0):
        self.session = session
        self.tenant_id = tenant_id
        self.actor = actor
        self.ctx = ctx
        self.cache = cache
        self.hooks = hooks or Hooks()
        self.depth = depth
        self._schemas: dict[str, TableSchema] = {}

    @property
    def conn(self):
        return self.session.connection()

    # -- schemas ---------------------------------------------------------------------
    def schema(self, ref) -> TableSchema:
        key = str(ref)
        s = self._schemas.get(key)
        if s is None:
            shared = self.cache.meta.for_tenant(self.session, self.tenant_id)
            s = shared.get(("schema", key)) if shared is not None else None
            if s is None:
                s = self.cache.get(self.session, find_table_row(self.session, ref))
                if shared is not None:
                    shared[("schema", key)] = s
            self._schemas[key] = s
        return s

    def root_of(self, schema: TableSchema) -> TableSchema | None:
        if schema.parent_table_id is None:
            return None
        return self.schema(schema.parent_table_id)

    def access(self, schema: TableSchema) -> Access:
        return access_for(schema, self.actor, self.root_of(schema))

    def compiler(self) -> Compiler:
        """Compiles the actor's own filters and sorts: no step through a field hidden from
        them or into a table they cannot read."""
        return Compiler(self.schema, self.ctx, access=self.access)

    def definition_compiler(self) -> Compiler:
        """Compiles a condition saved in a definition that yields values stored for everyone
        (a rollup's filter): the actor's hidden fields and unreadable tables do not apply."""
        return Compiler(self.schema, self.ctx)

    def scope(self, schema: TableSchema, access: Access):
        """The row scope of the actor's role, as a SQL condition. It is the builder's
        condition, not the actor's, so it may go through a table the role cannot read
        (orders scoped by their customer's region); hidden fields are checked as when saved."""
        if not access.rows:
            return None
        comp = Compiler(self.schema, self.ctx, hidden=lambda s: self.access(s).hidden)
        return comp.where(schema, substitute_user(access.rows, self.ctx))

    # -- output ----------------------------------------------------------------------
    def serialize(self, schema: TableSchema, row, access: Access | None = None, fields: list[str] | None = None) -> dict:
        access = access or self.access(schema)
        return self._serializer(schema, access, fields)(row)

    def _serializer(self, schema: TableSchema, access: Access, fields: list[str] | None = None):
        """A function row -> record dict, compiled from the schema's output plan."""
        plan = schema.output_plan(self.ctx, frozenset(access.hidden), frozenset(access.masked),
                                  tuple(fields) if fields is not None else None)
        ts = schema.system_specs
        read_time = ts["created_at"].type.reader(ts["created_at"], self.ctx)
        child = schema.parent_table_id is not None

        def serialize(row) -> dict:
            m = row._mapping if hasattr(row, "_mapping") else row
            out = {"id": m["id"], "version": m["version"], "created_at": read_time(m["created_at"]),
                   "updated_at": read_time(m["updated_at"]), "created_by": m["created_by"], "updated_by": m["updated_by"]}
            if child:
                out["parent_id"] = m["parent_id"]
                out["position"] = m["position"]
            deleted = m.get("deleted_at")
            if deleted is not None:
                out["deleted_at"] = read_time(deleted)
            for name, col, read in plan:
                v = m[col]
                out[name] = v if read is None else read(v)
            return out
        return serialize

    def _attach_related(self, schema: TableSchema, records: list[dict], access: Access, fields: list[str] | None,
                        with_children: bool):
        if not records:
            return
        ids = [r["id"] for r in records]
        by_id = {r["id"]: r for r in records}
        for spec in schema.fields.values():
            if spec.api_name in access.hidden or (fields is not None and spec.api_name not in fields):
                continue
            tname = spec.type.name
            if tname == "sub_table" and (with_children or (fields is not None and spec.api_name in fields)):
                child = self.schema(spec.options["table"])
                caccess = self.access(child)
                for r in records:
                    r[spec.api_name] = []
                rows = self.conn.execute(
                    select(child.table).where(child.table.c.parent_id.in_(ids), child.table.c.deleted_at.is_(None))
                    .order_by(child.table.c.parent_id, child.table.c.position, child.table.c.id))
                ser = self._serializer(child, caccess)
                for row in rows:
                    by_id[row.parent_id][spec.api_name].append(ser(row))
            elif tname == "link" and spec.type.relationship(spec) == "many_to_many":
                j = junction_table(spec)
                for r in records:
                    r[spec.api_name] = []
                for src, dst in self.conn.execute(select(j.c.src_id, j.c.dst_id).where(j.c.src_id.in_(ids)).order_by(j.c.dst_id)):
                    by_id[src][spec.api_name].append(dst)
            elif tname == "link" and spec.type.relationship(spec) == "one_to_many":
                target = self.schema(spec.options["target"])
                via = target.field(spec.options["via"])
                col = target.table.c[via.column_name]
                for r in records:
                    r[spec.api_name] = []
                for tid, src in self.conn.execute(
                        select(target.table.c.id, col).where(col.in_(ids), target.table.c.deleted_at.is_(None)).order_by(target.table.c.id)):
                    by_id[src][spec.api_name].append(tid)

    # -- reading ---------------------------------------------------------------------
    def _row(self, schema: TableSchema, record_id: int, access: Access, *, deleted: bool | None = False, for_update=False):
        t = schema.table
        q = select(t).where(t.c.id == record_id)
        if deleted is False:
            q = q.where(t.c.deleted_at.is_(None))
        elif deleted is True:
            q = q.where(t.c.deleted_at.is_not(None))
        scope = self.scope(schema, access)
        if scope is not None:
            q = q.where(scope)
        if for_update and self.ctx.dialect == "postgresql":
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            raise NotFound(f"record {record_id} of table {schema.api_name}", f"表 {schema.api_name} 的记录 {record_id}")
        return row

    def get(self, schema: TableSchema, record_id: int, *, fields: list[str] | None = None, deleted: bool | None = False) -> dict:
        access = self.access(schema)
        access.require_read(schema)
        row = self._row(schema, record_id, access, deleted=deleted)
        rec = self.serialize(schema, row, access, fields)
        self._attach_related(schema, [rec], access, fields, with_children=True)
        return rec

    def list(self, schema: TableSchema, q: Query, *, count: bool = False, with_children: bool = False) -> dict:
        access = self.access(schema)
        access.require_read(schema)
        validate_filter(q.filter)
        comp = self.compiler()
        t = schema.table
        conds = [comp.where(schema, q.filter)]
        if q.only_deleted:
            conds.append(t.c.deleted_at.is_not(None))
        elif not q.include_deleted:
            conds.append(t.c.deleted_at.is_(None))
        scope = self.scope(schema, access)
        if scope is not None:
            conds.append(scope)
        if q.search:
            conds.append(comp.search(schema, q.search, access.hidden))
        where = and_(*conds)
        sort_cols = comp.sort_columns(schema, q.sorts)
        self.cache.advisor.note_page(self, schema, q.filter, q.sorts)
        limit = max(1, min(int(q.limit or 50), MAX_PAGE))
        stmt = select(t, *[e.label(f"_s{i}") for i, (e, _) in enumerate(sort_cols)]).where(where)
        if q.cursor:
            stmt = stmt.where(keyset_after(sort_cols, decode_cursor(q.cursor, len(sort_cols))))
        stmt = stmt.order_by(*order_by(sort_cols)).limit(limit + 1)
        if q.offset and not q.cursor:
            stmt = stmt.offset(max(0, int(q.offset)))
        rows = self.conn.execute(stmt).all()
        has_more = len(rows) > limit
        rows = rows[:limit]
        ser = self._serializer(schema, access, q.fields)
        records = [ser(r) for r in rows]
        self._attach_related(schema, records, access, q.fields, with_children)
        page = {"records": records, "has_more": has_more, "next_cursor": None}
        if has_more and rows:
            last = rows[-1]._mapping
            page["next_cursor"] = encode_cursor([last[f"_s{i}"] for i in range(len(sort_cols))])
        if count:
            page["total"] = self.conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
        return page

    def count(self, schema: TableSchema, filter_node=None) -> int:
        return self.list(schema, Query(filter=filter_node, limit=1), count=True)["total"]

    # -- writing ---------------------------------------------------------------------
    def _convert(self, schema: TableSchema, values: dict, access: Access, pointer: str, *, partial: bool,
                 errors: list, existing: dict | None = None):
        """User values -> (column values, sub-table rows, many-to-many ids), collecting errors."""
        if not isinstance(values, dict):
            errors.append(field_error(pointer or "/", "a record must be an object {field: value}", "记录应为对象 {字段: 值}"))
            return {}, {}, {}
        cols, children, m2m = {}, {}, {}
        for key, value in values.items():
            if key in WRITABLE_META or key in SYSTEM_OUT or key in ("parent_id", "position", "deleted_at"):
                continue
            spec = schema.fields.get(key)
            if spec is None or key in access.hidden:
                names = ", ".join(n for n in schema.fields if n not in access.hidden)
                errors.append(field_error(f"{pointer}/{key}", f"unknown field '{key}'; fields: {names}",
                                          f"没有字段 '{key}';现有字段: {names}", code="unknown_field"))
                continue
            if spec.type.computed:
                errors.append(field_error(f"{pointer}/{key}", f"'{key}' is computed and cannot be written",
                                          f"'{key}' 是自动计算的字段,不能写入", code="read_only"))
                continue
            if key in access.read_only:
                errors.append(field_error(f"{pointer}/{key}", f"you may not change '{key}'", f"你没有修改 '{key}' 的权限", code="read_only"))
                continue
            try:
                stored = spec.type.to_storage(value, spec, self.ctx)
            except FieldValueError as e:
                errors.append(field_error(f"{pointer}/{key}", f"{key}: {e.message}", f"{key}: {e.message_zh}", code="invalid_value"))
                continue
            tname = spec.type.name
            if tname == "sub_table":
                children[key] = stored
            elif tname == "link" and spec.type.relationship(spec) == "many_to_many":
                m2m[key] = stored
            else:
                cols[spec.column_name] = stored
        if not partial:
            for spec in schema.fields.values():
                if spec.type.storage != "column" or spec.type.computed or spec.type.column_type(spec) is None:
                    continue
                if spec.column_name not in cols and spec.api_name not in values:
                    try:
                        d = spec.type.default(spec, self.ctx)
                    except FieldValueError:
                        d = None
                    if d is not None:
                        cols[spec.column_name] = d
        # Required fields: on create all of them, on update the ones being emptied.
        for spec in schema.fields.values():
            if not spec.required or spec.type.computed or spec.api_name in access.hidden:
                continue
            if spec.type.name == "sub_table":
                if (not partial or spec.api_name in children) and not children.get(spec.api_name):
                    errors.append(field_error(f"{pointer}/{spec.api_name}", f"'{spec.api_name}' needs at least one row", f"'{spec.api_name}' 至少需要一行", code="required"))
                continue
            if spec.column_name in cols or not partial:
                v = cols.get(spec.column_name)
                if v is None or spec.type.is_empty(v):
                    errors.append(field_error(f"{pointer}/{spec.api_name}", f"'{spec.api_name}' is required", f"'{spec.api_name}' 为必填项", code="required"))
        return cols, children, m2m

    def _precheck_children(self, schema: TableSchema, children: dict, pointer: str, errors: list):
        """Validates sub-table rows before anything is written, so that a bad line makes its
        record invalid (and skippable) instead of failing the batch half-way."""
        for name, rows in children.items():
            child = self.schema(schema.fields[name].options["table"])
            caccess = self.access(child)
            for j, row in enumerate(rows):
                self._convert(child, row, caccess, f"{pointer}/{name}/{j}", partial="id" in row, errors=errors)

    def _check_links(self, schema: TableSchema, cols_list: list[dict], m2m_list: list[dict], pointers: list[str], errors: list):
        for spec in schema.fields.values():
            if spec.type.name == "link":
                rel = spec.type.relationship(spec)
                if rel == "one_to_many":
                    continue
                wanted = set()
                for cols, m2m in zip(cols_list, m2m_list):
                    if rel == "many_to_one" and cols.get(spec.column_name) is not None:
                        wanted.add(cols[spec.column_name])
                    if rel == "many_to_many":
                        wanted.update(m2m.get(spec.api_name, []))
                if not wanted:
                    continue
                target = self.schema(spec.options["target"])
                found = set()
                wl = sorted(wanted)
                for i in range(0, len(wl), 900):
                    found.update(self.conn.execute(select(target.table.c.id).where(
                        target.table.c.id.in_(wl[i:i + 900]), target.table.c.deleted_at.is_(None))).scalars())
                missing = wanted - found
                if missing:
                    for cols, m2m, ptr in zip(cols_list, m2m_list, pointers):
                        ids = {cols.get(spec.column_name)} if rel == "many_to_one" else set(m2m.get(spec.api_name, []))
                        bad = sorted(i for i in ids if i in missing)
                        if bad:
                            errors.append(field_error(f"{ptr}/{spec.api_name}",
                                                      f"{spec.api_name}: no record {', '.join(map(str, bad))} in {target.api_name}",
                                                      f"{spec.api_name}: {target.api_name} 中没有记录 {', '.join(map(str, bad))}", code="invalid_link"))
            elif spec.type.name == "attachment":
                for cols, ptr in zip(cols_list, pointers):
                    raw = cols.get(spec.column_name)
                    if not raw:
                        continue
                    tokens = json.loads(raw)
                    if tokens and isinstance(tokens[0], dict):
                        continue
                    found = {a.token: a for a in self.session.scalars(select(Attachment).where(Attachment.token.in_(tokens)))}
                    missing = [t for t in tokens if t not in found]
                    if missing:
                        errors.append(field_error(f"{ptr}/{spec.api_name}", f"{spec.api_name}: unknown attachment {missing[0]}",
                                                  f"{spec.api_name}: 找不到附件 {missing[0]}", code="invalid_value"))
                        continue
                    cols[spec.column_name] = json.dumps([
                        {"token": t, "filename": found[t].filename, "size": found[t].size, "content_type": found[t].content_type}
                        for t in tokens], ensure_ascii=False)

    def _allocate_autonumbers(self, schema: TableSchema, cols_list: list[dict]):
        for spec in schema.fields.values():
            if spec.type.name != "autonumber":
                continue
            pattern = spec.type.pattern(spec)
            local = Autonumber.local_now(self.ctx)
            period = autonumber_period(pattern, local)
            first = self.allocate_sequence(spec.id, period, len(cols_list))
            for i, cols in enumerate(cols_list):
                cols[spec.column_name] = render_autonumber(pattern, local, first + i)

    def allocate_sequence(self, field_id: int, period: str, n: int) -> int:
        """Reserves n numbers; the counter row is locked until commit, so concurrent
        inserts never get the same number (PostgreSQL row lock / SQLite write lock)."""
        last = self.conn.execute(_counter_upsert(self.ctx.dialect), {"fid": field_id, "period": period, "n": n}).scalar_one()
        return last - n + 1

    def _history(self, schema: TableSchema, entries: list[dict]):
        if not entries or schema.definition.get("history") is False:
            return
        now = self.ctx.now or utcnow()
        for e in entries:
            e.setdefault("tenant_id", self.tenant_id)
            e.setdefault("table_id", schema.id)
            e.setdefault("user_id", self.actor.user_id)
            e.setdefault("at", now)
        self.conn.execute(insert(RecordHistory.__table__), entries)

    def create(self, schema: TableSchema, values: dict) -> dict:
        return self.create_many(schema, [values])[0]

    def create_many(self, schema: TableSchema, rows: list[dict], *, skip_invalid: bool = False, parent_ids: list | None = None,
                    pointer: str = "/records", return_records: bool = True):
        """Inserts rows in one statement. All-or-nothing unless skip_invalid; then the
        result lists the rows that were refused with their errors."""
        access = self.access(schema)
        access.require_write(schema)
        errors: list[dict] = []
        converted, pointers, bad_rows = [], [], set()
        for i, values in enumerate(rows):
            ptr = f"{pointer}/{i}" if len(rows) > 1 or pointer != "/records" else ""
            before = len(errors)
            cols, children, m2m = self._convert(schema, values, access, ptr, partial=False, errors=errors)
            self._precheck_children(schema, children, ptr, errors)
            if len(errors) > before:
                bad_rows.add(i)
            converted.append((cols, children, m2m))
            pointers.append(ptr)
        self._check_links(schema, [c for c, _, _ in converted], [m for _, _, m in converted], pointers, errors)
        for e in errors:
            for i, p in enumerate(pointers):
                if e["pointer"] == p or e["pointer"].startswith(p + "/"):
                    bad_rows.add(i)
        for hook in self.hooks.before_write:
            for i, (cols, children, m2m) in enumerate(converted):
                if i not in bad_rows:
                    try:
                        hook(WriteEvent(self, schema, "create", 0, None, None, set(rows[i]), self.depth), rows[i])
                    except ValidationFailed as e:
                        bad_rows.add(i)
                        errors.extend(e.errors or [field_error(pointers[i], e.message, e.message_zh)])
        if errors and not skip_invalid:
            raise ValidationFailed(
                f"{len(bad_rows) or 1} record(s) could not be saved: {errors[0]['message']}",
                message_zh=f"{len(bad_rows) or 1} 条记录无法保存: {errors[0]['message_zh']}", errors=errors)
        keep = [i for i in range(len(rows)) if i not in bad_rows]
        now = self.ctx.now or utcnow()
        insert_rows = []
        for i in keep:
            cols = converted[i][0]
            cols.update(version=1, created_at=now, updated_at=now, created_by=self.actor.user_id, updated_by=self.actor.user_id)
            if parent_ids is not None:
                cols["parent_id"], cols["position"] = parent_ids[i]
            insert_rows.append(cols)
        if insert_rows:
            self._allocate_autonumbers(schema, insert_rows)
            # Same keys in every row: one executemany (insertmanyvalues) with RETURNING ids.
            all_keys = set().union(*insert_rows)
            insert_rows = [{k: r.get(k) for k in all_keys} for r in insert_rows]
            # RETURNING the whole rows: the new records are shown without reading them back.
            inserted = self.conn.execute(insert(schema.table).returning(*schema.table.c, sort_by_parameter_order=True),
                                         insert_rows).all()
            ids = [r.id for r in inserted]
        else:
            inserted, ids = [], []
        writes_after_insert = user_writes(self.conn)
        results: list[Any] = [None] * len(rows)
        history = []
        for i, rid in zip(keep, ids):
            _, children, m2m = converted[i]
            for name, dst in m2m.items():
                self._set_m2m(schema.fields[name], rid, dst)
            for name, child_rows in children.items():
                self._write_children(schema, schema.fields[name], rid, child_rows, f"{pointers[i]}/{name}")
            results[i] = rid
            history.append({"record_id": rid, "version": 1, "action": "create",
                            "changes": self._shown_changes(schema, converted[i][0], rows[i])})
        self._history(schema, history)
        hooks = self.hooks.after_write_for(self, schema) if ids else []
        if (return_records or hooks) and ids:
            if user_writes(self.conn) == writes_after_insert:
                ser = self._serializer(schema, access)
                recs = {r["id"]: r for r in map(ser, inserted)}
                self._attach_related(schema, list(recs.values()), access, None, with_children=True)
            else:  # sub-table rows or links written since: their hooks may have changed the new rows
                recs = self._fetch_many(schema, ids, access)
            writes = user_writes(self.conn)
            for i, rid in zip(keep, ids):
                if return_records:
                    results[i] = recs[rid]
                for hook in hooks:
                    hook(WriteEvent(self, schema, "create", rid, None, recs[rid], set(rows[i]), self.depth))
            if hooks and return_records and user_writes(self.conn) != writes:  # hooks changed rows (computed fields...)
                recs = self._fetch_many(schema, ids, access)
                for i, rid in zip(keep, ids):
                    results[i] = recs[rid]
        if skip_invalid:
            return {"created": [r for r in results if r is not None],
                    "errors": [e for e in errors], "skipped": sorted(bad_rows)}
        return results

    def _shown_changes(self, schema: TableSchema, cols: dict, given: dict) -> dict:
        """{field: [None, value as records show it]} for a create's history entry: the fields
        the user sent, plus autonumbers and defaults filled in for them."""
        out = {}
        for name, col, read in schema.history_plan(self.ctx):
            if col in cols:
                v = cols[col]
                if v is not None or name in given:
                    out[name] = [None, v if read is None else read(v)]
        for name in given:
            if name not in out and name in schema.fields:  # sub-tables, to-many links
                out[name] = [None, _jsonable({name: given[name]}).get(name)]
        return out

    def _fetch_many(self, schema, ids, access):
        out = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            rows = self.conn.execute(select(schema.table).where(schema.table.c.id.in_(chunk))).all()
            ser = self._serializer(schema, access)
            recs = [ser(r) for r in rows]
            self._attach_related(schema, recs, access, None, with_children=True)
            out.update({r["id"]: r for r in recs})
        return out

    def _set_m2m(self, spec: FieldSpec, src_id: int, dst_ids: list[int]):
        j = junction_table(spec)
        self.conn.execute(delete(j).where(j.c.src_id == src_id))
        if dst_ids:
            self.conn.execute(insert(j), [{"src_id": src_id, "dst_id": d} for d in dst_ids])

    def _write_children(self, schema: TableSchema, spec: FieldSpec, parent_id: int, rows: list[dict], pointer: str):
        """Rows with an id update that child row, rows without one are added, and child
        rows not mentioned are removed (soft delete); the list order is the position."""
        child = self.schema(spec.options["table"])
        ct = child.table
        existing = {r.id: r for r in self.conn.execute(
            select(ct).where(ct.c.parent_id == parent_id, ct.c.deleted_at.is_(None)))}
        new_rows, new_pos = [], []
        keep_ids = set()
        now = self.ctx.now or utcnow()
        for pos, row in enumerate(rows):
            rid = row.get("id")
            if rid is not None:
                if rid not in existing:
                    raise ValidationFailed(f"{spec.api_name}: row {rid} does not belong to this record",
                                           message_zh=f"{spec.api_name}: 第 {rid} 行不属于该记录",
                                           errors=[field_error(f"{pointer}/{pos}/id", "unknown row id", "未知的行 id")])
                keep_ids.add(rid)
                self.update(child, rid, {k: v for k, v in row.items() if k != "id"}, position=pos, pointer=f"{pointer}/{pos}")
            else:
                new_rows.append(row)
                new_pos.append((parent_id, pos))
        if new_rows:
            self.create_many(child, new_rows, parent_ids=new_pos, pointer=pointer, return_records=False)
        gone = [i for i in existing if i not in keep_ids]
        if gone:
            self.conn.execute(update(ct).where(ct.c.id.in_(gone)).values(deleted_at=now, version=ct.c.version + 1))

    def update(self, schema: TableSchema, record_id: int, values: dict, *, expected_version: int | None = None,
               position: int | None = None, pointer: str = "") -> dict:
        access = self.access(schema)
        access.require_write(schema)
        row = self._row(schema, record_id, access, for_update=True)
        if expected_version is not None and row.version != expected_version:
            current = self.serialize(schema, row, access)
            self._attach_related(schema, [current], access, None, with_children=True)
            raise Conflict(
                f"record {record_id} was changed by someone else (version {row.version}, you had {expected_version}); reload and try again",
                message_zh=f"记录 {record_id} 已被他人修改(当前版本 {row.version},你的版本 {expected_version}),请刷新后重试",
                current=current)
        errors: list[dict] = []
        cols, children, m2m = self._convert(schema, values, access, pointer, partial=True, errors=errors)
        self._check_links(schema, [cols], [m2m], [pointer], errors)
        before = self.serialize(schema, row, access)
        self._attach_related(schema, [before], access, None, with_children=bool(children))
        changed = {k for k in values if k in schema.fields}
        event = WriteEvent(self, schema, "update", record_id, before, None, changed, self.depth, row._mapping)
        for hook in self.hooks.before_write:
            try:
                hook(event, values)
            except ValidationFailed as e:
                errors.extend(e.errors or [field_error(pointer or "/", e.message, e.message_zh)])
        if errors:
            raise ValidationFailed(f"the record could not be saved: {errors[0]['message']}",
                                   message_zh=f"记录无法保存: {errors[0]['message_zh']}", errors=errors)
        now = self.ctx.now or utcnow()
        t = schema.table
        cols.update(updated_at=now, updated_by=self.actor.user_id, version=t.c.version + 1)
        if position is not None:
            cols["position"] = position
        res = self.conn.execute(update(t).where(t.c.id == record_id, t.c.version == row.version).values(**cols))
        if res.rowcount != 1:
            raise Conflict(f"record {record_id} was changed at the same time; reload and try again",
                           message_zh=f"记录 {record_id} 正被同时修改,请刷新后重试")
        for name, dst in m2m.items():
            self._set_m2m(schema.fields[name], record_id, dst)
        for name, child_rows in children.items():
            self._write_children(schema, schema.fields[name], record_id, child_rows, f"{pointer}/{name}")
        after = self.get_unchecked(schema, record_id, access, with_children=True)
        # Sub-tables and to-many links count as changed only when the write touched them.
        diff = {k: [before.get(k), after.get(k)] for k, spec in schema.fields.items()
                if k in after and before.get(k) != after.get(k) and (spec.type.has_column(spec) or k in values)}
        event.after, event.changed = after, set(diff)
        self._history(schema, [{"record_id": record_id, "version": after["version"], "action": "update", "changes": diff}])
        if diff:
            writes = user_writes(self.conn)
            for hook in self.hooks.after_write:
                hook(event)
            if user_writes(self.conn) != writes:  # the hooks changed rows: show the record as it is now
                after = self.get_unchecked(schema, record_id, access, with_children=True)
        return after

    def nested(self, actor: Actor | None = None) -> "Records":
        """The same transaction one cascade level deeper (rules writing as the platform)."""
        child = Records(self.session, tenant_id=self.tenant_id, actor=actor or Actor(None, "owner", is_system=True),
                        ctx=self.ctx, cache=self.cache, hooks=self.hooks, depth=self.depth + 1)
        child._schemas = self._schemas
        return child

    def get_unchecked(self, schema, record_id, access, with_children=True):
        row = self.conn.execute(select(schema.table).where(schema.table.c.id == record_id)).first()
        rec = self.serialize(schema, row, access)
        self._attach_related(schema, [rec], access, None, with_children=with_children)
        return rec

    def delete(self, schema: TableSchema, record_id: int, *, expected_version: int | None = None) -> dict:
        return self._set_deleted(schema, record_id, True, expected_version)

    def restore(self, schema: TableSchema, record_id: int) -> dict:
        return self._set_deleted(schema, record_id, False, None)

    def _set_deleted(self, schema, record_id, deleting: bool, expected_version):
        access = self.access(schema)
        access.require_write(schema)
        row = self._row(schema, record_id, access, deleted=not deleting, for_update=True)
        if expected_version is not None and row.version != expected_version:
            raise Conflict(f"record {record_id} was changed by someone else; reload and try again",
                           message_zh=f"记录 {record_id} 已被他人修改,请刷新后重试")
        before = self.serialize(schema, row, access)
        now = self.ctx.now or utcnow()
        t = schema.table
        self.conn.execute(update(t).where(t.c.id == record_id).values(
            deleted_at=now if deleting else None, version=t.c.version + 1, updated_at=now, updated_by=self.actor.user_id))
        action = "delete" if deleting else "restore"
        self._history(schema, [{"record_id": record_id, "version": row.version + 1, "action": action, "changes": {}}])
        after = self.get_unchecked(schema, record_id, access)
        for hook in self.hooks.after_write:
            hook(WriteEvent(self, schema, action, record_id, before, after, set(), self.depth, row._mapping))
        return after

    def history(self, schema: TableSchema, record_id: int, limit: int = 200) -> list[dict]:
        access = self.access(schema)
        access.require_read(schema)
        self._row(schema, record_id, access, deleted=None)
        h = RecordHistory.__table__.c
        rows = self.conn.execute(select(RecordHistory.__table__).where(
            h.tenant_id == self.tenant_id, h.table_id == schema.id, h.record_id == record_id).order_by(h.id.desc()).limit(limit))
        ts = schema.system_specs["created_at"]
        out = []
        for r in rows:
            changes = {k: v for k, v in (r.changes or {}).items() if k not in access.hidden}
            for k in access.masked & set(changes):  # masked stays masked in history too
                spec = schema.fields.get(k)
                if spec is not None and hasattr(spec.type, "mask") and isinstance(changes[k], list):
                    changes[k] = [spec.type.mask(v, spec) if isinstance(v, str) else v for v in changes[k]]
            out.append({"version": r.version, "action": r.action, "changes": changes, "user_id": r.user_id,
                        "at": ts.type.from_storage(r.at, ts, self.ctx)})
        return out


_UPSERTS: dict = {}


def _counter_upsert(dialect: str):
    """One upsert per allocation: the first number of a period creates the counter row, later
    ones add to it (built once per dialect; the parameters are bound at execution)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        c = AutonumberCounter.__table__.c
        ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(AutonumberCounter.__table__)
        stmt = _UPSERTS[dialect] = (
            ins.values(field_id=bindparam("fid"), period=bindparam("period"), value=bindparam("n"))
            .on_conflict_do_update(index_elements=["field_id", "period"], set_={"value": c.value + bindparam("n")})
            .returning(c.value))
    return stmt


def _jsonable(values: dict) -> dict:
    try:
        return json.loads(json.dumps(values, default=str, ensure_ascii=False))
    except (TypeError, ValueError):
        return {}


__all__ = ["Records", "WriteEvent", "Hooks", "Query", "FilterError"]

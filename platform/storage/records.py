"""Records: create, read, update, soft delete, restore, history, list — on the physical tables.

Everything for one request runs on the connection of one tenant-scoped ORM session, in one
transaction: the row, its sub-table rows, link rows, autonumbers, the history entries and
whatever the runtime's write hooks do (computed fields, rules, outbox). A value that cannot
be stored is reported with a pointer to it; nothing is silently dropped.
"""
from __future__ import annotations

import functools
import gc
import json
import secrets
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import and_, delete, func, insert, select, update

try:
    import orjson
except ImportError:  # pragma: no cover - a dependency; the standard library does the same, slower
    orjson = None

from ..db import user_writes
from . import bulk, pages, rowcache, statements
from ..errors import Conflict, NotFound, ValidationFailed, field_error
from ..fields.base import Ctx, FieldSpec, FieldValueError, FilterError
from ..fields.number import Autonumber, autonumber_parts, autonumber_period, autonumber_renderer
from ..models import Attachment, AutonumberCounter, RecordHistory, utcnow
from .access import Access, Actor, access_for
from .query import MAX_PAGE, Compiler, Query, decode_cursor, encode_cursor, keyset_after, order_by, substitute_user, validate_filter
from .schema import SchemaCache, TableSchema, find_table_row, junction_table

SYSTEM_OUT = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
#: session.info key: {(table id, record id)} of parents whose sub-table rows are being written
PARENTS_BEING_WRITTEN = "zs_parents_being_written"
WRITABLE_META = {"id", "version"}
#: a create of at least this many rows pauses the cycle collector (see ``create_many``)
GC_PAUSE_ROWS = 100
#: session.info key: the session runs in autocommit (PostgreSQL, the create route), so that
#: a write that is one statement -- a record with its autonumbers and history -- needs no
#: BEGIN and COMMIT round trips; every other write opens its transaction first (``_begin``)
ONE_STATEMENT = "zs_one_statement_write"


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

    def before_write_for(self, action: str) -> list:
        """The before-write hooks that look at this action (a hook may carry ``hook.actions``,
        the actions it checks: a bulk create then makes no per-row call to an update-only hook)."""
        return [h for h in self.before_write if getattr(h, "actions", None) is None or action in h.actions]


_WRITE_SCOPE, _HISTORY_ROWS = "zs_write_scope", "zs_history_rows"
HISTORY_COLUMNS = ("tenant_id", "table_id", "record_id", "version", "action", "changes", "user_id", "at")
_HISTORY_TABLE = RecordHistory.__table__
_COUNTERS_TABLE = AutonumberCounter.__table__
#: part of the placeholder of an autonumber in a history text built before the number is known
_PLACEHOLDER_KEY = secrets.token_hex(12)
#: keys of a record's body that are not fields and are ignored on write
_IGNORED_KEYS = frozenset(WRITABLE_META) | frozenset(SYSTEM_OUT) | {"parent_id", "position", "deleted_at"}
#: compiled write plans per table schema (see ``_write_plan``)
_WRITE_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FIELD, _CHILDREN, _M2M = 0, 1, 2


def _history_dumps(conn):
    """changes -> the JSON text of the history column: orjson (compact, UTF-8 kept, the same
    values as the column type's own serialiser writes), or that serialiser for anything
    orjson refuses."""
    std = conn.dialect._json_serializer or json.dumps  # what the JSON column's type would use
    if orjson is None:
        return std

    def dumps(value):
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            return std(value)
    return dumps


def _history_tuples(conn, entries: list[dict]) -> list[tuple]:
    """History entries (dicts with every key) as rows ready for the driver."""
    pat = bulk.processors(conn, _HISTORY_TABLE, ("at",))[0]
    dumps = _history_dumps(conn)
    return [(e["tenant_id"], e["table_id"], e["record_id"], e["version"], e["action"], dumps(e["changes"]), e["user_id"],
             e["at"] if pat is None else pat(e["at"])) for e in entries]


def _write_scope(method):
    """Marks a write method: history rows of the writes it makes, its hooks' writes
    included, are buffered and inserted in one statement when the outermost one returns
    (dropped if it fails: the caller rolls back)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        info = self.session.info
        depth = info.get(_WRITE_SCOPE, 0)
        info[_WRITE_SCOPE] = depth + 1
        done = False
        try:
            result = method(self, *args, **kwargs)
            done = True
        finally:
            info[_WRITE_SCOPE] = depth
            if not depth:
                rows = info.pop(_HISTORY_ROWS, None)
                if done and rows:
                    self._begin()
                    bulk.insert_many(self.conn, _HISTORY_TABLE, HISTORY_COLUMNS, rows)
        return result
    return wrapper


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
        self._conn = None

    @property
    def conn(self):
        # Asked ~100 times per order through its rules: kept for the session's current
        # (innermost) transaction. A new one -- a savepoint (``begin_nested`` emits SAVEPOINT
        # only when the session is asked for its connection), a commit, a rollback -- asks
        # the session again.
        s = self.session
        tx = s.get_nested_transaction() or s.get_transaction()
        kept = self._conn
        if kept is None or kept[0] is not tx or tx is None or kept[1].closed or kept[1].invalidated:
            kept = self._conn = (tx, s.connection())
            if tx is None:  # connection() began the transaction: key the connection by it
                self._conn = (s.get_nested_transaction() or s.get_transaction(), kept[1])
        return kept[1]

    def _begin(self) -> None:
        """Before a write of more than one statement on a session in autocommit (see
        ``ONE_STATEMENT``): a transaction of its own, committed or rolled back with the
        request's session (the driver sends COMMIT or ROLLBACK while one is open)."""
        if self.session.info.pop(ONE_STATEMENT, False):
            self.conn.exec_driver_sql("BEGIN")

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

    def _serializer(self, schema: TableSchema, access: Access, fields: list[str] | None = None, layout=None):
        """A function row -> record dict, compiled from the schema's output plan.
        ``layout``: the column keys of the rows in order (rows of ``select(table, ...)``):
        values are then read by position, not looked up by name."""
        plan = schema.output_plan(self.ctx, frozenset(access.hidden), frozenset(access.masked),
                                  tuple(fields) if fields is not None else None)
        ts = schema.system_specs
        read_time = ts["created_at"].type.reader(ts["created_at"], self.ctx)
        child = schema.parent_table_id is not None
        if layout is not None:
            return _positional_serializer(plan, read_time, child, {k: i for i, k in enumerate(layout)})

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
                ser = self._serializer(child, caccess)
                for pid, rows in rowcache.children_of(self.conn, child.table, ids).items():
                    by_id[pid][spec.api_name] = [ser(row) for row in rows]
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
        if for_update and deleted is False and self.ctx.dialect == "sqlite" and not access.rows:
            # SQLite: a writer holds the database's write lock (BEGIN IMMEDIATE), so the row
            # as this transaction last read or wrote it is the row as it is.
            row = rowcache.rows_by_id(self.conn, t, [record_id]).get(record_id)
            if row is None or row.deleted_at is not None:
                raise NotFound(f"record {record_id} of table {schema.api_name}", f"表 {schema.api_name} 的记录 {record_id}")
            return row
        if for_update and deleted is False and not access.rows:
            # PostgreSQL: a row this transaction wrote is locked by it until the end, so the
            # row as it wrote it is the row as it is (a rule's update of the order it created).
            row = rowcache.own_row(self.conn, t, record_id)
            if row is not None and row.deleted_at is None:
                return row
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
        t = schema.table
        limit = max(1, min(int(q.limit or 50), MAX_PAGE))

        def build() -> pages.PagePlan:
            where, comp = self._where(schema, q, access)
            sort_cols = comp.sort_columns(schema, q.sorts)
            base = select(t, *[e.label(f"_s{i}") for i, (e, _) in enumerate(sort_cols)]).where(where)
            return pages.PagePlan(where, sort_cols, base, base.order_by(*order_by(sort_cols)).limit(limit + 1))

        plan = pages.plan_for(self, schema, q, access, limit, build)
        sort_cols = plan.sort_cols
        self.cache.advisor.note_page(self, schema, q.filter, q.sorts)
        if q.cursor:
            stmt = (plan.base.where(keyset_after(sort_cols, decode_cursor(q.cursor, len(sort_cols))))
                    .order_by(*order_by(sort_cols)).limit(limit + 1))
        else:
            stmt = plan.stmt
            if q.offset:
                stmt = stmt.offset(max(0, int(q.offset)))
        conn = self.conn
        rows = conn.execute(stmt).all()
        has_more = len(rows) > limit
        rows = rows[:limit]
        rowcache.put(conn, t, rows)  # a rule that picked a row reads it again
        ser = self._serializer(schema, access, q.fields, layout=t.c.keys())
        records = [ser(r) for r in rows]
        self._attach_related(schema, records, access, q.fields, with_children)
        page = {"records": records, "has_more": has_more, "next_cursor": None}
        if has_more and rows:
            last = rows[-1]._mapping
            page["next_cursor"] = encode_cursor([last[f"_s{i}"] for i in range(len(sort_cols))])
        if count:
            page["total"] = conn.execute(select(func.count()).select_from(t).where(plan.where)).scalar_one()
        return page

    def _where(self, schema: TableSchema, q: Query, access: Access):
        """The SQL condition of a query for this actor (filter, deleted or not, row scope, search)."""
        access.require_read(schema)
        if not q.checked:
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
        return and_(*conds), comp

    def count(self, schema: TableSchema, filter_node=None) -> int:
        where, _ = self._where(schema, Query(filter=filter_node), self.access(schema))
        return self.conn.execute(select(func.count()).select_from(schema.table).where(where)).scalar_one()

    # -- writing ---------------------------------------------------------------------
    def _write_plan(self, schema: TableSchema, access: Access, partial: bool):
        """The conversion of a record body, compiled once per table schema and permission set
        and bound to this call's context: ({api_name: (kind, column, convert)} of the fields
        the actor may write, the fields whose default is filled in on create, the required
        fields). A batch of 5,000 rows then costs a dict lookup and one bound converter per
        value instead of a type dispatch and permission checks per value."""
        key = (frozenset(access.hidden), frozenset(access.read_only))
        plans = _WRITE_PLANS.get(schema)
        if plans is None:
            plans = _WRITE_PLANS[schema] = {}
        plan = plans.get(key)
        if plan is None:
            writable, with_default, required = {}, [], []
            for spec in schema.fields.values():
                t = spec.type
                if spec.api_name not in access.hidden and not t.computed and spec.api_name not in access.read_only \
                        and spec.api_name not in _IGNORED_KEYS:
                    kind = _CHILDREN if t.name == "sub_table" else (
                        _M2M if t.name == "link" and t.relationship(spec) == "many_to_many" else _FIELD)
                    writable[spec.api_name] = (kind, spec)
                if t.storage == "column" and not t.computed and t.has_column(spec):
                    with_default.append(spec)
                if spec.required and not t.computed and spec.api_name not in access.hidden:
                    required.append(spec)
            plan = plans[key] = (writable, tuple(with_default), tuple(required))
        writable, with_default, required = plan
        ctx = self.ctx
        convs = {name: (kind, spec.column_name, spec.type.writer(spec, ctx)) for name, (kind, spec) in writable.items()}
        # defaults: worked out when a record first leaves the field out, then reused in the call
        defaults = () if partial else tuple((spec.api_name, spec.column_name, spec, {}) for spec in with_default)
        return convs, defaults, required

    def _convert(self, schema: TableSchema, values: dict, access: Access, pointer: str, *, partial: bool,
                 errors: list, existing: dict | None = None, plan=None):
        """User values -> (column values, sub-table rows, many-to-many ids), collecting errors.
        ``plan``: ``_write_plan(schema, access, partial)``, when converting many records."""
        if not isinstance(values, dict):
            errors.append(field_error(pointer or "/", "a record must be an object {field: value}", "记录应为对象 {字段: 值}"))
            return {}, {}, {}
        convs, defaults, required = plan or self._write_plan(schema, access, partial)
        cols, children, m2m = {}, {}, {}
        for key, value in values.items():
            entry = convs.get(key)
            if entry is None:
                if key not in _IGNORED_KEYS:
                    self._refuse(schema, access, key, pointer, errors)
                continue
            kind, column, conv = entry
            try:
                stored = conv(value)
            except FieldValueError as e:
                errors.append(field_error(f"{pointer}/{key}", f"{key}: {e.message}", f"{key}: {e.message_zh}", code="invalid_value"))
                continue
            if kind == _FIELD:
                cols[column] = stored
            elif kind == _CHILDREN:
                children[key] = stored
            else:
                m2m[key] = stored
        for name, column, spec, known in defaults:
            if column not in cols and name not in values:
                if known:
                    d = known["v"]
                else:
                    try:
                        d = spec.type.default(spec, self.ctx)
                    except FieldValueError:
                        d = None
                    known["v"] = d
                if d is not None:
                    cols[column] = d
        # Required fields: on create all of them, on update the ones being emptied.
        for spec in required:
            if spec.type.name == "sub_table":
                if (not partial or spec.api_name in children) and not children.get(spec.api_name):
                    errors.append(field_error(f"{pointer}/{spec.api_name}", f"'{spec.api_name}' needs at least one row", f"'{spec.api_name}' 至少需要一行", code="required"))
                continue
            if spec.column_name in cols or not partial:
                v = cols.get(spec.column_name)
                if v is None or spec.type.is_empty(v):
                    errors.append(field_error(f"{pointer}/{spec.api_name}", f"'{spec.api_name}' is required", f"'{spec.api_name}' 为必填项", code="required"))
        return cols, children, m2m

    @staticmethod
    def _refuse(schema: TableSchema, access: Access, key: str, pointer: str, errors: list):
        """The error for a key the actor may not write: unknown, computed or read-only."""
        spec = schema.fields.get(key)
        if spec is None or key in access.hidden:
            names = ", ".join(n for n in schema.fields if n not in access.hidden)
            errors.append(field_error(f"{pointer}/{key}", f"unknown field '{key}'; fields: {names}",
                                      f"没有字段 '{key}';现有字段: {names}", code="unknown_field"))
        elif spec.type.computed:
            errors.append(field_error(f"{pointer}/{key}", f"'{key}' is computed and cannot be written",
                                      f"'{key}' 是自动计算的字段,不能写入", code="read_only"))
        else:
            errors.append(field_error(f"{pointer}/{key}", f"you may not change '{key}'", f"你没有修改 '{key}' 的权限", code="read_only"))

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
            render = autonumber_renderer(pattern, local)
            column = spec.column_name
            for i, cols in enumerate(cols_list):
                cols[column] = render(first + i)

    def allocate_sequence(self, field_id: int, period: str, n: int) -> int:
        """Reserves n numbers; the counter row is locked until commit, so concurrent
        inserts never get the same number (PostgreSQL row lock / SQLite write lock)."""
        self._begin()
        sql = _COUNTER_SQL_PG if self.ctx.dialect == "postgresql" else _COUNTER_SQL_SQLITE
        last = self.conn.exec_driver_sql(sql, (field_id, period, n)).scalar_one()
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
        self.add_history(entries)

    def add_history(self, entries: list[dict]) -> None:
        """History rows (all keys given). Inside a write they are inserted together when the
        outermost write of the call is done: one statement for a record, its items and
        everything its rules changed."""
        self._add_history_rows(_history_tuples(self.conn, entries))

    def _add_history_rows(self, rows: list[tuple]) -> None:
        """History rows as tuples ready for the driver (``HISTORY_COLUMNS``)."""
        info = self.session.info
        if info.get(_WRITE_SCOPE):
            info.setdefault(_HISTORY_ROWS, []).extend(rows)
        else:
            bulk.insert_many(self.conn, _HISTORY_TABLE, HISTORY_COLUMNS, rows)

    def create(self, schema: TableSchema, values: dict) -> dict:
        return self.create_many(schema, [values])[0]

    def create_many(self, schema: TableSchema, rows: list[dict], **kw):
        """See ``_create_many``. A batch pauses Python's cycle collector while it works: its
        thousands of new dicts and lists would otherwise set off collections that walk every
        live object again and again (40% of a 5,000-row batch's time), for no cycle to find."""
        if len(rows) < GC_PAUSE_ROWS or not gc.isenabled():
            return self._create_many(schema, rows, **kw)
        gc.disable()
        try:
            return self._create_many(schema, rows, **kw)
        finally:
            gc.enable()

    @_write_scope
    def _create_many(self, schema: TableSchema, rows: list[dict], *, skip_invalid: bool = False, parent_ids: list | None = None,
                     pointer: str = "/records", return_records: bool = True):
        """Inserts rows in one statement. All-or-nothing unless skip_invalid; then the
        result lists the rows that were refused with their errors.

        Without ``return_records`` and without a hook that wants the table (no computed
        fields, no rules on it) it is a bulk load: ids are allocated first, rows and their
        history rows go in as driver-ready tuples in one statement each (COPY on
        PostgreSQL) and nothing is read back (``storage/bulk.py``)."""
        access = self.access(schema)
        access.require_write(schema)
        errors: list[dict] = []
        converted, pointers, bad_rows = [], [], set()
        plan = self._write_plan(schema, access, partial=False)
        single = len(rows) == 1 and pointer == "/records"
        for i, values in enumerate(rows):
            ptr = "" if single else f"{pointer}/{i}"
            before = len(errors)
            cols, children, m2m = self._convert(schema, values, access, ptr, partial=False, errors=errors, plan=plan)
            if children:
                self._precheck_children(schema, children, ptr, errors)
            if len(errors) > before:
                bad_rows.add(i)
            converted.append((cols, children, m2m))
            pointers.append(ptr)
        self._check_links(schema, [c for c, _, _ in converted], [m for _, _, m in converted], pointers, errors)
        self._rows_with_errors(errors, pointers, pointer, single, bad_rows)
        for hook in self.hooks.before_write_for("create"):
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
        keep = [i for i in range(len(rows)) if i not in bad_rows] if bad_rows else list(range(len(rows)))
        hooks = self.hooks.after_write_for(self, schema) if keep else []
        if keep and not (return_records or hooks):
            results = self._insert_lean(schema, rows, converted, keep, pointers, parent_ids)
        else:
            results = self._insert_returning(schema, rows, converted, keep, pointers, parent_ids, access, hooks, return_records)
        if skip_invalid:
            return {"created": [r for r in results if r is not None],
                    "errors": [e for e in errors], "skipped": sorted(bad_rows)}
        return results

    @staticmethod
    def _rows_with_errors(errors: list, pointers: list, pointer: str, single: bool, bad_rows: set):
        """Adds to ``bad_rows`` the rows an error points into (one dict lookup per error)."""
        if not errors:
            return
        if single:
            if any(e["pointer"] == "" or e["pointer"].startswith("/") for e in errors):
                bad_rows.add(0)
            return
        index = {p: i for i, p in enumerate(pointers)}
        prefix = pointer + "/"
        for e in errors:
            ep = e["pointer"]
            if ep.startswith(prefix):
                i = index.get(prefix + ep[len(prefix):].split("/", 1)[0])
                if i is not None:
                    bad_rows.add(i)

    def _system_values(self, schema: TableSchema) -> dict:
        now = self.ctx.now or utcnow()
        uid = self.actor.user_id
        return {"version": 1, "created_at": now, "updated_at": now, "created_by": uid, "updated_by": uid}

    def _insert_lean(self, schema: TableSchema, rows: list, converted: list, keep: list, pointers: list,
                     parent_ids: list | None) -> list:
        """The bulk load: see ``create_many``. Returns [id or None] per given row."""
        self._begin()
        conn = self.conn
        t = schema.table
        n = len(keep)
        ids = bulk.allocate_ids(conn, t, n)
        cols_list = [converted[i][0] for i in keep]
        self._allocate_autonumbers(schema, cols_list)
        keys = sorted(set().union(*cols_list))
        system = self._system_values(schema)
        head = ("id", *system, *(("parent_id", "position") if parent_ids is not None else ()))
        columns = (*head, *keys)
        procs = bulk.processors(conn, t, columns)
        fixed = tuple(v if p is None else p(v) for v, p in zip(system.values(), procs[1:len(system) + 1]))
        convert = [(j, p) for j, p in enumerate(procs[len(head):]) if p is not None]
        history = self._history_plan(schema)
        if history is not None:  # history rows made as the rows are, their JSON written at once
            dumps = _history_dumps(conn)
            at_proc = bulk.processors(conn, _HISTORY_TABLE, ("at",))[0]
            at = system["created_at"] if at_proc is None else at_proc(system["created_at"])
            tenant_id, table_id, uid = self.tenant_id, schema.id, self.actor.user_id
        results: list[Any] = [None] * len(rows)
        table_rows, history_rows = [], []
        for k, i in enumerate(keep):
            cols = cols_list[k]
            cols_list[k] = None  # no second copy of the batch kept alive: the tuple replaces it
            vals = [cols.get(c) for c in keys]
            for j, p in convert:
                v = vals[j]
                if v is not None:
                    vals[j] = p(v)
            rid = ids[k]
            if parent_ids is not None:
                table_rows.append((rid, *fixed, *parent_ids[i], *vals))
            else:
                table_rows.append((rid, *fixed, *vals))
            results[i] = rid
            if history is not None:
                history_rows.append((tenant_id, table_id, rid, 1, "create", dumps(self._shown_changes(schema, cols, rows[i], history)),
                                     uid, at))
            _, children, m2m = converted[i]
            converted[i] = (None, children, m2m)
        bulk.insert_many(conn, t, columns, table_rows)
        del table_rows
        for k, i in enumerate(keep):
            _, children, m2m = converted[i]
            if m2m or children:
                for name, dst in m2m.items():
                    self._set_m2m(schema.fields[name], ids[k], dst)
                for name, child_rows in children.items():
                    self._write_children(schema, schema.fields[name], ids[k], child_rows, f"{pointers[i]}/{name}", new_parent=True)
        if history_rows:
            self._add_history_rows(history_rows)
        return results

    def _history_plan(self, schema: TableSchema):
        return None if schema.definition.get("history") is False else schema.history_plan(self.ctx)

    def _insert_returning(self, schema, rows, converted, keep, pointers, parent_ids, access, hooks, return_records) -> list:
        """The write whose new records someone looks at (the caller, computed fields, rules):
        INSERT … RETURNING the whole rows, then the hooks, per record."""
        insert_rows = []
        system = self._system_values(schema)
        # PostgreSQL, one record with nothing else to write after it (no sub-table rows or
        # links, no hooks): its history row goes in with it, in the same statement.
        merged = (len(keep) == 1 and not hooks and self.ctx.dialect == "postgresql" and not converted[keep[0]][1]
                  and not converted[keep[0]][2] and schema.definition.get("history") is not False)
        for i in keep:
            cols = converted[i][0]
            cols.update(system)
            if parent_ids is not None:
                cols["parent_id"], cols["position"] = parent_ids[i]
            insert_rows.append(cols)
        if insert_rows:
            folded = self._autonumbers_in_sql(schema) if merged else None
            if folded is None:
                self._begin()  # more than the one statement below
                self._allocate_autonumbers(schema, insert_rows)
            # Same keys in every row: one executemany (insertmanyvalues) with RETURNING ids.
            all_keys = set().union(*insert_rows)
            insert_rows = [{k: r.get(k) for k in all_keys} for r in insert_rows]
            if merged:
                inserted = self._insert_one_with_history(schema, rows[keep[0]], insert_rows[0], folded)
            else:
                inserted = self.conn.execute(statements.insert_returning(schema.table, whole=True), insert_rows).all()
            ids = [r.id for r in inserted]
            rowcache.put(self.conn, schema.table, inserted, written=True)  # all the rows the statement wrote
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
                self._write_children(schema, schema.fields[name], rid, child_rows, f"{pointers[i]}/{name}", new_parent=True)
            results[i] = rid
            if not merged:
                history.append({"record_id": rid, "version": 1, "action": "create",
                                "changes": self._shown_changes(schema, converted[i][0], rows[i])})
        self._history(schema, history)
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
        return results

    def _autonumbers_in_sql(self, schema: TableSchema) -> list | None:
        """The autonumber fields of a table as ``_insert_one_with_history`` numbers them in its
        statement: [(spec, period, head, width, tail)], or None when one of them has a pattern
        the statement cannot render (then they are allocated first, as for a batch)."""
        out = []
        for spec in schema.fields.values():
            if spec.type.name != "autonumber":
                continue
            pattern = spec.type.pattern(spec)
            local = Autonumber.local_now(self.ctx)
            parts = autonumber_parts(pattern, local)
            if parts is None or spec.type.reader(spec, self.ctx) is not None:
                return None
            out.append((spec, autonumber_period(pattern, local), *parts))
        return out

    def _insert_one_with_history(self, schema: TableSchema, given: dict, cols: dict, autonumbers: list | None) -> list:
        """PostgreSQL: one new record, its autonumbers (``autonumbers``: see
        ``_autonumbers_in_sql``; None when already in ``cols``) and its history row in one
        statement; returns [row]."""
        conn = self.conn
        t = schema.table
        params = {}
        for k, (spec, period, head, width, tail) in enumerate(autonumbers or ()):
            # where the number goes in the history's JSON text: a quoted token no value can contain
            ph = f"zs-autonumber-{_PLACEHOLDER_KEY}-{k}"
            cols[spec.column_name] = ph
            params.update({f"a{k}_field": spec.id, f"a{k}_period": period, f"a{k}_head": head, f"a{k}_tail": tail,
                           f"a{k}_ph": f'"{ph}"'})
        changes = _history_dumps(conn)(self._shown_changes(schema, cols, given))
        numbered = tuple((spec.column_name, width) for spec, _, _, width, _ in autonumbers or ())
        for column, _ in numbered:
            del cols[column]
        params.update({f"v_{c}": v for c, v in cols.items()})
        params.update(h_tenant_id=self.tenant_id, h_table_id=schema.id, h_version=1, h_action="create",
                      h_changes=changes, h_user_id=self.actor.user_id, h_at=cols["created_at"])
        stmt = statements.insert_with_history(t, _HISTORY_TABLE, tuple(sorted(cols)), numbered, _COUNTERS_TABLE)
        inserted = conn.execute(stmt, params).all()
        # the row cache's write count of this table, as a statement starting INSERT INTO would bump it
        bulk.count_write(conn, t)
        return inserted

    def _shown_changes(self, schema: TableSchema, cols: dict, given: dict, plan: tuple | None = None) -> dict:
        """{field: [None, value as records show it]} for a create's history entry: the fields
        the user sent, plus autonumbers and defaults filled in for them. ``plan``: the
        table's ``history_plan`` (looked up once for a batch)."""
        out = {}
        for name, col, read in plan or schema.history_plan(self.ctx):
            if col in cols:
                v = cols[col]
                if v is not None or name in given:
                    out[name] = [None, v if read is None else read(v)]
        for name in given:
            if name not in out and name in schema.fields:  # sub-tables, to-many links
                out[name] = [None, _jsonable({name: given[name]}).get(name)]
        return out

    def _fetch_many(self, schema, ids, access):
        ser = self._serializer(schema, access)
        recs = [ser(r) for r in rowcache.rows_by_id(self.conn, schema.table, ids).values()]
        self._attach_related(schema, recs, access, None, with_children=True)
        return {r["id"]: r for r in recs}

    def _set_m2m(self, spec: FieldSpec, src_id: int, dst_ids: list[int]):
        j = junction_table(spec)
        self.conn.execute(delete(j).where(j.c.src_id == src_id))
        if dst_ids:
            self.conn.execute(insert(j), [{"src_id": src_id, "dst_id": d} for d in dst_ids])

    def _write_children(self, schema: TableSchema, spec: FieldSpec, parent_id: int, rows: list[dict], pointer: str,
                        new_parent: bool = False):
        """Rows with an id update that child row, rows without one are added, and child
        rows not mentioned are removed (soft delete); the list order is the position.

        The parent's own write is under way and recomputes the parent's computed fields
        when its hooks run: the child rows' hooks need not (``PARENTS_BEING_WRITTEN``)."""
        child = self.schema(spec.options["table"])
        ct = child.table
        existing = {} if new_parent else {r.id: r for r in rowcache.children_of(self.conn, ct, [parent_id])[parent_id]}
        writing = self.session.info.setdefault(PARENTS_BEING_WRITTEN, set())
        key = (schema.id, parent_id)
        outer = key in writing
        writing.add(key)
        try:
            self._write_child_rows(child, spec, parent_id, rows, pointer, existing)
        finally:
            if not outer:
                writing.discard(key)

    def _write_child_rows(self, child: TableSchema, spec: FieldSpec, parent_id: int, rows: list[dict], pointer: str,
                          existing: dict):
        ct = child.table
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

    @_write_scope
    def update(self, schema: TableSchema, record_id: int, values: dict, *, expected_version: int | None = None,
               position: int | None = None, pointer: str = "") -> dict:
        access = self.access(schema)
        access.require_write(schema)
        self._begin()
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
        # A rule's write (depth > 0) returns to nobody who shows it: its record carries the
        # related rows (items, links) only of the fields it writes, which saves a query per
        # relation per cascaded update. What the API returns stays complete.
        related = None if self.depth == 0 else [k for k in values if k in schema.fields]
        self._attach_related(schema, [before], access, related, with_children=bool(children))
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
        cols.update(updated_at=now, updated_by=self.actor.user_id)
        if position is not None:
            cols["position"] = position
        written = self.conn.execute(statements.set_by_id(t, sorted(cols), versioned=True),
                                    statements.set_params(record_id, cols, row.version)).all()
        rowcache.put(self.conn, t, written, written=True)
        if len(written) != 1:
            raise Conflict(f"record {record_id} was changed at the same time; reload and try again",
                           message_zh=f"记录 {record_id} 正被同时修改,请刷新后重试")
        for name, dst in m2m.items():
            self._set_m2m(schema.fields[name], record_id, dst)
        for name, child_rows in children.items():
            self._write_children(schema, schema.fields[name], record_id, child_rows, f"{pointer}/{name}")
        after = self.get_unchecked(schema, record_id, access, with_children=True, fields=related)
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
                after = self.get_unchecked(schema, record_id, access, with_children=True, fields=related)
        return after

    def nested(self, actor: Actor | None = None) -> "Records":
        """The same transaction one cascade level deeper (rules writing as the platform)."""
        child = Records(self.session, tenant_id=self.tenant_id, actor=actor or Actor(None, "owner", is_system=True),
                        ctx=self.ctx, cache=self.cache, hooks=self.hooks, depth=self.depth + 1)
        child._schemas = self._schemas
        child._conn = self._conn
        return child

    def get_unchecked(self, schema, record_id, access, with_children=True, fields: list[str] | None = None):
        """The record as stored; ``fields``: attach only these relations (columns are all there)."""
        row = rowcache.rows_by_id(self.conn, schema.table, [record_id])[record_id]
        rec = self.serialize(schema, row, access)
        self._attach_related(schema, [rec], access, fields, with_children=with_children and fields is None)
        return rec

    def delete(self, schema: TableSchema, record_id: int, *, expected_version: int | None = None) -> dict:
        return self._set_deleted(schema, record_id, True, expected_version)

    def restore(self, schema: TableSchema, record_id: int) -> dict:
        return self._set_deleted(schema, record_id, False, None)

    @_write_scope
    def _set_deleted(self, schema, record_id, deleting: bool, expected_version):
        access = self.access(schema)
        access.require_write(schema)
        self._begin()
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


def _positional_serializer(plan, read_time, child: bool, at: dict):
    """``Records._serializer`` for rows whose columns sit at the positions ``at`` gives."""
    i_id, i_ver, i_cat, i_uat, i_cby, i_uby = (at[k] for k in SYSTEM_OUT)
    i_del = at.get("deleted_at")
    i_parent, i_pos = (at["parent_id"], at["position"]) if child else (None, None)
    cols = tuple((name, at[col], read) for name, col, read in plan)

    def serialize(row) -> dict:
        out = {"id": row[i_id], "version": row[i_ver], "created_at": read_time(row[i_cat]),
               "updated_at": read_time(row[i_uat]), "created_by": row[i_cby], "updated_by": row[i_uby]}
        if child:
            out["parent_id"] = row[i_parent]
            out["position"] = row[i_pos]
        deleted = None if i_del is None else row[i_del]
        if deleted is not None:
            out["deleted_at"] = read_time(deleted)
        for name, i, read in cols:
            v = row[i]
            out[name] = v if read is None else read(v)
        return out
    return serialize


#: One upsert per allocation: the first number of a period creates the counter row, later
#: ones add to it. Straight to the driver: SQLAlchemy's statement machinery around it cost
#: more than running it, on every create of a table with an autonumber.
_COUNTER_SQL = ("INSERT INTO autonumber_counters (field_id, period, value) VALUES ({p}, {p}, {p}) "
                "ON CONFLICT (field_id, period) DO UPDATE SET value = autonumber_counters.value + excluded.value "
                "RETURNING value")
_COUNTER_SQL_SQLITE, _COUNTER_SQL_PG = _COUNTER_SQL.format(p="?"), _COUNTER_SQL.format(p="%s")


def _jsonable(values: dict) -> dict:
    try:
        return json.loads(json.dumps(values, default=str, ensure_ascii=False))
    except (TypeError, ValueError):
        return {}


__all__ = ["Records", "WriteEvent", "Hooks", "Query", "FilterError"]

"""Compiled table schemas and the DDL that keeps physical tables in step with metadata.

A ``TableSchema`` is a user table's metadata compiled once: its fields with their types
and the SQLAlchemy ``Table`` of ``t_<id>``. It is cached per (table id, schema_version),
so a request costs one small lookup; any definition change bumps ``schema_version``. The
cache keeps the most recently used tables only (``SCHEMA_CACHE_TABLES``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex

from .. import fields as ft
from . import sqlcache
from ..errors import NotFound
from ..fields.base import FieldSpec
from ..models import Field as FieldRow
from ..models import UserTable

ID = BigInteger().with_variant(Integer, "sqlite")
SYSTEM_COLUMNS = ("id", "version", "created_at", "updated_at", "created_by", "updated_by", "deleted_at")
#: System columns that can be used by name in filters, sorts and output.
SYSTEM_FIELDS = {"id": "number", "version": "number", "created_at": "datetime", "updated_at": "datetime",
                 "created_by": "created_by", "updated_by": "modified_by"}
#: Field types indexed automatically: the ones people filter and sort on.
AUTO_INDEX = {"single_select", "link", "date", "datetime", "autonumber"}


@dataclass(eq=False)
class TableSchema:
    id: int
    tenant_id: int
    api_name: str
    definition: dict
    schema_version: int
    parent_table_id: int | None
    fields: dict[str, FieldSpec]
    table: Table
    system_specs: dict[str, FieldSpec] = field(default_factory=dict)
    #: compiled output plans, see ``output_plan`` (the schema object is replaced on any change)
    _plans: dict = field(default_factory=dict, repr=False)

    def output_plan(self, ctx, hidden: frozenset, masked: frozenset, fields: tuple | None) -> tuple:
        """The columns a record shows, compiled once per (timezone, permissions, field
        selection): ((api_name, column, reader or None), ...). Reading 50 rows then costs a
        tuple walk per row instead of a type dispatch per field per row."""
        key = (ctx.tz, ctx.locale, hidden, masked, fields)
        plan = self._plans.get(key)
        if plan is None:
            out = []
            for spec in self.fields.values():
                if spec.api_name in hidden or (fields is not None and spec.api_name not in fields):
                    continue
                if not spec.type.has_column(spec):
                    continue  # sub-tables and to-many links are attached separately
                read = spec.type.reader(spec, ctx)
                if spec.api_name in masked and hasattr(spec.type, "mask"):
                    read = _masking(read, spec)
                out.append((spec.api_name, spec.column_name, read))
            plan = tuple(out)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def history_plan(self, ctx) -> tuple:
        """The output plan of what a user writes: the fields with their own column (system
        columns such as created_at are not part of a create's history)."""
        key = ("history", ctx.tz, ctx.locale)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = tuple(p for p in self.output_plan(ctx, frozenset(), frozenset(), None)
                                            if self.fields[p[0]].type.storage == "column")
        return plan

    @property
    def physical_name(self) -> str:
        return f"t_{self.id}"

    @property
    def label(self):
        return self.definition.get("label") or self.api_name

    @property
    def is_child(self) -> bool:
        return self.parent_table_id is not None

    def field(self, api_name: str) -> FieldSpec:
        spec = self.fields.get(api_name) or self.system_specs.get(api_name)
        if spec is None:
            from ..fields.base import FilterError

            names = ", ".join(list(self.fields)[:40])
            raise FilterError(f"unknown field '{api_name}' in table {self.api_name}; fields: {names}",
                              f"表 {self.api_name} 中没有字段 '{api_name}';现有字段: {names}")
        return spec

    def column(self, spec: FieldSpec):
        return self.table.c[spec.column_name]

    def stored_fields(self):
        """Fields with their own column on this table."""
        return [f for f in self.fields.values() if f.type.storage == "column" and f.type.column_type(f) is not None]

    def sub_tables(self):
        return [f for f in self.fields.values() if f.type.name == "sub_table"]


def _masking(read, spec):
    mask = spec.type.mask
    if read is None:
        return lambda v: mask(v, spec)
    return lambda v: mask(read(v), spec)


def _system_specs(table_id: int) -> dict[str, FieldSpec]:
    specs = {}
    for name, tname in SYSTEM_FIELDS.items():
        spec = FieldSpec(id=0, api_name=name, type=ft.get(tname), definition={"label": name}, table_id=table_id, physical=name)
        specs[name] = spec
    return specs


def physical_table(row: UserTable, specs: list[FieldSpec]) -> Table:
    md = MetaData()
    cols = [
        Column("id", ID, primary_key=True, autoincrement=True),
        Column("version", Integer, nullable=False, default=1),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("created_by", ID, nullable=True),
        Column("updated_by", ID, nullable=True),
        Column("deleted_at", DateTime, nullable=True),
    ]
    if row.parent_table_id:
        cols += [Column("parent_id", ID, nullable=False), Column("position", Integer, nullable=False, default=0)]
    for spec in specs:
        if spec.type.storage != "column":
            continue
        ctype = spec.type.column_type(spec)
        if ctype is not None:
            cols.append(Column(spec.column_name, ctype, nullable=True))
    # Owned: its cached SQL statements leave with the schema (sqlcache.py).
    return sqlcache.own(Table(f"t_{row.id}", md, *cols))


def compile_schema(row: UserTable, field_rows: list[FieldRow]) -> TableSchema:
    specs = [
        FieldSpec(id=f.id, api_name=f.api_name, type=ft.get(f.type), definition=f.definition or {},
                  table_id=row.id, position=f.position, physical=f.physical)
        for f in sorted(field_rows, key=lambda f: (f.position, f.id))
        if f.deleted_at is None
    ]
    # Retired columns of soft-deleted or retyped fields stay in the database but not in the Table.
    return TableSchema(
        id=row.id, tenant_id=row.tenant_id, api_name=row.api_name, definition=row.definition or {},
        schema_version=row.schema_version, parent_table_id=row.parent_table_id,
        fields={s.api_name: s for s in specs}, table=physical_table(row, specs),
        system_specs=_system_specs(row.id),
    )


class SchemaCache:
    """Process-wide cache of compiled schemas: the newest compiled version of each table,
    at most ``max_tables`` of them and at most ``max_columns`` physical columns in all
    (least recently used first out; a miss only costs one compile, like a first read).

    The column budget is what bounds memory: a compiled table costs ~5 KB per column (its
    SQLAlchemy ``Table``, field specs and definitions, prebuilt statements), so the order
    hub's 90-column orders table holds ~0.5 MB and 2,000 such tables would hold 1 GB."""

    def __init__(self, max_tables: int = 2000, max_tenants: int = 200, max_columns: int | None = None):
        from ..lru import LruCache
        from ..metagen import MetaCache

        #: what is derived from a tenant's metadata, per metadata stamp (metagen.py)
        self.meta = MetaCache(max_tenants)
        self._by_table: LruCache[TableSchema] = LruCache(max_tables, weigh=lambda s: len(s.table.columns),
                                                         maxweight=max_columns, on_evict=self._let_go)
        from .advisor import IndexAdvisor

        #: indexes for repeated ad-hoc queries (advisor.py); the Platform configures it
        self.advisor = IndexAdvisor()

    @property
    def max_tables(self) -> int:
        return self._by_table.maxsize

    @max_tables.setter
    def max_tables(self, n: int) -> None:
        self._by_table.maxsize = n

    @property
    def max_columns(self) -> int | None:
        return self._by_table.maxweight

    @max_columns.setter
    def max_columns(self, n: int | None) -> None:
        self._by_table.maxweight = n

    @property
    def columns(self) -> int:
        """Physical columns of the compiled tables held now."""
        return self._by_table.weight

    def __len__(self) -> int:
        return len(self._by_table)

    def schemas(self) -> list[TableSchema]:
        """The compiled schemas held now (least recently used first)."""
        return self._by_table.values()

    def _let_go(self, schema: TableSchema) -> None:
        """Whatever else holds a schema the cache no longer holds: its tenant's metadata
        entry (which hands schemas to requests) and SQLAlchemy's cached statements on its
        Table; either would keep it alive beyond this cache's bounds."""
        self.meta.forget_schema(schema)
        sqlcache.forget(schema.table)
        for spec in schema.fields.values():
            junction = spec.__dict__.get("_junction")
            if junction is not None:
                sqlcache.forget(junction)

    def get(self, session, row: UserTable) -> TableSchema:
        hit = self._by_table.get(row.id)
        if hit is not None and hit.schema_version == row.schema_version:
            return hit
        field_rows = list(session.scalars(select(FieldRow).where(FieldRow.table_id == row.id)))
        schema = compile_schema(row, field_rows)
        # Forget what this transaction cached if it rolls back: ids (and so keys) can be reused.
        session.info.setdefault("zs_cached_keys", set()).add((row.id, row.schema_version))
        self._by_table.put(row.id, schema)  # replaces the table's older version
        if hit is not None:
            self._let_go(hit)
        return schema

    def forget(self, keys) -> None:
        for table_id, version in keys:
            gone = self._by_table.pop_if(table_id, lambda s, v=version: s.schema_version == v)
            if gone is not None:
                self._let_go(gone)

    def clear(self):
        for schema in self._by_table.clear():
            self._let_go(schema)
        self.meta.clear()


#: session.info key: table rows this transaction found, by (tenant, reference)
ROWS_KEY = "zs_table_rows"


def find_table_row(session, ref, *, include_children: bool = True) -> UserTable:
    """A table of the session's tenant by api name or id; 404 otherwise.

    Remembered for the rest of the transaction (``metagen.end_of_transaction`` forgets it):
    while metadata changes, the caches are off and a template install looked the same
    tables up ~290 times. A remembered row is the session's own object, so a rename or
    soft delete made through it in this transaction is seen; it is used only while it is
    still in the session (a rolled-back savepoint expunges rows it created) and matches."""
    by_id = isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit())
    if by_id and int(ref) > 2**63 - 1:
        raise NotFound(f"table '{ref}'", f"表 '{ref}'")
    tenant_id = session.info.get("tenant_id")
    key = (tenant_id, int(ref) if by_id else ref)
    memo = session.info.get(ROWS_KEY)
    row = memo.get(key) if memo else None
    if row is not None and row in session and row.deleted_at is None and row.tenant_id == (tenant_id or row.tenant_id) \
            and (row.id == key[1] if by_id else row.api_name == ref):
        if session.autoflush:
            session.flush()  # what the query would have done first
    else:
        q = select(UserTable).where(UserTable.deleted_at.is_(None))
        q = q.where(UserTable.id == int(ref)) if by_id else q.where(UserTable.api_name == ref)
        row = session.scalars(q).first()
        if row is not None:
            session.info.setdefault(ROWS_KEY, {})[key] = row
    if row is None or (not include_children and row.parent_table_id):
        raise NotFound(f"table '{ref}'", f"表 '{ref}'")
    return row


# -- DDL ------------------------------------------------------------------------------

def index_name(table_id: int, column: str) -> str:
    return f"ix_t{table_id}_{column}"


def create_physical(conn: Connection, schema: TableSchema) -> None:
    schema.table.create(conn)
    t = schema.table
    Index(index_name(schema.id, "created_at"), t.c.created_at).create(conn)
    if schema.is_child:
        Index(index_name(schema.id, "parent_id"), t.c.parent_id, t.c.position).create(conn)
    for spec in schema.stored_fields():
        ensure_field_index(conn, schema, spec)


def wants_index(spec: FieldSpec) -> bool:
    d = spec.definition
    if d.get("indexed") is False:
        return False
    return bool(d.get("indexed") or d.get("unique") or spec.type.name in AUTO_INDEX
                or (spec.type.name == "link" and spec.type.relationship(spec) == "many_to_one"))


def ensure_field_index(conn: Connection, schema: TableSchema, spec: FieldSpec) -> None:
    if not wants_index(spec) or spec.type.column_type(spec) is None:
        return
    col = schema.table.c[spec.column_name]
    unique = bool(spec.definition.get("unique")) or spec.type.name == "autonumber"
    # IF NOT EXISTS (PostgreSQL, SQLite) rather than checkfirst, which reflects the table's
    # indexes first: four catalog queries per index, ~300 of an order-hub install's ~1,550
    # statements. Index names are unique in the schema, so the check by name is the same.
    conn.execute(CreateIndex(Index(index_name(schema.id, spec.column_name), col, unique=unique), if_not_exists=True))


def ensure_composite_index(conn: Connection, schema: TableSchema, columns: list[str]) -> None:
    """An index for a saved view's equality filters followed by its sort column."""
    cols = [schema.table.c[c] for c in columns if c in schema.table.c]
    if len(cols) < 2:
        return
    name = index_name(schema.id, "_".join(c.name for c in cols))[:60]
    if covering_index(conn, schema.physical_name, [c.name for c in cols], name) is not None:
        return  # the index advisor (advisor.py) built one for these columns already
    Index(name, *cols).create(conn, checkfirst=True)


def covering_index(conn: Connection, table: str, columns: list[str], name: str | None = None) -> str | None:
    """The name of an index on ``table`` whose leading columns are ``columns`` in that order
    (a saved view's index and the advisor's partial index of live rows serve the same
    pages: a second one would only slow every write), or ``name`` when it exists."""
    from sqlalchemy import inspect

    for ix in inspect(conn).get_indexes(table):
        if ix.get("name") == name or list(ix.get("column_names") or [])[:len(columns)] == list(columns):
            return ix.get("name")
    return None


def add_column(conn: Connection, schema_table: Table, spec: FieldSpec) -> None:
    ctype = spec.type.column_type(spec)
    if spec.type.storage != "column" or ctype is None:
        return
    col = Column(spec.column_name, ctype, nullable=True)
    compiled = col.type.compile(dialect=conn.dialect)
    conn.execute(text(f'ALTER TABLE {schema_table.name} ADD COLUMN "{spec.column_name}" {compiled}'))


def junction_table(spec: FieldSpec) -> Table:
    """The junction table of a many-to-many link, one per compiled field: a new Table per
    call would be a new statement-cache key, so every request compiled its SQL again and
    filled the cache with copies. It leaves with its schema (``SchemaCache._let_go``)."""
    table = spec.__dict__.get("_junction")
    if table is None:
        md = MetaData()
        table = spec.__dict__["_junction"] = sqlcache.own(Table(
            f"j_{spec.id}", md,
            Column("src_id", ID, primary_key=True),
            Column("dst_id", ID, primary_key=True),
            Index(f"ix_j_{spec.id}_dst", "dst_id"),
        ))
    return table


def drop_physical(conn: Connection, name: str) -> None:
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))


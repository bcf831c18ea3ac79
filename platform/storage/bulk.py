"""The bulk write path: many rows of a user table (and their history rows) in one statement.

A batch of 5,000 records used to pay SQLAlchemy's per-row parameter machinery and, on
SQLite, one ``INSERT … RETURNING`` per row (``insertmanyvalues`` keeps the order of the
returned ids by sending rows one at a time there). Here:

* ids are allocated first, in one statement (``SELECT max(id)`` under SQLite's write lock,
  ``nextval`` of the table's sequence on PostgreSQL), so nothing needs to come back;
* each row is one tuple of driver-ready values (the columns' own bind processors, looked up
  once per batch) and the batch goes in one ``executemany`` -- or, on PostgreSQL, one
  ``COPY … FROM STDIN`` from a batch of ``COPY_MIN`` rows up;
* history rows are built as tuples with their JSON already serialised, and go in the same way.

Writes that go around SQLAlchemy's statement events (COPY) count as writes of their table
for the row cache exactly as an INSERT would (``db._count_user_writes``).
"""
from __future__ import annotations

import weakref
from datetime import datetime

from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME

from ..db import _count_user_writes

#: PostgreSQL: batches of at least this many rows go through COPY instead of executemany
COPY_MIN = 50

_SQL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def processors(conn, table, columns) -> list:
    """The bind processor of each column (None where the driver takes the value as is).
    SQLite's DATETIME text is written by ``isoformat`` for naive datetimes (the same text
    as SQLAlchemy's ``%``-format of a dict, a quarter of the time)."""
    dialect = conn.dialect
    out = []
    for c in columns:
        t = table.c[c].type
        p = t._cached_bind_processor(dialect)
        if p is not None and dialect.name == "sqlite":
            impl = t.dialect_impl(dialect)
            if isinstance(impl, SQLITE_DATETIME) and impl._storage_format == SQLITE_DATETIME._storage_format:
                p = _sqlite_datetime(p)
        out.append(p)
    return out


def _sqlite_datetime(slow):
    """SQLite DATETIME text of a naive datetime: 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's
    default storage format); anything else (dates, aware datetimes) by SQLAlchemy's own."""
    def process(value):
        if type(value) is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return slow(value)
    return process


def allocate_ids(conn, table, n: int) -> list[int]:
    """n new ids for ``table``, unique under concurrent inserts.

    SQLite: a writer holds the database's write lock (BEGIN IMMEDIATE), and SQLite itself
    gives a new row max(id) + 1; a transaction without that lock that lost a race fails on
    the primary key (or with SQLITE_BUSY_SNAPSHOT), it never duplicates a row.
    PostgreSQL: the column's own sequence, as a plain INSERT would use it."""
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        seq = _serial_sequence(conn, table)
        rows = conn.exec_driver_sql("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", (seq, n)).scalars().all()
        return list(rows)
    top = conn.exec_driver_sql(f'SELECT max(id) FROM "{table.name}"').scalar()
    start = (top or 0) + 1
    return list(range(start, start + n))


def _serial_sequence(conn, table) -> str:
    d = _sql_for(table)
    seq = d.get("seq")
    if seq is None:
        seq = d["seq"] = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%s, 'id')", (f'"{table.name}"',)).scalar_one()
    return seq


def _sql_for(table) -> dict:
    d = _SQL.get(table)
    if d is None:
        d = _SQL[table] = {}
    return d


def insert_many(conn, table, columns: tuple, rows: list) -> None:
    """Inserts ``rows`` (tuples of driver-ready values in ``columns`` order, see
    ``processors``) into ``table``."""
    if not rows:
        return
    pg = conn.dialect.name == "postgresql"
    if pg and len(rows) >= COPY_MIN:
        _copy(conn, table, columns, rows)
        return
    d = _sql_for(table)
    key = ("insert", pg, columns)
    sql = d.get(key)
    if sql is None:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join(("%s" if pg else "?") for _ in columns)
        sql = d[key] = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
    if len(rows) == 1:
        conn.exec_driver_sql(sql, rows[0])
    else:
        conn.exec_driver_sql(sql, rows)


def _copy(conn, table, columns, rows) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    dbapi = conn.connection.dbapi_connection
    with dbapi.cursor() as cur:
        with cur.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as cp:
            write = cp.write_row
            for r in rows:
                write(r)
    count_write(conn, table)


def count_write(conn, table) -> None:
    """Counts a write of ``table`` by a statement that does not start with ``INSERT INTO``
    (COPY, a CTE) for the row cache, as an INSERT statement would be counted."""
    _count_user_writes(conn, None, f'INSERT INTO "{table.name}"', None, None, True)

"""A psycopg cursor that builds a result's column description once per statement text.

SQLAlchemy reads ``cursor.description`` after every statement. psycopg builds it anew each
time: one ``Column`` per result column, each decoding its name and looking up its type.
Writes return whole rows (``RETURNING``, 15–25 columns here), so on PostgreSQL this was about
a tenth of the CPU of an order going through its rules (``bench/bench_rules.py``; cProfile
with a CPU clock: 113,729 ``Column`` objects for 400 orders).

The columns of a result depend on the statement and on the types of its result columns, so
the description is kept per connection under (statement text, the columns' type oids): the
same SQL after a column changed type gives new oids and a new entry. ``Column`` objects are
plain immutable values; sharing them between results is safe.
"""
from __future__ import annotations

from psycopg import Cursor

#: descriptions kept per connection at most (then the cache starts again)
MAX_ENTRIES = 1000


class DescribedOnceCursor(Cursor):
    @property
    def description(self):
        res = self.pgresult
        query = getattr(self, "_last_query", None)  # the statement as given to execute(): SQLAlchemy's SQL text
        if res is None or query is None or not res.nfields:
            return super().description
        n = res.nfields
        key = (query, tuple(res.ftype(i) for i in range(n)))
        cache = self._conn.__dict__.setdefault("_zs_descriptions", {})
        hit = cache.get(key)
        if hit is None:
            if len(cache) >= MAX_ENTRIES:
                cache.clear()
            hit = cache[key] = super().description
        return hit


def install(engine) -> None:
    """Every psycopg connection of this engine hands out these cursors (``platform/db.py``
    calls it as it makes the engine, before any connection is opened)."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _use_cursor(dbapi_conn, record):
        if dbapi_conn.cursor_factory is Cursor:
            dbapi_conn.cursor_factory = DescribedOnceCursor

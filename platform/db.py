"""Engines and sessions. SQLite runs in WAL mode; PostgreSQL through psycopg 3."""
from __future__ import annotations

import json
import re

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker


def _json(value) -> str:
    # Chinese text stays readable (and a third of the size) in JSON columns such as history.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_USER_WRITE = re.compile(r"\s*(INSERT INTO|UPDATE|DELETE FROM) [tj]_\d", re.I)


def _count_user_writes(conn, _cursor, statement, _params, _context, _many):
    # How many statements have written user tables on this connection: the records service
    # reads a record back after its hooks only when they wrote something.
    if _USER_WRITE.match(statement):
        conn.info["zs_user_writes"] = conn.info.get("zs_user_writes", 0) + 1


def user_writes(conn) -> int:
    return conn.info.get("zs_user_writes", 0)


def make_engine(url: str, **kw) -> Engine:
    engine = _make_engine(url, **kw)
    event.listen(engine, "after_cursor_execute", _count_user_writes)
    return engine


def _make_engine(url: str, **kw) -> Engine:
    kw.setdefault("json_serializer", _json)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **kw,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Autocommit off in the driver; SQLAlchemy emits BEGIN itself (below) so
            # that writes take the lock up front (BEGIN IMMEDIATE) and never deadlock
            # on a read->write upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # 8 MB of page cache per connection: the OS page cache holds the rest, and the
            # resident size of a server with a pool of connections stays small.
            cur.execute("PRAGMA cache_size=-8192")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take the write lock at BEGIN (IMMEDIATE) so that two writers never
            # deadlock upgrading a read lock; readers stay deferred and run concurrently (WAL).
            immediate = conn.get_execution_options().get("zs_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    return create_engine(url, **kw)


def is_sqlite(engine_or_conn) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def writer(engine: Engine) -> Engine:
    """The same engine, marked so that SQLite transactions start with BEGIN IMMEDIATE."""
    return engine.execution_options(zs_write=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)

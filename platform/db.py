"""Engines and sessions. SQLite runs in WAL mode; PostgreSQL through psycopg 3."""
from __future__ import annotations

import json
import re
import time

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker


def _json(value) -> str:
    # Chinese text stays readable (and a third of the size) in JSON columns such as history.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_USER_WRITE = re.compile(r"\s*(?:INSERT INTO|UPDATE|DELETE FROM) \"?([tj]_\d\w*)", re.I)
_SCHEMA_CHANGE = re.compile(r"\s*(?:ALTER|CREATE|DROP)\b", re.I)


def _count_user_writes(conn, _cursor, statement, _params, _context, _many):
    # How many statements have written user tables on this connection, in all and per
    # table: the records service reads a record back after its hooks only when they wrote
    # something, and cached rows (storage/rowcache.py) stay valid until their table is written.
    m = _USER_WRITE.match(statement)
    if m is not None:
        info = conn.info
        info["zs_user_writes"] = info.get("zs_user_writes", 0) + 1
        per = info.get("zs_table_writes")
        if per is None:
            per = info["zs_table_writes"] = {}
        name = m.group(1)
        per[name] = per.get(name, 0) + 1
    elif _SCHEMA_CHANGE.match(statement):
        _forget_rows(conn)


def _forget_rows(conn, *_args) -> None:
    try:
        info = conn.info
    except exc.SQLAlchemyError:
        # The connection was invalidated (the database went away mid-transaction): its rows
        # go with it, and the next transaction's "begin" clears whatever is left. A rollback
        # must never fail here, or a lost database would be answered with a 500, not a 503.
        return
    info.pop("zs_rowcache", None)


def user_writes(conn) -> int:
    return conn.info.get("zs_user_writes", 0)


def table_writes(conn, name: str) -> int:
    per = conn.info.get("zs_table_writes")
    return per.get(name, 0) if per else 0


def make_engine(url: str, **kw) -> Engine:
    engine = _make_engine(url, **kw)
    event.listen(engine, "after_cursor_execute", _count_user_writes)
    # Rows cached for one transaction are forgotten when it ends or a savepoint is undone.
    for name in ("begin", "commit", "rollback", "rollback_savepoint"):
        event.listen(engine, name, _forget_rows)
    return engine


def _make_engine(url: str, **kw) -> Engine:
    kw.setdefault("json_serializer", _json)
    # SQLAlchemy's statement cache, but one that lets a user table's statements go with its
    # compiled schema (storage/sqlcache.py): a process that serves many tenants in turn
    # otherwise keeps hundreds of dead Table objects alive through it.
    from .storage.sqlcache import StatementCache

    size = kw.pop("query_cache_size", 500)
    if size:
        kw["execution_options"] = {"compiled_cache": StatementCache(size), **kw.get("execution_options", {})}
    kw["query_cache_size"] = 0  # the engine's own cache would go unused
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
            # Straight on the driver: every request begins one, and SQLAlchemy's statement
            # machinery around a bare BEGIN costs more than the BEGIN.
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    # A connection is pinged before use only when it sat idle in the pool for a while (a
    # restart or a network cut happens while nobody uses it): SQLAlchemy's pool_pre_ping
    # pinged on every checkout, one more round trip on every request (3 -> 2 for a create).
    # A connection that dies between two requests close together fails that one request
    # with a 503 and is replaced; the rest of the pool is renewed with it.
    ping_idle = kw.pop("ping_after_idle", PING_AFTER_IDLE)
    kw.setdefault("pool_pre_ping", False)
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    engine = create_engine(url, **kw)
    if not kw["pool_pre_ping"]:
        _ping_when_idle(engine, ping_idle)
    from .pg_cursor import install

    install(engine)  # whole rows come back from writes: describe each result once
    return engine


#: seconds a pooled PostgreSQL connection may sit idle before it is pinged at checkout
PING_AFTER_IDLE = 2.0


def _ping_when_idle(engine: Engine, idle: float) -> None:
    @event.listens_for(engine, "checkin")
    def _idle_since(dbapi_conn, record):
        record.info["zs_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, proxy):
        since = record.info.pop("zs_idle_since", None)
        if since is None or time.monotonic() - since < idle:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as e:  # noqa: BLE001 - any failure: the pool replaces this connection
            raise exc.DisconnectionError(f"connection dead after {time.monotonic() - since:.0f} s idle: {e}") from e


def is_sqlite(engine_or_conn) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


def writer(engine: Engine) -> Engine:
    """The same engine, marked so that SQLite transactions start with BEGIN IMMEDIATE."""
    return engine.execution_options(zs_write=True)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)

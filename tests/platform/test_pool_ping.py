"""PostgreSQL pool: a connection that sat idle is pinged before use, so one the server
dropped meanwhile is replaced without the request noticing; a connection checked out again
at once is not pinged (no extra round trip per request)."""
import pytest
from sqlalchemy import text

from zhongshu.platform.db import make_engine


@pytest.fixture
def pg_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("server connections: PostgreSQL only")
    return database_url


def _kill_pooled_backend(engine):
    with engine.connect() as conn:
        pid = conn.execute(text("select pg_backend_pid()")).scalar()
    admin = make_engine(engine.url.render_as_string(hide_password=False))
    with admin.connect() as conn:
        conn.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(pg_url):
    engine = make_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle=0)
    _kill_pooled_backend(engine)
    with engine.connect() as conn:  # pinged, found dead, replaced
        assert conn.execute(text("select 1")).scalar() == 1
    engine.dispose()


def test_without_the_idle_ping_the_dropped_connection_fails_its_first_statement(pg_url):
    engine = make_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle=10**9)
    _kill_pooled_backend(engine)
    with pytest.raises(Exception):
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    with engine.connect() as conn:  # the pool renewed itself after the failure
        assert conn.execute(text("select 1")).scalar() == 1
    engine.dispose()


def test_a_connection_used_again_at_once_is_not_pinged(pg_url, monkeypatch):
    pings = []
    for idle, expected in ((2.0, 0), (0, 1)):
        engine = make_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle=idle)
        real = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda c, real=real: pings.append(1) or real(c))
        pings.clear()
        for _ in range(2):  # two requests one after the other
            with engine.connect() as conn:
                assert conn.execute(text("select 42")).scalar() == 42
        assert len(pings) == expected
        engine.dispose()

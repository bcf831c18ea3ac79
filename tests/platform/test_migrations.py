"""The Alembic history and the models agree, on SQLite and on PostgreSQL."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

import zhongshu.runtime.models  # noqa: F401
from zhongshu.platform.migrations import current, downgrade, upgrade
from zhongshu.platform.models import Base


def test_migrations_create_exactly_the_models(database_url):
    engine = create_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models and migrations disagree; write a revision: {diff}"
    assert current(engine) is not None


def test_migrations_go_down_and_up_again(database_url):
    engine = create_engine(database_url)
    upgrade(engine)
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "tenants" in inspect(engine).get_table_names()

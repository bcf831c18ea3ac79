"""PostgreSQL: a result's column description is built once per statement text and column
types (platform/pg_cursor.py), and a column that changes type is described anew."""
import pytest
from sqlalchemy import text


@pytest.fixture
def pg(platform):
    if platform.dialect != "postgresql":
        pytest.skip("a psycopg cursor: PostgreSQL only")
    return platform


def test_the_same_statement_is_described_once_and_a_new_column_type_anew(pg):
    with pg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE zs_desc_probe (id int, v text)"))
        conn.execute(text("INSERT INTO zs_desc_probe VALUES (1, '42')"))
    q = text("SELECT id, v FROM zs_desc_probe")
    with pg.engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        cur.execute(q.text)
        first = cur.description
        cur.execute(q.text)
        assert cur.description is first  # kept, not rebuilt
        assert [c.name for c in first] == ["id", "v"] and first[1].type_code == 25  # text
        assert conn.execute(q).one() == (1, "42")
    with pg.engine.begin() as conn:
        conn.execute(text("ALTER TABLE zs_desc_probe ALTER COLUMN v TYPE int USING v::int"))
    with pg.engine.connect() as conn:
        cur = conn.connection.driver_connection.cursor()
        cur.execute(q.text)
        assert cur.description[1].type_code == 23  # int4: described anew
        assert conn.execute(q).one() == (1, 42)


def test_records_read_the_right_values_after_a_field_changes_type(owner, pg):
    owner.ok(owner.post("/tables", json={"api_name": "parcels", "fields": [{"api_name": "weight", "type": "text"}]}), 201)
    rec = owner.ok(owner.post("/tables/parcels/records", json={"weight": "2.5"}), 201)
    assert owner.ok(owner.get(f"/tables/parcels/records/{rec['id']}"))["weight"] == "2.5"
    owner.ok(owner.patch("/tables/parcels/fields/weight", json={"type": "number"}))
    assert owner.ok(owner.get(f"/tables/parcels/records/{rec['id']}"))["weight"] == 2.5

"""A single record's create on PostgreSQL runs as one statement without a transaction of
its own (no BEGIN / COMMIT round trips); a create that writes more than that statement
still runs in one transaction: it is saved whole or not at all."""
from __future__ import annotations

import pytest
from sqlalchemy import event

NOTES = {"api_name": "notes", "fields": [
    {"api_name": "no", "type": "autonumber", "options": {"pattern": "N{seq:04}"}},
    {"api_name": "code", "type": "text", "unique": True},
    {"api_name": "lines", "type": "sub_table", "options": {"fields": [{"api_name": "sku", "type": "text", "unique": True}]}},
]}


@pytest.fixture
def notes(owner):
    return owner.ok(owner.post("/tables", json=NOTES), 201)["table"]


def _writes(platform):
    """(statement verb, the driver connection was in autocommit) of every statement that
    writes or opens a transaction (reads left out)."""
    seen = []

    def grab(conn, _cursor, statement, _params, _context, _many):
        verb = statement.split()[0].upper() if statement.strip() else ""
        if verb in ("BEGIN", "INSERT", "UPDATE", "DELETE", "WITH"):
            seen.append((verb, getattr(conn.connection.dbapi_connection, "autocommit", None)))
    event.listen(platform.engine, "before_cursor_execute", grab)
    return seen


def test_a_record_is_created_in_one_statement_with_its_number_and_history(owner, notes, platform):
    seen = _writes(platform)
    rec = owner.ok(owner.post("/tables/notes/records", json={"code": "A"}), 201)
    assert rec["no"] == "N0001" and rec["code"] == "A"
    if platform.dialect == "postgresql":
        assert [verb for verb, _ in seen] == ["WITH"] and seen[0][1] is True, seen
    history = owner.ok(owner.get(f"/tables/notes/records/{rec['id']}/history"))["history"]
    assert [h["action"] for h in history] == ["create"] and history[0]["changes"]["code"] == [None, "A"]
    assert owner.ok(owner.post("/tables/notes/records", json={"code": "B"}), 201)["no"] == "N0002"
    r = owner.post("/tables/notes/records", json={"code": "B"})  # the one statement fails: nothing is kept
    assert r.status_code == 409, r.get_data(as_text=True)
    assert owner.ok(owner.get("/tables/notes/records?count=true"))["total"] == 2
    assert owner.ok(owner.post("/tables/notes/records", json={"code": "C"}), 201)["no"] == "N0003"


def test_a_create_that_fails_after_its_first_statement_leaves_nothing(owner, notes, platform):
    owner.ok(owner.post("/tables/notes/records", json={"code": "A", "lines": [{"sku": "X-1"}]}), 201)
    seen = _writes(platform)
    # the note is inserted first; its line repeats a unique sku and fails in the next statement
    r = owner.post("/tables/notes/records", json={"code": "B", "lines": [{"sku": "X-1"}]})
    assert r.status_code == 409, r.get_data(as_text=True)
    if platform.dialect == "postgresql":
        assert seen[0] == ("BEGIN", True), seen  # its own transaction, opened before the first write
    page = owner.ok(owner.get("/tables/notes/records?count=true"))
    assert page["total"] == 1 and [n["code"] for n in page["records"]] == ["A"]
    # the number the failed create drew was rolled back with it
    assert owner.ok(owner.post("/tables/notes/records", json={"code": "C"}), 201)["no"] == "N0002"


def test_a_batch_fails_whole(owner, notes):
    r = owner.post("/tables/notes/records", json={"records": [{"code": "A"}, {"code": "A"}]})
    assert r.status_code == 409, r.get_data(as_text=True)
    assert owner.ok(owner.get("/tables/notes/records?count=true"))["total"] == 0
    ids = owner.ok(owner.post("/tables/notes/records?return=ids", json={"records": [{"code": "A"}, {"code": "B"}]}), 201)["ids"]
    assert len(ids) == 2

"""PostgreSQL: a rule updating the record its own write just created needs no
``SELECT … FOR UPDATE`` (the transaction holds the row's lock since it inserted it);
a record written by someone else's earlier transaction is still locked before the update."""
import pytest
from sqlalchemy import event

from .conftest import rule


@pytest.fixture
def pg_owner(owner, platform):
    if platform.dialect != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite writers hold the database lock)")
    owner.ok(owner.post("/tables", json={"api_name": "tickets", "fields": [
        {"api_name": "title", "type": "text"}, {"api_name": "state", "type": "text"}]}), 201)
    rule(owner, {"api_name": "open", "table": "tickets", "trigger": {"type": "record_created"},
                 "actions": [{"type": "update_record", "values": {"state": "'open'"}}]})
    return owner


def _locking_reads(platform, fn):
    seen = []
    listener = lambda c, cur, st, p, ctx, many: seen.append(st) if "FOR UPDATE" in st else None  # noqa: E731
    event.listen(platform.engine, "before_cursor_execute", listener)
    try:
        result = fn()
    finally:
        event.remove(platform.engine, "before_cursor_execute", listener)
    return result, seen


def test_a_rule_updates_the_record_it_created_without_locking_it_again(pg_owner, platform):
    rec, locks = _locking_reads(platform, lambda: pg_owner.ok(pg_owner.post("/tables/tickets/records", json={"title": "A"}), 201))
    assert rec["state"] == "open"
    assert locks == []


def test_an_existing_record_is_locked_before_it_is_updated(pg_owner, platform):
    rec = pg_owner.ok(pg_owner.post("/tables/tickets/records", json={"title": "B"}), 201)
    done, locks = _locking_reads(platform, lambda: pg_owner.ok(pg_owner.patch(f"/tables/tickets/records/{rec['id']}", json={"title": "B2"})))
    assert done["title"] == "B2" and len(locks) == 1

"""Admin routes over the outbox: list, inspect, stats, replay of dead letters; admin only,
credentials masked, other tenants' jobs invisible (404)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from zhongshu.platform.models import AuditLog, utcnow
from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.outbox import HANDLERS, enqueue
from zhongshu.runtime.worker import drain


@pytest.fixture
def acme_id(owner, platform):
    return platform.tenant_by_slug("acme").id


def add(platform, tenant_id, kind, key, payload=None, **kw):
    with platform.engine.begin() as conn:
        return enqueue(conn, tenant_id=tenant_id, kind=kind, payload=payload or {}, key=key, **kw)


def set_job(platform, job_id, **values):
    t = OutboxJob.__table__
    with platform.engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == job_id).values(**values))


def get_job(platform, job_id) -> OutboxJob:
    with platform.tenant_session(None) as s:
        return s.get(OutboxJob, job_id)


def test_list_filter_page_and_inspect(owner, platform, acme_id):
    a = add(platform, acme_id, "notify.sms", "a", {"to": "138", "credentials": {"app_secret": "s3cr3t"},
                                                   "headers": {"Authorization": "Bearer abc"}, "api_key": "k"})
    b = add(platform, acme_id, "connector.action", "b")
    c = add(platform, acme_id, "notify.sms", "c")
    set_job(platform, c, status="dead", last_error="400: invalid phone", attempts=1)

    page = owner.ok(owner.get("/outbox"))
    assert [j["id"] for j in page["jobs"]] == [c, b, a] and page["has_more"] is False
    assert [j["id"] for j in owner.ok(owner.get("/outbox?status=dead"))["jobs"]] == [c]
    assert [j["id"] for j in owner.ok(owner.get("/outbox?kind=notify.sms"))["jobs"]] == [c, a]
    first = owner.ok(owner.get("/outbox?limit=2"))
    assert [j["id"] for j in first["jobs"]] == [c, b] and first["has_more"] and first["next_before"] == b
    assert [j["id"] for j in owner.ok(owner.get(f"/outbox?limit=2&before={b}"))["jobs"]] == [a]
    assert owner.get("/outbox?status=lost").status_code == 400
    assert owner.get("/outbox?limit=0").status_code == 400

    job = owner.ok(owner.get(f"/outbox/{a}"))["job"]
    assert job["payload"]["to"] == "138"
    assert job["payload"]["credentials"] == "••••••"
    assert job["payload"]["headers"]["Authorization"] == "••••••" and job["payload"]["api_key"] == "••••••"
    assert "s3cr3t" not in owner.get(f"/outbox/{a}").get_data(as_text=True)
    assert "s3cr3t" not in owner.get("/outbox").get_data(as_text=True)
    assert (job["status"], job["kind"], job["idempotency_key"]) == ("pending", "notify.sms", "a")
    assert owner.get("/outbox/999999").status_code == 404


def test_replay_one_dead_job_and_run_it(owner, platform, acme_id):
    calls = []
    HANDLERS["test.replay"] = lambda ctx, p: calls.append(ctx.attempt) or "sent"
    try:
        jid = add(platform, acme_id, "test.replay", "r")
        set_job(platform, jid, status="dead", attempts=8, last_error="gave up after 8 attempts",
                finished_at=utcnow(), run_at=utcnow() - timedelta(days=1))
        assert owner.post(f"/outbox/{jid}/replay").status_code == 200
        j = get_job(platform, jid)
        assert (j.status, j.attempts, j.finished_at) == ("pending", 0, None)
        assert abs((j.run_at - utcnow()).total_seconds()) < 60
        assert drain(platform) == 1
        assert calls == [1] and get_job(platform, jid).status == "done"
        r = owner.post(f"/outbox/{jid}/replay")  # not dead any more
        assert r.status_code == 409 and r.get_json()["error"]["status_now"] == "done"
        with platform.tenant_session(None) as s:
            assert s.scalar(select(AuditLog.action).where(AuditLog.object_type == "outbox")) == "outbox_replay"
    finally:
        HANDLERS.pop("test.replay", None)


def test_bulk_replay_by_ids_and_all_dead(owner, platform, acme_id):
    ids = [add(platform, acme_id, "k1" if i % 2 else "k2", f"j{i}") for i in range(5)]
    for i in ids[:4]:
        set_job(platform, i, status="dead", attempts=3)
    r = owner.ok(owner.post("/outbox/replay", json={"ids": [ids[0], ids[4]]}))
    assert r == {"replayed": [ids[0]], "skipped": [ids[4]]}
    r = owner.ok(owner.post("/outbox/replay", json={"all_dead": True, "kind": "k1"}))
    assert r["replayed"] == [ids[1], ids[3]] and r["remaining_dead"] == 0  # of that kind
    r = owner.ok(owner.post("/outbox/replay", json={"all_dead": True}))
    assert r["replayed"] == [ids[2]] and r["remaining_dead"] == 0
    assert all(get_job(platform, i).status == "pending" for i in ids)
    assert owner.post("/outbox/replay", json={"ids": []}).status_code == 400
    assert owner.post("/outbox/replay", json={"ids": ["1"]}).status_code == 400
    assert owner.post("/outbox/replay", json={"ids": [ids[0], 999999]}).status_code == 404


def test_stats(owner, platform, acme_id):
    now = utcnow()
    add(platform, acme_id, "a", "1", run_at=now - timedelta(seconds=120))
    add(platform, acme_id, "a", "2", run_at=now + timedelta(hours=1))  # waiting for a retry: not due
    d = add(platform, acme_id, "b", "3")
    set_job(platform, d, status="dead")
    s = owner.ok(owner.get("/outbox/stats"))
    assert s["by_status"] == {"pending": 2, "running": 0, "done": 0, "dead": 1}
    assert s["by_kind"] == {"a": {"pending": 2}, "b": {"dead": 1}} and s["total"] == 3
    assert s["due_pending"] == 1 and s["oldest_pending_age_seconds"] >= 120


def test_admins_only_and_tenants_are_isolated(owner, make_member, platform, acme_id, app):
    jid = add(platform, acme_id, "a", "1")
    set_job(platform, jid, status="dead")
    member = make_member("member")
    builder = make_member("builder")
    for client in (member, builder):
        for path in ("/outbox", "/outbox/stats", f"/outbox/{jid}"):
            assert client.get(path).status_code == 403
        assert client.post(f"/outbox/{jid}/replay").status_code == 403
        assert client.post("/outbox/replay", json={"all_dead": True}).status_code == 403
    admin = make_member("admin")
    assert admin.get(f"/outbox/{jid}").status_code == 200

    # the owner of another tenant sees none of acme's jobs
    from tests.conftest import login

    u = platform.create_user("boss@beta.test", "beta-password")
    platform.create_tenant("beta", "Beta", owner_email=u.email)
    beta = login(app, "boss@beta.test", "beta-password", "beta")
    beta_job = add(platform, platform.tenant_by_slug("beta").id, "a", "1")
    assert beta.get(f"/outbox/{jid}").status_code == 404
    assert beta.post(f"/outbox/{jid}/replay").status_code == 404
    assert beta.post("/outbox/replay", json={"ids": [jid]}).status_code == 404
    assert [j["id"] for j in beta.ok(beta.get("/outbox"))["jobs"]] == [beta_job]
    assert beta.ok(beta.post("/outbox/replay", json={"all_dead": True}))["replayed"] == []
    assert get_job(platform, jid).status == "dead"
    assert beta.ok(beta.get("/outbox/stats"))["total"] == 1
    # and acme's URL is not found for beta's owner at all
    assert beta.get(f"/api/v1/tenants/acme/outbox/{jid}").status_code == 404

"""Order numbers under concurrent writers: never a duplicate, never a gap, and the
sequence restarts when the date part of the pattern (SO{YYYYMMDD}{seq:05}) changes —
the date in the tenant's time zone.

Every writer runs in a thread of its own with its own session and transaction, as web
requests and workers do (PostgreSQL row lock on the counter; SQLite write lock).
"""
from __future__ import annotations

import threading
from datetime import datetime

import pytest

from tests.conftest import Api
from zhongshu.platform.storage.access import Actor
from zhongshu.platform.storage.query import Query

THREADS = 8
PER_THREAD = 25
# 02:00 UTC = 10:00 in Shanghai on 2026-11-21
MORNING = datetime(2026, 11, 21, 2, 0)


@pytest.fixture
def acme(platform, owner, orders):
    tenant = platform.tenant_by_slug("acme")
    owner_id = owner.ok(owner.get("~/auth/me"))["user"]["id"]
    return tenant, Actor(user_id=owner_id, role="owner")


def _create(platform, tenant, actor, values, now=MORNING) -> list[dict]:
    """One transaction, like one API request."""
    rows = values if isinstance(values, list) else [values]
    with platform.tenant_session(tenant.id, write=True) as s:
        recs = platform.records(s, tenant, actor, now=now)
        return recs.create_many(recs.schema("orders"), rows)


def _all_numbers(platform, tenant, actor) -> list[str]:
    with platform.tenant_session(tenant.id) as s:
        recs = platform.records(s, tenant, actor)
        page = recs.list(recs.schema("orders"), Query(limit=1000, fields=["order_no"]))
    assert not page["has_more"]
    return [r["order_no"] for r in page["records"]]


def _in_threads(n, work):
    """Runs work(i) in n threads released together; re-raises the first error."""
    start = threading.Barrier(n)
    errors: list[BaseException] = []
    results: list = [None] * n

    def run(i):
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_writers_get_unique_consecutive_numbers(platform, acme):
    tenant, actor = acme

    def work(_):
        return [_create(platform, tenant, actor, {"customer_name": "并发"})[0]["order_no"] for _ in range(PER_THREAD)]

    handed_out = [n for per_thread in _in_threads(THREADS, work) for n in per_thread]
    total = THREADS * PER_THREAD
    assert len(handed_out) == total and len(set(handed_out)) == total  # no duplicates
    assert sorted(handed_out) == [f"SO20261121{i:05d}" for i in range(1, total + 1)]  # no gaps
    assert sorted(_all_numbers(platform, tenant, actor)) == sorted(handed_out)  # what was stored


def test_each_writer_sees_its_own_numbers_increase(platform, acme):
    tenant, actor = acme

    def work(_):
        return [_create(platform, tenant, actor, {})[0]["order_no"] for _ in range(10)]

    for per_thread in _in_threads(4, work):
        assert per_thread == sorted(per_thread)


def test_concurrent_batches_get_consecutive_blocks(platform, acme):
    tenant, actor = acme

    def work(_):
        return [[r["order_no"] for r in _create(platform, tenant, actor, [{"customer_name": f"批{j}"} for j in range(5)])]
                for _ in range(10)]

    batches = [b for per_thread in _in_threads(4, work) for b in per_thread]
    for b in batches:
        seqs = [int(n[-5:]) for n in b]
        assert seqs == list(range(seqs[0], seqs[0] + 5))  # one batch, one block
    assert sorted(n for b in batches for n in b) == [f"SO20261121{i:05d}" for i in range(1, 201)]


def test_a_failed_transaction_does_not_burn_numbers(platform, acme):
    tenant, actor = acme
    first = _create(platform, tenant, actor, {})[0]["order_no"]
    with pytest.raises(RuntimeError):
        with platform.tenant_session(tenant.id, write=True) as s:
            recs = platform.records(s, tenant, actor, now=MORNING)
            recs.create(recs.schema("orders"), {})
            raise RuntimeError("the request failed after the insert")
    assert _create(platform, tenant, actor, {})[0]["order_no"] == first[:-5] + "00002"


def test_the_sequence_restarts_when_the_date_changes_in_the_tenant_time_zone(platform, acme):
    tenant, actor = acme
    late = datetime(2026, 11, 21, 15, 59)  # 23:59 in Shanghai on the 21st
    after_midnight = datetime(2026, 11, 21, 16, 1)  # 00:01 in Shanghai on the 22nd (still the 21st in UTC)
    assert [_create(platform, tenant, actor, {}, now=late)[0]["order_no"] for _ in range(2)] == [
        "SO2026112100001", "SO2026112100002"]
    assert [_create(platform, tenant, actor, {}, now=after_midnight)[0]["order_no"] for _ in range(2)] == [
        "SO2026112200001", "SO2026112200002"]
    # a late write for the 21st continues that day's sequence
    assert _create(platform, tenant, actor, {}, now=late)[0]["order_no"] == "SO2026112100003"
    assert _create(platform, tenant, actor, {}, now=datetime(2026, 12, 1, 0, 0))[0]["order_no"] == "SO2026120100001"


def test_the_date_restart_holds_under_concurrency(platform, acme):
    tenant, actor = acme
    days = [datetime(2026, 11, 21, 2, 0), datetime(2026, 11, 22, 2, 0)]

    def work(i):
        return [_create(platform, tenant, actor, {}, now=days[i % 2])[0]["order_no"] for _ in range(15)]

    numbers = sorted(n for per_thread in _in_threads(6, work) for n in per_thread)
    assert numbers == [f"SO20261121{i:05d}" for i in range(1, 46)] + [f"SO20261122{i:05d}" for i in range(1, 46)]


def test_concurrent_api_requests_get_unique_numbers(app, owner, orders):
    raw = owner.ok(owner.post("/tokens", json={"name": "load"}), 201)["token"]

    def work(_):
        api = Api(app.test_client(), "acme", token=raw)
        return [api.ok(api.post("/tables/orders/records", json={"customer_name": "接口"}), 201)["order_no"] for _ in range(10)]

    numbers = [n for per_thread in _in_threads(4, work) for n in per_thread]
    assert len(set(numbers)) == 40
    by_day: dict[str, list[int]] = {}
    for n in numbers:  # (grouped by date, in case the run straddles midnight in Shanghai)
        by_day.setdefault(n[:-5], []).append(int(n[-5:]))
    for seqs in by_day.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
    assert owner.ok(owner.get("/tables/orders/records?count=true"))["total"] == 40

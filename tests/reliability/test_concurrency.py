"""Many concurrent writers on one record with optimistic locking (If-Match): no lost update.

Each writer reads the record, adds 1 to a counter and writes with ``If-Match: <version>``;
on 409 it re-reads and tries again. At the end the counter equals the number of accepted
writes and the version moved by exactly that many — every accepted increment is present.

Autonumbers under concurrency: tests/platform/test_autonumber_concurrency.py; inventory
(no oversell): tests/connectors/test_logistics_inventory.py and the template's order flow
(tests/template/test_order_flow.py)."""
from __future__ import annotations

import threading

from tests.reliability.conftest import write_figures

WRITERS, INCREMENTS = 8, 12


def test_concurrent_if_match_writers_lose_no_update(app, owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "计数", "weight": 0}), 201)
    url = f"/tables/orders/records/{rec['id']}"
    accepted, conflicts, errors = [], [], []
    lock = threading.Lock()

    def writer(n):
        from tests.conftest import Api

        api = Api(app.test_client(), "acme", token=token)
        done = 0
        while done < INCREMENTS:
            cur = api.get(url).get_json()
            r = api.patch(url, json={"weight": (cur["weight"] or 0) + 1}, headers={"If-Match": str(cur["version"])})
            with lock:
                if r.status_code == 200:
                    accepted.append(r.get_json()["version"])
                    done += 1
                elif r.status_code in (409, 503):
                    conflicts.append(r.status_code)
                else:
                    errors.append((r.status_code, r.get_data(as_text=True)[:200]))
                    return

    token = owner.ok(owner.post("/tokens", json={"name": "writers"}), 201)["token"]
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    final = owner.ok(owner.get(url))
    assert len(accepted) == WRITERS * INCREMENTS
    assert final["weight"] == WRITERS * INCREMENTS                # every accepted increment is there
    assert final["version"] == rec["version"] + WRITERS * INCREMENTS
    assert sorted(accepted) == list(range(rec["version"] + 1, final["version"] + 1))  # each version once
    write_figures(**{f"optimistic_locking_{app.config['DATABASE_URL'].split(':')[0]}": {
        "writers": WRITERS, "accepted_writes": len(accepted), "conflicts_409_retried": conflicts.count(409),
        "busy_503_retried": conflicts.count(503), "lost_updates": WRITERS * INCREMENTS - int(final["weight"])}})


def test_a_stale_if_match_is_409_and_changes_nothing(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json={"customer_name": "甲"}), 201)
    url = f"/tables/orders/records/{rec['id']}"
    owner.ok(owner.patch(url, json={"customer_name": "乙"}, headers={"If-Match": str(rec["version"])}))
    r = owner.patch(url, json={"customer_name": "丙"}, headers={"If-Match": str(rec["version"])})
    assert r.status_code == 409
    assert owner.ok(owner.get(url))["customer_name"] == "乙"

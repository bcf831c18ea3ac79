"""A single create (``POST …/records`` with one record object). On PostgreSQL, a record with
no sub-table rows, no links and no rules or computed fields goes in with its history row in
one statement; what a user sees must not differ from the general path (a batch that returns
its records, or a record with items)."""
from __future__ import annotations


def _given(i: int) -> dict:
    return {"channel": "天猫", "customer_name": f"客户{i}", "phone": "13800138000", "amount": 100 + i / 100,
            "created": "2026-11-20T10:30:00+08:00", "address": {"province": "广东省", "city": "广州市", "detail": f"中山路{i}号"},
            "vip": True, "tags": ["加急"], "tracking_no": None}


def _history(api, rid):
    return api.ok(api.get(f"/tables/orders/records/{rid}/history"))["history"]


def test_single_create_keeps_record_and_history_like_a_batch(owner, orders):
    single = owner.ok(owner.post("/tables/orders/records", json=_given(1)), 201)
    batch = owner.ok(owner.post("/tables/orders/records", json={"records": [_given(1), _given(2)]}), 201)["records"]
    # what the create answered is what is stored
    assert owner.ok(owner.get(f"/tables/orders/records/{single['id']}")) == single
    assert single["status"] == "待付款" and single["version"] == 1
    h_single, h_batch = _history(owner, single["id"]), _history(owner, batch[0]["id"])
    assert [(h["action"], h["version"]) for h in h_single] == [("create", 1)]
    c_single, c_batch = dict(h_single[0]["changes"]), dict(h_batch[0]["changes"])
    assert c_single.pop("order_no") == [None, single["order_no"]]
    c_batch.pop("order_no")
    assert c_single == c_batch
    assert c_single["status"] == [None, "待付款"] and c_single["tracking_no"] == [None, None]
    assert h_single[0]["user_id"] == single["created_by"] and h_single[0]["at"] == single["created_at"]
    # autonumbers: one counter for both paths, no number twice
    numbers = [single["order_no"], batch[0]["order_no"], batch[1]["order_no"]]
    assert len(set(numbers)) == 3 and numbers == sorted(numbers)


def test_single_create_then_update_in_later_requests(owner, orders):
    rec = owner.ok(owner.post("/tables/orders/records", json=_given(3)), 201)
    upd = owner.ok(owner.patch(f"/tables/orders/records/{rec['id']}", json={"amount": 5, "version": 1}))
    assert upd["version"] == 2 and upd["amount"] == 5
    h = _history(owner, rec["id"])
    assert [(x["action"], x["version"]) for x in h] == [("update", 2), ("create", 1)]
    assert h[0]["changes"]["amount"] == [rec["amount"], 5]


def test_single_create_with_items_writes_every_history_row(owner, orders):
    body = dict(_given(4), items=[{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}])
    rec = owner.ok(owner.post("/tables/orders/records", json=body), 201)
    assert [i["sku"] for i in rec["items"]] == ["A1", "B2"]
    h = _history(owner, rec["id"])
    assert len(h) == 1 and h[0]["changes"]["items"][1][0]["sku"] == "A1"


def test_invalid_single_create_writes_nothing(owner, orders):
    before = owner.ok(owner.get("/tables/orders/records?count=1"))["total"]
    r = owner.post("/tables/orders/records", json=dict(_given(5), amount="lots"))
    assert r.status_code == 400
    assert [e["pointer"] for e in r.get_json()["error"]["errors"]] == ["/amount"]
    assert owner.ok(owner.get("/tables/orders/records?count=1"))["total"] == before
    nxt = owner.ok(owner.post("/tables/orders/records", json=_given(6)), 201)
    assert len(_history(owner, nxt["id"])) == 1


def _numbers_table(owner, name, patterns):
    fields = [{"api_name": n, "type": "autonumber", "label": n, "options": {"pattern": p}} for n, p in patterns.items()]
    owner.ok(owner.post("/tables", json={"api_name": name, "label": name, "fields": [*fields, {"api_name": "title", "type": "text", "label": "Title"}]}), 201)


def _check_history(owner, table, rec, names):
    h = owner.ok(owner.get(f"/tables/{table}/records/{rec['id']}/history"))["history"]
    assert len(h) == 1
    for n in names:
        assert h[0]["changes"][n] == [None, rec[n]], n


def test_autonumbers_of_single_creates_render_like_the_pattern(owner):
    """On PostgreSQL these are numbered inside the insert statement (one {seq} each)."""
    _numbers_table(owner, "tickets", {"short": "T{seq:1}X", "plain": "{seq}", "padded": "P{YYYY}-{seq:04}"})
    recs = [owner.ok(owner.post("/tables/tickets/records", json={"title": f"t{i}"}), 201) for i in range(12)]
    # wider than the pattern's width: never cut
    assert [r["short"] for r in recs] == [f"T{i}X" for i in range(1, 13)]
    assert [r["plain"] for r in recs] == [str(i) for i in range(1, 13)]
    assert recs[0]["padded"].startswith("P20") and recs[0]["padded"].endswith("-0001")
    batch = owner.ok(owner.post("/tables/tickets/records", json={"records": [{"title": "b"}]}), 201)["records"]
    assert batch[0]["short"] == "T13X"
    for r in (recs[0], recs[11]):
        _check_history(owner, "tickets", r, ["short", "plain", "padded", "title"])


def test_a_pattern_with_two_numbers_is_numbered_before_the_insert(owner):
    _numbers_table(owner, "pairs", {"twice": "A{seq}-{seq:03}", "short": "S{seq:2}"})
    recs = [owner.ok(owner.post("/tables/pairs/records", json={"title": f"t{i}"}), 201) for i in range(3)]
    assert [r["twice"] for r in recs] == ["A1-001", "A2-002", "A3-003"]
    assert [r["short"] for r in recs] == ["S01", "S02", "S03"]
    _check_history(owner, "pairs", recs[2], ["twice", "short", "title"])

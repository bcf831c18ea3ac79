"""The bulk create path (``POST …/records`` with a list and ``?return=ids``): ids allocated
first, rows and history rows inserted as driver-ready tuples (COPY on PostgreSQL).

What a user must not be able to tell apart from one-by-one creates: the stored values, the
history of every record, autonumbers (unique and in order, also under concurrent batches),
validation errors with their JSON pointers, all-or-nothing unless skip_invalid.
"""
from __future__ import annotations

import threading
from datetime import datetime

import pytest

from zhongshu.platform.fields.base import Ctx, FieldSpec, FieldValueError
from zhongshu.platform.fields.registry import get as get_type
from zhongshu.platform.storage.access import Actor

ROWS = 260  # above the COPY threshold (PostgreSQL) and the cycle-collector pause


def _row(i: int) -> dict:
    """Every third row leaves the status out (its default, 待付款, applies); some give None."""
    row = _given(i)
    if i % 3 == 2:
        del row["status"]
    return row


def _given(i: int) -> dict:
    return {"channel": ["天猫", "抖音", "拼多多"][i % 3], "customer_name": f"客户{i}", "phone": "13800138000",
            "amount": 100 + i / 100, "paid": "¥1,234.5", "status": ["已付款", None, None][i % 3],
            "tracking_no": None if i % 2 else f"SF{i}", "created": "2026-11-20T10:30:00+08:00", "weight": i / 3,
            "address": {"province": "广东省", "city": "广州市", "detail": f"中山路{i}号"} if i % 4 else "上海市静安区",
            "vip": bool(i % 2), "tags": ["加急", "赠品"] if i % 5 == 0 else None}


def _strip(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in ("id", "order_no", "created_at", "updated_at")}


def test_bulk_rows_equal_single_creates_and_keep_history(owner, orders):
    bodies = [_row(i) for i in range(ROWS)]
    ids = owner.ok(owner.post("/tables/orders/records?return=ids", json={"records": bodies}), 201)["ids"]
    assert len(ids) == ROWS and len(set(ids)) == ROWS and ids == sorted(ids)
    for i in (0, 1, 2, 3, 5, ROWS - 1):
        single = owner.ok(owner.post("/tables/orders/records", json=bodies[i]), 201)
        bulk = owner.ok(owner.get(f"/tables/orders/records/{ids[i]}"))
        assert _strip(bulk) == _strip(single), i
        h_bulk = owner.ok(owner.get(f"/tables/orders/records/{ids[i]}/history"))["history"]
        h_single = owner.ok(owner.get(f"/tables/orders/records/{single['id']}/history"))["history"]
        assert len(h_bulk) == 1 and h_bulk[0]["action"] == "create" and h_bulk[0]["version"] == 1
        changes_bulk, changes_single = dict(h_bulk[0]["changes"]), dict(h_single[0]["changes"])
        assert changes_bulk.pop("order_no")[1] == bulk["order_no"]
        changes_single.pop("order_no")
        assert changes_bulk == changes_single, i
    # the default filled in for a row that gave none is in the record and in its history
    rec = owner.ok(owner.get(f"/tables/orders/records/{ids[2]}"))
    assert rec["status"] == "待付款"
    numbers = [owner.ok(owner.get(f"/tables/orders/records/{i}"))["order_no"] for i in ids[:3]]
    assert numbers[1:] == [numbers[0][:-5] + str(int(numbers[0][-5:]) + k).zfill(5) for k in (1, 2)]
    page = owner.ok(owner.get("/tables/orders/records?limit=1&count=true"))
    assert page["total"] == ROWS + 6


def test_bulk_errors_point_at_the_row_and_nothing_is_half_saved(owner, orders):
    bodies = [_row(i) for i in range(ROWS)]
    bodies[7]["amount"] = "lots"
    bodies[150]["status"] = "不存在"
    bodies[151]["nope"] = 1
    r = owner.post("/tables/orders/records?return=ids", json={"records": bodies})
    assert r.status_code == 400
    pointers = {e["pointer"] for e in r.get_json()["error"]["errors"]}
    assert pointers == {"/records/7/amount", "/records/150/status", "/records/151/nope"}
    assert owner.ok(owner.get("/tables/orders/records?limit=1&count=true"))["total"] == 0

    r = owner.post("/tables/orders/records?return=ids&skip_invalid=true", json={"records": bodies})
    assert r.status_code == 201
    out = r.get_json()
    assert out["skipped"] == [7, 150, 151] and len(out["created"]) == ROWS - 3
    assert owner.ok(owner.get("/tables/orders/records?limit=1&count=true"))["total"] == ROWS - 3
    one = owner.ok(owner.get(f"/tables/orders/records/{out['created'][7]}"))  # the row after the skipped one
    assert one["customer_name"] == "客户8"


def test_bulk_sub_table_rows_go_with_their_parent(owner, orders):
    bodies = [{**_row(i), "items": [{"sku": f"A{i}", "qty": 1}, {"sku": f"B{i}", "qty": 2}]} for i in range(120)]
    ids = owner.ok(owner.post("/tables/orders/records?return=ids", json={"records": bodies}), 201)["ids"]
    rec = owner.ok(owner.get(f"/tables/orders/records/{ids[42]}"))
    assert [(it["sku"], it["qty"]) for it in rec["items"]] == [("A42", 1), ("B42", 2)]
    bodies[3]["items"][1] = {"qty": 1}  # sku is required
    r = owner.post("/tables/orders/records?return=ids", json={"records": bodies})
    assert r.status_code == 400
    assert [e["pointer"] for e in r.get_json()["error"]["errors"]] == ["/records/3/items/1/sku"]


def test_concurrent_bulk_batches_get_distinct_ids_and_numbers(platform, owner, orders):
    tenant = platform.tenant_by_slug("acme")
    actor = Actor(user_id=owner.ok(owner.get("~/auth/me"))["user"]["id"], role="owner")
    n, per = 4, 150
    errors, got = [], [None] * n
    start = threading.Barrier(n)

    def work(k):
        try:
            start.wait()
            with platform.tenant_session(tenant.id, write=True) as s:
                recs = platform.records(s, tenant, actor, now=datetime(2026, 11, 21, 2, 0))
                got[k] = recs.create_many(recs.schema("orders"), [_row(i) for i in range(per)], return_records=False)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    ids = [i for batch in got for i in batch]
    assert len(ids) == len(set(ids)) == n * per
    numbers = []
    cursor = None
    while True:
        page = owner.ok(owner.get("/tables/orders/records?limit=500&fields=order_no" + (f"&cursor={cursor}" if cursor else "")))
        numbers += [r["order_no"] for r in page["records"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert len(numbers) == len(set(numbers)) == n * per
    assert sorted(int(x[-5:]) for x in numbers) == list(range(1, n * per + 1))


CASES = {
    "text": [None, "", "abc", 12, 1.5, True, "x" * 1001, ["no"]],
    "number": [None, "", 0, 1.25, -3, "1,234.5", "¥12", float("nan"), float("inf"), 1e16, True, "x", "12%"],
    "currency": [None, 12.345, 12.344, "¥1,234.567", 7, "bad", 1e15, -1e15, 999999999999999.9, 10 ** 15, -(10 ** 15) + 1,
                 -0.005, 0.005, 2.675, False, float("-inf"), 3 * 10 ** 30],
    "percent": ["25%", 0.25, 1, None, 150, -0.5],
    "single_select": [None, "", "红", "opt_r", "Red", "蓝", {"label": "红"}, 5],
    "address": [None, "", "北京市", {"province": "广东省", "city": "广州市"}, {"city": ""}, {"lat": "1", "lng": 2},
                {"text": "x", "city": "c"}, {"bad": 1}, {"city": 3}, 4, {"detail": '"引号" \\ 反斜杠 \n 换行 \x01'},
                {"province": "p", "city": None, "detail": 0}, {"detail": False}, {"city": []}, {"detail": "x" * 500},
                {"detail": "x" * 501}, {"country": "中国", "postcode": "510000", "district": "天河区"},
                {"province": "湖北省", "city": "武汉市", "map_url": "u"}],
    # the writer's fast path takes 'YYYY-MM-DDTHH:MM:SS±HH:MM'; everything else must come out as parse_datetime's
    "datetime": [None, "", "2026-11-20T10:30:00+08:00", "2026-11-20 10:30:00+08:00", "2026-11-20T10:30:00-05:30",
                 "2026-11-20T10:30:00Z", "2026-11-20T10:30:00.123+08:00", "1899-12-31T23:00:00+08:00",
                 "1900-01-01T07:00:00+08:00", "3000-01-01T00:00:00+08:00", "2999-12-31T23:00:00-08:00",
                 "2026-13-20T10:30:00+08:00", "2026-11-20T10:30:00+08:0x", "2026-11-20T10:30:00+25:00",
                 "20261120T103000.12+08:00", "2026-11-20T10:30:00+08:00:00", " 2026-11-20T10:30:00+08:00",
                 "2026/11/20T10:30:00+08:00", "2026-11-20", "2026-11-20 10:30", 1700000000, "x" * 25, True, [1]],
}
OPTIONS = {"single_select": {"choices": [{"id": "opt_r", "label": "红", "label_en": "Red"}, {"id": "opt_b", "label": "蓝"}]},
           "number": {"decimals": 2}, "currency": {"decimals": 2}}


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_bound_writers_convert_exactly_as_to_storage(type_name):
    t = get_type(type_name)
    ctx = Ctx()
    specs = [FieldSpec(1, "f", t, {"options": OPTIONS.get(type_name, {})}, 1)]
    if type_name in ("number", "currency"):
        specs.append(FieldSpec(2, "g", t, {"options": {**OPTIONS[type_name], "min": 0, "max": 1000}}, 1))
    for spec in specs:
        write = t.writer(spec, ctx)
        for value in CASES[type_name]:
            def run(f):
                try:
                    return "ok", f(value)
                except FieldValueError as e:
                    return "error", e.message
            assert run(write) == run(lambda v: t.to_storage(v, spec, ctx)), (type_name, spec.definition, value)


def test_address_text_and_map_link_are_unchanged():
    """History entries show an address with its text and map link: the link quotes the text
    as urllib does, whether its province/city/district were quoted before or not."""
    from urllib.parse import quote

    t = get_type("address")
    spec = FieldSpec(1, "a", t, {}, 1)
    write, read = t.writer(spec, Ctx()), t.reader(spec, Ctx())
    for detail in ("中山路1号", "a b/c?d&e=#中", "路 2 号"):
        stored = write({"province": "广东省", "city": "广州市", "district": "天河区", "detail": detail})
        shown = read(stored)
        text = "广东省广州市天河区" + detail
        assert shown["text"] == text
        assert shown["map_url"] == "https://uri.amap.com/search?keyword=" + quote(text)
    assert read(write({"lat": 23.1, "lng": 113.3}))["map_url"] == "https://uri.amap.com/marker?position=113.3,23.1"

"""Edge states, SLA timers and field locks of a record created by the write under way: they
are kept in memory while the write's rules run and written once at the end (one statement
each), with the same outcome as writing them one by one."""
from sqlalchemy import event, select

from zhongshu.runtime.models import OutboxJob, RuleRun, RuleState, RuleTimer

from .conftest import rule


def _statements(platform):
    seen: list[str] = []

    def listener(conn, cursor, statement, params, context, many):
        seen.append(statement)

    event.listen(platform.engine, "before_cursor_execute", listener)
    return seen, lambda: event.remove(platform.engine, "before_cursor_execute", listener)


def test_a_create_whose_rules_move_the_timer_date_leaves_one_armed_timer(owner, orders, platform, clock):
    from zhongshu.runtime.rules import fire_timers

    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "status_changed_at", "type": "datetime"}), 201)
    rule(owner, {"api_name": "pay_on_create", "table": "orders", "trigger": {"type": "record_created"},
                 "condition": "amount > 100", "actions": [{"type": "update_record", "values": {"status": "'已付款'"}}]})
    rule(owner, {"api_name": "stamp_status", "table": "orders", "trigger": {"type": "record_updated", "fields": ["status"]},
                 "actions": [{"type": "update_record", "values": {"status_changed_at": "NOW()"}}]})
    rule(owner, {"api_name": "sla_30", "table": "orders", "condition": "status == '已付款' and ISBLANK(tracking_no)",
                 "trigger": {"type": "time_after", "field": "status_changed_at", "offset": "30 minutes"},
                 "actions": [{"type": "notify", "connector": "wecom_wh", "action": "send_text",
                              "input": {"content": "订单 {{ record.order_no }} 超过30分钟未处理"}}]})
    # created with an old date; its own rules move the date to now within the same write
    o = owner.ok(owner.post("/tables/orders/records", json={"amount": 520, "status_changed_at": "2026-11-20 08:00"}), 201)
    assert o["status"] == "已付款"
    with platform.tenant_session(None) as s:
        timers = sorted((t.anchor, t.status) for t in s.scalars(select(RuleTimer).where(RuleTimer.record_id == o["id"])))
    assert timers == [("2026-11-20T00:00:00", "cancelled"), ("2026-11-21T02:00:00", "armed")]
    # no date: no timer at all
    n = owner.ok(owner.post("/tables/orders/records", json={"amount": 5}), 201)
    with platform.tenant_session(None) as s:
        assert s.scalars(select(RuleTimer).where(RuleTimer.record_id == n["id"])).all() == []
    clock.advance(minutes=31)
    assert fire_timers(platform) == 1
    assert fire_timers(platform) == 0  # once
    with platform.tenant_session(None) as s:
        msgs = s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()
    assert [m.payload["input"]["content"] for m in msgs] == [f"订单 {o['order_no']} 超过30分钟未处理"]
    # moving the date of the (now committed) record re-arms as before
    owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"status_changed_at": "2026-11-21 12:00"}))
    with platform.tenant_session(None) as s:
        timers = sorted((t.anchor, t.status) for t in s.scalars(select(RuleTimer).where(RuleTimer.record_id == o["id"])))
    assert timers == [("2026-11-20T00:00:00", "cancelled"), ("2026-11-21T02:00:00", "fired"), ("2026-11-21T04:00:00", "armed")]


def test_a_condition_made_true_by_the_creating_write_fires_once_and_is_remembered(owner, orders, platform, clock):
    rule(owner, {"api_name": "vip_on_create", "table": "orders", "trigger": {"type": "record_created"},
                 "condition": "amount >= 1000", "actions": [{"type": "update_record", "values": {"vip": "True"}}]})
    rule(owner, {"api_name": "vip_tag", "table": "orders", "trigger": {"type": "condition_true"}, "condition": "vip",
                 "actions": [{"type": "update_record", "values": {"tags": "['加急']"}}]})
    rule(owner, {"api_name": "paid_flag", "table": "orders", "trigger": {"type": "condition_true"}, "condition": "paid > 0",
                 "actions": [{"type": "update_record", "values": {"tracking_no": "'PAID'"}}]})
    big = owner.ok(owner.post("/tables/orders/records", json={"amount": 1500}), 201)
    small = owner.ok(owner.post("/tables/orders/records", json={"amount": 10}), 201)
    assert big["vip"] is True and big["tags"] == ["加急"]
    assert small["vip"] in (False, None) and small["tags"] == []
    with platform.tenant_session(None) as s:
        states = {(r.record_id, r.rule_id): r.value for r in s.scalars(select(RuleState))}
        runs = s.scalars(select(RuleRun).where(RuleRun.trigger == "condition_true")).all()
    by_rule = {r["api_name"]: r["id"] for r in owner.ok(owner.get("/rules"))["rules"]}
    assert states == {(big["id"], by_rule["vip_tag"]): True, (big["id"], by_rule["paid_flag"]): False,
                      (small["id"], by_rule["vip_tag"]): False, (small["id"], by_rule["paid_flag"]): False}
    assert [r.record_id for r in runs] == [big["id"]]
    # still true on the next write: no second run; the other condition becoming true fires once
    owner.ok(owner.patch(f"/tables/orders/records/{big['id']}", json={"paid": 1}))
    assert owner.ok(owner.get(f"/tables/orders/records/{big['id']}"))["tracking_no"] == "PAID"
    owner.ok(owner.patch(f"/tables/orders/records/{big['id']}", json={"paid": 2, "tracking_no": "SF1"}))
    assert owner.ok(owner.get(f"/tables/orders/records/{big['id']}"))["tracking_no"] == "SF1"
    with platform.tenant_session(None) as s:
        runs = s.scalars(select(RuleRun).where(RuleRun.trigger == "condition_true")).all()
    assert sorted(r.rule_id for r in runs) == sorted([by_rule["vip_tag"], by_rule["paid_flag"]])


def test_a_new_records_states_and_timers_are_written_in_one_statement_each(owner, orders, platform, clock):
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "status_changed_at", "type": "datetime"}), 201)
    for i in range(4):
        rule(owner, {"api_name": f"edge_{i}", "table": "orders", "trigger": {"type": "condition_true"},
                     "condition": f"amount > {i * 100}", "actions": [{"type": "update_record", "values": {"weight": i}}]})
        rule(owner, {"api_name": f"sla_{i}", "table": "orders", "condition": "ISBLANK(tracking_no)",
                     "trigger": {"type": "time_after", "field": "created", "offset": f"{i + 1} hours"},
                     "actions": [{"type": "update_record", "values": {"status": "'异常中'"}}]})
    owner.ok(owner.post("/tables/orders/records", json={"amount": 1}), 201)  # warm the caches
    seen, stop = _statements(platform)
    try:
        o = owner.ok(owner.post("/tables/orders/records", json={"amount": 250, "created": "2026-11-21 10:00"}), 201)
    finally:
        stop()
    assert o["weight"] == 2  # edge_0, edge_1 and edge_2 fired, in order
    assert sum(st.startswith("INSERT INTO rule_states") for st in seen) == 1
    assert sum(st.startswith("INSERT INTO rule_timers") for st in seen) == 1
    assert not any(st.startswith("SELECT rule_states") for st in seen)  # a new record has none to read
    with platform.tenant_session(None) as s:
        assert len(s.scalars(select(RuleState).where(RuleState.record_id == o["id"])).all()) == 4
        assert len(s.scalars(select(RuleTimer).where(RuleTimer.record_id == o["id"], RuleTimer.status == "armed")).all()) == 4


def test_a_refused_create_leaves_no_states_or_timers(owner, orders, platform, clock):
    rule(owner, {"api_name": "edge", "table": "orders", "trigger": {"type": "condition_true"}, "condition": "amount > 0",
                 "actions": [{"type": "update_record", "values": {"weight": 1}}]})
    rule(owner, {"api_name": "sla", "table": "orders", "condition": "ISBLANK(tracking_no)",
                 "trigger": {"type": "time_after", "field": "created", "offset": "1 hours"},
                 "actions": [{"type": "update_record", "values": {"status": "'异常中'"}}]})
    rule(owner, {"api_name": "no_big", "table": "orders", "trigger": {"type": "record_created"}, "condition": "amount > 1000",
                 "actions": [{"type": "reject", "message": "金额过大"}]})
    r = owner.post("/tables/orders/records", json={"amount": 5000, "created": "2026-11-21 10:00"})
    assert r.status_code == 400 and "金额过大" in r.get_data(as_text=True)
    ok = owner.ok(owner.post("/tables/orders/records", json={"amount": 50, "created": "2026-11-21 10:00"}), 201)
    with platform.tenant_session(None) as s:
        assert [x.record_id for x in s.scalars(select(RuleState))] == [ok["id"]]
        assert [x.record_id for x in s.scalars(select(RuleTimer))] == [ok["id"]]


def test_count_and_sum_rollups_over_a_one_to_many_link_follow_edits_deletes_and_their_filter(owner, orders, platform, clock):
    owner.ok(owner.post("/tables", json={"api_name": "warehouses", "fields": [{"api_name": "name", "type": "text"}]}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "warehouse", "type": "link", "options": {"target": "warehouses"}}), 201)
    for f in [{"api_name": "orders", "type": "link", "options": {"target": "orders", "relationship": "one_to_many", "via": "warehouse"}},
              {"api_name": "orders_today", "type": "rollup",
               "options": {"through": "orders", "fn": "count", "filter": {"field": "created", "op": "today"}}},
              {"api_name": "paid_total", "type": "rollup", "options": {"through": "orders", "field": "paid", "fn": "sum",
                                                                        "result_type": "currency", "decimals": 2}},
              {"api_name": "load", "type": "formula", "options": {"expression": "orders_today * 10 + paid_total"}}]:
        owner.ok(owner.post("/tables/warehouses/fields", json=f), 201)
    wh = owner.ok(owner.post("/tables/warehouses/records", json={"name": "华东仓"}), 201)
    today, yesterday = "2026-11-21 11:00", "2026-11-20 11:00"  # the clock is 2026-11-21 10:00 in Asia/Shanghai
    a = owner.ok(owner.post("/tables/orders/records", json={"warehouse": wh["id"], "created": today, "paid": 10.5}), 201)
    owner.ok(owner.post("/tables/orders/records", json={"warehouse": wh["id"], "created": yesterday, "paid": 0.25}), 201)
    c = owner.ok(owner.post("/tables/orders/records", json={"warehouse": wh["id"], "created": today}), 201)  # no payment: blank
    owner.ok(owner.post("/tables/orders/records", json={"created": today, "paid": 99}), 201)  # no warehouse: not counted
    got = owner.ok(owner.get(f"/tables/warehouses/records/{wh['id']}"))
    assert (got["orders_today"], got["paid_total"], got["load"]) == (2, 10.75, 30.75)
    owner.ok(owner.patch(f"/tables/orders/records/{c['id']}", json={"paid": 1}))
    assert owner.delete(f"/tables/orders/records/{a['id']}").status_code < 400
    got = owner.ok(owner.get(f"/tables/warehouses/records/{wh['id']}"))
    assert (got["orders_today"], got["paid_total"], got["load"]) == (1, 1.25, 11.25)
    # the counted rows are counted by the database, not read one by one
    seen, stop = _statements(platform)
    try:
        owner.ok(owner.post("/tables/orders/records", json={"warehouse": wh["id"], "created": today, "paid": 2}), 201)
    finally:
        stop()
    assert any("count(*)" in st.lower() for st in seen)
    got = owner.ok(owner.get(f"/tables/warehouses/records/{wh['id']}"))
    assert (got["orders_today"], got["paid_total"]) == (2, 3.25)

"""Filters inside rule actions built with the visual filter editor (a literal condition and one
whose value is an expression over the triggering record), a sort picked for pick_row, and an
approver picked from the tenant's members: checked through the API (the stored rule) and by
the rule running on records."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "boss@shop.test", "boss-password-123"

ORDERS = {"api_name": "orders", "label": "订单", "fields": [
    {"api_name": "sku", "type": "text", "label": "SKU"},
    {"api_name": "amount", "type": "currency", "label": "金额"},
    {"api_name": "note", "type": "text", "label": "备注"},
]}
INVENTORY = {"api_name": "inventory", "label": "库存", "fields": [
    {"api_name": "sku", "type": "text", "label": "SKU"},
    {"api_name": "stock", "type": "number", "label": "库存数"},
    {"api_name": "state", "type": "single_select", "label": "状态",
     "options": {"choices": [{"label": "空闲"}, {"label": "已预订"}]}},
]}


def _setup(live_server):
    u = live_server.platform.create_user(EMAIL, PASSWORD, name="老板")
    live_server.platform.create_tenant("shop", "小店", owner_email=u.email)
    api = live_server.api(EMAIL, PASSWORD, "shop")
    api.post("/tables", ORDERS)
    api.post("/tables", INVENTORY)
    return api


def _login(browser, live_server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(live_server.url + "/")
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".mainnav")
    return page


def _new_rule(page, live_server, label, api_name):
    page.goto(live_server.url + "/#/rules/new")
    page.wait_for_selector("[data-test=rule-editor]")
    page.fill("[data-test=rule-label]", label)
    page.fill("[data-test=rule-api-name]", api_name)
    page.select_option("[data-test=rule-table]", "orders")
    page.select_option("[data-test=rule-trigger]", "record_created")
    page.check("[data-test=cond-mode-none]")


def test_update_records_with_a_visual_filter_is_stored_and_runs(live_server, browser, shot):
    api = _setup(live_server)
    page = _login(browser, live_server)
    _new_rule(page, live_server, "下单预订库存", "reserve_stock")

    page.select_option("[data-test=add-action]", "update_records")
    page.select_option("[data-test=a0-table]", "inventory")
    # the filter is edited visually over the inventory's fields: sku = the order's sku (an
    # expression), stock > 0 (a fixed value)
    page.wait_for_selector("[data-test=a0-filter-editor]")
    page.select_option("[data-test=a0-filter-field-0]", "sku")
    page.select_option("[data-test=a0-filter-op-0]", "=")
    page.select_option("[data-test=a0-filter-kind-0]", "expr")
    page.fill("[data-test=a0-filter-value-0]", "sku")
    page.click("[data-test=a0-filter-add]")
    page.select_option("[data-test=a0-filter-field-1]", "stock")
    page.select_option("[data-test=a0-filter-op-1]", ">")
    page.fill("[data-test=a0-filter-value-1]", "0")
    page.select_option("[data-test=a0-values-add]", "state")
    page.select_option("[data-test=a0-values-state]", "已预订")
    shot(page, "60-rule-action-visual-filter")
    page.click("[data-test=rule-save]")
    page.wait_for_selector("text=规则已保存")

    rule = next(r for r in api.get("/rules")["rules"] if r["api_name"] == "reserve_stock")
    assert rule["actions"] == [{
        "type": "update_records", "table": "inventory",
        "filter": {"and": [{"field": "sku", "op": "=", "value": {"$expr": "sku"}},
                           {"field": "stock", "op": ">", "value": 0}]},
        "values": {"state": {"value": "已预订"}},
    }]

    # it runs: only the inventory row of the ordered sku with stock is reserved
    hit = api.post("/tables/inventory/records", {"sku": "A-1", "stock": 5, "state": "空闲"})
    empty = api.post("/tables/inventory/records", {"sku": "A-1", "stock": 0, "state": "空闲"})
    other = api.post("/tables/inventory/records", {"sku": "B-2", "stock": 9, "state": "空闲"})
    api.post("/tables/orders/records", {"sku": "A-1", "amount": 10})
    got = {r["id"]: r["state"] for r in api.get("/tables/inventory/records")["records"]}
    assert got == {hit["id"]: "已预订", empty["id"]: "空闲", other["id"]: "空闲"}

    # the stored filter opens again visually; the JSON escape hatch shows the same filter
    page.goto(live_server.url + "/#/rules")
    page.goto(live_server.url + "/#/rules/reserve_stock")
    page.wait_for_selector("[data-test=a0-filter-field-1]")
    assert page.locator("[data-test=a0-filter-kind-0]").input_value() == "expr"
    assert page.locator("[data-test=a0-filter-value-0]").input_value() == "sku"
    assert page.locator("[data-test=a0-filter-value-1]").input_value() == "0"
    page.check("[data-test=a0-filter-mode-json]")
    assert '"$expr": "sku"' in page.locator("[data-test=a0-filter]").input_value()


def test_pick_row_sort_and_an_approver_picked_from_the_members(live_server, browser, shot):
    api = _setup(live_server)
    api.post("/members", {"email": "checker@shop.test", "name": "审核员小王", "role": "member", "password": "checker-password-1"})
    checker = next(m for m in api.get("/members")["members"] if m["email"] == "checker@shop.test")
    page = _login(browser, live_server)
    _new_rule(page, live_server, "大单审批", "approve_big")

    # pick_row: the inventory row of the sku with the most stock, its state written to the note
    page.select_option("[data-test=add-action]", "pick_row")
    page.select_option("[data-test=a0-table]", "inventory")
    page.select_option("[data-test=a0-filter-field-0]", "sku")
    page.select_option("[data-test=a0-filter-kind-0]", "expr")
    page.fill("[data-test=a0-filter-value-0]", "sku")
    page.select_option("[data-test=a0-sorts-add]", "stock")
    page.select_option("[data-test=a0-sorts-dir-0]", "desc")
    page.select_option("[data-test=a0-set-add]", "note")  # the order's fields: set writes into the record
    page.select_option("[data-test=a0-set-note-kind]", "expr")
    page.fill("[data-test=a0-set-note]", "row.state")

    # an approval by a member picked from the list (names and emails shown), not a typed id
    page.select_option("[data-test=add-action]", "start_approval")
    page.fill("[data-test=a1-title]", "请审批")
    assert page.locator("label:has([data-test='a1-approvers-user-checker@shop.test'])").inner_text().strip().startswith("审核员小王")
    page.check("[data-test='a1-approvers-user-checker@shop.test']")
    shot(page, "61-rule-approver-picker")
    page.click("[data-test=rule-save]")
    page.wait_for_selector("text=规则已保存")

    rule = next(r for r in api.get("/rules")["rules"] if r["api_name"] == "approve_big")
    assert rule["actions"][0] == {"type": "pick_row", "table": "inventory",
                                  "filter": {"field": "sku", "op": "=", "value": {"$expr": "sku"}},
                                  "sorts": [{"field": "stock", "direction": "desc"}], "set": {"note": "row.state"}}
    assert rule["actions"][1] == {"type": "start_approval", "title": "请审批", "approvers": {"users": [checker["id"]]}}

    api.post("/tables/inventory/records", {"sku": "A-1", "stock": 2, "state": "空闲"})
    api.post("/tables/inventory/records", {"sku": "A-1", "stock": 7, "state": "已预订"})
    order = api.post("/tables/orders/records", {"sku": "A-1", "amount": 10})
    assert api.get(f"/tables/orders/records/{order['id']}")["note"] == "已预订"
    approvals = api.get("/approvals")["approvals"]
    assert [(a["record_id"], a["title"]) for a in approvals] == [(order["id"], "请审批")]

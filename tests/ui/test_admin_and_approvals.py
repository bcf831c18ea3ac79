"""Admin screens and the approvals inbox on a phone."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "boss@shop.test", "boss-password-123"


def test_connector_install_members_and_an_approval_on_a_phone(live_server, browser, shot):
    u = live_server.platform.create_user(EMAIL, PASSWORD, name="老板")
    live_server.platform.create_tenant("shop", "小店", owner_email=u.email)
    live_server.platform.create_user("clerk@shop.test", "clerk-password-1", name="店员")
    api = live_server.api(EMAIL, PASSWORD, "shop")
    api.post("/tables", {"api_name": "orders", "label": "订单", "fields": [{"api_name": "amount", "type": "currency", "label": "金额"}]})
    api.post("/rules", {"api_name": "big_order", "table": "orders", "trigger": {"type": "record_created"}, "condition": "amount > 1000",
                        "actions": [{"type": "start_approval", "title": "大额订单需审批", "approvers": {"roles": ["owner"]}}]})
    rec = api.post("/tables/orders/records", {"amount": 5000})

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".mainnav")

    # members: add one and give a role
    page.goto(live_server.url + "/#/admin/members")
    page.fill("#nm-email", "clerk@shop.test")
    page.click("form.row >> button[type=submit]")
    page.wait_for_selector("td >> text=clerk@shop.test")
    page.select_option("[aria-label='角色 clerk@shop.test']", "builder")
    page.wait_for_selector("text=角色已修改")
    assert {m["email"]: m["role"] for m in api.get("/members")["members"]}["clerk@shop.test"] == "builder"

    # a connector configured from its schema; a bad credential is shown at its control
    page.goto(live_server.url + "/#/admin/connectors")
    page.click("[data-test=install-dingtalk]")
    page.fill("#cr-webhook_url", "ftp://nope")
    page.click("[data-test=connector-config] >> button[type=submit]")
    page.wait_for_selector("[data-test=connector-config] .has-error #cr-webhook_url")
    shot(page, "40-connector-config-error")
    page.fill("#cr-webhook_url", "https://oapi.dingtalk.com/robot/send?access_token=abc")
    page.click("[data-test=connector-config] >> button[type=submit]")
    page.wait_for_selector("td >> text=dingtalk")
    assert [i["connector"] for i in api.get("/connectors")["installs"]] == ["dingtalk"]
    page.goto(live_server.url + "/#/admin/deadletters")
    page.wait_for_selector("[data-test=dead-letters]")
    page.goto(live_server.url + "/#/admin/audit")
    page.wait_for_selector("[data-test=audit] >> text=rule")
    shot(page, "41-admin-audit")

    # the approvals inbox on a phone: approve with a comment
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(live_server.url + "/")
    phone.fill("#login-email", EMAIL)
    phone.fill("#login-password", PASSWORD)
    phone.click("button[type=submit]")
    phone.goto(live_server.url + "/#/approvals")
    phone.wait_for_selector("text=大额订单需审批")
    phone.fill(".approval-list textarea", "同意，尽快发货")
    shot(phone, "42-approvals-phone")
    phone.click(".approval-list >> text=同意")
    phone.wait_for_selector("text=没有待处理的审批")
    a = api.get("/approvals")["approvals"][0]
    assert a["status"] == "approved" and a["comment"] == "同意，尽快发货" and a["record_id"] == rec["id"]
    phone.close()

"""A notify rule built in the browser: the message form comes from the e-mail action's schema
without the `data` input (a rule renders its texts itself; saving refuses `data`), it saves,
and the rule sends an e-mail whose HTML part escapes what the customer typed. A rule saved
with `data` before shows it, with a hint, so it can be cleared and saved."""
from __future__ import annotations

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "boss@shop.test", "boss-password-123"
ORDERS = {"api_name": "orders", "label": "订单", "fields": [
    {"api_name": "order_no", "type": "text", "label": "订单号"},
    {"api_name": "remark", "type": "text", "label": "备注"}]}


def _setup(live_server):
    u = live_server.platform.create_user(EMAIL, PASSWORD, name="老板")
    live_server.platform.create_tenant("shop", "小店", owner_email=u.email)
    api = live_server.api(EMAIL, PASSWORD, "shop")
    api.post("/tables", ORDERS)
    api.post("/connectors", {"connector": "email", "api_name": "mail", "config": {
        "host": "127.0.0.1", "port": 2525, "security": "none", "from_address": "noreply@shop.test"}})
    return api


def _login(browser, live_server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(live_server.url + "/")
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".mainnav")
    return page


def test_a_notify_email_built_in_the_form_saves_and_escapes_the_customers_text(live_server, browser, shot):
    api = _setup(live_server)
    page = _login(browser, live_server)
    page.goto(live_server.url + "/#/rules/new")
    page.wait_for_selector("[data-test=rule-editor]")
    page.fill("[data-test=rule-label]", "新订单邮件")
    page.fill("[data-test=rule-api-name]", "mail_new_order")
    page.select_option("[data-test=rule-table]", "orders")
    page.select_option("[data-test=rule-trigger]", "record_created")
    page.check("[data-test=cond-mode-none]")

    page.select_option("[data-test=add-action]", "notify")
    page.select_option("[data-test=a0-connector]", "mail")
    page.select_option("[data-test=a0-action]", "send_email")
    page.wait_for_selector("[data-test=a0-input-subject]")
    # the form offers the e-mail's fields, but not `data`
    for name in ("to", "cc", "subject", "text", "html"):
        assert page.locator(f"[data-test=a0-input-{name}]").count() == 1, name
    assert page.locator("[data-test=a0-input-data]").count() == 0
    page.fill("[data-test=a0-input-to]", '["ops@shop.test"]')
    page.fill("[data-test=a0-input-subject]", "新订单 ")
    page.select_option("[data-test=a0-input-subject-insert]", "{{ record.order_no }}")
    page.fill("[data-test=a0-input-text]", "备注：")
    page.select_option("[data-test=a0-input-text-insert]", "{{ record.remark }}")
    page.fill("[data-test=a0-input-html]", "<p>备注：")
    page.select_option("[data-test=a0-input-html-insert]", "{{ record.remark }}")
    page.locator("[data-test=a0-input-html]").press("End")
    page.locator("[data-test=a0-input-html]").type("</p>")
    shot(page, "60-rule-notify-email-form")
    page.click("[data-test=rule-save]")
    page.wait_for_selector("text=规则已保存")

    rule = next(r for r in api.get("/rules")["rules"] if r["api_name"] == "mail_new_order")
    assert rule["actions"] == [{"type": "notify", "connector": "mail", "action": "send_email", "input": {
        "to": ["ops@shop.test"], "subject": "新订单 {{ record.order_no }}", "text": "备注：{{ record.remark }}",
        "html": "<p>备注：{{ record.remark }}</p>"}}]

    # it runs: the queued e-mail escapes the remark in its HTML part only
    api.post("/tables/orders/records", {"order_no": "SO-1", "remark": "<script>alert(1)</script>"})
    [job] = [api.get(f"/outbox/{j['id']}")["job"] for j in api.get("/outbox")["jobs"] if j["kind"] == "connector.action"]
    assert job["payload"]["input"] == {"to": ["ops@shop.test"], "subject": "新订单 SO-1",
                                       "text": "备注：<script>alert(1)</script>",
                                       "html": "<p>备注：&lt;script&gt;alert(1)&lt;/script&gt;</p>"}


def test_a_rule_saved_with_data_before_shows_it_to_clear_it(live_server, browser):
    from zhongshu.runtime.models import Rule

    api = _setup(live_server)
    api.post("/rules", {"api_name": "old_mail", "table": "orders", "trigger": {"type": "record_created"},
                        "actions": [{"type": "notify", "connector": "mail", "action": "send_email",
                                     "input": {"to": ["ops@shop.test"], "subject": "{{ record.order_no }}", "text": "新订单"}}]})
    # as saved by an older version, which still accepted input.data
    with live_server.platform.tenant_session(None, write=True) as s:
        row = s.scalar(select(Rule).where(Rule.api_name == "old_mail"))
        d = dict(row.definition)
        d["actions"] = [{**d["actions"][0], "input": {**d["actions"][0]["input"], "data": {"n": 1}}}]
        row.definition = d

    page = _login(browser, live_server)
    page.goto(live_server.url + "/#/rules/old_mail")
    page.wait_for_selector("[data-test=a0-input-data]")
    assert "clear this" in page.inner_text("[data-test=action-0]") or "清空此项" in page.inner_text("[data-test=action-0]")
    page.fill("[data-test=a0-input-data]", "")
    assert page.locator("[data-test=a0-input-data]").count() == 0  # cleared: the form no longer offers it
    page.click("[data-test=rule-save]")
    page.wait_for_selector("text=规则已保存")
    rule = next(r for r in api.get("/rules")["rules"] if r["api_name"] == "old_mail")
    assert rule["actions"][0]["input"] == {"to": ["ops@shop.test"], "subject": "{{ record.order_no }}", "text": "新订单"}

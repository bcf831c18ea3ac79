"""Bad input in the browser: the API's message lands next to the control that caused it,
nothing typed is lost, and a conflicting edit (409) is explained with a reload offer."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "builder@shop.test", "builder-password-1"


def _login(server, browser):
    u = server.platform.create_user(EMAIL, PASSWORD, name="搭建者")
    server.platform.create_tenant("shop", "小店", owner_email=u.email, locale="zh-CN")
    api = server.api(EMAIL, PASSWORD, "shop")
    api.post("/tables", {"api_name": "orders", "label": "订单", "fields": [
        {"api_name": "customer", "type": "text", "label": "客户"},
        {"api_name": "paid", "type": "currency", "label": "实收"}]})
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".mainnav")
    return api, page, errors


def test_errors_sit_next_to_their_controls_and_a_conflict_offers_a_reload(live_server, browser, shot):
    api, page, errors = _login(live_server, browser)

    # formula: checked while typing, then by the server on save
    page.goto(live_server.url + "/#/designer/orders")
    page.wait_for_selector("[data-test=canvas-field-paid]")
    page.click("[data-test=palette-formula]")
    page.fill("[data-test=field-api-name]", "due")
    page.fill("[data-test=field-formula]", "paid * (2")
    page.wait_for_selector("[data-test=formula-check].field-error >> text=括号没有闭合")
    page.fill("[data-test=field-formula]", "paod * 2")
    page.wait_for_selector("[data-test=formula-check] >> text=paod")
    page.fill("[data-test=field-formula]", "paid * 2")
    page.wait_for_selector("[data-test=formula-check].ok-note")
    # an autonumber with a broken pattern: refused by the server, shown at the pattern control
    page.click("[data-test=palette-autonumber]")
    page.fill("[data-test=field-api-name]", "order_no")
    page.fill("[data-test=field-pattern]", "SO{seq")
    page.click("[data-test=save-table]")
    err = page.locator(".has-error #f-pattern ~ .field-error, #f-pattern-err")
    err.first.wait_for()
    assert page.locator("[data-test=canvas-field-order_no].has-error").count() == 1
    assert page.locator("[data-test=field-pattern]").input_value() == "SO{seq"  # kept
    shot(page, "20-designer-server-error")
    page.fill("[data-test=field-pattern]", "SO{seq:05}")
    page.click("[data-test=save-table]")
    page.wait_for_selector("text=已保存")
    fields = [f["api_name"] for f in api.get("/tables/orders")["table"]["fields"]]
    assert fields == ["customer", "paid", "due", "order_no"]

    # a rule whose expression does not parse: the message is under the condition
    page.goto(live_server.url + "/#/rules/new")
    page.wait_for_selector("[data-test=rule-editor]")
    page.fill("[data-test=rule-label]", "坏规则")
    page.fill("[data-test=rule-api-name]", "bad_rule")
    page.select_option("[data-test=rule-table]", "orders")
    page.check("[data-test=cond-mode-expr]")
    page.fill("[data-test=rule-expr]", "paid >")
    page.select_option("[data-test=add-action]", "reject")
    page.fill("[data-test=a0-message]", "不允许")
    page.click("[data-test=rule-save]")
    page.wait_for_selector("fieldset.has-error [data-test=rule-expr] ~ .field-error")
    assert page.locator("[data-test=rule-expr]").input_value() == "paid >"
    shot(page, "21-rule-error")

    # a conflict: someone else changes the record while it is on screen
    rec = api.post("/tables/orders/records", {"customer": "张三"})
    page.goto(live_server.url + "/#/table/orders")
    page.wait_for_selector("[data-row='0'] [data-field=customer] >> text=张三")
    c = live_server.app.test_client()
    r = c.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    c.patch(f"/api/v1/tenants/shop/tables/orders/records/{rec['id']}", json={"customer": "张三丰"},
            headers={"X-CSRF-Token": r.get_json()["csrf_token"]})
    page.locator("[data-row='0'] [data-field=customer]").click()
    page.keyboard.press("Enter")
    page.locator(".cell-editor").fill("张四")
    page.keyboard.press("Enter")
    banner = page.locator("[data-test=conflict]")
    banner.wait_for()
    assert "别人修改" in banner.inner_text()
    shot(page, "22-grid-conflict")
    banner.locator("button").click()
    page.wait_for_selector("[data-row='0'] [data-field=customer] >> text=张三丰")

    # keyboard: arrows move, Esc cancels an edit
    page.locator("[data-row='0'] [data-field=customer]").click()
    page.keyboard.press("ArrowRight")
    assert page.locator(".cell.active").get_attribute("data-field") == "paid"
    page.keyboard.press("Enter")
    page.keyboard.type("5")
    page.keyboard.press("Escape")
    assert page.locator(".cell-editor").count() == 0
    assert api.get(f"/tables/orders/records/{rec['id']}")["paid"] is None
    assert not errors, errors

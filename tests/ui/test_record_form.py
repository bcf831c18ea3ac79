"""The record form: a link picked by searching the linked table, an attachment uploaded,
sub-table lines reordered, and the history tab."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "ops@shop.test", "ops-password-123"


def test_link_search_attachment_lines_and_history(live_server, browser, shot, tmp_path):
    u = live_server.platform.create_user(EMAIL, PASSWORD, name="运营")
    live_server.platform.create_tenant("shop", "小店", owner_email=u.email)
    api = live_server.api(EMAIL, PASSWORD, "shop")
    api.post("/tables", {"api_name": "customers", "label": "客户", "fields": [{"api_name": "name", "type": "text", "label": "姓名"}]})
    api.post("/tables/customers/records", {"records": [{"name": "王五"}, {"name": "赵六"}]})
    api.post("/tables", {"api_name": "orders", "label": "订单", "fields": [
        {"api_name": "title", "type": "text", "label": "标题"},
        {"api_name": "customer", "type": "link", "label": "客户", "options": {"target": "customers"}},
        {"api_name": "receipt", "type": "attachment", "label": "收据"},
        {"api_name": "due", "type": "date", "label": "交期"},
        {"api_name": "items", "type": "sub_table", "label": "明细", "options": {"fields": [{"api_name": "sku", "type": "text"}]}}]})
    import datetime as dt
    today = dt.date.today().isoformat()
    rec = api.post("/tables/orders/records", {"title": "第一单", "due": today, "items": [{"sku": "A"}, {"sku": "B"}, {"sku": "C"}]})

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(live_server.url + "/#/table/orders")
    page.click(f"[data-test=open-{rec['id']}]")
    page.fill("#rf-customer", "赵")
    page.click(".link-results >> text=赵六")
    page.wait_for_selector(".link-picker .chip >> text=赵六")
    f = tmp_path / "收据.txt"
    f.write_text("paid", encoding="utf-8")
    page.set_input_files("#rf-receipt", str(f))
    page.wait_for_selector(".attachments >> text=收据.txt")
    page.click("[aria-label='第 3 行上移']")  # C before B
    shot(page, "30-record-form-link-attachment")
    page.click("[data-test=record-save]")
    page.wait_for_selector("text=已保存")
    got = api.get(f"/tables/orders/records/{rec['id']}")
    assert got["customer"] == 2
    assert [a["filename"] for a in got["receipt"]] == ["收据.txt"]
    assert [x["sku"] for x in got["items"]] == ["A", "C", "B"]
    page.click("[data-test=tab-history]")
    page.wait_for_selector("[data-test=history] >> text=v2")
    shot(page, "31-record-history")

    page.keyboard.press("Escape")

    # a form view for data entry, shared with members only
    page.click("[data-test=save-view]")
    page.fill("[data-test=view-name]", "录单")
    page.fill("[data-test=view-api-name]", "entry")
    page.select_option("[data-test=view-type]", "form")
    page.check("fieldset.roles >> text=成员")
    page.click("[data-test=view-save]")
    page.wait_for_selector("[data-test=form-view]")
    page.fill("[data-test=fv-title]", "表单录入的订单")
    page.click("[data-test=form-submit]")
    page.wait_for_selector("[data-test=form-view] .banner.ok")
    assert api.get("/tables/orders/views/entry")["view"]["roles"] == ["member"]
    titles = [r["title"] for r in api.get("/tables/orders/records?sort=id")["records"]]
    assert titles == ["第一单", "表单录入的订单"]
    shot(page, "32-form-view")

    # a calendar view by the due date
    api.post("/tables/orders/views", {"api_name": "by_due", "label": "交期日历", "type": "calendar", "calendar": {"field": "due"}})
    page.goto(live_server.url + "/#/table/orders/by_due")
    page.reload()
    page.wait_for_selector("[data-test=calendar] .cal-day.today >> text=第一单")
    shot(page, "33-calendar-view")

    # lookup and rollup fields are configured with pickers
    page.goto(live_server.url + "/#/designer/orders")
    page.wait_for_selector("[data-test=canvas-field-items]")
    page.click("[data-test=palette-rollup]")
    page.fill("[data-test=field-api-name]", "n_items")
    page.select_option("#f-through", "items")
    page.select_option("#f-fn", "count")
    page.click("[data-test=palette-lookup]")
    page.fill("[data-test=field-api-name]", "customer_name")
    page.select_option("#f-through", "customer")
    page.select_option("#f-of", "name")
    page.click("[data-test=save-table]")
    page.wait_for_selector("text=已保存")
    got = api.get(f"/tables/orders/records/{rec['id']}")
    assert got["n_items"] == 3 and got["customer_name"] == "赵六"

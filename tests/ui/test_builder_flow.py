"""One business user's first hour, in a real browser: build a table with a sub-table by
dragging fields, add records in the grid, build a kanban view and drag a card, write a rule
(paid > 0 -> status 已付款) and see it fire, build a dashboard card, switch to English.
Screenshots of the main screens land in test-artifacts/ui/."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "lead@shop.test", "lead-password-1"


def _setup_user(server):
    u = server.platform.create_user(EMAIL, PASSWORD, name="运营主管")
    server.platform.create_tenant("shop", "小店订单中枢", owner_email=u.email, locale="zh-CN")
    return server.api(EMAIL, PASSWORD, "shop")


def _drag(page, source: str, target: str, *, at: str = "end"):
    """A real HTML5 drag (SortableJS) from source onto target, dropped at its end or top."""
    box = page.locator(target).bounding_box()
    y = box["height"] - 6 if at == "end" else 8
    page.drag_and_drop(source, target, target_position={"x": min(60, box["width"] / 2), "y": y})
    page.wait_for_timeout(150)


def _field_panel(page, canvas_api_name: str, label: str, api_name: str):
    page.click(f"[data-test=canvas-field-{canvas_api_name}] .canvas-select")
    page.fill("[data-test=field-label]", label)
    page.fill("[data-test=field-api-name]", api_name)


def _edit_cell(page, row: int, field: str, text: str):
    cell = page.locator(f"[data-row='{row}'] [data-field={field}]")
    cell.click()
    page.keyboard.press("Enter")
    editor = page.locator(".cell-editor")
    editor.wait_for()
    if editor.evaluate("e => e.tagName") == "SELECT":
        editor.select_option(text)
    else:
        editor.fill(text)
        page.keyboard.press("Enter")
    page.wait_for_timeout(300)


def test_a_new_user_builds_an_order_hub(live_server, browser, shot):
    api = _setup_user(live_server)
    page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None)

    # -- log in (zh-CN by default) -------------------------------------------------------------
    page.goto(live_server.url + "/")
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    shot(page, "01-login")
    page.click("button[type=submit]")
    page.wait_for_selector("text=新建数据表")

    # -- table designer: drag fields onto the canvas ------------------------------------------
    page.click("[data-test=new-table]")
    page.wait_for_selector("[data-test=canvas]")
    page.fill("[data-test=table-label]", "订单")
    page.fill("[data-test=table-api-name]", "orders")
    _drag(page, "[data-test=palette-text]", "[data-test=canvas]")
    _drag(page, "[data-test=palette-currency]", "[data-test=canvas]")
    _drag(page, "[data-test=palette-single_select]", "[data-test=canvas]")
    _drag(page, "[data-test=palette-sub_table]", "[data-test=canvas]")
    assert page.locator(".canvas-field").count() == 4
    # reorder by dragging: a field dropped at the top goes first
    _drag(page, "[data-test=palette-boolean]", "[data-test=canvas]", at="top")
    names = page.locator(".canvas-field .mono").all_inner_texts()
    assert names == ["boolean_1", "text_1", "currency_1", "single_select_1", "sub_table_1"], names
    page.click("[data-test=canvas-field-boolean_1] .canvas-select")
    page.click("text=删除此字段")

    _field_panel(page, "text_1", "客户", "customer")
    _field_panel(page, "currency_1", "实收", "paid")
    _field_panel(page, "single_select_1", "订单状态", "status")
    page.fill("[data-test=choice-0]", "待付款")
    page.click("[data-test=add-choice]")
    page.fill("[data-test=choice-1]", "已付款")
    # a section groups fields on the record form
    page.click("[data-test=add-section]")
    page.fill("[data-test=section-0]", "基本信息")
    for name in ("customer", "status"):
        page.click(f"[data-test=canvas-field-{name}] .canvas-select")
        page.select_option("[data-test=field-section]", label="基本信息")
    # the sub-table: its columns are dragged from the same palette
    page.click("[data-test=canvas-field-sub_table_1] .canvas-select")
    page.fill("[data-test=field-label]", "商品明细")
    page.fill("[data-test=field-api-name]", "Items!")  # a mistake, shown at the control on save
    _drag(page, "[data-test=palette-text]", "[data-test=subtable-canvas]")
    _drag(page, "[data-test=palette-number]", "[data-test=subtable-canvas]")
    assert page.locator("[data-test=subtable-canvas] .col-item").count() == 2
    page.fill("[aria-label='第 1 列名称']", "SKU")
    page.fill("[aria-label='第 1 列 API 名称']", "sku")
    page.fill("[aria-label='第 2 列名称']", "数量")
    page.fill("[aria-label='第 2 列 API 名称']", "qty")
    page.click("[data-test=save-table]")
    err = page.locator("#f-api-err")
    err.wait_for()
    assert "Items!" in err.inner_text() or "api" in err.inner_text().lower() or err.inner_text()
    assert page.locator("[data-test=save-errors]").is_visible()
    assert page.locator("[data-test=canvas-field-Items\\!]").count() == 1  # unsaved changes kept
    shot(page, "02-designer-error")
    page.fill("[data-test=field-api-name]", "items")
    page.click("[data-test=save-table]")
    page.wait_for_url("**/#/designer/orders")
    page.wait_for_selector("[data-test=canvas-field-items]")
    shot(page, "03-designer")
    tables = {t["api_name"]: t for t in api.get("/tables")["tables"]}
    assert [f["api_name"] for f in tables["orders"]["fields"]] == ["customer", "paid", "status", "items"]
    assert [f["api_name"] for f in tables["orders_items"]["fields"]] == ["sku", "qty"]
    status = next(f for f in tables["orders"]["fields"] if f["api_name"] == "status")
    assert [c["label"] for c in status["options"]["choices"]] == ["待付款", "已付款"]
    assert tables["orders"]["sections"] == [{"label": "基本信息", "fields": ["customer", "status"]}]

    # -- grid: add records and edit inline with the keyboard ----------------------------------
    page.goto(live_server.url + "/#/table/orders")
    page.wait_for_selector("[data-test=grid]")
    page.click("[data-test=add-record]")
    page.wait_for_selector("[data-row='0'] [data-field=customer]")
    _edit_cell(page, 0, "customer", "张三")
    page.click("[data-test=add-record]")
    page.wait_for_selector("[data-row='1'] [data-field=customer]")
    _edit_cell(page, 1, "customer", "李四")
    _edit_cell(page, 1, "status", "待付款")
    page.wait_for_selector("[data-row='1'] [data-field=status] .pill")
    recs = api.get("/tables/orders/records?sort=id")["records"]
    assert [r["customer"] for r in recs] == ["张三", "李四"]
    assert recs[1]["status"] == "待付款"
    # the record form: sub-table lines
    page.click(f"[data-test=open-{recs[0]['id']}]")
    page.wait_for_selector(".form-section >> text=基本信息")
    page.click("[data-test=add-line-items]")
    page.fill("[data-test=line-items-0-sku]", "A1")
    page.fill("[data-test=line-items-0-qty]", "2")
    page.click("[data-test=add-line-items]")
    page.fill("[data-test=line-items-1-sku]", "B2")
    shot(page, "04-record-form")
    page.click("[data-test=record-save]")
    page.wait_for_selector("text=已保存")
    rec = api.get(f"/tables/orders/records/{recs[0]['id']}")
    assert [x["sku"] for x in rec["items"]] == ["A1", "B2"] and rec["items"][0]["qty"] == 2
    page.keyboard.press("Escape")
    shot(page, "05-grid")

    # -- kanban view: drag a card to another column --------------------------------------------
    page.click("[data-test=save-view]")
    page.fill("[data-test=view-name]", "状态看板")
    page.fill("[data-test=view-api-name]", "board")
    page.select_option("[data-test=view-type]", "kanban")
    page.select_option("[data-test=view-kanban-field]", "status")
    page.click("[data-test=view-save]")
    page.wait_for_selector("[data-test=kanban]")
    first = recs[0]["id"]
    page.wait_for_selector(f"[data-test=kcol-empty] [data-test=kcard-{first}]")
    _drag(page, f"[data-test=kcard-{first}]", "[data-test=kcol-已付款]")
    page.wait_for_selector(f"[data-test=kcol-已付款] [data-test=kcard-{first}]")
    page.wait_for_timeout(300)
    assert api.get(f"/tables/orders/records/{first}")["status"] == "已付款"
    shot(page, "06-kanban")

    # -- rule: paid > 0 -> status 已付款 --------------------------------------------------------
    page.goto(live_server.url + "/#/rules/new")
    page.wait_for_selector("[data-test=rule-editor]")
    page.fill("[data-test=rule-label]", "付款后改为已付款")
    page.fill("[data-test=rule-api-name]", "paid_to_status")
    page.select_option("[data-test=rule-table]", "orders")
    page.select_option("[data-test=rule-trigger]", "record_updated")
    page.check("[data-test=trigger-field-paid]")
    page.check("[data-test=cond-mode-tree]")
    page.select_option("[data-test=rc-field-0]", "paid")
    page.select_option("[data-test=rc-op-0]", ">")
    page.fill("[data-test=rc-value-0]", "0")
    page.select_option("[data-test=add-action]", "update_record")
    page.select_option("[data-test=a0-values-add]", "status")
    page.select_option("[data-test=a0-values-status]", "已付款")
    shot(page, "07-rule")
    page.click("[data-test=rule-save]")
    page.wait_for_url("**/#/rules/paid_to_status")
    page.wait_for_selector("text=付款后改为已付款")
    rule = api.get("/rules/paid_to_status")["rule"]
    assert rule["condition"] == {"filter": {"field": "paid", "op": ">", "value": 0}}
    # it fires: enter a payment in the grid for the second order
    second = recs[1]["id"]
    page.goto(live_server.url + "/#/table/orders")
    page.wait_for_selector("[data-row='1'] [data-field=paid]")
    _edit_cell(page, 1, "paid", "99")
    page.wait_for_selector("[data-row='1'] [data-field=status] >> text=已付款")
    assert api.get(f"/tables/orders/records/{second}")["status"] == "已付款"
    # the rule's run log and a dry run
    page.goto(live_server.url + "/#/rules/paid_to_status")
    page.wait_for_selector("[data-test=rule-editor]")
    page.click("[data-test=load-runs]")
    page.wait_for_selector("[data-test=runs] >> text=ok")
    page.fill("[data-test=dry-id]", str(second))
    page.click("[data-test=dry-run]")
    page.wait_for_selector("[data-test=dry-result]")
    shot(page, "08-rule-runs")

    # -- dashboard: a number card with a threshold -----------------------------------------------
    page.goto(live_server.url + "/#/dashboards/new")
    page.wait_for_selector("[data-test=dash-editor]")
    page.fill("[data-test=dash-label]", "晨会大屏")
    page.fill("[data-test=dash-api-name]", "morning")
    page.click("[data-test=add-widget-number]")
    page.fill("[data-test=w-title-0]", "订单数")
    page.fill("[data-test=w-threshold-0]", "1")
    page.click("[data-test=add-widget-bar]")
    page.click("[data-test=dash-save]")
    page.wait_for_url("**/#/dashboards/morning")
    card = page.locator("[data-test=dash-view] .widget.number")
    card.wait_for()
    page.wait_for_selector("[data-test=dash-view] .widget.number >> text=2")
    assert card.get_attribute("data-alert") == "true"  # 2 orders > 1: the card turns red
    page.wait_for_timeout(400)
    shot(page, "09-dashboard")

    # -- switch the UI language --------------------------------------------------------------------
    assert page.locator("nav.mainnav >> text=仪表盘").is_visible()
    page.click("[data-test=lang-en]")
    page.wait_for_selector("nav.mainnav >> text=Dashboards")
    assert page.locator("nav.mainnav >> text=Automations").is_visible()
    page.goto(live_server.url + "/#/table/orders")
    page.wait_for_selector("[data-test=add-record] >> text=Add record")
    shot(page, "10-grid-english")

    # -- a phone: the kanban is usable at 390 px -------------------------------------------------
    phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone.goto(live_server.url + "/")
    phone.fill("#login-email", EMAIL)
    phone.fill("#login-password", PASSWORD)
    phone.click("button[type=submit]")
    phone.goto(live_server.url + "/#/table/orders/board")
    phone.wait_for_selector("[data-test=kanban] .kcard")
    shot(phone, "11-kanban-phone")
    phone.close()

    assert not errors, errors

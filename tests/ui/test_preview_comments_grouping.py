"""The formula preview in the designer, comments in the record form, and grid grouping saved
to a view — in headless Chromium against a real server."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

OWNER, MEMBER, VIEWER, PASSWORD = "boss@shop.test", "clerk@shop.test", "guest@shop.test", "shop-password-123"


@pytest.fixture
def shop(live_server):
    p = live_server.platform
    owner = p.create_user(OWNER, PASSWORD, name="店长")
    tenant = p.create_tenant("shop", "小店", owner_email=owner.email)
    for email, name, role in ((MEMBER, "客服小王", "member"), (VIEWER, "访客", "viewer")):
        u = p.create_user(email, PASSWORD, name=name)
        p.add_member(tenant.id, u.id, role)
    api = live_server.api(OWNER, PASSWORD, "shop")
    api.post("/tables", {"api_name": "orders", "label": "订单", "fields": [
        {"api_name": "title", "type": "text", "label": "标题"},
        {"api_name": "amount", "type": "currency", "label": "应收"},
        {"api_name": "paid", "type": "currency", "label": "实收"},
        {"api_name": "status", "type": "single_select", "label": "状态",
         "options": {"choices": [{"label": "待付款"}, {"label": "已付款"}, {"label": "已发货"}]}}]})
    recs = api.post("/tables/orders/records", {"records": [
        {"title": "一", "amount": 100, "paid": 40, "status": "待付款"},
        {"title": "二", "amount": 50, "paid": 0, "status": "已付款"},
        {"title": "三", "amount": 30, "paid": 30, "status": "待付款"},
        {"title": "四", "amount": 20, "paid": 20, "status": "已付款"},
        {"title": "五", "amount": 10, "paid": 0, "status": "待付款"},
        {"title": "六", "amount": 5, "paid": 0}]})["records"]
    return api, [r["id"] for r in recs]


def _login(browser, live_server, email, width=1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(live_server.url + "/")
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".topbar")
    return page


def test_a_formula_is_previewed_on_the_first_or_a_chosen_record(live_server, browser, shot, shop):
    api, ids = shop
    before = api.get("/tables/orders/records?sort=id")["records"]
    page = _login(browser, live_server, OWNER)
    page.goto(live_server.url + "/#/designer/orders")
    page.click("[data-test=palette-formula]")
    page.fill("[data-test=field-formula]", "amount - paid")
    value = page.locator("[data-test=formula-preview-value]")
    value.wait_for()
    assert value.inner_text() == "60"  # the first record: 100 - 40
    assert f"#{ids[0]}" in page.inner_text("[data-test=formula-preview]")
    page.fill("[data-test=formula-preview-record]", str(ids[1]))
    page.click("[data-test=formula-preview-run]")
    page.wait_for_selector(f"[data-test=formula-preview] >> text=#{ids[1]}")
    assert value.inner_text() == "50"
    shot(page, "40-formula-preview")
    # The local check passes this one; the server's checker says what is wrong and where.
    page.fill("[data-test=field-formula]", "ROUND(amount, 1, 2, 3)")
    err = page.locator("[data-test=formula-preview] .field-error")
    err.wait_for()
    assert "第 1 行" in err.inner_text()
    page.fill("[data-test=formula-preview-record]", "999999")
    page.fill("[data-test=field-formula]", "amount * 2")
    page.wait_for_selector("[data-test=formula-preview] .field-error >> text=999999")
    # previewing wrote nothing: no field, no record change
    assert [f["api_name"] for f in api.get("/tables/orders")["table"]["fields"]] == ["title", "amount", "paid", "status"]
    assert api.get("/tables/orders/records?sort=id")["records"] == before
    assert page.is_visible("[data-test=unsaved]")  # the unsaved formula field is still there to save


def test_members_comment_on_a_record_and_viewers_read_them(live_server, browser, shot, shop):
    api, ids = shop
    page = _login(browser, live_server, MEMBER)
    page.goto(live_server.url + "/#/table/orders")
    page.click(f"[data-test=open-{ids[0]}]")
    page.click("[data-test=tab-comments]")
    page.wait_for_selector("[data-test=comments] >> text=还没有评论")
    page.click("[data-test=comment-add]")  # empty: the server's message at the box
    page.wait_for_selector(".comment-new .field-error >> text=请填写内容")
    page.fill("[data-test=comment-text]", "客户来电：周五前一定要发货")
    page.click("[data-test=comment-add]")
    page.wait_for_selector(".comment >> text=客户来电：周五前一定要发货")
    assert page.input_value("[data-test=comment-text]") == ""
    cid = api.get(f"/tables/orders/records/{ids[0]}/comments")["comments"][0]["id"]
    page.click(f"[data-test=comment-edit-{cid}]")
    page.fill("[data-test=comment-edit-text]", "客户来电：周四前发货")
    page.click("[data-test=comment-edit-save]")
    page.wait_for_selector(f"[data-test=comment-{cid}] >> text=已编辑")
    shot(page, "41-record-comments")
    saved = api.get(f"/tables/orders/records/{ids[0]}/comments")["comments"]
    assert [(c["body"], c["user_name"]) for c in saved] == [("客户来电：周四前发货", "客服小王")] and saved[0]["edited_at"]

    viewer = _login(browser, live_server, VIEWER)
    viewer.goto(live_server.url + "/#/table/orders")
    viewer.click(f"[data-test=open-{ids[0]}]")
    viewer.click("[data-test=tab-comments]")
    viewer.wait_for_selector(".comment >> text=客户来电：周四前发货")
    assert viewer.is_visible("[data-test=comments-read-only]")
    assert viewer.locator("[data-test=comment-text]").count() == 0
    assert viewer.locator(f"[data-test=comment-delete-{cid}]").count() == 0

    # the owner (an admin) may delete anyone's comment
    owner = _login(browser, live_server, OWNER)
    owner.goto(live_server.url + "/#/table/orders")
    owner.click(f"[data-test=open-{ids[0]}]")
    owner.click("[data-test=tab-comments]")
    owner.click(f"[data-test=comment-delete-{cid}]")
    owner.wait_for_selector("[data-test=comments] >> text=还没有评论")
    assert api.get(f"/tables/orders/records/{ids[0]}/comments")["comments"] == []


def test_rows_grouped_by_a_field_with_counts_collapse_and_the_grouping_is_saved_to_a_view(live_server, browser, shot, shop):
    api, ids = shop
    page = _login(browser, live_server, OWNER)
    page.goto(live_server.url + "/#/table/orders")
    page.wait_for_selector(f"[data-test=open-{ids[0]}]")
    page.select_option("[data-test=group-by]", "status")
    unpaid = page.locator("[data-test='group-待付款']")
    unpaid.wait_for()
    counts = {g: page.inner_text(f"[data-test='group-{g}'] [data-test=group-count]") for g in ("待付款", "已付款", "")}
    assert counts == {"待付款": "3", "已付款": "2", "": "1"}
    assert page.locator("[data-test='group-已发货']").count() == 0  # no records, no group
    # each record sits under its own header
    for i in (0, 2, 4):
        page.wait_for_selector(f"[data-test=open-{ids[i]}]")
    headers = page.locator(".grow.group-head")
    top = lambda sel: page.locator(sel).bounding_box()["y"]  # noqa: E731
    paid_y, unpaid_y = top("[data-test='group-已付款']"), top("[data-test='group-待付款']")
    assert headers.count() == 3 and (unpaid_y < top(f"[data-test=open-{ids[4]}]") < paid_y or paid_y < unpaid_y < top(f"[data-test=open-{ids[4]}]"))
    assert "3 组" in page.inner_text("[data-test=grid-count]")
    shot(page, "42-grid-grouped")

    page.click("[data-test='group-待付款'] .group-toggle")
    page.wait_for_selector(f"[data-test=open-{ids[0]}]", state="detached")
    assert page.get_attribute("[data-test='group-待付款'] .group-toggle", "aria-expanded") == "false"
    assert page.is_visible(f"[data-test=open-{ids[1]}]")  # other groups stay open
    page.click("[data-test='group-待付款'] .group-toggle")
    page.wait_for_selector(f"[data-test=open-{ids[0]}]")

    page.click("[data-test=save-view]")
    page.fill("[data-test=view-name]", "按状态")
    page.fill("[data-test=view-api-name]", "by_status")
    page.click("[data-test=view-save]")
    page.wait_for_selector("[data-test=view-tab-by_status].active")
    assert api.get("/tables/orders/views/by_status")["view"]["group_by"] == ["status"]

    page.goto(live_server.url + "/#/table/orders")
    page.reload()
    page.wait_for_selector(f"[data-test=open-{ids[0]}]")
    assert page.locator(".grow.group-head").count() == 0
    page.click("[data-test=view-tab-by_status]")
    page.wait_for_selector("[data-test='group-已付款']")
    assert page.input_value("[data-test=group-by]") == "status"
    # turning grouping off and updating the view saves that too
    page.select_option("[data-test=group-by]", "")
    page.wait_for_selector(".grow.group-head", state="detached")
    page.click("[data-test=save-view]")
    page.click("[data-test=view-save]")
    page.wait_for_selector("text=视图已保存")
    assert api.get("/tables/orders/views/by_status")["view"].get("group_by") == []

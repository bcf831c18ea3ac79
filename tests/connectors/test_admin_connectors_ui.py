"""The admin connectors list shows why the last pull failed and when an event last came in
(real server on 127.0.0.1, Chromium through Playwright)."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from werkzeug.wrappers import Response

from tests.ui.conftest import browser, live_server  # noqa: F401 - fixtures
from zhongshu.connectors.service import pulls
from zhongshu.connectors.webhook.connector import sign

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "boss@shop.test", "boss-password-123"


def test_connectors_list_shows_the_last_pull_error_and_the_last_event(live_server, browser, serve):  # noqa: F811
    zs = live_server.platform
    u = zs.create_user(EMAIL, PASSWORD, name="老板")
    zs.create_tenant("shop", "小店", owner_email=u.email)
    api = live_server.api(EMAIL, PASSWORD, "shop")
    down = serve(lambda req: Response('{"errors":"Internal Server Error"}', 500, content_type="application/json"))
    api.post("/connectors", {"connector": "shopify", "api_name": "shopify_pull",
                             "config": {"shop_domain": "kids.myshopify.com", "base_url": down.url},
                             "credentials": {"access_token": "shpat_secret_token"}})
    hook = api.post("/connectors", {"connector": "webhook", "api_name": "miniapp", "config": {"channel": "小程序"},
                                    "credentials": {"secret": "whsec-123456789"}})["install"]["webhook_url"]
    pulls.run_pulls(zs)
    body = json.dumps({"id": "MP-1", "total": "10"}).encode()
    c = live_server.app.test_client()
    r = c.post(urlsplit(hook).path, data=body,
               headers={"X-Zhongshu-Signature": sign("whsec-123456789", body)})
    assert r.status_code == 200, r.get_data(as_text=True)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(live_server.url + "/")
    page.fill("#login-email", EMAIL)
    page.fill("#login-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".mainnav")
    page.goto(live_server.url + "/#/admin/connectors")
    error = page.wait_for_selector("tr:has-text('shopify') [data-test=last-pull-error]")
    assert "500" in error.inner_text() and "shpat_secret_token" not in error.inner_text()
    page.wait_for_selector("tr:has-text('miniapp') >> text=最近事件")
    assert page.query_selector("tr:has-text('miniapp') [data-test=last-pull-error]") is None

"""Admin › members: the owner disables a clerk (whose open browser is logged out and whose next
login says why), then enables them again. Chromium against a live server."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

OWNER, OWNER_PW = "boss@shop.test", "boss-password-123"
CLERK, CLERK_PW = "clerk@shop.test", "clerk-password-1"


def _log_in(page, url, email, password):
    page.goto(url + "/")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("button[type=submit]")


def test_the_owner_disables_and_enables_a_clerk(live_server, browser, shot):
    u = live_server.platform.create_user(OWNER, OWNER_PW, name="老板")
    live_server.platform.create_tenant("shop", "小店", owner_email=u.email)
    api = live_server.api(OWNER, OWNER_PW, "shop")
    api.post("/members", {"email": CLERK, "name": "店员", "role": "member", "password": CLERK_PW})

    clerk = browser.new_page(viewport={"width": 1280, "height": 900})
    _log_in(clerk, live_server.url, CLERK, CLERK_PW)
    clerk.wait_for_selector(".mainnav")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _log_in(page, live_server.url, OWNER, OWNER_PW)
    page.wait_for_selector(".mainnav")
    page.goto(live_server.url + "/#/admin/members")
    page.wait_for_selector(f"[data-test='status-{CLERK}'] >> text=正常")
    assert page.locator(f"[data-test='disable-{OWNER}']").count() == 0  # nobody disables themselves

    page.once("dialog", lambda d: d.accept())
    page.click(f"[data-test='disable-{CLERK}']")
    page.wait_for_selector(f"[data-test='status-{CLERK}'] >> text=已停用")
    page.wait_for_selector(f"[data-test='enable-{CLERK}']")
    shot(page, "45-member-disabled")
    member = {m["email"]: m for m in api.get("/members")["members"]}[CLERK]
    assert member["disabled"] is True

    # the clerk's open browser: the next request finds the session ended and shows the login
    clerk.reload()
    clerk.wait_for_selector("#login-email")
    clerk.fill("#login-email", CLERK)
    clerk.fill("#login-password", CLERK_PW)
    clerk.click("button[type=submit]")
    clerk.wait_for_selector(".login-card [role=alert] >> text=停用")
    shot(clerk, "46-disabled-login-refused")

    page.click(f"[data-test='enable-{CLERK}']")
    page.wait_for_selector(f"[data-test='status-{CLERK}'] >> text=正常")
    clerk.click("button[type=submit]")
    clerk.wait_for_selector(".mainnav")
    page.goto(live_server.url + "/#/admin/audit")
    page.wait_for_selector("[data-test=audit] >> text=disable_member")

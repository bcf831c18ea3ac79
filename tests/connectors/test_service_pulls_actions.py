"""Scheduled pulls (cursor + inbox in one transaction, resume after a crash) and the
``connector.action`` outbox handler, against real servers on 127.0.0.1."""
from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest
from sqlalchemy import select
from werkzeug.wrappers import Response

from zhongshu.connectors.api import PermanentError, RetryableError
from zhongshu.connectors.dingtalk.connector import sign as dingtalk_sign
from zhongshu.connectors.service import intake, keys, pulls
from zhongshu.connectors.service.actions import connector_action_job, enqueue_action
from zhongshu.platform.models import utcnow
from zhongshu.runtime.models import ConnectorInstall, InboxEvent, OutboxJob
from zhongshu.runtime.outbox import JobContext

from .test_service_intake import ORDERS_TABLE, SHOPIFY_MAPPING, drain, order_list

TOKEN, SHOP = "shpat_token", "kidswear.myshopify.com"


def order(i, updated):
    return {"id": 5000 + i, "name": f"#{1000 + i}", "updated_at": updated, "created_at": "2024-05-01T10:00:00+08:00",
            "total_price": "59.90", "financial_status": "paid",
            "line_items": [{"sku": f"SKU-{i}", "title": "Romper", "quantity": 2, "price": "29.95"}]}


class FakeShopify:
    """orders.json with updated_at_min, ordering and Link/page_info pagination; can fail."""

    def __init__(self, orders):
        self.orders, self.fail_on = orders, set()
        self.calls = 0

    def __call__(self, req):
        self.calls += 1
        if req.headers.get("X-Shopify-Access-Token") != TOKEN:
            return Response('{"errors":"[API] Invalid API key or access token"}', 401)
        if self.calls in self.fail_on:
            return Response('{"errors":"Internal Server Error"}', 500)
        a = req.args
        limit = int(a.get("limit", 50))
        if "page_info" in a:
            state = json.loads(base64.urlsafe_b64decode(a["page_info"]))
            after, wm = tuple(state["after"]), state["min"]
        else:
            assert a.get("order") == "updated_at asc" and a.get("status") == "any"
            after, wm = None, a.get("updated_at_min")
        rows = sorted((o for o in self.orders if wm is None or o["updated_at"] >= wm),
                      key=lambda o: (o["updated_at"], o["id"]))
        if after:
            rows = [o for o in rows if (o["updated_at"], o["id"]) > after]
        page, rest = rows[:limit], rows[limit:]
        headers = {}
        if rest:
            token = base64.urlsafe_b64encode(json.dumps(
                {"after": [page[-1]["updated_at"], page[-1]["id"]], "min": wm}).encode()).decode()
            headers["Link"] = f'<{req.host_url}admin/api/2024-10/orders.json?limit={limit}&page_info={token}>; rel="next"'
        return Response(json.dumps({"orders": page}), 200, headers=headers, content_type="application/json")


@pytest.fixture
def shopify(serve):
    fake = FakeShopify([order(i, f"2024-05-0{1 + i // 2}T0{i % 2}:00:00Z") for i in range(5)])
    srv = serve(fake)
    srv.fake = fake
    return srv


@pytest.fixture
def pull_install(owner, shopify):
    owner.ok(owner.post("/tables", json=ORDERS_TABLE), 201)
    owner.ok(owner.post("/connectors", json={
        "connector": "shopify", "api_name": "shopify_pull",
        "config": {"shop_domain": SHOP, "base_url": shopify.url, "page_size": 2, "pull_every_seconds": 300,
                   "mappings": [SHOPIFY_MAPPING]},
        "credentials": {"access_token": TOKEN}}), 201)
    return "shopify_pull"


def rows(platform):
    with platform.tenant_session(None) as s:
        return s.scalars(select(InboxEvent).order_by(InboxEvent.id)).all()


def install_row(platform, api_name):
    with platform.tenant_session(None) as s:
        return s.scalar(select(ConnectorInstall).where(ConnectorInstall.api_name == api_name))


def test_pull_stores_pages_with_the_cursor_and_respects_the_interval(owner, platform, shopify, pull_install):
    [summary] = pulls.run_pulls(platform)
    assert summary["pages"] == 3 and summary["new"] == 5 and summary["error"] is None
    got = rows(platform)
    assert [r.external_id for r in got] == [str(5000 + i) for i in range(5)]
    assert all(r.status == "received" and r.event_type == "order.updated" for r in got)
    inst = install_row(platform, pull_install)
    assert inst.cursor["watermark"] == "2024-05-03T00:00:00Z" and inst.last_pull_at is not None
    # not due again before pull_every_seconds
    assert pulls.run_pulls(platform) == []
    assert pulls.run_pulls(platform, now=utcnow() + timedelta(seconds=301))[0]["new"] == 0  # caught up, no dupes
    drain(platform)
    orders = order_list(owner)
    assert len(orders) == 5 and all(len(o["items"]) == 1 for o in orders)
    assert {o["channel"] for o in orders} == {"Shopify"}
    listed = owner.ok(owner.get("/connectors/shopify_pull"))["install"]
    assert listed["supports_pull"] and listed["pull_every_seconds"] == 300 and listed["cursor"]


def test_pull_resumes_after_a_failed_page_without_gaps_or_duplicates(owner, platform, shopify, pull_install):
    shopify.fake.fail_on = {2}  # the second page request fails (HTTP 500)
    [summary] = pulls.run_pulls(platform)
    assert summary["pages"] == 1 and "500" in summary["error"]
    assert [r.external_id for r in rows(platform)] == ["5000", "5001"]
    saved = install_row(platform, pull_install).cursor
    assert saved.get("page_info")  # the cursor of page 2 was stored with page 1's events
    [summary] = pulls.run_pulls(platform, force=True)
    assert summary["error"] is None
    assert [r.external_id for r in rows(platform)] == [str(5000 + i) for i in range(5)]


def test_pull_crash_while_storing_a_page_rolls_back_that_page_only(owner, platform, shopify, pull_install, monkeypatch):
    real = pulls.store_events
    calls = {"n": 0}

    def crash_on_second_page(conn, *a, **kw):
        calls["n"] += 1
        ids = real(conn, *a, **kw)
        if calls["n"] == 2:
            raise RuntimeError("process killed after inserting page 2, before commit")
        return ids
    monkeypatch.setattr(pulls, "store_events", crash_on_second_page)
    [summary] = pulls.run_pulls(platform)
    assert "killed" in summary["error"]
    assert [r.external_id for r in rows(platform)] == ["5000", "5001"]
    with platform.tenant_session(None) as s:
        assert len(s.scalars(select(OutboxJob).where(OutboxJob.kind == "inbox.process")).all()) == 2
    monkeypatch.setattr(pulls, "store_events", real)
    pulls.run_pulls(platform, force=True)
    ids = [r.external_id for r in rows(platform)]
    assert ids == [str(5000 + i) for i in range(5)] and len(set(ids)) == 5
    drain(platform)
    assert len(order_list(owner)) == 5


def test_disabled_installs_are_not_pulled(owner, platform, shopify, pull_install):
    owner.ok(owner.patch("/connectors/shopify_pull", json={"enabled": False}))
    assert pulls.run_pulls(platform, force=True) == []
    assert shopify.fake.calls == 0


def test_skipped_items_of_a_page_land_in_the_error_list(owner, platform, serve):
    bad = {"id": 9, "name": "#9"}  # no updated_at: the connector skips it and reports it

    def handler(req):
        return Response(json.dumps({"orders": [order(1, "2024-05-01T00:00:00Z"), bad]}), 200,
                        content_type="application/json")
    srv = serve(handler)
    owner.ok(owner.post("/connectors", json={"connector": "shopify", "api_name": "sp",
                                             "config": {"shop_domain": SHOP, "base_url": srv.url},
                                             "credentials": {"access_token": TOKEN}}), 201)
    pulls.run_pulls(platform)
    pulls.run_pulls(platform, force=True)
    got = rows(platform)
    assert [(r.status, r.external_id) for r in got] == [("received", "5001"), ("error", None)]
    [err] = owner.ok(owner.get("/connectors/sp/inbox?status=error"))["entries"]
    assert err["error"].startswith("pull: bad order") and '"order": 9' in err["body"]


# -- outbound actions ----------------------------------------------------------------------------

@pytest.fixture
def dingtalk(serve):
    state = {"errcode": 0}

    def handler(req):
        q = parse_qs(urlsplit(req.url).query)
        ts = int(q["timestamp"][0])
        if q.get("access_token") != ["robot-token"] or q["sign"][0] != unquote_plus(dingtalk_sign("SECrobot", ts)):
            return Response(json.dumps({"errcode": 310000, "errmsg": "sign not match"}), content_type="application/json")
        return Response(json.dumps({"errcode": state["errcode"], "errmsg": "ok" if not state["errcode"] else "busy"}),
                        content_type="application/json")
    srv = serve(handler)
    srv.state = state
    return srv


def ctx(platform, key="job-1", tenant="acme"):
    t = platform.tenant_by_slug(tenant)
    return JobContext(platform=platform, job_id=1, tenant_id=t.id, attempt=1, idempotency_key=key)


def test_connector_action_sends_a_dingtalk_message_to_a_local_server(owner, platform, dingtalk):
    owner.ok(owner.post("/connectors", json={
        "connector": "dingtalk", "api_name": "ops_group",
        "credentials": {"webhook_url": f"{dingtalk.url}/robot/send?access_token=robot-token", "secret": "SECrobot"}}), 201)
    payload = {"install": "ops_group", "action": "send_message",
               "input": {"msgtype": "text", "content": "订单 {{ order_no }} 超时未发货", "data": {"order_no": "SO001"}}}
    result = connector_action_job(ctx(platform), payload)
    assert result["output"] == {"errcode": 0, "errmsg": "ok"} and result["credentials_updated"] is False
    sent = dingtalk.requests[-1]
    assert sent["method"] == "POST" and json.loads(sent["body"]) == {"msgtype": "text",
                                                                      "text": {"content": "订单 SO001 超时未发货"}}
    # rate limited → retryable; wrong secret → permanent
    dingtalk.state["errcode"] = 130101
    with pytest.raises(RetryableError) as e:
        connector_action_job(ctx(platform), payload)
    assert e.value.retry_after == 60.0
    owner.ok(owner.patch("/connectors/ops_group", json={"credentials": {"secret": "SECwrong"}}))
    with pytest.raises(PermanentError):
        connector_action_job(ctx(platform), payload)
    with pytest.raises(PermanentError):
        connector_action_job(ctx(platform), {**payload, "install": "nope"})
    owner.ok(owner.patch("/connectors/ops_group", json={"enabled": False}))
    with pytest.raises(PermanentError):
        connector_action_job(ctx(platform), payload)


def test_connector_action_through_the_outbox_worker(owner, platform, dingtalk):
    owner.ok(owner.post("/connectors", json={
        "connector": "dingtalk", "api_name": "ops_group",
        "credentials": {"webhook_url": f"{dingtalk.url}/robot/send?access_token=robot-token", "secret": "SECrobot"}}), 201)
    t = platform.tenant_by_slug("acme")
    with platform.tenant_session(t.id, write=True) as s:
        enqueue_action(s.connection(), tenant_id=t.id, install="ops_group", action="send_message",
                       input={"msgtype": "markdown", "title": "日报", "text": "## 今日订单 {{ n }}", "data": {"n": 42}},
                       key="daily-report-2024-06-18")
    drain(platform)
    with platform.tenant_session(None) as s:
        job = s.scalar(select(OutboxJob).where(OutboxJob.kind == "connector.action"))
    assert job.status == "done" and job.result["output"]["errcode"] == 0
    assert json.loads(dingtalk.requests[-1]["body"])["markdown"]["text"] == "## 今日订单 42"


def test_token_refresh_from_an_action_is_stored_encrypted(owner, platform, serve):
    def handler(req):
        assert req.path == "/token/create"
        return Response(json.dumps({"code": 10000, "data": {"access_token": "AT-new", "refresh_token": "RT-new",
                                                            "expires_in": 604800, "shop_id": 88990}}),
                        content_type="application/json")
    srv = serve(handler)
    owner.ok(owner.post("/connectors", json={
        "connector": "douyin", "api_name": "dy", "config": {"api_base_url": srv.url},
        "credentials": {"app_key": "k", "app_secret": "s"}}), 201)
    result = connector_action_job(ctx(platform), {"install": "dy", "action": "fetch_token", "input": {}})
    assert result["output"]["shop_id"] == "88990" and result["credentials_updated"] is True
    stored = install_row(platform, "dy").credentials
    assert "AT-new" not in stored
    creds = keys.cipher(platform).decrypt(stored)
    assert creds["access_token"] == "AT-new" and creds["refresh_token"] == "RT-new" and creds["app_secret"] == "s"
    shown = owner.ok(owner.get("/connectors/dy"))["install"]["credentials"]
    assert shown["access_token"] == "••••••" and "AT-new" not in json.dumps(shown)


def test_run_pulls_is_registered_with_the_scheduler():
    from zhongshu.runtime import scheduler
    assert pulls.SCHEDULED == "connectors.pull"
    job = scheduler.PERIODIC["connectors.pull"]
    assert job.fn is pulls.run_pulls and job.seconds == pulls.TICK_SECONDS


def test_intake_module_exposes_the_handler_kinds():
    from zhongshu.runtime.outbox import HANDLERS
    assert HANDLERS["inbox.process"] is intake.inbox_process_job
    assert HANDLERS["connector.action"] is connector_action_job


def test_a_failed_pull_shows_a_short_reason_without_secrets_and_a_good_pull_clears_it(owner, platform, shopify, pull_install):
    before = owner.ok(owner.get("/connectors/shopify_pull"))["install"]
    assert before["last_pull_error"] is None and before["last_event_at"] is None
    shopify.fake.fail_on = {2}  # page 1 is stored, page 2 fails
    pulls.run_pulls(platform)
    listed = owner.ok(owner.get("/connectors/shopify_pull"))["install"]
    assert "500" in listed["last_pull_error"] and len(listed["last_pull_error"]) <= pulls.MAX_REASON
    assert listed["last_event_at"] is not None  # the events of page 1 were accepted
    [summary] = pulls.run_pulls(platform, force=True)
    assert summary["error"] is None
    assert owner.ok(owner.get("/connectors"))["installs"][0]["last_pull_error"] is None


def test_a_pull_error_that_echoes_the_token_is_stored_masked(owner, platform, serve):
    def leaky(req):  # a service that repeats the credentials it was given in its error text
        return Response(json.dumps({"errors": f"token {req.headers.get('X-Shopify-Access-Token')} is not "
                                              f"valid for {req.url}&access_token=abc"}), 400,
                        content_type="application/json")
    srv = serve(leaky)
    owner.ok(owner.post("/connectors", json={
        "connector": "shopify", "api_name": "leaky", "config": {"shop_domain": SHOP, "base_url": srv.url},
        "credentials": {"access_token": TOKEN}}), 201)
    [summary] = pulls.run_pulls(platform)
    reason = owner.ok(owner.get("/connectors/leaky"))["install"]["last_pull_error"]
    assert reason and "400" in reason and TOKEN not in reason and "abc" not in reason
    assert summary["error"] == reason

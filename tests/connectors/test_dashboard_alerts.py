"""Dashboard threshold alerts reach the group: a crossed widget with ``threshold.notify``
is queued by the periodic task with the action its install's connector offers, and the
outbox worker delivers it to a DingTalk robot, a WeCom robot and an HTTP API on 127.0.0.1 —
once an hour while it stays crossed. Installs that cannot carry an alert (e-mail, SMS: no
recipients in a threshold) queue nothing, so nothing dead-letters."""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.tasks import dashboard_alerts
from zhongshu.runtime.worker import drain

TABLE = {"api_name": "orders", "fields": [
    {"api_name": "status", "type": "text"},
    {"api_name": "channel", "type": "text"},
    {"api_name": "amount", "type": "currency"}]}

PENDING_VIEW = {"api_name": "pending", "type": "grid", "filter": {"field": "status", "op": "=", "value": "待发货"}}


def widget(id_, notify, op=">", value=2, **kw):
    return {"id": id_, "type": "number", "table": "orders", "metrics": [{"fn": "count"}],
            "threshold": {"op": op, "value": value, "notify": notify}, **kw}


@pytest.fixture
def robot(serve, reply):
    """Answers like a DingTalk / WeCom robot (errcode 0) and like an HTTP API (200 JSON)."""
    return serve(lambda req: reply({"errcode": 0, "errmsg": "ok"}))


@pytest.fixture
def shop(owner, robot, clock):
    owner.ok(owner.post("/tables", json=TABLE), 201)
    owner.ok(owner.post("/tables/orders/views", json=PENDING_VIEW), 201)
    for status, channel, amount in [("待发货", "天猫", 100), ("待发货", "天猫", 50), ("待发货", "抖音", 20),
                                    ("已完成", "抖音", 999)]:
        owner.ok(owner.post("/tables/orders/records", json={"status": status, "channel": channel, "amount": amount}), 201)
    owner.ok(owner.post("/connectors", json={"connector": "dingtalk", "api_name": "ding",
                                             "credentials": {"webhook_url": f"{robot.url}/robot/send?access_token=t"}}), 201)
    owner.ok(owner.post("/connectors", json={"connector": "wecom", "api_name": "wx",
                                             "config": {"base_url": f"{robot.url}/cgi-bin/webhook/send"},
                                             "credentials": {"key": "wecom-key-123"}}), 201)
    owner.ok(owner.post("/connectors", json={"connector": "http_request", "api_name": "ops_api",
                                             "config": {"base_url": f"{robot.url}/alerts"}}), 201)
    return owner


def connector_jobs(platform) -> list[OutboxJob]:
    drain(platform)
    with platform.tenant_session(None) as s:
        return s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action").order_by(OutboxJob.id)).all()


def test_a_crossed_widget_reaches_the_dingtalk_group_once_an_hour(shop, platform, robot, clock):
    shop.ok(shop.post("/dashboards", json={"api_name": "ops", "widgets": [
        widget("backlog", "ding", view="pending", title={"zh-CN": "待发货订单", "en": "Orders to ship"}),
        widget("quiet", "ding", value=10)]}), 201)  # 4 orders: not above 10
    assert dashboard_alerts(platform) == 1
    [job] = connector_jobs(platform)
    assert job.status == "done", job.last_error
    [sent] = robot.requests
    assert sent["path"] == "/robot/send"
    assert json.loads(sent["body"]) == {"msgtype": "text", "text": {"content": "【ops】待发货订单: 3 > 2"}}

    clock.advance(minutes=30)  # still crossed, same hour: not sent again
    assert dashboard_alerts(platform) == 0
    clock.advance(hours=1)
    assert dashboard_alerts(platform) == 1
    assert [j.status for j in connector_jobs(platform)] == ["done", "done"] and len(robot.requests) == 2


def test_wecom_and_an_http_api_get_the_alert_in_their_own_form(shop, platform, robot):
    shop.ok(shop.post("/dashboards", json={"api_name": "sales", "widgets": [
        widget("tmall", "wx", op=">=", value=150, metrics=[{"fn": "sum", "field": "amount"}],
               filter={"field": "channel", "op": "=", "value": "天猫"}, title="天猫销售额"),
        widget("by_channel", "ops_api", value=500, group_by=[{"field": "channel"}],
               metrics=[{"fn": "sum", "field": "amount"}])]}), 201)
    assert dashboard_alerts(platform) == 2
    jobs = connector_jobs(platform)
    assert [j.status for j in jobs] == ["done", "done"], [j.last_error for j in jobs]
    wecom = next(r for r in robot.requests if r["path"] == "/cgi-bin/webhook/send")
    assert wecom["args"]["key"] == "wecom-key-123"
    assert json.loads(wecom["body"]) == {"msgtype": "text", "text": {"content": "【sales】天猫销售额: 150 >= 150"}}
    api = next(r for r in robot.requests if r["path"] == "/alerts")
    assert api["method"] == "POST"
    assert json.loads(api["body"]) == {"dashboard": "sales", "widget": "by_channel", "title": "by_channel",
                                       "value": 1019, "op": ">", "threshold": 500,
                                       "text": "【sales】by_channel: 1019 > 500"}  # 抖音 20 + 999, the largest bar


def test_no_alert_without_a_number_or_through_an_install_that_cannot_carry_it(shop, platform, robot, caplog):
    shop.ok(shop.post("/connectors", json={"connector": "email", "api_name": "mail", "config": {
        "host": "127.0.0.1", "port": 2525, "security": "none", "from_address": "noreply@zs.example"}}), 201)
    shop.ok(shop.post("/dashboards", json={"api_name": "d", "widgets": [
        # an empty sum is no number: "below 100" does not fire (the card is not red either)
        widget("empty", "ding", op="<", value=100, metrics=[{"fn": "sum", "field": "amount"}],
               filter={"field": "channel", "op": "=", "value": "拼多多"}),
        widget("mailed", "mail"),           # e-mail: a threshold names no recipients
        widget("later", "not_installed")]}), 201)  # waits for its install
    with caplog.at_level(logging.WARNING, logger="zhongshu.dashboard_alerts"):
        assert dashboard_alerts(platform) == 0
        assert dashboard_alerts(platform) == 0
    assert connector_jobs(platform) == [] and robot.requests == []
    [warning] = [r.getMessage() for r in caplog.records if "mailed" in r.getMessage()]  # once, not every minute
    assert "email" in warning and "cannot send alerts" in warning

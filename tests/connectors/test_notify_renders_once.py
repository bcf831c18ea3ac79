"""A rule's message is rendered once, by the rule, with the record. Template code a customer
typed into the record (an address, a remark) reaches the recipient as typed: it is never
evaluated by a second rendering in the connector. Checked at real servers on 127.0.0.1
(DingTalk and WeCom robots, an HTTP API, aiosmtpd), through the rule engine and the outbox
worker."""
from __future__ import annotations

import email
import email.policy
import json

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from zhongshu.connectors.dingtalk import DingTalkRobotConnector
from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.worker import drain

from .test_email import Mailbox, free_port

#: what customers type; each would turn into something else if it were rendered again
REMARK = "请在 {{ 7*7 }} 点前送达"
ADDRESS = "幸福路 {% for i in range(3) %}{{ i }}{% endfor %} 号"
BROKEN = "门口 {{ 放 }} 柜子{%"  # not even a valid template: a second rendering would fail the message

TABLE = {"api_name": "orders", "fields": [
    {"api_name": "order_no", "type": "text"},
    {"api_name": "remark", "type": "text"},
    {"api_name": "address", "type": "text"},
    {"api_name": "note", "type": "text"}]}


@pytest.fixture
def shop(owner):
    owner.ok(owner.post("/tables", json=TABLE), 201)
    return owner


@pytest.fixture
def robot(serve, reply):
    """Answers like a DingTalk / WeCom robot: errcode 0."""
    return serve(lambda req: reply({"errcode": 0, "errmsg": "ok"}))


@pytest.fixture
def mailbox():
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield ctl, box
    ctl.stop()


def notify_rule(api, api_name, *actions):
    api.ok(api.post("/rules", json={"api_name": api_name, "table": "orders", "trigger": {"type": "record_created"},
                                    "actions": list(actions)}), 201)


def new_order(api):
    api.ok(api.post("/tables/orders/records", json={"order_no": "SO-7", "remark": REMARK, "address": ADDRESS,
                                                    "note": BROKEN}), 201)


def sent_jobs(platform) -> list[OutboxJob]:
    drain(platform)
    with platform.tenant_session(None) as s:
        return s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action").order_by(OutboxJob.id)).all()


def test_a_dingtalk_message_carries_the_customers_text_as_typed(shop, platform, robot):
    shop.ok(shop.post("/connectors", json={"connector": "dingtalk", "api_name": "ops",
                                           "credentials": {"webhook_url": f"{robot.url}/robot/send?access_token=t"}}), 201)
    notify_rule(shop, "tell_ops",
                {"type": "notify", "connector": "ops", "action": "send_message", "input": {
                    "msgtype": "text", "content": "订单 {{ record.order_no }}：{{ record.remark }} / {{ record.address }}"}},
                {"type": "notify", "connector": "ops", "action": "send_message", "input": {
                    "msgtype": "markdown", "title": "{{ record.order_no }}", "text": "备注 {{ record.note }}"}})
    new_order(shop)
    jobs = sent_jobs(platform)
    first = json.loads(robot.requests[0]["body"])
    assert first["text"]["content"] == f"订单 SO-7：{REMARK} / {ADDRESS}"  # not "请在 49 点前送达", not "幸福路 012 号"
    assert [j.status for j in jobs] == ["done", "done"], [j.last_error for j in jobs]
    second = json.loads(robot.requests[1]["body"])
    assert second["markdown"] == {"title": "SO-7", "text": f"备注 {BROKEN}"}  # delivered, not failed as a bad template


def test_a_wecom_card_and_an_http_call_carry_the_text_as_typed(shop, platform, robot):
    shop.ok(shop.post("/connectors", json={"connector": "wecom", "api_name": "wh",
                                           "config": {"base_url": f"{robot.url}/cgi-bin/webhook/send"},
                                           "credentials": {"key": "wecom-key-123"}}), 201)
    shop.ok(shop.post("/connectors", json={"connector": "http_request", "api_name": "erp", "config": {"base_url": robot.url}}), 201)
    notify_rule(shop, "card", {"type": "notify", "connector": "wh", "action": "send_message", "input": {
        "msgtype": "template_card", "title": "{{ record.order_no }}", "desc": "{{ record.remark }}", "url": "https://zs.example/o",
        "fields": [{"key": "地址", "value": "{{ record.address }}"}], "content": "{{ record.note }}"}})
    notify_rule(shop, "erp", {"type": "call_connector", "connector": "erp", "action": "request", "input": {
        "url": "/orders/{{ record.order_no }}", "body_template": '{"remark": {{ record.remark | tojson }}, "note": {{ record.note | tojson }}}'}})
    new_order(shop)
    jobs = sent_jobs(platform)
    assert [j.status for j in jobs] == ["done", "done"], [j.last_error for j in jobs]
    card = json.loads(next(r for r in robot.requests if r["path"] == "/cgi-bin/webhook/send")["body"])["template_card"]
    assert card["main_title"] == {"title": "SO-7", "desc": REMARK}
    assert card["horizontal_content_list"] == [{"keyname": "地址", "value": ADDRESS}] and card["sub_title_text"] == BROKEN
    call = next(r for r in robot.requests if r["path"] == "/orders/SO-7")
    assert json.loads(call["body"]) == {"remark": REMARK, "note": BROKEN}


def test_an_email_carries_the_text_as_typed(shop, platform, mailbox):
    ctl, box = mailbox
    shop.ok(shop.post("/connectors", json={"connector": "email", "api_name": "mail", "config": {
        "host": "127.0.0.1", "port": ctl.port, "security": "none", "from_address": "noreply@zs.example"}}), 201)
    notify_rule(shop, "mail", {"type": "notify", "connector": "mail", "action": "send_email", "input": {
        "to": ["ops@zs.example"], "subject": "订单 {{ record.order_no }} {{ record.remark }}",
        "text": "{{ record.address }}\n{{ record.note }}"}})
    new_order(shop)
    [job] = sent_jobs(platform)
    assert job.status == "done", job.last_error
    msg = email.message_from_bytes(box.messages[0].content, policy=email.policy.default)
    assert msg["Subject"] == f"订单 SO-7 {REMARK}"
    assert msg.get_body(("plain",)).get_content().strip() == f"{ADDRESS}\n{BROKEN}"


def test_a_rule_may_not_hand_template_variables_to_the_connector(shop):
    r = shop.post("/rules", json={"api_name": "twice", "table": "orders", "trigger": {"type": "record_created"},
                                  "actions": [{"type": "notify", "connector": "ops", "action": "send_message", "input": {
                                      "msgtype": "text", "content": "{{ remark }}", "data": {"remark": "{{ record.remark }}"}}}]})
    assert r.status_code == 400
    [err] = [e for e in r.get_json()["error"]["errors"] if e["pointer"].endswith("/input/data")]
    assert "record" in err["message"]


def test_called_directly_the_texts_are_templates_only_with_data(robot):
    creds = {"webhook_url": f"{robot.url}/robot/send?access_token=t"}
    DingTalkRobotConnector().execute("send_message", {"msgtype": "text", "content": "{{ 7*7 }}"}, {}, creds,
                                     idempotency_key="k1")
    DingTalkRobotConnector().execute("send_message", {"msgtype": "text", "content": "{{ 7*7 }} {{ n }}", "data": {"n": 1}},
                                     {}, creds, idempotency_key="k2")
    assert [json.loads(r["body"])["text"]["content"] for r in robot.requests] == ["{{ 7*7 }}", "49 1"]

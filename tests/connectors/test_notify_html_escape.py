"""A rule's e-mail: record values in the HTML part are escaped (a customer's ``<script>`` or
``<a href>`` typed into an order remark arrives as text, never as live markup); the text
part and the subject carry them as typed. Checked at aiosmtpd on 127.0.0.1, through the
rule engine and the outbox worker."""
from __future__ import annotations

import email
import email.policy

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.worker import drain

from .test_email import Mailbox, free_port

SCRIPT = "<script>alert(1)</script>"
LINK = '<a href="https://evil.example/pay">点此退款</a>'

TABLE = {"api_name": "orders", "fields": [
    {"api_name": "order_no", "type": "text"},
    {"api_name": "remark", "type": "text"},
    {"api_name": "tags", "type": "multi_select",
     "options": {"choices": [{"label": "<b>加急</b>"}, {"label": "礼品"}]}}]}


@pytest.fixture
def mailbox():
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield ctl, box
    ctl.stop()


@pytest.fixture
def shop(owner, mailbox):
    ctl, _ = mailbox
    owner.ok(owner.post("/tables", json=TABLE), 201)
    owner.ok(owner.post("/connectors", json={"connector": "email", "api_name": "mail", "config": {
        "host": "127.0.0.1", "port": ctl.port, "security": "none", "from_address": "noreply@zs.example"}}), 201)
    return owner


def mail_rule(api, **texts):
    api.ok(api.post("/rules", json={"api_name": "mail", "table": "orders", "trigger": {"type": "record_created"},
                                    "actions": [{"type": "notify", "connector": "mail", "action": "send_email",
                                                 "input": {"to": ["ops@zs.example"], **texts}}]}), 201)


def received(platform, box) -> email.message.EmailMessage:
    drain(platform)
    with platform.tenant_session(None) as s:
        [job] = s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()
    assert job.status == "done", job.last_error
    [envelope] = box.messages
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def test_record_values_are_escaped_in_the_html_part_and_literal_in_the_text_part(shop, platform, mailbox):
    _, box = mailbox
    mail_rule(shop, subject="订单 {{ record.order_no }} {{ record.remark }}",
              text="备注：{{ record.remark }}",
              html="<p>备注：<b>{{ record.remark }}</b></p><p>{{ record.order_no }}</p>")
    shop.ok(shop.post("/tables/orders/records", json={"order_no": LINK, "remark": SCRIPT}), 201)
    msg = received(platform, box)
    html = msg.get_body(("html",)).get_content()
    # the rule's own markup stays markup; what the customer typed is text
    assert "<p>备注：<b>&lt;script&gt;alert(1)&lt;/script&gt;</b></p>" in html
    assert "<p>&lt;a href=&#34;https://evil.example/pay&#34;&gt;点此退款&lt;/a&gt;</p>" in html
    assert "<script" not in html and "<a " not in html
    assert msg.get_body(("plain",)).get_content().strip() == f"备注：{SCRIPT}"
    assert msg["Subject"] == f"订单 {LINK} {SCRIPT}"


def test_markup_the_rule_marks_safe_stays_markup_and_values_around_it_are_escaped(shop, platform, mailbox):
    _, box = mailbox
    mail_rule(shop, subject="{{ record.order_no }}",
              html="<p>{{ record.remark|replace('\\n', '<br>'|safe) }}</p><p>{{ record.tags|join('<br>'|safe) }}</p>")
    shop.ok(shop.post("/tables/orders/records", json={"order_no": "SO-1", "remark": f"第一行\n{SCRIPT}",
                                                      "tags": ["<b>加急</b>", "礼品"]}), 201)
    html = received(platform, box).get_body(("html",)).get_content()
    assert "<p>第一行<br>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in html
    assert "<p>&lt;b&gt;加急&lt;/b&gt;<br>礼品</p>" in html


def test_a_direct_call_with_input_data_escapes_the_data_in_the_html_part(mailbox):
    """A caller that is not a rule (an API client, a plugin) sends a template with
    ``input.data``: the connector renders it, and the data is escaped in the HTML part the
    same way (the template's own markup stays markup; |safe keeps markup on purpose)."""
    from zhongshu.connectors.email import EmailConnector

    ctl, box = mailbox
    cfg = {"host": "127.0.0.1", "port": ctl.port, "security": "none", "from_address": "noreply@zs.example"}
    EmailConnector().execute("send_email", {
        "to": ["ops@zs.example"], "subject": "订单 {{ no }}", "text": "备注：{{ remark }}",
        "html": "<p>备注：<b>{{ remark }}</b></p><p>{{ no }}</p><p>{{ sig|safe }}</p>",
        "data": {"no": LINK, "remark": SCRIPT, "sig": "<i>中枢</i>"}}, cfg, {}, idempotency_key="direct-1")
    [envelope] = box.messages
    msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()
    assert "<p>备注：<b>&lt;script&gt;alert(1)&lt;/script&gt;</b></p>" in html
    assert "<p>&lt;a href=&#34;https://evil.example/pay&#34;&gt;点此退款&lt;/a&gt;</p>" in html
    assert "<p><i>中枢</i></p>" in html
    assert msg.get_body(("plain",)).get_content().strip() == f"备注：{SCRIPT}"
    assert msg["Subject"] == f"订单 {LINK}"

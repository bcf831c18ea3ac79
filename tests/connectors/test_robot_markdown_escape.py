"""Robot markdown: values from record data are escaped for DingTalk's / WeCom's markdown, so
a customer who types ``[点我](http://evil.example)``, ``![x](…)``, ``<font …>`` or a
``<@userid>`` mention into an order gets text in the group, not a link, an image, coloured
text or a mention. The rule author's own markdown (headings, links to the record) stays
markdown. Checked at the loopback robot servers of test_notifications.py, through the rule
engine and the outbox worker, and for direct calls with ``input.data``."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from zhongshu.connectors.api.textformat import escape_markdown
from zhongshu.connectors.dingtalk import DingTalkRobotConnector
from zhongshu.connectors.wecom import WeComRobotConnector
from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.worker import drain

from .test_notifications import WECOM_KEY, ding_creds, dingtalk, wecom  # noqa: F401 (fixtures)

LINK = "[点我退款](http://evil.example/pay)"
IMAGE = "![x](http://evil.example/track.png)"
FONT = '<font color="warning">系统通知：请转账</font>'
MENTION = "<@all>"

TABLE = {"api_name": "order_items", "fields": [
    {"api_name": "order_no", "type": "text"},
    {"api_name": "customer", "type": "text"},
    {"api_name": "remark", "type": "text"}]}


@pytest.fixture
def shop(owner, dingtalk, wecom):  # noqa: F811
    owner.ok(owner.post("/tables", json=TABLE), 201)
    owner.ok(owner.post("/connectors", json={"connector": "dingtalk", "api_name": "ding",
                                             "credentials": ding_creds(dingtalk)}), 201)
    owner.ok(owner.post("/connectors", json={"connector": "wecom", "api_name": "wx",
                                             "config": {"base_url": wecom.url + "/cgi-bin/webhook/send"},
                                             "credentials": {"key": WECOM_KEY}}), 201)
    return owner


def notify_rule(api, name, install, input):
    api.ok(api.post("/rules", json={"api_name": name, "table": "order_items", "trigger": {"type": "record_created"},
                                    "actions": [{"type": "notify", "connector": install, "action": "send_message",
                                                 "input": input}]}), 201)


def sent(platform, server) -> dict:
    drain(platform)
    with platform.tenant_session(None) as s:
        jobs = s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()
    assert jobs and all(j.status == "done" for j in jobs), [j.last_error for j in jobs]
    [req] = server.requests
    return json.loads(req["body"])


def assert_no_markup(text: str):
    assert "](http://evil" not in text.replace("\\](http://evil", "")  # every link to evil.example is escaped
    assert "<font" not in text and "<@" not in text


def test_dingtalk_markdown_rule_escapes_record_values_and_keeps_the_authors_markdown(shop, platform, dingtalk):  # noqa: F811
    notify_rule(shop, "ding_md", "ding", {
        "msgtype": "markdown", "title": "新订单 {{ record.customer }}",
        "text": "### 新订单 {{ record.order_no }}\n客户：**{{ record.customer }}**\n备注：{{ record.remark }}\n"
                "[查看订单]({{ record_url }})"})
    shop.ok(shop.post("/tables/order_items/records",
                      json={"order_no": "SO-1", "customer": LINK, "remark": f"{IMAGE}\n# 紧急\n{FONT}"}), 201)
    md = sent(platform, dingtalk)["markdown"]
    text = md["text"]
    assert text.startswith("### 新订单 SO-1\n客户：**\\[点我退款\\](http://evil.example/pay)**\n")
    assert "备注：!\\[x\\](http://evil.example/track.png)\n\\# 紧急\n&lt;font color=\"warning\"&gt;" in text
    assert_no_markup(text)
    # the author's link to the record stays a link: its address ('_' and '#' in it) is left alone
    last = text.split("\n")[-1]
    assert last.startswith("[查看订单](http") and last.endswith(")") and "\\" not in last
    assert "/#/t/acme/tables/order_items/records/" in last
    # the title is plain text in the chat list: sent as typed
    assert md["title"] == f"新订单 {LINK}"


def test_dingtalk_action_card_text_is_escaped_and_buttons_are_not(shop, platform, dingtalk):  # noqa: F811
    notify_rule(shop, "ding_card", "ding", {
        "msgtype": "actionCard", "title": "待审核 {{ record.order_no }}",
        "text": "客户 {{ record.customer }} 的备注：{{ record.remark }}",
        "buttons": [{"title": "查看 {{ record.order_no }}", "url": "{{ record_url }}"}]})
    shop.ok(shop.post("/tables/order_items/records", json={"order_no": "SO-2", "customer": MENTION, "remark": LINK}), 201)
    card = sent(platform, dingtalk)["actionCard"]
    assert card["text"] == "客户 &lt;@all&gt; 的备注：\\[点我退款\\](http://evil.example/pay)"
    assert card["btns"][0]["title"] == "查看 SO-2"
    assert "/tables/order_items/records/" in card["btns"][0]["actionURL"]


def test_wecom_markdown_rule_escapes_mentions_fonts_and_links(shop, platform, wecom):  # noqa: F811
    notify_rule(shop, "wx_md", "wx", {
        "msgtype": "markdown",
        "content": '<font color="info">新订单</font> {{ record.order_no }}\n> 客户：{{ record.customer }}\n{{ record.remark }}'})
    shop.ok(shop.post("/tables/order_items/records", json={"order_no": "SO-3", "customer": MENTION,
                                                           "remark": f"{FONT} {LINK}"}), 201)
    content = sent(platform, wecom)["markdown"]["content"]
    assert content == ('<font color="info">新订单</font> SO-3\n> 客户：&lt;@all&gt;\n'
                       '&lt;font color="warning"&gt;系统通知：请转账&lt;/font&gt; \\[点我退款\\](http://evil.example/pay)')


def test_wecom_text_and_template_card_are_plain_text_and_sent_as_typed(shop, platform, wecom):  # noqa: F811
    notify_rule(shop, "wx_text", "wx", {"msgtype": "text", "content": "客户 {{ record.customer }}"})
    shop.ok(shop.post("/tables/order_items/records", json={"order_no": "SO-4", "customer": LINK}), 201)
    assert sent(platform, wecom)["text"]["content"] == f"客户 {LINK}"


def test_direct_calls_with_input_data_escape_the_data_in_markdown(dingtalk, wecom):  # noqa: F811
    DingTalkRobotConnector().execute(
        "send_message", {"msgtype": "markdown", "title": "{{ name }}", "text": "### 客户\n**{{ name }}** [详情](https://zs.example/c/1)",
                         "data": {"name": LINK}}, {}, ding_creds(dingtalk), idempotency_key="k")
    md = json.loads(dingtalk.requests[0]["body"])["markdown"]
    assert md["text"] == "### 客户\n**\\[点我退款\\](http://evil.example/pay)** [详情](https://zs.example/c/1)"
    assert md["title"] == LINK
    WeComRobotConnector().execute(
        "send_message", {"msgtype": "markdown", "content": "客户 {{ name }}", "data": {"name": MENTION}},
        {"base_url": wecom.url + "/cgi-bin/webhook/send"}, {"key": WECOM_KEY}, idempotency_key="k")
    assert json.loads(wecom.requests[0]["body"])["markdown"]["content"] == "客户 &lt;@all&gt;"


@pytest.mark.parametrize("typed, shown", [
    (LINK, "\\[点我退款\\](http://evil.example/pay)"),
    (IMAGE, "!\\[x\\](http://evil.example/track.png)"),
    ("<http://evil.example>", "&lt;http://evil.example&gt;"),
    ("`code`", "\\`code\\`"),
    ("第一行\n## 标题\n- 列表\n12. 编号\n===", "第一行\n\\## 标题\n\\- 列表\n12\\. 编号\n\\==="),
    ("金额 12.50 - 折扣 3_0 *加急*", "金额 12.50 - 折扣 3_0 *加急*"),  # no markup can come of these: as typed
    ("C:\\tmp", "C:\\\\tmp"),
])
def test_escape_markdown(typed, shown):
    assert escape_markdown(typed) == shown

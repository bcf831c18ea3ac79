"""WeCom group robot (群机器人).

Protocol (developer.work.weixin.qq.com, "群机器人配置说明"):
``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` with a JSON body; the
key in the URL is the only credential. Answer ``{"errcode": 0, "errmsg": "ok"}``.
Limit: 20 messages per minute per robot (errcode 45009).
"""
from __future__ import annotations

import urllib.parse

from ..api import ActionResult, ConnectionResult, Connector, Manifest, PermanentError
from ..api.signing import icon
from ..api.templating import DATA_SCHEMA, input_texts
from ..api.textformat import MARKDOWN_WECOM
from ..dingtalk.connector import check_errcode

DEFAULT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
RETRYABLE = {-1: None, 45009: 60.0, 45033: 60.0}

MANIFEST = {
    "name": "wecom",
    "version": "1.0.0",
    "labels": {"zh-CN": "企业微信群机器人", "en": "WeCom group robot"},
    "description": {"zh-CN": "向企业微信群发送文本、Markdown 或模板卡片消息。",
                    "en": "Send text, markdown or template card messages to a WeCom group."},
    "icon": icon("企", "#07c160"),
    "categories": ["notification"],
    "config_schema": {"type": "object", "properties": {
        "base_url": {"type": "string", "default": DEFAULT_URL},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 10}}},
    "credential_schema": {"type": "object", "required": ["key"], "properties": {
        "key": {"type": "string", "minLength": 8, "format": "password", "writeOnly": True,
                "description": "The key=… part of the robot webhook URL"}}},
    "inbound": [],
    "actions": [{
        "name": "send_message",
        "labels": {"zh-CN": "发送群消息", "en": "Send group message"},
        "description": "Text fields are sent as given. With input.data they are sandboxed Jinja2 templates "
                       "over data (values from data are escaped in markdown); rules leave data out (a rule renders "
                       "its message itself, once).",
        "input_schema": {
            "type": "object", "required": ["msgtype"],
            "properties": {
                "msgtype": {"enum": ["text", "markdown", "template_card"]},
                "content": {"type": "string"},
                "mentioned_list": {"type": "array", "items": {"type": "string"}},
                "mentioned_mobile_list": {"type": "array", "items": {"type": "string"}},
                "title": {"type": "string"}, "desc": {"type": "string"},
                "emphasis": {"type": "object", "properties": {"title": {"type": "string"},
                                                              "desc": {"type": "string"}}},
                "fields": {"type": "array", "items": {"type": "object", "required": ["key", "value"],
                           "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}},
                "url": {"type": "string", "description": "template_card: where a click leads"},
                "source": {"type": "string", "description": "template_card: source line"},
                "data": DATA_SCHEMA,
            },
        },
        "output_schema": {"type": "object", "properties": {"errcode": {"type": "integer"}}},
    }],
    "connection_test": {"supported": True, "description": "Checks the key format only (no message sent)."},
}


def text_formats(d: dict) -> dict:
    """``content`` of a markdown message is markdown (``<font color>``, ``<@userid>``
    mentions, links); text messages and template card fields are plain text."""
    return {"content": MARKDOWN_WECOM} if d.get("msgtype") == "markdown" else {}


def build_message(d: dict) -> dict:
    text = input_texts(d)  # templates only with input.data; data values escaped in markdown
    formats = text_formats(d)

    def r(key):
        if d.get(key) is None:
            raise PermanentError(f"input/{key} is required for msgtype {d['msgtype']}", code="invalid_input")
        return text(d[key], f"input/{key}", formats.get(key))

    if d["msgtype"] == "text":
        text = {"content": r("content")}
        for k in ("mentioned_list", "mentioned_mobile_list"):
            if d.get(k):
                text[k] = d[k]
        return {"msgtype": "text", "text": text}
    if d["msgtype"] == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": r("content")}}
    card = {"card_type": "text_notice",
            "main_title": {"title": r("title"), **({"desc": r("desc")} if d.get("desc") else {})},
            "card_action": {"type": 1, "url": r("url")}}
    if d.get("source"):
        card["source"] = {"desc": r("source")}
    if d.get("emphasis"):
        card["emphasis_content"] = {k: text(x, f"input/emphasis/{k}") for k, x in d["emphasis"].items()}
    if d.get("fields"):
        card["horizontal_content_list"] = [{"keyname": text(f["key"], f"input/fields/{i}/key"),
                                            "value": text(f["value"], f"input/fields/{i}/value")}
                                           for i, f in enumerate(d["fields"])][:6]
    if d.get("content"):
        card["sub_title_text"] = r("content")
    return {"msgtype": "template_card", "template_card": card}


class WeComRobotConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def text_formats(self, action, input):
        return text_formats(input)

    def test_connection(self, config, credentials):
        res = super().test_connection(config, credentials)
        if res.ok and not all(c.isalnum() or c == "-" for c in credentials["key"]):
            return ConnectionResult(False, "key looks wrong: paste only the part after key=")
        return res

    def execute(self, action, input, config, credentials, *, idempotency_key):
        self.manifest.action(action)
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        url = f"{cfg['base_url']}?{urllib.parse.urlencode({'key': creds['key']})}"
        resp = self.http.request("POST", url, json=build_message(data), timeout=cfg["timeout_seconds"])
        body = check_errcode(resp.json(), "wecom", RETRYABLE)
        return ActionResult({"errcode": 0, "errmsg": body.get("errmsg", "ok")})

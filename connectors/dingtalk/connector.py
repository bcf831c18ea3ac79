"""DingTalk custom robot (自定义机器人).

Protocol (open.dingtalk.com, "自定义机器人安全设置 / 加签"):
``POST https://oapi.dingtalk.com/robot/send?access_token=XXX&timestamp=T&sign=S`` with a
JSON body. ``T`` is the current time in milliseconds; ``S`` is
``urlencode(base64(HmacSHA256(key=secret, msg=f"{T}\\n{secret}")))``. The answer is
always HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; a non-zero errcode is the error.
The robot accepts 20 messages per minute (errcode 130101 "send too fast").
"""
from __future__ import annotations

import time
import urllib.parse

from ..api import (ActionResult, ConnectionResult, Connector, Manifest, PermanentError,
                   RetryableError)
from ..api.signing import hmac_sha256_b64, icon
from ..api.templating import DATA_SCHEMA, input_texts
from ..api.textformat import MARKDOWN_DINGTALK

DEFAULT_URL = "https://oapi.dingtalk.com/robot/send"

#: errcodes worth retrying: system busy, rate limited (20/min per robot)
RETRYABLE = {-1: None, 130101: 60.0, 410100: 60.0}

_AT = {"type": "object", "properties": {
    "atMobiles": {"type": "array", "items": {"type": "string"}},
    "atUserIds": {"type": "array", "items": {"type": "string"}},
    "isAtAll": {"type": "boolean"}}}

MANIFEST = {
    "name": "dingtalk",
    "version": "1.0.0",
    "labels": {"zh-CN": "钉钉群机器人", "en": "DingTalk group robot"},
    "description": {"zh-CN": "通过自定义机器人（加签）向钉钉群发送文本、Markdown 或 ActionCard 消息。",
                    "en": "Send text, markdown or ActionCard messages to a DingTalk group through a "
                          "signed custom robot."},
    "icon": icon("钉", "#1677ff"),
    "categories": ["notification"],
    "config_schema": {"type": "object", "properties": {
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 10}}},
    "credential_schema": {
        "type": "object",
        "required": ["webhook_url"],
        "properties": {
            "webhook_url": {"type": "string", "format": "password", "writeOnly": True,
                            "pattern": "^https?://",
                            "description": "Robot webhook URL, e.g. https://oapi.dingtalk.com/robot/send?access_token=…"},
            "secret": {"type": "string", "format": "password", "writeOnly": True,
                       "description": "加签 secret (starts with SEC)"},
        },
    },
    "inbound": [],
    "actions": [{
        "name": "send_message",
        "labels": {"zh-CN": "发送群消息", "en": "Send group message"},
        "description": "Text fields are sent as given. With input.data they are sandboxed Jinja2 templates "
                       "over data (values from data are escaped in markdown); rules leave data out (a rule renders "
                       "its message itself, once).",
        "input_schema": {
            "type": "object",
            "required": ["msgtype"],
            "properties": {
                "msgtype": {"enum": ["text", "markdown", "actionCard"]},
                "content": {"type": "string", "description": "text: the message"},
                "title": {"type": "string", "description": "markdown/actionCard: title"},
                "text": {"type": "string", "description": "markdown/actionCard: markdown body"},
                "single_title": {"type": "string"}, "single_url": {"type": "string"},
                "buttons": {"type": "array", "items": {"type": "object", "required": ["title", "url"],
                            "properties": {"title": {"type": "string"}, "url": {"type": "string"}}}},
                "at": _AT,
                "data": DATA_SCHEMA,
            },
        },
        "output_schema": {"type": "object", "properties": {"errcode": {"type": "integer"},
                                                           "errmsg": {"type": "string"}}},
    }],
    "connection_test": {"supported": True, "description": "Checks the URL and secret format only; "
                        "DingTalk has no side-effect-free call, so no message is sent."},
}


def sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query parameter (already URL-encoded), exactly as DingTalk documents."""
    digest = hmac_sha256_b64(secret, f"{timestamp_ms}\n{secret}")
    return urllib.parse.quote_plus(digest)


def text_formats(data: dict) -> dict:
    """``text`` of a markdown message or an ActionCard is markdown; the title (shown in the
    chat list and notifications), button titles and text messages are plain text."""
    return {"text": MARKDOWN_DINGTALK} if data.get("msgtype") in ("markdown", "actionCard") else {}


def build_message(data: dict) -> dict:
    """Turn action input into DingTalk's message JSON (texts rendered only with input.data;
    values from data are escaped in the markdown text)."""
    text = input_texts(data)
    formats = text_formats(data)

    def r(key, required=True):
        v = data.get(key)
        if v is None:
            if required:
                raise PermanentError(f"input/{key} is required for msgtype {data['msgtype']}", code="invalid_input")
            return None
        return text(v, f"input/{key}", formats.get(key))

    mt = data["msgtype"]
    if mt == "text":
        msg = {"msgtype": "text", "text": {"content": r("content")}}
    elif mt == "markdown":
        msg = {"msgtype": "markdown", "markdown": {"title": r("title"), "text": r("text")}}
    else:
        card = {"title": r("title"), "text": r("text"), "btnOrientation": "0"}
        if data.get("buttons"):
            card["btns"] = [{"title": text(b["title"], f"input/buttons/{i}/title"),
                             "actionURL": text(b["url"], f"input/buttons/{i}/url")} for i, b in enumerate(data["buttons"])]
        else:
            card["singleTitle"] = r("single_title")
            card["singleURL"] = r("single_url")
        msg = {"msgtype": "actionCard", "actionCard": card}
    if data.get("at") and mt != "actionCard":
        msg["at"] = data["at"]
    return msg


def check_errcode(body: dict, service: str, retryable: dict) -> dict:
    if not isinstance(body, dict) or "errcode" not in body:
        from ..api import PayloadError
        raise PayloadError(f"{service}: unexpected response {str(body)[:120]}")
    code = body.get("errcode")
    if code == 0:
        return body
    msg = f"{service} errcode {code}: {body.get('errmsg')}"
    if code in retryable:
        raise RetryableError(msg, retry_after=retryable[code], code=f"{service}_{code}")
    raise PermanentError(msg, code=f"{service}_{code}")


class DingTalkRobotConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def signed_url(self, credentials: dict, now_ms: int | None = None) -> str:
        url = credentials["webhook_url"]
        if "access_token=" not in url:
            raise PermanentError("webhook_url has no access_token parameter", code="config_invalid")
        if credentials.get("secret"):
            ts = now_ms if now_ms is not None else int(time.time() * 1000)
            url += f"&timestamp={ts}&sign={sign(credentials['secret'], ts)}"
        return url

    def text_formats(self, action, input):
        return text_formats(input)

    def test_connection(self, config, credentials):
        result = super().test_connection(config, credentials)
        if result.ok and "access_token=" not in credentials.get("webhook_url", ""):
            return ConnectionResult(False, "webhook_url has no access_token parameter")
        return result

    def execute(self, action, input, config, credentials, *, idempotency_key):
        self.manifest.action(action)
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        msg = build_message(data)
        resp = self.http.request("POST", self.signed_url(creds), json=msg, timeout=cfg["timeout_seconds"])
        body = check_errcode(resp.json(), "dingtalk", RETRYABLE)
        return ActionResult({"errcode": body["errcode"], "errmsg": body.get("errmsg", "")})

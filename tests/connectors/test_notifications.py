"""DingTalk robot, WeCom robot, SMS gateway and SMTP email — each against a local server
that checks the service's protocol."""
import base64
import hashlib
import hmac
import json
import time
import urllib.parse

import pytest

from zhongshu.connectors.api import PermanentError, RetryableError, run_action
from zhongshu.connectors.dingtalk import DingTalkRobotConnector
from zhongshu.connectors.sms import SmsGatewayConnector, canonical_string
from zhongshu.connectors.wecom import WeComRobotConnector

DING_TOKEN, DING_SECRET = "tok123", "SECabcdef0123456789"


@pytest.fixture
def dingtalk(serve, reply):
    """Emulates oapi.dingtalk.com/robot/send: checks access_token and the 加签 signature."""
    def handler(req):
        a = req.args
        if req.path != "/robot/send" or a.get("access_token") != DING_TOKEN:
            return reply({"errcode": 300001, "errmsg": "token is not exist"})
        ts = a.get("timestamp", "")
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600_000:
            return reply({"errcode": 310000, "errmsg": "invalid timestamp"})
        expect = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(),
                                           hashlib.sha256).digest()).decode()
        if a.get("sign") != expect:  # werkzeug has already url-decoded the query
            return reply({"errcode": 310000, "errmsg": "sign not match"})
        msg = req.get_json()
        if msg.get("msgtype") == "text" and "限流" in msg["text"]["content"]:
            return reply({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        return reply({"errcode": 0, "errmsg": "ok"})
    return serve(handler)


def ding_creds(srv, secret=DING_SECRET):
    return {"webhook_url": f"{srv.url}/robot/send?access_token={DING_TOKEN}", "secret": secret}


def test_dingtalk_sends_a_signed_markdown_message_rendered_from_a_template(dingtalk):
    result = DingTalkRobotConnector().execute(
        "send_message",
        {"msgtype": "markdown", "title": "订单 {{ order_no }} 已发货",
         "text": "### {{ order_no }}\n客户：{{ customer }}\n预计送达：{{ eta }}",
         "data": {"order_no": "SO-1001", "customer": "王芳", "eta": "2024-06-20"},
         "at": {"atMobiles": ["13800000000"]}},
        {}, ding_creds(dingtalk), idempotency_key="k1")
    assert result.output == {"errcode": 0, "errmsg": "ok"}
    sent = json.loads(dingtalk.requests[0]["body"])
    assert sent == {"msgtype": "markdown", "markdown": {"title": "订单 SO-1001 已发货",
                    "text": "### SO-1001\n客户：王芳\n预计送达：2024-06-20"},
                    "at": {"atMobiles": ["13800000000"]}}
    # the sign travels url-encoded (base64 has + / =)
    raw_sign = dict(p.split("=", 1) for p in dingtalk.requests[0]["query"].split("&"))["sign"]
    assert not set(raw_sign) & set("+/=")  # base64 characters are percent-encoded
    assert len(base64.b64decode(urllib.parse.unquote_plus(raw_sign))) == 32


def test_dingtalk_action_card_with_buttons(dingtalk):
    DingTalkRobotConnector().execute(
        "send_message", {"msgtype": "actionCard", "title": "待处理", "text": "订单超时",
                         "buttons": [{"title": "查看", "url": "https://zs.example/o/1"}]},
        {}, ding_creds(dingtalk), idempotency_key="k")
    card = json.loads(dingtalk.requests[0]["body"])["actionCard"]
    assert card["btns"] == [{"title": "查看", "actionURL": "https://zs.example/o/1"}]


def test_dingtalk_wrong_secret_is_permanent_and_rate_limit_is_retryable(dingtalk):
    with pytest.raises(PermanentError, match="310000"):
        DingTalkRobotConnector().execute("send_message", {"msgtype": "text", "content": "hi"}, {},
                                         ding_creds(dingtalk, secret="SECwrong"), idempotency_key="k")
    with pytest.raises(RetryableError) as exc:
        DingTalkRobotConnector().execute("send_message", {"msgtype": "text", "content": "限流测试"}, {},
                                         ding_creds(dingtalk), idempotency_key="k")
    assert exc.value.retry_after == 60


def test_dingtalk_missing_input_and_unknown_action_are_permanent():
    outcome = run_action(DingTalkRobotConnector(), "send_message", {"msgtype": "markdown", "title": "x"}, {},
                         {"webhook_url": "http://127.0.0.1:9/robot/send?access_token=x"}, idempotency_key="k")
    assert outcome.decision.action == "dead_letter" and "input/text" in outcome.error["message"]
    outcome = run_action(DingTalkRobotConnector(), "fly", {}, {}, {}, idempotency_key="k")
    assert outcome.decision.action == "dead_letter"


WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


@pytest.fixture
def wecom(serve, reply):
    """Emulates qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"""
    def handler(req):
        if req.path != "/cgi-bin/webhook/send" or req.args.get("key") != WECOM_KEY:
            return reply({"errcode": 93000, "errmsg": "invalid webhook url"})
        msg = req.get_json(silent=True) or {}
        if msg.get("msgtype") == "template_card":
            card = msg["template_card"]
            if card.get("card_type") != "text_notice" or "url" not in card.get("card_action", {}):
                return reply({"errcode": 40058, "errmsg": "card_action missing"})
        if msg.get("msgtype") == "text" and msg["text"]["content"] == "busy":
            return reply({"errcode": 45009, "errmsg": "api freq out of limit"})
        return reply({"errcode": 0, "errmsg": "ok"})
    return serve(handler)


def test_wecom_template_card_to_the_warehouse(wecom):
    cfg = {"base_url": wecom.url + "/cgi-bin/webhook/send"}
    WeComRobotConnector().execute(
        "send_message",
        {"msgtype": "template_card", "title": "订单 {{ no }} 超时未发货", "desc": "已 30 分钟无物流单号",
         "fields": [{"key": "仓库", "value": "{{ wh }}"}], "url": "https://zs.example/orders/{{ no }}",
         "data": {"no": "SO-7", "wh": "华东仓"}}, cfg, {"key": WECOM_KEY}, idempotency_key="k")
    card = json.loads(wecom.requests[0]["body"])["template_card"]
    assert card["main_title"]["title"] == "订单 SO-7 超时未发货"
    assert card["horizontal_content_list"] == [{"keyname": "仓库", "value": "华东仓"}]
    assert card["card_action"] == {"type": 1, "url": "https://zs.example/orders/SO-7"}


def test_wecom_errors(wecom):
    cfg = {"base_url": wecom.url + "/cgi-bin/webhook/send"}
    with pytest.raises(PermanentError, match="93000"):
        WeComRobotConnector().execute("send_message", {"msgtype": "text", "content": "x"}, cfg,
                                      {"key": "wrong-key-123"}, idempotency_key="k")
    with pytest.raises(RetryableError, match="45009"):
        WeComRobotConnector().execute("send_message", {"msgtype": "text", "content": "busy"}, cfg,
                                      {"key": WECOM_KEY}, idempotency_key="k")


# ---------------------------------------------------------------------------- SMS
SMS_KEY, SMS_SECRET = "ak-1", "sk-secret"


@pytest.fixture
def sms_gateway(serve, reply):
    def handler(req):
        p = req.form.to_dict()
        expect = hmac.new(SMS_SECRET.encode(), canonical_string(p).encode(), hashlib.sha256).hexdigest()
        if p.get("api_key") != SMS_KEY or p.get("sign") != expect:
            return reply({"code": "SIGN_ERROR", "message": "签名错误"})
        if abs(int(p["timestamp"]) - time.time()) > 300:
            return reply({"code": "EXPIRED", "message": "timestamp expired"})
        if p["phone"] == "13900000000":
            return reply({"code": "RATE_LIMIT", "message": "too many"})
        return reply({"code": "OK", "message": "sent", "biz_id": "b-1"})
    return serve(handler)


def test_sms_sends_a_signed_template_message(sms_gateway):
    out = SmsGatewayConnector().execute(
        "send_sms", {"phone": "13812345678", "template_code": "SMS_ADDR_OK", "template_params": {"order": "SO-1"}},
        {"gateway_url": sms_gateway.url + "/sms/send", "sign_name": "中枢商城"},
        {"api_key": SMS_KEY, "api_secret": SMS_SECRET}, idempotency_key="job-9")
    assert out.output["gateway_response"]["biz_id"] == "b-1"
    form = urllib.parse.parse_qs(sms_gateway.requests[0]["body"].decode())
    assert form["sign_name"] == ["中枢商城"] and json.loads(form["template_params"][0]) == {"order": "SO-1"}
    assert form["out_id"] == ["job-9"]


def test_sms_wrong_secret_is_permanent_rate_limit_is_retryable(sms_gateway):
    cfg = {"gateway_url": sms_gateway.url, "sign_name": "中枢商城"}
    with pytest.raises(PermanentError, match="SIGN_ERROR"):
        SmsGatewayConnector().execute("send_sms", {"phone": "13812345678", "template_code": "T"}, cfg,
                                      {"api_key": SMS_KEY, "api_secret": "nope"}, idempotency_key="k")
    with pytest.raises(RetryableError):
        SmsGatewayConnector().execute("send_sms", {"phone": "13900000000", "template_code": "T"}, cfg,
                                      {"api_key": SMS_KEY, "api_secret": SMS_SECRET}, idempotency_key="k")
    with pytest.raises(PermanentError, match="phone"):
        SmsGatewayConnector().execute("send_sms", {"phone": "call me", "template_code": "T"}, cfg,
                                      {"api_key": SMS_KEY, "api_secret": SMS_SECRET}, idempotency_key="k")

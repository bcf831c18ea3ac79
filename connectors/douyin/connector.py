"""Douyin shop (抖店开放平台) connector.

Message push (消息推送): the platform POSTs a JSON **list** of messages
``[{"tag": "101", "msg_id": "…", "data": "<JSON string>"}]`` to the app's push URL with
headers ``app-id`` (app key) and ``event-sign = md5(app_key + raw_body + app_secret)`` (hex).
A ``sign-method: hmac-sha256`` header (the same text HMAC-ed with app_secret) is accepted
too, but no source we could check documents it for pushes. The receiver must answer
``{"code":0,"msg":"success"}``, otherwise the message is pushed again.
Trade tags: 100 订单创建, 101 订单支付, 102 卖家发货, 103 交易完成, 104 物流变更,
105 收货信息变更, 106 订单取消, 108 订单金额修改, 110 部分发货. Times in ``data`` are Unix
seconds; string times are Beijing time (Asia/Shanghai); both become UTC.

Open API (token.create / token.refresh / order.orderDetail): ``POST <base>/<method with / >``
with the business parameters as the JSON body (``param_json``: keys sorted, compact, UTF-8,
no HTML escaping) and ``app_key, method, timestamp, v=2, sign_method, sign`` (+
``access_token``) in the query string;
``sign = HMAC-SHA256(app_secret, text)`` (``sign_method=hmac-sha256``, the default) or
``md5(text)`` (``sign_method=md5``), hex, where
``text = secret + "app_key"+k + "method"+m + "param_json"+p + "timestamp"+t + "v"+"2" + secret``.
Success is ``code == 10000`` (or, without ``code``, ``err_no == 0``).
Sources: see docs/connectors.md, "抖店: what was checked".
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from ..api import (ORDER_ADDRESS_CHANGED, ORDER_CREATED, ORDER_PAID, ORDER_STATUS_CHANGED, ORDER_UPDATED,
                   ActionResult, ConfigError, ConnectionResult, Connector, InboundEvent, Manifest,
                   PayloadError, PermanentError, RetryableError, SignatureError, WebhookResponse,
                   apply_defaults, header, load_json)
from ..api.mapping import _StepError, parse_datetime
from ..api.signing import equal, hmac_sha256_hex, icon, md5_hex

SERVICE_TZ = "Asia/Shanghai"
TAGS = {"100": ORDER_CREATED, "101": ORDER_PAID, "102": ORDER_STATUS_CHANGED, "103": ORDER_STATUS_CHANGED,
        "104": ORDER_STATUS_CHANGED, "105": ORDER_ADDRESS_CHANGED, "106": ORDER_STATUS_CHANGED,
        "108": ORDER_UPDATED, "110": ORDER_STATUS_CHANGED}
ACK = {"code": 0, "msg": "success"}
# Not confirmed by a source we could read (see docs/connectors.md): 20000 服务不可用 and 90000
# 流控 are retried; 30001/30002 mean the access/refresh token is no longer valid.
RETRYABLE_CODES = {20000, 90000}
TOKEN_EXPIRED_CODES = {30001, 30002}

MANIFEST = {
    "name": "douyin",
    "version": "1.0.0",
    "labels": {"zh-CN": "抖店", "en": "Douyin shop"},
    "description": {"zh-CN": "接收抖店订单消息推送（签名校验），管理 access_token，查询订单详情。",
                    "en": "Receive signed Douyin shop order messages, manage access tokens, fetch order details."},
    "icon": icon("抖", "#111827"),
    "categories": ["channel", "inbound"],
    "config_schema": {"type": "object", "properties": {
        "channel": {"type": "string", "default": "抖音"},
        "api_base_url": {"type": "string", "default": "https://openapi-fxg.jinritemai.com"},
        "shop_id": {"type": "string", "default": ""},
        "sign_method": {"enum": ["hmac-sha256", "md5"], "default": "hmac-sha256",
                        "description": "How Open API requests are signed"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 15}}},
    "credential_schema": {"type": "object", "required": ["app_key", "app_secret"], "properties": {
        "app_key": {"type": "string", "minLength": 1},
        "app_secret": {"type": "string", "minLength": 1, "format": "password", "writeOnly": True},
        "access_token": {"type": "string", "format": "password", "writeOnly": True},
        "refresh_token": {"type": "string", "format": "password", "writeOnly": True},
        "access_token_expires_at": {"type": "integer", "description": "Unix seconds"}}},
    "inbound": [{"kind": "webhook",
                 "event_types": [ORDER_CREATED, ORDER_PAID, ORDER_STATUS_CHANGED, ORDER_ADDRESS_CHANGED, ORDER_UPDATED],
                 "description": "抖店消息推送: trade tags 100–110"}],
    "actions": [
        {"name": "fetch_token", "labels": {"zh-CN": "获取 access_token", "en": "Fetch access token"},
         "description": "token.create with grant_type authorization_self (自用型应用)",
         "input_schema": {"type": "object", "properties": {"shop_id": {"type": "string"}}}},
        {"name": "refresh_token", "labels": {"zh-CN": "刷新 access_token", "en": "Refresh access token"},
         "input_schema": {"type": "object", "properties": {}}},
        {"name": "order_detail", "labels": {"zh-CN": "查询订单详情", "en": "Get order detail"},
         "input_schema": {"type": "object", "required": ["order_id"],
                          "properties": {"order_id": {"type": "string"}}}},
    ],
    "mappings": [{
        "name": "douyin_order_messages", "table": "orders", "key": ["global_id"],
        "fields": {
            "external_id": {"path": "$.p_id", "transform": "to_string", "required": True},
            "channel": {"const": "抖音"},
            "status": {"path": "$.order_status", "transform": {"op": "lookup", "map": {
                "1": "待付款", "105": "已付款", "2": "备货中", "101": "已发货", "3": "已发货",
                "4": "已取消", "5": "已完成"}, "default": "异常中"}},
            "amount_paid": {"path": "$.pay_amount", "transform": {"op": "to_number", "scale": 0.01}},
            "pay_time": {"path": "$.pay_time", "transform": {"op": "to_datetime", "unit": "s"}},
            "created": {"path": "$.create_time", "transform": {"op": "to_datetime", "unit": "s"}},
        },
    }],
    "connection_test": {"supported": True, "description": "Fetches or refreshes an access token"},
}


def push_sign(app_key: str, body: bytes, app_secret: str, method: str = "md5") -> str:
    msg = app_key.encode() + body + app_secret.encode()
    if method == "hmac-sha256":
        return hmac_sha256_hex(app_secret, msg)
    return md5_hex(msg)


def param_json(params: dict) -> str:
    """Keys sorted at every level, no spaces, UTF-8 as is (like Go's encoder with HTML escaping
    off, which the platform's own sample uses): the exact bytes that are signed and sent."""
    return json.dumps(params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def api_sign(app_key: str, app_secret: str, method: str, pjson: str, timestamp: str, v: str = "2",
             sign_method: str = "md5") -> str:
    text = f"{app_secret}app_key{app_key}method{method}param_json{pjson}timestamp{timestamp}v{v}{app_secret}"
    return hmac_sha256_hex(app_secret, text) if sign_method == "hmac-sha256" else md5_hex(text)


def to_utc(value) -> datetime | None:
    """Unix seconds/ms or a Beijing-time string → aware UTC datetime."""
    if value in (None, "", 0, "0"):
        return None
    try:
        return parse_datetime(value, source_tz=SERVICE_TZ,
                              unit="s" if isinstance(value, (int, float)) or str(value).isdigit() else None
                              ).astimezone(timezone.utc)
    except _StepError as exc:
        raise PayloadError(str(exc)) from None


class DouyinShopConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    # -- push ---------------------------------------------------------------------------
    def verify_webhook(self, headers, body, config, credentials):
        key, secret = (credentials or {}).get("app_key"), (credentials or {}).get("app_secret")
        if not key or not secret:
            raise ConfigError("credentials app_key and app_secret are required", path="credentials")
        app_id = header(headers, "app-id")
        if app_id is not None and app_id != key:
            raise SignatureError(f"message is for app {app_id}, not this install's app")
        given = header(headers, "event-sign")
        if not given:
            raise SignatureError("missing event-sign header")
        method = (header(headers, "sign-method") or "md5").lower()
        if method not in ("md5", "hmac-sha256"):
            raise SignatureError(f"unsupported sign-method {method}")
        if not equal(given.strip().lower(), push_sign(key, body, secret, method)):
            raise SignatureError("event-sign does not match")

    def parse_webhook(self, headers, body, config):
        cfg = apply_defaults(self.manifest.config_schema, config)
        messages = load_json(body, "抖店 push body")
        if isinstance(messages, dict):
            messages = [messages]
        if not isinstance(messages, list):
            raise PayloadError("抖店 push body must be a JSON list of messages")
        events = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or "tag" not in m:
                raise PayloadError(f"message [{i}] has no tag")
            tag = str(m["tag"])
            if tag not in TAGS:
                continue  # tag 0 (address verification) and non-trade tags: acknowledged only
            data = m.get("data")
            if isinstance(data, str):
                data = load_json(data, f"message [{i}] data")
            if not isinstance(data, dict) or not data.get("p_id"):
                raise PayloadError(f"message [{i}] (tag {tag}) has no p_id in data")
            when = None
            for k in ("update_time", "pay_time", "create_time"):
                if data.get(k) not in (None, "", 0):
                    when = to_utc(data[k])
                    break
            payload = dict(data, tag=tag)
            for k in ("create_time", "pay_time", "update_time", "ship_time", "complete_time"):
                if data.get(k) not in (None, "", 0):
                    payload[k + "_utc"] = to_utc(data[k]).isoformat()
            events.append(InboundEvent(event_type=TAGS[tag], external_id=str(data["p_id"]),
                                       channel=cfg["channel"], occurred_at=when or datetime.now(timezone.utc),
                                       payload=payload, source_id=str(m.get("msg_id") or "") or None))
        return events

    def webhook_response(self, events, config):
        return WebhookResponse.json(ACK)

    def webhook_error_response(self, error, config):
        # 抖店 retries anything that is not {"code":0}; say why.
        status = 401 if isinstance(error, SignatureError) else 400
        return WebhookResponse.json({"code": 40000 + status, "msg": str(error)}, status=status)

    # -- open API -----------------------------------------------------------------------
    def call(self, method: str, params: dict, cfg: dict, creds: dict, *, with_token: bool = True) -> dict:
        pj = param_json(params)
        ts = str(int(time.time()))
        sm = cfg.get("sign_method") or "hmac-sha256"
        q = {"app_key": creds["app_key"], "method": method, "timestamp": ts, "v": "2", "sign_method": sm,
             "sign": api_sign(creds["app_key"], creds["app_secret"], method, pj, ts, sign_method=sm)}
        if with_token:
            if not creds.get("access_token"):
                raise ConfigError("no access_token: run fetch_token first", path="credentials/access_token")
            q["access_token"] = creds["access_token"]
        url = cfg["api_base_url"].rstrip("/") + "/" + method.replace(".", "/")
        body = self.http.request("POST", url, params=q, data=pj.encode("utf-8"),
                                 headers={"Content-Type": "application/json;charset=UTF-8"},
                                 timeout=cfg["timeout_seconds"]).json()
        if not isinstance(body, dict) or ("code" not in body and "err_no" not in body):
            raise PayloadError(f"抖店 {method}: unexpected response {str(body)[:120]}")
        code = body["code"] if "code" in body else (10000 if body["err_no"] == 0 else body["err_no"])
        if code == 10000:
            return body.get("data") or {}
        msg = f"抖店 {method}: code {code} {body.get('msg', '')} {body.get('sub_msg', '')}".strip()
        if code in RETRYABLE_CODES:
            raise RetryableError(msg, code=f"douyin_{code}", retry_after=30)
        if code in TOKEN_EXPIRED_CODES:
            raise PermanentError(msg, code="douyin_token_expired")
        raise PermanentError(msg, code=f"douyin_{code}")

    def _token_update(self, data: dict) -> dict:
        if not data.get("access_token"):
            raise PayloadError("抖店 token response without access_token")
        return {"access_token": data["access_token"], "refresh_token": data.get("refresh_token"),
                "access_token_expires_at": int(time.time()) + int(data.get("expires_in") or 0)}

    def test_connection(self, config, credentials):
        try:
            cfg, creds = self.validate_config(config, credentials)
            result = self.execute("refresh_token" if creds.get("refresh_token") else "fetch_token", {},
                                  cfg, creds, idempotency_key="test")
            return ConnectionResult(True, "token obtained", {"shop_id": result.output.get("shop_id")})
        except Exception as exc:  # noqa: BLE001
            return ConnectionResult(False, str(exc))

    def execute(self, action, input, config, credentials, *, idempotency_key):
        self.manifest.action(action)
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        if action == "fetch_token":
            params = {"code": "", "grant_type": "authorization_self"}
            shop = data.get("shop_id") or cfg["shop_id"]
            if shop:
                params["shop_id"] = shop
            out = self.call("token.create", params, cfg, creds, with_token=False)
            upd = self._token_update(out)
            return ActionResult({"shop_id": str(out.get("shop_id", "")), "expires_at": upd["access_token_expires_at"]}, upd)
        if action == "refresh_token":
            if not creds.get("refresh_token"):
                raise ConfigError("no refresh_token stored: run fetch_token", path="credentials/refresh_token")
            out = self.call("token.refresh", {"grant_type": "refresh_token", "refresh_token": creds["refresh_token"]},
                            cfg, creds, with_token=False)
            upd = self._token_update(out)
            return ActionResult({"shop_id": str(out.get("shop_id", "")), "expires_at": upd["access_token_expires_at"]}, upd)
        # order_detail: refresh first if the token is (about to be) expired
        upd = None
        exp = creds.get("access_token_expires_at")
        if creds.get("refresh_token") and (not creds.get("access_token") or (exp is not None and exp - time.time() < 300)):
            upd = self.execute("refresh_token", {}, cfg, creds, idempotency_key=idempotency_key).credentials_update
            creds = {**creds, **upd}
        out = self.call("order.orderDetail", {"shop_order_id": data["order_id"]}, cfg, creds)
        return ActionResult({"order": out.get("shop_order_detail", out)}, upd)

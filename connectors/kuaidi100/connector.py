"""Express tracking in the 快递100 protocol (api.kuaidi100.com).

Real-time query: ``POST <base>/poll/query.do`` form ``customer``, ``param`` (JSON:
``com``, ``num``, ``phone``, ``resultv2``), ``sign = MD5(param + key + customer)`` upper-case.
Subscription: ``POST <base>/poll`` form ``schema=json``, ``param`` (JSON: ``company``,
``number``, ``key``, ``parameters{callbackurl, salt, resultv2}``); ``returnCode`` 200 ok,
501 already subscribed (treated as success).
Callback (push to our webhook): form ``param`` (JSON with ``status``, ``lastResult``) and
``sign = MD5(param + salt)`` upper-case; we must answer
``{"result":true,"returnCode":"200","message":"成功"}``.
``state``: 0 在途, 1 揽收, 2 疑难, 3 签收, 4 退签, 5 派件, 6 退回, 7 转投, 8 清关, 14 拒签.
Track times are Beijing time → UTC. On state 3 a ``logistics.signed`` event carries the
signed-for time (the newest track entry).
"""
from __future__ import annotations

import json
import urllib.parse
from datetime import timezone

from ..api import (LOGISTICS_SIGNED, LOGISTICS_UPDATED, ActionResult, ConfigError, Connector, InboundEvent,
                   Manifest, PayloadError, PermanentError, RetryableError, SignatureError, WebhookResponse,
                   apply_defaults)
from ..api.mapping import _StepError, parse_datetime
from ..api.signing import equal, icon, md5_hex

SERVICE_TZ = "Asia/Shanghai"
STATES = {"0": "在途", "1": "揽收", "2": "疑难", "3": "签收", "4": "退签", "5": "派件", "6": "退回",
          "7": "转投", "8": "清关", "14": "拒签"}
ACK = {"result": True, "returnCode": "200", "message": "成功"}
RETRYABLE_CODES = {"501", "502"}  # query: 服务器错误 / 服务器繁忙

MANIFEST = {
    "name": "kuaidi100",
    "version": "1.0.0",
    "labels": {"zh-CN": "快递100 物流跟踪", "en": "Kuaidi100 express tracking"},
    "description": {"zh-CN": "实时查询快递轨迹、订阅推送，签收时回写签收时间。",
                    "en": "Query tracking in real time, subscribe to pushes, record the signed-for time."},
    "icon": icon("递", "#0ea5e9"),
    "categories": ["logistics"],
    "config_schema": {"type": "object", "properties": {
        "base_url": {"type": "string", "default": "https://poll.kuaidi100.com"},
        "callback_url": {"type": "string", "default": "", "description": "Our webhook URL for this install"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 10}}},
    "credential_schema": {"type": "object", "required": ["customer", "key"], "properties": {
        "customer": {"type": "string", "minLength": 1},
        "key": {"type": "string", "minLength": 1, "format": "password", "writeOnly": True},
        "salt": {"type": "string", "format": "password", "writeOnly": True,
                 "description": "Callback signing salt (sent with each subscription)"}}},
    "inbound": [{"kind": "webhook", "event_types": [LOGISTICS_UPDATED, LOGISTICS_SIGNED],
                 "description": "Subscription callback (one event per track entry; signed on state 3)"}],
    "actions": [
        {"name": "query", "labels": {"zh-CN": "实时查询", "en": "Query tracking"},
         "input_schema": {"type": "object", "required": ["com", "num"], "properties": {
             "com": {"type": "string", "description": "carrier code, e.g. yuantong, shunfeng"},
             "num": {"type": "string"}, "phone": {"type": "string"}}},
         "output_schema": {"type": "object", "properties": {
             "state": {"type": "string"}, "signed": {"type": "boolean"}, "signed_at": {"type": ["string", "null"]},
             "tracks": {"type": "array"}}}},
        {"name": "subscribe", "labels": {"zh-CN": "订阅推送", "en": "Subscribe"}, "idempotent": True,
         "input_schema": {"type": "object", "required": ["com", "num"], "properties": {
             "com": {"type": "string"}, "num": {"type": "string"}, "phone": {"type": "string"}}}},
    ],
    "mappings": [{
        "name": "kuaidi100_tracks", "table": "logistics_events", "event_types": [LOGISTICS_UPDATED],
        "fields": {"tracking_no": "$.nu", "carrier": "$.com", "time": "$.time_utc",
                   "status_text": "$.context", "location": {"path": ["$.areaName", "$.location"]},
                   "state": {"path": "$.state", "transform": {"op": "lookup", "map": STATES, "default": "在途"}}}},
        {"name": "kuaidi100_signed", "table": "orders", "event_types": [LOGISTICS_SIGNED], "key": ["tracking_no"],
         "fields": {"tracking_no": "$.nu", "signed_for_time": "$.signed_at", "status": {"const": "已完成"}}}],
    "connection_test": {"supported": False, "description": "Run a query for a known tracking number."},
}


def query_sign(param: str, key: str, customer: str) -> str:
    return md5_hex(param + key + customer).upper()


def callback_sign(param: str, salt: str) -> str:
    return md5_hex(param + salt).upper()


def _utc(s):
    try:
        return parse_datetime(s, source_tz=SERVICE_TZ).astimezone(timezone.utc)
    except _StepError as exc:
        raise PayloadError(f"bad track time: {exc}") from None


def tracks_from(result: dict) -> tuple[list[dict], str | None]:
    """Track entries (newest first, with ``time_utc``) and the signed-for time if state is 3."""
    tracks = []
    for d in result.get("data") or []:
        t = dict(d)
        t["time_utc"] = _utc(d.get("ftime") or d.get("time")).isoformat()
        tracks.append(t)
    tracks.sort(key=lambda t: t["time_utc"], reverse=True)
    signed_at = tracks[0]["time_utc"] if str(result.get("state")) == "3" and tracks else None
    return tracks, signed_at


def _form(body: bytes) -> dict:
    try:
        return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise PayloadError("callback body is not UTF-8 form data") from None


class Kuaidi100Connector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def execute(self, action, input, config, credentials, *, idempotency_key):
        self.manifest.action(action)
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        base = cfg["base_url"].rstrip("/")
        if action == "query":
            param = json.dumps({"com": data["com"], "num": data["num"], "phone": data.get("phone", ""),
                                "resultv2": "1"}, ensure_ascii=False, separators=(",", ":"))
            form = {"customer": creds["customer"], "param": param,
                    "sign": query_sign(param, creds["key"], creds["customer"])}
            body = self.http.request("POST", f"{base}/poll/query.do", data=form,
                                     timeout=cfg["timeout_seconds"]).json()
            if not isinstance(body, dict):
                raise PayloadError("快递100: unexpected response")
            if body.get("result") is False or ("returnCode" in body and "data" not in body):
                code = str(body.get("returnCode"))
                msg = f"快递100 query: returnCode {code} {body.get('message', '')}"
                if code == "500":  # 查询无结果: not an error for an order hub, just no tracks yet
                    return ActionResult({"state": None, "signed": False, "signed_at": None, "tracks": []})
                if code in RETRYABLE_CODES:
                    raise RetryableError(msg, code=f"kuaidi100_{code}", retry_after=30)
                raise PermanentError(msg, code=f"kuaidi100_{code}")
            tracks, signed_at = tracks_from(body)
            return ActionResult({"state": str(body.get("state")), "signed": signed_at is not None,
                                 "signed_at": signed_at, "tracks": tracks})
        # subscribe
        if not cfg["callback_url"]:
            raise ConfigError("config/callback_url is required to subscribe", path="config/callback_url")
        params = {"callbackurl": cfg["callback_url"], "resultv2": "1"}
        if creds.get("salt"):
            params["salt"] = creds["salt"]
        if data.get("phone"):
            params["phone"] = data["phone"]
        param = json.dumps({"company": data["com"], "number": data["num"], "key": creds["key"],
                            "parameters": params}, ensure_ascii=False, separators=(",", ":"))
        body = self.http.request("POST", f"{base}/poll", data={"schema": "json", "param": param},
                                 timeout=cfg["timeout_seconds"]).json()
        code = str((body or {}).get("returnCode"))
        if code in ("200", "501"):
            return ActionResult({"subscribed": True, "already": code == "501"})
        msg = f"快递100 subscribe: returnCode {code} {(body or {}).get('message', '')}"
        if code in ("500", "502", "503"):  # poll API: 500/502 server errors, 503 busy
            raise RetryableError(msg, code=f"kuaidi100_{code}", retry_after=60)
        raise PermanentError(msg, code=f"kuaidi100_{code}")

    def verify_webhook(self, headers, body, config, credentials):
        salt = (credentials or {}).get("salt")
        if not salt:
            raise ConfigError("credentials/salt is required to verify callbacks", path="credentials/salt")
        form = _form(body)
        if "param" not in form or not form.get("sign"):
            raise SignatureError("callback without param/sign")
        if not equal(form["sign"].upper(), callback_sign(form["param"], salt)):
            raise SignatureError("callback sign does not match")

    def parse_webhook(self, headers, body, config):
        form = _form(body)
        from ..api import load_json
        param = load_json(form.get("param", ""), "callback param")
        result = (param or {}).get("lastResult") if isinstance(param, dict) else None
        if not isinstance(result, dict) or not result.get("nu"):
            raise PayloadError("callback param has no lastResult.nu")
        nu, com, state = str(result["nu"]), result.get("com", ""), str(result.get("state", ""))
        tracks, signed_at = tracks_from(result)
        events = [InboundEvent(LOGISTICS_UPDATED, nu, com or "express", parse_datetime(t["time_utc"]),
                               {**t, "nu": nu, "com": com, "state": state}, source_id=f"{nu}@{t['time_utc']}")
                  for t in reversed(tracks)]
        if signed_at:
            events.append(InboundEvent(LOGISTICS_SIGNED, nu, com or "express", parse_datetime(signed_at),
                                       {"nu": nu, "com": com, "state": state, "signed_at": signed_at,
                                        "status": param.get("status")}, source_id=f"{nu}@signed"))
        return events

    def webhook_response(self, events, config):
        return WebhookResponse.json(ACK)

    def webhook_error_response(self, error, config):
        status = 401 if isinstance(error, SignatureError) else 400
        return WebhookResponse.json({"result": False, "returnCode": str(status), "message": str(error)}, status)

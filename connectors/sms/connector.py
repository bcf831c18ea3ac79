"""SMS via a generic HTTP gateway (the shape most Chinese SMS APIs share).

Request: ``POST <gateway_url>`` (form or JSON) with
``api_key, phone, sign_name, template_code, template_params (JSON string), timestamp, nonce``
and ``sign`` = hex(HMAC-SHA256(api_secret, canonical)) (or MD5(canonical + api_secret),
upper-case, for older gateways), where ``canonical`` is ``k1=v1&k2=v2…`` over all other
parameters sorted by name (UTF-8, unescaped). The answer is JSON; success when
``<success_field>`` is one of ``success_values`` (default ``code`` ∈ {0, "0", "OK"}).
Gateway errors named in ``retryable_codes`` (e.g. rate limits) are retried.
"""
from __future__ import annotations

import json
import secrets as _secrets
import time

from ..api import ActionResult, Connector, Manifest, PayloadError, PermanentError, RetryableError
from ..api.signing import hmac_sha256_hex, icon, md5_hex

MANIFEST = {
    "name": "sms",
    "version": "1.0.0",
    "labels": {"zh-CN": "短信网关", "en": "SMS gateway"},
    "description": {"zh-CN": "通过 HTTP 短信网关发送模板短信（签名参数）。",
                    "en": "Send template SMS through an HTTP SMS gateway (signed parameters)."},
    "icon": icon("S", "#9333ea"),
    "categories": ["notification"],
    "config_schema": {
        "type": "object", "required": ["gateway_url", "sign_name"],
        "properties": {
            "gateway_url": {"type": "string", "pattern": "^https?://"},
            "sign_name": {"type": "string", "minLength": 1, "description": "短信签名, e.g. 中枢商城"},
            "body_format": {"enum": ["form", "json"], "default": "form"},
            "signature_method": {"enum": ["hmac-sha256", "md5"], "default": "hmac-sha256"},
            "sign_param": {"type": "string", "default": "sign"},
            "success_field": {"type": "string", "default": "code"},
            "success_values": {"type": "array", "default": [0, "0", "OK"]},
            "message_field": {"type": "string", "default": "message"},
            "retryable_codes": {"type": "array", "default": ["RATE_LIMIT", "isv.BUSINESS_LIMIT_CONTROL", 429]},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 10},
        },
    },
    "credential_schema": {"type": "object", "required": ["api_key", "api_secret"], "properties": {
        "api_key": {"type": "string", "minLength": 1},
        "api_secret": {"type": "string", "minLength": 1, "format": "password", "writeOnly": True}}},
    "inbound": [],
    "actions": [{
        "name": "send_sms",
        "labels": {"zh-CN": "发送短信", "en": "Send SMS"},
        "idempotent": True,
        "input_schema": {"type": "object", "required": ["phone", "template_code"], "properties": {
            "phone": {"type": "string", "pattern": r"^\+?[0-9]{6,20}$"},
            "template_code": {"type": "string"},
            "template_params": {"type": "object", "default": {}}}},
        "output_schema": {"type": "object", "properties": {"gateway_response": {"type": "object"}}},
    }],
    "connection_test": {"supported": False, "description": "Sending is the only call; use a test phone."},
}


def canonical_string(params: dict, exclude: str = "sign") -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != exclude and params[k] is not None)


def sign_params(params: dict, secret: str, method: str = "hmac-sha256", sign_param: str = "sign") -> str:
    canon = canonical_string(params, sign_param)
    if method == "md5":
        return md5_hex(canon + secret).upper()
    return hmac_sha256_hex(secret, canon)


class SmsGatewayConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def execute(self, action, input, config, credentials, *, idempotency_key):
        self.manifest.action(action)
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        params = {
            "api_key": creds["api_key"], "phone": data["phone"], "sign_name": cfg["sign_name"],
            "template_code": data["template_code"],
            "template_params": json.dumps(data["template_params"], ensure_ascii=False, sort_keys=True,
                                          separators=(",", ":")),
            "timestamp": str(int(time.time())), "nonce": _secrets.token_hex(8),
            "out_id": idempotency_key[:64],  # gateways that dedupe use it; others ignore it
        }
        params[cfg["sign_param"]] = sign_params(params, creds["api_secret"], cfg["signature_method"],
                                                cfg["sign_param"])
        if cfg["body_format"] == "json":
            resp = self.http.request("POST", cfg["gateway_url"], json=params, timeout=cfg["timeout_seconds"])
        else:
            resp = self.http.request("POST", cfg["gateway_url"], data=params, timeout=cfg["timeout_seconds"])
        body = resp.json()
        if not isinstance(body, dict):
            raise PayloadError(f"sms gateway: unexpected response {resp.text[:120]!r}")
        code = body.get(cfg["success_field"])
        if code in cfg["success_values"]:
            return ActionResult({"gateway_response": body})
        msg = f"sms gateway rejected the message: {cfg['success_field']}={code!r} {body.get(cfg['message_field'], '')}"
        if code in cfg["retryable_codes"]:
            raise RetryableError(msg, code=f"sms_{code}", retry_after=60)
        raise PermanentError(msg, code=f"sms_{code}")

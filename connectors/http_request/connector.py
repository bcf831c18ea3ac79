from __future__ import annotations

import json
import time

from ..api import (ActionResult, ConnectionResult, Connector, Manifest, PayloadError, PermanentError)
from ..api.signing import hmac_sha256_hex, icon
from ..api.templating import DATA_SCHEMA, TemplateRenderError, input_texts
from ..api.textformat import JSON

MANIFEST = {
    "name": "http_request",
    "version": "1.0.0",
    "labels": {"zh-CN": "HTTP 请求", "en": "HTTP request"},
    "description": {"zh-CN": "向任意接口发送请求，JSON 请求体由模板生成，可选 HMAC 签名。",
                    "en": "Call any HTTP API; the JSON body is rendered from a template, optionally "
                          "HMAC-signed."},
    "icon": icon("H", "#2563eb"),
    "categories": ["generic", "outbound"],
    "config_schema": {
        "type": "object",
        "properties": {
            "base_url": {"type": "string", "default": "", "description": "Prefix for relative URLs"},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 120, "default": 15},
            "default_headers": {"type": "object", "additionalProperties": {"type": "string"}, "default": {}},
            "signature_header": {"type": "string", "default": "X-Zhongshu-Signature"},
            "timestamp_header": {"type": "string", "default": "X-Zhongshu-Timestamp"},
            "test_url": {"type": "string", "default": "", "description": "GET this URL to test the connection"},
        },
    },
    "credential_schema": {
        "type": "object",
        "properties": {
            "signing_secret": {"type": "string", "format": "password", "writeOnly": True,
                               "description": "If set, requests carry sha256=HMAC(secret, '<ts>.<body>')"},
            "bearer_token": {"type": "string", "format": "password", "writeOnly": True},
        },
    },
    "inbound": [],
    "actions": [{
        "name": "request",
        "labels": {"zh-CN": "发送 HTTP 请求", "en": "Send HTTP request"},
        "idempotent": True,
        "input_schema": {
            "type": "object",
            "required": ["url"],
            "properties": {
                "method": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "POST"},
                "url": {"type": "string", "minLength": 1},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}, "default": {}},
                "body_template": {"type": "string", "description": "JSON text; with data a Jinja2 template "
                                  "producing JSON: values are escaped as JSON string content (write "
                                  "\"{{ name }}\" in quotes), or give whole JSON values with the tojson filter"},
                "body": {"description": "A JSON body used as-is (when no template)"},
                "data": DATA_SCHEMA,
            },
        },
        "output_schema": {"type": "object", "properties": {
            "status": {"type": "integer"}, "headers": {"type": "object"}, "json": {}, "text": {"type": "string"}}},
    }],
    "connection_test": {"supported": True, "description": "GET config.test_url if set"},
}


def _json_text(text: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TemplateRenderError(f"input/body_template: the text is not valid JSON ({exc}): {text[:80]!r}") from None


class HttpRequestConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def text_formats(self, action, input):
        """The body template is JSON: values put into it are escaped as JSON string content."""
        return {"body_template": JSON}

    def test_connection(self, config, credentials):
        cfg, _ = self.validate_config(config, credentials)
        if not cfg["test_url"]:
            return ConnectionResult(True, "no test_url configured; nothing to check")
        try:
            r = self.http.request("GET", cfg["test_url"], timeout=cfg["timeout_seconds"])
            return ConnectionResult(True, f"HTTP {r.status}")
        except Exception as exc:  # noqa: BLE001 - a failed test is a result, not an exception
            return ConnectionResult(False, str(exc))

    def execute(self, action, input, config, credentials, *, idempotency_key):
        if action != "request":
            self.manifest.action(action)  # raises PermanentError for unknown actions
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        text = input_texts(data)  # url and body_template are templates only with input.data
        url = text(data["url"], "input/url")
        if not url.lower().startswith(("http://", "https://")):
            url = cfg["base_url"].rstrip("/") + "/" + url.lstrip("/")
        body = None
        if data.get("body_template"):
            body = json.dumps(_json_text(text(data["body_template"], "input/body_template", JSON)), ensure_ascii=False,
                              separators=(",", ":")).encode("utf-8")
        elif "body" in data:
            body = json.dumps(data["body"], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {**cfg["default_headers"], **data["headers"], "Idempotency-Key": idempotency_key}
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if creds.get("bearer_token"):
            headers["Authorization"] = f"Bearer {creds['bearer_token']}"
        if creds.get("signing_secret"):
            ts = str(int(time.time()))
            headers[cfg["timestamp_header"]] = ts
            headers[cfg["signature_header"]] = "sha256=" + hmac_sha256_hex(
                creds["signing_secret"], ts.encode() + b"." + (body or b""))
        resp = self.http.request(data["method"], url, headers=headers, data=body,
                                 timeout=cfg["timeout_seconds"])
        out = {"status": resp.status, "headers": resp.headers, "text": resp.text[:10000]}
        ctype = resp.header("content-type", "")
        if "json" in ctype and resp.body:
            out["json"] = resp.json()  # PayloadError if the server lies about JSON
        return ActionResult(out)


__all__ = ["HttpRequestConnector", "PayloadError", "PermanentError"]

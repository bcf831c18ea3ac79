from __future__ import annotations

import time
from datetime import datetime, timezone

from ..api import (ConfigError, Connector, InboundEvent, Manifest, PayloadError, SignatureError,
                   apply_defaults, header, load_json)
from ..api.mapping import _StepError, get, parse_datetime
from ..api.signing import equal, hmac_sha256_b64, hmac_sha256_hex, icon

MANIFEST = {
    "name": "webhook",
    "version": "1.0.0",
    "labels": {"zh-CN": "通用 Webhook", "en": "Generic webhook"},
    "description": {"zh-CN": "接收任意系统推送的 JSON，HMAC-SHA256 签名校验，字段映射可配置。",
                    "en": "Receive JSON pushed by any system, verified with an HMAC-SHA256 signature; "
                          "configurable field mapping."},
    "icon": icon("W", "#4b5563"),
    "categories": ["generic", "inbound"],
    "config_schema": {
        "type": "object",
        "required": ["channel"],
        "properties": {
            "channel": {"type": "string", "minLength": 1, "title": "渠道 / Channel",
                        "description": "Channel label used in the global id, e.g. 小程序"},
            "signature_header": {"type": "string", "default": "X-Zhongshu-Signature"},
            "signature_encoding": {"enum": ["hex", "base64"], "default": "hex"},
            "signature_prefix": {"type": "string", "default": "sha256=",
                                 "description": "Text before the digest in the header, e.g. sha256="},
            "timestamp_header": {"type": "string", "default": "",
                                 "description": "If set, the signed text is '<timestamp>.<body>' and "
                                                "stale timestamps are rejected"},
            "tolerance_seconds": {"type": "integer", "minimum": 1, "default": 300},
            "events_path": {"type": "string", "default": "",
                            "description": "Path to a list of events in the body (empty: the body is "
                                           "one event, or a list of events)"},
            "event_type": {"type": "string", "default": "order.created"},
            "event_type_path": {"type": "string", "default": ""},
            "external_id_path": {"type": "string", "default": "$.id"},
            "occurred_at_path": {"type": "string", "default": ""},
            "source_tz": {"type": "string", "default": "Asia/Shanghai",
                          "description": "Time zone of naive timestamps in the payload"},
            "mappings": {"type": "array", "items": {"type": "object"},
                         "description": "Field mappings (override the defaults)"},
        },
    },
    "credential_schema": {
        "type": "object",
        "required": ["secret"],
        "properties": {"secret": {"type": "string", "minLength": 8, "format": "password", "writeOnly": True}},
    },
    "inbound": [{"kind": "webhook", "event_types": ["order.created", "order.paid", "order.updated",
                                                     "order.status_changed"],
                 "description": "POST a JSON object (or a list of them) signed with HMAC-SHA256"}],
    "actions": [],
    "mappings": [{
        "table": "orders",
        "key": ["global_id"],
        "fields": {
            "external_id": {"path": "$.id", "transform": "to_string", "required": True},
            "amount_due": {"path": ["$.amount_due", "$.total"], "transform": "to_number"},
            "amount_paid": {"path": "$.amount_paid", "transform": "to_number", "default": 0},
            "receiver_name": "$.receiver.name",
            "receiver_phone": "$.receiver.phone",
            "address": "$.receiver.address",
            "remarks": "$.remarks",
            "created": {"path": "$.created_at", "transform": {"op": "to_datetime", "source_tz": "Asia/Shanghai"}},
        },
        "subtables": {"items": {"path": "$.items[*]", "fields": {
            "sku": "@.sku", "qty": {"path": "@.qty", "transform": "to_integer"},
            "unit_price": {"path": "@.price", "transform": "to_number"}}}},
    }],
    "connection_test": {"supported": False, "description": "Push-only: send a test event instead."},
}


def sign(secret: str, body: bytes, *, timestamp: str | None = None, encoding: str = "hex",
         prefix: str = "sha256=") -> str:
    """The header value a sender must produce (documented for integrators)."""
    msg = (timestamp.encode() + b"." + body) if timestamp else body
    digest = hmac_sha256_hex(secret, msg) if encoding == "hex" else hmac_sha256_b64(secret, msg)
    return prefix + digest


class WebhookConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def verify_webhook(self, headers, body, config, credentials):
        cfg = apply_defaults(self.manifest.config_schema, config)
        secret = (credentials or {}).get("secret")
        if not secret:
            raise ConfigError("credentials/secret is not set", path="credentials/secret")
        given = header(headers, cfg["signature_header"])
        if not given:
            raise SignatureError(f"missing signature header {cfg['signature_header']}")
        ts = None
        if cfg["timestamp_header"]:
            ts = header(headers, cfg["timestamp_header"])
            if not ts or not ts.strip().isdigit():
                raise SignatureError(f"missing or invalid {cfg['timestamp_header']}")
            t = int(ts)
            t = t / 1000 if t > 1e11 else t
            if abs(time.time() - t) > cfg["tolerance_seconds"]:
                raise SignatureError("timestamp outside the allowed window (replay?)")
        expected = sign(secret, body, timestamp=ts, encoding=cfg["signature_encoding"],
                        prefix=cfg["signature_prefix"])
        if not equal(given.strip(), expected):
            raise SignatureError("signature does not match the body")

    def parse_webhook(self, headers, body, config):
        cfg = apply_defaults(self.manifest.config_schema, config)
        data = load_json(body, "webhook body")
        items = get(cfg["events_path"], data) if cfg["events_path"] else data
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise PayloadError("webhook body must be a JSON object or a list of objects")
        events = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise PayloadError(f"event [{i}] is not a JSON object")
            ext = get(cfg["external_id_path"], item)
            if ext in (None, ""):
                raise PayloadError(f"event [{i}]: no external id at {cfg['external_id_path']}")
            etype = get(cfg["event_type_path"], item) if cfg["event_type_path"] else None
            occurred = datetime.now(timezone.utc)
            if cfg["occurred_at_path"]:
                raw = get(cfg["occurred_at_path"], item)
                if raw not in (None, ""):
                    try:
                        occurred = parse_datetime(raw, source_tz=cfg["source_tz"])
                    except _StepError as exc:
                        raise PayloadError(f"event [{i}]: {exc}") from None
            events.append(InboundEvent(event_type=etype or cfg["event_type"], external_id=str(ext),
                                       channel=cfg["channel"], occurred_at=occurred, payload=item,
                                       source_id=header(headers, "X-Request-Id")))
        return events

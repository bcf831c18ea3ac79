"""Warehouse inventory pull in the common Chinese WMS/ERP open-API style.

``GET <base_url>/api/inventory/stock`` with ``app_key, timestamp, page_size, updated_after,
after_key`` (+ optional ``warehouse_code``) and
``sign = MD5(app_secret + k1v1k2v2… (sorted by name, sign excluded) + app_secret)`` upper-case.
Answer ``{"code": 0, "data": {"items": [...], "has_more": bool}}``; items carry
``warehouse_code, sku, on_hand, reserved, updated_at`` (Beijing time).

Pagination is keyset: the WMS returns items ordered by (updated_at, warehouse_code, sku)
strictly after (``updated_after``, ``after_key``). The cursor is the last item's key, so a
resumed pull never repeats an item and never skips one, and stock changed during a run
simply reappears later with its new level.
"""
from __future__ import annotations

import time
from datetime import timezone

from ..api import (INVENTORY_LEVEL, ConnectionResult, Connector, InboundEvent, Manifest, PayloadError,
                   PermanentError, PullPage, RetryableError)
from ..api.mapping import _StepError, parse_datetime
from ..api.signing import icon, md5_hex

MANIFEST = {
    "name": "wms",
    "version": "1.0.0",
    "labels": {"zh-CN": "仓储系统库存同步", "en": "WMS inventory sync"},
    "description": {"zh-CN": "定时从仓储系统拉取库存（按仓库+SKU）。",
                    "en": "Pull stock levels (per warehouse + SKU) from a WMS on a schedule."},
    "icon": icon("仓", "#b45309"),
    "categories": ["inventory", "inbound"],
    "config_schema": {"type": "object", "required": ["base_url"], "properties": {
        "base_url": {"type": "string", "pattern": "^https?://"},
        "warehouse_code": {"type": "string", "default": "", "description": "Only this warehouse (empty: all)"},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
        "service_tz": {"type": "string", "default": "Asia/Shanghai"},
        "channel": {"type": "string", "default": "WMS"},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 20}}},
    "credential_schema": {"type": "object", "required": ["app_key", "app_secret"], "properties": {
        "app_key": {"type": "string", "minLength": 1},
        "app_secret": {"type": "string", "minLength": 1, "format": "password", "writeOnly": True}}},
    "inbound": [{"kind": "pull", "event_types": [INVENTORY_LEVEL], "default_interval_seconds": 600,
                 "description": "Stock levels changed since the last pull"}],
    "actions": [],
    "mappings": [{
        "name": "wms_inventory", "table": "inventory", "event_types": [INVENTORY_LEVEL],
        "key": ["warehouse_code", "sku"],
        "fields": {"warehouse_code": {"path": "$.warehouse_code", "required": True},
                   "sku": {"path": "$.sku", "required": True},
                   "on_hand": {"path": "$.on_hand", "transform": "to_integer", "default": 0},
                   "reserved": {"path": "$.reserved", "transform": "to_integer", "default": 0},
                   "synced_at": "$.updated_at_utc"}}],
    "connection_test": {"supported": True, "description": "Fetches one stock row"},
}


def wms_sign(params: dict, secret: str) -> str:
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign" and params[k] is not None)
    return md5_hex(secret + text + secret).upper()


class WmsInventoryConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    def _fetch(self, cfg, creds, cursor, page_size):
        cur = cursor or {}
        params = {"app_key": creds["app_key"], "timestamp": str(int(time.time())), "page_size": str(page_size),
                  "updated_after": cur.get("updated_after", ""), "after_key": cur.get("after_key", "")}
        if cfg["warehouse_code"]:
            params["warehouse_code"] = cfg["warehouse_code"]
        params["sign"] = wms_sign(params, creds["app_secret"])
        body = self.http.request("GET", cfg["base_url"].rstrip("/") + "/api/inventory/stock", params=params,
                                 timeout=cfg["timeout_seconds"]).json()
        if not isinstance(body, dict) or "code" not in body:
            raise PayloadError(f"WMS: unexpected response {str(body)[:120]}")
        if body["code"] != 0:
            msg = f"WMS error {body['code']}: {body.get('message', '')}"
            if body["code"] in (429, 503, "RATE_LIMIT"):
                raise RetryableError(msg, code=f"wms_{body['code']}", retry_after=60)
            raise PermanentError(msg, code=f"wms_{body['code']}")
        data = body.get("data") or {}
        if not isinstance(data.get("items"), list):
            raise PayloadError("WMS response has no data.items list")
        return data

    def test_connection(self, config, credentials):
        try:
            cfg, creds = self.validate_config(config, credentials)
            self._fetch(cfg, creds, None, 1)
            return ConnectionResult(True, "stock API reachable")
        except Exception as exc:  # noqa: BLE001
            return ConnectionResult(False, str(exc))

    def pull(self, config, credentials, cursor):
        cfg, creds = self.validate_config(config, credentials)
        data = self._fetch(cfg, creds, cursor, cfg["page_size"])
        events, errors = [], []
        next_cursor = dict(cursor or {})
        for i, item in enumerate(data["items"]):
            try:
                wh, sku, upd = str(item["warehouse_code"]), str(item["sku"]), item["updated_at"]
                when = parse_datetime(upd, source_tz=cfg["service_tz"]).astimezone(timezone.utc)
            except (KeyError, TypeError, _StepError) as exc:
                errors.append({"index": i, "item": item, "error": f"{type(exc).__name__}: {exc}"})
                continue
            finally:
                # advance past every item the WMS returned, good or bad, so nothing loops
                if isinstance(item, dict) and "updated_at" in item:
                    next_cursor = {"updated_after": str(item["updated_at"]),
                                   "after_key": f"{item.get('warehouse_code')}/{item.get('sku')}"}
            events.append(InboundEvent(INVENTORY_LEVEL, f"{wh}/{sku}", cfg["channel"], when,
                                       {**item, "updated_at_utc": when.isoformat()},
                                       source_id=f"{wh}/{sku}@{upd}"))
        return PullPage(events, next_cursor, bool(data.get("has_more")), errors)

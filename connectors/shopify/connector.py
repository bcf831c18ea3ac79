"""Shopify connector.

Webhooks (shopify.dev "Deliver webhooks through HTTPS"): ``X-Shopify-Hmac-Sha256`` is
``base64(HMAC-SHA256(key=app client secret, msg=raw body))``; ``X-Shopify-Topic`` names the
event (``orders/create``, ``orders/paid``, ``orders/updated``, ``orders/cancelled``,
``orders/fulfilled``); ``X-Shopify-Shop-Domain`` the shop; ``X-Shopify-Webhook-Id`` /
``X-Shopify-Event-Id`` identify the delivery (duplicates share it). Shopify expects any 2xx
within 5 s.

Pull (Admin REST API ``GET /admin/api/<version>/orders.json``): authenticated with
``X-Shopify-Access-Token``; first page ``status=any&order=updated_at asc&updated_at_min=W
&limit=N``; later pages only ``limit`` + ``page_info`` from the ``Link: <…page_info=…>;
rel="next"`` header (Shopify rejects other filters together with page_info).

The cursor makes resumption exact: ``watermark`` (inclusive updated_at_min of the run) +
``seen`` (ids already delivered with updated_at == watermark) + the pending ``page_info``.
A page's events are skipped only if they were delivered with the very same updated_at.
"""
from __future__ import annotations

import re
import urllib.parse

from ..api import (ORDER_CREATED, ORDER_PAID, ORDER_STATUS_CHANGED, ORDER_UPDATED, ConfigError,
                   ConnectionResult, Connector, InboundEvent, Manifest, PayloadError, PullPage,
                   SignatureError, apply_defaults, header, load_json)
from ..api.mapping import _StepError, parse_datetime
from ..api.signing import equal, hmac_sha256_b64, icon

TOPICS = {"orders/create": ORDER_CREATED, "orders/paid": ORDER_PAID, "orders/updated": ORDER_UPDATED,
          "orders/cancelled": ORDER_STATUS_CHANGED, "orders/fulfilled": ORDER_STATUS_CHANGED,
          "orders/partially_fulfilled": ORDER_STATUS_CHANGED}

MANIFEST = {
    "name": "shopify",
    "version": "1.0.0",
    "labels": {"zh-CN": "Shopify", "en": "Shopify"},
    "description": {"zh-CN": "接收 Shopify 订单 Webhook，并按游标分页定时拉取订单。",
                    "en": "Receive Shopify order webhooks and pull orders with cursor pagination."},
    "icon": icon("S", "#95bf47"),
    "categories": ["channel", "inbound"],
    "config_schema": {
        "type": "object", "required": ["shop_domain"],
        "properties": {
            "shop_domain": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$|^[a-z0-9.-]+(:\d+)?$",
                            "description": "e.g. kidswear.myshopify.com"},
            "api_version": {"type": "string", "pattern": r"^\d{4}-\d{2}$", "default": "2024-10"},
            "base_url": {"type": "string", "default": "",
                         "description": "Override https://<shop_domain> (testing, proxies)"},
            "channel": {"type": "string", "default": "Shopify"},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 250, "default": 250},
            "initial_updated_at_min": {"type": "string", "default": "",
                                       "description": "Where the first pull starts (ISO 8601)"},
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 60, "default": 20},
        },
    },
    "credential_schema": {"type": "object", "properties": {
        "access_token": {"type": "string", "format": "password", "writeOnly": True,
                         "description": "Admin API access token (shpat_…)"},
        "api_secret": {"type": "string", "format": "password", "writeOnly": True,
                       "description": "App client secret: verifies webhooks"}}},
    "inbound": [
        {"kind": "webhook", "event_types": [ORDER_CREATED, ORDER_PAID, ORDER_UPDATED, ORDER_STATUS_CHANGED],
         "description": "Subscribe orders/create, orders/paid, orders/updated, orders/cancelled, orders/fulfilled"},
        {"kind": "pull", "event_types": [ORDER_UPDATED], "default_interval_seconds": 600,
         "description": "Orders updated since the last pull"},
    ],
    "actions": [],
    "mappings": [{
        "name": "shopify_orders", "table": "orders", "key": ["global_id"],
        "fields": {
            "external_id": {"path": "$.id", "transform": "to_string", "required": True},
            "channel": {"const": "Shopify"},
            "amount_due": {"path": "$.total_price", "transform": "to_number"},
            "discounts": {"path": "$.total_discounts", "transform": "to_number", "default": 0},
            "paid": {"path": "$.financial_status",
                     "transform": {"op": "lookup", "map": {"paid": True, "partially_refunded": True,
                                                           "refunded": True}, "default": False}},
            "status": {"path": "$.financial_status", "transform": {"op": "lookup", "map": {
                "pending": "待付款", "authorized": "待付款", "paid": "已付款", "partially_paid": "待付款",
                "refunded": "已退货", "voided": "已取消"}, "default": "待付款"}},
            "pay_time": {"path": "$.processed_at", "transform": "to_datetime"},
            "created": {"path": "$.created_at", "transform": "to_datetime"},
            "receiver_name": "$.shipping_address.name",
            "receiver_phone": {"path": ["$.shipping_address.phone", "$.phone"]},
            "address": {"template": "{% set a = payload.shipping_address or {} %}{{ [a.address1, a.address2, a.city, a.province, a.country] | select | join(', ') }}"},
            "remarks": "$.note",
        },
        "subtables": {"items": {"path": "$.line_items[*]", "fields": {
            "sku": "@.sku", "product_name": "@.title",
            "qty": {"path": "@.quantity", "transform": "to_integer"},
            "unit_price": {"path": "@.price", "transform": "to_number"},
            "is_gift": {"path": "@.price", "transform": {"op": "lookup", "map": {"0.00": True, "0": True},
                                                          "default": False}}}}},
    }],
    "connection_test": {"supported": True, "description": "GET /admin/api/<version>/shop.json"},
}

_LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?([a-z]+)"?')


def webhook_hmac(secret: str, body: bytes) -> str:
    return hmac_sha256_b64(secret, body)


def next_page_info(link_header: str | None) -> str | None:
    """The ``page_info`` of the ``rel="next"`` link, or None on the last page."""
    for url, rel in _LINK_RE.findall(link_header or ""):
        if rel == "next":
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
            return (q.get("page_info") or [None])[0]
    return None


class ShopifyConnector(Connector):
    manifest = Manifest.from_dict(MANIFEST)

    # -- webhooks -----------------------------------------------------------------------
    def verify_webhook(self, headers, body, config, credentials):
        secret = (credentials or {}).get("api_secret")
        if not secret:
            raise ConfigError("credentials/api_secret is required to verify webhooks", path="credentials/api_secret")
        given = header(headers, "X-Shopify-Hmac-Sha256")
        if not given:
            raise SignatureError("missing X-Shopify-Hmac-Sha256")
        if not equal(given.strip(), webhook_hmac(secret, body)):
            raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body")
        cfg = apply_defaults(self.manifest.config_schema, config)
        shop = header(headers, "X-Shopify-Shop-Domain")
        if shop and cfg.get("shop_domain") and shop.lower() != cfg["shop_domain"].lower():
            raise SignatureError(f"webhook is for shop {shop}, this install is {cfg['shop_domain']}")

    def parse_webhook(self, headers, body, config):
        cfg = apply_defaults(self.manifest.config_schema, config)
        topic = header(headers, "X-Shopify-Topic") or ""
        if topic not in TOPICS:
            return []  # app/uninstalled, other topics: acknowledged, nothing to store
        order = load_json(body, "Shopify webhook body")
        if not isinstance(order, dict) or "id" not in order:
            raise PayloadError("Shopify order webhook without an order id")
        when = header(headers, "X-Shopify-Triggered-At") or order.get("updated_at") or order.get("created_at")
        return [self._event(order, TOPICS[topic], cfg["channel"], when,
                            header(headers, "X-Shopify-Event-Id") or header(headers, "X-Shopify-Webhook-Id"))]

    def _event(self, order, event_type, channel, when, source_id=None):
        try:
            occurred = parse_datetime(when)
        except _StepError as exc:
            raise PayloadError(f"order {order.get('id')}: {exc}") from None
        return InboundEvent(event_type=event_type, external_id=str(order["id"]), channel=channel,
                            occurred_at=occurred, payload=order, source_id=source_id)

    # -- Admin API ----------------------------------------------------------------------
    def _base(self, cfg):
        base = cfg["base_url"] or f"https://{cfg['shop_domain']}"
        return f"{base.rstrip('/')}/admin/api/{cfg['api_version']}"

    def _headers(self, creds):
        if not creds.get("access_token"):
            raise ConfigError("credentials/access_token is required for the Admin API",
                              path="credentials/access_token")
        return {"X-Shopify-Access-Token": creds["access_token"]}

    def test_connection(self, config, credentials):
        try:
            cfg, creds = self.validate_config(config, credentials)
            r = self.http.request("GET", f"{self._base(cfg)}/shop.json", headers=self._headers(creds),
                                  timeout=cfg["timeout_seconds"])
            shop = (r.json() or {}).get("shop", {})
            return ConnectionResult(True, f"connected to {shop.get('name') or cfg['shop_domain']}",
                                    {"shop": shop.get("myshopify_domain")})
        except Exception as exc:  # noqa: BLE001
            return ConnectionResult(False, str(exc))

    def pull(self, config, credentials, cursor):
        cfg, creds = self.validate_config(config, credentials)
        cur = dict(cursor or {})
        watermark = cur.get("watermark") or cfg["initial_updated_at_min"] or None
        seen = set(cur.get("seen") or [])
        run_wm = cur.get("run_watermark", watermark)
        run_seen = set(cur.get("run_seen") or (seen if run_wm == watermark else []))
        url = f"{self._base(cfg)}/orders.json"
        if cur.get("page_info"):
            params = {"limit": cfg["page_size"], "page_info": cur["page_info"]}
        else:
            params = {"limit": cfg["page_size"], "status": "any", "order": "updated_at asc",
                      "updated_at_min": watermark}
        resp = self.http.request("GET", url, params=params, headers=self._headers(creds),
                                 timeout=cfg["timeout_seconds"])
        body = resp.json()
        if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
            raise PayloadError("Shopify orders response has no 'orders' list")
        events, errors = [], []
        wm_dt = parse_datetime(watermark) if watermark else None
        run_dt = parse_datetime(run_wm) if run_wm else None
        for order in body["orders"]:
            try:
                upd = order["updated_at"]
                upd_dt = parse_datetime(upd)
                oid = str(order["id"])
            except (KeyError, TypeError, _StepError) as exc:
                errors.append({"order": order.get("id") if isinstance(order, dict) else None,
                               "error": f"bad order: {exc}"})
                continue
            if wm_dt is not None and upd_dt == wm_dt and oid in seen:
                continue  # delivered by the previous run with this very updated_at
            events.append(self._event(order, ORDER_UPDATED, cfg["channel"], upd))
            if run_dt is None or upd_dt > run_dt:
                run_dt, run_wm, run_seen = upd_dt, upd, {oid}
            elif upd_dt == run_dt:
                run_seen.add(oid)
        nxt = next_page_info(resp.header("link"))
        if nxt:
            next_cursor = {"page_info": nxt, "watermark": watermark, "seen": sorted(seen),
                           "run_watermark": run_wm, "run_seen": sorted(run_seen)}
        else:
            next_cursor = {"watermark": run_wm, "seen": sorted(run_seen)}
        return PullPage(events, next_cursor, bool(nxt), errors)

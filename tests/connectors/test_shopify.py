"""Shopify: webhook HMAC verification and Admin API pull with Link-header pagination,
resumable from a saved cursor without duplicates or gaps."""
import base64
import hashlib
import hmac
import json

import pytest
from werkzeug.wrappers import Response

from zhongshu.connectors.api import PayloadError, RetryableError, SignatureError, pull_pages
from zhongshu.connectors.shopify import ShopifyConnector, next_page_info

SECRET, TOKEN, SHOP = "shpss_secret", "shpat_token", "kidswear.myshopify.com"


def order(i, updated):
    return {"id": 5000 + i, "name": f"#{1000 + i}", "updated_at": updated, "created_at": "2024-05-01T10:00:00+08:00",
            "total_price": "59.90", "financial_status": "paid", "processed_at": "2024-05-01T10:01:00+08:00",
            "shipping_address": {"name": "Ann", "address1": "1 Main St", "city": "Austin", "country": "US"},
            "line_items": [{"sku": "ROMPER-80", "title": "Romper", "quantity": 2, "price": "29.95"}]}


class FakeShopify:
    """Admin REST orders.json: token check, updated_at_min filter, ordering, page_info cursors."""

    def __init__(self, orders, fail_next=0):
        self.orders, self.fail_next = orders, fail_next

    def __call__(self, req):
        if req.headers.get("X-Shopify-Access-Token") != TOKEN:
            return Response('{"errors":"[API] Invalid API key or access token"}', 401)
        if req.path != "/admin/api/2024-10/orders.json":
            return Response('{"errors":"Not Found"}', 404)
        if self.fail_next:
            self.fail_next -= 1
            return Response('{"errors":"Exceeded 2 calls per second"}', 429, headers={"Retry-After": "2.0"})
        a = req.args
        limit = int(a.get("limit", 50))
        if "page_info" in a:
            if set(a) - {"limit", "page_info", "fields"}:
                return Response('{"errors":{"page_info":"cannot be combined with other filters"}}', 400)
            state = json.loads(base64.urlsafe_b64decode(a["page_info"]))
            after, wm = tuple(state["after"]), state["min"]
        else:
            if a.get("order") != "updated_at asc" or a.get("status") != "any":
                return Response('{"errors":"expected order=updated_at asc&status=any"}', 400)
            after, wm = None, a.get("updated_at_min")
        rows = sorted((o for o in self.orders if wm is None or o["updated_at"] >= wm),
                      key=lambda o: (o["updated_at"], o["id"]))
        if after:
            rows = [o for o in rows if (o["updated_at"], o["id"]) > after]
        page, rest = rows[:limit], rows[limit:]
        headers = {}
        if rest:
            token = base64.urlsafe_b64encode(json.dumps(
                {"after": [page[-1]["updated_at"], page[-1]["id"]], "min": wm}).encode()).decode()
            headers["Link"] = (f'<{req.host_url}admin/api/2024-10/orders.json?limit={limit}&page_info={token}>; '
                               f'rel="next"')
        return Response(json.dumps({"orders": page}), 200, headers=headers, content_type="application/json")


def cfg(srv):
    return {"shop_domain": SHOP, "base_url": srv.url, "page_size": 2}


CREDS = {"access_token": TOKEN, "api_secret": SECRET}


def test_webhook_is_verified_with_base64_hmac_of_the_raw_body():
    sc = ShopifyConnector()
    body = json.dumps(order(1, "2024-05-01T10:00:00+08:00")).encode()
    sig = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "orders/paid", "X-Shopify-Shop-Domain": SHOP,
               "X-Shopify-Webhook-Id": "wh-1"}
    sc.verify_webhook(headers, body, {"shop_domain": SHOP}, CREDS)
    (event,) = sc.parse_webhook(headers, body, {"shop_domain": SHOP})
    assert (event.event_type, event.external_id, event.channel, event.source_id) == ("order.paid", "5001", "Shopify", "wh-1")
    with pytest.raises(SignatureError):
        sc.verify_webhook({**headers, "X-Shopify-Hmac-Sha256": base64.b64encode(b"x" * 32).decode()}, body,
                          {"shop_domain": SHOP}, CREDS)
    with pytest.raises(SignatureError, match="shop"):
        sc.verify_webhook({**headers, "X-Shopify-Shop-Domain": "other.myshopify.com"}, body,
                          {"shop_domain": SHOP}, CREDS)
    assert sc.parse_webhook({**headers, "X-Shopify-Topic": "app/uninstalled"}, body, {}) == []
    with pytest.raises(PayloadError):
        sc.parse_webhook(headers, b"not json", {"shop_domain": SHOP})


def test_default_mapping_gives_an_order_with_line_items():
    ev = ShopifyConnector().parse_webhook({"X-Shopify-Topic": "orders/create"},
                                          json.dumps(order(1, "2024-05-01T02:00:00Z")).encode(), {"shop_domain": SHOP})
    (rec,) = ShopifyConnector().map_event(ev[0], tz="Asia/Shanghai")
    assert rec.values["status"] == "已付款" and rec.values["amount_due"] == 59.9 and rec.values["paid"] is True
    assert rec.values["address"] == "1 Main St, Austin, US"
    assert rec.values["pay_time"] == "2024-05-01T10:01:00+08:00"
    assert rec.subtables["items"] == [{"sku": "ROMPER-80", "product_name": "Romper", "qty": 2,
                                       "unit_price": 29.95, "is_gift": False}]


def test_link_header_parsing():
    link = ('<https://s.myshopify.com/admin/api/2024-10/orders.json?limit=2&page_info=abc>; rel="previous", '
            '<https://s.myshopify.com/admin/api/2024-10/orders.json?limit=2&page_info=xyz>; rel="next"')
    assert next_page_info(link) == "xyz"
    assert next_page_info(None) is None


def test_pull_follows_pages_and_resumes_after_a_crash_without_duplicates_or_gaps(serve):
    ts = ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", "2024-05-01T12:00:00Z",
          "2024-05-01T12:00:00Z"]
    shop = FakeShopify([order(i, t) for i, t in enumerate(ts)])
    srv = serve(shop)
    sc = ShopifyConnector()

    first = sc.pull(cfg(srv), CREDS, None)
    assert first.has_more and len(first.events) == 2
    saved = json.loads(json.dumps(first.next_cursor))  # what the platform stores
    # ... the process crashes here; a new worker resumes from the saved cursor
    delivered = [e.external_id for e in first.events]
    cursor = pull_pages(ShopifyConnector(), cfg(srv), CREDS, saved,
                        lambda events, c: delivered.extend(e.external_id for e in events))
    assert delivered == [str(5000 + i) for i in range(5)]
    assert all("page_info" in r["args"] for r in srv.requests[1:])  # later pages: cursor only

    # next scheduled run: nothing new → nothing delivered, even though updated_at_min is inclusive
    assert sc.pull(cfg(srv), CREDS, cursor).events == []
    # an order updated at the same second as the watermark, and a later one, are both picked up
    shop.orders.append(order(9, "2024-05-01T12:00:00Z"))
    shop.orders[0]["updated_at"] = "2024-05-02T08:00:00Z"
    later = []
    pull_pages(sc, cfg(srv), CREDS, cursor, lambda ev, c: later.extend(e.external_id for e in ev))
    assert later == ["5009", "5000"]


def test_pull_errors(serve):
    srv = serve(FakeShopify([], fail_next=1))
    with pytest.raises(RetryableError) as exc:
        ShopifyConnector().pull(cfg(srv), CREDS, None)
    assert exc.value.retry_after == 2.0
    from zhongshu.connectors.api import PermanentError
    with pytest.raises(PermanentError, match="401"):
        ShopifyConnector().pull(cfg(srv), {"access_token": "wrong"}, None)
    assert not ShopifyConnector().test_connection(cfg(srv), {"access_token": "wrong"}).ok

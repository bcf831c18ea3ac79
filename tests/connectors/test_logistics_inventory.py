"""快递100-style tracking and WMS inventory pull, against local servers checking signatures."""
import hashlib
import json
import urllib.parse

import pytest

from zhongshu.connectors.api import PayloadError, PermanentError, RetryableError, SignatureError, receive_webhook
from zhongshu.connectors.kuaidi100 import Kuaidi100Connector
from zhongshu.connectors.wms import WmsInventoryConnector, wms_sign

CUSTOMER, KEY, SALT = "CUST01", "kd-key", "kd-salt"
K_CREDS = {"customer": CUSTOMER, "key": KEY, "salt": SALT}
TRACKS = [{"context": "已签收，签收人：本人", "time": "2024-06-20 15:30:00", "ftime": "2024-06-20 15:30:00",
           "areaName": "杭州市"},
          {"context": "派件中", "time": "2024-06-20 09:00:00", "ftime": "2024-06-20 09:00:00"}]


def md5u(s):
    return hashlib.md5(s.encode()).hexdigest().upper()


@pytest.fixture
def kuaidi(serve, reply):
    def handler(req):
        f = req.form.to_dict()
        if req.path == "/poll/query.do":
            if f.get("customer") != CUSTOMER or f.get("sign") != md5u(f.get("param", "") + KEY + CUSTOMER):
                return reply({"result": False, "returnCode": "503", "message": "验证签名失败"})
            p = json.loads(f["param"])
            if p["num"] == "NONE":
                return reply({"result": False, "returnCode": "500", "message": "查询无结果，请隔段时间再查"})
            if p["num"] == "BUSY":
                return reply({"result": False, "returnCode": "502", "message": "服务器繁忙"})
            return reply({"message": "ok", "state": "3", "status": "200", "ischeck": "1", "com": p["com"],
                          "nu": p["num"], "data": TRACKS})
        if req.path == "/poll":
            p = json.loads(f["param"])
            if f.get("schema") != "json" or p.get("key") != KEY or not p["parameters"].get("callbackurl"):
                return reply({"result": False, "returnCode": "600", "message": "bad request"})
            return reply({"result": True, "returnCode": "200", "message": "提交成功"})
        return reply({}, 404)
    return serve(handler)


def test_realtime_query_is_signed_and_reports_the_signed_for_time(kuaidi):
    k = Kuaidi100Connector()
    out = k.execute("query", {"com": "yuantong", "num": "YT100"}, {"base_url": kuaidi.url}, K_CREDS,
                    idempotency_key="k").output
    assert out["signed"] and out["signed_at"] == "2024-06-20T07:30:00+00:00"  # Beijing 15:30 → UTC
    assert out["tracks"][0]["context"].startswith("已签收")
    assert k.execute("query", {"com": "yuantong", "num": "NONE"}, {"base_url": kuaidi.url}, K_CREDS,
                     idempotency_key="k").output["tracks"] == []
    with pytest.raises(RetryableError):
        k.execute("query", {"com": "yuantong", "num": "BUSY"}, {"base_url": kuaidi.url}, K_CREDS, idempotency_key="k")
    with pytest.raises(PermanentError, match="503"):
        k.execute("query", {"com": "yuantong", "num": "YT1"}, {"base_url": kuaidi.url}, {**K_CREDS, "key": "x"},
                  idempotency_key="k")


def test_subscribe_sends_the_callback_url_and_salt(kuaidi):
    out = Kuaidi100Connector().execute("subscribe", {"com": "yuantong", "num": "YT100"},
                                       {"base_url": kuaidi.url, "callback_url": "https://zs.example/hooks/k100"},
                                       K_CREDS, idempotency_key="k")
    assert out.output["subscribed"]
    param = json.loads(urllib.parse.parse_qs(kuaidi.requests[0]["body"].decode())["param"][0])
    assert param["parameters"] == {"callbackurl": "https://zs.example/hooks/k100", "resultv2": "1", "salt": SALT}


def callback(state="3", salt=SALT):
    param = json.dumps({"status": "shutdown" if state == "3" else "polling", "message": "", "lastResult": {
        "message": "ok", "state": state, "status": "200", "ischeck": "1" if state == "3" else "0",
        "com": "yuantong", "nu": "YT100", "data": TRACKS if state == "3" else TRACKS[1:]}}, ensure_ascii=False)
    return urllib.parse.urlencode({"param": param, "sign": md5u(param + salt)}).encode()


def test_callback_yields_logistics_events_and_the_signed_for_event():
    stored = []
    out = receive_webhook(Kuaidi100Connector(), {}, callback("3"), {}, K_CREDS, stored.extend)
    assert json.loads(out.response.body) == {"result": True, "returnCode": "200", "message": "成功"}
    assert [e.event_type for e in stored] == ["logistics.updated", "logistics.updated", "logistics.signed"]
    assert stored[0].occurred_at.isoformat() == "2024-06-20T01:00:00+00:00"  # oldest first
    assert stored[-1].payload["signed_at"] == "2024-06-20T07:30:00+00:00"
    recs = Kuaidi100Connector().map_event(stored[-1], tz="Asia/Shanghai")
    assert recs[0].table == "orders" and recs[0].values["signed_for_time"] == "2024-06-20T07:30:00+00:00"
    in_transit = Kuaidi100Connector().parse_webhook({}, callback("5"), {})
    assert [e.event_type for e in in_transit] == ["logistics.updated"]


def test_callback_with_a_wrong_sign_or_garbage_is_rejected():
    with pytest.raises(SignatureError):
        Kuaidi100Connector().verify_webhook({}, callback("3", salt="other"), {}, K_CREDS)
    with pytest.raises(SignatureError):
        Kuaidi100Connector().verify_webhook({}, b"hello", {}, K_CREDS)
    with pytest.raises(PayloadError):
        Kuaidi100Connector().parse_webhook({}, b"param=%7Bnot+json", {})


# ---------------------------------------------------------------------------- WMS
W_CREDS = {"app_key": "wms-app", "app_secret": "wms-secret"}


def stock(wh, sku, on_hand, t):
    return {"warehouse_code": wh, "sku": sku, "on_hand": on_hand, "reserved": 1, "updated_at": t}


class FakeWms:
    def __init__(self, items):
        self.items = items

    def __call__(self, req):
        from werkzeug.wrappers import Response
        a = req.args.to_dict()
        if a.get("app_key") != W_CREDS["app_key"] or a.get("sign") != wms_sign(a, W_CREDS["app_secret"]):
            return Response(json.dumps({"code": 401, "message": "sign error"}), 200, content_type="application/json")
        key = lambda i: (i["updated_at"], f"{i['warehouse_code']}/{i['sku']}")  # noqa: E731
        after = (a.get("updated_after", ""), a.get("after_key", ""))
        rows = sorted((i for i in self.items if key(i) > after), key=key)
        n = int(a["page_size"])
        return Response(json.dumps({"code": 0, "data": {"items": rows[:n], "has_more": len(rows) > n}}),
                        200, content_type="application/json")


def test_wms_pull_resumes_from_a_saved_cursor_with_no_duplicates_or_gaps(serve):
    items = [stock("HD", f"SKU{i}", i, f"2024-06-20 10:00:0{i // 3}") for i in range(7)]
    srv = serve(FakeWms(items))
    cfg = {"base_url": srv.url, "page_size": 3}
    wms = WmsInventoryConnector()
    p1 = wms.pull(cfg, W_CREDS, None)
    seen = [e.external_id for e in p1.events]
    saved = json.loads(json.dumps(p1.next_cursor))
    p2 = WmsInventoryConnector().pull(cfg, W_CREDS, saved)  # "after a crash"
    seen += [e.external_id for e in p2.events]
    p3 = WmsInventoryConnector().pull(cfg, W_CREDS, p2.next_cursor)
    seen += [e.external_id for e in p3.events]
    assert seen == [f"HD/SKU{i}" for i in range(7)] and not p3.has_more
    assert p1.events[0].occurred_at.isoformat() == "2024-06-20T02:00:00+00:00"
    # an update after the run is picked up, once
    srv.handler.items.append(stock("HD", "SKU0", 99, "2024-06-20 11:00:00"))
    p4 = wms.pull(cfg, W_CREDS, p3.next_cursor)
    assert [(e.external_id, e.payload["on_hand"]) for e in p4.events] == [("HD/SKU0", 99)]
    (rec,) = wms.map_event(p4.events[0])
    assert rec.table == "inventory" and rec.values["on_hand"] == 99 and rec.values["warehouse_code"] == "HD"


def test_wms_bad_item_is_reported_and_skipped_bad_sign_is_permanent(serve):
    srv = serve(FakeWms([stock("HD", "A", 1, "2024-06-20 10:00:00"), stock("HD", "B", 2, "yesterday-ish")]))
    page = WmsInventoryConnector().pull({"base_url": srv.url}, W_CREDS, None)
    assert [e.external_id for e in page.events] == ["HD/A"] and len(page.errors) == 1
    with pytest.raises(PermanentError, match="sign error"):
        WmsInventoryConnector().pull({"base_url": srv.url}, {**W_CREDS, "app_secret": "x"}, None)

"""抖店: signed message push (event-sign), the {"code":0} acknowledgement, token fetch/refresh."""
import hashlib
import hmac
import json

import pytest

from zhongshu.connectors.api import PermanentError, RetryableError, SignatureError, receive_webhook
from zhongshu.connectors.douyin import DouyinShopConnector

APP_KEY, APP_SECRET = "7001234567890", "dy-secret-xyz"
CREDS = {"app_key": APP_KEY, "app_secret": APP_SECRET}


def push(messages, method="md5"):
    body = json.dumps(messages, ensure_ascii=False, separators=(",", ":")).encode()
    text = APP_KEY.encode() + body + APP_SECRET.encode()
    sig = hashlib.md5(text).hexdigest() if method == "md5" else \
        hmac.new(APP_SECRET.encode(), text, hashlib.sha256).hexdigest()
    return {"app-id": APP_KEY, "event-sign": sig, "sign-method": method}, body


def msg(tag, msg_id, **data):
    return {"tag": tag, "msg_id": msg_id, "data": json.dumps(data)}


def test_push_is_verified_parsed_and_acknowledged_the_way_douyin_expects():
    headers, body = push([
        msg("100", "m1", p_id=6920000000000001, s_ids=[1], shop_id=77, order_status=1, create_time=1718676000),
        msg("101", "m2", p_id=6920000000000001, order_status=105, pay_amount=29990, pay_time=1718676060,
            create_time=1718676000),
        msg("999", "m3", foo="not a trade message"),
    ])
    stored = []
    out = receive_webhook(DouyinShopConnector(), headers, body, {}, CREDS, stored.extend)
    assert out.ok and json.loads(out.response.body) == {"code": 0, "msg": "success"}
    assert [(e.event_type, e.external_id, e.channel, e.source_id) for e in stored] == [
        ("order.created", "6920000000000001", "抖音", "m1"), ("order.paid", "6920000000000001", "抖音", "m2")]
    # 1718676060 = 2024-06-18 10:01:00 Beijing time = 02:01 UTC
    assert stored[1].occurred_at.isoformat() == "2024-06-18T02:01:00+00:00"
    assert stored[1].payload["pay_time_utc"] == "2024-06-18T02:01:00+00:00"
    (rec,) = DouyinShopConnector().map_event(stored[1], tz="Asia/Shanghai")
    assert rec.values["amount_paid"] == 299.9 and rec.values["status"] == "已付款"
    assert rec.values["pay_time"] == "2024-06-18T10:01:00+08:00"


def test_hmac_sha256_sign_method_is_supported():
    headers, body = push([msg("106", "m9", p_id=1, order_status=4, update_time="2024-06-18 10:00:00")],
                         method="hmac-sha256")
    DouyinShopConnector().verify_webhook(headers, body, {}, CREDS)
    (ev,) = DouyinShopConnector().parse_webhook(headers, body, {})
    assert ev.event_type == "order.status_changed" and ev.occurred_at.hour == 2  # Beijing string → UTC


def test_tampered_push_is_rejected_and_douyin_gets_a_non_zero_code():
    headers, body = push([msg("101", "m1", p_id=1)])
    stored = []
    out = receive_webhook(DouyinShopConnector(), headers, body.replace(b'"101"', b'"106"'), {}, CREDS, stored.extend)
    assert not out.ok and isinstance(out.error, SignatureError) and stored == []
    assert json.loads(out.response.body)["code"] != 0
    with pytest.raises(SignatureError, match="app"):
        DouyinShopConnector().verify_webhook({**headers, "app-id": "other"}, body, {}, CREDS)


def test_verification_message_tag_0_is_acknowledged_without_events():
    headers, body = push([{"tag": "0", "msg_id": "0", "data": "{}"}])
    out = receive_webhook(DouyinShopConnector(), headers, body, {}, CREDS, lambda ev: None)
    assert out.ok and out.events == []


def documented_sign(app_key, secret, method, pjson, timestamp, sign_method):
    """The open platform's signature, written out independently of the connector."""
    text = (secret + "app_key" + app_key + "method" + method + "param_json" + pjson + "timestamp" + timestamp
            + "v2" + secret).encode()
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()
    return hashlib.md5(text).hexdigest() if sign_method == "md5" else None


@pytest.fixture
def open_api(serve, reply):
    """Emulates openapi-fxg.jinritemai.com: POST with param_json as the body and the common
    parameters in the query; checks the signature (hmac-sha256 or md5) and the encoding."""
    state = {"refresh": "r-1", "busy": False, "sign_methods": []}

    def handler(req):
        a = req.args.to_dict()
        if req.method != "POST" or "param_json" in a:
            return reply({"code": 40001, "msg": "POST the business parameters as the JSON body"})
        pj = req.get_data(as_text=True)
        state["sign_methods"].append(a.get("sign_method"))
        if a.get("sign") != documented_sign(a.get("app_key", ""), APP_SECRET, a.get("method", ""), pj,
                                            a.get("timestamp", ""), a.get("sign_method")) or a.get("v") != "2":
            return reply({"code": 40003, "msg": "签名错误", "sub_msg": "isv.sign-invalid"})
        if a["method"].replace(".", "/") != req.path.strip("/"):
            return reply({"code": 40004, "msg": "method does not match path"})
        p = json.loads(pj)
        if pj != json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False):
            return reply({"code": 40002, "msg": "param_json must be sorted and compact"})
        if state["busy"]:
            return reply({"code": 90000, "msg": "流控"})
        if a["method"] == "token.create" and p["grant_type"] == "authorization_self":
            return reply({"code": 10000, "msg": "success", "data": {
                "access_token": "at-1", "refresh_token": state["refresh"], "expires_in": 604800, "shop_id": 77}})
        if a["method"] == "token.refresh":
            if p.get("refresh_token") != state["refresh"]:
                return reply({"code": 30002, "msg": "refresh_token 已过期"})
            state["refresh"] = "r-2"
            return reply({"code": 10000, "msg": "success", "data": {
                "access_token": "at-2", "refresh_token": "r-2", "expires_in": 604800, "shop_id": 77}})
        if a["method"] == "order.orderDetail":
            if a.get("access_token") not in ("at-1", "at-2"):
                return reply({"code": 30001, "msg": "access_token 无效"})
            # some responses carry err_no/message next to (or instead of) code/msg
            return reply({"err_no": 0, "message": "success", "data": {"shop_order_detail": {"order_id": p["shop_order_id"]}}})
        return reply({"code": 40000, "msg": "unknown"})

    srv = serve(handler)
    srv.state = state
    return srv


def test_token_fetch_and_refresh_return_credential_updates(open_api):
    dy, cfg = DouyinShopConnector(), {"api_base_url": open_api.url}
    fetched = dy.execute("fetch_token", {"shop_id": "77"}, cfg, CREDS, idempotency_key="k")
    assert open_api.state["sign_methods"] == ["hmac-sha256"]  # the default
    assert fetched.credentials_update["access_token"] == "at-1" and fetched.output["shop_id"] == "77"
    creds = {**CREDS, **fetched.credentials_update}
    refreshed = dy.execute("refresh_token", {}, cfg, creds, idempotency_key="k")
    assert refreshed.credentials_update["access_token"] == "at-2"
    with pytest.raises(PermanentError) as exc:  # the old refresh token is used up
        dy.execute("refresh_token", {}, cfg, creds, idempotency_key="k")
    assert exc.value.code == "douyin_token_expired"


def test_order_detail_refreshes_an_expiring_token_first(open_api):
    creds = {**CREDS, "access_token": "stale", "refresh_token": "r-1", "access_token_expires_at": 0}
    res = DouyinShopConnector().execute("order_detail", {"order_id": "692"}, {"api_base_url": open_api.url}, creds,
                                        idempotency_key="k")
    assert res.output["order"] == {"order_id": "692"} and res.credentials_update["access_token"] == "at-2"


def test_open_api_errors(open_api):
    cfg = {"api_base_url": open_api.url}
    with pytest.raises(PermanentError, match="签名错误"):
        DouyinShopConnector().execute("fetch_token", {}, cfg, {**CREDS, "app_secret": "wrong"}, idempotency_key="k")
    open_api.state["busy"] = True
    with pytest.raises(RetryableError, match="流控"):
        DouyinShopConnector().execute("fetch_token", {}, cfg, CREDS, idempotency_key="k")


def test_md5_signing_and_chinese_parameters(open_api):
    cfg = {"api_base_url": open_api.url, "sign_method": "md5"}
    creds = {**CREDS, "access_token": "at-1"}
    res = DouyinShopConnector().execute("order_detail", {"order_id": "订单-692&<>"}, cfg, creds, idempotency_key="k")
    assert res.output["order"] == {"order_id": "订单-692&<>"}
    assert open_api.state["sign_methods"] == ["md5"]

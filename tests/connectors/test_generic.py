"""Generic webhook (inbound, HMAC-SHA256) and generic HTTP request (outbound)."""
import hashlib
import hmac
import json
import threading
import time

import pytest

from zhongshu.connectors.api import (PayloadError, PermanentError, RetryableError, SignatureError,
                                     receive_webhook)
from zhongshu.connectors.http_request import HttpRequestConnector
from zhongshu.connectors.webhook import WebhookConnector
from zhongshu.connectors.webhook.connector import sign

SECRET = "whsec-0123456789"
CONFIG = {"channel": "小程序", "occurred_at_path": "$.created_at"}


def signed(body: dict, secret=SECRET):
    raw = json.dumps(body, ensure_ascii=False).encode()
    return raw, {"X-Zhongshu-Signature": "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()}


def test_webhook_accepts_a_correctly_signed_order_and_maps_it():
    wh = WebhookConnector()
    raw, headers = signed({"id": "MP-1", "created_at": "2024-06-18 10:00:00", "total": "88.00",
                           "items": [{"sku": "S1", "qty": 2, "price": "44"}]})
    stored = []
    outcome = receive_webhook(wh, headers, raw, CONFIG, {"secret": SECRET}, stored.extend)
    assert outcome.ok and outcome.response.status == 200
    (event,) = stored
    assert (event.channel, event.external_id, event.event_type) == ("小程序", "MP-1", "order.created")
    assert event.occurred_at.isoformat() == "2024-06-18T02:00:00+00:00"  # Beijing → UTC
    (record,) = wh.map_event(event, CONFIG, tz="Asia/Shanghai")
    assert record.values["amount_due"] == 88 and record.subtables["items"][0]["qty"] == 2


def test_webhook_rejects_a_wrong_or_missing_signature():
    wh = WebhookConnector()
    raw, headers = signed({"id": "1"}, secret="someone-else")
    with pytest.raises(SignatureError):
        wh.verify_webhook(headers, raw, CONFIG, {"secret": SECRET})
    with pytest.raises(SignatureError, match="missing"):
        wh.verify_webhook({}, raw, CONFIG, {"secret": SECRET})
    raw, headers = signed({"id": "1"})
    with pytest.raises(SignatureError):  # body changed after signing
        wh.verify_webhook(headers, raw + b" ", CONFIG, {"secret": SECRET})
    stored = []
    outcome = receive_webhook(wh, {}, raw, CONFIG, {"secret": SECRET}, stored.extend)
    assert not outcome.ok and outcome.response.status == 401 and stored == []


def test_webhook_with_timestamp_rejects_replays():
    wh = WebhookConnector()
    cfg = dict(CONFIG, timestamp_header="X-Timestamp")
    raw = b'{"id":"7"}'
    now = str(int(time.time()))
    wh.verify_webhook({"X-Timestamp": now, "X-Zhongshu-Signature": sign(SECRET, raw, timestamp=now)},
                      raw, cfg, {"secret": SECRET})
    old = str(int(time.time()) - 3600)
    with pytest.raises(SignatureError, match="window"):
        wh.verify_webhook({"X-Timestamp": old, "X-Zhongshu-Signature": sign(SECRET, raw, timestamp=old)},
                          raw, cfg, {"secret": SECRET})


def test_webhook_garbage_body_is_a_clear_payload_error():
    wh = WebhookConnector()
    with pytest.raises(PayloadError, match="not valid JSON"):
        wh.parse_webhook({}, b"{oops", CONFIG)
    with pytest.raises(PayloadError, match="no external id"):
        wh.parse_webhook({}, b'{"no_id": 1}', CONFIG)


def test_webhook_accepts_a_batch_under_a_path():
    events = WebhookConnector().parse_webhook({}, json.dumps({"data": {"orders": [
        {"id": 1, "type": "order.paid"}, {"id": 2, "type": "order.created"}]}}).encode(),
        dict(CONFIG, events_path="$.data.orders", event_type_path="$.type", occurred_at_path=""))
    assert [(e.external_id, e.event_type) for e in events] == [("1", "order.paid"), ("2", "order.created")]


# ---------------------------------------------------------------------- http_request
def test_http_request_renders_the_body_signs_it_and_sends_the_idempotency_key(serve, reply):
    def handler(req):
        body = req.get_data()
        ts = req.headers["X-Zhongshu-Timestamp"]
        expected = "sha256=" + hmac.new(b"sign-me", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if req.headers.get("X-Zhongshu-Signature") != expected:
            return reply({"error": "bad signature"}, 401)
        return reply({"received": json.loads(body)}, 201)

    srv = serve(handler)
    result = HttpRequestConnector().execute(
        "request",
        {"url": "/orders/{{ order.no }}/notify", "method": "POST",
         "body_template": '{"order": {{ order.no | tojson }}, "customer": {{ order.customer | tojson }}}',
         "data": {"order": {"no": "SO-9", "customer": "李雷 \"VIP\""}}},
        {"base_url": srv.url}, {"signing_secret": "sign-me"}, idempotency_key="job-42")
    assert result.output["status"] == 201
    assert result.output["json"]["received"] == {"order": "SO-9", "customer": "李雷 \"VIP\""}
    sent = srv.requests[0]
    assert sent["path"] == "/orders/SO-9/notify" and sent["headers"]["Idempotency-Key"] == "job-42"


@pytest.mark.parametrize("status,error", [(500, RetryableError), (503, RetryableError),
                                          (400, PermanentError), (422, PermanentError)])
def test_http_request_maps_remote_errors(serve, reply, status, error):
    srv = serve(lambda req: reply({"error": "nope"}, status))
    with pytest.raises(error) as exc:
        HttpRequestConnector().execute("request", {"url": srv.url + "/x", "body": {}}, {}, {},
                                       idempotency_key="k")
    assert exc.value.code == f"http_{status}"


def test_http_request_slow_server_times_out_as_retryable(serve, reply):
    release = threading.Event()
    srv = serve(lambda req: (release.wait(5), reply({}))[1])
    try:
        with pytest.raises(RetryableError, match="timed out"):
            HttpRequestConnector().execute("request", {"url": srv.url, "method": "GET"},
                                           {"timeout_seconds": 0.2}, {}, idempotency_key="k")
    finally:
        release.set()


def test_http_request_template_errors_are_permanent():
    with pytest.raises(PermanentError, match="body_template"):
        HttpRequestConnector().execute("request", {"url": "http://127.0.0.1:9/x", "body_template": "{{ missing.x }}"},
                                       {}, {}, idempotency_key="k")
    with pytest.raises(PermanentError, match="not valid JSON"):
        HttpRequestConnector().execute("request", {"url": "http://127.0.0.1:9/x", "body_template": "{not json"},
                                       {}, {}, idempotency_key="k")
    with pytest.raises(PermanentError, match="input: .url. is a required property"):
        HttpRequestConnector().execute("request", {}, {}, {}, idempotency_key="k")

"""An HTTP request's JSON body template: values from record data are escaped as the inside of
a JSON string, so a customer who types ``", "status": "refunded`` into an order cannot add a
key to the body sent to another system, and a newline in a remark does not make the body
invalid JSON. ``|tojson`` values are left as they are. Checked at a loopback HTTP server,
through the rule engine and the outbox worker, and for a direct call with ``input.data``."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from zhongshu.connectors.http_request import HttpRequestConnector
from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.worker import drain

INJECT = '王芳", "status": "refunded'
REMARK = '请尽快发货\n"加急"\\备注'
BODY = '{"customer": "{{ record.customer }}", "remark": "{{ record.remark }}", "qty": {{ record.qty }}, ' \
       '"tags": {{ record.tags | tojson }}}'


@pytest.fixture
def erp(serve, reply):
    return serve(lambda req: reply({"ok": True}))


@pytest.fixture
def shop(owner, erp):
    owner.ok(owner.post("/tables", json={"api_name": "orders", "fields": [
        {"api_name": "order_no", "type": "text"}, {"api_name": "customer", "type": "text"},
        {"api_name": "remark", "type": "long_text"}, {"api_name": "qty", "type": "number"},
        {"api_name": "tags", "type": "multi_select", "options": {"choices": [{"label": '"急"'}, {"label": "礼品"}]}}]}), 201)
    owner.ok(owner.post("/connectors", json={"connector": "http_request", "api_name": "erp",
                                             "config": {"base_url": erp.url}}), 201)
    return owner


def test_a_rules_json_body_escapes_record_values(shop, platform, erp):
    shop.ok(shop.post("/rules", json={"api_name": "to_erp", "table": "orders", "trigger": {"type": "record_created"},
                                      "actions": [{"type": "call_connector", "connector": "erp", "action": "request",
                                                   "input": {"url": "/orders", "body_template": BODY}}]}), 201)
    shop.ok(shop.post("/tables/orders/records", json={"order_no": "SO-1", "customer": INJECT, "remark": REMARK,
                                                      "qty": 3, "tags": ['"急"']}), 201)
    drain(platform)
    with platform.tenant_session(None) as s:
        [job] = s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()
    assert job.status == "done", job.last_error
    [req] = erp.requests
    assert json.loads(req["body"]) == {"customer": INJECT, "remark": REMARK, "qty": 3, "tags": ['"急"']}


def test_a_direct_call_with_input_data_escapes_the_data(erp):
    HttpRequestConnector().execute("request", {
        "url": erp.url + "/orders", "body_template": '{"customer": "{{ c }}", "n": {{ n }}, "all": {{ c | tojson }}}',
        "data": {"c": INJECT, "n": 2}}, {}, {}, idempotency_key="k")
    assert json.loads(erp.requests[0]["body"]) == {"customer": INJECT, "n": 2, "all": INJECT}

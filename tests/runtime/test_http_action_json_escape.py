"""A rule's ``http`` action with a JSON body: record values are escaped as the inside of a JSON
string (the same escape as the HTTP request connector's body template, 14f4670), so a customer
who types ``", "status": "refunded`` into an order cannot add a key to the body sent to another
system, and a newline in a remark does not make the body invalid JSON. ``|tojson`` values are
left as they are; a body that is not JSON (a text body) is sent as rendered. Checked at a
loopback HTTP server that receives the request from the outbox worker."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from zhongshu.runtime.models import OutboxJob
from zhongshu.runtime.worker import drain

from .conftest import rule

# the loopback server of the connector tests (tests/connectors/conftest.py), reused as it is
_spec = importlib.util.spec_from_file_location("_zs_connector_fixtures",
                                               Path(__file__).parent.parent / "connectors" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
LocalServer, json_response = _fixtures.LocalServer, _fixtures.json_response

INJECT = '王芳", "status": "refunded'
REMARK = '请尽快发货\n"加急"\\备注'
BODY = ('{"customer": "{{ record.customer }}", "remark": "{{ record.remark }}", "qty": {{ record.qty }}, '
        '"tags": {{ record.tags | tojson }}, "status": "paid"}')


@pytest.fixture
def erp():
    with LocalServer(lambda req: json_response({"ok": True})) as srv:
        yield srv


@pytest.fixture
def shop(owner):
    owner.ok(owner.post("/tables", json={"api_name": "orders", "fields": [
        {"api_name": "order_no", "type": "text"}, {"api_name": "customer", "type": "text"},
        {"api_name": "remark", "type": "long_text"}, {"api_name": "qty", "type": "number"},
        {"api_name": "tags", "type": "multi_select", "options": {"choices": [{"label": '"急"'}, {"label": "礼品"}]}}]}), 201)
    return owner


def _send(shop, platform, erp, body, headers=None):
    action = {"type": "http", "method": "POST", "url": erp.url + "/orders", "body": body}
    if headers is not None:
        action["headers"] = headers
    rule(shop, {"api_name": "to_erp", "table": "orders", "trigger": {"type": "record_created"}, "actions": [action]})
    shop.ok(shop.post("/tables/orders/records", json={"order_no": "SO-1", "customer": INJECT, "remark": REMARK,
                                                      "qty": 3, "tags": ['"急"']}), 201)
    drain(platform)
    with platform.tenant_session(None) as s:
        [job] = s.scalars(select(OutboxJob).where(OutboxJob.kind == "http.request")).all()
    assert job.status == "done", job.last_error
    [req] = erp.requests
    return req


@pytest.mark.parametrize("body,headers", [
    (BODY, None),
    ("{# to the ERP #}\n{% if record.qty %}" + BODY + "{% endif %}", None),
    (BODY, {"content-type": "application/vnd.erp+json; charset=utf-8"}),
], ids=["no-content-type", "leading-tags", "json-content-type"])
def test_a_json_body_gets_record_values_as_string_content(shop, platform, erp, body, headers):
    req = _send(shop, platform, erp, body, headers)
    # the customer's text is the customer's name: no "refunded" status, the remark keeps its newline
    assert json.loads(req["body"]) == {"customer": INJECT, "remark": REMARK, "qty": 3, "tags": ['"急"'],
                                       "status": "paid"}


def test_a_text_body_is_sent_as_rendered(shop, platform, erp):
    req = _send(shop, platform, erp, "{{ record.order_no }} {{ record.customer }}\n{{ record.remark }}",
                {"Content-Type": "text/plain; charset=utf-8"})
    assert req["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert req["body"].decode() == f"SO-1 {INJECT}\n{REMARK}"


def test_a_body_without_content_type_that_is_not_json_is_sent_as_rendered(shop, platform, erp):
    req = _send(shop, platform, erp, "{{ record.customer }}: {{ record.remark }}")
    assert req["body"].decode() == f"{INJECT}: {REMARK}"

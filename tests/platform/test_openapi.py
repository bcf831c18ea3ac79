"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document that lists every v1 route."""
from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from zhongshu.platform.api.openapi import OPERATIONS, openapi_path


IGNORED = {"HEAD", "OPTIONS"}
ORDERS = {"api_name": "orders", "label": {"zh-CN": "订单", "en": "Orders"}, "fields": [
    {"api_name": "status", "type": "single_select", "options": {"choices": [{"label": "待付款"}, {"label": "已付款"}]}},
    {"api_name": "amount", "type": "currency", "options": {"decimals": 2}},
    {"api_name": "items", "type": "sub_table", "options": {"fields": [{"api_name": "sku", "type": "text", "required": True}]}},
]}


@pytest.fixture
def doc(app):
    r = app.test_client().get("/api/v1/openapi.json")  # no login
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def v1_operations(app):
    """(openapi path, method, endpoint) of every Flask route under /api/v1."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") or rule.rule == "/api/v1":
            for m in rule.methods - IGNORED:
                yield openapi_path(rule.rule)[0], m.lower(), rule.endpoint


def all_refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from all_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from all_refs(v)


def resolve(doc, pointer: str):
    node = doc
    for part in pointer.lstrip("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_document_is_public_and_valid_openapi_3_1(app, doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises with the reason when invalid
    assert app.test_client().get("/api/v1/openapi.json").headers["Content-Type"].startswith("application/json")
    assert doc["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


def test_every_internal_ref_resolves(doc):
    # openapi-spec-validator does not follow $refs inside 3.1 schemas; this does.
    refs = set(all_refs(doc))
    assert refs
    for r in refs:
        assert r.startswith("#/"), f"external $ref {r}"
        resolve(doc, r)


def test_every_v1_route_appears_with_its_method(app, doc):
    missing = [(p, m, e) for p, m, e in v1_operations(app) if m not in doc["paths"].get(p, {})]
    assert not missing, f"routes missing from openapi.json: {missing}"
    op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))


def test_every_v1_endpoint_has_a_description(app):
    """A route without an entry in OPERATIONS still appears (with a generic description);
    this lists such routes so that somebody describes them in platform/api/openapi.py."""
    undocumented = sorted({e for _, _, e in v1_operations(app) if e not in OPERATIONS})
    assert not undocumented, ("describe these endpoints in OPERATIONS (platform/api/openapi.py): "
                              + ", ".join(undocumented))
    stale = sorted(set(OPERATIONS) - {e for _, _, e in v1_operations(app)})
    assert not stale, f"OPERATIONS describes endpoints that do not exist: {stale}"


def test_path_parameters_are_typed(doc):
    op = doc["paths"]["/api/v1/tenants/{tenant}/members/{user_id}"]["patch"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["tenant"]["in"] == "path" and params["tenant"]["schema"]["type"] == "string"
    assert params["user_id"]["schema"]["type"] == "integer" and params["user_id"]["required"] is True
    assert "/api/v1/schemas/{name}.json" in doc["paths"]
    assert openapi_path("/a/<int:x>/<path:rest>/<float(signed=True):f>") == (
        "/a/{x}/{rest}/{f}", [("x", "int"), ("rest", "path"), ("f", "float")])


def test_record_operations_document_query_parameters_and_bodies(doc):
    listing = doc["paths"]["/api/v1/tenants/{tenant}/tables/{table}/records"]
    names = {p["name"] for p in listing["get"]["parameters"]}
    assert {"filter", "sort", "q", "limit", "cursor", "offset", "fields", "count", "deleted", "expand"} <= names
    create = listing["post"]
    assert {p["name"] for p in create["parameters"]} >= {"skip_invalid"}
    assert "201" in create["responses"]
    for code in ("400", "401", "403", "404", "409", "413", "429", "500"):
        assert code in create["responses"]
    patch = doc["paths"]["/api/v1/tenants/{tenant}/tables/{table}/records/{record_id}"]["patch"]
    assert any(p["name"] == "If-Match" and p["in"] == "header" for p in patch["parameters"])
    assert {"bearerToken": []} in patch["security"] and {"sessionCookie": [], "csrfToken": []} in patch["security"]
    table_body = doc["paths"]["/api/v1/tenants/{tenant}/tables"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert table_body == {"$ref": "#/components/schemas/table"}


def test_embedded_definition_schemas_validate_like_the_published_ones(doc):
    reg = Registry().with_resource("urn:openapi", Resource(contents=doc, specification=DRAFT202012))

    def errors(name, instance):
        v = Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{name}"}, registry=reg)
        return [e.message for e in v.iter_errors(instance)]

    assert errors("table", ORDERS) == []
    assert errors("table", {**ORDERS, "fields": [{"api_name": "x", "type": "no_such_type"}]})
    assert errors("filter", {"and": [{"field": "items.category", "op": "=", "value": "连体衣"},
                                     {"not": {"or": [{"field": "created", "op": "older_than", "value": "30 minutes"}]}}]}) == []
    assert errors("filter", {"field": "status", "op": "like", "value": "x"})
    for name in ("table", "field", "view", "dashboard", "filter", "app", "permissions"):
        s = doc["components"]["schemas"][name]
        assert "$id" not in s and s["externalDocs"]["url"].endswith(f"/api/v1/schemas/{name}.json")


def test_public_endpoints_need_no_credentials_and_others_do(doc):
    assert doc["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    assert doc["paths"]["/api/v1/health"]["get"]["security"] == []
    assert doc["paths"]["/api/v1/tenants"]["get"]["security"] == [{"bearerToken": []}, {"sessionCookie": []}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerToken"]["scheme"] == "bearer"
    assert schemes["sessionCookie"] == {**schemes["sessionCookie"], "in": "cookie", "name": "zhongshu_session"}
    assert schemes["csrfToken"]["name"] == "X-CSRF-Token"


def test_new_routes_appear_automatically_with_a_generic_description(app):
    def things(tenant, thing_id):
        """Things of a tenant."""
        return {}

    app.add_url_rule("/api/v1/tenants/<tenant>/things/<int:thing_id>", endpoint="x_things", view_func=things,
                     methods=["GET", "POST"])
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    validate(doc)
    item = doc["paths"]["/api/v1/tenants/{tenant}/things/{thing_id}"]
    assert set(item) == {"get", "post"}
    assert item["get"]["x-undocumented"] is True and item["get"]["summary"] == "Things of a tenant."
    assert {p["name"]: p["schema"]["type"] for p in item["get"]["parameters"]} == {"tenant": "string", "thing_id": "integer"}
    assert item["get"]["operationId"] != item["post"]["operationId"]

"""Tenant isolation, checked route by route.

Tenant 'beta' gets one of everything (tables, records, views, dashboards, an app,
attachments, tokens, a connector install, an inbox entry, a deleted table and field). Then
the owner of 'acme' — logged in, and through an API token — tries every route of the API
under ``/api/v1/tenants/<tenant>/...`` with beta's real names and ids. The list of routes
comes from ``app.url_map``, so a route added later is covered without touching this file.
"""
from __future__ import annotations

import io
import re

import pytest

from tests.conftest import ORDERS, Api, login

TENANT_PREFIX = "/api/v1/tenants/<tenant>"
# a path parameter with the collection before it: tables/<table>, dashboards/<ref>, rules/<ref>
PARAM = re.compile(r"([a-z_-]+)/<(?:([a-z]+)(?:\([^)]*\))?:)?([a-z_]+)>")

LEDGER = {
    "api_name": "secret_ledger",
    "label": "贝塔机密账本",
    "fields": [
        {"api_name": "client", "type": "text"},
        {"api_name": "grade", "type": "single_select", "options": {"choices": [{"label": "A"}, {"label": "B"}]}},
        {"api_name": "amount", "type": "number"},
        {"api_name": "obsolete", "type": "text"},
        {"api_name": "lines", "type": "sub_table", "options": {"fields": [{"api_name": "note", "type": "text"}]}},
    ],
}

# Values that exist only in tenant beta: none of them may ever reach acme.
BETA_SECRETS = ["贝塔机密客户", "贝塔秘密账本", "13900009999", "BETA-CONFIDENTIAL-CONTENT", "beta-contract",
                "owner@beta.test", "Beta 机密公司", "secret_ledger", "贝塔机密账本", "vip_only", "beta_board",
                "beta_app", "beta_hook", "old_stuff", "obsolete", "贝塔收件箱"]


class World:
    """Both tenants, and beta's real names and ids for every kind of path parameter."""

    def __init__(self, app, platform, owner, orders):
        self.app, self.platform, self.acme = app, platform, owner
        platform.create_user("owner@beta.test", "beta-password", name="Beta Owner")
        platform.create_tenant("beta", "Beta 机密公司", owner_email="owner@beta.test")
        beta = self.beta = login(app, "owner@beta.test", "beta-password", "beta")

        # beta: an orders table of the same name as acme's, and a table only beta has
        beta.ok(beta.post("/tables", json=ORDERS), 201)
        self.beta_orders = beta.ok(beta.post("/tables/orders/records", json={"records": [
            {"customer_name": f"贝塔机密客户{i}", "phone": "13900009999", "amount": 1000 + i, "status": "已付款",
             "items": [{"sku": "BETA-SKU", "category": "连体衣", "qty": 1}]} for i in range(5)]}), 201)["records"]
        ledger = beta.ok(beta.post("/tables", json=LEDGER), 201)["table"]
        self.ledger_records = beta.ok(beta.post("/tables/secret_ledger/records", json={"records": [
            {"client": "贝塔秘密账本", "grade": "A", "amount": 7, "lines": [{"note": "贝塔秘密账本"}]}] * 3}), 201)["records"]
        beta.ok(beta.post("/tables/secret_ledger/views", json={
            "api_name": "vip_only", "type": "grid", "filter": {"field": "grade", "op": "=", "value": "A"}}), 201)
        beta.ok(beta.post("/dashboards", json={"api_name": "beta_board", "widgets": [
            {"id": "total", "type": "number", "table": "secret_ledger", "metrics": [{"fn": "sum", "field": "amount"}]}]}), 201)
        beta.ok(beta.post("/apps", json={"api_name": "beta_app", "label": "贝塔机密账本"}), 201)
        beta.ok(beta.delete("/tables/secret_ledger/fields/obsolete"))
        self.deleted_field_id = next(f["id"] for f in beta.ok(beta.get("/tables/secret_ledger/deleted-fields"))["fields"])
        old = beta.ok(beta.post("/tables", json={"api_name": "old_stuff", "fields": [{"api_name": "x", "type": "text"}]}), 201)
        beta.ok(beta.delete("/tables/old_stuff"))
        up = beta.client.post("/api/v1/tenants/beta/attachments", headers={"X-CSRF-Token": beta.csrf},
                              data={"file": (io.BytesIO(b"BETA-CONFIDENTIAL-CONTENT"), "beta-contract.txt")},
                              content_type="multipart/form-data")
        assert up.status_code == 201, up.get_data(as_text=True)
        self.attachment = up.get_json()["token"]
        tok = beta.ok(beta.post("/tokens", json={"name": "beta-integration"}), 201)
        self.beta_token, self.beta_token_id = tok["token"], tok["id"]
        beta.ok(beta.post("/connectors", json={"connector": "webhook", "api_name": "beta_hook", "config": {"channel": "小程序"},
                                               "credentials": {"secret": "whsec-beta-secret-value-123"}}), 201)
        self.inbox_id = self._inbox_entry()
        self.beta_owner_id = beta.ok(beta.get("~/auth/me"))["user"]["id"]
        self.secrets = BETA_SECRETS + [self.beta_token]

        # acme: two orders of its own (made after beta's, on a table of the same name) and a token
        self.acme_orders = owner.ok(owner.post("/tables/orders/records", json={"records": [
            {"customer_name": "艾克米客户", "amount": 10, "status": "已付款", "items": [{"sku": "ACME", "category": "连体衣"}]},
            {"customer_name": "艾克米客户", "amount": 20, "status": "待付款"}]}), 201)["records"]
        self.acme_token = owner.ok(owner.post("/tokens", json={"name": "acme-integration"}), 201)["token"]

        self.beta_params = {  # "<collection>/<parameter>": beta's real value
            "tenants/tenant": "beta", "tables/table": "secret_ledger", "tables/table_id": old["table"]["id"],
            "records/record_id": self.ledger_records[-1]["id"], "views/view": "vip_only", "dashboards/ref": "beta_board",
            "attachments/token": self.attachment, "tokens/token_id": self.beta_token_id,
            "members/user_id": self.beta_owner_id, "fields/field": "client", "fields/field_id": self.deleted_field_id,
            "connectors/api_name": "beta_hook", "inbox/inbox_id": self.inbox_id,
        }
        self.beta_table_id = ledger["id"]

    def _inbox_entry(self) -> int:
        from zhongshu.runtime.models import InboxEvent

        t = self.platform.tenant_by_slug("beta")
        with self.platform.tenant_session(t.id, write=True) as s:
            e = InboxEvent(tenant_id=t.id, dedupe_key="beta-1", status="error", error="贝塔收件箱",
                           payload={"customer": "贝塔机密客户"}, headers={})
            s.add(e)
            s.flush()
            return e.id

    # -- the routes ---------------------------------------------------------------------
    def tenant_routes(self):
        """(method, rule) for every route under /api/v1/tenants/<tenant>/ (and the tenant itself)."""
        out = []
        for rule in self.app.url_map.iter_rules():
            if not rule.rule.startswith(TENANT_PREFIX):
                continue
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                out.append((method, rule))
        assert len(out) > 40, "the route list looks incomplete"
        return sorted(out, key=lambda x: (x[1].rule, x[0]))

    @staticmethod
    def url(rule, params: dict) -> str:
        def sub(m):
            collection, converter, name = m.groups()
            key = f"{collection}/{name}"
            if key in params:
                return f"{collection}/{params[key]}"
            return f"{collection}/" + ("1" if converter == "int" else "probe")  # no beta object of this kind yet

        return PARAM.sub(sub, rule.rule)

    @staticmethod
    def known(rule, params: dict) -> bool:
        return all(f"{c}/{n}" in params for c, _, n in PARAM.findall(rule.rule))

    def attempt(self, api: Api, method: str, url: str):
        body = {"api_name": "probe", "name": "probe", "customer_name": "probe", "email": "probe@acme.test", "role": "owner"}
        if method == "GET":
            return api.get(url)
        if method == "DELETE":
            return api.delete(url)
        return getattr(api, method.lower())(url, json=body)

    def leaks(self, resp, url: str) -> list[str]:
        text = resp.get_data(as_text=True)
        return [s for s in self.secrets if s in text and s not in url]

    def check_beta_untouched(self):
        beta = self.beta
        assert beta.ok(beta.get("/tables/orders/records?count=true"))["total"] == 5
        recs = beta.ok(beta.get("/tables/secret_ledger/records?count=true&expand=true"))
        assert recs["total"] == 3 and all(r["client"] == "贝塔秘密账本" and r["version"] == 1 for r in recs["records"])
        assert beta.ok(beta.get("/tables/secret_ledger/views/vip_only"))["view"]["api_name"] == "vip_only"
        assert beta.ok(beta.get("/dashboards/beta_board"))["dashboard"]["widgets"][0]["id"] == "total"
        assert beta.get(f"/attachments/{self.attachment}").get_data() == b"BETA-CONFIDENTIAL-CONTENT"
        assert Api(self.app.test_client(), "beta", token=self.beta_token).get("/tables").status_code == 200
        members = beta.ok(beta.get("/members"))["members"]
        assert [(m["email"], m["role"]) for m in members] == [("owner@beta.test", "owner")]
        assert beta.ok(beta.get("/connectors/beta_hook"))["install"]["api_name"] == "beta_hook"
        assert [t["api_name"] for t in beta.ok(beta.get("/deleted-tables"))["tables"]] == ["old_stuff"]
        assert beta.ok(beta.get("~/tenants/beta"))["tenant"]["name"] == "Beta 机密公司"


@pytest.fixture
def world(app, platform, owner, orders) -> World:
    return World(app, platform, owner, orders)


def _run(world: World, api: Api, params: dict, routes, allowed=(403, 404)) -> list[str]:
    problems = []
    for method, rule in routes:
        url = world.url(rule, params)
        r = world.attempt(api, method, url)
        if r.status_code not in allowed:
            problems.append(f"{method} {url} -> {r.status_code} {r.get_data(as_text=True)[:200]}")
        leaked = world.leaks(r, url)
        if leaked:
            problems.append(f"{method} {url} leaks {leaked}")
    return problems


def test_the_fixture_urls_are_real_for_beta_itself(world):
    """Control: beta's owner reaches every GET route with these names and ids (so the
    refusals below are about the tenant, not about a mistyped URL)."""
    problems = []
    for method, rule in world.tenant_routes():
        if method != "GET":
            continue
        if not world.known(rule, world.beta_params):
            continue  # a parameter this file has no beta object for yet (still probed by the tests below)
        url = world.url(rule, world.beta_params)
        r = world.beta.get(url)
        if r.status_code != 200:
            problems.append(f"GET {url} -> {r.status_code} {r.get_data(as_text=True)[:200]}")
    assert problems == []
    assert "贝塔机密客户" in world.beta.get("/tables/orders/records").get_data(as_text=True)


def test_acme_owner_session_gets_404_on_every_beta_url(world):
    problems = _run(world, world.acme, world.beta_params, world.tenant_routes())
    assert problems == []
    world.check_beta_untouched()


def test_acme_api_token_gets_404_on_every_beta_url(world):
    api = Api(world.app.test_client(), "beta", token=world.acme_token)
    problems = _run(world, api, world.beta_params, world.tenant_routes())
    assert problems == []
    world.check_beta_untouched()


def test_beta_names_and_ids_inside_acme_urls_find_nothing(world):
    """The acme owner uses acme's own tenant in the URL with beta's table, record, view,
    dashboard, attachment, token, member, field, connector and inbox ids."""
    routes = [(m, r) for m, r in world.tenant_routes() if set(r.arguments) - {"tenant"}]
    params = {**world.beta_params, "tenants/tenant": "acme"}
    # a 400 for the probe body (checked before the lookup) is a refusal as good as a 404
    refused = (400, 403, 404)
    problems = _run(world, world.acme, params, routes, refused)
    # the same with acme's own table: only the other ids are beta's
    own_table = [(m, r) for m, r in routes if set(r.arguments) - {"tenant", "table"}]
    params_own = {**params, "tables/table": "orders", "records/record_id": world.beta_orders[-1]["id"]}
    problems += _run(world, world.acme, params_own, own_table, refused)
    # and with beta's tables by numeric id
    by_id = [(m, r) for m, r in routes if "table" in r.arguments]
    problems += _run(world, world.acme, {**params, "tables/table": world.beta_table_id}, by_id, refused)
    assert problems == []
    world.check_beta_untouched()


def test_guessing_record_ids_through_acmes_own_table_finds_only_acme_records(world):
    acme = world.acme
    acme_ids = {r["id"] for r in world.acme_orders}
    for rec in world.beta_orders:
        r = acme.get(f"/tables/orders/records/{rec['id']}")
        if rec["id"] in acme_ids:  # the same number in acme's own physical table: acme's record
            assert r.status_code == 200 and r.get_json()["customer_name"] == "艾克米客户"
        else:
            assert r.status_code == 404
            assert acme.get(f"/tables/orders/records/{rec['id']}/history").status_code == 404
            assert acme.patch(f"/tables/orders/records/{rec['id']}", json={"status": "已取消"}).status_code == 404
            assert acme.delete(f"/tables/orders/records/{rec['id']}").status_code == 404
        assert "贝塔" not in r.get_data(as_text=True)
    assert world.beta.ok(world.beta.get("/tables/orders/records?count=true&filter=" +
                                        '{"field":"status","op":"=","value":"已付款"}'))["total"] == 5


def test_acme_lists_counts_searches_and_aggregates_only_its_own_rows(world):
    acme = world.acme
    page = acme.ok(acme.get("/tables/orders/records?count=true&expand=true"))
    assert page["total"] == 2 and {r["customer_name"] for r in page["records"]} == {"艾克米客户"}
    assert acme.ok(acme.get("/tables/orders/records?count=true&q=贝塔"))["total"] == 0
    assert acme.ok(acme.get("/tables/orders/records?count=true&q=13900009999"))["total"] == 0
    by_item = acme.ok(acme.post("/tables/orders/records/query", json={
        "filter": {"field": "items.category", "op": "=", "value": "连体衣"}, "count": True}))
    assert by_item["total"] == 1
    agg = acme.ok(acme.post("/tables/orders/aggregate", json={
        "group_by": [{"field": "status"}], "metrics": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}))
    assert {r["status"]: (r["count"], r["sum_amount"]) for r in agg["rows"]} == {"已付款": (1, 10), "待付款": (1, 20)}
    total = acme.ok(acme.post("/tables/orders/aggregate", json={"metrics": [{"fn": "count"}, {"fn": "max", "field": "amount"}]}))
    assert total["rows"] == [{"count": 2, "max_amount": 20}]
    # each tenant's autonumbers have their own sequence
    assert [r["order_no"][-5:] for r in world.acme_orders] == ["00001", "00002"]
    csv = acme.get("/tables/orders/export?format=csv").get_data(as_text=True)
    assert "艾克米客户" in csv and "贝塔" not in csv


def test_acme_sees_only_its_own_tenant_members_tables_and_audit(world):
    acme = world.acme
    assert [t["slug"] for t in acme.ok(acme.get("~/tenants"))["tenants"]] == ["acme"]
    assert [t["slug"] for t in acme.ok(acme.get("~/auth/me"))["tenants"]] == ["acme"]
    assert [t["api_name"] for t in acme.ok(acme.get("/tables"))["tables"]] == ["orders", "orders_items"]
    assert [m["email"] for m in acme.ok(acme.get("/members"))["members"]] == ["owner@acme.test"]
    everything = "".join(acme.get(p).get_data(as_text=True) for p in (
        "/audit?limit=1000", "/tokens", "/apps", "/dashboards", "/deleted-tables", "/inbox", "/connectors"))
    assert [s for s in world.secrets if s in everything] == []


def test_acme_definitions_cannot_point_at_beta_objects(world):
    acme = world.acme
    r = acme.post("/tables/orders/fields", json={"api_name": "ledger", "type": "link", "options": {"target": "secret_ledger"}})
    assert r.status_code == 400
    r = acme.post("/dashboards", json={"api_name": "peek", "widgets": [
        {"id": "w", "type": "number", "table": "secret_ledger", "metrics": [{"fn": "count"}]}]})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"].startswith("/widgets/0")
    acme.ok(acme.post("/tables", json={"api_name": "docs", "fields": [{"api_name": "file", "type": "attachment"}]}), 201)
    r = acme.post("/tables/docs/records", json={"file": [world.attachment]})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/file"
    assert acme.get(f"/attachments/{world.attachment}").status_code == 404


def test_a_beta_token_cannot_be_used_on_acme(world):
    api = Api(world.app.test_client(), "acme", token=world.beta_token)
    assert api.get("/tables").status_code == 404
    assert api.get("/tables/orders/records").status_code == 404
    assert api.post("/tables/orders/records", json={"customer_name": "x"}).status_code == 404
    assert world.acme.ok(world.acme.get("/tables/orders/records?count=true"))["total"] == 2

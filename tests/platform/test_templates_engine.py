"""Solution templates: install (one transaction, file + pointer errors), independent copies
per tenant, connectors, export round trip, upgrades with a three-way merge, sample data,
the API and the CLI. The fixture templates are in template_fixtures/ (shop 1.0.0 and 1.1.0)."""
from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from zhongshu.platform.errors import Conflict
from zhongshu.platform.models import App, Field, PublicPage, Tenant, TemplateInstall, UserTable
from zhongshu.platform.templates_engine import TemplateInvalid, export_app, install_template, load
from zhongshu.platform.templates_engine import cli as template_cli
from zhongshu.platform.templates_engine import routes as template_routes
from zhongshu.platform.templates_engine.installer import system_actor
from zhongshu.platform.templates_engine.upgrade import upgrade_template
from zhongshu.runtime.models import ConnectorInstall, OutboxJob, Rule

FIX = Path(__file__).parent / "template_fixtures"
SHOP, SHOP_V2 = FIX / "shop", FIX / "shop_v2"
WEBHOOK = {"credentials": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=t"}}


def tenant(platform, slug="acme"):
    t = platform.tenant_by_slug(slug)
    return t if t is not None else platform.create_tenant(slug, slug)


@pytest.fixture
def acme(platform):
    return tenant(platform)


def metadata(platform, s, tenant_id):
    return platform.metadata(s, s.get(Tenant, tenant_id), system_actor())


def copy_of(tmp_path, src=SHOP) -> Path:
    dst = tmp_path / "tpl"
    shutil.copytree(src, dst)
    return dst


def edit(path: Path, fn):
    doc = json.loads(path.read_text("utf-8"))
    fn(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")


def nothing_installed(platform, tenant_id):
    with platform.tenant_session(tenant_id) as s:
        for model in (UserTable, App, PublicPage, TemplateInstall, Rule, ConnectorInstall):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__name__


# -- installing ----------------------------------------------------------------------------------

def test_install_creates_everything_and_it_works(platform, owner):
    t = platform.tenant_by_slug("acme")
    report = install_template(platform, t.id, SHOP)
    assert report["created"]["tables"] == ["customers", "orders", "products"]
    assert sorted(report["created"]["views"]) == ["orders.board", "orders.open"]
    assert report["created"]["pages"] == ["track"] and report["created"]["dashboards"] == ["ops"]
    # fields are in the template's order although links were added in a second pass
    orders = owner.ok(owner.get("/tables/orders"))["table"]
    assert [f["api_name"] for f in orders["fields"]] == ["order_no", "customer", "customer_level", "phone", "status",
                                                         "amount", "paid", "items", "items_total"]
    # links, lookups, rollups and sub-tables across the template's tables work
    p = owner.ok(owner.post("/tables/products/records", json={"sku": "A", "title": "苹果", "price": 12}), 201)
    c = owner.ok(owner.post("/tables/customers/records", json={"name": "张三", "level": "VIP"}), 201)
    o = owner.ok(owner.post("/tables/orders/records", json={"customer": c["id"], "amount": 30,
                                                            "items": [{"product": p["id"], "qty": 2}]}), 201)
    assert o["customer_level"] == "VIP" and float(o["items_total"]) == 24 and o["status"] == "待付款"
    assert float(owner.ok(owner.get(f"/tables/customers/records/{c['id']}"))["order_total"]) == 30
    assert owner.ok(owner.patch(f"/tables/orders/records/{o['id']}", json={"paid": 30}))["status"] == "已付款"
    # the record of what was installed
    with platform.tenant_session(t.id) as s:
        ti = s.scalar(select(TemplateInstall))
        assert (ti.name, ti.version) == ("shop", "1.0.0")
        assert set(ti.installed["tables"]) == {"customers", "orders", "products"} and "rule:paid" in ti.installed["snapshot"]
        assert s.scalar(select(PublicPage)).definition["table"] == "orders"


def test_rules_using_a_missing_connector_stay_off_and_say_why(platform, acme):
    report = install_template(platform, acme.id, SHOP)
    assert report["disabled_rules"] == [{"rule": "big_order", "file": "rules/big_order.json",
                                         "reason": "connector dingtalk_ops not configured"}]
    assert report["connectors"]["dingtalk_ops"]["state"] == "not configured"
    with platform.tenant_session(acme.id) as s:
        rules = {r.api_name: r for r in s.scalars(select(Rule))}
    assert rules["paid"].enabled and not rules["big_order"].enabled
    assert rules["big_order"].disabled_reason == "connector dingtalk_ops not configured"
    # configuring the connector later and re-checking switches it on
    from zhongshu.connectors.service.installs import create_install
    from zhongshu.platform.templates_engine import recheck_connector_rules

    with platform.tenant_session(acme.id, write=True) as s:
        create_install(platform, s, {"connector": "dingtalk", "api_name": "dingtalk_ops", **WEBHOOK})
        assert recheck_connector_rules(platform, s, s.get(Tenant, acme.id)) == ["big_order"]


def test_connectors_given_at_install_are_created_and_rules_run(platform, owner):
    t = platform.tenant_by_slug("acme")
    report = install_template(platform, t.id, SHOP, connectors={"dingtalk_ops": WEBHOOK})
    assert report["disabled_rules"] == [] and report["created"]["connectors"] == ["dingtalk_ops"]
    owner.ok(owner.post("/tables/orders/records", json={"amount": 5000}), 201)
    with platform.tenant_session(t.id) as s:
        jobs = s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()
    assert [j.payload["install"] for j in jobs] == ["dingtalk_ops"]


def test_an_unknown_connector_or_bad_credentials_refuse_the_install(platform, acme):
    with pytest.raises(TemplateInvalid) as e:
        install_template(platform, acme.id, SHOP, connectors={"wecom_x": {}})
    assert e.value.problems[0]["file"] == "connectors" and e.value.problems[0]["pointer"] == "/wecom_x"
    with pytest.raises(TemplateInvalid) as e:
        install_template(platform, acme.id, SHOP, connectors={"dingtalk_ops": {"credentials": {"webhook_url": "ftp://x"}}})
    assert e.value.problems[0]["pointer"].startswith("/dingtalk_ops")
    nothing_installed(platform, acme.id)


def _bad_rule_field(d):
    d["actions"][0]["values"] = {"stat": "'x'"}


def _bad_field_type(d):
    d["fields"][2]["type"] = "no_such_type"


def _bad_version(d):
    d["version"] = "1.0"


def _undeclared_connector(d):
    d["actions"][0]["connector"] = "ding"


def _bad_view_field(d):
    d["fields"][1] = "nope"


def _bad_lookup(d):
    d["fields"][2]["options"]["field"] = "nope"


def _bad_formula(d):
    d["fields"][7]["options"]["fields"][3]["options"]["expression"] = "qty * nope"


def _bad_page(d):
    d["show"][0]["field"] = "nope"


def _bad_dashboard(d):
    d["widgets"][1]["metrics"][0]["field"] = "nope"


def _bad_slug(d):
    d["slug"] = "Not A Slug"


@pytest.mark.parametrize("file,change,where", [
    ("rules/paid.json", _bad_rule_field, "/actions/0/values/stat"),
    ("tables/products.json", _bad_field_type, "/fields/2/type"),
    ("manifest.json", _bad_version, "/version"),
    ("rules/big_order.json", _undeclared_connector, "/actions/0/connector"),
    ("views/orders.open.json", _bad_view_field, "/fields/1"),
    ("tables/orders.json", _bad_lookup, "/fields/2/options"),
    ("tables/orders.json", _bad_formula, "/fields/7"),
    ("pages/track.json", _bad_page, "/show/0/field"),
    ("dashboards/ops.json", _bad_dashboard, "/widgets/1"),
    ("pages/track.json", _bad_slug, "/slug"),
])
def test_a_bad_template_is_refused_naming_file_and_pointer(platform, acme, tmp_path, file, change, where):
    tpl = copy_of(tmp_path)
    edit(tpl / file, change)
    with pytest.raises(TemplateInvalid) as e:
        install_template(platform, acme.id, tpl)
    p = e.value.problems[0]
    assert p["file"] == file and p["pointer"].startswith(where), e.value.lines()
    assert e.value.lines()[0].startswith(f"{file} {where}")
    assert e.value.status == 400
    nothing_installed(platform, acme.id)


def test_broken_json_and_a_missing_manifest_are_reported(platform, acme, tmp_path):
    tpl = copy_of(tmp_path)
    (tpl / "views" / "orders.open.json").write_text('{"table": "orders",', "utf-8")
    (tpl / "manifest.json").unlink()
    with pytest.raises(TemplateInvalid) as e:
        install_template(platform, acme.id, tpl)
    lines = e.value.lines()
    assert any(x.startswith("views/orders.open.json /: not valid JSON") for x in lines), lines
    assert any(x.startswith("manifest.json /: the template has no manifest.json") for x in lines), lines
    nothing_installed(platform, acme.id)


def test_the_first_error_in_a_late_file_rolls_back_tables_already_created(platform, acme, tmp_path):
    tpl = copy_of(tmp_path)
    edit(tpl / "dashboards" / "ops.json", _bad_dashboard)  # dashboards come after tables, views, rules
    with pytest.raises(TemplateInvalid):
        install_template(platform, acme.id, tpl)
    nothing_installed(platform, acme.id)
    assert install_template(platform, acme.id, SHOP)["created"]["tables"]  # and the good one still installs


def test_installing_the_same_template_twice_is_a_conflict(platform, acme):
    install_template(platform, acme.id, SHOP)
    with pytest.raises(Conflict) as e:
        install_template(platform, acme.id, SHOP)
    assert e.value.status == 409 and "upgrade" in e.value.message


def test_each_tenant_gets_an_independent_copy(platform, acme):
    beta = tenant(platform, "beta")
    install_template(platform, acme.id, SHOP)
    install_template(platform, beta.id, SHOP)
    with platform.tenant_session(acme.id, write=True) as s:
        md = metadata(platform, s, acme.id)
        md.update_field("orders", "amount", {"label": "金额(改)"})
        md.add_field("orders", {"api_name": "only_in_a", "type": "text"})
        recs = platform.records(s, s.get(Tenant, acme.id), system_actor())
        recs.create(recs.schema("orders"), {"amount": 1})
    with platform.tenant_session(beta.id) as s:
        recs = platform.records(s, s.get(Tenant, beta.id), system_actor())
        schema = recs.schema("orders")
        assert schema.fields["amount"].definition["label"] == "应收" and "only_in_a" not in schema.fields
        from zhongshu.platform.storage.query import Query

        assert recs.list(schema, Query(), count=True)["total"] == 0
        assert s.scalar(select(func.count()).select_from(TemplateInstall)) == 1


# -- sample data -------------------------------------------------------------------------------

def test_sample_data_runs_in_the_same_transaction(platform, acme):
    report = install_template(platform, acme.id, SHOP, with_sample_data=True, sample_size=4)
    assert report["sample_data"]["records"] == {"products": 3, "customers": 4, "orders": 8}
    with platform.tenant_session(acme.id) as s:
        recs = platform.records(s, s.get(Tenant, acme.id), system_actor())
        from zhongshu.platform.storage.query import Query

        rows = recs.list(recs.schema("orders"), Query(), with_children=True)["records"]
    assert len(rows) == 8 and all(float(r["items_total"]) > 0 for r in rows)


def test_a_failing_sample_generator_names_its_file_and_changes_nothing(platform, acme, tmp_path):
    tpl = copy_of(tmp_path)
    (tpl / "sample.py").write_text("def generate(ctx):\n    ctx.insert('orders', [{'amount': 'lots'}])\n", "utf-8")
    with pytest.raises(TemplateInvalid) as e:
        install_template(platform, acme.id, tpl, with_sample_data=True)
    assert e.value.problems[0]["file"] == "sample.py"
    nothing_installed(platform, acme.id)


def test_bundles_never_run_sample_code(platform, acme):
    bundle = load(SHOP).to_bundle()
    report = install_template(platform, acme.id, bundle, with_sample_data=True)
    assert "skipped" in report["sample_data"]


# -- export -----------------------------------------------------------------------------------

def test_export_then_install_into_an_empty_tenant_reproduces_it(platform, acme):
    install_template(platform, acme.id, SHOP, with_sample_data=True, sample_size=2)
    with platform.tenant_session(acme.id, write=True) as s:
        md = metadata(platform, s, acme.id)
        md.add_field("orders_items", {"api_name": "remark", "type": "text"})
        md.create_view("products", {"api_name": "cheap", "type": "grid", "filter": {"field": "price", "op": "<", "value": 20}})
    bundle = export_app(platform, acme.id)
    files = bundle["files"]
    assert "tables/orders_items.json" not in files  # sub-tables are inline
    items = next(f for f in files["tables/orders.json"]["fields"] if f["api_name"] == "items")
    assert [f["api_name"] for f in items["options"]["fields"]][-1] == "remark"
    text = json.dumps(bundle)
    assert not re.search(r'"id": \d', text) and "schema_version" not in text and "physical" not in text
    assert all("id" in c for c in next(f for f in files["tables/orders.json"]["fields"] if f["api_name"] == "status")["options"]["choices"])
    copy_t = tenant(platform, "copy")
    install_template(platform, copy_t.id, copy.deepcopy(bundle))
    again = export_app(platform, copy_t.id)
    assert again["files"] == files
    assert {k: v for k, v in again["manifest"].items() if k not in ("label", "description", "name")} == \
        {k: v for k, v in bundle["manifest"].items() if k not in ("label", "description", "name")}


def test_export_of_one_app_and_of_an_unknown_app(platform, acme):
    install_template(platform, acme.id, SHOP)
    with platform.tenant_session(acme.id, write=True) as s:
        metadata(platform, s, acme.id).create_table({"api_name": "loose", "fields": [{"api_name": "x", "type": "text"}]})
    assert "tables/loose.json" in export_app(platform, acme.id)["files"]
    shop = export_app(platform, acme.id, "shop")
    assert "tables/loose.json" not in shop["files"] and shop["manifest"]["name"] == "shop"
    assert "rules/paid.json" in shop["files"] and "pages/track.json" in shop["files"]
    from zhongshu.platform.errors import NotFound

    with pytest.raises(NotFound):
        export_app(platform, acme.id, "nope")


# -- upgrade ---------------------------------------------------------------------------------

def customise(platform, tenant_id):
    with platform.tenant_session(tenant_id, write=True) as s:
        md = metadata(platform, s, tenant_id)
        md.update_table("orders", {"label": {"zh-CN": "我的订单", "en": "My orders"}})
        md.add_field("orders", {"api_name": "remark", "type": "text"})
        choices = md.schema("orders").fields["status"].options["choices"]
        md.update_field("orders", "status", {"options": {"choices": choices + [{"label": "异常"}]}})
        from zhongshu.runtime.rules.api import save_rule

        r = s.scalar(select(Rule).where(Rule.api_name == "paid"))
        recs = platform.records(s, s.get(Tenant, tenant_id), system_actor())
        save_rule(s, recs, {**r.definition, "condition": "paid > 10 and status == '待付款'"}, existing=r)
        o = recs.create(recs.schema("orders"), {"amount": 99, "remark": "keep me"})
    return o["id"]


def test_upgrade_merges_additions_keeps_customisations_and_lists_conflicts(platform, acme):
    install_template(platform, acme.id, SHOP)
    order_id = customise(platform, acme.id)
    report = upgrade_template(platform, acme.id, SHOP_V2)
    assert report["from_version"] == "1.0.0" and report["to_version"] == "1.1.0"
    assert set(report["added"]) == {"table:coupons", "field:products.note", "view:coupons.all"}
    assert report["merged"] == ["field:orders.status"]
    assert report["removed_from_template_kept"] == ["view:orders.board"]
    [c] = report["conflicts"]
    assert c["object"] == "rule:paid" and c["file"] == "rules/paid.json"
    assert c["tenant_changed"] == ["/condition"] and c["template_changed"] == ["/condition", "/label"]
    assert c["template_definition"]["condition"] == "paid >= amount and status == '待付款'"
    with platform.tenant_session(acme.id) as s:
        recs = platform.records(s, s.get(Tenant, acme.id), system_actor())
        orders = recs.schema("orders")
        assert orders.definition["label"]["en"] == "My orders" and "remark" in orders.fields
        labels = [x["label"] for x in orders.fields["status"].options["choices"]]
        assert labels == ["待付款", "已付款", "已发货", "异常", "已完成"]
        assert s.scalar(select(Rule).where(Rule.api_name == "paid")).definition["condition"] == "paid > 10 and status == '待付款'"
        assert "note" in recs.schema("products").fields and "order_amount" in recs.schema("coupons").fields
        assert recs.get(orders, order_id)["remark"] == "keep me"  # no data lost
        ti = s.scalar(select(TemplateInstall))
        assert ti.version == "1.1.0" and [x["object"] for x in ti.conflicts] == ["rule:paid"]
        from zhongshu.platform.models import View

        assert s.scalar(select(View).where(View.api_name == "board")) is not None


def test_upgrade_updates_what_the_tenant_left_alone(platform, acme):
    install_template(platform, acme.id, SHOP)
    report = upgrade_template(platform, acme.id, SHOP_V2)
    assert set(report["updated"]) == {"field:orders.status", "rule:paid"} and report["conflicts"] == []
    with platform.tenant_session(acme.id) as s:
        assert s.scalar(select(Rule).where(Rule.api_name == "paid")).definition["label"] == "付清后改状态"
    # the same version again is refused; a later customisation is still detected on the next version
    with pytest.raises(Conflict):
        upgrade_template(platform, acme.id, SHOP_V2)


def test_upgrade_needs_an_installed_template(platform, acme):
    from zhongshu.platform.errors import NotFound

    with pytest.raises(NotFound):
        upgrade_template(platform, acme.id, SHOP_V2)


def test_a_failed_upgrade_changes_nothing(platform, acme, tmp_path):
    install_template(platform, acme.id, SHOP)
    tpl = copy_of(tmp_path, SHOP_V2)
    edit(tpl / "views" / "coupons.all.json", lambda d: d.update(fields=["nope"]))
    with pytest.raises(TemplateInvalid) as e:
        upgrade_template(platform, acme.id, tpl)
    assert e.value.problems[0]["file"] == "views/coupons.all.json"
    tpl2 = copy_of(tmp_path / "b", SHOP_V2)
    edit(tpl2 / "rules" / "paid.json", _bad_rule_field)
    with pytest.raises(TemplateInvalid) as e:
        upgrade_template(platform, acme.id, tpl2)
    assert (e.value.problems[0]["file"], e.value.problems[0]["pointer"]) == ("rules/paid.json", "/actions/0/values/stat")
    with platform.tenant_session(acme.id) as s:
        assert s.scalar(select(UserTable).where(UserTable.api_name == "coupons")) is None
        assert s.scalar(select(TemplateInstall)).version == "1.0.0"


# -- API ---------------------------------------------------------------------------------------

@pytest.fixture
def gallery(monkeypatch):
    monkeypatch.setattr(template_routes, "builtin_templates", lambda: {"shop": SHOP})


def test_api_gallery_install_list_export_import_upgrade(owner, make_member, platform, gallery, app):
    g = owner.ok(owner.get("~/templates"))["templates"]
    assert g[0]["name"] == "shop" and g[0]["version"] == "1.0.0" and g[0]["connectors"][0]["api_name"] == "dingtalk_ops"
    assert g[0]["counts"]["tables"] == 3 and g[0]["sample_data"] is True
    member = make_member("builder")
    assert member.post("/templates/install", json={"name": "shop"}).status_code == 403
    r = owner.ok(owner.post("/templates/install", json={"name": "shop", "with_sample_data": True, "sample_size": 2,
                                                        "connectors": {"dingtalk_ops": WEBHOOK}}), 201)["report"]
    assert r["sample_data"]["records"]["orders"] == 4 and r["disabled_rules"] == []
    again = owner.post("/templates/install", json={"name": "shop"})
    assert again.status_code == 409
    assert owner.post("/templates/install", json={"name": "nope"}).status_code == 404
    listed = owner.ok(owner.get("/templates"))["templates"]
    assert listed[0]["name"] == "shop" and listed[0]["version"] == "1.0.0" and listed[0]["available_version"] == "1.0.0"
    bundle = owner.ok(owner.get("/export?app=shop"))
    assert bundle["format"] == "zhongshu-template" and "tables/orders.json" in bundle["files"]
    # import into another tenant of the same user
    platform.create_tenant("beta", "Beta", owner_email="owner@acme.test")
    owner.tenant = "beta"
    r = owner.ok(owner.post("/templates/import", json=bundle), 201)["report"]
    assert r["created"]["tables"] == ["customers", "orders", "products"]
    assert r["disabled_rules"][0]["reason"] == "connector dingtalk_ops not configured"
    assert owner.ok(owner.get("/tables/orders/records?count=true"))["total"] == 0  # data is not part of a bundle
    # upgrade with a bundle of the next version
    v2 = load(SHOP_V2).to_bundle()
    v2["manifest"]["name"] = bundle["manifest"]["name"]
    r = owner.ok(owner.post("/templates/upgrade", json={"bundle": v2}))["report"]
    assert "table:coupons" in r["added"]
    owner.tenant = "acme"
    assert owner.ok(owner.get("/templates"))["templates"][0]["version"] == "1.0.0"


def test_api_errors_name_file_and_pointer_and_roll_back(owner, platform, gallery):
    bundle = load(SHOP).to_bundle()
    _bad_rule_field(bundle["files"]["rules/paid.json"])
    r = owner.post("/templates/import", json=bundle)
    assert r.status_code == 400
    err = r.get_json()["error"]
    assert err["code"] == "template_invalid"
    assert err["errors"][0]["file"] == "rules/paid.json" and err["errors"][0]["pointer"] == "/actions/0/values/stat"
    assert "rules/paid.json /actions/0/values/stat" in err["message"]
    assert owner.ok(owner.get("/tables"))["tables"] == []
    assert owner.post("/templates/import", json={"files": {"x.json": {}}}).status_code == 400
    assert owner.post("/templates/install", json={"name": "shop", "sample_size": "x"}).status_code == 400


def test_other_tenants_cannot_reach_templates(owner, app, platform, gallery):
    owner.ok(owner.post("/templates/install", json={"name": "shop"}), 201)
    platform.create_user("eve@other.test", "eve-password-123")
    platform.create_tenant("other", "Other", owner_email="eve@other.test")
    client = app.test_client()
    r = client.post("/api/v1/auth/login", json={"email": "eve@other.test", "password": "eve-password-123"})
    csrf = r.get_json()["csrf_token"]
    assert client.get("/api/v1/tenants/acme/templates").status_code == 404
    assert client.get("/api/v1/tenants/acme/export").status_code == 404
    mine = client.get("/api/v1/tenants/other/templates").get_json()["templates"]
    assert mine == []
    r = client.post("/api/v1/tenants/other/templates/install", json={"name": "shop"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201  # its own independent copy


# -- CLI ---------------------------------------------------------------------------------------

class _Unclosed:
    def __init__(self, platform):
        self._p = platform

    def __getattr__(self, name):
        return getattr(self._p, name)

    def close(self):
        pass


@pytest.fixture
def cli(platform, monkeypatch):
    monkeypatch.setattr(template_cli, "_platform", lambda: _Unclosed(platform))
    monkeypatch.setattr("zhongshu.platform.templates_engine.loader.builtin_templates", lambda: {"shop": SHOP})

    def run(*args):
        return CliRunner().invoke(template_cli.template, [str(a) for a in args])
    return run


def test_cli_list_install_export_upgrade(cli, platform, acme, tmp_path):
    r = cli("list")
    assert r.exit_code == 0 and "shop\t1.0.0" in r.output
    r = cli("install", "shop", "--tenant", "acme", "--sample-data", "--size", "2")
    assert r.exit_code == 0, r.output
    assert "installed shop 1.0.0 into acme: 3 tables" in r.output and "rule big_order is off: connector dingtalk_ops not configured" in r.output
    r = cli("install", "shop", "--tenant", "acme")
    assert r.exit_code != 0 and "already installed" in r.output and "Traceback" not in r.output
    r = cli("export", "--tenant", "acme", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "manifest.json").is_file() and (tmp_path / "out" / "tables" / "orders.json").is_file()
    assert load(tmp_path / "out").name == "acme"
    r = cli("upgrade", SHOP_V2, "--tenant", "acme")
    assert r.exit_code == 0, r.output
    assert "upgraded shop 1.0.0 -> 1.1.0" in r.output and "added: table:coupons" in r.output


def test_cli_reports_problems_without_a_traceback(cli, acme, tmp_path):
    tpl = copy_of(tmp_path)
    edit(tpl / "rules" / "paid.json", _bad_rule_field)
    r = cli("install", tpl, "--tenant", "acme")
    assert r.exit_code == 1 and "rules/paid.json /actions/0/values/stat: no field 'stat'" in r.output
    assert "Traceback" not in r.output
    assert cli("install", "shop", "--tenant", "nobody").exit_code == 1
    r = cli("install", "no_such_template", "--tenant", "acme")
    assert r.exit_code == 1 and "no template named 'no_such_template'" in r.output
    r = cli("check", SHOP)
    assert r.exit_code == 0 and "shop 1.0.0" in r.output

"""Connector installs per tenant: the catalog, validation, encrypted credentials, PATCH
merging, roles and tenant isolation, connection tests and key rotation."""
from __future__ import annotations

import json
import os
import stat

import pytest
from sqlalchemy import select
from werkzeug.wrappers import Response

from zhongshu.connectors.api import CredentialCipher, generate_key
from zhongshu.connectors.service import keys
from zhongshu.runtime.models import ConnectorInstall

from tests.conftest import login

SECRET = "whsec-super-secret-value-123"


def install_row(platform, api_name="shop_in"):
    with platform.tenant_session(None) as s:
        return s.scalar(select(ConnectorInstall).where(ConnectorInstall.api_name == api_name))


def make_webhook(owner, api_name="shop_in", **extra):
    body = {"connector": "webhook", "api_name": api_name, "config": {"channel": "小程序"},
            "credentials": {"secret": SECRET}, **extra}
    return owner.ok(owner.post("/connectors", json=body), 201)["install"]


def test_catalog_lists_manifests_and_load_failures(owner):
    data = owner.ok(owner.get("~/connectors"))
    by_name = {c["name"]: c for c in data["connectors"]}
    assert {"webhook", "shopify", "douyin", "dingtalk", "wecom", "email", "sms", "kuaidi100", "wms",
            "file_drop", "http_request"} <= set(by_name)
    shop = by_name["shopify"]
    assert shop["version"] and shop["labels"]["zh-CN"] == "Shopify"
    assert shop["config_schema"]["required"] == ["shop_domain"]
    assert "api_secret" in shop["credential_schema"]["properties"]
    assert "order.created" in shop["events"] and shop["supports_pull"] and shop["supports_webhook"]
    assert [a["name"] for a in by_name["dingtalk"]["actions"]] == ["send_message"]
    assert isinstance(data["failures"], list)


def test_catalog_needs_a_login(app):
    assert app.test_client().get("/api/v1/connectors").status_code == 401


def test_install_validation_errors_point_at_the_bad_parts(owner):
    r = owner.post("/connectors", json={"connector": "webhook", "api_name": "in1",
                                        "config": {"signature_encoding": "rot13"}, "credentials": {"secret": "short"}})
    assert r.status_code == 400
    pointers = {e["pointer"] for e in r.get_json()["error"]["errors"]}
    assert {"/config/channel", "/config/signature_encoding", "/credentials/secret"} <= pointers

    r = owner.post("/connectors", json={"connector": "shopify", "config": {}, "credentials": {}})
    assert r.status_code == 400
    assert [e["pointer"] for e in r.get_json()["error"]["errors"]] == ["/config/shop_domain"]

    r = owner.post("/connectors", json={"connector": "no_such_thing"})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/connector"

    r = owner.post("/connectors", json={"connector": "webhook", "api_name": "Bad Name",
                                        "config": {"channel": "x"}, "credentials": {"secret": SECRET}})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/api_name"

    r = owner.post("/connectors", json={"connector": "webhook", "api_name": "in2", "config": {
        "channel": "x", "pull_every_seconds": 1, "mappings": [{"table": "orders", "fields": {"a": "no-dollar"}}]},
        "credentials": {"secret": SECRET}})
    assert r.status_code == 400
    pointers = {e["pointer"] for e in r.get_json()["error"]["errors"]}
    assert "/config/pull_every_seconds" in pointers and "/config/mappings/0" in pointers

    make_webhook(owner, "dup")
    r = owner.post("/connectors", json={"connector": "webhook", "api_name": "dup", "config": {"channel": "x"},
                                        "credentials": {"secret": SECRET}})
    assert r.status_code == 409


def test_credentials_are_encrypted_at_rest_and_never_returned(owner, platform):
    inst = make_webhook(owner)
    assert inst["credentials"] == {"secret": "••••••"}
    assert inst["webhook_url"].startswith("http://localhost/api/v1/hooks/")
    assert inst["config"]["channel"] == "小程序" and inst["config"]["signature_header"] == "X-Zhongshu-Signature"
    row = install_row(platform)
    assert SECRET not in row.credentials and "secret" not in row.credentials
    assert keys.cipher(platform).decrypt(row.credentials) == {"secret": SECRET}
    assert row.webhook_token and row.webhook_token in inst["webhook_url"]
    # the key was generated once into the instance folder, readable by the owner only
    path = keys.key_file(platform)
    assert path.exists() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # nothing the API returns contains the secret
    for r in (owner.get("/connectors"), owner.get("/connectors/shop_in"),
              owner.patch("/connectors/shop_in", json={"enabled": True})):
        assert r.status_code == 200 and SECRET not in r.get_data(as_text=True)


def test_patch_merges_config_and_credentials(owner, platform):
    owner.ok(owner.post("/connectors", json={
        "connector": "douyin", "api_name": "dy", "config": {"shop_id": "77"},
        "credentials": {"app_key": "k1", "app_secret": "s1"}}), 201)
    # changing config only keeps the stored secret
    inst = owner.ok(owner.patch("/connectors/dy", json={"config": {"channel": "抖音2"}}))["install"]
    assert inst["config"]["shop_id"] == "77" and inst["config"]["channel"] == "抖音2"
    assert keys.cipher(platform).decrypt(install_row(platform, "dy").credentials) == {"app_key": "k1", "app_secret": "s1"}
    # sending back the mask keeps it too; a new value replaces; null removes an optional one
    owner.ok(owner.patch("/connectors/dy", json={"credentials": {"app_key": "k2", "app_secret": "••••••",
                                                                 "access_token": "tok"}}))
    assert keys.cipher(platform).decrypt(install_row(platform, "dy").credentials) == {
        "app_key": "k2", "app_secret": "s1", "access_token": "tok"}
    owner.ok(owner.patch("/connectors/dy", json={"credentials": {"access_token": None}}))
    assert "access_token" not in keys.cipher(platform).decrypt(install_row(platform, "dy").credentials)
    # removing a required secret is refused with a pointer
    r = owner.patch("/connectors/dy", json={"credentials": {"app_secret": None}})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/credentials/app_secret"
    # enable/disable; webhook token rotation
    old = install_row(platform, "dy").webhook_token
    inst = owner.ok(owner.patch("/connectors/dy", json={"enabled": False, "rotate_webhook_token": True}))["install"]
    assert inst["enabled"] is False and old not in inst["webhook_url"]
    r = owner.patch("/connectors/dy", json={"connector": "shopify"})
    assert r.status_code == 400


def test_delete_install(owner, platform):
    make_webhook(owner)
    owner.ok(owner.delete("/connectors/shop_in"))
    assert owner.get("/connectors/shop_in").status_code == 404
    assert install_row(platform) is None


def test_admin_role_is_required(owner, make_member):
    make_webhook(owner)
    member = make_member("member")
    assert member.get("/connectors").status_code == 403
    assert member.post("/connectors", json={"connector": "webhook"}).status_code == 403
    assert member.get("/connectors/shop_in").status_code == 403
    assert member.get("~/connectors").status_code == 200  # the catalog is for everybody
    admin = make_member("admin")
    assert admin.ok(admin.get("/connectors"))["installs"][0]["api_name"] == "shop_in"


def test_installs_are_isolated_between_tenants(owner, app, platform):
    make_webhook(owner)
    u = platform.create_user("owner@beta.test", "beta-password")
    platform.create_tenant("beta", "Beta", owner_email=u.email)
    beta = login(app, "owner@beta.test", "beta-password", "beta")
    assert beta.ok(beta.get("/connectors"))["installs"] == []
    assert beta.get("/connectors/shop_in").status_code == 404
    assert beta.patch("/connectors/shop_in", json={"enabled": False}).status_code == 404
    assert beta.delete("/connectors/shop_in").status_code == 404
    # the same api_name is free in the other tenant
    make_webhook(beta)
    assert beta.get("/api/v1/tenants/acme/connectors").status_code == 404
    assert len(owner.ok(owner.get("/connectors"))["installs"]) == 1


@pytest.fixture
def shopify_admin(serve):
    def handler(request):
        if request.path != "/admin/api/2024-10/shop.json":
            return Response("not found", status=404)
        if request.headers.get("X-Shopify-Access-Token") != "shpat_good":
            return Response(json.dumps({"errors": "[API] Invalid API key or access token"}), status=401,
                            content_type="application/json")
        return Response(json.dumps({"shop": {"name": "童装旗舰店", "myshopify_domain": "kidswear.myshopify.com"}}),
                        content_type="application/json")
    return serve(handler)


def test_connection_test_is_run_and_stored(owner, shopify_admin):
    owner.ok(owner.post("/connectors", json={
        "connector": "shopify", "api_name": "shopify_main",
        "config": {"shop_domain": "kidswear.myshopify.com", "base_url": shopify_admin.url},
        "credentials": {"access_token": "shpat_good", "api_secret": "s"}}), 201)
    res = owner.ok(owner.post("/connectors/shopify_main/test"))["result"]
    assert res["ok"] is True and "童装旗舰店" in res["message"]
    assert shopify_admin.requests[-1]["headers"]["X-Shopify-Access-Token"] == "shpat_good"
    assert owner.ok(owner.get("/connectors/shopify_main"))["install"]["last_test"]["ok"] is True

    owner.ok(owner.patch("/connectors/shopify_main", json={"credentials": {"access_token": "shpat_bad"}}))
    res = owner.ok(owner.post("/connectors/shopify_main/test"))["result"]
    assert res["ok"] is False and "401" in res["message"]
    stored = owner.ok(owner.get("/connectors/shopify_main"))["install"]["last_test"]
    assert stored["ok"] is False and "shpat_bad" not in json.dumps(stored)


def test_rotating_the_key_file_reencrypts_every_install(owner, platform):
    make_webhook(owner, "a")
    make_webhook(owner, "b")
    old_keys = keys.load_keys(platform)
    before = install_row(platform, "a").credentials
    result = keys.rotate_keys(platform)
    assert result["key_source"] == "file" and result["rotated"] == 2 and result["failed"] == []
    assert result["dropped_keys"] == 1
    new_keys = keys.load_keys(platform)
    assert len(new_keys) == 1 and new_keys[0] not in old_keys
    after = install_row(platform, "a").credentials
    assert after != before
    assert CredentialCipher(new_keys).decrypt(after) == {"secret": SECRET}
    with pytest.raises(Exception):
        CredentialCipher(old_keys).decrypt(after)
    assert stat.S_IMODE(os.stat(keys.key_file(platform)).st_mode) == 0o600
    # idempotent
    assert keys.rotate_credentials(platform)["rotated"] == 0


def test_keys_from_the_environment_and_rotation_with_them(owner, platform, monkeypatch):
    old = generate_key()
    monkeypatch.setenv("ZHONGSHU_SECRET_KEYS", old)
    keys.cipher(platform, refresh=True)
    make_webhook(owner, "a")
    assert keys.key_source(platform) == "env"
    new = generate_key()
    monkeypatch.setenv("ZHONGSHU_SECRET_KEYS", f"{new}, {old}")
    result = keys.rotate_keys(platform)
    assert result["key_source"] == "env" and result["rotated"] == 1
    token = install_row(platform, "a").credentials
    assert CredentialCipher([new]).decrypt(token) == {"secret": SECRET}
    # the old key can now be removed from the variable
    monkeypatch.setenv("ZHONGSHU_SECRET_KEYS", new)
    assert keys.cipher(platform, refresh=True).decrypt(token) == {"secret": SECRET}
    assert not keys.key_file(platform).exists()


def test_cli_rotates_keys(platform, owner, monkeypatch):
    from click.testing import CliRunner

    from zhongshu.connectors.service import cli
    make_webhook(owner, "a")
    monkeypatch.setattr(cli, "_platform", lambda: _Unclosed(platform))
    out = CliRunner().invoke(cli.connectors, ["rotate-keys"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["rotated"] == 1
    assert keys.cipher(platform).decrypt(install_row(platform, "a").credentials) == {"secret": SECRET}
    assert len(CliRunner().invoke(cli.connectors, ["generate-key"]).output.strip()) == 44


class _Unclosed:
    def __init__(self, platform):
        self._p = platform

    def __getattr__(self, name):
        return getattr(self._p, name)

    def close(self):
        pass


def test_webhook_url_uses_the_public_url_when_configured(owner, platform):
    platform.config["PUBLIC_URL"] = "https://hub.example.com/"
    inst = make_webhook(owner)
    assert inst["webhook_url"].startswith("https://hub.example.com/api/v1/hooks/")


# -- rules left off for a missing connector are re-checked when an install is saved -----------

SHOP_TEMPLATE = __import__("pathlib").Path(__file__).parents[1] / "platform" / "template_fixtures" / "shop"
DINGTALK = {"connector": "dingtalk", "api_name": "dingtalk_ops",
            "credentials": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=t"}}


def _queued_actions(platform):
    from zhongshu.runtime.models import OutboxJob

    with platform.tenant_session(None) as s:
        return [j.payload["install"] for j in s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action"))]


def test_saving_an_install_switches_on_the_rules_that_waited_for_it(owner, platform):
    from zhongshu.platform.templates_engine import install_template

    report = install_template(platform, platform.tenant_by_slug("acme").id, SHOP_TEMPLATE)
    assert report["disabled_rules"][0]["reason"] == "connector dingtalk_ops not configured"

    # configured but switched off: the rule stays off and now says why
    out = owner.ok(owner.post("/connectors", json={**DINGTALK, "enabled": False}), 201)
    assert out["rules"] == {"enabled": [], "still_off": [
        {"rule": "big_order", "reason": "connector dingtalk_ops is disabled"}]}
    rule = owner.ok(owner.get("/rules/big_order"))["rule"]
    assert (rule["enabled"], rule["disabled_reason"]) == (False, "connector dingtalk_ops is disabled")
    owner.ok(owner.post("/tables/orders/records", json={"amount": 5000}), 201)
    assert _queued_actions(platform) == []

    # enabling the install switches the rule on, and it sends through the connector
    out = owner.ok(owner.patch("/connectors/dingtalk_ops", json={"enabled": True}))
    assert out["rules"] == {"enabled": ["big_order"], "still_off": []}
    rule = owner.ok(owner.get("/rules/big_order"))["rule"]
    assert (rule["enabled"], rule["disabled_reason"]) == (True, None)
    owner.ok(owner.post("/tables/orders/records", json={"amount": 5000}), 201)
    assert _queued_actions(platform) == ["dingtalk_ops"]


def test_a_rule_switched_off_by_hand_stays_off_when_its_connector_is_installed(owner, platform):
    from zhongshu.platform.templates_engine import install_template

    install_template(platform, platform.tenant_by_slug("acme").id, SHOP_TEMPLATE)
    owner.ok(owner.patch("/rules/big_order", json={"enabled": True}))   # the builder takes it over...
    owner.ok(owner.patch("/rules/big_order", json={"enabled": False}))  # ...and switches it off
    out = owner.ok(owner.post("/connectors", json=DINGTALK), 201)
    assert out["rules"] == {"enabled": [], "still_off": []}
    assert owner.ok(owner.get("/rules/big_order"))["rule"]["enabled"] is False

"""Backup and restore of a tenant (platform/backup.py): round trips on the same database and
from SQLite to PostgreSQL, through the CLI too. Compared: record counts and values, links
(many-to-one and many-to-many), sub-table rows, history, soft-deleted records, a soft-deleted
field and table (recoverable after the restore), attachments (bytes), definitions (views,
rules, pages, connector installs with encrypted credentials)."""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text

from zhongshu.platform.backup import backup_tenant, restore_tenant
from zhongshu.platform.core import Platform
from zhongshu.runtime.models import ConnectorInstall

from tests.conftest import ORDERS, login

SECRET = "whsec-backup-secret-123456"


@pytest.fixture
def world(app, platform, owner, orders):
    """A tenant with links, a many-to-many, sub-tables, history, soft deletes, a file, a view,
    a rule, a public page and a connector install."""
    owner.ok(owner.post("/tables", json={"api_name": "customers", "fields": [
        {"api_name": "name", "type": "text"}, {"api_name": "level", "type": "text"}]}), 201)
    owner.ok(owner.post("/tables", json={"api_name": "promos", "fields": [{"api_name": "code", "type": "text"}]}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "customer", "type": "link",
                                                       "options": {"target": "customers"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "promos", "type": "link",
                                                       "options": {"target": "promos", "relationship": "many_to_many"}}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "receipt", "type": "attachment"}), 201)
    owner.ok(owner.post("/tables/orders/fields", json={"api_name": "remark", "type": "long_text"}), 201)
    up = owner.client.post("/api/v1/tenants/acme/attachments", headers={"X-CSRF-Token": owner.csrf},
                           data={"file": (io.BytesIO(b"%PDF-1.4 receipt \xe4\xb8\xad"), "收据.pdf", "application/pdf")},
                           content_type="multipart/form-data")
    token = owner.ok(up, 201)["token"]
    c1 = owner.ok(owner.post("/tables/customers/records", json={"name": "张三", "level": "VIP"}), 201)
    c2 = owner.ok(owner.post("/tables/customers/records", json={"name": "李四", "level": "普通"}), 201)
    p1 = owner.ok(owner.post("/tables/promos/records", json={"code": "618"}), 201)
    p2 = owner.ok(owner.post("/tables/promos/records", json={"code": "双11"}), 201)
    recs = []
    for i in range(12):
        recs.append(owner.ok(owner.post("/tables/orders/records", json={
            "customer_name": f"客户{i}", "phone": f"1381234{i:04d}", "amount": f"{i}.25", "status": "已付款",
            "channel": "天猫", "vip": i % 2 == 0, "tags": ["加急"] if i % 3 == 0 else [], "created": "2026-11-21 10:00",
            "address": {"province": "浙江省", "city": "杭州市", "detail": f"文一路 {i} 号"},
            "customer": c1["id"] if i % 2 else c2["id"], "promos": [p1["id"], p2["id"]] if i % 4 == 0 else [p2["id"]],
            "items": [{"sku": f"SKU-{i}-{j}", "qty": j + 1, "unit_price": "9.90", "category": "童装"} for j in range(3)],
            "receipt": [token] if i == 0 else None, "remark": f"备注{i}"}), 201))
    for r in recs[:4]:
        owner.ok(owner.patch(f"/tables/orders/records/{r['id']}", json={"status": "已发货"}))
    owner.ok(owner.delete(f"/tables/orders/records/{recs[5]['id']}"))   # a soft-deleted record
    owner.ok(owner.delete("/tables/orders/fields/remark"))                # a soft-deleted field
    owner.ok(owner.post("/tables", json={"api_name": "old_notes", "fields": [{"api_name": "text", "type": "text"}]}), 201)
    owner.ok(owner.post("/tables/old_notes/records", json={"text": "旧笔记"}), 201)
    owner.ok(owner.delete("/tables/old_notes"))                           # a soft-deleted table
    owner.ok(owner.post("/tables/orders/views", json={"api_name": "paid", "type": "grid", "label": "已付款",
                                                      "filter": {"field": "status", "op": "=", "value": "已付款"}}), 201)
    owner.ok(owner.post("/connectors", json={"connector": "webhook", "api_name": "miniapp",
                                             "config": {"channel": "小程序"}, "credentials": {"secret": SECRET}}), 201)
    return {"token": token, "orders": recs, "customers": [c1, c2], "promos": [p1, p2]}


def _snapshot(api, platform, slug):
    """Everything a user sees of the tenant, without ids that legitimately change."""
    out = {}
    for t in ("orders", "customers", "promos"):
        out[t] = api.ok(api.get(f"/api/v1/tenants/{slug}/tables/{t}/records?expand=true&sort=id&limit=1000"))["records"]
    for r in out["orders"]:
        r["receipt"] = [{k: v for k, v in f.items() if k != "token"} for f in (r.get("receipt") or [])]
        for it in r.get("items") or []:
            it.pop("parent_id", None)
    tables = api.ok(api.get(f"/api/v1/tenants/{slug}/tables"))["tables"]
    out["tables"] = sorted(t["api_name"] for t in tables)
    out["fields"] = {t: [(f["api_name"], f["type"]) for f in api.ok(api.get(f"/api/v1/tenants/{slug}/tables/{t}"))["table"]["fields"]]
                     for t in ("orders", "customers", "promos")}
    out["views"] = [v["api_name"] for v in api.ok(api.get(f"/api/v1/tenants/{slug}/tables/orders/views"))["views"]]
    out["history"] = [[(h["action"], h.get("version")) for h in api.ok(api.get(
        f"/api/v1/tenants/{slug}/tables/orders/records/{r['id']}/history"))["history"]] for r in out["orders"][:4]]
    out["connectors"] = [(i["api_name"], i["connector"]) for i in api.ok(api.get(f"/api/v1/tenants/{slug}/connectors"))["installs"]]
    return out


def _check_restored(api, platform, world, slug, source_snapshot):
    got = _snapshot(api, platform, slug)
    assert got == source_snapshot
    orders = got["orders"]
    assert len(orders) == 11 and sum(len(o["items"]) for o in orders) == 33
    assert sum(len(o["promos"]) for o in orders) == 14                    # many-to-many rows
    assert {o["customer"]["id"] if isinstance(o["customer"], dict) else o["customer"] for o in orders} == {
        c["id"] for c in world["customers"]}                               # many-to-one links
    assert all(len(h) >= 2 for h in got["history"])                       # create + update history
    assert orders[0]["address"]["city"] == "杭州市" and orders[0]["tags"] == ["加急"]
    # the soft-deleted record is restorable in the new tenant
    deleted_id = world["orders"][5]["id"]
    assert api.get(f"/api/v1/tenants/{slug}/tables/orders/records/{deleted_id}").status_code == 404
    api.ok(api.post(f"/api/v1/tenants/{slug}/tables/orders/records/{deleted_id}/restore"))
    back = api.ok(api.get(f"/api/v1/tenants/{slug}/tables/orders/records/{deleted_id}?expand=true"))
    assert back["customer_name"] == "客户5" and len(back["items"]) == 3
    # the soft-deleted field comes back with its values
    fields = api.ok(api.get(f"/api/v1/tenants/{slug}/tables/orders/deleted-fields"))["fields"]
    assert [f["api_name"] for f in fields] == ["remark"]
    api.ok(api.post(f"/api/v1/tenants/{slug}/tables/orders/fields/{fields[0]['id']}/restore"))
    assert api.ok(api.get(f"/api/v1/tenants/{slug}/tables/orders/records/{world['orders'][3]['id']}"))["remark"] == "备注3"
    # the soft-deleted table too
    tables = api.ok(api.get(f"/api/v1/tenants/{slug}/deleted-tables"))["tables"]
    assert [t["api_name"] for t in tables] == ["old_notes"]
    api.ok(api.post(f"/api/v1/tenants/{slug}/tables/{tables[0]['id']}/restore"))
    assert api.ok(api.get(f"/api/v1/tenants/{slug}/tables/old_notes/records"))["records"][0]["text"] == "旧笔记"
    # the file: same bytes under a new token
    rec0 = api.ok(api.get(f"/api/v1/tenants/{slug}/tables/orders/records/{world['orders'][0]['id']}"))
    [f] = rec0["receipt"]
    assert f["token"] != world["token"] or slug == "acme"
    body = api.get(f"/api/v1/tenants/{slug}/attachments/{f['token']}")
    assert body.status_code == 200 and body.data == b"%PDF-1.4 receipt \xe4\xb8\xad"
    # writes continue: ids do not collide with restored ones, autonumbers continue
    new = api.ok(api.post(f"/api/v1/tenants/{slug}/tables/orders/records", json={"customer_name": "新客户",
                                                                                    "items": [{"sku": "N-1"}]}), 201)
    assert new["id"] > max(o["id"] for o in orders)
    assert new["order_no"] not in {o["order_no"] for o in orders}
    # connector credentials are still encrypted and decrypt with the same key
    with platform.tenant_session(platform.tenant_by_slug(slug).id) as s:
        inst = s.scalar(select(ConnectorInstall))
        assert SECRET not in inst.credentials
        from zhongshu.connectors.service import keys
        assert keys.cipher(platform).decrypt(inst.credentials) == {"secret": SECRET}


def test_round_trip_into_a_new_tenant_on_the_same_database(app, platform, owner, world, tmp_path):
    before = _snapshot(owner, platform, "acme")
    m = backup_tenant(platform, "acme", tmp_path / "acme.zip")
    assert m["counts"]["record_history"] > 0 and m["counts"]["attachments"] == 1
    names = zipfile.ZipFile(tmp_path / "acme.zip").namelist()
    assert "manifest.json" in names and f"files/{world['token']}" in names
    assert SECRET not in (tmp_path / "acme.zip").read_bytes().decode("latin-1")  # credentials stay encrypted
    res = restore_tenant(platform, tmp_path / "acme.zip", "acme-copy", owner_email="owner@acme.test")
    assert res["counts"]["records:orders"] == 12  # the soft-deleted one included
    # the source tenant is untouched and both live side by side
    assert _snapshot(owner, platform, "acme") == before
    _check_restored(owner, platform, world, "acme-copy", before)
    assert _snapshot(owner, platform, "acme")["orders"] == before["orders"]
    # the new install got a new webhook URL
    urls = {i["webhook_url"] for s in ("acme", "acme-copy")
            for i in owner.ok(owner.get(f"/api/v1/tenants/{s}/connectors"))["installs"]}
    assert len(urls) == 2


def test_restore_refuses_an_existing_slug_and_a_foreign_file(platform, owner, world, tmp_path):
    import click

    backup_tenant(platform, "acme", tmp_path / "a.zip")
    with pytest.raises(click.ClickException):
        restore_tenant(platform, tmp_path / "a.zip", "acme")
    bogus = tmp_path / "b.zip"
    with zipfile.ZipFile(bogus, "w") as z:
        z.writestr("manifest.json", json.dumps({"format": "other"}))
    with pytest.raises(click.ClickException):
        restore_tenant(platform, bogus, "other")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_round_trip_from_sqlite_to_postgresql_through_the_cli(app, platform, owner, world, tmp_path, pg_database, monkeypatch):
    before = _snapshot(owner, platform, "acme")
    archive = tmp_path / "acme.zip"
    env = {"ZHONGSHU_DATABASE_URL": platform.config["DATABASE_URL"], "ZHONGSHU_DATA_DIR": platform.config["DATA_DIR"],
           "ZHONGSHU_SECRET_KEY": "test-secret"}
    from zhongshu.platform.cli import main

    r = CliRunner().invoke(main, ["backup", "--tenant", "acme", str(archive)], env=env)
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "credential key" in r.output
    # a fresh PostgreSQL database, a different data dir, the same credential key
    pg = create_engine(pg_database, isolation_level="AUTOCOMMIT")
    with pg.connect() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    pg.dispose()
    data2 = tmp_path / "pg-instance"
    data2.mkdir()
    key_file = Path(platform.config["DATA_DIR"]) / "credential_keys"
    (data2 / "credential_keys").write_text(key_file.read_text())
    cfg2 = {"DATABASE_URL": pg_database, "DATA_DIR": str(data2), "SECRET_KEY": "test-secret", "RUN_WORKER": False,
            "RUN_SCHEDULER": False}
    zs2 = Platform(cfg2)
    zs2.create_all()
    zs2.create_user("owner@acme.test", "owner-password", name="Owner")
    env2 = {"ZHONGSHU_DATABASE_URL": pg_database, "ZHONGSHU_DATA_DIR": str(data2), "ZHONGSHU_SECRET_KEY": "test-secret"}
    r = CliRunner().invoke(main, ["restore", str(archive), "--tenant", "acme-pg", "--owner", "owner@acme.test"], env=env2)
    assert r.exit_code == 0, r.output
    assert "restored tenant acme-pg" in r.output
    from zhongshu.platform.app import create_app

    app2 = create_app(cfg2, platform=zs2)
    api2 = login(app2, "owner@acme.test", "owner-password", "acme-pg")
    try:
        _check_restored(api2, zs2, world, "acme-pg", before)
    finally:
        zs2.close()

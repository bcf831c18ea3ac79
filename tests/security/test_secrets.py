"""Connector credentials: encrypted at rest (read straight from the database row), never in
API output, never in logs or stored errors when an action fails, and key rotation (rotate →
old rows still decrypt → re-encrypt) — complementing tests/connectors/test_service_installs.py."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from zhongshu.connectors.api import CredentialCipher, generate_key
from zhongshu.connectors.service import keys
from zhongshu.connectors.service.actions import enqueue_action

from tests.reliability.conftest import free_port

ROBOT_TOKEN = "robot-access-token-7f3a9c1e5b"
SIGN_SECRET = "SECsign-9d8c7b6a5f4e3d2c1b0a"
HOOK_SECRET = "whsec-never-logged-0123456789"


@pytest.fixture
def installs(owner):
    port = free_port()  # nothing listens there: every delivery fails
    owner.ok(owner.post("/connectors", json={
        "connector": "dingtalk", "api_name": "ops_group",
        "credentials": {"webhook_url": f"http://127.0.0.1:{port}/robot/send?access_token={ROBOT_TOKEN}",
                        "secret": SIGN_SECRET}}), 201)
    owner.ok(owner.post("/connectors", json={"connector": "webhook", "api_name": "miniapp",
                                             "config": {"channel": "小程序"}, "credentials": {"secret": HOOK_SECRET}}), 201)
    return port


SECRETS = (ROBOT_TOKEN, SIGN_SECRET, HOOK_SECRET)


def test_the_database_row_holds_only_ciphertext(platform, installs):
    with platform.engine.connect() as c:
        rows = c.execute(text("SELECT api_name, credentials, config FROM connector_installs ORDER BY id")).all()
    assert len(rows) == 2
    for name, cred, config in rows:
        raw = f"{cred} {config}"
        assert cred.startswith("gAAAA")  # a Fernet token
        assert not any(s in raw for s in SECRETS), name
    dump = " ".join(str(v) for r in rows for v in r)
    assert not any(s in dump for s in SECRETS)


def test_no_api_output_contains_a_credential(owner, installs):
    for path in ("/connectors", "/connectors/ops_group", "/connectors/miniapp", "/audit", "/outbox"):
        r = owner.get(path)
        if r.status_code == 404:
            continue
        body = r.get_data(as_text=True)
        assert not any(s in body for s in SECRETS), path


def test_a_failing_action_logs_and_stores_no_credential(owner, platform, installs, caplog):
    from zhongshu.runtime.worker import drain

    caplog.set_level(logging.DEBUG)
    t = platform.tenant_by_slug("acme")
    with platform.tenant_session(t.id, write=True) as s:
        enqueue_action(s.connection(), tenant_id=t.id, install="ops_group", action="send_message",
                       input={"msgtype": "text", "content": "订单超时", "data": {}}, key="fail-1")
    drain(platform)
    with platform.engine.connect() as c:
        status, error, result = c.execute(text("SELECT status, last_error, result FROM outbox")).one()
    assert status in ("pending", "dead") and error  # it did fail (connection refused), retry later
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert caplog.records, "expected the failure to be logged"
    for s in SECRETS:
        assert s not in logged, f"secret in logs: {s}"
        assert s not in (error or "") and s not in str(result), f"secret in the stored error: {s}"
    listing = owner.get("/outbox").get_data(as_text=True) if owner.get("/outbox").status_code == 200 else ""
    assert not any(s in listing for s in SECRETS)


def test_rotation_keeps_old_rows_readable_then_reencrypts_them(platform, installs, monkeypatch):
    with platform.engine.connect() as c:
        before = dict(c.execute(text("SELECT api_name, credentials FROM connector_installs")).all())
    old_keys = keys.load_keys(platform)
    new = generate_key()
    # 1. a new key first, the old one kept: old rows still decrypt
    monkeypatch.setenv("ZHONGSHU_SECRET_KEYS", ",".join([new, *old_keys]))
    c2 = keys.cipher(platform)
    assert c2.decrypt(before["ops_group"])["secret"] == SIGN_SECRET
    assert c2.needs_rotation(before["ops_group"])
    # 2. re-encrypt everything under the new key
    out = keys.rotate_credentials(platform)
    assert out["rotated"] == 2 and out["failed"] == []
    with platform.engine.connect() as c:
        after = dict(c.execute(text("SELECT api_name, credentials FROM connector_installs")).all())
    assert after["ops_group"] != before["ops_group"]
    # 3. the old key removed: the rotated rows decrypt with the new key alone, the old copies do not
    only_new = CredentialCipher([new])
    assert only_new.decrypt(after["miniapp"]) == {"secret": HOOK_SECRET}
    with pytest.raises(Exception):
        only_new.decrypt(before["miniapp"])
    assert keys.rotate_credentials(platform)["rotated"] == 0  # idempotent

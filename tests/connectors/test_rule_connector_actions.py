"""A rule's notify / call_connector names an action of the install's connector and gives it an
input that matches the action's input schema: checked when the rule is saved (400 naming the
JSON pointer and listing the valid actions). Rules saved before that check (or before their
install existed) stay loadable: the install re-check switches them off with the reason."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from zhongshu.runtime.models import OutboxJob

TABLE = {"api_name": "orders", "fields": [{"api_name": "order_no", "type": "text"},
                                          {"api_name": "amount", "type": "number"}]}
DING = {"connector": "dingtalk", "api_name": "ding",
        "credentials": {"webhook_url": "https://oapi.dingtalk.com/robot/send?access_token=t"}}
GOOD = {"type": "notify", "connector": "ding", "action": "send_message",
        "input": {"msgtype": "text", "content": "新订单 {{ record.order_no }}"}}


@pytest.fixture
def shop(owner):
    owner.ok(owner.post("/tables", json=TABLE), 201)
    owner.ok(owner.post("/connectors", json=DING), 201)
    return owner


def rule(actions, name="notify_ops", **extra):
    return {"api_name": name, "table": "orders", "trigger": {"type": "record_created"}, "actions": actions, **extra}


def refused(api, doc) -> list[dict]:
    r = api.post("/rules", json=doc)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert api.get(f"/rules/{doc['api_name']}").status_code == 404  # nothing stored
    return r.get_json()["error"]["errors"]


def test_an_action_the_connector_does_not_have_is_refused_naming_the_pointer_and_the_valid_actions(shop):
    [e] = refused(shop, rule([{**GOOD, "action": "send_markdown"}]))
    assert e["pointer"] == "/actions/0/action"
    assert "no action 'send_markdown'" in e["message"] and "send_message" in e["message"]
    assert e["valid_actions"] == ["send_message"]
    # anywhere in the rule: the else branch, call_connector too
    [e] = refused(shop, rule([GOOD], **{"else": [{**GOOD, "type": "call_connector", "action": "nope"}]}))
    assert e["pointer"] == "/else/0/action"


def test_an_input_that_does_not_match_the_actions_schema_is_refused(shop):
    errors = refused(shop, rule([{**GOOD, "input": {"msgtype": "html", "content": "x"}}]))
    assert [e["pointer"] for e in errors] == ["/actions/0/input/msgtype"]
    assert "'html' is not one of" in errors[0]["message"]
    errors = refused(shop, rule([{**GOOD, "input": {"content": "x", "at": {"isAtAll": "yes"}}}]))
    assert sorted(e["pointer"] for e in errors) == ["/actions/0/input", "/actions/0/input/at/isAtAll"]


def test_a_right_rule_is_saved_and_a_template_stands_for_a_value_known_at_run_time(shop, platform):
    shop.ok(shop.post("/rules", json=rule([GOOD])), 201)
    # an enum given as a template can only be checked once rendered: accepted
    shop.ok(shop.post("/rules", json=rule([{**GOOD, "input": {"msgtype": "{{ 'text' }}", "content": "x"}}], name="r2")), 201)
    shop.ok(shop.post("/tables/orders/records", json={"order_no": "SO-1"}), 201)
    with platform.tenant_session(None) as s:
        assert len(s.scalars(select(OutboxJob).where(OutboxJob.kind == "connector.action")).all()) == 2


def test_an_install_that_does_not_exist_yet_is_not_checked(shop):
    # a template saves its rules before its connectors are set up (and leaves them off)
    shop.ok(shop.post("/rules", json=rule([{**GOOD, "connector": "later", "action": "whatever"}])), 201)


def test_a_rule_saved_before_the_check_stays_loadable_and_the_install_recheck_switches_it_off(shop, platform, monkeypatch):
    import zhongshu.runtime.rules.api as rules_api

    with monkeypatch.context() as m:  # as saved by an earlier version, without the check
        m.setattr(rules_api, "check_connector_actions", lambda *a: None)
        shop.ok(shop.post("/rules", json=rule([{**GOOD, "action": "send_markdown"}], name="old")), 201)
    # loads and runs: a record can be saved
    shop.ok(shop.post("/tables/orders/records", json={"order_no": "SO-1"}), 201)
    assert shop.ok(shop.get("/rules/old"))["rule"]["enabled"] is True

    # the install re-check (any save of the install) switches it off with the reason
    out = shop.ok(shop.patch("/connectors/ding", json={"enabled": True}))
    reason = "invalid connector action (ding): /actions/0/action: connector 'ding' (dingtalk) has no action 'send_markdown'; its actions: send_message"
    assert out["rules"] == {"enabled": [], "still_off": [{"rule": "old", "reason": reason}]}
    got = shop.ok(shop.get("/rules/old"))["rule"]
    assert (got["enabled"], got["disabled_reason"]) == (False, reason)
    assert shop.ok(shop.get("/rules"))["rules"][0]["api_name"] == "old"  # listed, with the reason

    # switching it on while it is still wrong: 400 with the pointer
    r = shop.patch("/rules/old", json={"enabled": True})
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == "/actions/0/action"
    # fixing the action switches it on again
    got = shop.ok(shop.patch("/rules/old", json={"actions": [GOOD]}))["rule"]
    assert (got["enabled"], got["disabled_reason"]) == (True, None)


def test_a_template_rule_waiting_for_its_install_stays_off_when_its_action_is_wrong(owner, platform):
    from pathlib import Path

    from zhongshu.platform.templates_engine import install_template
    from zhongshu.runtime.models import Rule

    install_template(platform, platform.tenant_by_slug("acme").id,
                     Path(__file__).parents[1] / "platform" / "template_fixtures" / "shop")
    with platform.tenant_session(platform.tenant_by_slug("acme").id, write=True) as s:
        r = s.scalar(select(Rule).where(Rule.api_name == "big_order"))
        assert r.disabled_reason == "connector dingtalk_ops not configured"
        d = dict(r.definition)
        d["actions"] = [{**a, "action": "send_card"} if a.get("type") == "notify" else a for a in d["actions"]]
        r.definition = d  # the template's author misspelt the action
    out = owner.ok(owner.post("/connectors", json={**DING, "api_name": "dingtalk_ops"}), 201)
    assert out["rules"]["enabled"] == []
    [off] = out["rules"]["still_off"]
    assert off["rule"] == "big_order" and off["reason"].startswith("invalid connector action (dingtalk_ops): /actions/")
    assert "no action 'send_card'" in off["reason"]


def test_another_tenants_install_of_the_same_name_is_not_looked_at(shop, app, platform):
    from tests.conftest import login

    u = platform.create_user("owner@beta.test", "owner-password")
    platform.create_tenant("beta", "Beta", owner_email=u.email)
    beta = login(app, "owner@beta.test", "owner-password", "beta")
    beta.ok(beta.post("/connectors", json={"connector": "wecom", "api_name": "ding", "credentials": {"key": "wecom-key-123"}}), 201)
    # acme's 'ding' is DingTalk: an actionCard is right there (WeCom has no actionCard)
    shop.ok(shop.post("/rules", json=rule([{**GOOD, "input": {"msgtype": "actionCard", "title": "t", "text": "x",
                                                               "single_title": "看", "single_url": "https://zs.example"}}])), 201)
    beta.ok(beta.post("/tables", json=TABLE), 201)
    [e] = refused(beta, rule([{**GOOD, "input": {"msgtype": "actionCard", "title": "t", "text": "x"}}]))
    assert e["pointer"] == "/actions/0/input/msgtype"

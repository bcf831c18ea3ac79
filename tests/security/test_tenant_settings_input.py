"""Tenant settings refuse values that would break what is built from them (an export's
template manifest carries the tenant's locale and name): 400 with a pointer, nothing saved."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("body, pointer", [
    ({"locale": "en_US"}, "/locale"), ({"locale": "中文"}, "/locale"), ({"locale": None}, "/locale"), ({"locale": 7}, "/locale"),
    ({"name": ""}, "/name"), ({"name": "   "}, "/name"), ({"name": "x" * 101}, "/name"), ({"name": 5}, "/name"),
    ({"name": None}, "/name"),
])
def test_bad_tenant_settings_are_refused(owner, body, pointer):
    r = owner.patch("", json=body)
    assert r.status_code == 400 and r.get_json()["error"]["errors"][0]["pointer"] == pointer
    t = owner.ok(owner.get(""))["tenant"]
    assert (t["name"], t["locale"]) == ("Acme 商贸", "zh-CN")


def test_good_settings_are_saved_and_the_export_manifest_stays_valid(owner):
    from zhongshu.platform.validation import schema
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    owner.ok(owner.patch("", json={"locale": "en", "name": "n" * 100}))
    manifest = owner.ok(owner.get("/export"))["manifest"]
    names = ("template_manifest", "table", "app")
    registry = Registry().with_resources((schema(n)["$id"], Resource.from_contents(schema(n))) for n in names)
    Draft202012Validator(schema("template_manifest"), registry=registry).validate(manifest)
    assert manifest["default_locale"] == "en"

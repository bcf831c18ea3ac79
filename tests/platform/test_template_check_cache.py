"""Installing one template into many tenants checks it once: a successful check is kept by
the template's content, and definitions that passed JSON Schema validation are kept by
their canonical JSON. Only successes are kept: a file changed on disk is checked again,
and an error is reported on every install that has it."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from zhongshu.platform.errors import ValidationFailed
from zhongshu.platform.templates_engine import TemplateInvalid, install_template
from zhongshu.platform.validation import errors_for, validate

SHOP = Path(__file__).parent / "template_fixtures" / "shop"


def tenant(platform, slug):
    return platform.tenant_by_slug(slug) or platform.create_tenant(slug, slug)


def installed_tables(platform, tenant_id) -> int:
    from sqlalchemy import func, select

    from zhongshu.platform.models import UserTable

    with platform.tenant_session(tenant_id) as s:
        return s.scalar(select(func.count()).select_from(UserTable))


def test_a_template_changed_on_disk_after_an_install_is_checked_again(platform, tmp_path):
    tpl = tmp_path / "shop"
    shutil.copytree(SHOP, tpl)
    first = tenant(platform, "first")
    assert install_template(platform, first.id, tpl)["created"]["tables"]

    # The same size class of edit, and the file keeps its modification time: the check must
    # not rely on the time stamp.
    products = tpl / "tables" / "products.json"
    stat = products.stat()
    good = products.read_text("utf-8")
    doc = json.loads(good)
    doc["fields"][2]["type"] = "no_such_type"
    products.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    os.utime(products, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    second = tenant(platform, "second")
    for _ in range(2):  # reported on every attempt, not only the first
        with pytest.raises(TemplateInvalid) as e:
            install_template(platform, second.id, tpl)
        p = e.value.problems[0]
        assert (p["file"], p["pointer"]) == ("tables/products.json", "/fields/2/type"), e.value.lines()
    assert installed_tables(platform, second.id) == 0

    products.write_text(good, "utf-8")  # fixed: installs again
    assert install_template(platform, second.id, tpl)["created"]["tables"]


def test_a_sample_data_file_removed_after_an_install_is_reported(platform, tmp_path):
    tpl = tmp_path / "shop"
    shutil.copytree(SHOP, tpl)
    install_template(platform, tenant(platform, "first").id, tpl)
    (tpl / "sample.py").unlink()
    with pytest.raises(TemplateInvalid) as e:
        install_template(platform, tenant(platform, "second").id, tpl)
    assert (e.value.problems[0]["file"], e.value.problems[0]["pointer"]) == ("manifest.json", "/sample_data")


def test_a_definition_that_passed_is_still_checked_after_it_changes():
    table = {"api_name": "notes", "fields": [{"api_name": "body", "type": "text"}]}
    assert errors_for("table", table) == []
    assert errors_for("table", table) == []
    table["fields"][0]["type"] = 5  # the same object, changed in place
    assert errors_for("table", table)
    with pytest.raises(ValidationFailed):
        validate("table", table)
    with pytest.raises(ValidationFailed):  # failures are not remembered as anything
        validate("table", table)
    table["fields"][0]["type"] = "text"
    validate("table", table)


def test_a_list_and_a_tuple_with_the_same_json_are_not_confused():
    # JSON Schema's "array" is a list; a tuple serialises to the same JSON text, so it must not
    # borrow the list's cached success.
    assert errors_for("table", {"api_name": "notes", "fields": [{"api_name": "body", "type": "text"}]}) == []
    assert errors_for("table", {"api_name": "notes", "fields": ({"api_name": "body", "type": "text"},)})

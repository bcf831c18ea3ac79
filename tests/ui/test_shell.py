"""The builder's shell without a browser: CSP, static files, vendored files, catalogues."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[2] / "builder_ui"
JS = UI / "static" / "js"


@pytest.fixture
def client(tmp_path):
    from zhongshu.platform.app import create_app
    from zhongshu.platform.core import Platform

    cfg = {"DATABASE_URL": f"sqlite:///{tmp_path / 'ui.db'}", "DATA_DIR": str(tmp_path), "SECRET_KEY": "x",
           "RUN_WORKER": False, "RUN_SCHEDULER": False}
    p = Platform(cfg)
    p.create_all()
    yield create_app(cfg, platform=p).test_client()
    p.close()


def test_the_shell_is_served_with_a_strict_csp_and_no_inline_script(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    html = r.get_data(as_text=True)
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []  # every script has a src
    assert 'rel="modulepreload"' in html and "echarts.esm" not in html  # ECharts loads on first chart
    assert r.headers["Cache-Control"] == "no-store"


def test_modules_and_vendored_files_are_served_as_javascript(client):
    for path in ["/ui/static/js/main.js", "/ui/static/vendor/vue.esm-browser.prod.js", "/ui/static/vendor/echarts.esm.min.js"]:
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith("text/javascript"), path
    assert client.get("/ui/static/../blueprint.py").status_code == 404
    assert client.get("/api/v1/health").get_json() == {"ok": True}  # the API is untouched


def test_vendored_files_match_their_recorded_checksums_and_carry_licences():
    vendor = UI / "static" / "vendor"
    manifest = json.loads((vendor / "VENDOR.json").read_text())
    names = {p["package"] for p in manifest["packages"]}
    assert {"vue", "sortablejs", "echarts"} <= names
    for p in manifest["packages"]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", p["version"]), p  # pinned
        assert p["license"] and (vendor / p["license_file"]).stat().st_size > 200
        for name, f in p["files"].items():
            assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == f["sha256"], name


def test_every_message_key_used_exists_in_both_catalogues():
    src = (JS / "i18n.js").read_text()
    zh_part, en_part = src.split("const en = {")
    zh = set(re.findall(r"'([a-z_]+\.[^']+)':", zh_part))
    en = set(re.findall(r"'([a-z_]+\.[^']+)':", en_part))
    assert zh == en, {"only zh": zh - en, "only en": en - zh}
    used = set()
    for f in JS.glob("*.js"):
        used |= set(re.findall(r"\bt\('([a-z_]+\.[a-z_0-9]+)'", f.read_text()))
    prefixes = {k for k in used if k.endswith("_")}  # t('dash.t_' + type): built at run time
    assert used - prefixes - zh == set()
    assert all(any(k.startswith(p) for k in zh) for p in prefixes)


def test_builder_ui_stays_a_namespace_portion():
    assert not (UI / "__init__.py").exists()

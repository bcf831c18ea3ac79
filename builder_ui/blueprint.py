"""The browser builder: one HTML shell (Jinja) + ES modules and vendored libraries.

Everything the UI does goes through the public REST API (/api/v1); this blueprint only
serves files. The shell is sent with a strict Content-Security-Policy: scripts only from
this origin, no inline script, no eval (Vue components are render functions written with
htm, so Vue's runtime template compiler, which needs eval, is never used).
"""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, render_template, send_from_directory

HERE = Path(__file__).parent
STATIC = HERE / "static"

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",  # Vue and ECharts set styles through the CSSOM, which the CSP allows
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

ui = Blueprint("builder_ui", __name__, template_folder="templates", static_folder=None)


def _vendor_versions() -> dict:
    try:
        data = json.loads((STATIC / "vendor" / "VENDOR.json").read_text())
        return {p["package"]: p["version"] for p in data["packages"]}
    except (OSError, ValueError, KeyError):
        return {}


# Modules the shell preloads, so the browser fetches the whole import graph at once instead of
# discovering it level by level (ECharts is left out: it loads on the first chart).
PRELOAD = ["vendor/vue.esm-browser.prod.js", "vendor/htm.module.js", "vendor/sortable.esm.js", "js/lib.js", "js/i18n.js",
           "js/fields.js", "js/filter.js", "js/grid.js", "js/record.js", "js/kanban.js", "js/designer.js", "js/rules.js",
           "js/dashboards.js", "js/admin.js", "js/views_extra.js", "js/rule_condition.js", "js/members.js", "js/permissions.js"]
PRELOAD.append("js/rule_filter.js")  # rule actions' filters, sorts and approver picker


@ui.get("/")
def index():
    return ui_response(render_template("builder_ui/index.html", vendor=_vendor_versions(), preload=PRELOAD))


@ui.get("/ui/static/<path:filename>")
def static(filename):
    resp = send_from_directory(STATIC, filename, max_age=0)  # revalidated by ETag; no build step, no hashes
    if filename.endswith(".js"):
        resp.headers["Content-Type"] = "text/javascript; charset=utf-8"
    return resp


def ui_response(body: str):
    from flask import make_response

    resp = make_response(body)
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Cache-Control"] = "no-store"
    return resp


__all__ = ["ui", "CSP"]

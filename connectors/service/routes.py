"""REST routes of connectors (registered on the /api/v1 blueprint).

* ``GET  /api/v1/connectors`` — installed connector plugins (manifests) and load failures.
* ``GET|POST /api/v1/tenants/<tenant>/connectors`` — the tenant's installs (admin).
* ``GET|PATCH|DELETE /api/v1/tenants/<tenant>/connectors/<api_name>`` (admin).
* ``POST /api/v1/tenants/<tenant>/connectors/<api_name>/test`` — connection test (admin).
* ``GET  /api/v1/tenants/<tenant>/connectors/<api_name>/inbox?status=`` and
  ``GET /api/v1/tenants/<tenant>/inbox?status=`` — the inbox / error list (admin).
* ``POST /api/v1/tenants/<tenant>/inbox/<id>/retry`` — process an error entry again (admin).
* ``POST /api/v1/hooks/<hook_token>`` — public webhook intake; the token names tenant + install
  (answered in front of Flask by hook_wsgi.HookRoute; the Flask route below is its twin).
"""
from __future__ import annotations

from datetime import timezone

from flask import Response, g, request
from sqlalchemy import select

from zhongshu.platform.api.base import (PUBLIC_ENDPOINTS, ApiError, api, body_object, int_arg, ok, platform,
                                        require_role)
from zhongshu.platform.models import utcnow
from zhongshu.runtime.models import ConnectorInstall, InboxEvent

from . import installs as svc
from .intake import HookResult, forget_hook, handle_webhook, inbox_json, retry_inbox, webhook_max_bytes

INBOX_STATUSES = ("received", "processed", "duplicate", "error")


def _base_url() -> str:
    """Where senders reach this server: config PUBLIC_URL / ZHONGSHU_PUBLIC_URL (behind a
    reverse proxy), else the URL of the current request."""
    import os
    return (platform().config.get("PUBLIC_URL") or os.environ.get("ZHONGSHU_PUBLIC_URL")
            or request.url_root).rstrip("/")


def _install_json(inst) -> dict:
    return svc.install_json(platform(), inst, base_url=_base_url())


@api.get("/connectors")
def connector_catalog():
    """Installed connector plugins with their manifests, and the ones that failed to load."""
    return ok(svc.catalog(platform()))


@api.get("/tenants/<tenant>/connectors")
def list_connector_installs():
    """The tenant's connector installs (admin; credentials redacted)."""
    require_role("admin")
    rows = g.db.scalars(select(ConnectorInstall).where(ConnectorInstall.tenant_id == g.tenant.id)
                        .order_by(ConnectorInstall.api_name)).all()
    return ok({"installs": [_install_json(i) for i in rows]})


@api.post("/tenants/<tenant>/connectors")
def create_connector_install():
    """Install a connector for the tenant (admin)."""
    require_role("admin")
    inst = svc.create_install(platform(), g.db, body_object())
    rules = svc.recheck_rules(platform(), g.db, inst.api_name)
    return ok({"install": _install_json(inst), "rules": rules}, 201)


@api.get("/tenants/<tenant>/connectors/<api_name>")
def get_connector_install(api_name):
    """One install (admin; credentials redacted)."""
    require_role("admin")
    return ok({"install": _install_json(svc.get_install(g.db, api_name))})


@api.patch("/tenants/<tenant>/connectors/<api_name>")
def update_connector_install(api_name):
    """Change config/credentials (merged), enable/disable, rotate the webhook token (admin)."""
    require_role("admin")
    inst = svc.update_install(platform(), g.db, svc.get_install(g.db, api_name), body_object())
    forget_hook(platform(), None)  # this process reads the install again at the next webhook
    rules = svc.recheck_rules(platform(), g.db, inst.api_name)
    return ok({"install": _install_json(inst), "rules": rules})


@api.delete("/tenants/<tenant>/connectors/<api_name>")
def delete_connector_install(api_name):
    """Remove an install (admin). Its inbox entries stay for review."""
    require_role("admin")
    g.db.delete(svc.get_install(g.db, api_name))
    forget_hook(platform(), None)
    return ok({"ok": True})


@api.post("/tenants/<tenant>/connectors/<api_name>/test")
def test_connector_install(api_name):
    """Run the connector's connection test with the stored settings (admin)."""
    require_role("admin")
    zs = platform()
    # read with a short read-only session: no write transaction is held during the remote call
    with zs.tenant_session(g.tenant.id) as s:
        inst = svc.get_install(s, api_name)
        inst_id, connector_name, config = inst.id, inst.connector, dict(inst.config or {})
        try:
            credentials = svc.decrypt(zs, inst)
            error = None
        except Exception as e:  # noqa: BLE001 - DecryptionError: reported as a failed test
            credentials, error = {}, str(e)
    started = utcnow()
    if error is None:
        try:
            res = svc.connector_for(zs, connector_name).test_connection(config, credentials)
            result = {"ok": bool(res.ok), "message": res.message, "details": res.details or {}}
        except Exception as e:  # noqa: BLE001 - a test never 500s
            result = {"ok": False, "message": f"{type(e).__name__}: {e}", "details": {}}
    else:
        result = {"ok": False, "message": error, "details": {}}
    result["at"] = started.replace(tzinfo=timezone.utc).isoformat().replace("+00:00", "Z")
    result["duration_ms"] = round((utcnow() - started).total_seconds() * 1000, 1)
    inst = g.db.scalar(select(ConnectorInstall).where(ConnectorInstall.tenant_id == g.tenant.id,
                                                      ConnectorInstall.id == inst_id))
    if inst is not None:
        inst.last_test = result
    return ok({"result": result})


def _inbox_page(install_id: int | None):
    status = request.args.get("status") or None
    if status is not None and status not in INBOX_STATUSES:
        raise ApiError(f"status must be one of {', '.join(INBOX_STATUSES)}",
                       message_zh=f"status 应为 {', '.join(INBOX_STATUSES)} 之一", code="bad_parameter")
    limit = int_arg("limit", 50, 1, 500)
    before = int_arg("before", None, 1)
    q = select(InboxEvent).where(InboxEvent.tenant_id == g.tenant.id)
    if install_id is not None:
        q = q.where(InboxEvent.install_id == install_id)
    if status:
        q = q.where(InboxEvent.status == status)
    if before:
        q = q.where(InboxEvent.id < before)
    rows = g.db.scalars(q.order_by(InboxEvent.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return ok({"entries": [inbox_json(r) for r in rows], "has_more": more,
               "next_before": rows[-1].id if more and rows else None})


@api.get("/tenants/<tenant>/connectors/<api_name>/inbox")
def connector_inbox(api_name):
    """An install's inbox, newest first; ``?status=error`` is the reviewable error list (admin)."""
    require_role("admin")
    return _inbox_page(svc.get_install(g.db, api_name).id)


@api.get("/tenants/<tenant>/inbox")
def tenant_inbox():
    """The tenant's whole inbox (all installs), newest first, filterable by status (admin)."""
    require_role("admin")
    return _inbox_page(None)


@api.post("/tenants/<tenant>/inbox/<int:inbox_id>/retry")
def retry_inbox_entry(inbox_id):
    """Process an inbox entry in status error again (admin)."""
    require_role("admin")
    row = retry_inbox(g.db, inbox_id)
    return ok({"entry": inbox_json(row)})


@api.post("/hooks/<hook_token>")
def connector_webhook(hook_token):
    """Public webhook intake of one install (the token identifies tenant and install)."""
    zs = platform()
    limit = webhook_max_bytes(zs)
    if request.content_length is not None and request.content_length > limit:
        res = HookResult.error(413, "too_large", f"the body exceeds {limit} bytes")
    else:
        raw = request.stream.read(limit + 1)
        if len(raw) > limit:
            res = HookResult.error(413, "too_large", f"the body exceeds {limit} bytes")
        else:
            res = handle_webhook(zs, hook_token, request.headers, raw)
    resp = Response(res.body, status=res.status, content_type=res.content_type)
    for k, v in (res.headers or {}).items():
        resp.headers[k] = v
    resp.headers["Cache-Control"] = "no-store"
    return resp


PUBLIC_ENDPOINTS.add("api_v1.connector_webhook")


@api.record_once
def _hook_route_in_front(state):
    """Webhook POSTs are answered in front of Flask (hook_wsgi.py: same checks and answers,
    none of the API's per-request hooks); the route above stays for everything else."""
    from .hook_wsgi import install
    install(state.app)


def _document() -> None:
    """Describe the routes in the OpenAPI document (platform/api/openapi.py reads OPERATIONS)."""
    try:
        from zhongshu.platform.api import openapi as oa
    except ImportError:  # pragma: no cover
        return
    S, I, B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    obj = {"type": "object"}
    install = {"type": "object", "properties": {
        "id": I, "connector": S, "api_name": S, "enabled": B, "available": B, "version": {"type": ["string", "null"]},
        "config": obj, "credentials": {"type": ["object", "null"], "description": "Redacted: secrets are shown as ••••••"},
        "webhook_url": {"type": ["string", "null"]}, "supports_webhook": B, "supports_pull": B,
        "cursor": {}, "last_pull_at": {"type": ["string", "null"]},
        "last_pull_error": {"type": ["string", "null"], "description": "Why the last scheduled pull failed; null after a successful one"},
        "last_event_at": {"type": ["string", "null"], "description": "When an inbound event was last accepted (to the second)"},
        "last_test": {"type": ["object", "null"]}, "created_at": S}}
    rules = {"type": "object", "description": "Rules left off for this connector, re-checked after the save",
             "properties": {"enabled": {"type": "array", "items": S},
                            "still_off": {"type": "array", "items": {"type": "object", "properties": {
                                "rule": S, "reason": S}}}}}
    entry = {"type": "object", "properties": {
        "id": I, "install_id": {"type": ["integer", "null"]}, "status": {"enum": list(INBOX_STATUSES)},
        "error": {"type": ["string", "null"]}, "event_type": {"type": ["string", "null"]},
        "external_id": {"type": ["string", "null"]}, "global_id": {"type": ["string", "null"]},
        "record_id": {"type": ["integer", "null"]}, "received_at": S, "processed_at": {"type": ["string", "null"]},
        "payload": {}, "body": S, "body_bytes": I, "headers": obj}}
    page = {"type": "object", "properties": {"entries": {"type": "array", "items": entry}, "has_more": B,
                                             "next_before": {"type": ["integer", "null"]}}}
    oa.QUERY_PARAMS.setdefault("inbox_status", {
        "name": "status", "description": "Only entries in this status (`error` is the list to review).",
        "schema": {"enum": list(INBOX_STATUSES)}})
    oa.QUERY_PARAMS.setdefault("inbox_limit", {"name": "limit", "description": "Entries per page (newest first).",
                                               "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}})
    oa.PATH_DOCS.setdefault("api_name", "An api_name (e.g. `shopify_main`).")
    oa.PATH_DOCS.setdefault("hook_token", "The install's webhook token (from its `webhook_url`).")
    oa.PATH_DOCS.setdefault("inbox_id", "The id of an inbox entry.")
    tags = ["connectors"]
    body = {"type": "object", "properties": {"connector": S, "api_name": S, "config": obj, "credentials": obj,
                                             "enabled": B}, "required": ["connector"]}
    patch = {"type": "object", "properties": {"config": obj, "credentials": obj, "enabled": B,
                                              "rotate_webhook_token": B}}
    oa.OPERATIONS.update({
        "api_v1.connector_catalog": {
            "summary": "Installed connector plugins (manifests) and load failures", "tags": tags,
            "response": {"type": "object", "properties": {"connectors": {"type": "array", "items": obj},
                                                          "failures": {"type": "array", "items": obj}}}},
        "api_v1.list_connector_installs": {"summary": "The tenant's connector installs (admin)", "tags": tags,
                                           "response": {"type": "object", "properties": {
                                               "installs": {"type": "array", "items": install}}}},
        "api_v1.create_connector_install": {
            "summary": "Install a connector (admin)", "tags": tags, "status": 201, "body": body,
            "description": "config and credentials are validated against the manifest's schemas (400 with JSON "
                           "pointers such as `/config/shop_domain`); credentials are encrypted at rest and never "
                           "returned; the response has the install's `webhook_url`. Rules left off because "
                           "this connector was missing are re-checked (`rules`).",
            "response": {"type": "object", "properties": {"install": install, "rules": rules}}},
        "api_v1.get_connector_install": {"summary": "One connector install (admin)", "tags": tags,
                                         "response": {"type": "object", "properties": {"install": install}}},
        "api_v1.update_connector_install": {
            "summary": "Change a connector install (admin)", "tags": tags, "body": patch,
            "description": "config keys are merged (null removes one); credentials are merged too: an omitted or "
                           "masked (••••••) secret keeps the stored value; `enabled` switches the install; "
                           "`rotate_webhook_token: true` issues a new webhook URL. Rules left off because this "
                           "connector was missing are re-checked (`rules`).",
            "response": {"type": "object", "properties": {"install": install, "rules": rules}}},
        "api_v1.delete_connector_install": {"summary": "Remove a connector install (admin)", "tags": tags,
                                            "response": {"type": "object", "properties": {"ok": B}}},
        "api_v1.test_connector_install": {
            "summary": "Connection test with the stored settings (admin)", "tags": tags,
            "response": {"type": "object", "properties": {"result": {"type": "object", "properties": {
                "ok": B, "message": S, "details": obj, "at": S, "duration_ms": {"type": "number"}}}}}},
        "api_v1.connector_inbox": {"summary": "An install's inbox / error list (admin)", "tags": tags,
                                   "query": ["inbox_status", "inbox_limit", "before"], "response": page},
        "api_v1.tenant_inbox": {"summary": "The tenant's inbox over all installs (admin)", "tags": tags,
                                "query": ["inbox_status", "inbox_limit", "before"], "response": page},
        "api_v1.retry_inbox_entry": {"summary": "Process an inbox entry in status error again (admin)", "tags": tags,
                                     "response": {"type": "object", "properties": {"entry": entry}}},
        "api_v1.connector_webhook": {
            "summary": "Webhook intake of a connector install (public; the token is the credential)", "tags": tags,
            "description": "The connector verifies the signature (401 and nothing stored if wrong), events are "
                           "stored in the inbox with their processing job, then the connector's own "
                           "acknowledgement is returned. 404 unknown/disabled token, 413 body over "
                           "WEBHOOK_MAX_BYTES, 4xx unreadable body (kept in the error list), 503 database "
                           "unavailable (retry).",
            "body": {}, "body_required": False, "body_type": "application/octet-stream",
            "response": {}},
    })


_document()

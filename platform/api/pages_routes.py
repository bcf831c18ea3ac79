"""Admin routes of public pages (the pages themselves are served by public_pages.py)."""
from __future__ import annotations

from flask import g
from sqlalchemy import select

from ..errors import Conflict, NotFound
from ..models import AuditLog, PublicPage
from ..public_pages import check_page
from .base import api, body_object, ok, records, require_role


def page_json(p: PublicPage) -> dict:
    return {"id": p.id, "enabled": p.enabled, **p.definition, "url": f"/p/{g.tenant.slug}/{p.slug}"}


def _page(slug) -> PublicPage:
    p = g.db.scalar(select(PublicPage).where(PublicPage.slug == slug))
    if p is None:
        raise NotFound(f"page '{slug}'", f"页面 '{slug}'")
    return p


@api.get("/tenants/<tenant>/pages")
def list_pages():
    return ok({"pages": [page_json(p) for p in g.db.scalars(select(PublicPage).order_by(PublicPage.id))]})


@api.post("/tenants/<tenant>/pages")
def create_page():
    require_role("admin")
    d = body_object()
    check_page(records(), d)
    if g.db.scalar(select(PublicPage).where(PublicPage.slug == d["slug"])):
        raise Conflict(f"a page {d['slug']} already exists", message_zh=f"页面 {d['slug']} 已存在")
    p = PublicPage(tenant_id=g.tenant.id, slug=d["slug"], definition=d, enabled=d.get("enabled", True))
    g.db.add(p)
    g.db.flush()
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="create", object_type="page", object_id=p.id, detail={"slug": p.slug}))
    return ok({"page": page_json(p)}, 201)


@api.patch("/tenants/<tenant>/pages/<slug>")
def update_page(slug):
    require_role("admin")
    p = _page(slug)
    d = {**p.definition, **body_object()}
    check_page(records(), d)
    p.definition, p.slug, p.enabled = d, d["slug"], d.get("enabled", p.enabled)
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="update", object_type="page", object_id=p.id, detail={}))
    return ok({"page": page_json(p)})


@api.delete("/tenants/<tenant>/pages/<slug>")
def delete_page(slug):
    require_role("admin")
    p = _page(slug)
    g.db.add(AuditLog(tenant_id=g.tenant.id, user_id=g.user.id, action="delete", object_type="page", object_id=p.id, detail=p.definition))
    g.db.delete(p)
    return ok({"ok": True})

"""Metadata generations: process caches that stay correct across processes.

Every change to a tenant's metadata (tables, fields, views, dashboards, rules, connector
installs...) gives the tenant a new random ``meta_stamp`` in the same transaction, from one
``before_flush`` listener, so no code path has to remember it. A process keeps what it
derived from metadata -- table lookups, active rules, dependency graphs -- under the stamp
it read at the start of a transaction; a changed stamp means "derive again". One primary-key
read per transaction replaces the dozen metadata queries a write used to make.

A transaction that changes metadata itself never uses nor fills these caches: what it sees
is not committed yet and may roll back.
"""
from __future__ import annotations

import secrets
import threading

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from .models import App, Dashboard, Field, Membership, PublicPage, Tenant, TemplateInstall, UserTable, View

#: Models whose rows are metadata; the runtime and connectors add theirs with ``watch``.
META_MODELS: set[type] = {App, Dashboard, Field, Membership, PublicPage, TemplateInstall, UserTable, View}
#: Bookkeeping columns that change often and never affect what is derived from metadata.
VOLATILE = {"cursor", "last_test", "last_pull_at", "last_pull_error", "last_event_at", "last_used_at", "updated_at"}
STAMP_KEY, DIRTY_KEY = "zs_meta_stamp", "zs_meta_dirty"


def watch(*models: type) -> None:
    META_MODELS.update(models)


def new_stamp() -> str:
    return secrets.token_hex(8)


@event.listens_for(Session, "before_flush")
def _bump_on_metadata_change(session, _ctx, _instances):
    tenants = set()
    for obj in list(session.new) + list(session.deleted):
        if type(obj) in META_MODELS:
            tenants.add(obj.tenant_id or session.info.get("tenant_id"))
    for obj in session.dirty:
        if type(obj) in META_MODELS and _really_changed(obj):
            tenants.add(obj.tenant_id or session.info.get("tenant_id"))
    tenants.discard(None)
    if tenants:
        bump(session, tenants)


def _really_changed(obj) -> bool:
    state = inspect(obj)
    return any(a.key not in VOLATILE and a.history.has_changes() for a in state.attrs)


def bump(session, tenant_ids) -> None:
    """Marks these tenants' metadata as changed (also for Core writes that bypass the ORM)."""
    session.info[DIRTY_KEY] = True
    session.connection().execute(update(Tenant.__table__).where(Tenant.__table__.c.id.in_(list(tenant_ids)))
                                 .values(meta_stamp=new_stamp()))


def end_of_transaction(session) -> None:
    session.info.pop(STAMP_KEY, None)
    session.info.pop(DIRTY_KEY, None)


def prime(session, tenant_id: int, value: str | None) -> None:
    """Gives a new session the stamp its caller just read with the tenant row (a request
    reads the tenant anyway), so that its first cache lookup needs no query."""
    session.info[STAMP_KEY] = (tenant_id, value or "")


def stamp(session, tenant_id: int) -> str | None:
    """The tenant's stamp as this transaction sees it; None when caches must not be used."""
    info = session.info
    if info.get(DIRTY_KEY):
        return None
    got = info.get(STAMP_KEY)
    if got is None or got[0] != tenant_id:
        t = Tenant.__table__
        value = session.connection().execute(select(t.c.meta_stamp).where(t.c.id == tenant_id)).scalar()
        got = info[STAMP_KEY] = (tenant_id, value or "")
    return got[1]


class MetaCache:
    """Per tenant: the newest stamp seen and what was derived under it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_tenant: dict[int, tuple[str, dict]] = {}

    def for_tenant(self, session, tenant_id: int) -> dict | None:
        s = stamp(session, tenant_id)
        if s is None:
            return None
        hit = self._by_tenant.get(tenant_id)
        if hit is not None and hit[0] == s:
            return hit[1]
        with self._lock:
            hit = self._by_tenant.get(tenant_id)
            if hit is None or hit[0] != s:
                hit = self._by_tenant[tenant_id] = (s, {})
        return hit[1]

    def clear(self) -> None:
        with self._lock:
            self._by_tenant.clear()

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

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from .lru import LruCache
from .models import App, Dashboard, Field, Membership, PublicPage, Tenant, TemplateInstall, UserTable, View

#: Models whose rows are metadata; the runtime and connectors add theirs with ``watch``.
META_MODELS: set[type] = {App, Dashboard, Field, Membership, PublicPage, TemplateInstall, UserTable, View}
#: Bookkeeping columns that change often and never affect what is derived from metadata.
VOLATILE = {"cursor", "last_test", "last_pull_at", "last_pull_error", "last_event_at", "last_used_at", "updated_at"}
STAMP_KEY, DIRTY_KEY, BUMPED_KEY = "zs_meta_stamp", "zs_meta_dirty", "zs_meta_bumped"


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
    """Marks these tenants' metadata as changed (also for Core writes that bypass the ORM).

    Once per tenant and transaction: the new stamp becomes visible with all of the
    transaction's changes at once, so a second one says nothing more (a template install
    flushed metadata ~340 times, each with an UPDATE of the tenant row). A stamp written in
    a savepoint that was rolled back or released no longer counts, and is written again."""
    info = session.info
    info[DIRTY_KEY] = True
    done = info.get(BUMPED_KEY)
    if done is None:
        done = info[BUMPED_KEY] = {}
    todo = [t for t in tenant_ids if t not in done or not done[t].is_active]
    if not todo:
        return
    session.connection().execute(update(Tenant.__table__).where(Tenant.__table__.c.id.in_(todo))
                                 .values(meta_stamp=new_stamp()))
    trans = session.get_nested_transaction() or session.get_transaction()
    for t in todo:
        done[t] = trans


def end_of_transaction(session) -> None:
    session.info.pop(STAMP_KEY, None)
    session.info.pop(DIRTY_KEY, None)
    session.info.pop(BUMPED_KEY, None)
    session.info.pop("zs_table_rows", None)  # storage/schema.py find_table_row


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
    """Per tenant: the newest stamp seen and what was derived under it, for at most
    ``max_tenants`` tenants (least recently used first out). An evicted tenant's next
    transaction starts an empty entry under the stamp it reads, exactly as after a change."""

    def __init__(self, max_tenants: int = 200):
        self._by_tenant: LruCache[tuple[str, dict]] = LruCache(max_tenants)

    @property
    def max_tenants(self) -> int:
        return self._by_tenant.maxsize

    @max_tenants.setter
    def max_tenants(self, n: int) -> None:
        self._by_tenant.maxsize = n

    def __len__(self) -> int:
        return len(self._by_tenant)

    def for_tenant(self, session, tenant_id: int) -> dict | None:
        s = stamp(session, tenant_id)
        if s is None:
            return None
        return self._by_tenant.get_or_put(tenant_id, lambda hit: hit[0] == s, lambda: (s, {}))[1]

    def forget_schema(self, schema) -> None:
        """Drops the entries of ``schema``'s tenant that are this very schema object (the
        compiled-table lookups ``Records.schema`` keeps there); the next request compiles it
        again. Called when the schema cache evicts it."""
        hit = self._by_tenant.get(schema.tenant_id)
        if hit is None:
            return
        d = hit[1]
        for key, value in list(d.items()):  # one C-level copy: safe against other threads' inserts
            if value is schema:
                d.pop(key, None)

    def clear(self) -> None:
        self._by_tenant.clear()

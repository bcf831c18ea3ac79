"""Tenant isolation, enforced in one place.

Every ORM session opened for a request carries ``session.info["tenant_id"]``. Two
listeners do the rest, so no endpoint has to remember to filter:

* every SELECT/UPDATE/DELETE on a ``TenantOwned`` model gets ``tenant_id = :tenant``
  added (``with_loader_criteria``, also inside joins and relationship loads);
* every row flushed is stamped with the session's tenant, and a row of another tenant
  can never be written through it.

User records live in physical tables reached only through a tenant-scoped
``UserTable`` row, so the same filter guards them too.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker, with_loader_criteria

from .models import TenantOwned


class TenantViolation(RuntimeError):
    pass


def tenant_session(factory: sessionmaker, tenant_id: int | None) -> Session:
    session = factory()
    session.info["tenant_id"] = tenant_id
    return session


@event.listens_for(Session, "do_orm_execute")
def _only_this_tenant(state):
    tenant_id = state.session.info.get("tenant_id")
    if tenant_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantOwned, lambda cls: cls.tenant_id == tenant_id, include_aliases=True
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_tenant(session, _ctx, _instances):
    tenant_id = session.info.get("tenant_id")
    if tenant_id is None:
        return
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantOwned):
            continue
        if obj.tenant_id is None:
            obj.tenant_id = tenant_id
        elif obj.tenant_id != tenant_id:
            raise TenantViolation("refusing to write a row of another tenant")

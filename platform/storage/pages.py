"""Compiled page statements, kept for the tenant's metadata generation.

A page of records -- a saved view's, or the same ``?filter`` asked again -- compiles the
same filter, row scope and sorts into the same SELECT on every request; building that
statement and its SQL cache key was about a tenth of a page's CPU. A plan is kept with the
table's compiled schema (so it leaves when the schema cache lets the schema go, and with
it the Table its statement names), under the tenant's metadata stamp (``metagen``: any
change to a table, field, view or permission of the tenant gives a new stamp, and plans
made under the old one are no longer found), keyed by everything the compilation reads:
the filter, search, sorts, limit and deleted flags of the query, and of the caller the
user, role and attributes (hidden fields, row scopes, ``$me`` / ``$user.x``), time zone
and locale.

Conditions relative to the clock (older than, within the last, today) hold the time they
were compiled at: a query with one is compiled every time, as before.
"""
from __future__ import annotations

import json
import threading
import weakref

from .. import metagen
from ..lru import LruCache

#: plans kept per table (the views and filters people page through are few)
PER_TABLE = 8
_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_CLOCK_OPS = ('"older_than"', '"within_last"', '"today"')


class PagePlan:
    """``where``: the condition (for counts); ``sort_cols``: [(expression, direction)];
    ``base``: SELECT rows and sort values WHERE condition (for keyset pages); ``stmt``: the
    first page's statement, ordered and limited."""

    __slots__ = ("where", "sort_cols", "base", "stmt")

    def __init__(self, where, sort_cols, base, stmt):
        self.where, self.sort_cols, self.base, self.stmt = where, sort_cols, base, stmt


def plan_key(records, schema, q, access, limit: int) -> tuple | None:
    """What the compiled statement depends on, or None when it must be compiled afresh."""
    try:
        text = json.dumps([q.filter, q.sorts, access.rows], sort_keys=True, ensure_ascii=False)
        attributes = json.dumps(records.actor.attributes, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    if any(op in text for op in _CLOCK_OPS):
        return None
    actor, ctx = records.actor, records.ctx
    return (schema.id, schema.schema_version, text, q.search, bool(q.include_deleted), bool(q.only_deleted), limit,
            actor.user_id, actor.role, actor.is_system, attributes, str(ctx.tz), ctx.locale, ctx.dialect)


def plan_for(records, schema, q, access, limit: int, build) -> PagePlan:
    """The plan of this page: kept, or made by ``build() -> PagePlan`` (and kept)."""
    key = plan_key(records, schema, q, access, limit)
    stamp = metagen.stamp(records.session, records.tenant_id) if key is not None else None
    if stamp is None:  # not cacheable, or this transaction changes metadata itself
        return build()
    plans = _PLANS.get(schema)
    if plans is None:
        with _LOCK:
            plans = _PLANS.get(schema)
            if plans is None:
                plans = _PLANS[schema] = LruCache(PER_TABLE)
    key = (stamp, *key)
    plan = plans.get(key)
    if plan is None:
        plan = build()
        plans.put(key, plan)
    return plan

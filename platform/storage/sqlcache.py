"""SQLAlchemy's compiled-statement cache, scoped so that a user table's statements leave
the process together with its compiled schema.

SQLAlchemy keys a compiled statement by the ``Table`` *object* it names, so every
statement cached for a user table keeps that ``Table`` (≈ 0.3 MB for the order hub's
90-column orders table, with its columns and compiled SQL) alive until the cache rotates
at 750 entries. A schema evicted from the schema cache and compiled again is a new
``Table``: a process that served many tenants in turn ended up holding hundreds of dead
``Table`` objects through this cache alone (180 → 306 MB over three rounds of 150 tenants).

Here every user ``Table`` made by ``schema.physical_table`` gets an owner record listing
the cache keys that name it; when the schema cache lets the schema go, ``forget`` removes
those entries from every live statement cache and marks the table gone, so statements a
still-running request builds on it afterwards are compiled but not cached. Statements on
platform tables and on unowned tables behave exactly as with SQLAlchemy's own cache.
"""
from __future__ import annotations

import weakref

from sqlalchemy import Table
from sqlalchemy.util import LRUCache

_ATTR = "_zs_statements"
#: statement caches of the engines alive in this process (one per engine)
_LIVE: "weakref.WeakSet[StatementCache]" = weakref.WeakSet()


class _Owner:
    """The cache keys that name one user table; ``gone`` once its schema left the cache."""

    __slots__ = ("keys", "gone", "prune_at")

    def __init__(self):
        self.keys: set = set()
        self.gone = False
        self.prune_at = 32


def own(table: Table) -> Table:
    """Marks ``table`` as a user table whose cached statements ``forget`` can drop."""
    # In the Table's __dict__: an annotated copy of the table (its __dict__ copied) shares it.
    table.__dict__[_ATTR] = _Owner()
    return table


def owned_keys(table: Table) -> int:
    """How many cached statements name ``table`` (0 once it is forgotten)."""
    owner = table.__dict__.get(_ATTR)
    return 0 if owner is None else sum(1 for k in owner.keys if any(k in c._data for c in list(_LIVE)))


def forget(table: Table) -> None:
    """Drops every cached statement that names ``table``; later ones are not cached."""
    owner = table.__dict__.get(_ATTR)
    if owner is None:
        return
    owner.gone = True
    keys, owner.keys = owner.keys, set()
    if not keys:
        return
    for cache in list(_LIVE):
        cache.drop(keys)


def _owners(key) -> list:
    # A key is nested tuples of strings, types, classes and, for each table a statement
    # names (directly, through a column or an alias), the Table object itself.
    found = []
    stack = [key]
    while stack:
        x = stack.pop()
        if isinstance(x, tuple):
            stack.extend(x)
        elif isinstance(x, Table):
            owner = x.__dict__.get(_ATTR)
            if owner is not None and owner not in found:
                found.append(owner)
    return found


class StatementCache(LRUCache):
    """SQLAlchemy's LRU statement cache (same capacity and rotation) that knows which
    entries name which user table. Lookups are unchanged; only a miss (which compiles
    the statement anyway) walks the key."""

    __slots__ = ("__weakref__",)
    # Identity, not the Mapping's equality of contents: caches are kept in a WeakSet.
    __hash__ = object.__hash__
    __eq__ = object.__eq__

    def __init__(self, capacity: int = 500):
        super().__init__(capacity)
        _LIVE.add(self)

    def __setitem__(self, key, value) -> None:
        owners = _owners(key)
        if any(o.gone for o in owners):
            return  # its schema is already evicted: caching would only keep the dead Table alive
        super().__setitem__(key, value)
        for o in owners:
            o.keys.add(key)
            if len(o.keys) >= o.prune_at:
                # Keys the LRU rotated out still name (and so keep alive) other tables of a join.
                o.keys = {k for k in o.keys if any(k in c._data for c in list(_LIVE))}
                o.prune_at = max(32, 2 * len(o.keys))

    def drop(self, keys) -> None:
        with self._mutex:  # not while _manage_size sorts the entries
            data = self._data
            for k in keys:
                data.pop(k, None)

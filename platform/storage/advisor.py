"""Indexes for the queries people actually run.

Saved views get their composite index when they are saved (metadata.py). Ad-hoc queries --
a filter typed in the grid, a dashboard widget, an API client's report -- are noted here by
shape: the columns compared with ``=``/``in``, then the sort column (pages) or the grouped,
range-filtered and summed columns (aggregates, so that the index covers them). When one
shape has come back ``threshold`` times on a table of at least ``min_rows`` rows, the
advisor builds that index in a background thread (``CREATE INDEX CONCURRENTLY`` on
PostgreSQL, so writers do not wait) and refreshes the planner's statistics. At most
``max_per_table`` advisor indexes per table; each is named ``ix_t<table>_a<hash>`` and
created ``IF NOT EXISTS``, so several processes arriving at the same idea are harmless.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter

from sqlalchemy import func, select, text

log = logging.getLogger("zhongshu.indexes")
EQ_OPS = {"=", "in"}
RANGE_OPS = {">", ">=", "<", "<=", "between", "older_than", "within_last", "today"}
MAX_COLUMNS = 4


class IndexAdvisor:
    def __init__(self, *, enabled: bool = True, min_rows: int = 20000, threshold: int = 3, max_per_table: int = 6):
        self.enabled, self.min_rows, self.threshold, self.max_per_table = enabled, min_rows, threshold, max_per_table
        self._lock = threading.Lock()
        self._seen: Counter = Counter()
        self._decided: set = set()
        self._per_table: Counter = Counter()
        self._threads: list[threading.Thread] = []

    # -- noting shapes -------------------------------------------------------------
    def note_page(self, records, schema, filter_node, sorts) -> None:
        if not self.enabled:
            return
        cols = page_index_columns(schema, filter_node, sorts)
        if cols:
            self._consider(records, schema, cols)

    def note_aggregate(self, records, schema, filter_node, group_fields, metric_fields) -> None:
        if not self.enabled:
            return
        eq, rng = _conditions(schema, filter_node)
        groups = [c for c in (_column(schema, f) for f in group_fields) if c]
        metrics = [c for c in (_column(schema, f) for f in metric_fields) if c]
        if not eq and not groups:
            return
        self._consider(records, schema, _dedupe(eq + groups + rng + metrics))

    def _consider(self, records, schema, cols: list[str]) -> None:
        cols = cols[:MAX_COLUMNS]
        if len(cols) < 2:
            return  # single columns people filter on are indexed when the field is made
        key = (schema.id, tuple(cols))
        with self._lock:
            if key in self._decided:
                return
            self._seen[key] += 1
            if self._seen[key] < self.threshold:
                return
            self._decided.add(key)
            if self._per_table[schema.id] >= self.max_per_table:
                return
            self._per_table[schema.id] += 1
        rows = records.conn.execute(select(func.max(schema.table.c.id))).scalar() or 0
        if rows < self.min_rows:
            with self._lock:  # ask again later, when the table has grown
                self._decided.discard(key)
                self._seen[key] = 0
                self._per_table[schema.id] -= 1
            return
        engine = records.session.get_bind()
        engine = getattr(engine, "engine", engine)
        t = threading.Thread(target=self._build, args=(engine, schema.physical_name, cols), name="zs-index", daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    # -- building ------------------------------------------------------------------
    @staticmethod
    def index_name(table: str, cols: list[str]) -> str:
        return f"ix_{table.replace('_', '')}_a{hashlib.sha1(','.join(cols).encode()).hexdigest()[:10]}"

    def _build(self, engine, table: str, cols: list[str]) -> None:
        name = self.index_name(table, cols)
        collist = ", ".join(f'"{c}"' for c in cols)
        try:
            # Partial: every query of live records says "deleted_at IS NULL", so the index
            # covers a count or a sum without visiting the table.
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.execute(text(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({collist}) WHERE deleted_at IS NULL'))
                    # VACUUM also marks pages all-visible, which index-only scans need.
                    c.execute(text(f"VACUUM (ANALYZE) {table}"))
            else:
                with engine.begin() as c:
                    c.execute(text(f'CREATE INDEX IF NOT EXISTS {name} ON {table} ({collist}) WHERE deleted_at IS NULL'))
                    c.execute(text(f"ANALYZE {table}"))
            log.info("built index %s on %s (%s) for repeated queries", name, table, collist)
        except Exception as e:  # a dropped table, a busy database: the query still works without it
            log.warning("could not build index %s on %s: %s", name, table, e)

    def drain(self, timeout: float = 60.0) -> None:
        """Waits for indexes being built (tests, shutdown)."""
        for t in list(self._threads):
            t.join(timeout)


def page_index_columns(schema, filter_node, sorts) -> list[str]:
    """The index a filtered, sorted page wants: its equality columns, then its first sort
    column (or, unsorted, its first range column). Saved views use it too."""
    eq, rng = _conditions(schema, filter_node)
    if not eq and not rng:
        return []
    first = sorts[0].get("field") if sorts and isinstance(sorts[0], dict) else None
    sort_col = _column(schema, first) if first else None
    return _dedupe(eq + ([sort_col] if sort_col is not None else rng[:1]))


def _column(schema, name: str | None) -> str | None:
    if not name or "." in name:
        return None
    spec = schema.fields.get(name) or schema.system_specs.get(name)
    if spec is None or spec.type.storage not in ("column", "system") or not spec.type.has_column(spec):
        return None
    if not spec.type.sortable:
        return None  # multi-selects, JSON: an ordinary index does not help
    return spec.column_name


def _conditions(schema, node) -> tuple[list[str], list[str]]:
    """Columns of the top-level AND of a filter: equality ones and range ones."""
    if not isinstance(node, dict):
        return [], []
    conds = node.get("and") if "and" in node else ([node] if "field" in node else [])
    eq, rng = [], []
    for c in conds if isinstance(conds, list) else []:
        if not isinstance(c, dict) or "field" not in c:
            continue
        col = _column(schema, c.get("field"))
        if col is None:
            continue
        if c.get("op") in EQ_OPS:
            eq.append(col)
        elif c.get("op") in RANGE_OPS:
            rng.append(col)
    return sorted(set(eq)), rng


def _dedupe(cols: list[str]) -> list[str]:
    out = []
    for c in cols:
        if c not in out:
            out.append(c)
    return out

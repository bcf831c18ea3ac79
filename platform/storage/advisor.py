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

Statistics (PostgreSQL): the planner needs the table's statistics to choose between walking
an index in sort order and fetching every row of an equality match then sorting. A table
bulk-loaded a moment ago has none until autovacuum comes round (up to a minute later), and
the page of a 100k-row table took 12 ms instead of 1 ms (bitmap scan of 12,000 rows + sort
instead of walking the ``created`` index). So a read that reaches the advisor looks, at
most every ``stats_every`` seconds per table, at ``pg_class``/``pg_stat_user_tables``; if
at least ``stats_min_changes`` rows and ``stats_fraction`` of the table changed since the
last ANALYZE, ANALYZE runs in a background thread; if the table never had one, the read
runs it first (on its own autocommit connection) and then plans with the statistics.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter

from sqlalchemy import func, select, text

log = logging.getLogger("zhongshu.indexes")
EQ_OPS = {"=", "in"}
RANGE_OPS = {">", ">=", "<", "<=", "between", "older_than", "within_last", "today"}
MAX_COLUMNS = 4
STATS_SQL = text(
    "SELECT c.reltuples, s.n_mod_since_analyze FROM pg_class c"
    " LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(:t)")


class IndexAdvisor:
    def __init__(self, *, enabled: bool = True, min_rows: int = 20000, threshold: int = 3, max_per_table: int = 6):
        self._small: dict = {}  # shape -> sightings to wait before sizing its (small) table again
        self.enabled, self.min_rows, self.threshold, self.max_per_table = enabled, min_rows, threshold, max_per_table
        self._lock = threading.Lock()
        self._seen: Counter = Counter()
        self._decided: set = set()
        self._per_table: Counter = Counter()
        self._threads: list[threading.Thread] = []
        #: statistics: look at most every stats_every s per table; ANALYZE when at least
        #: stats_min_changes rows and stats_fraction of the table changed since the last one
        self.stats_every, self.stats_min_changes, self.stats_fraction = 30.0, 1000, 0.2
        self._stats_next: dict[str, float] = {}

    @property
    def min_rows(self) -> int:
        return self._min_rows

    @min_rows.setter
    def min_rows(self, value: int) -> None:
        self._min_rows = value
        self._small.clear()  # a new size limit: every table is sized again

    # -- noting shapes -------------------------------------------------------------
    def note_page(self, records, schema, filter_node, sorts) -> None:
        if not self.enabled:
            return
        self._check_stats(records, schema)
        cols = page_index_columns(schema, filter_node, sorts)
        if cols:
            self._consider(records, schema, cols)

    def note_aggregate(self, records, schema, filter_node, group_fields, metric_fields) -> None:
        if not self.enabled:
            return
        self._check_stats(records, schema)
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
            if self._seen[key] < self._small.get(key, self.threshold):
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
                # A rules table read by every order (warehouses, gift tiers) stays small: size
                # it again after twice as many sightings each time (up to 512), not every 3rd.
                self._small[key] = min(2 * self._small.get(key, self.threshold), 512)
            return
        engine = records.session.get_bind()
        engine = getattr(engine, "engine", engine)
        t = threading.Thread(target=self._build, args=(engine, schema.physical_name, cols), name="zs-index", daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    # -- statistics ------------------------------------------------------------------
    def _check_stats(self, records, schema) -> None:
        if records.ctx.dialect != "postgresql":
            return  # SQLite plans these pages well without sqlite_stat1
        name, now = schema.physical_name, time.monotonic()
        with self._lock:
            if now < self._stats_next.get(name, 0.0):
                return
            if len(self._stats_next) >= 4096:  # bounded: forget tables whose wait is over
                self._stats_next = {k: v for k, v in self._stats_next.items() if v > now}
            self._stats_next[name] = now + self.stats_every
        row = records.conn.execute(STATS_SQL, {"t": name}).first()
        if row is None:
            return
        reltuples, changed = float(row[0] or 0), int(row[1] or 0)
        if changed < self.stats_min_changes or changed < self.stats_fraction * max(reltuples, 0.0):
            return
        engine = records.session.get_bind()
        engine = getattr(engine, "engine", engine)
        if reltuples < 0:
            # Never analyzed: every plan is a guess (a 100k-row page: 12 ms instead of 1). This
            # read waits for it (0.1-0.5 s, ANALYZE samples at most 30,000 rows) rather than the
            # next few hundred reads taking the guessed plans while it runs beside them.
            self._analyze(engine, name)
            return
        t = threading.Thread(target=self._analyze, args=(engine, name), name="zs-analyze", daemon=True)
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    @staticmethod
    def _analyze(engine, table: str) -> None:
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text(f"ANALYZE {table}"))
            log.info("analyzed %s (statistics were missing or stale)", table)
        except Exception as e:  # a dropped table, a busy database: autovacuum will do it later
            log.warning("could not analyze %s: %s", table, e)

    # -- building ------------------------------------------------------------------
    @staticmethod
    def index_name(table: str, cols: list[str]) -> str:
        return f"ix_{table.replace('_', '')}_a{hashlib.sha1(','.join(cols).encode()).hexdigest()[:10]}"

    def _build(self, engine, table: str, cols: list[str]) -> None:
        name = self.index_name(table, cols)
        collist = ", ".join(f'"{c}"' for c in cols)
        try:
            from .schema import covering_index
            with engine.connect() as c:
                have = covering_index(c, table, cols)
            if have is not None:  # a saved view's index (or an earlier one) serves this shape
                log.info("index %s on %s already serves (%s)", have, table, collist)
                return
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

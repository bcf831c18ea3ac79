"""The rule engine: which rules a write triggers, running them inside the write's
transaction, cascades and cycles, timers, schedules, buttons, approvals and the run log.

Semantics (docs/rules.md):
* record triggers run after the row is written, in the same transaction; field updates
  cascade as ordinary writes (one level deeper each time, at most ``MAX_DEPTH``); a rule
  that would re-trigger itself on the same record is reported as a cycle and stopped;
* a ``reject`` action (or a failed guarded adjustment with ``reject``) refuses the whole write;
* side effects (notifications, HTTP, connector calls) go to the outbox in the same transaction;
* every run whose condition held is logged with its inputs and each action's outcome
  (``"log": "all"`` on a rule also logs evaluations whose condition was false).
"""
from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from zhongshu.platform.errors import ApiError, ValidationFailed, field_error
from zhongshu.platform.fields.base import FieldValueError, FilterError
from zhongshu.platform.models import utcnow
from zhongshu.platform.storage import rowcache
from zhongshu.platform.storage.records import Records, WriteEvent

from ..bridge import Loader, expression_schema
from ..expressions import EvalContext, ExpressionError, Schema, compile_expression
from ..models import FieldLock, Rule, RuleRun, RuleState, RuleTimer
from ..templating import TemplateError, render_template
from .actions import ACTIONS, ActionFailed, plain_json
from .definition import RuleCompiler, Scope

log = logging.getLogger("zhongshu.rules")
MAX_DEPTH = 8
#: actions that may change rows other than through set_fields on the record itself
DB_WRITERS = {"create_record", "update_records", "adjust_number", "lock_fields", "unlock_fields", "recompute", "start_approval"}
RECORD_TRIGGERS = {"record_created", "record_updated", "record_deleted", "condition_true", "time_after"}


@dataclass
class CompiledRule:
    id: int
    api_name: str
    definition: dict
    table_id: int | None
    position: int
    condition: Any = None  # compiled expression, or {"filter": ...}
    references: set = field(default_factory=set)
    bindings: set = field(default_factory=set)

    @property
    def trigger(self) -> dict:
        return self.definition["trigger"]

    def record_paths(self) -> set:
        return {r for r in self.references if r.split(".")[0] not in self.bindings}

    def binding_paths(self, name: str) -> set:
        return {r[len(name) + 1:] for r in self.references if r.startswith(name + ".")}


def _compiled_cache(records) -> dict:
    # Per platform (its schema cache), so two databases in one process never share entries.
    return records.cache.__dict__.setdefault("compiled_rules", {})


def compile_rule(records: Records, row: Rule) -> CompiledRule:
    table = records.schema(row.table_id) if row.table_id else None
    key = (records.tenant_id, row.id, str(row.updated_at), id(table), row.definition.get("api_name"))
    _COMPILED = _compiled_cache(records)
    hit = _COMPILED.get(key)
    if hit is not None:
        return hit
    rc = RuleCompiler(records, row.definition)
    rc.check()
    cond = row.definition.get("condition")
    compiled_cond = None
    if isinstance(cond, str):
        compiled_cond = compile_expression(cond, expression_schema(records, table) if table else None)
    elif isinstance(cond, dict):
        compiled_cond = cond
    cr = CompiledRule(row.id, row.api_name, row.definition, row.table_id, row.position, compiled_cond, rc.references, rc.bindings)
    _COMPILED[key] = cr
    return cr


def active_rules(records: Records, table_id: int) -> list[CompiledRule]:
    # Once per transaction and table: a write's cascade asks many times.
    # Shared by all transactions of the process until the tenant's metadata changes.
    cache = records.cache.meta.for_tenant(records.session, records.tenant_id)
    if cache is None:
        cache = records.session.info.setdefault("zs_rules", {})
    key = ("rules", table_id)
    if key not in cache:
        cache[key] = _load_rules(records, table_id)
    return cache[key]


def _load_rules(records: Records, table_id: int) -> list[CompiledRule]:
    rows = records.session.scalars(select(Rule).where(Rule.table_id == table_id, Rule.enabled.is_(True))
                                   .order_by(Rule.position, Rule.id)).all()
    out = []
    for r in rows:
        try:
            out.append(compile_rule(records, r))
        except (ApiError, ExpressionError) as e:  # a rule broken by a later schema change: logged, skipped
            log_run(records, r.id, r.table_id, None, "compile", "error", None, [], {}, f"rule no longer valid: {getattr(e, 'message', e)}", 0)
    return out


# -- running -------------------------------------------------------------------------

class RunContext:
    def __init__(self, records: Records, rule: CompiledRule, table, record_id, record: dict | None, *,
                 previous: dict | None = None, changed: set | None = None, dry_run: bool = False, occasion: str = ""):
        self.records = records
        self.rule = rule
        self.table = table
        self.record_id = record_id
        self.record = record or {}
        self.bindings: dict = {}
        self.dry_run = dry_run
        self.occasion = occasion
        self.path = ""
        now = records.ctx.now
        self.eval_ctx = EvalContext(now=now.replace(tzinfo=timezone.utc) if now else None, tz=str(records.ctx.tz.key),
                                    previous=previous, changed_fields=changed)

    def evaluate(self, source: str, scope: Scope, extra: dict | None = None):
        expr = compile_expression(source, scope.schema)
        data = {**self.record, **self.bindings, **(extra or {})}
        return expr.evaluate(data, self.eval_ctx)

    def render(self, template: str, *, html: bool = False) -> str:
        """``html``: the result is HTML (an e-mail's html part), so record values are escaped."""
        ctx = {"record": plain_json(self.record), **{k: plain_json(v) for k, v in self.bindings.items()}}
        ctx["rule"] = {"api_name": self.rule.api_name, "label": self.rule.definition.get("label")}
        c = self.records.ctx
        if self.table is not None and self.record_id is not None:
            # A link to the record in the builder, for messages ("open the order").
            ctx["record_url"] = f"{c.base_url}/#/t/{c.tenant_slug}/tables/{self.table.api_name}/records/{self.record_id}"
        return render_template(template, ctx, html=html, tz=str(c.tz.key))

    def render_value(self, value):
        """Templates anywhere inside a structured input (card fields, SMS parameters, recipients)."""
        if isinstance(value, str):
            return self.render(value)
        if isinstance(value, dict):
            return {k: self.render_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v) for v in value]
        return value

    def bind(self, name, value):
        self.bindings[name] = value

    def unbind(self, name):
        self.bindings.pop(name, None)

    def paths_of(self, action: dict, name: str) -> set:
        return self.rule.binding_paths(name)

    def set_fields(self, raw: dict) -> dict:
        """Sets fields of the triggering record. Within a write's rules the changes are
        collected and written once after the rules of that write ran (later rules already
        see them); elsewhere (timers, buttons, approvals) they are written at once."""
        changed = {}
        for k, v in raw.items():
            if not _same_value(self.record.get(k), v):
                changed[k] = v
        if not changed:
            return {}
        for k, v in changed.items():
            self.record[k] = v
        values = {k: plain_json(v) for k, v in changed.items()}
        pending = self.records.session.info.get("zs_pending", {}).get((self.table.id, self.record_id)) if self.table is not None else None
        if pending is not None and not self.dry_run:
            pending["values"].update(values)
            pending["raw"].update(changed)
            if self.rule.id not in pending["fired"]:
                pending["fired"].append(self.rule.id)
            if set(changed) & _computed_inputs(self.records, self.table):
                # A computed field reads what was just set (warehouse -> warehouse_code):
                # write now so that later rules see the recomputed value.
                _flush(self.records, self.table, self.record_id, pending)
                self.refresh()
                self.records.session.info["zs_dirty"] = True
        else:
            self.records.update(self.table, self.record_id, values)
            self.refresh()
        return values

    def current_values(self, names) -> dict:
        if self.record_id is None or self.table is None:
            return {}
        rec = self.records.get_unchecked(self.table, self.record_id, self.records.access(self.table), with_children=False)
        return {k: rec.get(k) for k in names}

    def refresh(self, _rec=None):
        if self.record_id is not None and self.table is not None:
            self.record = Loader(self.records).load(self.table, self.record_id, self.rule.record_paths()) or self.record

    def load_relation(self, name: str) -> list[dict]:
        rows = self.record.get(name)
        if rows and isinstance(rows, list) and all(isinstance(r, dict) and "id" in r for r in rows):
            return rows
        rec = Loader(self.records).load(self.table, self.record_id, {f"{name}.id"})
        return (rec or {}).get(name) or []

    def run_actions(self, actions: list[dict], scope: Scope, path: str) -> list[dict]:
        out = []
        parent = self.path
        for i, a in enumerate(actions):
            self.path = f"{parent}/{path}/{i}" if path else f"{parent}/{i}"
            started = time.perf_counter()
            if a["type"] in DB_WRITERS:
                # related rows may change: later rules of this write reload the record
                self.records.session.info["zs_dirty"] = True
            try:
                result = ACTIONS[a["type"]].run(self, a, scope)
                out.append({"type": a["type"], "ok": True, **result, "ms": round((time.perf_counter() - started) * 1000, 2)})
            except ValidationFailed:
                raise
            except (ActionFailed, ExpressionError, TemplateError, FieldValueError, FilterError, ApiError) as e:
                msg = getattr(e, "message_en", None) or getattr(e, "message", None) or str(e)
                out.append({"type": a["type"], "ok": False, "error": msg})
                raise _Stop(out) from e
            finally:
                self.path = parent
        return out


def _computed_inputs(records, table) -> set:
    from ..computed import computer_for

    comp = computer_for(records, table)
    return {p.split(".")[0] for p in comp.paths} if comp is not None else set()


def _flush(records, table, record_id, pending) -> None:
    """Writes the rules' collected changes of a record, with the rules that set them on
    the stack (a rule re-triggering itself through the cascade is reported as a cycle)."""
    values = pending["values"]
    if not values:
        return
    pending["values"], pending["raw"] = {}, {}
    stack = _stack(records)
    fired = [(rid, record_id) for rid in pending["fired"]]
    stack.extend(fired)
    try:
        records.nested().update(table, record_id, values)
    finally:
        del stack[len(stack) - len(fired):]


def _same_value(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        if isinstance(a, (int, float, Decimal)) and isinstance(b, (int, float, Decimal)) and not isinstance(a, bool) and not isinstance(b, bool):
            return float(a) == float(b)
    except (TypeError, ValueError):
        return False
    return a == b


class _Stop(Exception):
    def __init__(self, outcomes):
        super().__init__("action failed")
        self.outcomes = outcomes


def condition_holds(rx: RunContext, rule: CompiledRule) -> bool:
    cond = rule.condition
    if cond is None:
        return True
    if isinstance(cond, dict):
        t = rx.table.table
        where = rx.records.compiler().where(rx.table, cond["filter"])
        return rx.records.conn.execute(select(t.c.id).where(t.c.id == rx.record_id, where)).first() is not None
    return bool(cond.evaluate(rx.record, rx.eval_ctx))


_RUN_LOG, _DEFER = "zs_run_log", "zs_run_log_defer"


def log_run(records, rule_id, table_id, record_id, trigger, status, condition, actions, inputs, error, ms):
    row = dict(tenant_id=records.tenant_id, rule_id=rule_id, table_id=table_id, record_id=record_id, trigger=trigger,
               status=status, condition=condition, actions=actions, inputs=inputs, error=error, duration_ms=ms,
               at=records.ctx.now or utcnow())
    info = records.session.info
    if info.get(_DEFER):  # inside a write: one insert for all its runs when the write's rules are done
        info.setdefault(_RUN_LOG, []).append(row)
    else:
        records.conn.execute(insert(RuleRun.__table__), [row])


def _flush_run_log(records) -> None:
    rows = records.session.info.pop(_RUN_LOG, None)
    if rows:
        records.conn.execute(insert(RuleRun.__table__), rows)


def _stack(records) -> list:
    return records.session.info.setdefault("zs_rule_stack", [])


def run_rule(records: Records, rule: CompiledRule, table, record_id, record: dict | None, *, trigger: str,
             previous=None, changed=None, dry_run=False, occasion="", check_condition=True, actions=None) -> dict:
    """Evaluates one rule for one record and runs its actions; returns the run's outcome."""
    started = time.perf_counter()
    stack = _stack(records)
    key = (rule.id, record_id)
    inputs = {"record_id": record_id, "trigger": trigger, "occasion": occasion}
    if key in stack and not dry_run:
        chain = " → ".join(f"rule {r}" for r, _ in stack)
        err = f"cycle: rule {rule.api_name} would re-trigger itself on record {record_id} ({chain})"
        log_run(records, rule.id, rule.table_id, record_id, trigger, "error", None, [], inputs, err, 0)
        return {"status": "error", "error": err}
    if records.depth >= MAX_DEPTH:
        err = f"cascade deeper than {MAX_DEPTH} levels stopped at rule {rule.api_name}"
        log_run(records, rule.id, rule.table_id, record_id, trigger, "error", None, [], inputs, err, 0)
        return {"status": "error", "error": err}
    nested = records.nested()
    rx = RunContext(nested, rule, table, record_id, record, previous=previous, changed=changed, dry_run=dry_run, occasion=occasion)
    stack.append(key)
    try:
        try:
            held = condition_holds(rx, rule) if check_condition else True
        except ExpressionError as e:
            err = f"condition could not be evaluated: {e.message_en}"
            log_run(records, rule.id, rule.table_id, record_id, trigger, "error", None, [], inputs, err, _ms(started))
            return {"status": "error", "error": err}
        scope = Scope(table, expression_schema(nested, table)) if table is not None else Scope(None, Schema({}))
        todo = actions if actions is not None else (rule.definition.get("actions", []) if held else rule.definition.get("else", []))
        if not held and not todo:
            if rule.definition.get("log") == "all" and not dry_run:
                log_run(records, rule.id, rule.table_id, record_id, trigger, "skipped", False, [], inputs, None, _ms(started))
            return {"status": "skipped", "condition": False}
        try:
            outcomes = rx.run_actions(todo, scope, "actions" if held else "else")
            status, error = ("dry_run" if dry_run else "ok"), None
        except _Stop as s:
            outcomes, status = s.outcomes, "error"
            error = next((o.get("error") for o in reversed(s.outcomes) if not o.get("ok")), "action failed")
        except ValidationFailed as e:
            if not dry_run:
                raise
            outcomes, status, error = [{"type": "reject", "ok": True, "would_reject": e.message}], "dry_run", None
        if not dry_run:
            log_run(records, rule.id, rule.table_id, record_id, trigger, status, held, outcomes, inputs, error, _ms(started))
        return {"status": status, "condition": held, "actions": outcomes, "error": error}
    finally:
        stack.pop()


def _ms(started) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


# -- write hooks ---------------------------------------------------------------------

def after_write(event: WriteEvent) -> None:
    records, table = event.records, event.schema
    rules = [r for r in active_rules(records, table.id) if r.trigger["type"] in RECORD_TRIGGERS]
    if not rules:
        return
    info = records.session.info
    info[_DEFER] = info.get(_DEFER, 0) + 1
    done = False
    try:
        _after_write(event, rules)
        done = True
    finally:
        info[_DEFER] -= 1
        if not info[_DEFER]:
            if done:
                _flush_run_log(records)
                _flush_new_records(records)
            else:
                info.pop(_RUN_LOG, None)  # the write fails as a whole: its runs did not happen
                for k in (_NEW, _NEW_STATES, _NEW_TIMERS):
                    info.pop(k, None)


# Records created by the write under way (until its rules are done): they have no edge
# states and no timers in the database yet, so theirs are kept here and written with one
# statement each when the write's rules are done, instead of one statement per rule (a new
# order through the template used to cost 10 state inserts and 15 timer statements).
_NEW, _NEW_STATES, _NEW_TIMERS = "zs_rules_new_records", "zs_rules_new_states", "zs_rules_new_timers"


def _is_new(records, table_id, record_id) -> bool:
    new = records.session.info.get(_NEW)
    return bool(new) and (table_id, record_id) in new


def _flush_new_records(records) -> None:
    info = records.session.info
    info.pop(_NEW, None)
    states = info.pop(_NEW_STATES, None)
    timers = info.pop(_NEW_TIMERS, None)
    if states:
        records.conn.execute(insert(RuleState.__table__), [
            {"tenant_id": records.tenant_id, "rule_id": rule_id, "record_id": record_id, "value": value}
            for (rule_id, record_id), value in states.items()])
    rows = [row for by_anchor in (timers or {}).values() for row in by_anchor.values()]
    if rows:
        ins = (pg_insert if records.ctx.dialect == "postgresql" else sqlite_insert)(RuleTimer.__table__).on_conflict_do_nothing()
        records.conn.execute(ins, rows)


def _after_write(event: WriteEvent, rules) -> None:
    records, table = event.records, event.schema
    key = (table.id, event.record_id)
    pending_all = records.session.info.setdefault("zs_pending", {})
    if event.action == "delete" or key in pending_all:
        _run_record_rules(event, rules)
        return
    if event.action == "create":
        records.session.info.setdefault(_NEW, set()).add(key)
    pending_all[key] = {"values": {}, "raw": {}, "fired": []}
    try:
        _run_record_rules(event, rules)
        pending = pending_all.pop(key)
    except BaseException:
        pending_all.pop(key, None)
        raise
    # One write for everything the rules set: it cascades (record_updated rules) as usual.
    _flush(records, table, event.record_id, pending)


def _run_record_rules(event: WriteEvent, rules: list) -> None:
    records, table = event.records, event.schema
    loader = Loader(records)
    paths = set().union(*[r.record_paths() for r in rules])
    record = None
    if event.action != "delete":
        record = loader.load(table, event.record_id, paths)
    else:
        record = loader.build(table, event.before_row, loader.needs(paths)) if event.before_row is not None else None
    previous = loader.build(table, event.before_row, None) if event.before_row is not None and event.action == "update" else None
    changed = set(event.changed) if event.action == "update" else None
    version = (event.after or event.before or {}).get("version")
    edge_read = False  # edge-triggered rules' last values are read once, when the first one needs them
    for rule in rules:
        t = rule.trigger
        kind = t["type"]
        occasion = f"v{version}"
        if kind == "record_created" and event.action == "create" or kind == "record_deleted" and event.action == "delete":
            run_rule(records, rule, table, event.record_id, record, trigger=kind, previous=previous, changed=changed, occasion=occasion)
        elif kind == "record_updated" and event.action == "update":
            if t.get("fields") and not (changed & set(t["fields"])):
                continue
            run_rule(records, rule, table, event.record_id, record, trigger=kind, previous=previous, changed=changed, occasion=occasion)
        elif kind == "condition_true" and event.action in ("create", "update", "restore"):
            if not edge_read and not _is_new(records, table.id, event.record_id):
                _edge_states(records, rules, event.record_id)
                edge_read = True
            _edge(records, rule, table, event.record_id, record, previous, changed, occasion)
        elif kind == "time_after" and event.action in ("create", "update", "restore"):
            _arm_timer(records, rule, table, event, record)
        else:
            continue
        if event.action != "delete" and records.session.info.pop("zs_dirty", False):
            # an action changed related rows (a gift line, a reservation): later rules see it
            pending = records.session.info.get("zs_pending", {}).get((table.id, event.record_id))
            fresh = loader.load(table, event.record_id, paths)
            if fresh is not None:
                record = {**fresh, **(pending["raw"] if pending else {})}


_NO_STATE = "none"


def _edge_states(records, rules, record_id) -> None:
    """Reads the last condition values of the record's edge-triggered rules that this
    transaction has not seen yet, in one query; they are kept with the transaction's cached
    rows, and every change is written through, so a nested write of the same record (a rule's
    cascade) never works from an older value."""
    conn = records.conn
    ids = [r.id for r in rules if r.trigger["type"] == "condition_true"
           and rowcache.lookup(conn, ("edge", r.id, record_id), None) is None]
    if not ids:
        return
    t = RuleState.__table__
    found = dict(conn.execute(select(t.c.rule_id, t.c.value).where(t.c.rule_id.in_(ids), t.c.record_id == record_id)).all())
    for rid in ids:
        rowcache.keep(conn, ("edge", rid, record_id), bool(found[rid]) if rid in found else _NO_STATE)


def _edge(records, rule, table, record_id, record, previous, changed, occasion):
    rx = RunContext(records, rule, table, record_id, record, previous=previous, changed=changed)
    try:
        now_true = condition_holds(rx, rule)
    except ExpressionError as e:
        log_run(records, rule.id, table.id, record_id, "condition_true", "error", None, [], {}, e.message_en, 0)
        return
    if _is_new(records, table.id, record_id):
        states = records.session.info.setdefault(_NEW_STATES, {})
        was_true = states.get((rule.id, record_id)) is True
        states[(rule.id, record_id)] = now_true  # written when the write's rules are done
        if now_true and not was_true:
            run_rule(records, rule, table, record_id, record, trigger="condition_true", previous=previous, changed=changed,
                     occasion=occasion, check_condition=False)
        return
    key = ("edge", rule.id, record_id)
    known = rowcache.lookup(records.conn, key, None)
    if known is None:  # not read in this transaction (or the cache was dropped): read it now
        _edge_states(records, [rule], record_id)
        known = rowcache.lookup(records.conn, key)
    was_true = known is True
    t = RuleState.__table__
    if known == _NO_STATE:
        records.conn.execute(insert(t).values(tenant_id=records.tenant_id, rule_id=rule.id, record_id=record_id, value=now_true))
    elif known != now_true:
        records.conn.execute(update(t).where(t.c.rule_id == rule.id, t.c.record_id == record_id).values(value=now_true))
    rowcache.keep(records.conn, key, now_true)
    if now_true and not was_true:
        run_rule(records, rule, table, record_id, record, trigger="condition_true", previous=previous, changed=changed,
                 occasion=occasion, check_condition=False)


def _anchor_value(table, rule, mapping):
    fname = rule.trigger["field"]
    spec = table.fields.get(fname) or table.system_specs.get(fname)
    return mapping[spec.column_name]  # a date or a naive-UTC datetime


def _arm_timer(records, rule, table, event, record):
    from zhongshu.platform.fields.time import parse_duration

    if event.action == "update" and rule.trigger.get("field") not in (event.changed or ()):
        return  # the anchor date did not move: the armed timer stands (its condition is checked when it fires)
    row = rowcache.rows_by_id(records.conn, table.table, [event.record_id]).get(event.record_id)
    if row is None:
        return
    anchor = _anchor_value(table, rule, row._mapping)
    t = RuleTimer.__table__
    if _is_new(records, table.id, event.record_id):
        _arm_new(records, rule, table, event, anchor)
        return
    if anchor is None:
        if event.action == "create":
            return  # a new record has no timer to cancel
        records.conn.execute(update(t).where(t.c.rule_id == rule.id, t.c.record_id == event.record_id, t.c.status == "armed")
                             .values(status="cancelled"))
        return
    base = _timer_base(records, anchor)
    anchor_key = base.isoformat()
    fire_at = base + parse_duration(rule.trigger["offset"])
    if event.action != "create":  # a new record has nothing to cancel
        # The date moved: the old timer is cancelled and a new one armed (re-arm).
        records.conn.execute(update(t).where(t.c.rule_id == rule.id, t.c.record_id == event.record_id, t.c.status == "armed",
                                             t.c.anchor != anchor_key).values(status="cancelled"))
    # A timer already made for this date (armed, fired or cancelled) stands: one per date.
    ins = (pg_insert if records.ctx.dialect == "postgresql" else sqlite_insert)(t)
    records.conn.execute(ins.values(tenant_id=records.tenant_id, rule_id=rule.id, table_id=table.id,
                                    record_id=event.record_id, anchor=anchor_key, fire_at=fire_at, status="armed")
                         .on_conflict_do_nothing())


def _timer_base(records, anchor):
    if hasattr(anchor, "hour"):
        return anchor
    from datetime import datetime as _dt
    return _dt(anchor.year, anchor.month, anchor.day, tzinfo=records.ctx.tz).astimezone(timezone.utc).replace(tzinfo=None)


def _arm_new(records, rule, table, event, anchor) -> None:
    """``_arm_timer`` for a record created by the write under way: the same cancel and
    arm steps, on the timers kept in memory until the write's rules are done."""
    from zhongshu.platform.fields.time import parse_duration

    rows = records.session.info.setdefault(_NEW_TIMERS, {}).setdefault((rule.id, event.record_id), {})
    cancel = event.action != "create"  # as in _arm_timer: a create cancels nothing
    if anchor is None:
        for row in rows.values() if cancel else ():
            if row["status"] == "armed":
                row["status"] = "cancelled"
        return
    base = _timer_base(records, anchor)
    anchor_key = base.isoformat()
    for key, row in rows.items() if cancel else ():
        if key != anchor_key and row["status"] == "armed":
            row["status"] = "cancelled"
    if anchor_key not in rows:  # one timer per date, whatever became of it
        rows[anchor_key] = {"tenant_id": records.tenant_id, "rule_id": rule.id, "table_id": table.id,
                            "record_id": event.record_id, "anchor": anchor_key,
                            "fire_at": base + parse_duration(rule.trigger["offset"]), "status": "armed"}


def _locks_possible(records, table_id: int) -> bool:
    """Locks are made only by the lock_fields action: without such a rule in the tenant and
    without lock rows left on the table, an update need not look for locks."""
    cache = records.cache.meta.for_tenant(records.session, records.tenant_id)
    if cache is None:
        return True
    key = ("locks_possible", table_id)
    if key not in cache:
        uses = any("lock_fields" in json.dumps(d) for d in records.session.scalars(select(Rule.definition)))
        cache[key] = uses or records.session.scalar(select(FieldLock.id).where(FieldLock.table_id == table_id).limit(1)) is not None
    return cache[key]


_LOCKS_OF = None


def record_locks(records, table_id: int, record_id: int) -> list:
    """[(field, message)] of the record's locks, read once per transaction and record (a
    write's rules update the same order several times); ``forget_locks`` after a change."""
    global _LOCKS_OF
    key = ("locks", table_id, record_id)
    known = rowcache.lookup(records.conn, key, None)
    if known is None:
        if _LOCKS_OF is None:
            from sqlalchemy import bindparam

            t = FieldLock.__table__
            _LOCKS_OF = (select(t.c.field, t.c.message).where(t.c.table_id == bindparam("table_id"),
                                                               t.c.record_id == bindparam("record_id")).order_by(t.c.id))
        known = [tuple(r) for r in records.conn.execute(_LOCKS_OF, {"table_id": table_id, "record_id": record_id})]
        rowcache.keep(records.conn, key, known)
    return known


def forget_locks(records, table_id: int, record_id) -> None:
    rowcache.keep(records.conn, ("locks", table_id, record_id), None)


def check_locks(event: WriteEvent, values: dict) -> None:
    """Before-write hook: a locked field refuses edits, with the lock's message."""
    if event.action != "update" or not values:
        return
    records, table = event.records, event.schema
    names = [k for k in values if k in table.fields]
    if not names or not _locks_possible(records, table.id):
        return
    errors = []
    for field_name, message in record_locks(records, table.id, event.record_id):
        if field_name not in values or field_name not in table.fields:
            continue
        spec = table.fields[field_name]
        try:
            new = spec.type.to_storage(values[field_name], spec, records.ctx)
        except FieldValueError:
            new = object()
        old = event.before_row[spec.column_name] if event.before_row is not None and spec.type.has_column(spec) else None
        if new != old:
            errors.append(field_error(f"/{field_name}", message, message, code="locked"))
    if errors:
        raise ValidationFailed(errors[0]["message"], message_zh=errors[0]["message_zh"], code="locked", errors=errors)


# -- other triggers ------------------------------------------------------------------

def fire_timers(platform, *, now=None, limit: int = 500) -> int:
    """Fires due SLA timers (once each). After downtime, every timer that came due while
    the scheduler was away fires once when it returns (catch-up), never more."""
    from zhongshu.platform.models import Tenant
    from zhongshu.platform.storage.access import Actor

    now = now or platform.clock()
    t = RuleTimer.__table__
    with platform.tenant_session(None) as s:
        due = s.execute(select(t.c.id, t.c.tenant_id).where(t.c.status == "armed", t.c.fire_at <= now)
                        .order_by(t.c.fire_at).limit(limit)).all()
    fired = 0
    for timer_id, tenant_id in due:
        with platform.tenant_session(tenant_id, write=True) as s:
            tenant = s.get(Tenant, tenant_id)
            records = platform.records(s, tenant, Actor(None, "owner", is_system=True), now=now)
            timer = s.execute(select(t).where(t.c.id == timer_id, t.c.status == "armed")).first()
            if timer is None:
                continue
            rule_row = s.get(Rule, timer.rule_id)
            status = "skipped"
            if rule_row is not None and rule_row.enabled:
                table = records.schema(timer.table_id)
                rule = compile_rule(records, rule_row)
                record = Loader(records).load(table, timer.record_id, rule.record_paths())
                if record is not None and table.table is not None:
                    live = records.conn.execute(select(table.table.c.deleted_at).where(table.table.c.id == timer.record_id)).scalar()
                    if live is None:
                        res = run_rule(records, rule, table, timer.record_id, record, trigger="time_after", occasion=f"timer{timer_id}")
                        status = "fired" if res.get("status") in ("ok",) else ("skipped" if res.get("status") == "skipped" else "fired")
                        fired += 1
            s.execute(update(t).where(t.c.id == timer_id).values(status=status, fired_at=now))
    return fired


def run_scheduled(platform, tenant_id: int, rule_id: int, *, now=None) -> dict:
    from zhongshu.platform.models import Tenant
    from zhongshu.platform.storage.access import Actor
    from zhongshu.platform.storage.query import Query

    now = now or platform.clock()
    with platform.tenant_session(tenant_id, write=True) as s:
        tenant = s.get(Tenant, tenant_id)
        records = platform.records(s, tenant, Actor(None, "owner", is_system=True), now=now)
        row = s.get(Rule, rule_id)
        if row is None or not row.enabled:
            return {"status": "skipped"}
        rule = compile_rule(records, row)
        table = records.schema(row.table_id) if row.table_id else None
        occasion = f"sched{now.strftime('%Y%m%d%H%M')}"
        if table is not None and rule.trigger.get("for_each") is not None:
            ids, cursor, n = [], None, 0
            while True:
                page = records.list(table, Query(filter=rule.trigger["for_each"], limit=500, cursor=cursor, fields=["id"]))
                ids += [r["id"] for r in page["records"]]
                cursor = page["next_cursor"]
                if not page["has_more"] or len(ids) >= 10000:
                    break
            loader = Loader(records)
            for rid in ids:
                rec = loader.load(table, rid, rule.record_paths())
                run_rule(records, rule, table, rid, rec, trigger="schedule", occasion=occasion)
                n += 1
            return {"status": "ok", "records": n}
        return run_rule(records, rule, table, None, {}, trigger="schedule", occasion=occasion, check_condition=False)


def fire_for_record(records: Records, table, record_id: int, trigger: str, *, match=None, dry_run=False) -> list[dict]:
    """Runs the table's rules of one trigger kind for one record (button, form, approval, connector event)."""
    out = []
    rows = records.session.scalars(select(Rule).where(Rule.table_id == table.id, Rule.enabled.is_(True)).order_by(Rule.position, Rule.id))
    for row in rows:
        rule = compile_rule(records, row)
        if rule.trigger["type"] != trigger or (match and not match(rule)):
            continue
        rec = Loader(records).load(table, record_id, rule.record_paths())
        out.append({"rule": rule.api_name, **run_rule(records, rule, table, record_id, rec, trigger=trigger, dry_run=dry_run,
                                                      occasion=f"{trigger}{utcnow().timestamp()}")})
    return out


def fire_connector_event(records: Records, table, record_id: int | None, install: str, event_type: str) -> list[dict]:
    if table is None or record_id is None:
        return []
    return fire_for_record(records, table, record_id, "connector_event",
                           match=lambda r: r.trigger.get("install") in (None, install) and r.trigger.get("event_type") in (None, event_type))


def dry_run(records: Records, rule_row: Rule, record_id: int | None) -> dict:
    """Runs the rule against a record inside a savepoint that is rolled back: what it would do."""
    rule = compile_rule(records, rule_row)
    table = records.schema(rule_row.table_id) if rule_row.table_id else None
    sp = records.session.begin_nested()
    try:
        rec = Loader(records).load(table, record_id, rule.record_paths()) if (table is not None and record_id) else {}
        if table is not None and record_id and rec is None:
            from zhongshu.platform.errors import NotFound

            raise NotFound(f"record {record_id}", f"记录 {record_id}")
        res = run_rule(records, rule, table, record_id, rec, trigger=rule.trigger["type"], dry_run=True, occasion="dry-run")
    finally:
        sp.rollback()
    return res

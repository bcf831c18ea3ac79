"""Installs the runtime into a Platform: computed fields and rules on the write path, the
rule schema, save-time formula checks, and the outbox handlers of rules."""
from __future__ import annotations

from zhongshu.platform.metadata import CHECKERS
from zhongshu.platform.validation import register_dynamic

from . import computed
from .rules import engine
from .rules.definition import rule_schema

_registered = False


def _recompute_after_change(metadata, schema, field_name):
    spec = schema.fields.get(field_name)
    if spec is None or spec.type.name not in computed.COMPUTED:
        return
    from zhongshu.platform.storage.access import Actor
    from zhongshu.platform.storage.records import Records

    records = Records(metadata.session, tenant_id=metadata.tenant_id, actor=Actor(None, "owner", is_system=True),
                      ctx=metadata.ctx, cache=metadata.cache)
    computed.recompute_all(records, schema)


def _global_setup():
    global _registered
    if _registered:
        return
    _registered = True
    register_dynamic("rule", rule_schema)
    # Bulk inserts into a table without computed fields or rules skip reading rows back.
    computed.on_write.wants = _computed_wants
    engine.after_write.wants = _rules_want
    engine.check_locks.actions = ("update",)  # it checks updates only: no call per row of a bulk create
    from zhongshu.platform import metagen

    from .models import ConnectorInstall, Rule

    metagen.watch(Rule, ConnectorInstall)  # caches of active rules follow their changes
    CHECKERS.checks.append(computed.check_field)
    CHECKERS.after_change.append(_recompute_after_change)
    from . import handlers, tasks  # noqa: F401  (outbox handlers and periodic tasks register themselves)


def _computed_wants(records, schema) -> bool:
    return computed.computer_for(records, schema) is not None or bool(computed.dependents(records, schema))


def _rules_want(records, schema) -> bool:
    return any(r.trigger["type"] in engine.RECORD_TRIGGERS for r in engine.active_rules(records, schema.id))


def install(platform) -> None:
    _global_setup()
    hooks = platform.hooks
    if engine.check_locks not in hooks.before_write:
        hooks.before_write.append(engine.check_locks)
        hooks.after_write.append(computed.on_write)  # computed fields first: rules see fresh values
        hooks.after_write.append(engine.after_write)
